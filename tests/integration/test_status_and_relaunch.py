"""Specs, on the real broker, for ``switchboard status`` (how far the worker's consumer group is behind, per
input topic) and for ``switchboard campaign`` refusing a launch whose id already ran, with the way out."""

from __future__ import annotations

import os
import subprocess
import sys

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from connectors.producer import EventProducer
from connectors.status import GroupLag
from schemas.catalog import CAMPAIGN_LAUNCHES, CUSTOMER_PROFILES, STOREFRONT_EVENTS, TopicNames
from streams.settings import Settings
from streams.topics import app_id, create_topics
from tests import factories as f
from tests.support import ROOT, env_of

CAMPAIGN = (ROOT / "deploy" / "campaigns" / "flash30.yaml").read_text(encoding="utf-8")


def switchboard(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connectors.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **env_of(settings)}, timeout=120)


def commit_everything(settings: Settings, group_id: str, topic: str) -> None:
    """What a worker that has read ``topic`` to its end leaves behind: the group's offsets at the end."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","), group_id=group_id,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in partitions})
    finally:
        consumer.close()


def row_of(output: str, topic: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [topic])


def test_status_prints_the_workers_lag_per_input_topic_and_waits_until_it_caught_up(settings: Settings) -> None:
    create_topics(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix) as producer:
        for n in range(7):
            producer.send(f.profile(f"cust-{n}"))
        producer.send(f.shipped("cust-1"))
        producer.flush()

    behind = switchboard(settings, "status")
    assert behind.returncode == 0, behind.stderr
    assert f"consumer group {app_id(settings)}: 8 records behind" in behind.stdout
    assert row_of(behind.stdout, names(CUSTOMER_PROFILES)) == [names(CUSTOMER_PROFILES), "3", "0", "7", "7"]
    assert row_of(behind.stdout, names(STOREFRONT_EVENTS)) == [names(STOREFRONT_EVENTS), "3", "0", "1", "1"]
    timed_out = switchboard(settings, "status", "--wait", "--timeout", "0")
    assert timed_out.returncode == 1 and "still 8 records behind" in timed_out.stderr

    commit_everything(settings, app_id(settings), names(CUSTOMER_PROFILES))
    with GroupLag(settings.kafka.bootstrap_servers) as lag:
        rows = {row.topic: row for row in lag.topics(app_id(settings), [names(CUSTOMER_PROFILES),
                                                                         names(STOREFRONT_EVENTS)])}
    assert (rows[names(CUSTOMER_PROFILES)].committed, rows[names(CUSTOMER_PROFILES)].lag) == (7, 0)
    assert rows[names(STOREFRONT_EVENTS)].lag == 1

    commit_everything(settings, app_id(settings), names(STOREFRONT_EVENTS))
    caught_up = switchboard(settings, "status", "--wait", "--timeout", "30")
    assert caught_up.returncode == 0, caught_up.stderr
    assert f"consumer group {app_id(settings)}: caught up" in caught_up.stdout
    assert row_of(caught_up.stdout, names(CUSTOMER_PROFILES))[-1] == "0"


def test_a_campaign_that_already_ran_is_not_launched_again_and_the_user_is_told_how_to_run_it(
        settings: Settings, tmp_path) -> None:
    create_topics(settings)
    campaign = tmp_path / "flash30.yaml"
    campaign.write_text(CAMPAIGN, encoding="utf-8")
    launches = TopicNames(settings.kafka.topic_prefix)(CAMPAIGN_LAUNCHES)

    first = switchboard(settings, "campaign", str(campaign))
    assert first.returncode == 0, first.stderr
    assert "campaign flash30 launched: run 1" in first.stdout and "already" not in first.stderr

    again = switchboard(settings, "campaign", str(campaign))
    assert again.returncode == 1
    assert "was already launched" in again.stderr
    assert f"switchboard campaign {campaign} --run 2" in again.stderr
    assert launch_count(settings, launches) == 1  # refused before anything was written

    second = switchboard(settings, "campaign", str(campaign), "--run", "2")
    assert second.returncode == 0, second.stderr
    assert id_in(second.stdout) != id_in(first.stdout)
    third = switchboard(settings, "campaign", str(campaign), "--run", "2")
    assert third.returncode == 1 and "--run 3" in third.stderr

    forced = switchboard(settings, "campaign", str(campaign), "--again")
    assert forced.returncode == 0, forced.stderr
    assert "was already launched" in forced.stderr and id_in(forced.stdout) == id_in(first.stdout)
    assert launch_count(settings, launches) == 3


def id_in(output: str) -> str:
    return output.split(" id ", 1)[1].split(",", 1)[0]


def launch_count(settings: Settings, topic: str) -> int:
    """Launches written so far: each is one record on every partition of the topic."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","), group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values()) // len(partitions)
    finally:
        consumer.close()
