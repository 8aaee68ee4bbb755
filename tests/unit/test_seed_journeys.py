"""Specs for the shipped journeys (deploy/journeys/*.yaml), driven through the engine on a virtual clock.

A ``Customer`` plays one customer's inputs in order — storefront events, message outcomes, replies —
and fires wake-ups when they fall due, as the scheduler's timer would, so each test reads as the
customer's day.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest

from schemas.events import Cart, EventType, LineItem, Order, StorefrontEvent
from schemas.messages import (
    InboundMessage,
    MessageIntent,
    MessageOutcome,
    OutcomeReason,
    OutcomeStatus,
)
from schemas.types import Channel, Purpose
from streams import affinity, ids, templates
from streams.clock import VirtualClock
from streams.journeys import engine
from streams.journeys.engine import (
    Context,
    Handoff,
    due,
    message_id,
    on_event,
    on_outcome,
    on_reply,
    on_wake,
)
from streams.journeys.loader import load_dir
from streams.keywords import Keyword, classify
from streams.templates import render, whatsapp_template

JOURNEYS = load_dir()
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)  # a Sunday, 13:00 in Warsaw
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
WARSAW = ZoneInfo("Europe/Warsaw")
LOCALES = ["en", "he", "nl", "pl", "be"]

ORDER = Order(order_id="1001", total_minor=12_900, currency="EUR", order_url="https://shop.example/o/1001",
              tracking_url="https://track.example/1001", carrier="InPost",
              items=[LineItem(sku="SNK-42", name="Sneakers", quantity=1, unit_price_minor=12_900)])
CART = Cart(cart_id="c-9", cart_url="https://shop.example/cart/9", total_minor=4_900, currency="EUR",
            items=[LineItem(sku="TS-1", name="T-shirt", quantity=1, unit_price_minor=4_900)])


class Customer:
    """One customer's journeys on a virtual clock: what they were sent, in order."""

    def __init__(self, *names: str, start: dt.datetime = T0, zone: ZoneInfo = ZoneInfo("UTC"),
                 customer_id: str = "cust-1", **context: object) -> None:
        self.journeys = {name: JOURNEYS[name] for name in names} if names else JOURNEYS
        self.clock, self.zone, self.customer_id = VirtualClock(start), zone, customer_id
        self.state: dict | None = None
        self.sent: list[MessageIntent] = []
        self.held_out: list[MessageIntent] = []
        self.suppressed: list[engine.Suppressed] = []
        self.context_extra = context  # e.g. the affinity lookup and the store's product_url
        self.handoffs: list[Handoff] = []
        self.exited: list[str] = []
        self.events: list[StorefrontEvent] = []

    def context(self) -> Context:
        return Context(journeys=self.journeys, now=self.clock.now(), zone=self.zone, **self.context_extra)

    def _apply(self, result: engine.Result) -> engine.Result:
        self.state = result.state
        self.sent += result.intents
        self.held_out += result.held_out
        self.suppressed += result.suppressed
        self.handoffs += result.handoffs
        self.exited += result.exited
        return result

    def event(self, kind: EventType, event_id: str | None = None, **attributes: str) -> engine.Result:
        extra = {"order": ORDER} if kind.value.startswith("order_") else {"cart": CART} \
            if kind is EventType.CART_ABANDONED else {}
        ev = StorefrontEvent(event_id=event_id or str(uuid.uuid4()), event_type=kind, store_id="store-1",
                             customer_id=self.customer_id, occurred_at=self.clock.now(), attributes=attributes,
                             **extra)
        self.events.append(ev)
        return self._apply(on_event(self.state, ev, self.clock.now(), self.context()))

    def outcome(self, intent: MessageIntent, status: OutcomeStatus) -> engine.Result:
        out = MessageOutcome(outcome_id=ids.outcome_id(intent.message_id, status.value), message_id=intent.message_id,
                             customer_id=self.customer_id, store_id="store-1", status=status,
                             occurred_at=self.clock.now())
        return self._apply(on_outcome(self.state, out, self.context()))

    def reply(self, text: str | None = None, payload: str | None = None) -> engine.Result:
        inbound = InboundMessage(inbound_id=str(uuid.uuid4()), customer_id=self.customer_id, store_id="store-1",
                                 channel=Channel.WHATSAPP, provider="meta", provider_message_id="wamid.1", text=text,
                                 button_payload=payload, received_at=self.clock.now())
        return self._apply(on_reply(self.state, inbound, self.context()))

    def wait(self, delta: dt.timedelta) -> None:
        """Let ``delta`` pass, firing every wake-up at its due time (as the scheduler's timer does)."""
        target = self.clock.now() + delta
        for _ in range(1000):
            pending = sorted((at, instance) for instance, at in due(self.state, target))
            if not pending:
                break
            at, instance = pending[0]
            self.clock.advance(max(at - self.clock.now(), dt.timedelta(0)))
            self._apply(on_wake(self.state, instance, self.context()))
        else:
            raise AssertionError("wake-ups never settle")
        self.clock.advance(target - self.clock.now())

    def active(self) -> set[str]:
        return set((self.state or {}).get("active", {}))

    def templates(self) -> list[str]:
        return [intent.template for intent in self.sent]


