"""Storefront events -> message intents. Pure: no Faust, no clock of its own.

Two journeys so far: an order that ships gets a shipping update on the customer's preferred channel
(transactional); an abandoned cart gets one reminder (marketing: consent, caps and quiet hours
apply), which stops being worth sending :data:`CART_REMINDER_VALID_FOR` after the cart was left.
"""

from __future__ import annotations

import datetime as dt

from schemas.events import EventType, StorefrontEvent
from schemas.messages import MessageIntent
from schemas.types import Channel, Purpose
from streams.ids import message_id

SHIPPING_UPDATE_CHANNELS = [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
CART_REMINDER_CHANNELS = [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
CART_REMINDER_VALID_FOR = dt.timedelta(hours=48)


def intents_for(event: StorefrontEvent, received_at: dt.datetime, now: dt.datetime) -> list[MessageIntent]:
    """The intents one storefront event starts (none for event types without a journey yet)."""
    if event.event_type == EventType.CART_ABANDONED and event.cart is not None and event.customer_id is not None:
        return [MessageIntent(
            message_id=message_id(event.event_id, "cart_reminder"), customer_id=event.customer_id,
            store_id=event.store_id, template="cart_reminder", purpose=Purpose.MARKETING,
            channels=CART_REMINDER_CHANNELS, variables={"cart_url": event.cart.cart_url},
            trigger_event_id=event.event_id, trigger_received_at=received_at, created_at=now,
            expires_at=event.occurred_at + CART_REMINDER_VALID_FOR, message_class="cart_reminder",
        )]
    if event.event_type != EventType.ORDER_SHIPPED or event.order is None or event.customer_id is None:
        return []
    order = event.order
    variables = {"order_id": order.order_id, "tracking_url": order.tracking_url or order.order_url or ""}
    if order.carrier:
        variables["carrier"] = order.carrier
    return [
        MessageIntent(
            message_id=message_id(event.event_id, "shipping_update"),
            customer_id=event.customer_id,
            store_id=event.store_id,
            template="shipping_update",
            purpose=Purpose.TRANSACTIONAL,
            channels=SHIPPING_UPDATE_CHANNELS,
            variables=variables,
            trigger_event_id=event.event_id,
            trigger_received_at=received_at,
            created_at=now,
        )
    ]
