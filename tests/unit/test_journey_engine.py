"""Specs for the journey engine: pure functions from (state, input, context) to (state, actions).

Journeys here are written inline, each showing one rule; the shipped journeys are driven end to end
in test_seed_journeys.py.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import uuid
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Cart, EventType, LineItem, Order, StorefrontEvent
from schemas.messages import InboundMessage, MessageOutcome, OutcomeReason, OutcomeStatus
from schemas.types import Channel
from streams import ids
from streams.clock import VirtualClock
from streams.errors import ConfigurationError
from streams.journeys import coupons, engine, experiments
from streams.journeys.definitions import Coupon, Journey, Variant
from streams.journeys.engine import (
    Context,
    due,
    message_id,
    on_event,
    on_outcome,
    on_reply,
    on_wake,
)
from streams.journeys.loader import parse

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)


def journey(text: str) -> Journey:
    return parse(textwrap.dedent(text).lstrip("\n"), "<test>")


def ctx(journeys: dict[str, Journey] | Journey, now: dt.datetime = T0, **kw) -> Context:
    if isinstance(journeys, Journey):
        journeys = {journeys.journey: journeys}
    return Context(journeys=journeys, now=now, **kw)


def event(kind: EventType = EventType.CART_ABANDONED, customer: str = "cust-1", event_id: str | None = None,
          **attributes: str) -> StorefrontEvent:
    extra = {}
    if kind in (EventType.ORDER_PLACED, EventType.ORDER_SHIPPED, EventType.ORDER_DELIVERED):
        extra["order"] = Order(order_id="1001", total_minor=100, currency="EUR", order_url="https://shop.example/o/1")
    if kind is EventType.CART_ABANDONED:
        extra["cart"] = Cart(cart_id="c1", cart_url="https://shop.example/c/1", total_minor=100, currency="EUR")
    return StorefrontEvent(event_id=event_id or str(uuid.uuid4()), event_type=kind, store_id="store-1",
                           customer_id=customer, occurred_at=T0, attributes=attributes, **extra)


def outcome(message: str, status: OutcomeStatus, customer: str = "cust-1") -> MessageOutcome:
    return MessageOutcome(outcome_id=ids.outcome_id(message, status.value), message_id=message,
                          customer_id=customer, store_id="store-1", status=status, occurred_at=T0)


def reply(text: str | None = None, payload: str | None = None, customer: str = "cust-1") -> InboundMessage:
    return InboundMessage(inbound_id=str(uuid.uuid4()), customer_id=customer, store_id="store-1",
                          channel=Channel.WHATSAPP, provider="meta", provider_message_id="wamid.1", text=text,
                          button_payload=payload, received_at=T0)


def instance_of(state: dict, name: str) -> dict:
    return state["active"][name]


REMIND = journey("""
    journey: remind
    purpose: marketing
    message_class: cart_reminder
    trigger: {event: cart_abandoned}
    exit_on: [order_placed]
    steps:
      - {id: pause, wait: 1h}
      - {id: sms, send: cart_reminder, channels: [sms], expires_after: 48h}
      - {id: settle, wait: {for: 4h, until: [outcome]}}
      - id: check
        branch:
          - {when: {outcome: {step: sms, status: [delivered, read]}}, goto: end}
        otherwise: email
      - {id: email, send: cart_reminder, channels: [email]}
    """)


def entered(j: Journey = REMIND, ev: StorefrontEvent | None = None, now: dt.datetime = T0, **kw) -> engine.Result:
    return on_event(None, ev or event(), now, ctx(j, now, **kw))


# --- ids and replays ------------------------------------------------------------------------------

def test_instance_and_message_ids_derive_from_the_trigger_event():
    ev = event()
    state = entered(ev=ev).state
    later = on_wake(state, instance_of(state, "remind")["id"], ctx(REMIND, T0 + HOUR))
    (intent,) = later.intents
    assert instance_of(state, "remind")["id"] == ids.message_id(ev.event_id, "remind")
    assert intent.message_id == message_id(ev.event_id, "remind", "sms") == ids.message_id(ev.event_id, "remind:sms")
    assert (intent.trigger_event_id, intent.journey, intent.template) == (ev.event_id, "remind", "cart_reminder")


def test_a_replay_of_the_same_event_from_the_same_state_yields_identical_results():
    now_send = journey("""
        journey: now
        purpose: transactional
        trigger: {event: order_shipped}
        steps:
          - {id: notify, send: shipping_update, channels: [sms, email]}
        """)
    ev = event(EventType.ORDER_SHIPPED)
    first = on_event(None, ev, T0, ctx(now_send))
    second = on_event(None, ev.model_copy(), T0, ctx(now_send))
    assert first.intents == second.intents and len(first.intents) == 1
    assert first.state == second.state and first.entered == second.entered == ["now"]


def test_a_replayed_wake_up_from_the_same_state_yields_identical_intents():
    state = entered().state
    wake = instance_of(state, "remind")["id"]
    first = on_wake(state, wake, ctx(REMIND, T0 + HOUR))
    second = on_wake(state, wake, ctx(REMIND, T0 + HOUR))
    assert first.intents == second.intents and first.state == second.state


def test_the_engine_never_mutates_the_state_it_is_given():
    state = entered().state
    snapshot = repr(state)
    on_wake(state, instance_of(state, "remind")["id"], ctx(REMIND, T0 + HOUR))
    on_event(state, event(EventType.ORDER_PLACED), T0, ctx(REMIND))
    assert repr(state) == snapshot


def test_the_intent_carries_the_trigger_receipt_time_and_now():
    received = T0 - dt.timedelta(milliseconds=30)
    now_send = journey("""
        journey: now
        purpose: transactional
        trigger: {event: order_shipped}
        steps:
          - {id: notify, send: shipping_update, channels: [sms]}
        """)
    (intent,) = on_event(None, event(EventType.ORDER_SHIPPED), received, ctx(now_send)).intents
    assert (intent.trigger_received_at, intent.created_at) == (received, T0)


# --- waits, wake-ups and due() --------------------------------------------------------------------

def test_a_wait_sends_nothing_and_records_when_to_wake():
    result = entered()
    inst = instance_of(result.state, "remind")
    assert result.intents == [] and result.entered == ["remind"]
    assert (inst["at"], inst["wake_at"], inst["wake_on"]) == (0, engine._ms(T0 + HOUR), [])


def test_due_lists_only_the_waits_whose_time_has_come():
    later = journey("""
        journey: later
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: pause, wait: 3h}
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    state = on_event(None, event(), T0, ctx({"remind": REMIND, "later": later})).state
    ids_by_name = {name: inst["id"] for name, inst in state["active"].items()}
    assert list(due(state, T0)) == []
    assert list(due(state, T0 + HOUR - dt.timedelta(milliseconds=1))) == []
    assert list(due(state, T0 + HOUR)) == [(ids_by_name["remind"], T0 + HOUR)]
    assert sorted(due(state, T0 + 5 * HOUR)) == sorted([(ids_by_name["remind"], T0 + HOUR),
                                                        (ids_by_name["later"], T0 + 3 * HOUR)])
    assert list(due(None, T0)) == [] and list(due({}, T0)) == []


