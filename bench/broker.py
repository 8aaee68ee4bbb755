"""The broker the benchmark runs on: an existing one, or a local KRaft broker of its own.

With ``SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS`` set, that cluster is used and left alone. Otherwise
``deploy/kafka/kafka.sh`` starts a broker on a free port with a data directory of its own under
``.switchboard/bench/``, and the benchmark stops and wipes it at the end: a run never shares a broker
with a test suite by accident.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"
POM = ROOT / "deploy" / "kafka" / "pom.xml"


def kafka_version() -> str:
    """The broker release the local broker runs (one line in ``deploy/kafka/pom.xml``)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text(encoding="utf-8"))
    return found.group(1) if found else "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_port_pair() -> int:
    """A port whose successor (the controller's) is free too."""
    for _ in range(50):
        port = free_port()
        if port < 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free pair of ports for a broker")


@dataclass
class Broker:
    """Where the benchmark's Kafka is, and whether this run owns it."""

    bootstrap_servers: str
    owned: bool
    data_dir: Path | None = None
    port: int | None = None

    @classmethod
    def acquire(cls, data_root: Path) -> Broker:
        existing = os.environ.get("SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS")
        if existing:
            return cls(existing, owned=False)
        port = _free_port_pair()
        data_dir = data_root / f"kafka-{port}"
        _kafka_sh("start", port, data_dir)
        return cls(f"127.0.0.1:{port}", owned=True, data_dir=data_dir, port=port)

    def release(self) -> None:
        """Stops and deletes a broker this run started; leaves any other one running."""
        if self.owned and self.port is not None and self.data_dir is not None:
            _kafka_sh("wipe", self.port, self.data_dir)

    def describe(self) -> str:
        return f"{self.bootstrap_servers} ({'started for this run' if self.owned else 'existing'})"


def _kafka_sh(command: str, port: int, data_dir: Path) -> None:
    subprocess.run(["bash", str(KAFKA_SCRIPT), command, "--port", str(port), "--data-dir", str(data_dir)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
