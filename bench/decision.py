"""The decision code alone: the worker's work for a storefront event in a plain loop, no Kafka, no faust.

:func:`measure_decision` times a :data:`DecisionLoop` over the bench's events (the workload's mix, its
customers' profiles and folded consents) in CPU time of this thread, several repetitions, each from
fresh state; it reports the minimum and the median in µs per event. The loop is made by a factory
(``make_loop``): :func:`core_path` is the worker's path (the core's step and the owner's hand-over);
:func:`previous_path` is the worker's path before the core, kept to give the ratio in the same run.

What :func:`previous_path` does per event, as the worker's handlers did (``on_event``, ``apply_journeys``,
``decide_and_send``, ``on_intent``, ``count_copurchases``), with dicts for the tables:

- decode the StorefrontEvent (Avro + pydantic), count it, check the erasure key (HMAC);
- the journey context (profile decoded, zone resolved, behaviour's SKUs), ``journey_engine.on_event``;
- co-purchases of a placed order encoded and folded into the affinity dict (what ``count_copurchases``
  does on the way back), the behaviour summary;
- each intent encoded (messages.intents) and decoded again (``route_messages``), ``policy.decide`` with
  the profile decoded again and the folded consents, the in_flight / sent updates, the command encoded;
  suppressions and holdouts as encoded outcomes;
- every table value written serialized as JSON, as its changelog record is.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from faust.serializers import codecs
from prometheus_client import CollectorRegistry

from bench.worker import THROUGHPUT_STORES
from bench.workload import Record, Workload
from schemas.catalog import TopicNames
from schemas.codec import codec_for, encode
from schemas.customers import CustomerProfile
from schemas.events import StorefrontEvent
from schemas.messages import MessageIntent, OutcomeReason
from schemas.types import Purpose
from streams import affinity, campaigns, core, erasure, fallback, policy, publish, quiet_hours
from streams.clock import WallClock
from streams.journeys import engine as journey_engine
from streams.journeys.loader import load_dir as load_journeys
from streams.metrics import Metrics
from streams.owner import CustomerOwner
from streams.settings import Settings
from streams.stores import StoreDirectory

DecisionLoop = Callable[[bytes, bytes], Counter]
"""One storefront event (key, Avro value) in, what it produced out (``"command:sms"``, ``"suppressed:..."``)."""

LoopFactory = Callable[[Workload], DecisionLoop]
"""Builds a loop with fresh state for the workload's customers (called outside the timed part)."""


@dataclass
class DecisionCost:
    events: int  # per repetition
    repetitions: int
    us_per_event: list[float]  # CPU µs per event, one per repetition
    produced: dict[str, int] = field(default_factory=dict)  # what one repetition decided
    path: str = ""

    @property
    def minimum(self) -> float:
        return min(self.us_per_event)

    @property
    def median(self) -> float:
        return statistics.median(self.us_per_event)

    def as_json(self) -> dict:
        return {"us_per_event": round(self.median, 1), "us_per_event_min": round(self.minimum, 1),
                "us_per_event_median": round(self.median, 1),
                "repetitions_us": [round(x, 1) for x in self.us_per_event], "events": self.events,
                "repetitions": self.repetitions, "produced": self.produced,
                "outputs_per_event": round(sum(self.produced.values()) / max(self.events, 1), 3), "path": self.path}


def measure_decision(workload: Workload, events: int = 5000, repetitions: int = 5,
                     make_loop: LoopFactory | None = None,
                     progress: Callable[[int], None] = lambda n: None) -> DecisionCost:
    """CPU µs per event of ``make_loop``'s loop (default: :func:`todays_path`) over the workload's first
    ``events`` events, ``repetitions`` times, each repetition from fresh state."""
    make_loop = make_loop or core_path
    chosen: Sequence[Record] = workload.events[:events]
    costs: list[float] = []
    produced: Counter = Counter()
    for _ in range(repetitions):
        loop = make_loop(workload)
        produced = Counter()
        started = time.thread_time()  # this thread only: the progress bar's refresh thread is not counted
        for n, (key, value) in enumerate(chosen, 1):
            produced.update(loop(key, value))
            if n % 500 == 0:
                progress(500)
        costs.append(1e6 * (time.thread_time() - started) / max(len(chosen), 1))
        progress(len(chosen) % 500)
    return DecisionCost(len(chosen), repetitions, costs, dict(sorted(produced.items())),
                        getattr(make_loop, "__name__", str(make_loop)))


