"""StorefrontEvent: something that happened in a shop (topic ``storefront.events``)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from schemas.types import INT_MAX, LONG_MAX, Record, Timestamp


class EventType(StrEnum):
    ORDER_PLACED = "order_placed"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    CART_ABANDONED = "cart_abandoned"
    BACK_IN_STOCK = "back_in_stock"  # keyed by SKU when the shop restocks; by customer when fanned out to one
    BACK_IN_STOCK_REQUESTED = "back_in_stock_requested"  # a customer asks to hear when a SKU is back
    CUSTOMER_SIGNUP = "customer_signup"
    BIRTHDAY = "birthday"
    CUSTOMER_INACTIVE = "customer_inactive"
    UNKNOWN = "unknown"


class LineItem(Record):
    sku: str = Field(min_length=1)
    name: str
    quantity: int = Field(ge=1, le=INT_MAX)
    unit_price_minor: int = Field(ge=0, le=LONG_MAX)


class Order(Record):
    order_id: str = Field(min_length=1)
    total_minor: int = Field(ge=0, le=LONG_MAX)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    order_url: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None
    items: list[LineItem] = []


class Cart(Record):
    cart_id: str = Field(min_length=1)
    cart_url: str
    total_minor: int = Field(ge=0, le=LONG_MAX)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: list[LineItem] = []


_NEEDS_ORDER = {EventType.ORDER_PLACED, EventType.ORDER_SHIPPED, EventType.ORDER_DELIVERED}


class StorefrontEvent(Record):
    event_id: str = Field(min_length=1)
    event_type: EventType
    store_id: str = Field(min_length=1)
    customer_id: str | None = None
    occurred_at: Timestamp
    order: Order | None = None
    cart: Cart | None = None
    sku: str | None = None
    attributes: dict[str, str] = {}

    @model_validator(mode="after")
    def _shape_fits_type(self) -> StorefrontEvent:
        kind = EventType(self.event_type)
        if kind in (EventType.BACK_IN_STOCK, EventType.BACK_IN_STOCK_REQUESTED):
            if not self.sku:
                raise ValueError(f"{kind.value} needs a sku")
            if kind is EventType.BACK_IN_STOCK_REQUESTED and not self.customer_id:
                raise ValueError("back_in_stock_requested needs a customer_id")
        elif not self.customer_id:
            raise ValueError(f"{kind.value} needs a customer_id")
        if kind in _NEEDS_ORDER and self.order is None:
            raise ValueError(f"{kind.value} needs an order")
        if kind is EventType.CART_ABANDONED and self.cart is None:
            raise ValueError("cart_abandoned needs a cart")
        return self

    @property
    def key(self) -> str:
        """The partitioning key: the customer, or the SKU for a back-in-stock event."""
        return self.customer_id or f"sku:{self.sku}"
