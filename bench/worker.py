"""The real ``switchboard worker`` as a child process, started the way the integration tests start it.

Its settings come from ``SWITCHBOARD_*`` variables (as ``tests/support.env_of`` builds them). The
store rules switch quiet hours and frequency caps off: at any hour some simulated customers are in
their quiet hours, and deferring their messages would make the figures depend on the time of day
instead of on the pipeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.broker import ROOT, free_port
from bench.machine import cpu_seconds, peak_rss_bytes, rss_bytes, run_queue_wait_seconds
from schemas.catalog import CUSTOMER_CONSENTS, CUSTOMER_PROFILES, TopicNames
from streams.settings import Settings
from streams.topics import app_id, create_topics

THROUGHPUT_STORES = {"defaults": {"quiet_hours": {"enabled": False}, "frequency_caps": {"enabled": False}}}


def bench_settings(bootstrap: str, run_dir: Path, label: str, partitions: int) -> Settings:
    """Settings of one worker under test: topics and consumer group of its own (a run prefix)."""
    s = Settings()
    s.kafka.bootstrap_servers = bootstrap
    s.kafka.topic_prefix = f"bench-{run_dir.name}-{label}."
    s.kafka.partitions = partitions
    s.worker.web_port = free_port()
    s.worker.data_dir = run_dir / f"worker-{label}"
    s.worker.session_timeout = 10.0
    stores = run_dir / f"stores-{uuid.uuid4().hex[:6]}.yaml"
    stores.parent.mkdir(parents=True, exist_ok=True)
    stores.write_text(yaml.safe_dump(THROUGHPUT_STORES), encoding="utf-8")
    s.worker.stores_file = stores
    return s


def env_of(s: Settings) -> dict[str, str]:
    """The environment that makes the worker process see ``s`` (the worker's part of tests/support.env_of)."""
    return {
        "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
        "SWITCHBOARD_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
        "SWITCHBOARD_KAFKA__PARTITIONS": str(s.kafka.partitions),
        "SWITCHBOARD_WORKER__WEB_PORT": str(s.worker.web_port),
        "SWITCHBOARD_WORKER__DATA_DIR": str(s.worker.data_dir),
        "SWITCHBOARD_WORKER__SESSION_TIMEOUT": str(s.worker.session_timeout),
        "SWITCHBOARD_WORKER__STORES_FILE": str(s.worker.stores_file),
    }


@dataclass
class WorkerProcess:
    """One worker process: start, wait for it, read its memory and CPU, stop it."""

    settings: Settings
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. Faust's own settings: PRODUCER_LINGER=0.005
    command: list[str] = field(default_factory=lambda: ["-m", "connectors.cli", "worker", "--loglevel", "warn"])
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    _file: object = field(default=None, repr=False)

    @property
    def group(self) -> str:
        return app_id(self.settings)

    @property
    def names(self) -> TopicNames:
        return TopicNames(self.settings.kafka.topic_prefix)

    @property
    def pid(self) -> int:
        assert self.process is not None, "worker not started"
        return self.process.pid

    def create_topics(self) -> None:
        create_topics(self.settings)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.log, "wb")  # noqa: SIM115 - the child's log for its lifetime
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, *self.command], cwd=ROOT,
            env={**os.environ, **env_of(self.settings), **self.extra_env}, stdout=self._file, stderr=subprocess.STDOUT,
            start_new_session=True)

    def restart(self) -> None:
        """Stops the process and starts it again (its state comes back from the changelogs)."""
        self.stop()
        self.log = self.log.with_name(self.log.stem + "-restarted" + self.log.suffix)
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"the worker died (log {self.log}):\n{tail}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def peak_rss(self) -> int:
        return peak_rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def cpu_wait(self) -> float:
        return run_queue_wait_seconds(self.pid)

    def state_topics(self) -> list[str]:
        return [self.names(CUSTOMER_PROFILES), self.names(CUSTOMER_CONSENTS)]

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._file is not None:
            self._file.close()  # type: ignore[attr-defined]
            self._file = None
