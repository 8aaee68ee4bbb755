"""The Faust app: catalog topics, the per-customer tables, and four thin agents.

    storefront.events   ┐
    messages.outcomes   ├-run_journeys----->  messages.intents, journeys.handoffs      (table journeys: each
    messages.inbound    │                     customer's journey instances; waits fired by the timer)
    messages.timers     ┘                     + products.copurchases: a placed order, once per SKU, with its other SKUs
    customers.profiles  --ingest_profiles-->  table profiles       (raw Avro bytes by customer_id)
    customers.consents  --ingest_consents-->  table consents       (folded consent state by customer_id)
                                              + a confirmation request where the store wants double opt-in
    messages.inbound    --record_inbound--->  table conversations  (last inbound per channel)
    messages.intents    --route_messages--->  messages.commands.<channel>[.bulk] | messages.outcomes
                                              (suppressed, or scheduled: table scheduled; caps: table sent)
    messages.outcomes   --route_messages--->  the next channel's command when a send failed (table in_flight)
    messages.timers     --route_messages--->  the same when a receipt is overdue, or a deferred send that is due
    messages.intents.bulk -route_messages->  the same for campaign intents (a lane of their own: never ahead of
                                              order updates)
    campaigns.launches  --run_campaigns---->  messages.intents.bulk, one per customer the segment selects
                                              (tables profiles and behaviour, read only)
    stock.updates       --track_stock------>  restocks and back-in-stock requests re-keyed by SKU (table
                                              subscribers; global table stock); a restock fans out one
                                              customer-keyed back_in_stock event per subscriber
    products.copurchases --count_copurchases-> global table affinity (by store and SKU: what was bought with it,
                                              top partners; streams/affinity.py), read by run_journeys' cross-sell
    customers.erasures  --route_messages--->  every table forgets the customer; table erased keeps a keyed hash

Every agent has ``concurrency=1`` (faust #606) and catches per message: a failure goes to
``<topic>.dlq`` with its reason (faust acknowledges and skips a message whose agent raised).
All customer-keyed topics and both tables share one partition count, so the join is local.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

import faust
from aiokafka.partitioner import murmur2
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import Message

from schemas.catalog import (
    CAMPAIGN_LAUNCHES,
    CONSENT_STATE,
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    JOURNEY_HANDOFFS,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_INTENTS,
    MESSAGE_INTENTS_BULK,
    MESSAGE_OUTCOMES,
    MESSAGE_TIMERS,
    PRODUCT_COPURCHASES,
    STOCK_UPDATES,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
)
from schemas.codec import codec_for, encode
from schemas.customers import ConsentChange, ConsentSnapshot, ConsentState, CustomerProfile, ErasureRequest
from schemas.events import EventType, StorefrontEvent
from schemas.messages import (
    CampaignLaunch,
    Handoff,
    InboundMessage,
    MessageIntent,
    MessageOutcome,
    OutcomeReason,
    TimerFired,
)
from schemas.products import CoPurchase
from schemas.types import Channel, Purpose
from streams import (
    affinity,
    campaigns,
    consent,
    double_opt_in,
    erasure,
    fallback,
    faust_fixes,
    ids,
    policy,
    publish,
    quiet_hours,
    replies,
    scheduler,
)
from streams.journeys import engine as journey_engine
from streams.journeys.loader import load_dir as load_journeys
from streams.clock import Clock, WallClock
from streams.errors import KeyMismatchError, StateError
from streams.metrics import Metrics, default_metrics
from streams.settings import Settings
from streams.stores import StoreDirectory

logger = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[None]]

SCAN_SLICE = 256  # table keys the due-timer scan reads between two turns of the event loop


class FaustPublisher:
    """Publishes raw bytes through the app's producer (flushed before every offset commit)."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, faust.TopicT] = {}

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        channel = self._topics.get(topic)
        if channel is None:
            channel = self._topics[topic] = self._app.topic(topic, key_serializer="raw", value_serializer="raw")
        await channel.send(key=key, value=value)


