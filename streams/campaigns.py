"""Campaigns: one template broadcast to a segment, through every policy, at the pace the gateways allow.

Pure: no Faust, no I/O. A campaign is launched with a :class:`CampaignLaunch` record written to
every partition of ``campaigns.launches``; each worker walks the customers of the partitions it owns
(streams/owner.py, a slice at a time, taking turns with live input), keeps those its :class:`Segment`
selects, and decides one marketing message each (:func:`intent_for`, through the policy, in the core's
step). The commands go to the ``.bulk`` lanes, which the gateways drain after the transactional ones.

Segments read the customer's profile and a small behaviour summary kept in the customer's state
(``behaviour``): last order, products bought (SKUs), abandoned carts. There is no
product catalogue here, so "bought from a category" is a SKU prefix (``bought_sku_prefix: [SNK]``:
the shop's SKUs must carry their category). ``cities`` compares the profile's city as
:func:`streams.keywords.normalize` does keywords: case, accents and punctuation aside ("krakow",
"KRAKÓW" and "Kraków" are one city; "Tel-Aviv" is "Tel Aviv"), but no transliteration ("Минск" is
not "Minsk": list both when a store's profiles use both).

Consent, caps, quiet hours and expiry are not the segment's business: the policy applies them to
every intent, with an outcome saying why when a customer is left out.

Behaviour state: ``{"orders": n, "last_order": epoch ms, "skus": [..], "carts": n, "last_cart": ms}``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.customers import CustomerProfile
from schemas.events import EventType, StorefrontEvent
from schemas.messages import CampaignLaunch, MessageIntent
from schemas.types import Channel, Purpose
from streams import ids
from streams.journeys.definitions import parse_duration
from streams.keywords import normalize

Behaviour = dict
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
MAX_SKUS = 50  # the behaviour summary keeps the most recent SKUs bought, not a purchase history
_city = functools.lru_cache(maxsize=4096)(normalize)  # a campaign compares the same few names a million times


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(milliseconds=1)


def remember(behaviour: Behaviour | None, event: StorefrontEvent) -> Behaviour | None:
    """The summary after ``event``; None when the event says nothing a segment reads (no write needed)."""
    kind = EventType(event.event_type)
    if kind not in (EventType.ORDER_PLACED, EventType.CART_ABANDONED):
        return None
    summary = dict(behaviour or {})
    at = _ms(event.occurred_at)
    if kind == EventType.ORDER_PLACED and event.order is not None:
        summary["orders"] = summary.get("orders", 0) + 1
        summary["last_order"] = max(summary.get("last_order", 0), at)
        skus = [s for s in summary.get("skus", []) if s not in {i.sku for i in event.order.items}]
        summary["skus"] = (skus + [i.sku for i in event.order.items])[-MAX_SKUS:]
    elif kind == EventType.CART_ABANDONED:
        summary["carts"] = summary.get("carts", 0) + 1
        summary["last_cart"] = max(summary.get("last_cart", 0), at)
    return summary


class Segment(BaseModel):
    """Every given predicate must hold (an empty segment is every customer of the store)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locales: list[str] | None = Field(None, description="the profile's language, e.g. [pl, nl]")
    reachable_on: list[Channel] | None = Field(None, description="has a contact point on one of these")
    bought_sku_prefix: list[str] | None = Field(None, description="bought a SKU starting with one of these")
    cities: list[str] | None = Field(None, description="lives in one of these, e.g. [Kraków, Gdańsk]")
    last_order_older_than: dt.timedelta | None = None
    ordered_within: dt.timedelta | None = None
    abandoned_cart_within: dt.timedelta | None = None
    never_ordered: bool = False

    @field_validator("last_order_older_than", "ordered_within", "abandoned_cart_within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.startswith("P")):
            return value  # ISO 8601 ("P30D"): how a launch's segment_json holds it, read back by pydantic
        return parse_duration(value)

    @field_validator("cities")
    @classmethod
    def _names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(_city(name) for name in value):
            raise ValueError("a city needs a name (letters or digits)")
        return value

    def selects(self, profile: CustomerProfile, behaviour: Behaviour | None, now: dt.datetime) -> bool:
        seen = behaviour or {}
        last_order = seen.get("last_order")
        checks = [
            self.locales is None or profile.locale.split("-")[0].lower() in {x.lower() for x in self.locales},
            self.reachable_on is None or any(_reachable(profile, c) for c in self.reachable_on),
            self.cities is None or (profile.city is not None
                                    and _city(profile.city) in {_city(c) for c in self.cities}),
            self.bought_sku_prefix is None or any(s.startswith(p) for s in seen.get("skus", [])
                                                  for p in self.bought_sku_prefix),
            self.last_order_older_than is None or (last_order is not None
                                                   and last_order <= _ms(now - self.last_order_older_than)),
            self.ordered_within is None or (last_order is not None and last_order > _ms(now - self.ordered_within)),
            self.abandoned_cart_within is None or seen.get("last_cart", 0) > _ms(now - self.abandoned_cart_within),
            not self.never_ordered or not seen.get("orders"),
        ]
        return all(checks)


def _reachable(profile: CustomerProfile, channel: Channel) -> bool:
    match Channel(channel):
        case Channel.SMS:
            return profile.phone is not None
        case Channel.WHATSAPP:
            return (profile.whatsapp or profile.phone) is not None
        case _:
            return profile.email is not None


def segment_of(launch: CampaignLaunch) -> Segment:
    return Segment.model_validate(json.loads(launch.segment_json or "{}"))


def intent_for(launch: CampaignLaunch, customer_id: str, now: dt.datetime) -> MessageIntent:
    """The campaign's message to one customer; its id is ``uuid5(campaign, customer)``: a replayed launch
    yields the same ids, so nobody gets the broadcast twice."""
    return MessageIntent(
        message_id=ids.message_id(launch.campaign_id, f"campaign:{customer_id}"), customer_id=customer_id,
        store_id=launch.store_id, template=launch.template, purpose=Purpose.MARKETING,
        channels=[Channel(c) for c in launch.channels], variables=dict(launch.variables),
        trigger_event_id=launch.campaign_id, trigger_received_at=launch.launched_at, created_at=now,
        expires_at=launch.expires_at, message_class=launch.message_class, journey=f"campaign:{launch.name}",
    )
