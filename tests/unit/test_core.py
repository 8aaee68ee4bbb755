"""Specs for the worker's core (streams/core): one customer's state, one pure step per kind of input.

No Kafka, no Faust: each test builds a state, applies an input with a virtual clock and reads the new
state and the effects the step asks its driver for."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import CONSENT_STATE, CUSTOMER_CONSENTS, CUSTOMER_PROFILES, PRODUCT_COPURCHASES
from schemas.codec import encode
from schemas.customers import ConsentSource, ConsentState, ErasureRequest
from schemas.events import EventType, Order, LineItem, StorefrontEvent
from schemas.messages import CampaignLaunch, InboundMessage, OutcomeReason, OutcomeStatus
from schemas.types import Channel, Purpose
from streams import affinity, core, erasure, publish
from streams.clock import VirtualClock
from streams.core.state import REPLIES_KEPT
from streams.journeys.loader import load_dir
from streams.stores import StoreDirectory
from tests import factories as f

NOW = f.NOW  # a Sunday, 13:00 in Warsaw: no quiet hours by default
JOURNEYS = load_dir()
NO_QUIET = {"quiet_hours": {"enabled": False}}


def context(clock: VirtualClock | None = None, erased: set[bytes] = frozenset(), stores: StoreDirectory | None = None,
            stock: dict[str, int] | None = None) -> core.Context:
    return core.Context(clock=clock or VirtualClock(NOW), journeys=JOURNEYS,
                        stores=stores or StoreDirectory(NO_QUIET), is_erased=erased.__contains__,
                        stock=(stock or {}).get)


def customer(channels=(Channel.SMS, Channel.EMAIL), marketing=(), **profile) -> core.CustomerState:
    """A customer with a profile and transactional consent on ``channels`` (marketing on ``marketing``)."""
    person = f.profile("c1", channel_preferences=list(channels), **profile)
    state = core.CustomerState("c1").with_profile(person, encode(person))
    for channel in channels:
        state = core.step(state, core.ConsentInput(f.consent("c1", channel, ConsentState.OPTED_IN), NOW),
                          context()).state
    for channel in marketing:
        state = core.step(state, core.ConsentInput(f.consent("c1", channel, ConsentState.OPTED_IN,
                                                             Purpose.MARKETING), NOW), context()).state
    return state


def of(kind, effects) -> list:
    return [e for e in effects if isinstance(e, kind)]


def order_placed(event_id: str = "ev-order", skus=("SNK-1", "SOCK-2")) -> StorefrontEvent:
    order = Order(order_id="1001", total_minor=4900, currency="PLN", order_url="https://shop.example/o/1001",
                  items=[LineItem(sku=s, name=s, quantity=1, unit_price_minor=100) for s in skus])
    return StorefrontEvent(event_id=event_id, event_type=EventType.ORDER_PLACED, store_id="store-1",
                           customer_id="c1", occurred_at=NOW, order=order)


def reply(text: str, channel: Channel = Channel.SMS, inbound_id: str = "in-1") -> InboundMessage:
    return InboundMessage(inbound_id=inbound_id, customer_id="c1", store_id="store-1", channel=channel,
                          provider="twilio", provider_message_id=f"SM{inbound_id}", text=text, received_at=NOW)


# --- profiles -------------------------------------------------------------------------------------------

def test_a_profile_is_kept_decoded_and_its_tombstone_forgets_it():
    person = f.profile("c1")
    state = core.step(None, core.ProfileInput(person, encode(person)), context(), "c1").state
    assert state.profile == person
    gone = core.step(state, core.ProfileInput(None, None), context()).state
    assert gone.profile is None and gone.is_empty()


def test_a_profile_reimported_after_an_erasure_is_not_kept():
    key = erasure.suppression_key(b"dev-only-erasure-key", "c1")
    done = core.step(None, core.ProfileInput(f.profile("c1"), encode(f.profile("c1"))), context(erased={key}), "c1")
    assert done.state.profile is None
    assert done.effects == [core.Ignored("profile_ignored")]


# --- consent --------------------------------------------------------------------------------------------

def test_a_consent_change_is_folded_and_its_snapshot_published_once():
    change = f.consent("c1", Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING)
    first = core.step(customer(), core.ConsentInput(change, NOW), context())
    assert first.state.consents["sms:marketing"]["state"] == "opted_in"
    assert [e.topic for e in of(core.Emit, first.effects)] == [CONSENT_STATE]
    replayed = core.step(first.state, core.ConsentInput(change, NOW), context())
    assert replayed.effects == [] and replayed.state == first.state


def test_double_opt_in_records_pending_and_asks_for_the_yes_in_the_same_step():
    stores = StoreDirectory({**NO_QUIET, "double_opt_in": True})
    change = f.consent("c1", Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING)
    done = core.step(customer(), core.ConsentInput(change, NOW), context(stores=stores))
    assert done.state.consents["sms:marketing"]["state"] == "pending"
    [send] = of(core.Send, done.effects)
    assert send.command.template == "optin_confirmation" and send.command.channel == Channel.SMS
    assert send.command.message_id in done.state.in_flight  # awaiting its receipt, like any send


# --- storefront events ----------------------------------------------------------------------------------

def test_an_order_placed_is_decided_in_the_same_step_with_no_intent_published():
    done = core.step(customer(channels=(Channel.WHATSAPP, Channel.EMAIL)), core.EventInput(order_placed(), NOW),
                     context())
    [send] = of(core.Send, done.effects)
    assert send.command.template == "order_confirmation" and send.intent.journey == "order_confirmation"
    assert send.command.message_id in done.state.in_flight
    assert sorted(e.key for e in of(core.Emit, done.effects) if e.topic == PRODUCT_COPURCHASES) == [
        affinity.key("store-1", "SNK-1").encode(), affinity.key("store-1", "SOCK-2").encode()]
    assert done.state.behaviour["orders"] == 1
    assert {n.kind for n in of(core.JourneyNote, done.effects)} >= {"entered"}


def test_an_erased_customers_event_reports_each_message_it_would_have_sent_and_keeps_nothing():
    key = erasure.suppression_key(b"dev-only-erasure-key", "c1")
    done = core.step(None, core.EventInput(order_placed(), NOW), context(erased={key}), "c1")
    reports = of(core.Report, done.effects)
    assert reports and {r.outcome.reason for r in reports} == {OutcomeReason.ERASED}
    assert not of(core.Send, done.effects) and done.state.is_empty()


def test_a_wait_until_an_outcome_wakes_on_the_steps_own_suppression():
    """abandoned_cart: the SMS reminder is suppressed (no marketing consent), so the e-mail step that waits
    for the SMS's outcome runs in the same step instead of after the wait's timeout."""
    cart = StorefrontEvent(event_id="ev-cart", event_type=EventType.CART_ABANDONED, store_id="store-1",
                           customer_id="c1", occurred_at=NOW, cart={"cart_id": "9", "total_minor": 4900,
                                                                    "currency": "PLN",
                                                                    "cart_url": "https://shop.example/cart/9"})
    state = core.step(customer(), core.EventInput(cart, NOW), context()).state
    [wake] = [t for t in state.timers() if t.kind == core.JOURNEY_WAKE]
    done = core.step(state, core.TimerInput(core.JOURNEY_WAKE, wake.ident), context(VirtualClock(wake.due)))
    reports = of(core.Report, done.effects)
    assert [(r.outcome.channel, r.outcome.reason) for r in reports] == [
        (None, OutcomeReason.NO_CONSENT), (None, OutcomeReason.NO_CONSENT)]


# --- replies --------------------------------------------------------------------------------------------

def test_stop_opts_out_at_once_records_the_ledger_and_suppresses_the_next_campaign():
    state = customer(marketing=(Channel.SMS,))
    done = core.step(state, core.ReplyInput(reply("STOP")), context())
    assert done.state.consents["sms:marketing"]["state"] == "opted_out"
    ledger = [e.value for e in of(core.Emit, done.effects) if e.topic == CUSTOMER_CONSENTS]
    assert {c.purpose for c in ledger} == set(Purpose) and {c.source for c in ledger} == {ConsentSource.KEYWORD}
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=NOW,
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    after = core.step(done.state, core.CampaignInput(launch), context())
    assert [r.outcome.reason for r in of(core.Report, after.effects)] == [OutcomeReason.OPTED_OUT]


def test_a_bare_yes_after_stop_resubscribes_what_was_withdrawn():
    state = core.step(customer(marketing=(Channel.SMS,)), core.ReplyInput(reply("STOP")), context()).state
    later = VirtualClock(NOW + dt.timedelta(minutes=5))
    yes = reply("YES", inbound_id="in-2").model_copy(update={"received_at": later.now()})
    done = core.step(state, core.ReplyInput(yes), context(later))
    assert done.state.consents["sms:marketing"]["state"] == "opted_in"
    assert done.state.consents["sms:transactional"]["state"] == "opted_in"
    assert [n.from_reply for n in of(core.ConsentNote, done.effects)] == [True, True]


def test_a_stop_replayed_after_a_start_changes_nothing_even_from_the_changelog():
    state = core.step(customer(marketing=(Channel.SMS,)), core.ReplyInput(reply("STOP")), context()).state
    later = VirtualClock(NOW + dt.timedelta(minutes=5))
    start = reply("START", inbound_id="in-2").model_copy(update={"received_at": later.now()})
    state = core.step(state, core.ReplyInput(start), context(later)).state
    assert state.consents["sms:marketing"]["state"] == "opted_in"
    state = core.CustomerState.from_json("c1", state.as_json())  # a restart: the state from its changelog
    much_later = VirtualClock(NOW + dt.timedelta(days=2))  # the gateway stamps the replay with its own clock
    replayed = reply("STOP").model_copy(update={"received_at": much_later.now()})
    done = core.step(state, core.ReplyInput(replayed), context(much_later))
    assert done.state.consents == state.consents
    assert done.effects == [core.Ignored("reply_replayed")]


def test_only_the_newest_replies_are_remembered():
    state = customer()
    for n in range(REPLIES_KEPT + 5):
        text = reply("thanks", inbound_id=f"in-{n}").model_copy(update={"received_at": NOW + dt.timedelta(seconds=n)})
        state = core.step(state, core.ReplyInput(text), context()).state
    assert set(state.replies) == {f"in-{n}" for n in range(5, REPLIES_KEPT + 5)}


def test_help_is_answered_in_the_same_step_and_opens_the_whatsapp_window():
    done = core.step(customer(channels=(Channel.WHATSAPP,)), core.ReplyInput(reply("HELP", Channel.WHATSAPP)),
                     context())
    [send] = of(core.Send, done.effects)
    assert send.command.template == "help_reply" and send.command.whatsapp_template is None  # free text: window open
    assert done.state.conversations["whatsapp"] == int(NOW.timestamp() * 1000)


# --- outcomes and timers --------------------------------------------------------------------------------

def test_a_failed_sms_falls_back_to_the_next_channel_and_a_repeat_changes_nothing():
    state = customer()
    intent = f.intent("c1", channels=[Channel.SMS, Channel.EMAIL])
    first = core.step(state, core.IntentInput(intent, encode(intent)), context())
    [send] = of(core.Send, first.effects)
    failed = publish.for_command(send.command, OutcomeStatus.FAILED, NOW, provider="twilio")
    retried = core.step(first.state, core.OutcomeInput(failed), context())
    [again] = of(core.Send, retried.effects)
    assert again.command.channel == Channel.EMAIL and again.note == "fallback after sms"
    assert core.step(retried.state, core.OutcomeInput(failed), context()).effects == []


def test_a_silent_channel_falls_back_when_its_receipt_timer_fires():
    intent = f.intent("c1", channels=[Channel.SMS, Channel.EMAIL])
    state = core.step(customer(), core.IntentInput(intent, encode(intent)), context()).state
    [timer] = state.timers({"sms": 900.0})
    assert timer.kind == core.RECEIPT_TIMEOUT and timer.due == NOW + dt.timedelta(seconds=900)
    done = core.step(state, core.TimerInput(timer.kind, timer.ident, timer.channel), context(VirtualClock(timer.due)))
    assert [s.command.channel for s in of(core.Send, done.effects)] == [Channel.EMAIL]


def test_a_deferred_send_is_decided_again_when_due_and_once_only():
    stores = StoreDirectory({"quiet_hours": {"enabled": True}})
    night = VirtualClock(dt.datetime(2026, 11, 22, 23, 0, tzinfo=dt.timezone.utc))  # midnight in Warsaw
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=night.now(),
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    deferred = core.step(customer(marketing=(Channel.SMS,)), core.CampaignInput(launch), context(night, stores=stores))
    [report] = of(core.Report, deferred.effects)
    assert report.outcome.status == OutcomeStatus.SCHEDULED and report.outcome.reason == OutcomeReason.QUIET_HOURS
    [timer] = deferred.state.timers()
    morning = VirtualClock(timer.due)
    sent = core.step(deferred.state, core.TimerInput(timer.kind, timer.ident), context(morning, stores=stores))
    assert [s.note for s in of(core.Send, sent.effects)] == ["deferred send, decided again"]
    assert core.step(sent.state, core.TimerInput(timer.kind, timer.ident), context(morning, stores=stores)).effects == []


def test_a_back_in_stock_message_is_suppressed_when_sold_out_again():
    intent = f.intent("c1", stock_sku="SNK-1")
    done = core.step(customer(), core.IntentInput(intent, encode(intent)), context(stock={"sku:SNK-1": 0}))
    assert [r.outcome.reason for r in of(core.Report, done.effects)] == [OutcomeReason.OUT_OF_STOCK]


# --- campaigns and erasure ------------------------------------------------------------------------------

def test_a_campaign_reaches_only_its_stores_customers_in_the_segment():
    launch = CampaignLaunch(campaign_id="flash", name="flash", store_id="store-1", template="flash_sale",
                            channels=[Channel.SMS], launched_at=NOW, segment_json='{"locales": ["pl"]}',
                            variables={"coupon_code": "FLASH30", "coupon_value": "30%"})
    state = customer(marketing=(Channel.SMS,))
    assert core.step(state, core.CampaignInput(launch), context()).effects == []  # locale en: not selected
    polish = customer(marketing=(Channel.SMS,), locale="pl")
    [send] = of(core.Send, core.step(polish, core.CampaignInput(launch), context()).effects)
    assert send.command.purpose == Purpose.MARKETING
    elsewhere = launch.model_copy(update={"store_id": "store-2"})
    assert core.step(polish, core.CampaignInput(elsewhere), context()).effects == []


def test_an_erasure_forgets_the_customer_and_stops_what_is_queued():
    request = ErasureRequest(request_id="r1", customer_id="c1", store_id="store-1", requested_at=NOW)
    done = core.step(customer(), core.ErasureInput(request), context())
    assert done.state is None
    assert of(core.Erased, done.effects) == [core.Erased(erasure.suppression_key(b"dev-only-erasure-key", "c1"))]
    snapshot = next(e.value for e in of(core.Emit, done.effects) if e.topic == CONSENT_STATE)
    assert set(snapshot.slots.values()) == {ConsentState.OPTED_OUT}
    assert [e.value for e in of(core.Emit, done.effects) if e.topic == CUSTOMER_PROFILES] == [None]


# --- the record -----------------------------------------------------------------------------------------

@given(texts=st.lists(st.sampled_from(["STOP", "HELP", "YES", "START", "hello", "הסר", "СТОП"]), max_size=6))
def test_the_state_survives_its_changelog_format(texts):
    state = customer(marketing=(Channel.SMS,))
    for n, text in enumerate(texts):
        state = core.step(state, core.ReplyInput(reply(text, inbound_id=f"in-{n}")), context()).state
    restored = core.CustomerState.from_json("c1", state.as_json())
    assert restored == state and restored.profile == state.profile
    assert restored.timers({"sms": 900.0}) == state.timers({"sms": 900.0})


def test_a_step_leaves_the_state_it_was_given_as_it_was():
    state = customer(marketing=(Channel.SMS,))
    before = core.CustomerState.from_json("c1", state.as_json())
    for item in (core.ReplyInput(reply("STOP")), core.EventInput(order_placed(), NOW),
                 core.IntentInput(f.intent("c1"), encode(f.intent("c1")))):
        assert core.step(state, item, context()).state != state
        assert state == before
