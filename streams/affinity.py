"""Product affinity: which products customers bought together, and what to recommend after a purchase.

Pure: no Faust, no I/O. The worker's core turns each placed order into one
:class:`CoPurchase` per SKU (:func:`copurchases`) on ``products.copurchases``, keyed by store and SKU;
``count_copurchases`` folds them into the global table ``affinity`` (:func:`fold`); the journeys
engine asks :func:`recommend` when a step needs a recommendation. ``switchboard simulate`` runs the
same three functions.

State, one per store and SKU (:func:`key`)::

    {"partners": {sku: {"n": orders with both, "name": the partner's latest name, "at": ms of the latest}},
     "orders": [order ids counted, oldest first]}

Bounded: the ``MAX_PARTNERS`` partners bought together most often (on a tie the most recent, then by
SKU) and the last ``MAX_ORDERS`` order ids, which make a replayed order count once. A replay of an
order older than that would count again: the worker replays only what it had not committed,
so in practice the window is minutes. A partner pushed out of the top list starts again from one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

from schemas.events import EventType, StorefrontEvent
from schemas.products import CoPurchase, ProductRef

Affinity = dict
Lookup = Callable[[str], Mapping | None]  # a SKU of the customer's store -> its state (None: never bought)

MAX_PARTNERS = 20
MAX_ORDERS = 50
MAX_ORDER_SKUS = 50  # a bulk order's first SKUs only: it says little about taste, and costs n² to count
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Recommendation:
    sku: str
    name: str
    score: int  # orders that had it with one of the purchased SKUs (summed over them)


def key(store_id: str, sku: str) -> str:
    """The record and table key: a SKU means something in its own store only."""
    return json.dumps([store_id, sku], ensure_ascii=False, separators=(",", ":"))


def copurchases(event: StorefrontEvent) -> list[CoPurchase]:
    """One record per distinct SKU of a placed order, naming the order's other SKUs (none for a one-SKU order)."""
    if event.event_type != EventType.ORDER_PLACED or event.order is None:
        return []
    names: dict[str, str] = {}
    for item in event.order.items:
        if item.sku not in names and len(names) < MAX_ORDER_SKUS:
            names[item.sku] = item.name
        elif item.sku in names and not names[item.sku]:
            names[item.sku] = item.name
    if len(names) < 2:
        return []
    return [CoPurchase(order_id=event.order.order_id, store_id=event.store_id, sku=sku,
                       partners=[ProductRef(sku=other, name=name) for other, name in names.items() if other != sku],
                       occurred_at=event.occurred_at)
            for sku in names]


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(milliseconds=1)


def _rank(item: tuple[str, Mapping]) -> tuple:
    sku, entry = item
    return -entry["n"], -entry["at"], sku


def fold(state: Affinity | None, record: CoPurchase) -> Affinity:
    """The SKU's state after one order's co-purchase record; an order already counted changes nothing."""
    state = state or {}
    orders = list(state.get("orders", []))
    if record.order_id in orders:
        return {"partners": dict(state.get("partners", {})), "orders": orders}
    at = _ms(record.occurred_at)
    partners = {sku: dict(entry) for sku, entry in state.get("partners", {}).items()}
    for partner in {p.sku: p for p in record.partners if p.sku != record.sku}.values():
        entry = partners.setdefault(partner.sku, {"n": 0, "name": partner.name, "at": at})
        entry["n"] += 1
        if at >= entry["at"] and partner.name:  # the latest order's name (a shop may rename a product)
            entry["name"] = partner.name
        entry["at"] = max(entry["at"], at)
    kept = dict(sorted(partners.items(), key=_rank)[:MAX_PARTNERS])
    return {"partners": kept, "orders": (orders + [record.order_id])[-MAX_ORDERS:]}


def recommend(lookup: Lookup, purchased: Iterable[str], exclude: Iterable[str] = ()) -> Recommendation | None:
    """The product bought most often together with ``purchased`` (counts summed over them), never one of them
    nor of ``exclude`` (what the customer already has), never one without a name. Ties: the more recent, then
    the smaller SKU."""
    bought = sorted(set(purchased))
    excluded = set(bought) | set(exclude)
    score: dict[str, int] = {}
    latest: dict[str, tuple[int, str]] = {}  # sku -> (ms, name) of the most recent order with it
    for sku in bought:
        state = lookup(sku) or {}
        for other, entry in state.get("partners", {}).items():
            if other in excluded or not entry.get("name"):
                continue
            score[other] = score.get(other, 0) + int(entry["n"])
            latest[other] = max(latest.get(other, (0, "")), (int(entry["at"]), entry["name"]))
    if not score:
        return None
    best = min(score, key=lambda sku: (-score[sku], -latest[sku][0], sku))
    return Recommendation(sku=best, name=latest[best][1], score=score[best])


def link(pattern: str | None, sku: str) -> str | None:
    """The product page from the store's pattern (``https://shop.example/p/{sku}``), the SKU URL-quoted."""
    return pattern.replace("{sku}", quote(sku, safe="")) if pattern else None