class _CountingSink:
    """The owner's producer, counting what it is handed (by topic's last part)."""

    def __init__(self) -> None:
        self.out: Counter = Counter()

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers=None, partition=None) -> None:  # noqa: ANN001
        self.out[topic.rsplit(".", 2)[-2] if ".commands." in topic else topic.rsplit(".", 1)[-1]] += 1

    async def flush(self) -> None:
        return None


class _JsonStore:
    """A table as the owner writes it, the changelog's JSON serialization included. Like the worker's customers
    table (``streams/app.py`` ``CompactTableStore``) it holds each value as its changelog record's bytes, and the
    values decoded since (the hot ones; the loop is too short to evict any), so a customer's first touch pays for
    decoding its state, as in the worker."""

    def __init__(self, values: dict[bytes, object] | None = None) -> None:
        self.data = dict(values or {})
        self.hot: dict[bytes, object] = {}
        self.dumps = codecs.get_codec("json").dumps

    def get(self, key: bytes) -> object:
        found = self.hot.get(key)
        return found if found is not None else self.data.get(key)

    def cache(self, key: bytes, value: object) -> None:
        self.hot[key] = value

    def put(self, key: bytes, value: object, partition: int) -> None:
        self.data[key] = self.dumps(value.as_json() if isinstance(value, core.CustomerState) else value)
        self.hot[key] = value

    def delete(self, key: bytes, partition: int) -> None:
        self.data.pop(key, None)

    def keys(self) -> list[bytes]:
        return list(self.data)


def core_path(workload: Workload) -> DecisionLoop:
    """The worker's path today for one storefront event: the record decoded into an input, the core's step
    (streams/core), every effect encoded and counted as the owner hands it to the producer
    (``CustomerOwner._records`` and ``_account``), the state written once with its changelog's JSON."""
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:  # the bench worker's store rules: no quiet hours, no caps
        rules = Path(tmp) / "stores.yaml"
        rules.write_text(yaml.safe_dump(THROUGHPUT_STORES), encoding="utf-8")
        stores = StoreDirectory.load(rules)
    customers = _JsonStore({entry.key: entry.state_json() for entry in workload.tables})
    ctx = core.Context(clock=WallClock(), journeys=load_journeys(settings.worker.journeys_dir), stores=stores,
                       policy=policy.PolicyConfig(default_country=settings.worker.default_country))
    sink = _CountingSink()
    owner = CustomerOwner(ctx, customers, _JsonStore(), _JsonStore(), sink, TopicNames(""),
                          Metrics(CollectorRegistry()), 6, settings.worker.receipt_timeouts)
    erased: list = []

    def step(key: bytes, value: bytes) -> Counter:
        sink.out = Counter()
        event = codec_for(StorefrontEvent).decode(value)
        if event.customer_id is None:
            return sink.out
        customer_id = event.customer_id
        done = core.step(owner.state_of(customer_id), core.EventInput(event, event.occurred_at), ctx, customer_id)
        for effect in done.effects:
            for record in owner._records(customer_id, effect):
                sink.send(*record)
            owner._account(customer_id, effect, erased)
        if done.state is not None:
            customers.put(key, done.state, 0)
            done.state.timers(settings.worker.receipt_timeouts)  # what re-arming the due-time index reads
        return sink.out

    return step


