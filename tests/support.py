"""Helpers for tests that talk to the real broker and to child processes."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from schemas.codec import codec_for
from schemas.types import Record
from streams.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A free port whose successor is free too (a broker's controller listens on port + 1), chosen below the
    kernel's ephemeral range: a port from that range can be taken by any outgoing connection while a broker
    is down for a restart (scenario 3 once found its controller port so taken), a port below it cannot."""
    ephemeral_low = _ephemeral_range()[0]
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, ephemeral_low - 2)
        if _bindable(port) and _bindable(port + 1):
            return port
    raise RuntimeError("no free port pair on loopback")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def make_settings(kafka_bootstrap: str, state_dir: Path) -> Settings:
    """Settings of a test of its own: unique topic prefix and consumer groups, free ports, own state dir."""
    s = Settings()
    s.kafka.bootstrap_servers = kafka_bootstrap
    s.kafka.topic_prefix = f"t{uuid.uuid4().hex[:10]}."
    s.kafka.partitions = 3
    s.worker.web_port = free_port()
    s.worker.data_dir = state_dir / "worker"
    s.sms.webhook_port = free_port()
    s.sms.public_base_url = f"http://127.0.0.1:{s.sms.webhook_port}"
    s.sandbox.port = free_port()
    s.sms.api_base_url = f"http://127.0.0.1:{s.sandbox.port}"
    s.sandbox.vonage_port = free_port()
    s.sms.vonage_api_base_url = f"http://127.0.0.1:{s.sandbox.vonage_port}"
    s.whatsapp.webhook_port = free_port()
    s.whatsapp.public_base_url = f"http://127.0.0.1:{s.whatsapp.webhook_port}"
    s.sandbox.whatsapp_port = free_port()
    s.whatsapp.api_base_url = f"http://127.0.0.1:{s.sandbox.whatsapp_port}"
    s.email.webhook_port = free_port()
    s.sms.admin_port, s.whatsapp.admin_port, s.email.admin_port = free_port(), free_port(), free_port()
    s.sandbox.smtp_port = s.email.port = free_port()
    s.sandbox.smtp_http_port = free_port()
    s.preferences.port = free_port()
    s.preferences.admin_port = free_port()
    s.preferences.public_base_url = f"http://127.0.0.1:{s.preferences.port}"
    s.worker.session_timeout = 6.0  # a killed-and-restarted worker gets its partitions back quickly
    # Quiet hours and frequency caps would make every marketing test depend on the time of day it runs;
    # the tests of those rules write store files of their own.
    s.worker.stores_file = write_stores(state_dir, {"defaults": {"quiet_hours": {"enabled": False},
                                                                 "frequency_caps": {"enabled": False}}})
    return s


def write_journeys(directory: Path, *documents: str) -> Path:
    """A journeys directory of a test's own (YAML texts, see streams/journeys/definitions.py)."""
    folder = directory / f"journeys-{uuid.uuid4().hex[:6]}"
    folder.mkdir(parents=True)
    for number, text in enumerate(documents):
        (folder / f"journey{number}.yaml").write_text(text, encoding="utf-8")
    return folder


