"""Moving a worker's state from the table-per-part layout (before the core) to one record per customer.

Until the core, the worker kept each customer in eight tables (``profiles``, ``consents``,
``conversations``, ``in_flight``, ``scheduled``, ``sent``, ``journeys``, ``behaviour``), each with its own
changelog. The worker now keeps one ``customers`` table (streams/core/state.py). The ``erased``,
``subscribers``, ``stock`` and ``affinity`` tables keep their names and formats and need nothing.

:func:`migrate` runs when a worker starts: if the ``customers`` changelog is empty and the old changelogs
hold records, it reads the old ones to their end (the newest value per key, tombstones deleting) and writes
one state per customer onto the ``customers`` changelog, in the customer's partition; the worker then
recovers it like any state. The group's committed offsets on the input topics stay valid, so the worker goes
on where the old one stopped. Idempotent: once the new changelog has records, it does nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams.core.state import CustomerState
from streams.owner import partition_of
from streams.settings import Settings
from streams.topics import app_id, create_topics

logger = logging.getLogger(__name__)

OLD_PARTS = ("profiles", "consents", "conversations", "in_flight", "scheduled", "sent", "journeys", "behaviour")


def _read_changelog(consumer: KafkaConsumer, topic: str, timeout: float = 600.0) -> dict[bytes, bytes | None]:
    """The newest value per key of a compacted topic (None where the newest is a tombstone)."""
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    ends = {tp: end for tp, end in consumer.end_offsets(partitions).items() if end > 0}
    latest: dict[bytes, bytes | None] = {}
    if not ends:
        return latest
    consumer.assign(list(ends))
    consumer.seek_to_beginning(*ends)
    deadline = time.monotonic() + timeout
    remaining = set(ends)
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: could not read the old changelog to its end")
        for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
            for record in batch:
                if record.offset < ends[tp] and record.key is not None:
                    latest[record.key] = record.value
        remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
    return latest


def migrate(settings: Settings) -> int:
    """Writes the old tables' state as ``customers`` records if that changelog is still empty; returns how
    many customers it wrote (0: nothing to do)."""
    stem = app_id(settings)
    servers = settings.kafka.bootstrap_servers.split(",")
    consumer = KafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False)
    try:
        topics = consumer.topics()
        target = f"{stem}-customers-changelog"
        if target in topics:
            partitions = [TopicPartition(target, p) for p in consumer.partitions_for_topic(target) or ()]
            if any(end > 0 for end in consumer.end_offsets(partitions).values()):
                return 0  # already the new layout
        old = {part: f"{stem}-{part}-changelog" for part in OLD_PARTS if f"{stem}-{part}-changelog" in topics}
        if not old:
            return 0
        if target not in topics:
            create_topics(settings)
        parts = {part: _read_changelog(consumer, topic) for part, topic in old.items()}
    finally:
        consumer.close()
    keys = {key for values in parts.values() for key, value in values.items() if value is not None}
    if not keys:
        return 0
    producer = KafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True)
    try:
        for key in sorted(keys):
            record: dict = {"v": 1}
            profile = parts.get("profiles", {}).get(key)
            if profile:
                record["profile"] = base64.b64encode(profile).decode("ascii")
            for part in OLD_PARTS[1:]:
                value = parts.get(part, {}).get(key)
                if value is not None:
                    record[part] = json.loads(value)
            state = CustomerState.from_json(key.decode(), record)  # checks the record before it is written
            if not state.is_empty():
                producer.send(target, key=key, value=json.dumps(state.as_json()).encode(),
                              partition=partition_of(key, settings.kafka.partitions))
        producer.flush()
    finally:
        producer.close()
    logger.info("state migrated: %d customers from the old per-part tables onto %s", len(keys), target)
    return len(keys)