def previous_path(workload: Workload) -> DecisionLoop:
    """The decision path of the worker before the core (its ``streams/app.py`` handlers, for comparison in
    the same run): an event's intents published and read back, one table per part, tables as dicts."""
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:  # the bench worker's store rules: no quiet hours, no caps
        rules = Path(tmp) / "stores.yaml"
        rules.write_text(yaml.safe_dump(THROUGHPUT_STORES), encoding="utf-8")
        stores = StoreDirectory.load(rules)
    journeys = load_journeys(settings.worker.journeys_dir)
    coupon_secret = settings.worker.coupon_key.get_secret_value().encode()
    erasure_secret = settings.worker.erasure_key.get_secret_value().encode()
    config = policy.PolicyConfig(default_country=settings.worker.default_country,
                                 smart_encoding=settings.worker.smart_encoding)
    metrics = Metrics(CollectorRegistry())
    json = codecs.get_codec("json")
    profiles = {entry.key: entry.profile for entry in workload.tables}  # raw Avro, as the profiles table
    consents = {entry.key: json.loads(entry.consents) for entry in workload.tables}
    journey_state: dict[bytes, dict] = {}
    behaviour: dict[bytes, dict] = {}
    affinities: dict[bytes, dict] = {}
    in_flight: dict[bytes, dict] = {}
    sent: dict[bytes, dict] = {}
    erased: dict[str, dict] = {}
    conversations: dict[bytes, dict] = {}

    def write(table: dict, key: bytes, value: dict) -> None:
        table[key] = value
        json.dumps(value)  # the changelog record faust writes for it

    def profile_of(key: bytes) -> CustomerProfile | None:
        raw = profiles.get(key)
        return codec_for(CustomerProfile).decode(raw) if raw else None

    def decide(key: bytes, intent_bytes: bytes, now: dt.datetime, out: Counter) -> None:
        intent = codec_for(MessageIntent).decode(intent_bytes)  # route_messages reads it back
        if erasure.suppression_key(erasure_secret, intent.customer_id) in erased:
            return
        store = stores(intent.store_id)
        decision = policy.decide(intent, profile_of(key), consents.get(key), now, config,
                                 conversations.get(key), store, sent.get(key))
        match decision:
            case policy.Send(command=command):
                write(in_flight, key, fallback.remember(in_flight.get(key), command.message_id, intent_bytes,
                                                        command.channel, now))
                if command.purpose == Purpose.MARKETING:
                    write(sent, key, policy.record_sent(sent.get(key), intent, store, now))
                encode(command)
                metrics.commands.labels(command.channel).inc()
                out[f"command:{command.channel}"] += 1
            case policy.Suppress(reason=reason, detail=detail):
                encode(publish.suppressed(intent, reason, detail, now))
                out[f"suppressed:{reason}"] += 1
            case policy.Defer(until=until, reason=reason, detail=detail):
                encode(publish.scheduled(intent, until, reason, detail, now))
                out[f"deferred:{reason}"] += 1

    def step(key: bytes, value: bytes) -> Counter:
        out: Counter = Counter()
        event = codec_for(StorefrontEvent).decode(value)
        metrics.events_in.labels(event.event_type).inc()
        if event.customer_id is None:
            return out
        now = dt.datetime.now(dt.UTC)
        store = stores(event.store_id)
        profile = profile_of(key)
        zone = quiet_hours.resolve_zone(profile.time_zone if profile else None,
                                        (profile.phone or profile.whatsapp) if profile else None, store.time_zone)
        store_id = event.store_id
        context = journey_engine.Context(
            journeys=journeys, now=now, zone=zone, coupon_secret=coupon_secret,
            time_scale=settings.worker.journey_time_scale,
            affinity_lookup=lambda sku: affinities.get(affinity.key(store_id, sku).encode()),
            bought=frozenset((behaviour.get(key) or {}).get("skus", [])), product_url=store.product_url)
        result = journey_engine.on_event(journey_state.get(key), event, now, context)
        if erasure.suppression_key(erasure_secret, key.decode()) in erased:
            return out
        for record in affinity.copurchases(event):
            at = affinity.key(record.store_id, record.sku).encode()
            encode(record)
            after = affinity.fold(affinities.get(at), record)
            if after != affinities.get(at):
                write(affinities, at, after)
        summary = campaigns.remember(behaviour.get(key), event)
        if summary is not None:
            write(behaviour, key, summary)
        for intent in result.intents:
            metrics.intents.labels(intent.purpose).inc()
            decide(key, encode(intent), now, out)
        for intent in result.held_out:
            encode(publish.suppressed(intent, OutcomeReason.HOLDOUT, "in the experiment's holdout group", now))
            out["suppressed:holdout"] += 1
        for skipped in result.suppressed:
            encode(publish.suppressed(skipped.intent, skipped.reason, skipped.detail, now))
            out[f"suppressed:{skipped.reason}"] += 1
        if result.state.get("active") or result.state.get("entered"):
            write(journey_state, key, result.state)
        else:
            journey_state.pop(key, None)
        return out

    return step