def renders_everywhere(intent: MessageIntent) -> None:
    """The intent renders on each of its channels in every locale, as the policy would render it."""
    variables = {"first_name": "Ana", **intent.variables}
    for locale in LOCALES:
        for channel in intent.channels:
            rendered = render(intent.template, locale, channel, variables)
            assert rendered.locale == locale and "{{" not in rendered.body and "{%" not in rendered.body
            if channel == Channel.WHATSAPP:
                whatsapp_template(intent.template, locale, variables)  # outside the 24h window too


# --- shipping update and order confirmation -------------------------------------------------------

def test_a_shipped_order_sends_the_shipping_update_at_once():
    customer = Customer("shipping_update")
    customer.event(EventType.ORDER_SHIPPED, event_id="ev-ship")
    (intent,) = customer.sent
    assert intent.message_id == message_id("ev-ship", "shipping_update", "notify")
    assert (intent.template, intent.purpose) == ("shipping_update", Purpose.TRANSACTIONAL)
    assert intent.channels == [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
    renders_everywhere(intent)


def test_a_placed_order_is_confirmed_on_whatsapp_or_by_email_with_its_link():
    customer = Customer("order_confirmation")
    customer.event(EventType.ORDER_PLACED)
    (intent,) = customer.sent
    assert (intent.template, intent.purpose, intent.channels) == (
        "order_confirmation", Purpose.TRANSACTIONAL, [Channel.WHATSAPP, Channel.EMAIL])
    assert intent.variables["order_url"] == "https://shop.example/o/1001"
    renders_everywhere(intent)
    body = render("order_confirmation", "nl", Channel.WHATSAPP, {"first_name": "Sara", **intent.variables}).body
    assert body.startswith("Hallo Sara, bedankt voor je bestelling #1001!")  # the Dutch seed's own words
    assert "https://shop.example/o/1001" in body and "Sneakers" in body


# --- abandoned cart -------------------------------------------------------------------------------

def cart_sms_sent() -> Customer:
    customer = Customer("abandoned_cart")
    customer.event(EventType.CART_ABANDONED, event_id="ev-cart")
    customer.wait(HOUR)
    return customer


def test_the_cart_reminder_sms_goes_after_an_hour_and_not_before():
    customer = Customer("abandoned_cart")
    customer.event(EventType.CART_ABANDONED, event_id="ev-cart")
    customer.wait(59 * MINUTE)
    assert customer.sent == [] and customer.active() == {"abandoned_cart"}
    customer.wait(MINUTE)
    (sms,) = customer.sent
    assert sms.message_id == message_id("ev-cart", "abandoned_cart", "sms")
    assert (sms.template, sms.channels, sms.purpose, sms.message_class) == (
        "cart_reminder", [Channel.SMS], Purpose.MARKETING, "cart_reminder")
    assert sms.variables["cart_url"] == "https://shop.example/cart/9"
    assert sms.created_at == T0 + HOUR and sms.expires_at == T0 + HOUR + 48 * HOUR
    renders_everywhere(sms)


def test_the_belarusian_cart_sms_is_the_seeds_own_text():
    (sms,) = cart_sms_sent().sent
    body = render(sms.template, "be", Channel.SMS, {"first_name": "", **sms.variables}).body
    assert body.startswith("Здаецца, вы забыліся пра тавары ў вашым кошыку. Скончыце пакупку зараз!")


@pytest.mark.parametrize("status", [OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED, OutcomeStatus.SUPPRESSED])
def test_an_sms_that_did_not_arrive_is_followed_by_an_email_at_once(status):
    customer = cart_sms_sent()
    customer.wait(10 * MINUTE)
    customer.outcome(customer.sent[0], OutcomeStatus.SENT)
    assert len(customer.sent) == 1  # "sent" settles nothing
    customer.outcome(customer.sent[0], status)
    sms, email = customer.sent
    assert (email.template, email.channels) == ("cart_reminder", [Channel.EMAIL])
    assert email.message_id == message_id("ev-cart", "abandoned_cart", "email") != sms.message_id
    assert email.created_at == T0 + HOUR + 10 * MINUTE
    assert customer.active() == set()
    renders_everywhere(email)


@pytest.mark.parametrize("status", [OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.CLICKED])
def test_a_delivered_sms_gets_no_email(status):
    customer = cart_sms_sent()
    customer.outcome(customer.sent[0], OutcomeStatus.SENT)
    customer.wait(2 * MINUTE)
    customer.outcome(customer.sent[0], status)
    customer.wait(30 * DAY)
    assert customer.templates() == ["cart_reminder"] and customer.sent[0].channels == [Channel.SMS]
    assert customer.active() == set()


def test_an_sms_without_any_receipt_in_four_hours_is_followed_by_an_email():
    customer = cart_sms_sent()
    customer.outcome(customer.sent[0], OutcomeStatus.SENT)
    customer.wait(4 * HOUR - MINUTE)
    assert len(customer.sent) == 1
    customer.wait(MINUTE)
    assert [i.channels for i in customer.sent] == [[Channel.SMS], [Channel.EMAIL]]


def test_an_sms_deferred_by_quiet_hours_gets_its_chance_before_any_email():
    customer = cart_sms_sent()
    customer.outcome(customer.sent[0], OutcomeStatus.SCHEDULED)
    customer.wait(7 * HOUR)  # still deferred when the first 4 hours are up: wait again
    assert len(customer.sent) == 1
    customer.outcome(customer.sent[0], OutcomeStatus.SENT)
    customer.wait(MINUTE)
    customer.outcome(customer.sent[0], OutcomeStatus.DELIVERED)
    customer.wait(3 * DAY)
    assert len(customer.sent) == 1


def test_an_order_placed_ends_the_cart_journey_at_once():
    customer = Customer("abandoned_cart")
    customer.event(EventType.CART_ABANDONED)
    customer.wait(30 * MINUTE)
    customer.event(EventType.ORDER_PLACED)
    assert customer.active() == set() and customer.exited == ["abandoned_cart"]
    customer.wait(3 * DAY)
    assert customer.sent == []


def test_an_order_placed_after_the_sms_means_no_email():
    customer = cart_sms_sent()
    customer.wait(HOUR)
    customer.event(EventType.ORDER_PLACED)
    customer.outcome(customer.sent[0], OutcomeStatus.UNDELIVERED)  # a late receipt changes nothing now
    customer.wait(3 * DAY)
    assert customer.templates() == ["cart_reminder"] and customer.active() == set()


def test_an_order_placed_while_the_delivered_sms_lingers_ends_the_journey():
    customer = cart_sms_sent()
    customer.outcome(customer.sent[0], OutcomeStatus.DELIVERED)
    customer.wait(10 * HOUR)
    assert customer.active() == {"abandoned_cart"}
    customer.event(EventType.ORDER_PLACED)
    assert customer.active() == set() and len(customer.sent) == 1


def test_a_second_abandoned_cart_within_a_day_starts_nothing():
    customer = cart_sms_sent()
    customer.outcome(customer.sent[0], OutcomeStatus.DELIVERED)
    customer.wait(HOUR)
    customer.event(EventType.CART_ABANDONED)  # still in the journey (lingering)
    customer.wait(DAY - 3 * HOUR)  # the journey is over; 23 hours since the first entry
    customer.event(EventType.CART_ABANDONED)  # within the cooldown
    customer.wait(2 * DAY)
    assert len(customer.sent) == 1
    customer.event(EventType.CART_ABANDONED, event_id="ev-cart-2")  # > 24h after the first entry
    customer.wait(HOUR)
    assert [i.message_id for i in customer.sent][1:] == [message_id("ev-cart-2", "abandoned_cart", "sms")]


# --- delivery feedback ----------------------------------------------------------------------------

def asked_to_rate(**attributes: str) -> Customer:
    customer = Customer("delivery_feedback")
    customer.event(EventType.ORDER_DELIVERED, event_id="ev-delivered", **attributes)
    (rate,) = customer.sent
    assert (rate.template, rate.purpose, rate.channels) == ("rate_us", Purpose.TRANSACTIONAL,
                                                            [Channel.WHATSAPP, Channel.SMS])
    renders_everywhere(rate)
    return customer


@pytest.mark.parametrize("answer", ["5", "4", " 5 ", "５", "5!"])
def test_a_good_rating_gets_a_review_request(answer):
    customer = asked_to_rate(review_url="https://shop.example/review/1001", referral_url="https://shop.example/r/ana")
    customer.wait(3 * HOUR)
    customer.reply(answer)
    assert customer.templates() == ["rate_us", "review_request"]
    review = customer.sent[1]
    assert review.message_id == message_id("ev-delivered", "delivery_feedback", "review")
    assert customer.active() == set() and customer.handoffs == []
    renders_everywhere(review)
    body = render("review_request", "be", Channel.WHATSAPP, {"first_name": "", **review.variables}).body
    assert body.startswith("Мы спадзяемся, што вам спадабаўся ваш заказ. Калі ласка, падзяліцеся сваім меркаваннем "
                           "тут https://shop.example/review/1001")
    assert "נהניתם? ספרו לחבריכם! https://shop.example/r/ana" in render(
        "review_request", "he", Channel.SMS, {"first_name": "", **review.variables}).body


def test_without_a_review_link_the_order_page_is_linked_and_no_referral_is_made():
    customer = asked_to_rate()
    customer.reply("5")
    body = render("review_request", "en", Channel.SMS, {"first_name": "Ana", **customer.sent[1].variables}).body
    assert "https://shop.example/o/1001" in body and "friend" not in body


@pytest.mark.parametrize("agree", ["Tak", "Yes", "ja", "כן", "ТАК"])
def test_a_poor_rating_leads_through_what_went_wrong_to_an_agent(agree):
    customer = asked_to_rate()
    customer.wait(2 * HOUR)
    customer.reply("2")
    assert customer.templates() == ["rate_us", "what_went_wrong"]
    customer.wait(5 * MINUTE)
    customer.reply(payload="Shipping")
    assert customer.templates() == ["rate_us", "what_went_wrong", "talk_to_agent"]
    customer.wait(MINUTE)
    customer.reply(agree)
    (handoff,) = customer.handoffs
    assert handoff.handoff_id == message_id("ev-delivered", "delivery_feedback", "handoff")
    assert (handoff.customer_id, handoff.journey, handoff.step) == ("cust-1", "delivery_feedback", "handoff")
    assert handoff.context == {"reply:rate": "2", "reply:what_went_wrong": "shipping",
                               "reply:offer_agent": agree.casefold()}
    assert customer.active() == set()
    for intent in customer.sent:
        renders_everywhere(intent)


def test_no_to_an_agent_ends_without_a_handoff():
    customer = asked_to_rate()
    customer.reply("1")
    customer.reply("Quality")
    customer.reply("No")
    assert customer.templates() == ["rate_us", "what_went_wrong", "talk_to_agent"] and customer.handoffs == []
    assert customer.active() == set()


def test_no_answer_to_the_agent_question_ends_after_a_day():
    customer = asked_to_rate()
    customer.reply("3")
    customer.reply("Service")
    customer.wait(DAY)
    assert customer.handoffs == [] and customer.active() == set()
    customer.reply("yes")  # too late: the journey is over
    assert customer.handoffs == []


def test_a_silent_customer_is_still_offered_an_agent_after_a_poor_rating():
    customer = asked_to_rate()
    customer.reply("2")
    customer.wait(DAY)
    assert customer.templates() == ["rate_us", "what_went_wrong", "talk_to_agent"]


def test_no_rating_within_a_day_ends_the_journey():
    customer = asked_to_rate()
    customer.wait(DAY - MINUTE)
    assert customer.active() == {"delivery_feedback"}
    customer.wait(MINUTE)
    assert customer.active() == set() and customer.templates() == ["rate_us"]
    customer.reply("5")
    assert customer.templates() == ["rate_us"]


def test_an_answer_that_is_not_a_rating_ends_the_journey_quietly():
    customer = asked_to_rate()
    customer.reply("who is this?")
    assert customer.templates() == ["rate_us"] and customer.active() == set()


# --- birthday -------------------------------------------------------------------------------------

def test_the_birthday_greeting_waits_until_ten_in_the_customers_zone():
    midnight_warsaw = dt.datetime(2026, 11, 22, 0, 5, tzinfo=WARSAW)
    customer = Customer("birthday", start=midnight_warsaw, zone=WARSAW)
    customer.event(EventType.BIRTHDAY)
    customer.wait(dt.timedelta(hours=9, minutes=54))
    assert customer.sent == []
    customer.wait(MINUTE)
    (greeting,) = customer.sent
    assert greeting.created_at == dt.datetime(2026, 11, 22, 10, 0, tzinfo=WARSAW)  # 09:00 UTC
    assert greeting.channels == [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
    assert greeting.coupon_code and greeting.variables["coupon_value"] == "15%"
    assert greeting.expires_at == greeting.created_at + 7 * DAY
    renders_everywhere(greeting)


def test_the_ten_oclock_is_local_not_utc():
    start = dt.datetime(2026, 6, 1, 5, 0, tzinfo=dt.timezone.utc)  # 08:00 in Jerusalem (summer), 05:00 in UTC
    jerusalem = Customer("birthday", start=start, zone=ZoneInfo("Asia/Jerusalem"))
    utc = Customer("birthday", start=start)
    for customer in (jerusalem, utc):
        customer.event(EventType.BIRTHDAY)
        customer.wait(DAY)
    assert jerusalem.sent[0].created_at == dt.datetime(2026, 6, 1, 7, 0, tzinfo=dt.timezone.utc)
    assert utc.sent[0].created_at == dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.timezone.utc)


def test_a_birthday_event_after_ten_sends_at_once_not_tomorrow():
    afternoon = dt.datetime(2026, 11, 22, 15, 30, tzinfo=WARSAW)
    customer = Customer("birthday", start=afternoon, zone=WARSAW)
    customer.event(EventType.BIRTHDAY)
    (greeting,) = customer.sent
    assert greeting.created_at == afternoon and customer.active() == set()


def test_each_birthday_has_its_own_code_and_a_replay_keeps_it():
    customer = Customer("birthday", start=dt.datetime(2026, 3, 3, 11, tzinfo=WARSAW), zone=WARSAW)
    customer.event(EventType.BIRTHDAY, event_id="bday-2026")
    replay = Customer("birthday", start=dt.datetime(2026, 3, 3, 11, 5, tzinfo=WARSAW), zone=WARSAW)
    replay.event(EventType.BIRTHDAY, event_id="bday-2026")
    customer.wait(365 * DAY)
    customer.event(EventType.BIRTHDAY, event_id="bday-2027")
    this_year, next_year = customer.sent
    assert replay.sent[0].coupon_code == this_year.coupon_code != next_year.coupon_code


# --- reactivation ---------------------------------------------------------------------------------

def test_reactivation_sends_an_sms_with_a_ten_percent_code_valid_31_days():
    customer = Customer("reactivation")
    customer.event(EventType.CUSTOMER_INACTIVE, event_id="ev-inactive")
    (offer,) = customer.sent
    assert (offer.template, offer.channels, offer.purpose) == ("reactivation", [Channel.SMS], Purpose.MARKETING)
    assert offer.variables["coupon_value"] == "10%" and offer.variables["coupon_code"] == offer.coupon_code
    assert offer.variables["coupon_expires"] == (T0 + 31 * DAY).date().isoformat()
    assert T0 < offer.expires_at <= T0 + 31 * DAY
    renders_everywhere(offer)
    body = render("reactivation", "nl", Channel.SMS, {"first_name": "Sara", **offer.variables}).body
    assert body.startswith(f"Hallo Sara, je kunt nu 10% korting krijgen op je volgende aankoop met code "
                           f"{offer.coupon_code}.")  # the Dutch seed's text, with the issued code
    assert (offer.variables["coupon_min_cart"], offer.variables["currency"]) == ("50.00", "EUR")
    assert "geldig tot" in body and body.endswith("bij een besteding vanaf 50.00 EUR.")  # the minimum order


def test_the_reactivation_code_is_the_same_on_a_replay_and_differs_between_customers():
    codes = {}
    for customer_id, event_id in [("cust-1", "ev-1"), ("cust-1", "ev-1"), ("cust-2", "ev-2"), ("cust-3", "ev-3")]:
        customer = Customer("reactivation", customer_id=customer_id)
        customer.event(EventType.CUSTOMER_INACTIVE, event_id=event_id)
        codes.setdefault(customer_id, set()).add(customer.sent[0].coupon_code)
    assert all(len(found) == 1 for found in codes.values())
    assert len({next(iter(found)) for found in codes.values()}) == 3


def test_reactivation_is_not_repeated_within_sixty_days():
    customer = Customer("reactivation")
    customer.event(EventType.CUSTOMER_INACTIVE)
    customer.wait(59 * DAY)
    customer.event(EventType.CUSTOMER_INACTIVE)
    assert len(customer.sent) == 1
    customer.wait(DAY)
    customer.event(EventType.CUSTOMER_INACTIVE)
    assert len(customer.sent) == 2 and customer.sent[0].coupon_code != customer.sent[1].coupon_code


# --- WhatsApp newsletter --------------------------------------------------------------------------

def test_an_sms_signup_is_invited_to_the_whatsapp_newsletter():
    customer = Customer("whatsapp_newsletter", "whatsapp_welcome")
    customer.event(EventType.CUSTOMER_SIGNUP, channel="sms")
    (invite,) = customer.sent
    assert (invite.template, invite.channels, invite.purpose) == ("whatsapp_invite", [Channel.SMS], Purpose.MARKETING)
    assert invite.variables["signup_url"] == "https://shop.example/whatsapp"  # the journey's default
    renders_everywhere(invite)
    body = render("whatsapp_invite", "nl", Channel.SMS, {"first_name": "", **invite.variables}).body
    assert "Klik hier om je aan te melden: https://shop.example/whatsapp 📲" in body


def test_the_events_signup_link_wins_over_the_default():
    customer = Customer("whatsapp_newsletter")
    customer.event(EventType.CUSTOMER_SIGNUP, channel="sms", signup_url="https://wa.me/48600000000?text=START")
    assert customer.sent[0].variables["signup_url"] == "https://wa.me/48600000000?text=START"


def test_a_whatsapp_signup_is_welcomed_with_a_five_euro_code_and_not_invited():
    customer = Customer("whatsapp_newsletter", "whatsapp_welcome")
    customer.event(EventType.CUSTOMER_SIGNUP, channel="whatsapp")
    (welcome,) = customer.sent
    assert (welcome.template, welcome.channels) == ("whatsapp_welcome", [Channel.WHATSAPP])
    assert (welcome.variables["coupon_value"], welcome.variables["currency"]) == ("5.00", "EUR")
    assert welcome.expires_at == T0 + 30 * DAY
    renders_everywhere(welcome)
    body = render("whatsapp_welcome", "nl", Channel.WHATSAPP, welcome.variables).body
    assert body.startswith("Hallo daar! 👋 Bedankt voor je inschrijving voor onze WhatsApp-nieuwsbrief.")
    assert f"kortingscode van 5.00 EUR voor je volgende aankoop: {welcome.coupon_code}" in body


def test_a_signup_on_another_channel_gets_neither():
    customer = Customer("whatsapp_newsletter", "whatsapp_welcome")
    customer.event(EventType.CUSTOMER_SIGNUP, channel="email")
    customer.event(EventType.CUSTOMER_SIGNUP)
    assert customer.sent == []


# --- cross-sell -----------------------------------------------------------------------------------

def test_a_shipped_order_brings_a_recommendation_three_days_later():
    customer = Customer("shipping_update", "cross_sell")
    customer.event(EventType.ORDER_SHIPPED, event_id="ev-ship", recommendation="Running socks",
                   recommendation_url="https://shop.example/p/SOCK-1")
    assert customer.templates() == ["shipping_update"] and customer.active() == {"cross_sell"}
    customer.wait(3 * DAY - MINUTE)
    assert customer.templates() == ["shipping_update"]
    customer.wait(MINUTE)
    recommend = customer.sent[1]
    assert (recommend.template, recommend.channels, recommend.purpose) == (
        "cross_sell", [Channel.EMAIL, Channel.SMS], Purpose.MARKETING)
    assert recommend.message_id == message_id("ev-ship", "cross_sell", "recommend")
    renders_everywhere(recommend)
    body = render("cross_sell", "en", Channel.SMS, {"first_name": "Ana", **recommend.variables}).body
    assert "If you liked Sneakers, you'll like Running socks." in body and "SOCK-1" in body


def test_the_cross_sell_recommends_what_other_customers_bought_with_the_order():
    table: dict = {}
    for n in range(3):  # other customers' orders: sneakers with socks, and once with a cap
        others = [("SOCK-1", "Merino running socks"), ("CAP-7", "Running cap")][: 1 if n else 2]
        event = StorefrontEvent(event_id=f"ev-o{n}", event_type=EventType.ORDER_PLACED, store_id="store-1",
                                customer_id=f"other-{n}", occurred_at=T0, order=ORDER.model_copy(update={
                                    "order_id": f"o{n}", "items": [*ORDER.items, *(
                                        LineItem(sku=s, name=name, quantity=1, unit_price_minor=900)
                                        for s, name in others)]}))
        for record in affinity.copurchases(event):
            where = affinity.key(record.store_id, record.sku)
            table[where] = affinity.fold(table.get(where), record)
    customer = Customer("cross_sell", affinity_lookup=lambda sku: table.get(affinity.key("store-1", sku)),
                        product_url="https://shop.example/p/{sku}")
    customer.event(EventType.ORDER_SHIPPED, event_id="ev-ship")  # the sneakers (ORDER), no recommendation given
    customer.wait(3 * DAY)
    (recommend,) = customer.sent
    assert (recommend.variables["recommendation"], recommend.variables["recommendation_url"]) == (
        "Merino running socks", "https://shop.example/p/SOCK-1")
    renders_everywhere(recommend)
    body = render("cross_sell", "en", Channel.EMAIL, {"first_name": "Ana", **recommend.variables}).body
    assert "If you liked Sneakers, you'll like Merino running socks." in body
    assert "Have a look: https://shop.example/p/SOCK-1" in body


def test_a_cross_sell_with_nothing_to_recommend_is_suppressed_not_sent_empty():
    customer = Customer("cross_sell", affinity_lookup=lambda sku: None)
    customer.event(EventType.ORDER_SHIPPED, event_id="ev-ship")
    customer.wait(3 * DAY)
    assert customer.sent == [] and customer.active() == set()
    (skipped,) = customer.suppressed
    assert (skipped.reason, skipped.intent.message_id) == (
        OutcomeReason.NO_RECOMMENDATION, message_id("ev-ship", "cross_sell", "recommend"))


# --- the templates the journeys send ---------------------------------------------------------------

SENDS = sorted({(step.send, channel) for j in JOURNEYS.values() for step in j.steps if step.send
                for channel in step.channels})


@pytest.mark.parametrize("template, channel", SENDS)
def test_every_template_a_journey_sends_has_a_text_in_every_locale_and_says_what_it_needs(template, channel):
    assert set(templates.template_locales(template)) == set(LOCALES)
    assert template in templates._REQUIRED
    for locale in LOCALES:
        render(template, locale, channel, templates.sample_variables())


@pytest.mark.parametrize("template", sorted({t for t, channel in SENDS if channel == Channel.WHATSAPP}))
def test_every_template_a_journey_sends_on_whatsapp_has_an_approved_template(template):
    category, _ = templates._WHATSAPP[template]
    assert category in ("utility", "marketing")
    purposes = {j.purpose for j in JOURNEYS.values() for s in j.steps if s.send == template}
    if category == "utility":
        assert purposes == {Purpose.TRANSACTIONAL}  # Meta's utility category is never promotional


# The answers each question offers, by locale. They are read by streams.keywords as well as by the journey.
OFFERED = {
    "talk_to_agent": {"en": ["YES", "NO"], "he": ["כן", "לא"], "nl": ["JA", "NEE"], "pl": ["TAK"],
                      "be": ["ТАК", "НЕ"]},
    "what_went_wrong": {"en": ["Shipping", "Quality", "Service"], "he": ["משלוח", "איכות", "שירות"],
                        "nl": ["Verzending", "Productkwaliteit", "Service"], "pl": ["Wysyłka", "Jakość", "Obsługa"],
                        "be": ["Дастаўка", "Якасць", "Абслугоўванне"]},
    "rate_us": {locale: ["1", "5"] for locale in LOCALES},
}


@pytest.mark.parametrize("template", sorted(OFFERED))
@pytest.mark.parametrize("locale", LOCALES)
def test_a_question_never_offers_an_answer_that_would_unsubscribe(template, locale):
    # The Polish NIE, for one, opts out of everything: the Polish agent question offers TAK alone.
    body = render(template, locale, Channel.SMS, templates.sample_variables()).body
    for answer in OFFERED[template][locale]:
        assert answer in body and classify(answer) != Keyword.OPT_OUT


@pytest.mark.parametrize("locale", LOCALES)
def test_the_yes_each_agent_question_offers_leads_to_a_person(locale):
    customer = asked_to_rate()
    customer.reply("1")
    customer.reply("Service")
    customer.reply(OFFERED["talk_to_agent"][locale][0])
    assert len(customer.handoffs) == 1


# --- all of them together -------------------------------------------------------------------------

def test_a_customers_month_through_every_journey():
    customer = Customer(zone=WARSAW)
    customer.event(EventType.CUSTOMER_SIGNUP, channel="sms")
    customer.event(EventType.CART_ABANDONED)
    customer.wait(HOUR)
    customer.outcome(customer.sent[-1], OutcomeStatus.DELIVERED)
    customer.wait(2 * HOUR)
    customer.event(EventType.ORDER_PLACED)
    customer.wait(DAY)
    customer.event(EventType.ORDER_SHIPPED, recommendation="Running socks")
    customer.wait(2 * DAY)
    customer.event(EventType.ORDER_DELIVERED, review_url="https://shop.example/review/1001")
    customer.reply("5")
    customer.wait(10 * DAY)
    assert customer.templates() == ["whatsapp_invite", "cart_reminder", "order_confirmation", "shipping_update",
                                    "rate_us", "review_request", "cross_sell"]
    assert customer.active() == set() and len({i.message_id for i in customer.sent}) == len(customer.sent)
    for intent in customer.sent:
        renders_everywhere(intent)
