"""Builders of valid records for tests (explicit values; override what a test is about)."""

from __future__ import annotations

import datetime as dt
import uuid

from schemas.customers import ConsentChange, ConsentSource, ConsentState, CustomerProfile
from schemas.events import EventType, Order, StorefrontEvent
from schemas.messages import MessageIntent, SendCommand, SmsSegments
from schemas.types import Channel, Purpose

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def uid() -> str:
    return str(uuid.uuid4())


def profile(customer_id: str | None = None, **overrides) -> CustomerProfile:
    values = dict(customer_id=customer_id or uid(), store_id="store-1", first_name="Ana", locale="en",
                  time_zone="Europe/Warsaw", phone="+48601234567", whatsapp="+48601234567",
                  email="ana@example.com", channel_preferences=[Channel.SMS], updated_at=NOW)
    return CustomerProfile(**{**values, **overrides})


def consent(customer_id: str, channel: Channel, state: ConsentState, purpose: Purpose = Purpose.TRANSACTIONAL,
            at: dt.datetime = NOW, **overrides) -> ConsentChange:
    values = dict(change_id=uid(), customer_id=customer_id, store_id="store-1", channel=channel,
                  purpose=purpose, state=state, source=ConsentSource.CHECKOUT, occurred_at=at)
    return ConsentChange(**{**values, **overrides})


def shipped(customer_id: str, order_id: str = "1001", **overrides) -> StorefrontEvent:
    order = Order(order_id=order_id, total_minor=12_900, currency="PLN", order_url="https://shop.example/o/1001",
                  tracking_url="https://track.example/1001", carrier="InPost")
    values = dict(event_id=uid(), event_type=EventType.ORDER_SHIPPED, store_id="store-1",
                  customer_id=customer_id, occurred_at=NOW, order=order)
    return StorefrontEvent(**{**values, **overrides})


def intent(customer_id: str | None = None, **overrides) -> MessageIntent:
    values = dict(message_id=uid(), customer_id=customer_id or uid(), store_id="store-1",
                  template="shipping_update", purpose=Purpose.TRANSACTIONAL,
                  channels=[Channel.SMS, Channel.WHATSAPP, Channel.EMAIL],
                  variables={"order_id": "1001", "tracking_url": "https://track.example/1001"},
                  trigger_event_id=uid(), trigger_received_at=NOW, created_at=NOW)
    return MessageIntent(**{**values, **overrides})


def command(customer_id: str | None = None, **overrides) -> SendCommand:
    values = dict(message_id=uid(), customer_id=customer_id or uid(), store_id="store-1", channel=Channel.SMS,
                  to="+48601234567", template="shipping_update", locale="pl",
                  body="Cześć Ana! Twoje zamówienie nr 1001 zostało wysłane.", purpose=Purpose.TRANSACTIONAL,
                  sms=SmsSegments(encoding="UCS-2", segments=1, units=52, cost_micros=40_000, currency="EUR"),
                  trigger_event_id=uid(), trigger_received_at=NOW, created_at=NOW)
    return SendCommand(**{**values, **overrides})
