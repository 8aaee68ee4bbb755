"""What a step needs besides the state and the input: the clock, the store rules, the journeys, the keys,
and read-only lookups into state that is not the customer's (stock, product affinity, erasures)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from schemas.customers import CustomerProfile
from streams import affinity, erasure, policy, quiet_hours
from streams.clock import Clock
from streams.journeys import engine
from streams.journeys.definitions import Journey
from streams.stores import StoreDirectory


def _never(_key: bytes) -> bool:
    return False


def _in_stock(_sku: str) -> int | None:
    return None


def _no_affinity(_key: str) -> Mapping | None:
    return None


@dataclass(frozen=True)
class Context:
    clock: Clock
    journeys: Mapping[str, Journey]
    stores: StoreDirectory = field(default_factory=StoreDirectory)
    policy: policy.PolicyConfig = policy.PolicyConfig()
    coupon_secret: bytes = b"dev-only-coupon-key"
    erasure_secret: bytes = b"dev-only-erasure-key"
    journey_time_scale: float = 1.0
    is_erased: Callable[[bytes], bool] = _never  # a suppression key (streams.erasure) -> erased?
    stock: Callable[[str], int | None] = _in_stock  # a SKU -> units in stock (None: not known)
    affinity: Callable[[str], Mapping | None] = _no_affinity  # affinity.key(store, SKU) -> what was bought with it

    def erased(self, customer_id: str) -> bool:
        return self.is_erased(erasure.suppression_key(self.erasure_secret, customer_id))

    def zone(self, profile: CustomerProfile | None, store_id: str) -> ZoneInfo:
        """The customer's time zone: the profile's, else their number's, else the store's."""
        return quiet_hours.resolve_zone(profile.time_zone if profile else None,
                                        (profile.phone or profile.whatsapp) if profile else None,
                                        self.stores(store_id).time_zone)

    def journey_context(self, profile: CustomerProfile | None, behaviour: Mapping | None, store_id: str,
                        now: dt.datetime) -> engine.Context:
        store = self.stores(store_id)
        return engine.Context(journeys=self.journeys, now=now, zone=self.zone(profile, store_id),
                              coupon_secret=self.coupon_secret, time_scale=self.journey_time_scale,
                              affinity_lookup=lambda sku: self.affinity(affinity.key(store_id, sku)),
                              bought=frozenset((behaviour or {}).get("skus", [])),
                              product_url=store.product_url)
