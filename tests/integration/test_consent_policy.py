"""The store rules on the real broker: double opt-in, frequency caps, a marketing pause, erasure, and a
deferred send that survives a SIGKILLed worker. Driven only through topics."""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections.abc import Iterator

import pytest

from schemas.catalog import (
    CONSENT_STATE,
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_OUTCOMES,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
)
from schemas.codec import encode
from schemas.customers import (
    ConsentChange,
    ConsentSnapshot,
    ConsentSource,
    ConsentState,
    CustomerProfile,
    ErasureRequest,
)
from schemas.events import Cart, EventType, StorefrontEvent
from schemas.messages import InboundMessage, MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel, Purpose
from streams import compliance, sms
from streams.ids import message_id
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from streams.journeys.engine import message_id as journey_message_id
from tests.support import (
    Child,
    consume_until,
    make_settings,
    produce,
    wait_for_worker,
    wait_until,
    write_journeys,
    write_stores,
)

pytestmark = pytest.mark.integration

RULES = {
    "defaults": {"quiet_hours": {"enabled": False}, "frequency_caps": {"enabled": False}},
    "stores": {
        "doi-store": {"double_opt_in": True},
        "capped-store": {"frequency_caps": {"enabled": True, "rules": [{"max_count": 1, "window_hours": 24}],
                                            "on_capped": "drop"}},
        "deferring-store": {"frequency_caps": {"enabled": True, "rules": [{"max_count": 1, "window_hours": 24}],
                                               "on_capped": "defer"}},
    },
}


# The shipped abandoned-cart journey waits an hour first; these tests want the reminder decided at once.
CART_NOW = """
journey: cart_now
purpose: marketing
message_class: cart_reminder
trigger: {event: cart_abandoned}
steps:
  - {id: remind, send: cart_reminder, channels: [sms], expires_after: 48h}
"""
SHIPPING = """
journey: shipping_update
purpose: transactional
trigger: {event: order_shipped}
steps:
  - {id: notify, send: shipping_update, channels: [sms, whatsapp, email]}
"""


def _start_worker(settings: Settings) -> Child:
    return Child(["worker", "--loglevel", "warn"], settings,
                 settings.worker.data_dir.parent / f"worker-{time.monotonic_ns()}.log")


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("consent-policy")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.stores_file = write_stores(directory, RULES)
    settings.worker.journeys_dir = write_journeys(directory, CART_NOW, SHIPPING)
    settings.worker.timer_interval = 0.5
    create_topics(settings)
    child = _start_worker(settings)
    yield settings
    assert child.stop() in (0, -15), child.output()


def _send(settings: Settings, topic: str, *records) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    produce(settings.kafka.bootstrap_servers, names(topic), [(r.customer_id.encode(), encode(r)) for r in records])
    if topic in (CUSTOMER_PROFILES, CUSTOMER_CONSENTS, CUSTOMER_ERASURES, MESSAGE_INBOUND):
        wait_for_worker(settings, [names(topic)])


def _outcomes(settings: Settings, done, timeout: float = 60.0) -> list[MessageOutcome]:
    topic = TopicNames(settings.kafka.topic_prefix)(MESSAGE_OUTCOMES)
    return [o for _, o in consume_until(settings.kafka.bootstrap_servers, topic,
                                        lambda seen: done([o for _, o in seen]), timeout, model=MessageOutcome)]


def _commands(settings: Settings, channel: Channel, purpose: Purpose, done, timeout: float = 60.0) -> list[SendCommand]:
    topic = TopicNames(settings.kafka.topic_prefix)(commands_topic(channel, purpose))
    return [c for _, c in consume_until(settings.kafka.bootstrap_servers, topic,
                                        lambda seen: done([c for _, c in seen]), timeout, model=SendCommand)]


def _customer(store: str, **overrides) -> CustomerProfile:
    return f.profile(store_id=store, time_zone="UTC", **overrides)


def _opt_in(customer: CustomerProfile, channel: Channel = Channel.SMS, **overrides) -> ConsentChange:
    return f.consent(customer.customer_id, channel, ConsentState.OPTED_IN, Purpose.MARKETING,
                     store_id=customer.store_id, at=dt.datetime.now(dt.timezone.utc), **overrides)


def _cart(customer: CustomerProfile) -> StorefrontEvent:
    cart = Cart(cart_id=f.uid(), cart_url="https://shop.example/cart/9", total_minor=4_900, currency="EUR")
    return StorefrontEvent(event_id=f.uid(), event_type=EventType.CART_ABANDONED, store_id=customer.store_id,
                           customer_id=customer.customer_id, occurred_at=dt.datetime.now(dt.timezone.utc), cart=cart)


