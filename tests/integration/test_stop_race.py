"""An opt-out wins every race, on the real broker: 1,000 customers' STOP replies interleaved with marketing
sends to the same customers, through the real worker, SMS gateway and Twilio sandbox.

How a race is judged, exactly: before a marketing call the gateway's consent view catches up with the
broker, and the ledger entry of the call keeps the offset it caught up to (``consent_position``): every
record of the customer's ``customers.consent_state`` partition below it had been applied. A call broke
the promise iff that position is past the customer's opted-out snapshot: the view had the opt-out, and
called anyway. Time tells the rest: calls that reached the sandbox after the snapshot's timestamp are the
window the promise allows — checks that began before the opt-out was on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from connectors.gateways.consent_view import ConsentView, partition_for
from connectors.gateways.gateway import OPTED_OUT_AFTER_DECISION
from connectors.gateways.kafka_io import make_producer
from connectors.sandbox import twilio
from connectors.sandbox.server import start
from connectors.sandbox.twilio_scenario import SandboxScenario
from schemas.catalog import (
    CONSENT_STATE,
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_INTENTS,
    MESSAGE_OUTCOMES,
    TopicNames,
    ledger_topic,
)
from schemas.codec import codec_for, encode
from schemas.customers import ConsentSnapshot, ConsentState, CustomerProfile
from schemas.messages import (
    InboundMessage,
    MessageIntent,
    MessageOutcome,
    OutcomeReason,
    OutcomeStatus,
    SendLedgerEntry,
)
from schemas.types import Channel, Purpose
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import (
    Child,
    consume_until,
    http_ok,
    produce,
    wait_for_worker,
    wait_until,
)

pytestmark = pytest.mark.integration

CUSTOMERS = 1_000
INTENTS_PER_CUSTOMER = 2
GROUP = 25  # customers whose records are shuffled together: a customer's intents and STOP come close in time
# (share of the records, records a second): first a pace the gateway keeps up with, so its checks race the
# STOPs by milliseconds; then a burst, so commands queue up at the gateway while their STOPs are processed.
PACES = ((1 / 3, 40), (2 / 3, 600))
GATEWAY_RATE = 100  # sends a second (a gateway on a 2-core machine manages about half that: three acked writes each)
STORES_YAML = """\
defaults:
  quiet_hours: {enabled: false}
  frequency_caps: {enabled: false}
"""
SETTLED = (OutcomeStatus.SENT, OutcomeStatus.SUPPRESSED, OutcomeStatus.FAILED, OutcomeStatus.AMBIGUOUS)
BARRIER = "switchboard_consent_catch_up_seconds"
BARRIER_CHECKS = 300


@dataclass(frozen=True)
class Call:
    message_id: str
    at: dt.datetime  # when the sandbox received it


@dataclass(frozen=True)
class Observed:
    outcomes: list[MessageOutcome]
    ledger: list[ConsumerRecord]
    consent_state: list[ConsumerRecord]
    calls: list[Call]
    gateway_metrics: str


@dataclass(frozen=True)
class OptOut:
    """A customer's first snapshot with SMS marketing opted out: where it is, and when it was written."""

    partition: int
    offset: int
    at: dt.datetime


