"""Specs for streams.triggers: which storefront events start which message intents."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.events import Cart, EventType, Order, StorefrontEvent
from schemas.types import Channel, Purpose
from streams.ids import message_id
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
    assert intent.message_id == message_id(event.event_id, "shipping_update")
    assert (intent.customer_id, intent.store_id, intent.trigger_event_id) == ("cust-1", "store-1", event.event_id)
    assert (intent.trigger_received_at, intent.created_at, intent.expires_at) == (RECEIVED, NOW, None)
    assert intent.channels == [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]


def test_the_intent_carries_order_id_tracking_url_and_carrier():
    (intent,) = intents_for(f.shipped("cust-1", order_id="A-77"), RECEIVED, NOW)
    assert intent.variables == {"order_id": "A-77", "tracking_url": "https://track.example/1001",
                                "carrier": "InPost"}


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


def test_an_abandoned_cart_starts_one_marketing_reminder_that_expires():
    event = StorefrontEvent(event_id=f.uid(), event_type=EventType.CART_ABANDONED, store_id="store-1",
                            customer_id="cust-1", occurred_at=f.NOW, cart=CART)
    (intent,) = intents_for(event, RECEIVED, NOW)
    assert (intent.template, intent.purpose, intent.message_class) == ("cart_reminder", Purpose.MARKETING,
                                                                       "cart_reminder")
    assert intent.message_id == message_id(event.event_id, "cart_reminder")
    assert intent.variables == {"cart_url": "https://shop.example/c/1"}
    assert intent.expires_at == f.NOW + dt.timedelta(hours=48)


OTHER_EVENTS = {
    EventType.ORDER_PLACED: dict(order=ORDER),
    EventType.ORDER_DELIVERED: dict(order=ORDER),
    EventType.BACK_IN_STOCK: dict(customer_id=None, sku="SNK-42"),
    EventType.CUSTOMER_SIGNUP: {},
    EventType.BIRTHDAY: {},
    EventType.CUSTOMER_INACTIVE: {},
    EventType.UNKNOWN: {},
}


def test_every_event_type_is_covered_here():
    assert set(OTHER_EVENTS) | {EventType.ORDER_SHIPPED, EventType.CART_ABANDONED} == set(EventType)


@pytest.mark.parametrize("event_type", list(OTHER_EVENTS))
def test_other_event_types_start_no_intent_yet(event_type):
    values = {"event_id": f.uid(), "event_type": event_type, "store_id": "store-1", "customer_id": "cust-1",
              "occurred_at": f.NOW, **OTHER_EVENTS[event_type]}
    assert intents_for(StorefrontEvent(**values), RECEIVED, NOW) == []
