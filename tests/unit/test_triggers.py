"""Specs for streams.triggers: what a storefront event starts at once, through the journeys."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.events import Cart, EventType, Order, StorefrontEvent
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id
from streams.journeys.loader import parse
from streams.triggers import intents_for
from tests import factories as f

RECEIVED = f.NOW + dt.timedelta(milliseconds=40)
NOW = f.NOW + dt.timedelta(milliseconds=55)


def with_order(**changes) -> StorefrontEvent:
    return f.shipped("cust-1", order=f.shipped("cust-1").order.model_copy(update=changes))


def test_a_shipped_order_starts_one_transactional_shipping_update():
    event = f.shipped("cust-1")
    (intent,) = intents_for(event, RECEIVED, NOW)
    assert intent.template == "shipping_update" and intent.purpose == Purpose.TRANSACTIONAL
    assert intent.message_id == message_id(event.event_id, "shipping_update", "notify")
    assert (intent.customer_id, intent.store_id, intent.trigger_event_id) == ("cust-1", "store-1", event.event_id)
    assert (intent.trigger_received_at, intent.created_at, intent.expires_at) == (RECEIVED, NOW, None)
    assert intent.channels == [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]


def test_the_intent_carries_order_id_tracking_url_and_carrier():
    (intent,) = intents_for(f.shipped("cust-1", order_id="A-77"), RECEIVED, NOW)
    assert intent.variables == {"order_id": "A-77", "order_url": "https://shop.example/o/1001",
                                "tracking_url": "https://track.example/1001", "carrier": "InPost"}


def test_without_a_tracking_url_the_order_url_is_linked():
    (intent,) = intents_for(with_order(tracking_url=None), RECEIVED, NOW)
    assert intent.variables["tracking_url"] == "https://shop.example/o/1001"


def test_the_carrier_is_passed_only_when_known():
    for carrier in (None, ""):
        (intent,) = intents_for(with_order(carrier=carrier), RECEIVED, NOW)
        assert "carrier" not in intent.variables


def test_message_ids_differ_per_event():
    first, second = f.shipped("cust-1"), f.shipped("cust-1")
    assert intents_for(first, RECEIVED, NOW)[0].message_id != intents_for(second, RECEIVED, NOW)[0].message_id


def test_the_same_event_twice_gives_equal_intents():
    event = f.shipped("cust-1")
    assert intents_for(event, RECEIVED, NOW) == intents_for(event.model_copy(), RECEIVED, NOW)


ORDER = Order(order_id="1001", total_minor=100, currency="PLN")
CART = Cart(cart_id="c1", cart_url="https://shop.example/c/1", total_minor=100, currency="PLN")
CART_NOW = parse("""
journey: cart_now
purpose: marketing
message_class: cart_reminder
trigger: {event: cart_abandoned}
steps:
  - {id: remind, send: cart_reminder, channels: [sms, email], expires_after: 48h}
""")
CART_LATER = parse("""
journey: cart_later
purpose: marketing
trigger: {event: cart_abandoned}
steps:
  - {id: pause, wait: 1h}
  - {id: remind, send: cart_reminder, channels: [sms]}
""")


def _cart_event() -> StorefrontEvent:
    return StorefrontEvent(event_id=f.uid(), event_type=EventType.CART_ABANDONED, store_id="store-1",
                           customer_id="cust-1", occurred_at=f.NOW, cart=CART)


def test_a_journey_that_sends_first_starts_its_intent_with_the_journeys_fields():
    event = _cart_event()
    (intent,) = intents_for(event, RECEIVED, NOW, {"cart_now": CART_NOW})
    assert (intent.template, intent.purpose, intent.message_class, intent.journey) == (
        "cart_reminder", Purpose.MARKETING, "cart_reminder", "cart_now")
    assert intent.message_id == message_id(event.event_id, "cart_now", "remind")
    assert intent.variables == {"cart_url": "https://shop.example/c/1"}
    assert intent.channels == [Channel.SMS, Channel.EMAIL]
    assert intent.expires_at == NOW + dt.timedelta(hours=48)


def test_a_journey_that_waits_first_starts_nothing_at_once():
    assert intents_for(_cart_event(), RECEIVED, NOW, {"cart_later": CART_LATER}) == []


def test_an_event_no_journey_listens_to_starts_nothing():
    assert intents_for(f.shipped("cust-1"), RECEIVED, NOW, {"cart_now": CART_NOW}) == []


def test_an_event_keyed_by_sku_starts_no_customer_journey():
    event = StorefrontEvent(event_id=f.uid(), event_type=EventType.BACK_IN_STOCK, store_id="store-1",
                            occurred_at=f.NOW, sku="SNK-42")
    assert intents_for(event, RECEIVED, NOW) == []