def test_an_opt_out_wins_every_race_even_against_sends_queued_at_the_gateway(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.worker.stores_file = tmp_path / "race-stores.yaml"  # quiet hours and caps out of the way
    settings.worker.stores_file.write_text(STORES_YAML)
    monkeypatch.setenv("SWITCHBOARD_SMS__RATE_PER_SECOND", str(GATEWAY_RATE))  # env_of passes no gateway rates
    monkeypatch.setenv("SWITCHBOARD_SMS__BURST", "1")
    create_topics(settings)
    now = dt.datetime.now(dt.timezone.utc)
    customers = [_customer(i, now) for i in range(CUSTOMERS)]
    intents = {c.customer_id: [_marketing(c.customer_id, now) for _ in range(INTENTS_PER_CUSTOMER)] for c in customers}
    customer_of = {i.message_id: i.customer_id for batch in intents.values() for i in batch}

    observed = asyncio.run(_race(settings, tmp_path, customers, _interleaved(random.Random(3), settings, intents, now),
                                 set(customer_of)))

    partitions = sorted({r.partition for r in observed.consent_state})
    assert all(r.partition == partition_for(r.key, range(settings.kafka.partitions)) for r in observed.consent_state), \
        "the gateways look for a customer's snapshots where the worker's producer does not put them"
    opt_outs = _opt_outs(observed.consent_state)
    assert set(opt_outs) == set(intents), "every STOP became an opted-out snapshot"
    stories = _stories(observed.outcomes)
    settled = {m: [o for o in stories[m] if o.status in SETTLED] for m in customer_of}
    assert all(len(s) == 1 and s[0].status in (OutcomeStatus.SENT, OutcomeStatus.SUPPRESSED)
               for s in settled.values()), Counter(tuple(o.status for o in s) for s in settled.values())
    suppressed = [s[0] for s in settled.values() if s[0].status == OutcomeStatus.SUPPRESSED]
    assert {o.reason for o in suppressed} <= {OutcomeReason.OPTED_OUT}, Counter(o.reason for o in suppressed)

    calls_per_message = Counter(c.message_id for c in observed.calls)
    sent = {m for m, s in settled.items() if s[0].status == OutcomeStatus.SENT}
    assert set(calls_per_message) == sent and max(calls_per_message.values(), default=1) == 1
    positions = _consent_positions(observed.ledger)
    unproven = [c.message_id for c in observed.calls if positions.get(c.message_id) is None]
    assert not unproven, f"{len(unproven)} provider calls without a consent position in the ledger"
    # The view had applied everything below the call's position: past the opt-out, it knew and called anyway.
    violations = [c for c in observed.calls if positions[c.message_id] > opt_outs[customer_of[c.message_id]].offset]

    late = [gap for c in observed.calls
            if (gap := (c.at - opt_outs[customer_of[c.message_id]].at) / dt.timedelta(milliseconds=1)) > 0]
    _print_table([
        ("customers", CUSTOMERS),
        ("marketing intents", len(customer_of)),
        ("STOP replies", len(opt_outs)),
        ("consent_state partitions / snapshots", f"{len(partitions)} / {len(observed.consent_state)}"),
        ("provider calls", len(observed.calls)),
        ("  checked before the STOP's snapshot was on the broker", len(observed.calls) - len(violations)),
        ("  checked after it: violations", len(violations)),
        ("suppressed by the worker (opted_out)", sum(o.channel is None for o in suppressed)),
        ("suppressed at the gateway (opted out after decided)",
         sum(o.channel is not None and o.detail == OPTED_OUT_AFTER_DECISION for o in suppressed)),
        ("calls reaching the sandbox after the snapshot's timestamp", len(late)),
        ("  largest such gap (the race window allowed)", f"{max(late, default=0):.1f} ms"),
        *_barrier_rows(observed.gateway_metrics),
    ], f"An opt-out wins every race (topics {settings.kafka.topic_prefix}*)")
    assert not violations, [(c.message_id, positions[c.message_id], opt_outs[customer_of[c.message_id]])
                            for c in violations[:5]]


def test_an_opt_out_the_broker_acknowledged_before_a_check_is_always_seen_by_it(settings: Settings) -> None:
    """The barrier's own promise, where a race is certain: the check starts the moment the broker acknowledges
    the opt-out, before the follower can have fetched it."""
    create_topics(settings)
    topic = TopicNames(settings.kafka.topic_prefix)(CONSENT_STATE)

    async def main() -> tuple[int, list[float], list[float]]:
        producer = make_producer(settings.kafka.bootstrap_servers, "stop-race-test")
        await producer.start()
        view = ConsentView(topic)
        follower = await view.restore(settings.kafka.bootstrap_servers, set(range(settings.kafka.partitions)))
        following = asyncio.create_task(view.follow(follower))
        missed, fresh, idle = 0, [], []
        try:
            for i in range(BARRIER_CHECKS):
                command = f.command(f"acked-{i}-{f.uid()[:8]}", purpose=Purpose.MARKETING)
                opted_out = ConsentSnapshot(customer_id=command.customer_id, store_id="store-1",
                                            slots={"sms:marketing": ConsentState.OPTED_OUT}, updated_at=f.NOW)
                await producer.send_and_wait(topic, key=command.customer_id.encode(), value=encode(opted_out))
                missed += not view.blocks(command)  # what following alone would have answered
                fresh.append(await _timed(view.catch_up(command.customer_id)))
                assert view.blocks(command), f"check {i}: the acknowledged opt-out was not seen"
                idle.append(await _timed(view.catch_up(command.customer_id)))  # nothing new: the bare round trip
        finally:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            await follower.stop()
            await view.close()
            await producer.stop()
        return missed, fresh, idle

    missed, fresh, idle = asyncio.run(main())
    print(f"\n{BARRIER_CHECKS} opt-outs each checked the moment the broker acknowledged it: all seen; following "
          f"alone would have missed {missed}. Barrier: {_ms(fresh)} right after a write, {_ms(idle)} with "
          "nothing new")


async def _timed(check) -> float:
    started = time.perf_counter()
    assert await check is not None, "the barrier timed out"
    return time.perf_counter() - started


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    return (f"p50 {1000 * ordered[len(ordered) // 2]:.2f} ms, p99 {1000 * ordered[int(len(ordered) * 0.99)]:.2f} ms,"
            f" mean {1000 * statistics.fmean(ordered):.2f} ms")


def _customer(i: int, now: dt.datetime) -> CustomerProfile:
    # Numbers end in 1: the sandbox fails those ending 0003/0005/0007.
    return f.profile(f"race-{i:04d}-{f.uid()[:8]}", locale="en", phone=f"+486{i:07d}1", whatsapp=None,
                     channel_preferences=[Channel.SMS], updated_at=now)


def _marketing(customer_id: str, now: dt.datetime) -> MessageIntent:
    return f.intent(customer_id, template="cart_reminder", purpose=Purpose.MARKETING, channels=[Channel.SMS],
                    variables={"first_name": "Ana", "cart_url": "https://shop.example/cart/1"},
                    trigger_received_at=now, created_at=now)


def _stop(customer_id: str, now: dt.datetime) -> InboundMessage:
    return InboundMessage(inbound_id=f.uid(), customer_id=customer_id, store_id="store-1", channel=Channel.SMS,
                          provider="twilio", provider_message_id="SM" + f.uid().replace("-", ""), text="STOP",
                          received_at=now)


def _interleaved(rng: random.Random, settings: Settings, intents: dict[str, list[MessageIntent]],
                 now: dt.datetime) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) to produce: each group's intents and STOPs shuffled together, so a customer's STOP
    falls before, between or after its intents, and close to them in time."""
    names, ids = TopicNames(settings.kafka.topic_prefix), list(intents)
    records = []
    for start_at in range(0, len(ids), GROUP):
        group = [(names(MESSAGE_INBOUND), c.encode(), encode(_stop(c, now))) for c in ids[start_at:start_at + GROUP]]
        group += [(names(MESSAGE_INTENTS), c.encode(), encode(i)) for c in ids[start_at:start_at + GROUP]
                  for i in intents[c]]
        rng.shuffle(group)
        records += group
    return records


async def _race(settings: Settings, logs: Path, customers: list[CustomerProfile],
                records: list[tuple[str, bytes, bytes]], message_ids: set[str]) -> Observed:
    names, bootstrap = TopicNames(settings.kafka.topic_prefix), settings.kafka.bootstrap_servers
    app = twilio.create_app(settings.sms.account_sid, settings.sms.auth_token.get_secret_value(),
                            SandboxScenario(fail_rate=0.0, callback_delay=0.05))
    sandbox = await start(app, "127.0.0.1", settings.sandbox.port)
    children: list[Child] = []
    try:
        children.append(worker := Child(["worker", "--loglevel", "warn"], settings, logs / "worker.log"))
        children.append(gateway := Child(["gateway", "sms"], settings, logs / "gateway.log"))
        await asyncio.to_thread(_subscribe, settings, customers)
        await asyncio.to_thread(wait_until, lambda: http_ok(f"{settings.sms.public_base_url}/health"), 60,
                                "gateway up", gateway)
        await asyncio.to_thread(_warm_up, settings, customers[0])
        await asyncio.to_thread(_produce_paced, bootstrap, records)
        outcomes = await asyncio.to_thread(
            consume_until, bootstrap, names(MESSAGE_OUTCOMES),
            lambda seen: message_ids <= {o.message_id for _, o in seen if o.status in SETTLED}, 120.0, MessageOutcome)
        assert worker.alive() and gateway.alive(), worker.output() + gateway.output()
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{settings.sms.admin_port}/metrics")).text
        return Observed(
            outcomes=[o for _, o in outcomes],
            ledger=await asyncio.to_thread(_read_all, bootstrap, names(ledger_topic(Channel.SMS))),
            consent_state=await asyncio.to_thread(_read_all, bootstrap, names(CONSENT_STATE)),
            calls=[Call(parse_qs(urlsplit(m["status_callback"]).query)["message_id"][0], m["date_created"])
                   for m in app[twilio.STATE].messages.values() if m["direction"] == "outbound-api"
                   and parse_qs(urlsplit(m["status_callback"]).query)["message_id"][0] in message_ids],
            gateway_metrics=metrics,
        )
    finally:
        for child in children:  # never leave a process behind, whatever failed
            child.stop()
        await sandbox.aclose()


def _subscribe(settings: Settings, customers: list[CustomerProfile]) -> None:
    """Profiles and checkout opt-ins to SMS marketing (a day old, so a STOP is newer), loaded by the worker."""
    names, bootstrap = TopicNames(settings.kafka.topic_prefix), settings.kafka.bootstrap_servers
    yesterday = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    produce(bootstrap, names(CUSTOMER_PROFILES), [(c.customer_id.encode(), encode(c)) for c in customers])
    produce(bootstrap, names(CUSTOMER_CONSENTS), [
        (c.customer_id.encode(),
         encode(f.consent(c.customer_id, Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING, at=yesterday)))
        for c in customers])
    wait_for_worker(settings, [names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS)], timeout=120.0)


def _warm_up(settings: Settings, customer: CustomerProfile) -> None:
    """One marketing send through worker, gateway and sandbox, so the race starts with every consumer group
    assigned and every connection open (it is not one of the race's intents)."""
    names, bootstrap = TopicNames(settings.kafka.topic_prefix), settings.kafka.bootstrap_servers
    intent = _marketing(customer.customer_id, dt.datetime.now(dt.timezone.utc))
    produce(bootstrap, names(MESSAGE_INTENTS), [(intent.customer_id.encode(), encode(intent))])
    consume_until(bootstrap, names(MESSAGE_OUTCOMES),
                  lambda seen: any(o.message_id == intent.message_id and o.status == OutcomeStatus.SENT
                                   for _, o in seen), 60.0, MessageOutcome)


def _produce_paced(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    """Produces the records part by part, at the paces of :data:`PACES`."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5)
    ends = [round(len(records) * sum(share for share, _ in PACES[:i + 1])) for i in range(len(PACES))]
    try:
        for (_, pace), start_at, end_at in zip(PACES, [0, *ends], ends):
            started = time.monotonic()
            for n, (topic, key, value) in enumerate(records[start_at:end_at], start=1):
                producer.send(topic, key=key, value=value)
                ahead = started + n / pace - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # the scenario's pace (a shop's traffic), not a wait for a result
        producer.flush()
    finally:
        producer.close()


def _read_all(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of ``topic`` up to its current end, with partition, offset and timestamp."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=500).values():
                records += batch
        return records
    finally:
        consumer.close()


def _opt_outs(records: list[ConsumerRecord]) -> dict[str, OptOut]:
    first: dict[str, OptOut] = {}
    for r in sorted(records, key=lambda r: r.offset):
        snapshot = codec_for(ConsentSnapshot).decode(r.value)
        if snapshot.opted_out(Channel.SMS, Purpose.MARKETING) and snapshot.customer_id not in first:
            at = dt.datetime.fromtimestamp(r.timestamp / 1000, dt.timezone.utc)
            first[snapshot.customer_id] = OptOut(r.partition, r.offset, at)
    return first


def _stories(outcomes: list[MessageOutcome]) -> dict[str, list[MessageOutcome]]:
    """Each message's outcomes, de-duplicated on outcome_id as a data team reads them."""
    unique: dict[str, dict[str, MessageOutcome]] = defaultdict(dict)
    for o in outcomes:
        unique[o.message_id][o.outcome_id] = o
    return defaultdict(list, {m: list(story.values()) for m, story in unique.items()})


def _consent_positions(records: list[ConsumerRecord]) -> dict[str, int | None]:
    """The consent position of each message's latest ledger record (carried from ``attempting``)."""
    latest: dict[str, int | None] = {}
    for r in sorted(records, key=lambda r: r.offset):
        if r.value is not None:
            latest[r.key.decode()] = codec_for(SendLedgerEntry).decode(r.value).consent_position
    return latest


def _barrier_rows(metrics_text: str) -> list[tuple[str, str]]:
    """The gateway's own measure of the barrier: count, mean and bucketed quantiles of caught-up checks."""
    samples = [s for family in text_string_to_metric_families(metrics_text) if family.name == BARRIER
               for s in family.samples if s.labels.get("result") == "caught_up"]
    count = next((s.value for s in samples if s.name == f"{BARRIER}_count"), 0)
    total = next((s.value for s in samples if s.name == f"{BARRIER}_sum"), 0)
    buckets = sorted((float(s.labels["le"]), s.value) for s in samples if s.name == f"{BARRIER}_bucket")

    def quantile(q: float) -> str:
        bound = next((le for le, n in buckets if n >= q * count), float("inf"))
        return f"≤ {bound * 1000:g} ms"

    timed_out = sum(s.value for family in text_string_to_metric_families(metrics_text) if family.name == BARRIER
                    for s in family.samples if s.name == f"{BARRIER}_count" and s.labels.get("result") == "timed_out")
    return [("read barriers (marketing checks)", f"{count:.0f}, {timed_out:.0f} timed out"),
            ("  mean / p50 / p99", f"{1000 * total / max(count, 1):.2f} ms / {quantile(0.5)} / {quantile(0.99)}")]


def _print_table(rows: list[tuple[str, object]], title: str) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{title}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>14}")