def test_a_wake_up_before_its_time_changes_nothing():
    state = entered().state
    result = on_wake(state, instance_of(state, "remind")["id"], ctx(REMIND, T0 + HOUR - dt.timedelta(seconds=1)))
    assert result.intents == [] and result.state == state


def test_a_wake_up_for_another_instance_changes_nothing():
    state = entered().state
    result = on_wake(state, "not-an-instance", ctx(REMIND, T0 + 10 * HOUR))
    assert result.intents == [] and result.state == state


def test_a_repeated_wake_up_changes_nothing():
    state = entered().state
    wake = instance_of(state, "remind")["id"]
    first = on_wake(state, wake, ctx(REMIND, T0 + HOUR))
    again = on_wake(first.state, wake, ctx(REMIND, T0 + HOUR + dt.timedelta(seconds=5)))
    assert len(first.intents) == 1 and again.intents == [] and again.state == first.state


def test_a_stale_wake_up_for_a_finished_instance_changes_nothing():
    state = entered().state
    wake = instance_of(state, "remind")["id"]
    gone = on_event(state, event(EventType.ORDER_PLACED), T0, ctx(REMIND)).state
    result = on_wake(gone, wake, ctx(REMIND, T0 + 2 * HOUR))
    assert result.intents == [] and result.state == gone and gone["active"] == {}


