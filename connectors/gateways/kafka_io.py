"""aiokafka plumbing shared by the gateways: an idempotent producer and a Publisher over it."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


class AiokafkaPublisher:
    """Publishes and waits for the broker's acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        await self.append(topic, key, value)

    async def append(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        """Publishes, waits for the ack, and returns the record's offset."""
        metadata = await self._producer.send_and_wait(topic, key=key, value=value)
        return metadata.offset

    async def partitions_for(self, topic: str) -> set[int]:
        """The topic's partition ids (fetching metadata if the producer has none yet)."""
        return set(await self._producer.partitions_for(topic))
