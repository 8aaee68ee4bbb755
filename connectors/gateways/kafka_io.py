"""aiokafka plumbing shared by the gateways: an idempotent producer and a Publisher over it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)

from streams.metrics import Metrics, default_metrics

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5  # seconds before the first retry of a write; doubled up to MAX_BACKOFF
MAX_BACKOFF = 5.0

# The idempotent producer's own state is broken: after batches expired in an outage the broker refuses its
# next sequence numbers for good. Only a new producer (a new producer id) can write again.
PRODUCER_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


def retriable(error: Exception) -> bool:
    """Worth waiting out: the broker is away or electing leaders. aiokafka marks its batch expiry
    (KafkaTimeoutError) as not retriable, but for a process whose every record must reach Kafka it is the
    same outage seen from the client's side."""
    return isinstance(error, KafkaTimeoutError) or (isinstance(error, KafkaError) and error.retriable)


class AiokafkaPublisher:
    """Publishes and waits for the broker's acknowledgement, through any broker outage.

    A retriable broker error (no partition leader, a request timed out, the connection lost) is retried
    with backoff for as long as it lasts, so an outage pauses a gateway instead of ending it. When the
    outage has broken the idempotent producer's sequence (its expired batches leave a gap the broker never
    accepts), the producer is replaced by a new one and the write retried. A retry after a timeout may
    write a record twice: every record the gateways write is keyed by a message id and read idempotently
    (ledger, outcomes)."""

    def __init__(self, producer: AIOKafkaProducer, metrics: Metrics | None = None,
                 replacement: Callable[[], AIOKafkaProducer] | None = None) -> None:
        self._producer = producer
        self._metrics = metrics or default_metrics()
        self._replacement = replacement
        self._replacing = asyncio.Lock()

    @classmethod
    async def started(cls, bootstrap_servers: str, client_id: str,
                      metrics: Metrics | None = None) -> AiokafkaPublisher:
        """A publisher over a started producer, able to replace it after an outage."""
        def factory() -> AIOKafkaProducer:
            return make_producer(bootstrap_servers, client_id)

        producer = factory()
        await producer.start()
        return cls(producer, metrics, replacement=factory)

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        await self.append(topic, key, value)

    async def append(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        """Publishes, waits for the ack (through any retriable outage), and returns the record's offset."""
        backoff = FIRST_BACKOFF
        while True:
            producer = self._producer
            try:
                metadata = await producer.send_and_wait(topic, key=key, value=value)
                return metadata.offset
            except PRODUCER_BROKEN as error:
                if self._replacement is None:
                    raise
                await self._replace(producer, type(error).__name__)
            except Exception as error:  # noqa: BLE001 - only retriable errors are kept; the rest re-raise
                if not retriable(error):
                    raise
                logger.warning("Kafka write to %s failed (%s); retrying in %.1f s", topic,
                               type(error).__name__, backoff)
            self._metrics.kafka_write_retries.labels(topic_kind=topic.rsplit(".", 1)[-1]).inc()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _replace(self, broken: AIOKafkaProducer, why: str) -> None:
        """One replacement per broken producer, however many writes saw it fail."""
        async with self._replacing:
            if self._producer is not broken:
                return  # another write replaced it already
            logger.warning("Kafka producer unusable after an outage (%s); starting a new one", why)
            fresh = self._replacement()
            await fresh.start()
            self._producer = fresh
        try:
            await broken.stop()
        except Exception as error:  # noqa: BLE001 - the old producer's clean-up must not stop the new one
            logger.warning("stopping the old producer failed (%s)", type(error).__name__)

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids (fetching metadata if the producer has none yet)."""
        return set(await self._producer.partitions_for(topic))
