"""The Faust app: wiring only. The decisions are the core's (streams/core), the state's writer is the owner
(streams/owner.py); here topics become inputs and tables become stores.

    storefront.events      ┐
    customers.profiles     │
    customers.consents     │                                  messages.commands.<channel>[.bulk]
    messages.inbound       ├─ own_customers ─ CustomerOwner ─▶ messages.outcomes (suppressed, scheduled)
    messages.outcomes      │  (batches)        core.step        customers.consent_state, customers.consents
    messages.intents[.bulk]│                                    journeys.handoffs, products.copurchases,
    customers.erasures     │                                    stock.updates (requests re-keyed by SKU)
    campaigns.launches     ┘  (a walk over the partition's customers: walk_campaigns, a slice at a time)
    the due-time index      ── fire_timers (every timer_tick seconds) ─▶ the owner, like any input
    stock.updates          ── track_stock ──────▶ table subscribers, global table stock; a restock fans out
                                                  one customer-keyed back_in_stock event per subscriber
    products.copurchases   ── count_copurchases ▶ global table affinity (streams/affinity.py)

Tables and their one writer each: ``customers`` (each customer's state, streams/core/state.py), ``erased``
(keyed hashes of erased customers) and ``campaign_walks`` (a walk's progress): the owner; ``subscribers`` and
``stock``: track_stock; ``affinity``: count_copurchases. The owner writes its tables to the changelog
partition of the customer's own partition (its key's murmur2, like the input topics), so a timer or a
campaign slice, which run outside any input record, write where recovery will look.

Every agent has ``concurrency=1`` (faust #606) and never raises: a record it cannot read or handle goes to
``<topic>.dlq`` with its reason (faust acknowledges and skips a message whose agent raised).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.serializers import codecs
from faust.types import Message

from schemas.catalog import (
    CAMPAIGN_LAUNCHES,
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_INTENTS,
    MESSAGE_INTENTS_BULK,
    MESSAGE_OUTCOMES,
    PRODUCT_COPURCHASES,
    STOCK_UPDATES,
    STOREFRONT_EVENTS,
    TopicNames,
)
from schemas.codec import codec_for, encode
from schemas.customers import ConsentChange, CustomerProfile, ErasureRequest
from schemas.events import EventType, StorefrontEvent
from schemas.messages import CampaignLaunch, InboundMessage, MessageIntent, MessageOutcome
from schemas.products import CoPurchase
from streams import affinity, core, faust_fixes, ids, policy
from streams.clock import Clock, WallClock
from streams.errors import KeyMismatchError, UnknownEventTypeError
from streams.journeys.loader import load_dir as load_journeys
from streams.metrics import Metrics, default_metrics
from streams.owner import ORIGIN_HEADER, ORIGIN_WORKER, CustomerOwner, Item, Source, partition_of
from streams.settings import Settings
from streams.stores import StoreDirectory

logger = logging.getLogger(__name__)

BATCH = 500  # inputs the owner takes at most in one batch
CAMPAIGN_SLICE = 50  # customers a campaign walk reaches at a time (live input waits for one slice at most)


class TableStore:
    """A faust table as the owner's :class:`~streams.owner.Store`: values in memory, each write a changelog
    record in the partition the owner names, handed to the producer with the batch's other records. (faust's
    own ``__setitem__`` takes the partition from the current event, which a timer does not have, and queues
    every record through a buffer of 100 that a batch of 500 overflows.) Recovery stays faust's: it reads the
    same changelog back into the table."""

    def __init__(self, table: faust.Table, sink: FaustSink) -> None:
        self._table, self._sink = table, sink
        self._topic = table.changelog_topic.get_topic_name()
        self._dumps = codecs.get_codec("json").dumps

    def get(self, key: bytes) -> Any:
        return self._table.data.get(key)

    def cache(self, key: bytes, value: Any) -> None:
        self._table.data[key] = value

    def put(self, key: bytes, value: Any, partition: int) -> None:
        self._table.data[key] = value
        record = value.as_json() if isinstance(value, core.CustomerState) else value
        self._sink.send(self._topic, key, self._dumps(record), partition=partition)

    def delete(self, key: bytes, partition: int) -> None:
        self._table.data.pop(key, None)
        self._sink.send(self._topic, key, None, partition=partition)

    def keys(self) -> Iterable[bytes]:
        return self._table.data.keys()


class CompactTableStore(TableStore):
    """The customers table, compact at rest: each customer's state is held as the bytes of its changelog record
    (what recovery reads back, through a raw serializer: never decoded at start), and the ``hot`` most recently
    used ones decoded too. A state costs about a third of its decoded size this way (``make bench``'s memory
    figure); a cold one is decoded when it is next touched (JSON, and its profile's Avro when a step needs it)."""

    def __init__(self, table: faust.Table, sink: FaustSink, hot: int) -> None:
        super().__init__(table, sink)
        self._hot: OrderedDict[bytes, Any] = OrderedDict()
        self._capacity = hot

    def get(self, key: bytes) -> Any:
        found = self._hot.get(key)
        if found is not None:
            self._hot.move_to_end(key)
            return found
        return self._table.data.get(key)  # bytes (or None): the owner decodes and caches them

    def cache(self, key: bytes, value: Any) -> None:
        if self._capacity <= 0:
            return
        self._hot[key] = value
        self._hot.move_to_end(key)
        while len(self._hot) > self._capacity:
            self._hot.popitem(last=False)

    def put(self, key: bytes, value: Any, partition: int) -> None:
        record = self._dumps(value.as_json() if isinstance(value, core.CustomerState) else value)
        self._table.data[key] = record
        self._sink.send(self._topic, key, record, partition=partition)
        self.cache(key, value)

    def delete(self, key: bytes, partition: int) -> None:
        self._hot.pop(key, None)
        super().delete(key, partition)

    def cold(self, key: bytes) -> Any:
        """The stored value without decoding it or making it hot (for scans over every customer)."""
        return self._hot.get(key) or self._table.data.get(key)


class FaustSink:
    """The app's producer as the owner's :class:`~streams.owner.Sink`: records are collected, then handed to
    the producer together (``flush``), which waits for the broker's acknowledgement of each. A record the
    broker did not take (an outage longer than the producer's own retries) is sent again, with backoff, for
    as long as the outage lasts: the batch waits, nothing is dropped, and its offsets are not committed."""

    RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # seconds between attempts, doubling

    def __init__(self, app: faust.App, metrics: Metrics) -> None:
        self._app, self._metrics = app, metrics
        self._pending: list[tuple[str, bytes | None, bytes | None, int | None, list | None]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        self._pending.append((topic, key, value, partition, headers))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        delay = self.RETRY_FIRST
        while pending:
            failed = await self._deliver(pending)
            if not failed:
                return
            if self._app.should_stop:
                raise RuntimeError(f"stopping with {len(failed)} record(s) not acknowledged by the broker")
            for topic, *_ in failed:
                self._metrics.kafka_write_retries.labels(topic_kind=topic.rsplit(".", 1)[-1]).inc()
            logger.warning("%d record(s) not acknowledged by the broker; sending them again in %.1f s",
                           len(failed), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.RETRY_MAX)
            pending = failed

    async def _deliver(self, records: list) -> list:
        producer, futures, failed = self._app.producer, [], []
        for record in records:
            topic, key, value, partition, headers = record
            try:
                futures.append((record, await producer.send(topic, key, value, partition, None, headers)))
            except Exception as exc:  # noqa: BLE001 - not even queued (no metadata, producer restarting): again
                logger.debug("send not queued: %s", type(exc).__name__)
                failed.append(record)
        results = await asyncio.gather(*(future for _, future in futures), return_exceptions=True)
        failed += [record for (record, _), result in zip(futures, results) if isinstance(result, BaseException)]
        return failed


def _broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def _received_at(message: Message) -> dt.datetime:
    return dt.datetime.fromtimestamp(message.timestamp, dt.timezone.utc)


def _source(message: Message) -> Source:
    return Source(message.topic, message.partition, message.offset, message.key, message.value)


def _check_key(message: Message, customer_id: str) -> None:
    if message.key != customer_id.encode():
        raise KeyMismatchError("record key is not its customer_id (topic must be keyed by customer_id)")


def _from_worker(message: Message) -> bool:
    headers = message.headers or ()
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(name == ORIGIN_HEADER and value == ORIGIN_WORKER for name, value in pairs)


class Inputs:
    """Kafka records of the customer-keyed topics as the core's inputs (None: nothing for the owner)."""

    def __init__(self, names: TopicNames, sink: FaustSink, metrics: Metrics) -> None:
        self.sink, self.names, self.metrics = sink, names, metrics
        self._by_topic = {names(STOREFRONT_EVENTS): self.event, names(CUSTOMER_PROFILES): self.profile,
                          names(CUSTOMER_CONSENTS): self.consent, names(MESSAGE_INBOUND): self.reply,
                          names(MESSAGE_OUTCOMES): self.outcome, names(MESSAGE_INTENTS): self.intent,
                          names(MESSAGE_INTENTS_BULK): self.intent, names(CUSTOMER_ERASURES): self.erasure}

    def __call__(self, message: Message) -> Item | None:
        return self._by_topic[message.topic](message)

    def event(self, message: Message) -> Item | None:
        event = codec_for(StorefrontEvent).decode(message.value)
        self.metrics.events_in.labels(str(event.event_type)).inc()
        if event.event_type == EventType.UNKNOWN:
            raise UnknownEventTypeError("storefront event of type 'unknown': a kind this worker does not know")
        if event.customer_id is None:  # a restock, keyed by SKU: to the stock tracker, which knows who waits
            if event.event_type == EventType.BACK_IN_STOCK:
                self.sink.send(self.names(STOCK_UPDATES), message.key, message.value)
            return None
        _check_key(message, event.customer_id)
        return Item(event.customer_id, core.EventInput(event, _received_at(message)), _source(message))

    def profile(self, message: Message) -> Item | None:
        customer_id = message.key.decode() if message.key else ""
        if message.value is None:  # a tombstone (an erasure writes one)
            return Item(customer_id, core.ProfileInput(None, None), _source(message)) if customer_id else None
        profile = codec_for(CustomerProfile).decode(message.value)
        _check_key(message, profile.customer_id)
        return Item(profile.customer_id, core.ProfileInput(profile, message.value), _source(message))

    def consent(self, message: Message) -> Item:
        change = codec_for(ConsentChange).decode(message.value)
        _check_key(message, change.customer_id)
        return Item(change.customer_id, core.ConsentInput(change, _received_at(message)), _source(message))

    def reply(self, message: Message) -> Item:
        inbound = codec_for(InboundMessage).decode(message.value)
        _check_key(message, inbound.customer_id)
        return Item(inbound.customer_id, core.ReplyInput(inbound), _source(message))

    def outcome(self, message: Message) -> Item | None:
        if _from_worker(message):
            return None  # the worker's own report: the step that wrote it already acted on it
        outcome = codec_for(MessageOutcome).decode(message.value)
        _check_key(message, outcome.customer_id)
        return Item(outcome.customer_id, core.OutcomeInput(outcome), _source(message))

    def intent(self, message: Message) -> Item:
        intent = codec_for(MessageIntent).decode(message.value)
        _check_key(message, intent.customer_id)
        return Item(intent.customer_id, core.IntentInput(intent, message.value), _source(message))

    def erasure(self, message: Message) -> Item:
        request = codec_for(ErasureRequest).decode(message.value)
        _check_key(message, request.customer_id)
        return Item(request.customer_id, core.ErasureInput(request), _source(message))


def create_app(settings: Settings, clock: Clock | None = None, metrics: Metrics | None = None) -> faust.App:
    clock = clock or WallClock()
    metrics = metrics or default_metrics()
    worker = settings.worker
    names = TopicNames(settings.kafka.topic_prefix)
    partitions = settings.kafka.partitions
    app = faust_fixes.SwitchboardApp(
        f"{settings.kafka.topic_prefix}{worker.app_id}",
        broker=_broker_url(settings.kafka.bootstrap_servers),
        store=worker.store,
        datadir=str(worker.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_linger=worker.producer_linger_ms / 1000,
        broker_session_timeout=worker.session_timeout,
        broker_heartbeat_interval=min(3.0, worker.session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        web_enabled=worker.web_port > 0,
        web_host=worker.web_host,
        web_port=max(worker.web_port, 1),
        web_in_thread=False,
    )
    setup_prometheus_sensors(app, pattern="/metrics", registry=metrics.registry)
    app.on_wait_abandoned = metrics.rebalance_waits_abandoned.inc  # streams/faust_fixes.py
    app.on_commit_held = metrics.commits_held.inc  # streams/faust_fixes.py

    def table(name: str, values: str = "json") -> faust.Table:
        """Keys are bytes, values JSON (decoded at recovery, or kept as their bytes with ``values="raw"``). The
        types, not only the schema, must say so: faust recovers a changelog with the serializers it derives from
        key_type/value_type, and a json-decoded bytes key makes recovery fail on every record and hang for good."""
        return app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes if values == "raw" else None,
                         schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer=values))

    def global_table(name: str) -> faust.GlobalTable:  # on every worker, for any customer
        return app.GlobalTable(name, partitions=partitions, key_type=bytes, value_type=None,
                               schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json"))

    customers, erased, walks = table("customers", values="raw"), table("erased"), table("campaign_walks")
    subscribers = table("subscribers")  # by SKU key: customers waiting to hear it is back
    stock = global_table("stock")  # by SKU key: units in stock, so a send can re-check it
    affinities = global_table("affinity")  # by store and SKU: what was bought with it
    sink = FaustSink(app, metrics)
    events_topic = names(STOREFRONT_EVENTS)

    def assigned() -> set[int]:
        try:
            return {tp.partition for tp in app.consumer.assignment() if tp.topic == events_topic}
        except Exception:  # noqa: BLE001 - no consumer yet (starting) or any more (stopping): owns nothing
            return set()

    ctx = core.Context(
        clock=clock, journeys=load_journeys(worker.journeys_dir),  # a bad journey or template stops the worker here
        stores=StoreDirectory.load(worker.stores_file),  # so does a bad stores file
        policy=policy.PolicyConfig(default_country=worker.default_country, smart_encoding=worker.smart_encoding),
        coupon_secret=worker.coupon_key.get_secret_value().encode(),
        erasure_secret=worker.erasure_key.get_secret_value().encode(),
        journey_time_scale=worker.journey_time_scale,
        is_erased=lambda key: erased.data.get(key) is not None,
        stock=lambda sku: stock.get(sku.encode()),
        affinity=lambda key: affinities.get(key.encode()),
    )
    owner = CustomerOwner(ctx, CompactTableStore(customers, sink, worker.hot_customers), TableStore(erased, sink), TableStore(walks, sink), sink,
                          names, metrics,
                          partitions, worker.receipt_timeouts, assigned)
    inputs = Inputs(names, sink, metrics)
    app.owner = owner  # for tests and the bench: the worker's one writer

    @customers.on_recover
    async def rebuild_index() -> None:
        owner.rebuild()

    customer_topics = app.topic(
        events_topic, names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS), names(MESSAGE_INBOUND),
        names(MESSAGE_OUTCOMES), names(MESSAGE_INTENTS), names(MESSAGE_INTENTS_BULK), names(CUSTOMER_ERASURES),
        names(CAMPAIGN_LAUNCHES), key_serializer="raw", value_serializer="raw", partitions=partitions)
    launches_topic = names(CAMPAIGN_LAUNCHES)

    @app.agent(customer_topics, name="own_customers", concurrency=1)
    async def own_customers(stream: faust.StreamT) -> None:
        async for events in stream.take_events(BATCH, within=worker.batch_linger_ms / 1000):
            items: list[Item] = []
            for event in events:
                message = event.message
                try:
                    if message.topic == launches_topic:
                        await owner.launch(codec_for(CampaignLaunch).decode(message.value), message.partition)
                        continue
                    item = inputs(message)
                except Exception as exc:  # noqa: BLE001 - an agent that raises skips the message (faust #315)
                    owner.dead_letter(_source(message), "own_customers", exc)
                    continue
                if item is not None:
                    items.append(item)
            await owner.apply(items)

    @app.timer(interval=worker.timer_interval)
    async def fire_timers() -> None:
        try:
            await owner.fire_due()
        except Exception as exc:  # noqa: BLE001 - a timer that raises stops for good; the next tick tries again
            logger.error("firing due timers failed: %s", type(exc).__name__)  # the type only: no personal data

    @app.task
    async def walk_campaigns() -> None:
        """Campaigns as fast as spare capacity allows: a slice at a time, live input taking turns with it
        (the owner's lock is fair); the gateways' rate limits pace the sends."""
        while not app.should_stop:
            try:
                reached = await owner.advance_campaigns(CAMPAIGN_SLICE)
            except Exception as exc:  # noqa: BLE001 - the walk resumes from its saved progress on the next turn
                logger.error("a campaign slice failed: %s", type(exc).__name__)
                reached = 0
            await asyncio.sleep(0 if reached else 0.2)

    stock_handler = StockTracker(subscribers, stock, sink, names, metrics)
    copurchase_handler = AffinityCounter(affinities)

    @app.agent(app.topic(names(STOCK_UPDATES), key_serializer="raw", value_serializer="raw", partitions=partitions),
               name="track_stock", concurrency=1)
    async def track_stock(stream: faust.StreamT) -> None:
        await _guarded(stream, "track_stock", stock_handler, owner)

    @app.agent(app.topic(names(PRODUCT_COPURCHASES), key_serializer="raw", value_serializer="raw",
                         partitions=partitions), name="count_copurchases", concurrency=1)
    async def count_copurchases(stream: faust.StreamT) -> None:
        await _guarded(stream, "count_copurchases", copurchase_handler, owner)

    return app


async def _guarded(stream: faust.StreamT, stage: str, handle: Any, owner: CustomerOwner) -> None:
    """One message at a time, failures dead-lettered, never raised."""
    async for event in stream.events():
        message = event.message
        try:
            handle(message)
        except Exception as exc:  # noqa: BLE001 - an agent that raises skips the message (faust #315)
            owner.dead_letter(_source(message), stage, exc)
        await owner.sink.flush()


class StockTracker:
    """track_stock: back-in-stock requests wait by SKU; a restock notifies each subscriber once."""

    def __init__(self, subscribers: faust.Table, stock: faust.GlobalTable, sink: FaustSink, names: TopicNames,
                 metrics: Metrics) -> None:
        self.subscribers, self.stock, self.sink, self.names, self.metrics = subscribers, stock, sink, names, metrics

    def __call__(self, message: Message) -> None:
        event = codec_for(StorefrontEvent).decode(message.value)
        if event.event_type == EventType.BACK_IN_STOCK_REQUESTED and event.customer_id:
            waiting = dict(self.subscribers.get(message.key) or {})
            waiting[event.customer_id] = {"store_id": event.store_id, "attributes": event.attributes}
            self.subscribers[message.key] = waiting
            return
        if event.event_type != EventType.BACK_IN_STOCK or event.customer_id is not None:
            return
        quantity = stock_quantity(event)
        self.stock[message.key] = quantity
        if quantity <= 0:
            return
        waiting = self.subscribers.pop(message.key, None) or {}  # each subscriber hears once
        for customer_id, subscription in sorted(waiting.items()):
            notice = StorefrontEvent(
                event_id=ids.message_id(event.event_id, f"restock:{customer_id}"), event_type=EventType.BACK_IN_STOCK,
                store_id=subscription["store_id"], customer_id=customer_id, occurred_at=event.occurred_at,
                sku=event.sku, attributes={**subscription["attributes"], **event.attributes})
            self.sink.send(self.names(STOREFRONT_EVENTS), customer_id.encode(), encode(notice))
        self.metrics.stock_notices.inc(len(waiting))


class AffinityCounter:
    """count_copurchases: what was bought with each SKU, by store (streams/affinity.py)."""

    def __init__(self, affinities: faust.GlobalTable) -> None:
        self.affinities = affinities

    def __call__(self, message: Message) -> None:
        record = codec_for(CoPurchase).decode(message.value)
        if message.key != affinity.key(record.store_id, record.sku).encode():
            raise KeyMismatchError("record key is not its store and SKU (products.copurchases is keyed so)")
        before = self.affinities.get(message.key)
        after = affinity.fold(before, record)
        if after != before:  # a replayed order changes nothing
            self.affinities[message.key] = after


def stock_quantity(event: StorefrontEvent) -> int:
    """Units a restock reports (attribute ``quantity``; a restock without one means "in stock")."""
    try:
        return int(event.attributes.get("quantity", "1"))
    except ValueError:
        return 1


__all__ = ["create_app", "partition_of", "stock_quantity"]