def test_time_scale_shortens_waits():
    result = entered(time_scale=0.001)
    assert instance_of(result.state, "remind")["wake_at"] == engine._ms(T0 + dt.timedelta(seconds=3.6))


def test_a_virtual_clock_drives_the_engine():
    clock = VirtualClock(T0)
    state = on_event(None, event(), clock.now(), ctx(REMIND, clock.now())).state
    clock.advance(HOUR)
    [(wake, at)] = due(state, clock.now())
    assert at == clock.now()
    assert len(on_wake(state, wake, ctx(REMIND, clock.now())).intents) == 1


# --- outcomes -------------------------------------------------------------------------------------

def at_settle(ev: StorefrontEvent | None = None) -> tuple[dict, str]:
    """The REMIND journey after its SMS: waiting up to 4h for an outcome. Returns (state, SMS id)."""
    state = entered(ev=ev).state
    result = on_wake(state, instance_of(state, "remind")["id"], ctx(REMIND, T0 + HOUR))
    return result.state, result.intents[0].message_id


@pytest.mark.parametrize("status", [OutcomeStatus.SCHEDULED, OutcomeStatus.SENT, OutcomeStatus.AMBIGUOUS,
                                    OutcomeStatus.OTHER])
def test_an_outcome_that_settles_nothing_does_not_end_an_outcome_wait(status):
    state, sms = at_settle()
    result = on_outcome(state, outcome(sms, status), ctx(REMIND, T0 + HOUR))
    assert result.intents == [] and instance_of(result.state, "remind")["wake_at"] is not None
    assert instance_of(result.state, "remind")["status"] == {sms: status.value}


@pytest.mark.parametrize("status, emails", [
    (OutcomeStatus.DELIVERED, 0), (OutcomeStatus.READ, 0), (OutcomeStatus.UNDELIVERED, 1),
    (OutcomeStatus.FAILED, 1), (OutcomeStatus.SUPPRESSED, 1),
])
def test_a_settled_outcome_ends_the_wait_at_once(status, emails):
    state, sms = at_settle()
    result = on_outcome(state, outcome(sms, status), ctx(REMIND, T0 + HOUR + dt.timedelta(minutes=1)))
    assert [i.channels for i in result.intents] == [[Channel.EMAIL]] * emails
    assert result.state["active"] == {} and result.exited == ["remind"]


TRACK = journey("""
    journey: track
    purpose: marketing
    trigger: {event: cart_abandoned}
    steps:
      - {id: sms, send: cart_reminder, channels: [sms]}
      - {id: settle, wait: 4h}
      - id: check
        branch:
          - {when: {outcome: {step: sms, status: [read]}}, goto: end}
        otherwise: email
      - {id: email, send: cart_reminder, channels: [email]}
    """)


def test_a_weaker_receipt_never_overrides_a_stronger_one():
    first = on_event(None, event(), T0, ctx(TRACK))
    state, sms = first.state, first.intents[0].message_id
    for status in (OutcomeStatus.SENT, OutcomeStatus.READ, OutcomeStatus.DELIVERED, OutcomeStatus.SENT,
                   OutcomeStatus.OTHER):
        state = on_outcome(state, outcome(sms, status), ctx(TRACK, T0 + HOUR)).state
    assert instance_of(state, "track")["status"] == {sms: "read"}
    assert on_wake(state, instance_of(state, "track")["id"], ctx(TRACK, T0 + 4 * HOUR)).intents == []


def test_the_best_status_decides_the_branch_after_a_timeout():
    state, sms = at_settle()
    state = on_outcome(state, outcome(sms, OutcomeStatus.SENT), ctx(REMIND, T0 + HOUR)).state
    result = on_wake(state, instance_of(state, "remind")["id"], ctx(REMIND, T0 + 5 * HOUR))
    assert [i.channels for i in result.intents] == [[Channel.EMAIL]]  # sent, never delivered: e-mail


def test_an_outcome_of_someone_elses_message_is_ignored():
    state, _ = at_settle()
    result = on_outcome(state, outcome(str(uuid.uuid4()), OutcomeStatus.DELIVERED), ctx(REMIND, T0 + HOUR))
    assert result.state == state and result.intents == []


