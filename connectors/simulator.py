"""A realistic storefront: customers across the seeds' markets, their consents, orders that ship and
carts they abandon.

Pure generation (seeded, so a run can be repeated). Some customers have no profile at all, some no
phone, some opted out of a channel; some belong to a store that wants double opt-in; a few ask to be
erased; markets span time zones from New York to Sydney, so at any hour some customers are in their
quiet hours; a few events are malformed on purpose, to show the dead-letter path.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from schemas.customers import (
    ConsentChange,
    ConsentEvidence,
    ConsentSource,
    ConsentState,
    CustomerProfile,
    ErasureRequest,
)
from schemas.events import Cart, EventType, LineItem, Order, StorefrontEvent
from schemas.types import Channel, Purpose

# (locale, time zone, phone prefix, currency, first names, cities) per market of the seed articles.
MARKETS = [
    ("he", "Asia/Jerusalem", "+97250", "ILS", ["נועה", "איתי", "מאיה", "יוסי"],
     ["Tel Aviv", "Jerusalem", "Haifa"]),
    ("pl", "Europe/Warsaw", "+4860", "PLN", ["Zofia", "Łukasz", "Małgorzata", "Paweł"],
     ["Warszawa", "Kraków", "Gdańsk"]),
    ("nl", "Europe/Amsterdam", "+3161", "EUR", ["Sara", "Daan", "Emma", "Sem"],
     ["Amsterdam", "Rotterdam", "Utrecht"]),
    ("be", "Europe/Minsk", "+37529", "BYN", ["Алеся", "Янка", "Марыля", "Андрэй"],
     ["Minsk", "Hrodna", "Brest"]),
    ("en", "America/New_York", "+1212555", "USD", ["Ana", "Liam", "Olivia", "Noah"],
     ["New York", "Boston", "Philadelphia"]),
    ("en", "Australia/Sydney", "+61412", "AUD", ["Chloe", "Jack", "Mia", "Oliver"],
     ["Sydney", "Canberra", "Newcastle"]),
]
DOI_STORE = "demo-store-doi"  # deploy/stores/demo.yaml: double opt-in, one marketing message a day
CARRIERS = ["DHL", "InPost", "PostNL", "UPS", "Israel Post", "Belpochta"]
PRODUCTS = [("SNK-42", "Sneakers"), ("TSH-M", "T-shirt"), ("MUG-01", "Mug"), ("HDP-9", "Headphones")]


@dataclass
class Storefront:
    profiles: list[CustomerProfile] = field(default_factory=list)
    consents: list[ConsentChange] = field(default_factory=list)
    events: list[StorefrontEvent] = field(default_factory=list)
    malformed: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value) that must be dead-lettered
    erasures: list[ErasureRequest] = field(default_factory=list)  # sent after the state, before the events

    @property
    def shipped(self) -> list[StorefrontEvent]:
        return [e for e in self.events if e.event_type == EventType.ORDER_SHIPPED]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _profile(rng: random.Random, customer_id: str, store_id: str, now: dt.datetime) -> CustomerProfile:
    locale, zone, prefix, _, names, cities = MARKETS[rng.randrange(len(MARKETS))]
    phone = prefix + "".join(rng.choices("0123456789", k=12 - len(prefix) + 1))
    has_phone, has_email = rng.random() < 0.85, rng.random() < 0.8
    channels = [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL]
    rng.shuffle(channels)
    return CustomerProfile(
        customer_id=customer_id, store_id=store_id, first_name=rng.choice(names), locale=locale, time_zone=zone,
        # from the (random) id, not another draw: a seed keeps generating the same customers, events and all
        city=cities[int(customer_id[-4:], 16) % len(cities)],
        phone=phone if has_phone else None,
        whatsapp=phone if has_phone and rng.random() < 0.6 else None,
        email=f"{customer_id[:8]}@example.com" if has_email else None,
        channel_preferences=channels[: rng.randint(0, 3)], updated_at=now,
    )


def _consents(rng: random.Random, profile: CustomerProfile, now: dt.datetime) -> list[ConsentChange]:
    changes = []
    for channel in Channel:
        roll = rng.random()
        if roll < 0.35:
            continue  # never asked: transactional still allowed, marketing not
        state = ConsentState.OPTED_OUT if roll < 0.5 else ConsentState.OPTED_IN
        for purpose in Purpose:
            changes.append(ConsentChange(
                change_id=_uuid(rng), customer_id=profile.customer_id, store_id=profile.store_id, channel=channel,
                purpose=purpose, state=state, source=ConsentSource.CHECKOUT,
                occurred_at=now - dt.timedelta(days=rng.randint(1, 300)),
                evidence=ConsentEvidence(disclosure_text="I agree to receive order updates and offers.",
                                         disclosure_version="2026-01"),
            ))
    return changes


def _order(rng: random.Random, currency: str) -> Order:
    items = [LineItem(sku=sku, name=name, quantity=rng.randint(1, 2), unit_price_minor=rng.randint(999, 25_000))
             for sku, name in rng.sample(PRODUCTS, rng.randint(1, 3))]
    order_id = str(rng.randint(10_000, 99_999))
    return Order(order_id=order_id, total_minor=sum(i.quantity * i.unit_price_minor for i in items),
                 currency=currency, order_url=f"https://shop.example/orders/{order_id}",
                 tracking_url=f"https://track.example/{order_id}", carrier=rng.choice(CARRIERS), items=items)


def generate(customers: int, seed: int, now: dt.datetime, store_id: str = "demo-store",
             malformed_rate: float = 0.002) -> Storefront:
    rng = random.Random(seed)
    shop = Storefront()
    for _ in range(customers):
        customer_id = _uuid(rng)
        store = DOI_STORE if rng.random() < 0.15 else store_id
        profile = _profile(rng, customer_id, store, now)
        if rng.random() < 0.95:  # 5% placed an order as guests we know nothing about
            shop.profiles.append(profile)
            shop.consents.extend(_consents(rng, profile, now))
            if rng.random() < 0.005:
                shop.erasures.append(ErasureRequest(request_id=_uuid(rng), customer_id=customer_id, store_id=store,
                                                    requested_at=now))
        currency = next(m[3] for m in MARKETS if m[2] == (profile.phone or "")[:len(m[2])]) if profile.phone \
            else next(m[3] for m in MARKETS if m[0] == profile.locale)
        if rng.random() < 0.35:  # abandoned one to three carts in the last hours
            for _ in range(rng.randint(1, 3)):
                cart_id = str(rng.randint(100_000, 999_999))
                items = [LineItem(sku=sku, name=name, quantity=1, unit_price_minor=rng.randint(999, 25_000))
                         for sku, name in rng.sample(PRODUCTS, rng.randint(1, 2))]
                cart = Cart(cart_id=cart_id, cart_url=f"https://shop.example/cart/{cart_id}", currency=currency,
                            total_minor=sum(i.unit_price_minor for i in items), items=items)
                shop.events.append(StorefrontEvent(
                    event_id=_uuid(rng), event_type=EventType.CART_ABANDONED, store_id=store,
                    customer_id=customer_id, occurred_at=now - dt.timedelta(minutes=rng.randint(30, 300)), cart=cart))
        for _ in range(rng.randint(1, 2)):
            order = _order(rng, currency)
            placed = now - dt.timedelta(hours=rng.randint(2, 72))
            shop.events.append(StorefrontEvent(event_id=_uuid(rng), event_type=EventType.ORDER_PLACED,
                                               store_id=store, customer_id=customer_id, occurred_at=placed,
                                               order=order))
            if rng.random() < 0.9:
                shop.events.append(StorefrontEvent(event_id=_uuid(rng), event_type=EventType.ORDER_SHIPPED,
                                                   store_id=store, customer_id=customer_id,
                                                   occurred_at=placed + dt.timedelta(hours=1), order=order))
    for _ in range(max(1, round(customers * malformed_rate))):
        shop.malformed.append((_uuid(rng).encode(), b"\xc3\x01not-avro" + rng.randbytes(8)))
    rng.shuffle(shop.events)
    return shop