def _reply(customer: CustomerProfile, text: str) -> InboundMessage:
    return InboundMessage(inbound_id=f.uid(), customer_id=customer.customer_id, store_id=customer.store_id,
                          channel=Channel.SMS, provider="twilio", provider_message_id="SM" + f.uid().replace("-", ""),
                          text=text, received_at=dt.datetime.now(dt.timezone.utc))


def _reminder(event: StorefrontEvent) -> str:
    return journey_message_id(event.event_id, "cart_now", "remind")


def _states(settings: Settings, customer: CustomerProfile, done) -> list[ConsentSnapshot]:
    topic = TopicNames(settings.kafka.topic_prefix)(CONSENT_STATE)
    records = consume_until(settings.kafka.bootstrap_servers, topic,
                            lambda seen: done([s for _, s in seen if s and s.customer_id == customer.customer_id]),
                            model=ConsentSnapshot)
    return [s for _, s in records if s and s.customer_id == customer.customer_id]


def test_double_opt_in_keeps_marketing_pending_until_the_customer_answers_yes(worker: Settings) -> None:
    customer = _customer("doi-store", locale="pl")
    _send(worker, CUSTOMER_PROFILES, customer)
    checkbox = _opt_in(customer)
    _send(worker, CUSTOMER_CONSENTS, checkbox)

    # Pending, and asked once, in the customer's language, on the channel of the opt-in.
    confirm_id = message_id(checkbox.change_id, "optin_confirmation")
    (ask,) = [c for c in _commands(worker, Channel.SMS, Purpose.TRANSACTIONAL,
                                   lambda seen: any(c.message_id == confirm_id for c in seen))
              if c.message_id == confirm_id]
    assert "TAK" in ask.body and ask.to == customer.phone
    assert _states(worker, customer, lambda mine: bool(mine))[-1].slots["sms:marketing"] == ConsentState.PENDING

    before = _cart(customer)
    _send(worker, STOREFRONT_EVENTS, before)
    (held,) = [o for o in _outcomes(worker, lambda seen: any(o.message_id == _reminder(before) for o in seen))
               if o.message_id == _reminder(before)]
    assert (held.status, held.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.PENDING_CONFIRMATION)

    yes = _reply(customer, "Tak!")
    _send(worker, MESSAGE_INBOUND, yes)
    changes = consume_until(worker.kafka.bootstrap_servers, TopicNames(worker.kafka.topic_prefix)(CUSTOMER_CONSENTS),
                            lambda seen: any(c.source == ConsentSource.DOUBLE_OPT_IN for _, c in seen),
                            model=ConsentChange)
    (confirmed,) = [c for _, c in changes if c.customer_id == customer.customer_id
                    and c.source == ConsentSource.DOUBLE_OPT_IN]
    assert (confirmed.state, confirmed.purpose) == (ConsentState.OPTED_IN, Purpose.MARKETING)
    assert confirmed.evidence.inbound_message_id == yes.provider_message_id
    _states(worker, customer, lambda mine: mine and mine[-1].slots.get("sms:marketing") == ConsentState.OPTED_IN)

    after = _cart(customer)
    _send(worker, STOREFRONT_EVENTS, after)
    (sent,) = [c for c in _commands(worker, Channel.SMS, Purpose.MARKETING,
                                    lambda seen: any(c.message_id == _reminder(after) for c in seen))
               if c.message_id == _reminder(after)]
    assert "https://shop.example/cart/9" in sent.body
    assert sent.body.endswith("\n" + compliance.opt_out_line(sent.locale))  # marketing says how to stop it
    assert sent.sms.segments == sms.segment(sent.body).segments


def test_a_capped_store_that_drops_sends_one_reminder_and_reports_the_second(worker: Settings) -> None:
    customer = _customer("capped-store")
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, _opt_in(customer))
    first, second = _cart(customer), _cart(customer)
    _send(worker, STOREFRONT_EVENTS, first, second)

    wanted = {_reminder(first), _reminder(second)}
    outcomes = {o.message_id: o for o in _outcomes(worker, lambda seen: _reminder(second) in {o.message_id for o in seen})
                if o.message_id in wanted}
    assert (outcomes[_reminder(second)].status, outcomes[_reminder(second)].reason) == (
        OutcomeStatus.SUPPRESSED, OutcomeReason.FREQUENCY_CAP)
    commands = _commands(worker, Channel.SMS, Purpose.MARKETING,
                         lambda seen: _reminder(first) in {c.message_id for c in seen})
    assert [c.message_id for c in commands if c.message_id in wanted] == [_reminder(first)]