# --- events: exits, wakes, entries ----------------------------------------------------------------

def test_an_exit_event_ends_the_journey_before_anything_else():
    state = entered().state
    result = on_event(state, event(EventType.ORDER_PLACED), T0 + 30 * dt.timedelta(minutes=1), ctx(REMIND))
    assert result.exited == ["remind"] and result.state["active"] == {} and result.intents == []


def test_an_event_listed_in_until_wakes_the_wait_early():
    j = journey("""
        journey: browse
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: pause, wait: {for: 2d, until: [order_shipped]}}
          - id: check
            branch:
              - {when: {event: order_shipped}, goto: shipped}
          - {id: nudge, send: cart_reminder, channels: [sms]}
          - {id: stop, exit: true}
          - {id: shipped, send: shipping_update, channels: [sms]}
        """)
    state = entered(j).state
    result = on_event(state, event(EventType.ORDER_SHIPPED), T0 + HOUR, ctx(j, T0 + HOUR))
    assert [i.template for i in result.intents] == ["shipping_update"] and result.exited == ["browse"]


def test_a_trigger_with_where_needs_those_attributes():
    j = journey("""
        journey: wa
        purpose: marketing
        trigger: {event: customer_signup, where: {channel: whatsapp}}
        steps:
          - {id: welcome, send: whatsapp_welcome, channels: [whatsapp], coupon: {amount_off_minor: 500, valid_for: 7d}}
        """)
    assert on_event(None, event(EventType.CUSTOMER_SIGNUP), T0, ctx(j)).entered == []
    assert on_event(None, event(EventType.CUSTOMER_SIGNUP, channel="sms"), T0, ctx(j)).entered == []
    assert on_event(None, event(EventType.CUSTOMER_SIGNUP, channel="whatsapp"), T0, ctx(j)).entered == ["wa"]


def test_an_active_journey_is_not_entered_again():
    state = entered().state
    result = on_event(state, event(), T0 + dt.timedelta(minutes=10), ctx(REMIND, T0 + dt.timedelta(minutes=10)))
    assert result.entered == [] and result.state["active"]["remind"] == state["active"]["remind"] | {
        "events": ["cart_abandoned"]}