def _broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def create_app(settings: Settings, clock: Clock | None = None, metrics: Metrics | None = None) -> faust.App:
    clock = clock or WallClock()
    metrics = metrics or default_metrics()
    stores = StoreDirectory.load(settings.worker.stores_file)  # a bad file stops the worker here
    journeys = load_journeys(settings.worker.journeys_dir)  # so does a bad journey or template
    coupon_secret = settings.worker.coupon_key.get_secret_value().encode()
    erasure_secret = settings.worker.erasure_key.get_secret_value().encode()
    names = TopicNames(settings.kafka.topic_prefix)
    partitions = settings.kafka.partitions
    app = faust_fixes.SwitchboardApp(
        f"{settings.kafka.topic_prefix}{settings.worker.app_id}",
        broker=_broker_url(settings.kafka.bootstrap_servers),
        store=settings.worker.store,
        datadir=str(settings.worker.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        producer_linger=settings.worker.producer_linger_ms / 1000,
        broker_session_timeout=settings.worker.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker.web_port > 0,
        web_host=settings.worker.web_host,
        web_port=max(settings.worker.web_port, 1),
        web_in_thread=False,
    )
    setup_prometheus_sensors(app, pattern="/metrics", registry=metrics.registry)
    app.on_wait_abandoned = metrics.rebalance_waits_abandoned.inc  # streams/faust_fixes.py
    app.on_commit_held = metrics.commits_held.inc  # streams/faust_fixes.py

    def topic(name: str) -> faust.TopicT:
        return app.topic(names(name), key_serializer="raw", value_serializer="raw", partitions=partitions)

    profiles_topic = topic(CUSTOMER_PROFILES)
    journey_topic = app.topic(names(STOREFRONT_EVENTS), names(MESSAGE_OUTCOMES), names(MESSAGE_INBOUND),
                              names(MESSAGE_TIMERS), key_serializer="raw", value_serializer="raw",
                              partitions=partitions)
    consents_topic, inbound_topic = topic(CUSTOMER_CONSENTS), topic(MESSAGE_INBOUND)
    routed_topic = app.topic(names(MESSAGE_INTENTS), names(MESSAGE_TIMERS), names(CUSTOMER_ERASURES),
                             key_serializer="raw", value_serializer="raw", partitions=partitions)
    outcomes_topic = topic(MESSAGE_OUTCOMES)
    bulk_topic = topic(MESSAGE_INTENTS_BULK)
    launches_topic = topic(CAMPAIGN_LAUNCHES)
    stock_topic = topic(STOCK_UPDATES)
    copurchases_topic = topic(PRODUCT_COPURCHASES)
    def table(name: str, raw_values: bool = False) -> faust.Table:
        """Keys are customer ids (bytes); values JSON, or raw Avro. The types, not only the schema, must say
        so: faust recovers a changelog with the serializers it derives from key_type/value_type (json when
        unset), and a json-decoded bytes key makes recovery fail on every record and hang for good."""
        value_type = bytes if raw_values else None
        return app.Table(name, partitions=partitions, key_type=bytes, value_type=value_type,
                         schema=faust.Schema(key_type=bytes, value_type=value_type, key_serializer="raw",
                                             value_serializer="raw" if raw_values else "json"))

    profiles = table("profiles", raw_values=True)  # raw Avro CustomerProfile
    consents = table("consents")  # folded consent state
    conversations = table("conversations")  # last inbound per channel
    in_flight = table("in_flight")  # sent messages awaiting a receipt (fallback)
    scheduled = table("scheduled")  # deferred sends, by customer
    sent = table("sent")  # marketing sends recorded for frequency caps
    erased = table("erased")  # keyed hash of an erased customer -> when
    journey_state = table("journeys")  # each customer's journey instances (streams/journeys/engine.py)
    behaviour = table("behaviour")  # what campaign segments read: last order, SKUs bought, abandoned carts
    subscribers = table("subscribers")  # by SKU key: customers waiting to hear it is back
    stock = app.GlobalTable(  # by SKU key: units in stock; on every worker, so a send can re-check it
        "stock", partitions=partitions, key_type=bytes, value_type=None,
        schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json"))
    affinities = app.GlobalTable(  # by store and SKU: what was bought with it; on every worker, for any customer
        "affinity", partitions=partitions, key_type=bytes, value_type=None,
        schema=faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json"))

    publisher = FaustPublisher(app)
    bulk_backlog = Backlog()  # campaign intents this process published and has not decided yet
    outcomes = publish.OutcomeWriter(publisher, names, metrics)
    dead_letters = publish.DeadLetterWriter(publisher, metrics)
    policy_config = policy.PolicyConfig(default_country=settings.worker.default_country,
                                        smart_encoding=settings.worker.smart_encoding)

    async def guarded(stream: faust.StreamT, stage: str, handle: Handler) -> None:
        """The loop every agent runs: one message at a time, failures dead-lettered, never raised."""
        async for event in stream.events():
            message = event.message
            try:
                await handle(message)
            except Exception as exc:  # noqa: BLE001 - an agent that raises skips the message (faust #315)
                await dead_letters.write(
                    topic=message.topic, partition=message.partition, offset=message.offset,
                    key=message.key, value=message.value, stage=stage, exc=exc, now=clock.now(),
                )

    def received_at(message: Message) -> dt.datetime:
        return dt.datetime.fromtimestamp(message.timestamp, dt.timezone.utc)

    def journey_context(key: bytes, store_id: str, now: dt.datetime) -> journey_engine.Context:
        profile = profile_of(key)
        zone = quiet_hours.resolve_zone(profile.time_zone if profile else None,
                                        (profile.phone or profile.whatsapp) if profile else None,
                                        stores(store_id).time_zone)
        return journey_engine.Context(journeys=journeys, now=now, zone=zone, coupon_secret=coupon_secret,
                                      time_scale=settings.worker.journey_time_scale,
                                      affinity_lookup=lambda sku: affinities.get(affinity.key(store_id, sku).encode()),
                                      bought=frozenset((behaviour.get(key) or {}).get("skus", [])),
                                      product_url=stores(store_id).product_url)

    async def apply_journeys(key: bytes, result: journey_engine.Result) -> None:
        """Publishes what the engine decided, then stores the state (a crash in between replays the input:
        the same ids come out, and the gateways' ledgers send each message once)."""
        for intent in result.intents:
            await publisher.publish(names(MESSAGE_INTENTS), key, encode(intent))
            metrics.intents.labels(intent.purpose).inc()
        for intent in result.held_out:  # the experiment's control group: an outcome says so, nothing is sent
            await outcomes.write(publish.suppressed(intent, OutcomeReason.HOLDOUT,
                                                    "in the experiment's holdout group", clock.now()))
        for skipped in result.suppressed:  # e.g. a cross-sell with nothing to recommend
            await outcomes.write(publish.suppressed(skipped.intent, skipped.reason, skipped.detail, clock.now()))
        for handoff in result.handoffs:
            await publisher.publish(names(JOURNEY_HANDOFFS), key, encode(Handoff(
                handoff_id=handoff.handoff_id, customer_id=handoff.customer_id, store_id=handoff.store_id,
                journey=handoff.journey, step=handoff.step, context=handoff.context, occurred_at=clock.now())))
        for name in result.entered:
            metrics.journeys.labels(name, "entered").inc()
        for name in result.exited:
            metrics.journeys.labels(name, "exited").inc()
        if result.state.get("active") or result.state.get("entered"):
            journey_state[key] = result.state
        else:
            journey_state.pop(key, None)

    async def on_event(message: Message) -> None:
        event = codec_for(StorefrontEvent).decode(message.value)
        metrics.events_in.labels(event.event_type).inc()
        if event.customer_id is None:  # a restock, keyed by SKU: to the stock tracker, which knows who waits
            if event.event_type == EventType.BACK_IN_STOCK:
                await publisher.publish(names(STOCK_UPDATES), message.key, message.value)
            return
        _check_key(message, event.customer_id)
        if event.event_type == EventType.BACK_IN_STOCK_REQUESTED:  # re-keyed by SKU to meet the restock
            await publisher.publish(names(STOCK_UPDATES), f"sku:{event.sku}".encode(), message.value)
        now = clock.now()
        context = journey_context(message.key, event.store_id, now)
        result = journey_engine.on_event(journey_state.get(message.key), event, received_at(message), context)
        if is_erased(message.key):  # report what would have gone, keep no state about the customer
            metrics.erasures.labels("event_ignored").inc()
            for intent in result.intents:
                await outcomes.write(publish.suppressed(intent, OutcomeReason.ERASED,
                                                        "the customer's data was erased on request", now))
            return
        for record in affinity.copurchases(event):  # an order placed: to the affinity table, once per SKU
            await publisher.publish(names(PRODUCT_COPURCHASES), affinity.key(record.store_id, record.sku).encode(),
                                    encode(record))
        summary = campaigns.remember(behaviour.get(message.key), event)
        if summary is not None:
            behaviour[message.key] = summary
        await apply_journeys(message.key, result)

    async def on_journey_outcome(message: Message) -> None:
        state = journey_state.get(message.key)
        if not state or not state.get("active"):
            return  # most outcomes (a campaign's, a finished journey's) concern no waiting journey
        outcome = codec_for(MessageOutcome).decode(message.value)
        if state and state.get("active"):
            await apply_journeys(message.key, journey_engine.on_outcome(
                state, outcome, journey_context(message.key, outcome.store_id, clock.now())))

    async def on_journey_reply(message: Message) -> None:
        inbound = codec_for(InboundMessage).decode(message.value)
        state = journey_state.get(message.key)
        if state and state.get("active"):
            await apply_journeys(message.key, journey_engine.on_reply(
                state, inbound, journey_context(message.key, inbound.store_id, clock.now())))

    async def on_journey_timer(message: Message) -> None:
        fired = codec_for(TimerFired).decode(message.value)
        state = journey_state.get(message.key)
        if fired.kind == JOURNEY_WAKE and state and state.get("active"):
            store_id = next(iter(state["active"].values()))["store_id"]
            await apply_journeys(message.key, journey_engine.on_wake(
                state, fired.message_id, journey_context(message.key, store_id, clock.now())))

    journey_handlers = {names(STOREFRONT_EVENTS): on_event, names(MESSAGE_OUTCOMES): on_journey_outcome,
                        names(MESSAGE_INBOUND): on_journey_reply, names(MESSAGE_TIMERS): on_journey_timer}

    async def on_journey_input(message: Message) -> None:
        await journey_handlers[message.topic](message)

    def is_erased(key: bytes) -> bool:
        return erasure.suppression_key(erasure_secret, key.decode()) in erased

    async def on_profile(message: Message) -> None:
        if message.value is None:  # a tombstone (an erasure writes one): the profile is gone
            profiles.pop(message.key, None)
            return
        profile = codec_for(CustomerProfile).decode(message.value)
        _check_key(message, profile.customer_id)
        if is_erased(message.key):  # re-imported after an erasure: keep nothing
            metrics.erasures.labels("profile_ignored").inc()
            return
        profiles[message.key] = message.value
        metrics.state_updates.labels("profile").inc()

    async def on_consent(message: Message) -> None:
        change = codec_for(ConsentChange).decode(message.value)
        _check_key(message, change.customer_id)
        if is_erased(message.key):
            metrics.erasures.labels("consent_ignored").inc()
            return
        before = consents.get(message.key)
        store = stores(change.store_id)
        confirm = double_opt_in.needs_confirmation(change, before, store)
        after = consent.fold(before, double_opt_in.as_pending(change) if confirm else change)
        consents[message.key] = after
        metrics.state_updates.labels("consent").inc()
        if after != before:  # gateways re-check this right before calling a provider: opt-outs win the race
            snapshot = consent.snapshot(change.customer_id, change.store_id, after, clock.now())
            await publisher.publish(names(CONSENT_STATE), message.key, encode(snapshot))
        if confirm and after != before:
            await publisher.publish(names(MESSAGE_INTENTS), message.key, encode(double_opt_in.confirmation(
                change, received_at(message), clock.now())))
            metrics.intents.labels(Purpose.TRANSACTIONAL.value).inc()

    async def on_inbound(message: Message) -> None:
        inbound = codec_for(InboundMessage).decode(message.value)
        _check_key(message, inbound.customer_id)
        if is_erased(message.key):
            metrics.erasures.labels("inbound_ignored").inc()
            return
        seen = dict(conversations.get(message.key) or {})
        seen[str(inbound.channel)] = max(seen.get(str(inbound.channel), 0),
                                         int(inbound.received_at.timestamp() * 1000))
        conversations[message.key] = seen
        metrics.state_updates.labels("inbound").inc()
        profile = profile_of(message.key)
        pending = consent.state_of(consents.get(message.key), inbound.channel, Purpose.MARKETING)
        actions = replies.actions_for(inbound, profile.locale if profile else "en",
                                      stores(inbound.store_id).keywords.config,
                                      awaiting_confirmation=pending == ConsentState.PENDING,
                                      current=consents.get(message.key))
        for change in actions.consent_changes:  # STOP acts at once, with the reply as its proof
            await publisher.publish(names(CUSTOMER_CONSENTS), message.key, encode(change))
            metrics.keywords.labels(str(change.state)).inc()
        for intent in actions.intents:
            await publisher.publish(names(MESSAGE_INTENTS), message.key, encode(intent))
            metrics.keywords.labels("help").inc()

    def profile_of(key: bytes) -> CustomerProfile | None:
        raw = profiles.get(key)
        try:
            return codec_for(CustomerProfile).decode(raw) if raw else None
        except Exception as exc:
            raise StateError(f"profile table value unreadable: {exc}") from exc

    async def decide_and_send(key: bytes, intent: MessageIntent, intent_bytes: bytes) -> policy.Decision:
        now = clock.now()
        if is_erased(key):
            return policy.Suppress(OutcomeReason.ERASED, "the customer's data was erased on request")
        if intent.stock_sku is not None and stock.get(f"sku:{intent.stock_sku}".encode(), 1) <= 0:
            return policy.Suppress(OutcomeReason.OUT_OF_STOCK, "sold out again before the message could go")
        store = stores(intent.store_id)
        decision = policy.decide(intent, profile_of(key), consents.get(key), now, policy_config,
                                 conversations.get(key), store, sent.get(key))
        match decision:
            case policy.Send(command=command):
                # The tables first, with no await since the decision read them: route_messages and route_bulk
                # may decide for the same customer, and a cap must count both.
                in_flight[key] = fallback.remember(in_flight.get(key), command.message_id, intent_bytes,
                                                   command.channel, now)
                if command.purpose == Purpose.MARKETING:
                    sent[key] = policy.record_sent(sent.get(key), intent, store, now)
                await publisher.publish(names(commands_topic(command.channel, command.purpose)), key,
                                        encode(command))
                metrics.commands.labels(command.channel).inc()
            case policy.Defer(until=until, reason=reason, detail=detail):
                scheduled[key] = scheduler.add(scheduled.get(key), intent.message_id, intent_bytes, until, reason)
                await outcomes.write(publish.scheduled(intent, until, reason, detail, now))
                metrics.scheduled.labels(reason).inc()
        return decision

    async def on_intent(message: Message) -> None:
        intent = codec_for(MessageIntent).decode(message.value)
        _check_key(message, intent.customer_id)
        match await decide_and_send(message.key, intent, message.value):
            case policy.Send(command=command):
                metrics.event_to_command.labels(command.channel).observe(
                    max((clock.now() - command.trigger_received_at).total_seconds(), 0.0))
            case policy.Suppress(reason=reason, detail=detail):
                await outcomes.write(publish.suppressed(intent, reason, detail, clock.now()))

    async def on_due(key: bytes, message_id: str) -> None:
        """A deferred send's time came: take it out of the scheduler (so it counts once) and decide again."""
        remaining, intent_bytes = scheduler.take(scheduled.get(key), message_id)
        if intent_bytes is None:
            return  # already taken: a repeated fire
        if remaining:
            scheduled[key] = remaining
        else:
            scheduled.pop(key, None)
        intent = codec_for(MessageIntent).decode(intent_bytes)
        decision = await decide_and_send(key, intent, intent_bytes)  # may defer it again (a cap, a new zone)
        if isinstance(decision, policy.Suppress):
            await outcomes.write(publish.suppressed(intent, decision.reason, decision.detail, clock.now()))

    async def on_erasure(message: Message) -> None:
        request = codec_for(ErasureRequest).decode(message.value)
        _check_key(message, request.customer_id)
        erased[erasure.suppression_key(erasure_secret, request.customer_id)] = {
            "at": int(request.requested_at.timestamp() * 1000)}
        for table in (profiles, consents, conversations, in_flight, scheduled, sent, journey_state, behaviour):
            table.pop(message.key, None)
        # Gateways stop what is already queued for the customer; the compacted profile is deleted too.
        everything = {f"{c.value}:{p.value}": ConsentState.OPTED_OUT for c in Channel for p in Purpose}
        await publisher.publish(names(CONSENT_STATE), message.key, encode(ConsentSnapshot(
            customer_id=request.customer_id, store_id=request.store_id, slots=everything, updated_at=clock.now())))
        await publisher.publish(names(CUSTOMER_PROFILES), message.key, None)
        metrics.erasures.labels("erased").inc()

    async def fall_back(key: bytes, message_id: str, retry: fallback.Retry, failed_channel: str) -> None:
        intent = retry.narrowed(codec_for(MessageIntent).decode(retry.intent_bytes))
        if isinstance(await decide_and_send(key, intent, retry.intent_bytes), policy.Send):
            metrics.fallbacks.labels(failed_channel).inc()
        else:  # no channel left: the failure (or the silence) is the message's last word
            in_flight[key] = fallback.finish(in_flight.get(key), message_id)

    async def on_outcome(message: Message) -> None:
        outcome = codec_for(MessageOutcome).decode(message.value)
        before = in_flight.get(message.key)
        state, retry = fallback.on_outcome(before, outcome)
        if state != (before or {}):
            in_flight[message.key] = state
        if retry is not None:
            await fall_back(message.key, outcome.message_id, retry, outcome.channel or "none")

    async def on_timer(message: Message) -> None:
        fired = codec_for(TimerFired).decode(message.value)
        if fired.kind == SCHEDULED_SEND:
            await on_due(message.key, fired.message_id)
            return
        if fired.kind != RECEIPT_TIMEOUT or fired.channel is None:
            return  # a journey's wake-up: run_journeys acts on it
        retry = fallback.on_timeout(in_flight.get(message.key), fired.message_id, fired.channel)
        if retry is not None:
            await fall_back(message.key, fired.message_id, retry, str(fired.channel))

    handlers = {names(MESSAGE_INTENTS): on_intent,
                names(MESSAGE_TIMERS): on_timer, names(CUSTOMER_ERASURES): on_erasure}

    async def on_routed(message: Message) -> None:
        await handlers[message.topic](message)

    fired_already: set[tuple] = set()  # timers published and not yet acted on (this process)

    @app.timer(interval=settings.worker.timer_interval)
    async def fire_due_timers() -> None:
        """Reads the local scheduled, journeys and in_flight partitions; writes nothing but TimerFired records
        (the agents that own those tables act on them)."""
        now = clock.now()
        timeouts = settings.worker.receipt_timeouts
        try:
            for n, (key, waiting) in enumerate(list(scheduled.items())):
                await _let_agents_run(n)
                for message_id, due_at in scheduler.due(waiting, now):
                    await fire(key, message_id, SCHEDULED_SEND, due_at, now)
            for n, (key, state) in enumerate(list(journey_state.items())):
                await _let_agents_run(n)
                for instance_id, due_at in journey_engine.due(state, now):
                    await fire(key, instance_id, JOURNEY_WAKE, due_at, now)
            for n, (key, state) in enumerate(list(in_flight.items())):
                await _let_agents_run(n)
                for message_id, channel, due_at in fallback.due_timeouts(state, now, timeouts):
                    await fire(key, message_id, RECEIPT_TIMEOUT, due_at, now, channel)
        except Exception as exc:  # noqa: BLE001 - a timer that raises stops for good; the next tick tries again
            # The type only: a traceback's chained messages can quote record values (personal data).
            logger.error("scanning for due timers failed: %s", type(exc).__name__)
        if len(fired_already) > 100_000:
            fired_already.clear()  # acted-on entries are gone from their tables, so no re-fire follows

    async def _let_agents_run(scanned: int) -> None:
        """The scan reads every waiting entry (tens of thousands under load): every SCAN_SLICE keys it hands the
        loop to the agents, so a scan costs CPU but never stalls the events in flight."""
        if scanned and scanned % SCAN_SLICE == 0:
            await asyncio.sleep(0)

    async def fire(key: bytes, message_id: str, kind: str, due_at: dt.datetime, now: dt.datetime,
                   channel: Channel | None = None) -> None:
        """One TimerFired per entry and due time (an entry deferred again gets a new one), once per process."""
        mark = (message_id, kind, due_at.isoformat(), channel)
        if mark in fired_already:
            return
        fired = TimerFired(customer_id=key.decode(), message_id=message_id, kind=kind, channel=channel,
                           due_at=due_at, fired_at=now)
        await publisher.publish(names(MESSAGE_TIMERS), key, encode(fired))
        fired_already.add(mark)

    async def on_launch(message: Message) -> None:
        """Walks this partition's customers; each await lets the other agents run, so order updates keep
        flowing while a large campaign is fanned out."""
        launch = codec_for(CampaignLaunch).decode(message.value)
        segment = campaigns.segment_of(launch)
        now, selected = clock.now(), 0
        pace = settings.worker.campaign_rate  # launches are handled one at a time: each gets the worker's rate
        started = time.monotonic()
        for key, raw in list(profiles.items()):
            if partition_of(key, partitions) != message.partition or not raw:
                continue
            profile = codec_for(CustomerProfile).decode(raw)
            if profile.store_id != launch.store_id or not segment.selects(profile, behaviour.get(key), now):
                continue
            intent = campaigns.intent_for(launch, profile.customer_id, now)
            await publisher.publish(names(MESSAGE_INTENTS_BULK), key, encode(intent))
            selected += 1
            bulk_backlog.published += 1
            if (ahead := started + selected / pace - time.monotonic()) > 0:
                await asyncio.sleep(ahead)  # the fan-out's pace: a backlog in the worker helps nobody
            while bulk_backlog.waiting() > settings.worker.campaign_backlog:
                # Back-pressure: route_bulk has not decided what was published. Faust's conductor blocks every
                # agent's input while one agent's buffer is full, so a campaign must never fill route_bulk's.
                await asyncio.sleep(0.02)
        metrics.intents.labels(Purpose.MARKETING.value).inc(selected)
        metrics.campaign_recipients.inc(selected)

    # Campaign intents have an agent of their own: a backlog of them queues in its buffer, not in front of
    # the order updates route_messages decides. Both agents write in_flight, sent and scheduled, each
    # read-modify-write without an await in between, so neither loses the other's update.
    # Outcomes (a campaign makes many) have an agent of their own too, so they never queue in front of an
    # intent; fall_back's table writes, like decide_and_send's, have no await between read and write.
    @app.agent(outcomes_topic, name="follow_outcomes", concurrency=1)
    async def follow_outcomes(stream: faust.StreamT) -> None:
        await guarded(stream, "follow_outcomes", on_outcome)

    async def on_bulk_intent(message: Message) -> None:
        try:
            await on_intent(message)
        finally:
            bulk_backlog.decided += 1

    @app.agent(bulk_topic, name="route_bulk", concurrency=1)
    async def route_bulk(stream: faust.StreamT) -> None:
        await guarded(stream, "route_bulk", on_bulk_intent)

    async def on_stock(message: Message) -> None:
        event = codec_for(StorefrontEvent).decode(message.value)
        if event.event_type == EventType.BACK_IN_STOCK_REQUESTED and event.customer_id:
            waiting = dict(subscribers.get(message.key) or {})
            waiting[event.customer_id] = {"store_id": event.store_id, "attributes": event.attributes}
            subscribers[message.key] = waiting
            return
        if event.event_type != EventType.BACK_IN_STOCK or event.customer_id is not None:
            return
        quantity = stock_quantity(event)
        stock[message.key] = quantity
        if quantity <= 0:
            return
        waiting = subscribers.pop(message.key, None) or {}  # each subscriber hears once
        for customer_id, subscription in sorted(waiting.items()):
            notice = StorefrontEvent(
                event_id=ids.message_id(event.event_id, f"restock:{customer_id}"), event_type=EventType.BACK_IN_STOCK,
                store_id=subscription["store_id"], customer_id=customer_id, occurred_at=event.occurred_at,
                sku=event.sku, attributes={**subscription["attributes"], **event.attributes})
            await publisher.publish(names(STOREFRONT_EVENTS), customer_id.encode(), encode(notice))
        metrics.stock_notices.inc(len(waiting))

    @app.agent(stock_topic, name="track_stock", concurrency=1)
    async def track_stock(stream: faust.StreamT) -> None:
        await guarded(stream, "track_stock", on_stock)

    async def on_copurchase(message: Message) -> None:
        record = codec_for(CoPurchase).decode(message.value)
        if message.key != affinity.key(record.store_id, record.sku).encode():
            raise KeyMismatchError("record key is not its store and SKU (products.copurchases is keyed so)")
        before = affinities.get(message.key)
        after = affinity.fold(before, record)
        if after != before:  # a replayed order changes nothing
            affinities[message.key] = after

    @app.agent(copurchases_topic, name="count_copurchases", concurrency=1)
    async def count_copurchases(stream: faust.StreamT) -> None:
        await guarded(stream, "count_copurchases", on_copurchase)

    @app.agent(launches_topic, name="run_campaigns", concurrency=1)
    async def run_campaigns(stream: faust.StreamT) -> None:
        await guarded(stream, "run_campaigns", on_launch)

    @app.agent(journey_topic, name="run_journeys", concurrency=1)
    async def run_journeys(stream: faust.StreamT) -> None:
        await guarded(stream, "run_journeys", on_journey_input)

    @app.agent(profiles_topic, name="ingest_profiles", concurrency=1)
    async def ingest_profiles(stream: faust.StreamT) -> None:
        await guarded(stream, "ingest_profiles", on_profile)

    @app.agent(consents_topic, name="ingest_consents", concurrency=1)
    async def ingest_consents(stream: faust.StreamT) -> None:
        await guarded(stream, "ingest_consents", on_consent)

    @app.agent(inbound_topic, name="record_inbound", concurrency=1)
    async def record_inbound(stream: faust.StreamT) -> None:
        await guarded(stream, "record_inbound", on_inbound)

    # One agent for intents and outcomes, so the in_flight table has a single writer.
    @app.agent(routed_topic, name="route_messages", concurrency=1)
    async def route_messages(stream: faust.StreamT) -> None:
        await guarded(stream, "route_messages", on_routed)

    return app


RECEIPT_TIMEOUT = "receipt_timeout"
SCHEDULED_SEND = "scheduled_send"
JOURNEY_WAKE = "journey_wake"


class Backlog:
    """Campaign intents published vs decided in this process (route_bulk reads the partitions run_campaigns
    writes, co-partitioned). Approximate across a restart or a rebalance, and only ever errs towards
    letting the fan-out go on."""

    def __init__(self) -> None:
        self.published = 0
        self.decided = 0

    def waiting(self) -> int:
        return max(0, self.published - self.decided)


def stock_quantity(event: StorefrontEvent) -> int:
    """Units a restock reports (attribute ``quantity``; a restock without one means "in stock")."""
    try:
        return int(event.attributes.get("quantity", "1"))
    except ValueError:
        return 1


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a producer puts ``key`` on (murmur2, as Kafka's Java client, aiokafka and kafka-python do)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _check_key(message: Message, customer_id: str) -> None:
    if message.key != customer_id.encode():
        raise KeyMismatchError("record key is not its customer_id (topic must be keyed by customer_id)")
