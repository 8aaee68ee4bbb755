"""Specs for the owner of a worker's customers (streams/owner.py): batches through the core, the order in
which records reach the producer, timers, campaign walks. The stores and the producer are the owner's own
seams (``Store``, ``Sink``), recorded here in memory; the same owner runs on the real broker in
tests/integration (worker, campaign, migration) and tests/chaos."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from prometheus_client import CollectorRegistry

from schemas.catalog import TopicNames
from schemas.codec import encode
from schemas.customers import ConsentState, ErasureRequest
from schemas.messages import CampaignLaunch, OutcomeStatus
from schemas.types import Channel, Purpose
from streams import core, publish
from streams.clock import VirtualClock
from streams.journeys.loader import load_dir
from streams.metrics import Metrics
from streams.owner import CustomerOwner, Item, Source
from streams.stores import StoreDirectory
from tests import factories as f

NOW = f.NOW


class Recorder:
    """The producer as the owner sees it: what was handed over, and where each flush fell."""

    def __init__(self) -> None:
        self.log: list[tuple[str, bytes | None]] = []  # (topic, key), and ("flush", None)

    def send(self, topic, key, value, headers=None, partition=None) -> None:  # noqa: ANN001
        self.log.append((topic, key))

    async def flush(self) -> None:
        self.log.append(("flush", None))


class Table:
    def __init__(self, sink: Recorder, name: str) -> None:
        self.data: dict = {}
        self.sink, self.name = sink, name

    def get(self, key):  # noqa: ANN001, ANN201
        return self.data.get(key)

    def cache(self, key, value) -> None:  # noqa: ANN001
        self.data[key] = value

    def put(self, key, value, partition) -> None:  # noqa: ANN001
        self.data[key] = value
        self.sink.send(f"{self.name}-changelog", key, None)

    def delete(self, key, partition) -> None:  # noqa: ANN001
        self.data.pop(key, None)
        self.sink.send(f"{self.name}-changelog", key, None)

    def keys(self):  # noqa: ANN201
        return list(self.data)


def owner(clock: VirtualClock | None = None) -> CustomerOwner:
    sink = Recorder()
    erased = Table(sink, "erased")
    ctx = core.Context(clock=clock or VirtualClock(NOW), journeys=load_dir(),
                       stores=StoreDirectory({"quiet_hours": {"enabled": True}}),
                       is_erased=lambda key: erased.get(key) is not None)
    return CustomerOwner(ctx, Table(sink, "customers"), erased, Table(sink, "walks"), sink, TopicNames(""),
                         Metrics(CollectorRegistry()), partitions=6, receipt_timeouts={"sms": 900.0})


def known(customer_id: str, marketing: bool = False) -> list[Item]:
    profile = f.profile(customer_id, channel_preferences=[Channel.SMS])
    items = [Item(customer_id, core.ProfileInput(profile, encode(profile))),
             Item(customer_id, core.ConsentInput(f.consent(customer_id, Channel.SMS, ConsentState.OPTED_IN), NOW))]
    if marketing:
        items.append(Item(customer_id, core.ConsentInput(
            f.consent(customer_id, Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING), NOW)))
    return items


def run(coroutine):  # noqa: ANN001, ANN201
    return asyncio.run(coroutine)


def test_a_batchs_effects_are_acknowledged_before_the_states_that_record_them():
    o = owner()
    run(o.apply([*known("c1"), Item("c1", core.EventInput(f.shipped("c1"), NOW))]))
    log = o.sink.log
    first_flush = log.index(("flush", None))
    assert ("messages.commands.sms", b"c1") in log[:first_flush]
    assert ("customers-changelog", b"c1") in log[first_flush:]
    assert log.count(("customers-changelog", b"c1")) == 1  # three inputs, one state write
    assert log[-1] == ("flush", None)  # the states too, before the batch's offsets can be committed


def test_an_input_whose_step_fails_is_dead_lettered_and_the_rest_go_on():
    o = owner()
    run(o.apply(known("c1")))
    now_ms = int(NOW.timestamp() * 1000)
    broken = o.state_of("c1").updated(in_flight={"m1": {"intent": "Z2FyYmFnZQ==", "tried": ["sms"], "at": now_ms}})
    o.customers.cache(b"c1", broken)  # a message in flight whose stored intent cannot be read back
    failed = publish.for_command(f.command("c1", message_id="m1"), OutcomeStatus.FAILED, NOW, provider="twilio")
    source = Source("messages.outcomes", 2, 41, b"c1", encode(failed))
    o.sink.log.clear()
    run(o.apply([Item("c1", core.OutcomeInput(failed), source), Item("c1", core.EventInput(f.shipped("c1"), NOW))]))
    topics = [t for t, _ in o.sink.log]
    assert topics.count("messages.outcomes.dlq") == 1
    assert "messages.commands.sms" in topics  # the next input went on, from the state before the failure
    assert o.state_of("c1").in_flight["m1"]["intent"] == "Z2FyYmFnZQ=="


def test_an_erasure_is_seen_by_the_same_batchs_later_inputs():
    o = owner()
    request = ErasureRequest(request_id="r1", customer_id="c1", store_id="store-1", requested_at=NOW)
    run(o.apply([*known("c1"), Item("c1", core.ErasureInput(request)),
                 Item("c1", core.EventInput(f.shipped("c1"), NOW))]))
    topics = [t for t, _ in o.sink.log]
    assert "messages.commands.sms" not in topics
    assert o.customers.get(b"c1") is None and o.erased.data


def test_a_deferred_send_fires_from_the_index_once_when_due():
    clock = VirtualClock(dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.timezone.utc))  # midnight in Warsaw
    o = owner(clock)
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=clock.now(),
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    run(o.apply([*known("c1", marketing=True), Item("c1", core.CampaignInput(launch))]))
    assert run(o.fire_due()) == 0
    clock.advance(o.index.next_due() - clock.now())
    before = len(o.sink.log)
    assert run(o.fire_due()) == 1
    assert ("messages.commands.sms.bulk", b"c1") in o.sink.log[before:]
    assert run(o.fire_due()) == 0
    o.rebuild()  # a restart rebuilds the index from the states: the send is not waiting any more
    assert all(t.kind != core.SCHEDULED_SEND for _, t in o.index.pop_due(clock.now() + dt.timedelta(days=9)))


def test_a_campaign_walk_reaches_each_customer_of_its_partition_once_and_resumes_after_a_restart():
    o = owner()
    customers = [f"c{n}" for n in range(40)]
    run(o.apply([item for c in customers for item in known(c, marketing=True)]))
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=NOW,
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    for partition in range(6):
        run(o.launch(launch, partition))
    run(o.launch(launch, 0))  # a replayed launch
    assert run(o.advance_campaigns(slice_size=3)) == 3
    o.rebuild()  # a restart: the walks come back from their saved progress
    while run(o.advance_campaigns(slice_size=3)):
        pass
    sent = [k for t, k in o.sink.log if t == "messages.commands.sms.bulk"]
    assert sorted(sent) == sorted(c.encode() for c in customers)
    assert all(w["done"] for w in o.walks.data.values())


def test_states_held_as_their_changelog_bytes_are_decoded_when_touched_and_their_timers_rebuilt():
    """A compact store (the worker's customers table) holds each state as its record's bytes; a restart
    finds the deferred send in them, and the next input decodes the state and goes on from it."""
    clock = VirtualClock(dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.timezone.utc))  # midnight in Warsaw
    o = owner(clock)
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=clock.now(),
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    run(o.apply([*known("c1", marketing=True), *known("c2"), Item("c1", core.CampaignInput(launch))]))
    due = o.index.next_due()
    for key, state in list(o.customers.data.items()):  # as recovered from the changelog, never decoded
        o.customers.data[key] = json.dumps(state.as_json()).encode()
    o.rebuild()
    assert o.index.next_due() == due  # c1's deferred send, found in its bytes; c2 has no timed part to decode
    assert isinstance(o.customers.data[b"c2"], bytes)
    run(o.apply([Item("c1", core.EventInput(f.shipped("c1"), clock.now()))]))
    assert o.state_of("c1").scheduled and o.state_of("c1").consents["sms:marketing"]["state"] == "opted_in"