def test_the_reentry_cooldown_counts_from_the_last_entry():
    j = journey("""
        journey: once_a_day
        purpose: marketing
        trigger: {event: cart_abandoned}
        reentry_cooldown: 24h
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    state = on_event(None, event(), T0, ctx(j)).state
    assert state["active"] == {}  # sent and finished
    too_soon = on_event(state, event(), T0, ctx(j, T0 + 23 * HOUR))
    assert too_soon.entered == [] and too_soon.intents == []
    again = on_event(state, event(), T0, ctx(j, T0 + 24 * HOUR))
    assert again.entered == ["once_a_day"] and len(again.intents) == 1


def test_a_journey_no_longer_defined_is_dropped_on_the_next_event():
    state = entered().state
    result = on_event(state, event(EventType.BIRTHDAY), T0, ctx({}))
    assert result.state["active"] == {} and result.exited == ["remind"]


def test_an_event_without_a_customer_enters_nothing():
    sku = StorefrontEvent(event_id="e1", event_type=EventType.BACK_IN_STOCK, store_id="store-1", occurred_at=T0,
                          sku="SNK-42")
    j = journey("""
        journey: bis
        purpose: marketing
        trigger: {event: back_in_stock}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert on_event(None, sku, T0, ctx(j)).entered == []


# --- replies and hand-offs ------------------------------------------------------------------------

ASK = journey("""
    journey: ask
    purpose: transactional
    trigger: {event: order_delivered}
    steps:
      - {id: question, send: talk_to_agent, channels: [whatsapp]}
      - {id: await, wait: {for: 24h, until: [reply]}}
      - id: answer
        branch:
          - {when: {reply: {step: question, in: [yes, tak, כן, так]}}, goto: handoff}
        otherwise: end
      - {id: handoff, emit: handoff}
    """)


@pytest.mark.parametrize("answer", [reply("Yes"), reply(" TAK! "), reply("כן"), reply("Так"), reply(payload="YES"),
                                    reply(text="No thanks", payload="yes")])
def test_a_yes_in_any_language_or_a_button_hands_off(answer):
    ev = event(EventType.ORDER_DELIVERED)
    state = on_event(None, ev, T0, ctx(ASK)).state
    result = on_reply(state, answer, ctx(ASK, T0 + HOUR))
    (handoff,) = result.handoffs
    assert handoff.handoff_id == message_id(ev.event_id, "ask", "handoff")
    assert (handoff.customer_id, handoff.store_id, handoff.journey, handoff.step) == ("cust-1", "store-1", "ask",
                                                                                        "handoff")
    assert set(handoff.context) == {"reply:question"} and result.state["active"] == {}


@pytest.mark.parametrize("answer", ["No", "nie wiem", "yes please", "5"])
def test_any_other_answer_ends_without_a_handoff(answer):
    state = on_event(None, event(EventType.ORDER_DELIVERED), T0, ctx(ASK)).state
    result = on_reply(state, reply(answer), ctx(ASK, T0 + HOUR))
    assert result.handoffs == [] and result.state["active"] == {}


def test_a_reply_is_kept_even_when_no_wait_listens_for_it():
    state, _ = at_settle()
    result = on_reply(state, reply("Later!"), ctx(REMIND, T0 + HOUR))
    inst = instance_of(result.state, "remind")
    assert inst["replies"] == {"sms": "later"} and inst["wake_at"] is not None and result.intents == []


def test_a_reply_before_anything_was_sent_is_not_recorded():
    state = entered().state
    assert on_reply(state, reply("hello"), ctx(REMIND, T0)).state == state


# --- loops ----------------------------------------------------------------------------------------

def test_a_goto_loop_without_a_wait_is_stopped():
    spin = journey("""
        journey: spin
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - id: again
            branch:
              - {when: {event: order_placed}, goto: end}
            otherwise: again
        """)
    result = on_event(None, event(), T0, ctx(spin))
    assert result.entered == ["spin"] and result.exited == ["spin"] and result.state["active"] == {}


def test_a_loop_that_sends_is_stopped_after_max_steps_per_run():
    spin = journey("""
        journey: spin
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
          - id: again
            branch:
              - {when: {event: order_placed}, goto: end}
            otherwise: sms
        """)
    result = on_event(None, event(), T0, ctx(spin))
    assert result.state["active"] == {} and len(result.intents) <= engine.MAX_STEPS_PER_RUN
    assert len({i.message_id for i in result.intents}) == 1  # every repeat is the same message: deduplicated


# --- coupons --------------------------------------------------------------------------------------

OFFER = journey("""
    journey: offer
    purpose: marketing
    trigger: {event: customer_inactive}
    steps:
      - {id: sms, send: reactivation, channels: [sms], coupon: {percent_off: 10, valid_for: 31d}, expires_after: 60d}
    """)


def test_a_coupon_is_deterministic_per_customer_and_trigger():
    ev = event(EventType.CUSTOMER_INACTIVE)
    (first,) = on_event(None, ev, T0, ctx(OFFER)).intents
    (replayed,) = on_event(None, ev, T0, ctx(OFFER, T0 + dt.timedelta(minutes=5))).intents
    (other,) = on_event(None, event(EventType.CUSTOMER_INACTIVE, customer="cust-2"), T0, ctx(OFFER)).intents
    (next_time,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), T0, ctx(OFFER)).intents
    assert first.coupon_code == replayed.coupon_code == first.variables["coupon_code"]
    assert len({first.coupon_code, other.coupon_code, next_time.coupon_code}) == 3


def test_a_coupon_code_depends_on_the_deployments_key():
    ev = event(EventType.CUSTOMER_INACTIVE)
    (a,) = on_event(None, ev, T0, ctx(OFFER, coupon_secret=b"key-a")).intents
    (b,) = on_event(None, ev, T0, ctx(OFFER, coupon_secret=b"key-b")).intents
    assert a.coupon_code != b.coupon_code


def test_the_message_expires_with_its_coupon():
    (intent,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), T0, ctx(OFFER)).intents
    assert intent.expires_at == T0 + dt.timedelta(days=31)  # the earlier of the coupon and expires_after
    assert intent.variables["coupon_value"] == "10%"