def write_stores(directory: Path, stores: dict) -> Path:
    """A worker's store-rules file (see streams/stores.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"stores-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(stores, allow_unicode=True), encoding="utf-8")
    return path


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process see ``settings``."""
    s = settings
    return {
        "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,
        "SWITCHBOARD_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
        "SWITCHBOARD_KAFKA__PARTITIONS": str(s.kafka.partitions),
        "SWITCHBOARD_WORKER__WEB_PORT": str(s.worker.web_port),
        "SWITCHBOARD_WORKER__DATA_DIR": str(s.worker.data_dir),
        "SWITCHBOARD_WORKER__RECEIPT_TIMEOUTS": json.dumps(s.worker.receipt_timeouts),
        "SWITCHBOARD_WORKER__TIMER_INTERVAL": str(s.worker.timer_interval),
        "SWITCHBOARD_WORKER__SESSION_TIMEOUT": str(s.worker.session_timeout),
        **({"SWITCHBOARD_WORKER__STORES_FILE": str(s.worker.stores_file)} if s.worker.stores_file else {}),
        **({"SWITCHBOARD_WORKER__JOURNEYS_DIR": str(s.worker.journeys_dir)} if s.worker.journeys_dir else {}),
        "SWITCHBOARD_WORKER__JOURNEY_TIME_SCALE": str(s.worker.journey_time_scale),
        "SWITCHBOARD_SMS__WEBHOOK_PORT": str(s.sms.webhook_port),
        "SWITCHBOARD_SMS__PUBLIC_BASE_URL": s.sms.public_base_url,
        "SWITCHBOARD_SMS__API_BASE_URL": s.sms.api_base_url,
        "SWITCHBOARD_SANDBOX__PORT": str(s.sandbox.port),
        "SWITCHBOARD_SANDBOX__VONAGE_PORT": str(s.sandbox.vonage_port),
        "SWITCHBOARD_SMS__VONAGE_API_BASE_URL": s.sms.vonage_api_base_url,
        "SWITCHBOARD_WHATSAPP__WEBHOOK_PORT": str(s.whatsapp.webhook_port),
        "SWITCHBOARD_WHATSAPP__PUBLIC_BASE_URL": s.whatsapp.public_base_url,
        "SWITCHBOARD_WHATSAPP__API_BASE_URL": s.whatsapp.api_base_url,
        "SWITCHBOARD_SANDBOX__WHATSAPP_PORT": str(s.sandbox.whatsapp_port),
        "SWITCHBOARD_EMAIL__WEBHOOK_PORT": str(s.email.webhook_port),
        "SWITCHBOARD_EMAIL__PORT": str(s.email.port),
        "SWITCHBOARD_SANDBOX__SMTP_PORT": str(s.sandbox.smtp_port),
        "SWITCHBOARD_SANDBOX__SMTP_HTTP_PORT": str(s.sandbox.smtp_http_port),
        "SWITCHBOARD_PREFERENCES__PORT": str(s.preferences.port),
        "SWITCHBOARD_SMS__ADMIN_PORT": str(s.sms.admin_port),
        "SWITCHBOARD_WHATSAPP__ADMIN_PORT": str(s.whatsapp.admin_port),
        "SWITCHBOARD_EMAIL__ADMIN_PORT": str(s.email.admin_port),
        "SWITCHBOARD_PREFERENCES__ADMIN_PORT": str(s.preferences.admin_port),
        "SWITCHBOARD_PREFERENCES__PUBLIC_BASE_URL": s.preferences.public_base_url,
    }


def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def consume_until(bootstrap: str, topic: str, done: Callable[[list], bool], timeout: float = 60.0,
                  model: type[Record] | None = None) -> list:
    """Reads ``topic`` from the beginning until ``done(records)``; records are (key, value) with the
    value decoded with ``model`` when given. Fails with what it saw when the deadline passes."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions: list[TopicPartition] = []
        while not partitions and time.monotonic() < deadline:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        seen: list = []
        while not done(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}: condition not met in {timeout}s; saw {len(seen)} records: {seen[:5]}")
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    seen.append((r.key, codec_for(model).decode(r.value) if model else r.value))
        return seen
    finally:
        consumer.close()


class Child:
    """A ``switchboard`` subcommand running as a real process, stopped (and reaped) at the end."""

    def __init__(self, args: list[str], settings: Settings, log: Path) -> None:
        self.log = log
        self._file = open(log, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "connectors.cli", *args], cwd=ROOT,
                                        env={**os.environ, **env_of(settings)}, stdout=self._file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.alive():
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._file.close()
        return self.process.returncode


def wait_until(condition: Callable[[], bool], timeout: float, what: str, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if child is not None and not child.alive():
            raise AssertionError(f"{what}: the process died:\n{child.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s" + (f"\n{child.output()}" if child else ""))
        time.sleep(0.1)  # polling another process; the condition is what is awaited


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for_worker(settings: Settings, topics: list[str], timeout: float = 60.0) -> None:
    """Until the worker's consumer group has committed everything on ``topics`` (its state is loaded)."""
    from streams.topics import app_id, group_lag

    wait_until(lambda: group_lag(settings, app_id(settings), topics) == 0, timeout, "worker catching up")
