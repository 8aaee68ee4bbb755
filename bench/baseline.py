"""B: a bare aiokafka consume → produce pass-through, the machine's practical ceiling.

It does what a worker hop does at the Kafka level and nothing else: batched ``getmany``, sends that
are queued and not awaited one by one (linger 5 ms, acks=all like the worker's producer), the producer
flushed and offsets committed every ``commit_interval`` seconds (Faust's 2.8 s), no decoding. The
records are real encoded storefront events on topics with the pipeline's partition count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


@dataclass
class PassThrough:
    records: int
    seconds: float
    commits: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def _pass_through(bootstrap: str, source: str, sink: str, group: str, expected: int,
                        commit_interval: float, progress: Callable[[int], None]) -> PassThrough:
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=1024 * 1024)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    await consumer.start()
    moved, commits, started = 0, 0, 0.0
    try:
        last_commit = time.monotonic()
        while moved < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            if batches and not started:
                started = time.monotonic()
            for records in batches.values():
                for record in records:
                    await producer.send(sink, value=record.value, key=record.key)  # queued; the ack is not awaited
                moved += len(records)
                progress(len(records))
            if time.monotonic() - last_commit >= commit_interval:
                await producer.flush()  # what Faust does before a commit: nothing committed is unsent
                await consumer.commit()
                commits += 1
                last_commit = time.monotonic()
        await producer.flush()
        await consumer.commit()
        return PassThrough(moved, time.monotonic() - started, commits + 1)
    finally:
        await consumer.stop()
        await producer.stop()


def run_pass_through(bootstrap: str, source: str, sink: str, group: str, expected: int,
                     commit_interval: float = 2.8, progress: Callable[[int], None] = lambda n: None) -> PassThrough:
    """Moves ``expected`` records from ``source`` to ``sink`` (on uvloop, as the worker runs) and times it."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        runner = asyncio.run
    return runner(_pass_through(bootstrap, source, sink, group, expected, commit_interval, progress))