def test_the_coupon_expiry_date_is_the_customers_local_date():
    late = T0.replace(hour=23, minute=30)
    (utc,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), late, ctx(OFFER, late)).intents
    (tokyo,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), late,
                        ctx(OFFER, late, zone=ZoneInfo("Asia/Tokyo"))).intents
    assert utc.variables["coupon_expires"] == "2026-12-23" and tokyo.variables["coupon_expires"] == "2026-12-24"


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_coupon_codes_are_readable_and_stable(customer, occasion):
    coupon = Coupon(percent_off=10, valid_for="31d", prefix="WB")
    first = coupons.issue(coupon, b"k", customer, "offer", "sms", T0, occasion=occasion)
    assert first == coupons.issue(coupon, b"k", customer, "offer", "sms", T0, occasion=occasion)
    prefix, code = first.code.split("-")
    assert prefix == "WB" and len(code) == 8 and set(code) <= set(coupons._ALPHABET)
    assert not set(code) & set("ILOU")


def test_an_amount_coupon_describes_its_amount():
    coupon = Coupon(amount_off_minor=500, valid_for="30d")
    assert coupons.issue(coupon, b"k", "c", "j", "s", T0).description == "5.00"


@given(st.integers(min_value=0, max_value=10**15))
@settings(max_examples=200, deadline=None)
def test_amounts_are_shown_exactly_with_two_decimals(minor):
    shown = coupons.amount(minor)
    units, cents = shown.split(".")
    assert len(cents) == 2 and int(units) * 100 + int(cents) == minor  # no float rounding, even for huge amounts


MIN_CART_OFFER = journey("""
    journey: offer
    purpose: marketing
    trigger: {event: customer_inactive}
    steps:
      - id: sms
        send: reactivation
        channels: [sms]
        coupon: {percent_off: 10, valid_for: 31d, min_cart_minor: 4990}
        variables: {currency: PLN}
    """)


def test_a_coupons_minimum_order_is_given_to_the_template_as_an_amount():
    (intent,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), T0, ctx(MIN_CART_OFFER)).intents
    assert intent.variables["coupon_min_cart"] == "49.90" and intent.variables["currency"] == "PLN"
    assert intent.variables["coupon_value"] == "10%"


def test_a_coupon_without_a_minimum_order_gives_no_minimum_variable():
    (intent,) = on_event(None, event(EventType.CUSTOMER_INACTIVE), T0, ctx(OFFER)).intents
    assert "coupon_min_cart" not in intent.variables
    assert coupons.issue(Coupon(percent_off=5, valid_for="1d", min_cart_minor=0), b"k", "c", "j", "s", T0).min_cart \
        is None


# --- step variables -------------------------------------------------------------------------------

def test_step_variables_are_defaults_that_the_events_attributes_override():
    j = journey("""
        journey: invite
        purpose: marketing
        trigger: {event: customer_signup}
        steps:
          - {id: sms, send: whatsapp_invite, channels: [sms], variables: {signup_url: "https://default.example"}}
        """)
    (default,) = on_event(None, event(EventType.CUSTOMER_SIGNUP), T0, ctx(j)).intents
    (own,) = on_event(None, event(EventType.CUSTOMER_SIGNUP, signup_url="https://own.example"), T0, ctx(j)).intents
    assert default.variables["signup_url"] == "https://default.example"
    assert own.variables["signup_url"] == "https://own.example"


# --- A/B variants and holdouts --------------------------------------------------------------------

ARMS = [Variant(name="control", weight=1), Variant(name="short", weight=3, templates={"sms": "cart_reminder"})]


@given(st.text(min_size=1, max_size=60))
@settings(max_examples=300, deadline=None)
def test_assignment_is_deterministic(customer):
    first = experiments.assign("cart", customer, ARMS)
    assert first is not None and first == experiments.assign("cart", customer, list(ARMS))
    assert 0 <= experiments.bucket("cart", customer) < 1


def test_no_variants_no_assignment():
    assert experiments.assign("cart", "cust-1", []) is None