def test_a_capped_store_that_defers_schedules_the_second_for_when_the_window_frees(worker: Settings) -> None:
    customer = _customer("deferring-store")
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, _opt_in(customer))
    first, second = _cart(customer), _cart(customer)
    _send(worker, STOREFRONT_EVENTS, first)
    _commands(worker, Channel.SMS, Purpose.MARKETING, lambda seen: _reminder(first) in {c.message_id for c in seen})
    _send(worker, STOREFRONT_EVENTS, second)

    (later,) = [o for o in _outcomes(worker, lambda seen: _reminder(second) in {o.message_id for o in seen})
                if o.message_id == _reminder(second)]
    assert (later.status, later.reason) == (OutcomeStatus.SCHEDULED, OutcomeReason.FREQUENCY_CAP)
    assert later.scheduled_for is not None
    assert dt.timedelta(hours=23) < later.scheduled_for - later.occurred_at <= dt.timedelta(hours=24)


def test_a_customer_who_paused_marketing_gets_none_but_still_gets_transactional(worker: Settings) -> None:
    customer = _customer("store-1", marketing_paused_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, _opt_in(customer))
    cart, shipped = _cart(customer), f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, cart, shipped)

    (paused,) = [o for o in _outcomes(worker, lambda seen: _reminder(cart) in {o.message_id for o in seen})
                 if o.message_id == _reminder(cart)]
    assert (paused.status, paused.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.PAUSED)
    update = journey_message_id(shipped.event_id, "shipping_update", "notify")
    _commands(worker, Channel.SMS, Purpose.TRANSACTIONAL, lambda seen: update in {c.message_id for c in seen})


def test_an_erased_customer_is_forgotten_and_never_messaged_again(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = _customer("store-1")
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, _opt_in(customer))
    _send(worker, CUSTOMER_ERASURES, ErasureRequest(request_id=f.uid(), customer_id=customer.customer_id,
                                                    store_id="store-1", requested_at=dt.datetime.now(dt.timezone.utc)))

    # The compacted profile gets a tombstone; gateways see every slot opted out (queued sends stop).
    profiles = consume_until(worker.kafka.bootstrap_servers, names(CUSTOMER_PROFILES),
                             lambda seen: any(k == customer.customer_id.encode() and v is None for k, v in seen))
    assert profiles[-1] == (customer.customer_id.encode(), None) or any(v is None for _, v in profiles)
    latest = _states(worker, customer, lambda mine: mine and len(mine[-1].slots) == 6)[-1]
    assert set(latest.slots.values()) == {ConsentState.OPTED_OUT}

    # A re-import of the same customer and an order afterwards: nothing is sent, the reason says why.
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, _opt_in(customer))
    shipped = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, shipped)
    update = journey_message_id(shipped.event_id, "shipping_update", "notify")
    (outcome,) = [o for o in _outcomes(worker, lambda seen: update in {o.message_id for o in seen})
                  if o.message_id == update]
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.ERASED)


def test_a_deferred_send_survives_a_sigkilled_worker_and_goes_once_at_its_time(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("deferred")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.timer_interval = 0.5
    settings.worker.journeys_dir = write_journeys(directory, CART_NOW)
    opens = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=40)).replace(microsecond=0)
    settings.worker.stores_file = write_stores(directory, {"defaults": {
        "time_zone": "UTC", "frequency_caps": {"enabled": False},
        "quiet_hours": {"start": opens.time().isoformat(), "end": (opens + dt.timedelta(hours=2)).time().isoformat()},
    }})
    create_topics(settings)
    customer = _customer("store-1")
    first = _start_worker(settings)
    try:
        _send(settings, CUSTOMER_PROFILES, customer)
        _send(settings, CUSTOMER_CONSENTS, _opt_in(customer))
        cart = _cart(customer)
        _send(settings, STOREFRONT_EVENTS, cart)
        (waiting,) = [o for o in _outcomes(settings, lambda seen: _reminder(cart) in {o.message_id for o in seen})
                      if o.message_id == _reminder(cart)]
        assert (waiting.status, waiting.reason, waiting.scheduled_for) == (
            OutcomeStatus.SCHEDULED, OutcomeReason.QUIET_HOURS, opens)
    finally:
        first.stop(signal.SIGKILL)

    second = _start_worker(settings)
    try:
        commands = _commands(settings, Channel.SMS, Purpose.MARKETING,
                             lambda seen: _reminder(cart) in {c.message_id for c in seen}, timeout=120)
        (sent,) = [c for c in commands if c.message_id == _reminder(cart)]
        assert sent.created_at >= opens  # not a moment before the quiet hours ended
        # Once: a few more timer ticks after it went, still one command and no second outcome.
        deadline = time.monotonic() + 5 * settings.worker.timer_interval + 2
        wait_until(lambda: time.monotonic() > deadline, 30, "a few timer ticks", second)
        again = _commands(settings, Channel.SMS, Purpose.MARKETING,
                          lambda seen: _reminder(cart) in {c.message_id for c in seen})
        assert [c.message_id for c in again].count(_reminder(cart)) == 1
    finally:
        assert second.stop() in (0, -15), second.output()
