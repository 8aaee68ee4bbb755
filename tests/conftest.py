"""Shared fixtures: a real Kafka broker for the session, and per-test settings with topics of their own.

The broker is, in order of preference:
1. the cluster named by ``SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS``;
2. a Kafka container, when ``SWITCHBOARD_TEST_TESTCONTAINERS=1`` and a Docker engine is there;
3. the project's own KRaft broker (``deploy/kafka/kafka.sh``) on a free loopback port with a
   throw-away data directory, stopped at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.support import free_port_pair, make_settings

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"




@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if os.environ.get("SWITCHBOARD_TEST_TESTCONTAINERS") == "1":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    port = free_port_pair()
    env = {**os.environ, "SWITCHBOARD_KAFKA_PORT": str(port),
           "SWITCHBOARD_KAFKA_DATA": str(tmp_path_factory.mktemp("kafka"))}
    subprocess.run(["bash", str(KAFKA_SCRIPT), "start"], check=True, env=env)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(["bash", str(KAFKA_SCRIPT), "stop"], check=False, env=env)


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    return make_settings(kafka_bootstrap, tmp_path)