@pytest.mark.parametrize("weights", [(1, 3), (1, 1, 1), (0.1, 0.9), (5, 1, 2, 2)])
def test_arms_get_their_share_by_weight(weights):
    # 40,000 fixed customer ids: the hash is deterministic, so this is an exact, repeatable count; the
    # tolerance (1.5 points, > 6 standard deviations at this size) only allows for the hash's spread.
    arms = [Variant(name=f"arm{i}", weight=w) for i, w in enumerate(weights)]
    n = 40_000
    counts = Counter(experiments.assign("cart", f"customer-{i}", arms).name for i in range(n))
    for arm in arms:
        assert abs(counts[arm.name] / n - arm.weight / sum(weights)) < 0.015, (arm.name, counts)


def test_experiments_are_independent_of_each_other():
    arms = [Variant(name="a", weight=1), Variant(name="b", weight=1)]
    pairs = Counter((experiments.assign("one", f"c{i}", arms).name, experiments.assign("two", f"c{i}", arms).name)
                    for i in range(20_000))
    assert all(abs(count / 20_000 - 0.25) < 0.015 for count in pairs.values()) and len(pairs) == 4


HOLDOUT = journey("""
    journey: test_cart
    purpose: marketing
    trigger: {event: cart_abandoned}
    variants:
      - {name: holdout, weight: 1, holdout: true}
      - {name: sms, weight: 1}
    steps:
      - {id: sms, send: cart_reminder, channels: [sms]}
      - {id: pause, wait: 1h}
      - {id: email, send: cart_reminder, channels: [email]}
    """)


def customer_in(arm: str, j: Journey = HOLDOUT) -> str:
    return next(c for c in (f"cust-{i}" for i in range(1000))
                if experiments.assign(j.journey, c, j.variants).name == arm)


def test_a_holdout_arm_yields_held_out_intents_and_sends_nothing():
    customer = customer_in("holdout")
    first = on_event(None, event(customer=customer), T0, ctx(HOLDOUT))
    inst = instance_of(first.state, "test_cart")
    assert first.intents == [] and [i.channels for i in first.held_out] == [[Channel.SMS]]
    assert inst["variant"] == "holdout" and first.held_out[0].variant == "holdout"
    second = on_wake(first.state, inst["id"], ctx(HOLDOUT, T0 + HOUR))
    assert second.intents == [] and [i.channels for i in second.held_out] == [[Channel.EMAIL]]


def test_the_other_arm_sends_and_is_labelled():
    customer = customer_in("sms")
    (intent,) = on_event(None, event(customer=customer), T0, ctx(HOLDOUT)).intents
    assert intent.variant == "sms"


def test_a_variant_can_send_another_template():
    j = journey("""
        journey: ship_test
        purpose: transactional
        trigger: {event: order_shipped}
        variants:
          - {name: old, weight: 1}
          - {name: new, weight: 1, templates: {notify: order_confirmation}}
        steps:
          - {id: notify, send: shipping_update, channels: [email]}
        """)
    templates = {on_event(None, event(EventType.ORDER_SHIPPED, customer=customer_in(arm, j)), T0,
                          ctx(j)).intents[0].template for arm in ("old", "new")}
    assert templates == {"shipping_update", "order_confirmation"}


# --- recommendations (steps with recommend: true) ------------------------------------------------------

XSELL = journey("""
    journey: xsell
    purpose: marketing
    trigger: {event: order_shipped}
    steps:
      - {id: settle, wait: 3d}
      - {id: recommend, send: cross_sell, channels: [email], recommend: true}
      - {id: after, wait: {for: 1h, until: [outcome]}}
      - id: check
        branch:
          - {when: {outcome: {step: recommend, status: [suppressed]}}, goto: end}
        otherwise: next
      - {id: thanks, send: order_confirmation, channels: [email]}
    """)
DAY = 24 * HOUR
AFFINITY = {"SNK-42": {"partners": {"SOCK-1": {"n": 3, "name": "Merino running socks", "at": 1},
                                    "CAP-7": {"n": 1, "name": "Running cap", "at": 2}}, "orders": ["1", "2", "3"]}}


def shipped(*skus: str, **attributes: str) -> StorefrontEvent:
    items = [LineItem(sku=s, name=f"name of {s}", quantity=1, unit_price_minor=100) for s in skus]
    return StorefrontEvent(event_id="ev-ship", event_type=EventType.ORDER_SHIPPED, store_id="store-1",
                           customer_id="cust-1", occurred_at=T0, attributes=attributes,
                           order=Order(order_id="9", total_minor=100, currency="EUR", items=items))


