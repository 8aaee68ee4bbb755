"""Reading a compacted topic into memory and following it: the send ledger and the consent view both do."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

logger = logging.getLogger(__name__)

Apply = Callable[[bytes | None, bytes | None, int], None]  # (key, value or None for a tombstone, offset)


async def read_to_end(bootstrap_servers: str, topic: str, partition_ids: set[int], apply: Apply) -> AIOKafkaConsumer:
    """Applies every record from the beginning to the current end. Returns the consumer, positioned there,
    for :func:`follow`; the caller stops it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), enable_auto_commit=False,
                                group_id=None)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in sorted(partition_ids)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends = await _retrying(lambda: consumer.end_offsets(partitions))
    pending = {tp for tp in partitions if ends[tp] > 0}
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=1000)
        for tp, records in batches.items():
            for record in records:
                apply(record.key, record.value, record.offset)
                if record.offset + 1 >= ends[tp]:
                    pending.discard(tp)
    return consumer


async def follow(consumer: AIOKafkaConsumer, apply: Apply) -> None:
    """Applies what is written from now on, until cancelled."""
    while True:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            for record in records:
                apply(record.key, record.value, record.offset)


async def _retrying(call, attempts: int = 30, pause: float = 0.5):
    """Retries a metadata call through a leader election (fresh topics, broker restarts)."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except KafkaError as exc:
            if not exc.retriable or attempt == attempts:
                raise
            logger.info("retrying after %s (%d/%d)", type(exc).__name__, attempt, attempts)
            await asyncio.sleep(pause)
