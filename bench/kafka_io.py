"""Small Kafka helpers the phases share: topics, raw producing, offsets and lag, reading records back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import uvloop
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

Record = tuple[bytes | None, bytes | None]  # (key, value)


def create_topics(bootstrap: str, names: Iterable[str], partitions: int, config: dict[str, str] | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="switchboard-bench")
    try:
        existing = set(admin.list_topics())
        wanted = [NewTopic(n, partitions, 1, topic_configs=config or {}) for n in names if n not in existing]
        if wanted:
            try:
                admin.create_topics(wanted, timeout_ms=30_000)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def delete_topics_with_prefix(bootstrap: str, prefix: str) -> int:
    """Deletes a run's own topics (its prefix), so repeated runs on a shared broker leave no data behind."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="switchboard-bench")
    try:
        doomed = [t for t in admin.list_topics() if t.startswith(prefix)]
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
        return len(doomed)
    finally:
        admin.close()


class Feed(threading.Thread):
    """Sends records from a thread of its own (aiokafka on uvloop), as fast as it can or at ``rate`` per second.

    Like the project's ``EventProducer``: acks=all, linger 5 ms. Sends are queued, not awaited one by
    one; the feed ends with a flush. ``sent`` and ``first_ms`` can be read while it runs.
    """

    def __init__(self, bootstrap: str, records: Iterable[tuple[str, Record]], rate: float = 0.0) -> None:
        super().__init__(daemon=True, name="bench-feed")
        self.bootstrap, self.records, self.rate = bootstrap, records, rate
        self.sent = 0
        self.first_ms: int | None = None
        self.finished_at: float | None = None  # time.monotonic() after the final flush
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            uvloop.run(self._send_all())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by wait()
            self.error = exc

    async def _send_all(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5,
                                    max_batch_size=256 * 1024, request_timeout_ms=60_000)
        await producer.start()
        try:
            started = time.monotonic()
            for topic, (key, value) in self.records:
                if self.first_ms is None:
                    self.first_ms = int(time.time() * 1000)
                await producer.send(topic, value, key=key)
                self.sent += 1
                if self.rate > 0 and self.sent % 10 == 0:
                    ahead = started + self.sent / self.rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)  # pacing: the feed runs ahead of its schedule
            await producer.flush()
            self.finished_at = time.monotonic()
        finally:
            await producer.stop()

    def wait(self, timeout: float | None = None) -> None:
        self.join(timeout)
        if self.error is not None:
            raise self.error


def drive(feed: Feed, check: Callable[[], None], progress: Callable[[int], None],
          sample: Callable[[], None] | None = None) -> None:
    """Starts ``feed`` and waits for its flush; every half second checks the process under test (``check``
    raises if it died), takes a ``sample`` and reports the records sent since the last report."""
    feed.start()
    shown = 0
    while feed.is_alive():
        check()
        if sample is not None:
            sample()
        progress(feed.sent - shown)
        shown = feed.sent
        time.sleep(0.5)  # sampling another process through the broker
    feed.wait()
    progress(feed.sent - shown)


def produce_all(bootstrap: str, records: Iterable[tuple[str, Record]], progress: Callable[[int], None] | None = None,
                rate: float = 0.0) -> Feed:
    """Sends every record (``(topic, (key, value))``) and waits for the flush; reports progress meanwhile."""
    feed = Feed(bootstrap, records, rate)
    feed.start()
    reported = 0
    while feed.is_alive():
        feed.join(0.2)
        if progress is not None:
            progress(feed.sent - reported)
            reported = feed.sent
    feed.wait()
    return feed


class Offsets:
    """End offsets of topics and a consumer group's committed offsets, with long-lived clients."""

    def __init__(self, bootstrap: str) -> None:
        servers = bootstrap.split(",")
        self._admin = KafkaAdminClient(bootstrap_servers=servers, client_id="switchboard-bench-offsets")
        self._consumer = KafkaConsumer(bootstrap_servers=servers, client_id="switchboard-bench-offsets")
        self._partitions: dict[str, list[TopicPartition]] = {}
        self._closed = False

    def partitions(self, topic: str) -> list[TopicPartition]:
        if not self._partitions.get(topic):
            found = self._consumer.partitions_for_topic(topic) or set()
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(found)]
        return self._partitions[topic]

    def topics(self) -> set[str]:
        return set(self._consumer.topics())

    def ends(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        partitions = [tp for t in topics for tp in self.partitions(t)]
        return self._consumer.end_offsets(partitions) if partitions else {}

    def total(self, topics: Iterable[str]) -> int:
        return sum(self.ends(topics).values())

    def committed(self, group: str) -> dict[TopicPartition, int]:
        try:
            found = self._admin.list_group_offsets(group).get(group, {})
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return {}  # the coordinator is still being elected: nothing committed yet
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    def lag(self, group: str, topics: Iterable[str]) -> int:
        committed = self.committed(group)
        return sum(max(end - committed.get(tp, 0), 0) for tp, end in self.ends(topics).items())

    def committed_total(self, group: str, topics: Iterable[str]) -> int:
        wanted = set(topics)
        return sum(offset for tp, offset in self.committed(group).items() if tp.topic in wanted)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._consumer.close()
        self._admin.close()


@dataclass
class ReadRecord:
    topic: str
    timestamp_ms: int
    value: bytes


def read_range(bootstrap: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int],
               timeout: float = 120.0) -> Iterator[ReadRecord]:
    """The records between two sets of offsets (``start`` inclusive, ``end`` exclusive; missing start: 0)."""
    todo = {tp for tp, last in end.items() if last > start.get(tp, 0)}
    if not todo:
        return
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    try:
        consumer.assign(sorted(todo))
        for tp in todo:
            consumer.seek(tp, start.get(tp, 0))
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500, max_records=10_000).items():
                for r in records:
                    if r.offset < end[tp]:
                        yield ReadRecord(r.topic, r.timestamp, r.value)
                if consumer.position(tp) >= end[tp]:
                    todo.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close()
