"""A worker with state kept in the layout from before the core (a table per part) starts with that state:
streams/migrate.py moves it onto the ``customers`` changelog, and the worker decides with it."""

from __future__ import annotations

import json

import pytest

from schemas.catalog import STOREFRONT_EVENTS, TopicNames, commands_topic
from schemas.codec import encode
from schemas.customers import ConsentState
from schemas.messages import SendCommand
from schemas.types import Channel, Purpose
from streams import consent
from streams.core import CustomerState
from streams.journeys.engine import message_id as journey_message_id
from streams.migrate import migrate
from streams.owner import partition_of
from streams.topics import app_id
from tests import factories as f
from tests.chaos.scenarios import read_topics
from tests.support import Child, consume_until, produce

pytestmark = pytest.mark.integration


def _old_layout(settings, customers: dict) -> None:
    """The old worker's changelogs: profiles as raw Avro, the other parts as JSON; a tombstone for one."""
    from kafka.admin import KafkaAdminClient, NewTopic

    stem, servers = app_id(settings), settings.kafka.bootstrap_servers
    admin = KafkaAdminClient(bootstrap_servers=servers.split(","))
    try:
        admin.create_topics([NewTopic(f"{stem}-{part}-changelog", settings.kafka.partitions, 1,
                                      topic_configs={"cleanup.policy": "compact"})
                             for part in ("profiles", "consents", "journeys")])
    finally:
        admin.close()
    for customer_id, (profile, consents) in customers.items():
        key = customer_id.encode()
        produce(servers, f"{stem}-profiles-changelog", [(key, encode(profile))])
        produce(servers, f"{stem}-consents-changelog", [(key, json.dumps(consents).encode())])
    produce(servers, f"{stem}-journeys-changelog", [(b"gone", json.dumps({"entered": {"x": 1}}).encode()),
                                                   (b"gone", None)])


def test_old_state_is_moved_once_and_the_worker_decides_with_it(settings, tmp_path) -> None:
    ana = f.profile(channel_preferences=[Channel.SMS])
    consents = consent.fold(None, f.consent(ana.customer_id, Channel.SMS, ConsentState.OPTED_IN))
    _old_layout(settings, {ana.customer_id: (ana, consents)})

    assert migrate(settings) == 1
    assert migrate(settings) == 0  # the new layout has records now: nothing more to do
    records = read_topics(settings.kafka.bootstrap_servers, [f"{app_id(settings)}-customers-changelog"])
    [record] = records
    assert record.key == ana.customer_id.encode()
    assert record.partition == partition_of(record.key, settings.kafka.partitions)
    state = CustomerState.from_json(ana.customer_id, json.loads(record.value))
    assert state.profile == ana and state.consents == consents

    names = TopicNames(settings.kafka.topic_prefix)
    child = Child(["worker", "--loglevel", "warn"], settings, tmp_path / "worker.log")
    try:
        shipped = f.shipped(ana.customer_id)
        produce(settings.kafka.bootstrap_servers, names(STOREFRONT_EVENTS), [(ana.customer_id.encode(), encode(shipped))])
        wanted = journey_message_id(shipped.event_id, "shipping_update", "notify")
        found = consume_until(settings.kafka.bootstrap_servers, names(commands_topic(Channel.SMS, Purpose.TRANSACTIONAL)),
                              lambda seen: any(c.message_id == wanted for _, c in seen), model=SendCommand,
                              timeout=120)
        [command] = [c for _, c in found if c.message_id == wanted]
        assert command.to == ana.phone  # the profile came through the migration: the worker knew the number
    finally:
        assert child.stop() in (0, -15), child.output()
