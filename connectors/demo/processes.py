"""Starting the pipeline's processes and making sure none outlives the demo."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

logger = logging.getLogger(__name__)


class Supervisor:
    """Child processes, each in its own process group, stopped with SIGTERM and then SIGKILL."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child for its lifetime
        child = subprocess.Popen([sys.executable, "-m", "connectors.cli", *args], stdout=log,
                                 stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        self.children[name] = child
        return child

    def check(self) -> None:
        """Raises if a child died: the demo must not wait for a process that is gone."""
        for name, child in self.children.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}; see {self.log_dir / (name + '.log')}")

    def stop_all(self, grace: float = 20.0) -> None:
        for child in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, child in self.children.items():
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0fs: killing it", name, grace)
                _signal_group(child, signal.SIGKILL)
                child.wait()
        self.children.clear()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the demo dies, even by SIGKILL (Linux prctl)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _signal_group(child: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass
