"""The records the benchmark feeds: a simulated shop (``connectors.simulator``), Avro-encoded up front.

Encoding happens before any clock starts, so a measured phase only sends bytes. The events keep the
simulator's mix (orders placed, shipped, abandoned carts) and its shuffled order; the malformed
records are left out, so every event is a real one.

The customers' state reaches the worker the way a restarted worker gets it back: as the records of
its ``profiles`` and ``consents`` tables' changelogs (the raw Avro profile, and the consent changes
folded with ``streams.consent.fold``, the worker's own function). Ingesting the same state through
the agents runs at a rate this machine needs minutes for at 50,000 customers; that rate is measured
on its own, on a slice of fresh customers (:attr:`Workload.ingest`).

For the memory phase, :func:`customer_tables` makes table entries for many more customers than the
simulator can generate in the time: it generates a pool of customers and reuses their profiles and
folded consents under fresh customer ids (every entry is its own record, as in production).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from faust.serializers import codecs

from connectors.simulator import Storefront, generate
from schemas.codec import encode
from schemas.customers import ConsentChange, CustomerProfile
from schemas.events import EventType, StorefrontEvent
from streams import consent
from streams.core.state import FORMAT as STATE_FORMAT

Record = tuple[bytes, bytes]  # (key, value)


@dataclass(frozen=True)
class TableEntries:
    """One customer's state: their profile and folded consents, as the worker's ``customers`` table holds them."""

    key: bytes
    profile: bytes  # raw Avro CustomerProfile: the state keeps the bytes
    consents: bytes  # the folded consent state (streams.consent.fold), as JSON

    def state_json(self) -> bytes:
        """The ``customers`` changelog record (streams/core/state.py ``CustomerState.as_json``)."""
        return json.dumps({"v": STATE_FORMAT, "profile": base64.b64encode(self.profile).decode("ascii"),
                           "consents": json.loads(self.consents)}).encode()


@dataclass
class Workload:
    customers: int
    tables: list[TableEntries]  # the shop's customers, for the tables' changelogs
    events: list[Record]  # storefront events, in the simulator's shuffled order
    event_mix: dict[str, int]  # event type -> count, over the events above
    ingest: list[tuple[str, Record]]  # (catalog topic, record): fresh customers' profiles then consent changes
    sentinel: Record  # a shipped order of a known customer: its decision proves the worker is ready


def build(customers: int, seed: int, events: int, ingest_customers: int) -> Workload:
    """The shop: ``customers`` customers' state, its first ``events`` events, and an ingest slice."""
    now = dt.datetime.now(dt.UTC)
    shop: Storefront = generate(customers, seed, now, malformed_rate=0.0)
    chosen = shop.events[:events]
    fresh = generate(ingest_customers, seed + 1, now, malformed_rate=0.0)
    return Workload(
        customers=customers,
        tables=list(_tables(shop.profiles, shop.consents)),
        events=[(e.key.encode(), encode(e)) for e in chosen],
        event_mix=dict(Counter(str(e.event_type) for e in chosen)),
        ingest=[*(("customers.profiles", (p.customer_id.encode(), encode(p))) for p in fresh.profiles),
                *(("customers.consents", (c.customer_id.encode(), encode(c))) for c in fresh.consents)],
        sentinel=sentinel_event(shop, shop.profiles[0].customer_id),
    )


def sentinel_event(shop: Storefront, customer_id: str) -> Record:
    """A new shipped-order event for ``customer_id``, modelled on one of the shop's."""
    template = next(e for e in shop.events if e.event_type == EventType.ORDER_SHIPPED)
    event: StorefrontEvent = template.model_copy(update={"customer_id": customer_id, "event_id": str(uuid.uuid4())})
    return event.key.encode(), encode(event)


def _tables(profiles: Iterable[CustomerProfile], changes: Iterable[ConsentChange]) -> Iterator[TableEntries]:
    folded: dict[str, dict] = {}
    for change in changes:
        folded[change.customer_id] = consent.fold(folded.get(change.customer_id), change)
    json = codecs.get_codec("json")
    for profile in profiles:
        yield TableEntries(profile.customer_id.encode(), encode(profile), json.dumps(folded.get(profile.customer_id, {})))


def customer_tables(customers: int, seed: int, pool: int = 2000) -> tuple[Record, Iterator[TableEntries]]:
    """A sentinel event and ``customers`` customers' table entries, each under its own id, from a pool."""
    shop = generate(pool, seed, dt.datetime.now(dt.UTC), malformed_rate=0.0)
    templates = list(_tables(shop.profiles, shop.consents))
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(min(customers, 1))]
    sentinel = sentinel_event(shop, ids[0]) if ids else sentinel_event(shop, shop.profiles[0].customer_id)

    def entries() -> Iterator[TableEntries]:
        again = random.Random(seed)
        for n in range(customers):
            template = templates[n % len(templates)]
            new_id = str(uuid.UUID(int=again.getrandbits(128), version=4)).encode()
            yield TableEntries(new_id, _with_customer_id(template.profile, template.key, new_id), template.consents)

    return sentinel, entries()


def _with_customer_id(profile: bytes, old_id: bytes, new_id: bytes) -> bytes:
    """The encoded profile under another customer id. A UUID string is 36 bytes either way, so the Avro
    length prefix stays right; encoding a million profiles again would take longer than the phase."""
    if profile.count(old_id) != 1 or len(old_id) != len(new_id):
        raise ValueError("profile template does not hold its customer id exactly once")
    return profile.replace(old_id, new_id)
