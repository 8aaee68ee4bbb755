"""aiokafka plumbing shared by the gateways: an idempotent producer and a Publisher over it."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

from streams.metrics import Metrics, default_metrics

logger = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5  # seconds before the first retry of a write; doubled up to MAX_BACKOFF
MAX_BACKOFF = 5.0


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
    """Publishes and waits for the broker's acknowledgement; a retriable broker error (no partition leader,
    a request timed out, the connection lost) is retried with backoff for as long as it lasts, so a broker
    outage pauses a gateway instead of ending it. A retry after a timeout may write the record twice: every
    record the gateways write is keyed by a message id and read idempotently (ledger, outcomes)."""

    def __init__(self, producer: AIOKafkaProducer, metrics: Metrics | None = None) -> None:
        self._producer = producer
        self._metrics = metrics or default_metrics()

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        await self.append(topic, key, value)

    async def append(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        """Publishes, waits for the ack (through any retriable outage), and returns the record's offset."""
        backoff = FIRST_BACKOFF
        while True:
            try:
                metadata = await self._producer.send_and_wait(topic, key=key, value=value)
                return metadata.offset
            except Exception as error:  # noqa: BLE001 - only retriable errors are kept; the rest re-raise
                if not retriable(error):
                    raise
                self._metrics.kafka_write_retries.labels(topic_kind=topic.rsplit(".", 1)[-1]).inc()
                logger.warning("Kafka write to %s failed (%s); retrying in %.1f s", topic,
                               type(error).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids (fetching metadata if the producer has none yet)."""
        return set(await self._producer.partitions_for(topic))
