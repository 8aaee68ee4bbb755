"""Spec: ``switchboard demo`` on a terminal shows the demo — its progress and its summary — and no line of
the Kafka clients' (issue #16: 20 s of ECONNREFUSED before the broker starts, a consumer warning every
0.6 s, selector warnings through the progress display).

The demo runs under a pseudo-terminal, as a user's shell runs it, with every port moved to a free block
(``--ports-from``) and, unless the session names a cluster, a broker of its own: the path ``make demo``
takes on a fresh clone, the refused broker check included.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from streams.settings import PORT_OFFSETS
from tests.support import ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
LEVELS = re.compile(r"\b(?:WARNING|ERROR|CRITICAL)\b")
LIBRARY_LINE = re.compile(r"\baiokafka\b|\bkafka\.(?:conn|client|cluster|consumer|coordinator|producer|net|admin|"
                          r"protocol|metrics)\b|ECONNREFUSED|Bootstrap failed|group_id is None")


def free_block(size: int) -> int:
    """A loopback port from which ``size`` consecutive ports are free."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {size} consecutive free ports on loopback")


def run_on_a_terminal(args: list[str], env: dict[str, str], columns: int = 120) -> tuple[int, str]:
    """Runs ``args`` with a pseudo-terminal as stdin, stdout and stderr; returns its exit code and what the
    terminal showed, escape sequences removed and carriage returns made line ends."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    child = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                             start_new_session=True)
    os.close(slave)
    shown = bytearray()
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal closed it
                    data = b""
                if data:
                    shown += data
                    continue
            if child.poll() is not None and not ready:
                break
            if ready and not data:
                break
        code = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    text = ANSI.sub("", shown.decode("utf-8", errors="replace")).replace("\r\n", "\n").replace("\r", "\n")
    return code, text


@pytest.mark.timeout(900)
def test_the_demo_on_a_terminal_shows_no_line_of_the_kafka_clients(tmp_path: Path) -> None:
    base = free_block(len(PORT_OFFSETS) + 1)  # + the broker's controller port
    env = {name: value for name, value in os.environ.items() if not name.startswith("SWITCHBOARD_")}
    if "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS" in os.environ:  # the session's cluster: the demo starts no broker
        env["SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS"] = os.environ["SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS"]
    env.update({"SWITCHBOARD_KAFKA_DATA": str(tmp_path / "kafka"), "TERM": "xterm-256color", "COLUMNS": "120"})

    code, shown = run_on_a_terminal([sys.executable, "-m", "connectors.cli", "demo", "--ports-from", str(base),
                                     "--customers", "40", "--timeout", "240"], env)

    assert code == 0, shown[-3000:]
    assert "Switchboard demo — 40 customers" in shown, shown[-3000:]  # the summary, so the whole run was seen
    assert "All processes stopped." in shown
    lines = [line for line in shown.splitlines() if line.strip()]
    chatter = [line for line in lines if LEVELS.search(line) or LIBRARY_LINE.search(line)]
    assert chatter == [], "\n".join(chatter[:20])
    assert not re.search(r"from (\w{3} \d\d:\d\d) to \1", shown)  # a range whose ends read the same
