"""Creating the catalog's topics on a cluster (idempotent). Nothing else creates topics.

The worker's own topics (its tables' changelogs and Faust's assignor topic) are created here too,
with the partition count of the topics they shadow, before any worker starts: the broker never
auto-creates a topic and Faust is not left to race for them.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.catalog import CATALOG, TopicNames
from streams.settings import Settings

# The worker's tables; each has a compacted changelog.
TABLES = ("customers", "erased", "campaign_walks", "subscribers", "stock", "affinity")

logger = logging.getLogger(__name__)


def app_id(settings: Settings) -> str:
    """The Faust app id, which is also its consumer group and the stem of its internal topics."""
    return f"{settings.kafka.topic_prefix}{settings.worker.app_id}"


def worker_topics(settings: Settings) -> list[NewTopic]:
    kafka, stem = settings.kafka, app_id(settings)
    compacted = {"cleanup.policy": "compact"}
    return [
        *(NewTopic(f"{stem}-{table}-changelog", kafka.partitions, kafka.replication_factor, topic_configs=compacted)
          for table in TABLES),
        NewTopic(f"{stem}-__assignor-__leader", 1, kafka.replication_factor, topic_configs=compacted),
    ]


def _await_leaders(admin: KafkaAdminClient, topics: list[str], timeout: float = 60.0) -> None:
    """Until every partition of ``topics`` has a leader: a producer writing to a topic created a moment ago
    otherwise meets NotLeaderForPartition and has to lean on its retries."""
    deadline = time.monotonic() + timeout
    while topics:
        try:
            described = admin.describe_topics(topics)
        except KafkaError:
            described = []
        ready = {d["name"] for d in described if not d.get("error_code") and d.get("partitions")
                 and all(p.get("leader_id", -1) not in (None, -1) for p in d["partitions"])}
        topics = [t for t in topics if t not in ready]
        if topics and time.monotonic() > deadline:
            raise TimeoutError(f"{len(topics)} new topics still have partitions without a leader")
        if topics:
            time.sleep(0.2)  # polling the broker's metadata


def create_topics(settings: Settings) -> list[str]:
    """Creates every catalog and worker topic that is missing; returns the names it created."""
    kafka = settings.kafka
    names = TopicNames(kafka.topic_prefix)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers.split(","), client_id="switchboard-admin")
    try:
        existing = set(admin.list_topics())
        catalog = [NewTopic(names(t.name), kafka.partitions, kafka.replication_factor, topic_configs=t.config())
                   for t in CATALOG]
        wanted = [t for t in catalog + worker_topics(settings) if t.name not in existing]
        if wanted:
            try:
                admin.create_topics(wanted, timeout_ms=30_000)
            except TopicAlreadyExistsError:  # a concurrent creator won the race: fine
                pass
        created = [t.name for t in wanted]
        _await_leaders(admin, [t.name for t in wanted])
        logger.info("topics: %d created, %d already there", len(created), len(existing & {t.name for t in catalog}))
        return created
    finally:
        admin.close()


def group_lag(settings: Settings, group_id: str, topics: list[str]) -> int:
    """Records on ``topics`` the consumer group has not committed yet (all of them if it never committed)."""
    servers = settings.kafka.bootstrap_servers.split(",")
    admin = KafkaAdminClient(bootstrap_servers=servers)
    consumer = KafkaConsumer(bootstrap_servers=servers)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = consumer.end_offsets(partitions)
        try:
            committed = admin.list_group_offsets(group_id).get(group_id, {})
        except KafkaError as exc:
            if not exc.retriable:
                raise
            committed = {}  # e.g. the group coordinator is still being elected: nothing committed yet
        return sum(max(ends[tp] - (committed[tp].offset if tp in committed else 0), 0) for tp in partitions)
    finally:
        consumer.close()
        admin.close()
