"""Specs for the gateways' publisher under broker errors (the real outage is tests/chaos/test_broker_restart.py).

The producer here is a scripted stand-in for aiokafka's, raising what aiokafka raises during an outage.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    OutOfOrderSequenceNumber,
    RecordTooLargeError,
)
from prometheus_client import CollectorRegistry

from connectors.gateways import kafka_io
from connectors.gateways.kafka_io import AiokafkaPublisher
from streams.metrics import Metrics


class ScriptedProducer:
    def __init__(self, script: list) -> None:
        self.script = list(script)  # exceptions to raise, in order; then success
        self.sent: list[tuple] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic, key=None, value=None):
        if self.script:
            raise self.script.pop(0)
        self.sent.append((topic, key, value))
        return SimpleNamespace(offset=len(self.sent) - 1)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch) -> None:
    monkeypatch.setattr(kafka_io, "FIRST_BACKOFF", 0.0)
    monkeypatch.setattr(kafka_io, "MAX_BACKOFF", 0.0)


def retries(metrics: Metrics) -> float:
    return sum(s.value for m in metrics.registry.collect() for s in m.samples
               if s.name == "switchboard_kafka_write_retries_total")


def test_an_outage_is_waited_out_and_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    producer = ScriptedProducer([LeaderNotAvailableError(), KafkaTimeoutError(), KafkaConnectionError()])
    publisher = AiokafkaPublisher(producer, metrics)
    assert asyncio.run(publisher.append("t.gateways.sms.ledger", b"k", b"v")) == 0
    assert producer.sent == [("t.gateways.sms.ledger", b"k", b"v")]
    assert retries(metrics) == 3


def test_an_error_that_retrying_cannot_fix_is_raised() -> None:
    publisher = AiokafkaPublisher(ScriptedProducer([RecordTooLargeError()]), Metrics(CollectorRegistry()))
    with pytest.raises(RecordTooLargeError):
        asyncio.run(publisher.append("t.messages.outcomes", b"k", b"v"))


def test_a_producer_broken_by_an_outage_is_replaced_once_and_the_write_goes_through() -> None:
    broken = ScriptedProducer([OutOfOrderSequenceNumber()] * 10)
    fresh: list[ScriptedProducer] = []

    def replacement() -> ScriptedProducer:
        fresh.append(ScriptedProducer([]))
        return fresh[-1]

    publisher = AiokafkaPublisher(broken, Metrics(CollectorRegistry()), replacement=replacement)

    async def many() -> list[int]:
        return await asyncio.gather(*(publisher.append("t.messages.outcomes", str(i).encode(), b"v")
                                      for i in range(5)))

    offsets = asyncio.run(many())
    assert len(fresh) == 1 and fresh[0].started and broken.stopped
    assert sorted(offsets) == [0, 1, 2, 3, 4]
    assert sorted(key for _, key, _ in fresh[0].sent) == [b"0", b"1", b"2", b"3", b"4"]


def test_without_a_replacement_a_broken_producer_is_an_error() -> None:
    publisher = AiokafkaPublisher(ScriptedProducer([OutOfOrderSequenceNumber()]), Metrics(CollectorRegistry()))
    with pytest.raises(OutOfOrderSequenceNumber):
        asyncio.run(publisher.append("t.messages.outcomes", b"k", b"v"))