def recommend_after_three_days(event: StorefrontEvent, table: dict | None = AFFINITY, **kw) -> engine.Result:
    first = on_event(None, event, T0, ctx(XSELL))
    assert first.intents == [] and instance_of(first.state, "xsell")["skus"] == [i.sku for i in event.order.items]
    lookup = table.get if table is not None else None
    return on_wake(first.state, instance_of(first.state, "xsell")["id"],
                   ctx(XSELL, T0 + 3 * DAY, affinity_lookup=lookup, **kw))


def test_a_recommending_step_names_what_others_bought_with_the_order_and_links_it():
    result = recommend_after_three_days(shipped("SNK-42"), product_url="https://shop.example/p/{sku}")
    (intent,) = result.intents
    assert (intent.variables["recommendation"], intent.variables["recommendation_sku"],
            intent.variables["recommendation_url"]) == ("Merino running socks", "SOCK-1", "https://shop.example/p/SOCK-1")
    assert intent.variables["products"] == "name of SNK-42" and result.suppressed == []


def test_the_tables_recommendation_replaces_the_events_and_its_link():
    result = recommend_after_three_days(shipped("SNK-42", recommendation="Old idea",
                                                recommendation_url="https://shop.example/p/OLD"))
    (intent,) = result.intents
    assert intent.variables["recommendation"] == "Merino running socks"
    assert "recommendation_url" not in intent.variables  # the store has no product_url: no link, not a wrong one


def test_what_the_customer_already_bought_is_not_recommended():
    bought = recommend_after_three_days(shipped("SNK-42"), bought=frozenset({"SOCK-1"}))
    assert bought.intents[0].variables["recommendation"] == "Running cap"
    in_the_order = recommend_after_three_days(shipped("SNK-42", "SOCK-1"))
    assert in_the_order.intents[0].variables["recommendation"] == "Running cap"


def test_without_the_table_the_events_recommendation_is_used():
    for table in ({}, None):
        result = recommend_after_three_days(shipped("MUG-3", recommendation="Tea", recommendation_url="https://t/1"),
                                            table)
        assert [(i.variables["recommendation"], i.variables["recommendation_url"]) for i in result.intents] == [
            ("Tea", "https://t/1")]


def test_with_nothing_to_recommend_the_message_is_suppressed_with_its_reason_and_the_journey_goes_on():
    result = recommend_after_three_days(shipped("MUG-3"))
    assert result.intents == [] and result.held_out == []
    (skipped,) = result.suppressed
    assert (skipped.reason, skipped.intent.message_id) == (
        OutcomeReason.NO_RECOMMENDATION, message_id("ev-ship", "xsell", "recommend"))
    assert "recommendation" not in skipped.intent.variables
    inst = instance_of(result.state, "xsell")
    assert inst["sent"]["recommend"] == skipped.intent.message_id  # its outcome reaches the branch below
    ended = on_outcome(result.state, outcome(skipped.intent.message_id, OutcomeStatus.SUPPRESSED),
                       ctx(XSELL, T0 + 3 * DAY))
    assert ended.intents == [] and "xsell" in ended.exited


def test_an_empty_recommendation_on_the_event_is_none():
    assert recommend_after_three_days(shipped("MUG-3", recommendation=""), {}).suppressed != []


def test_a_step_that_does_not_recommend_ignores_the_table():
    plain = journey("""
        journey: plain
        purpose: marketing
        trigger: {event: order_shipped}
        steps:
          - {id: recommend, send: cross_sell, channels: [email]}
        """)
    (intent,) = on_event(None, shipped("SNK-42"), T0, ctx(plain, affinity_lookup=AFFINITY.get)).intents
    assert "recommendation" not in intent.variables  # the policy's render check decides, as before


def test_recommend_belongs_on_a_send_step():
    with pytest.raises(ConfigurationError, match="recommend is for a send step"):
        journey("""
            journey: bad
            purpose: marketing
            trigger: {event: order_shipped}
            steps:
              - {id: settle, wait: 1h, recommend: true}
            """)
