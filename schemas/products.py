"""CoPurchase: what one order says about the products bought together (topic ``products.copurchases``)."""

from __future__ import annotations

from pydantic import Field

from schemas.types import Record, Timestamp


class ProductRef(Record):
    sku: str = Field(min_length=1)
    name: str


class CoPurchase(Record):
    """One SKU of a placed order and the order's other SKUs; keyed by store and SKU."""

    order_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    partners: list[ProductRef] = []
    occurred_at: Timestamp
