"""Specs for product affinity (streams/affinity.py): placed orders in, co-purchase counts per SKU, and the
product to recommend after a purchase."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Cart, EventType, LineItem, Order, StorefrontEvent
from schemas.products import CoPurchase, ProductRef
from streams import affinity
from streams.affinity import MAX_ORDERS, MAX_PARTNERS, copurchases, fold, key, link, recommend

T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
NAMES = {"SNK-42": "Trail sneakers", "SOCK-1": "Merino running socks", "CAP-7": "Running cap",
         "MUG-3": "Mug", "TEE-5": "T-shirt"}


def item(sku: str, name: str | None = None) -> LineItem:
    return LineItem(sku=sku, name=NAMES.get(sku, sku) if name is None else name, quantity=1, unit_price_minor=100)


def placed(order_id: str, *skus: str, store: str = "store-1", at: dt.datetime = T0,
           kind: EventType = EventType.ORDER_PLACED) -> StorefrontEvent:
    order = Order(order_id=order_id, total_minor=100, currency="EUR", items=[item(s) for s in skus])
    return StorefrontEvent(event_id=f"ev-{order_id}", event_type=kind, store_id=store, customer_id="cust-9",
                           occurred_at=at, order=order)


class Table(dict):
    """The global table as the worker keeps it: affinity.key(store, SKU) -> state."""

    def place(self, event: StorefrontEvent) -> Table:
        for record in copurchases(event):
            where = key(record.store_id, record.sku)
            self[where] = fold(self.get(where), record)
        return self

    def lookup(self, store: str = "store-1"):
        return lambda sku: self.get(key(store, sku))

    def count(self, sku: str, partner: str, store: str = "store-1") -> int:
        return self.get(key(store, sku), {}).get("partners", {}).get(partner, {}).get("n", 0)


# --- orders into co-purchase records ------------------------------------------------------------------

def test_a_placed_order_yields_one_record_per_sku_naming_the_others():
    records = copurchases(placed("1001", "SNK-42", "SOCK-1", "CAP-7"))
    assert [r.sku for r in records] == ["SNK-42", "SOCK-1", "CAP-7"]
    assert records[0] == CoPurchase(order_id="1001", store_id="store-1", sku="SNK-42", occurred_at=T0,
                                    partners=[ProductRef(sku="SOCK-1", name="Merino running socks"),
                                              ProductRef(sku="CAP-7", name="Running cap")])


def test_a_sku_bought_twice_in_one_order_is_one_product_and_a_one_product_order_says_nothing():
    assert [r.sku for r in copurchases(placed("1", "SNK-42", "SOCK-1", "SNK-42"))] == ["SNK-42", "SOCK-1"]
    assert copurchases(placed("2", "SNK-42")) == []
    assert copurchases(placed("3", "SNK-42", "SNK-42")) == []


def test_only_placed_orders_count_not_shipments_nor_carts():
    assert copurchases(placed("1", "SNK-42", "SOCK-1", kind=EventType.ORDER_SHIPPED)) == []
    cart = StorefrontEvent(event_id="ev-c", event_type=EventType.CART_ABANDONED, store_id="store-1",
                           customer_id="cust-9", occurred_at=T0,
                           cart=Cart(cart_id="c", cart_url="https://shop.example/c", total_minor=1, currency="EUR",
                                     items=[item("SNK-42"), item("SOCK-1")]))
    assert copurchases(cart) == []


def test_a_bulk_order_counts_its_first_skus_only():
    skus = [f"SKU-{n:03}" for n in range(affinity.MAX_ORDER_SKUS + 30)]
    records = copurchases(placed("bulk", *skus))
    assert len(records) == affinity.MAX_ORDER_SKUS
    assert all(len(r.partners) == affinity.MAX_ORDER_SKUS - 1 for r in records)


def test_keys_are_per_store_and_unambiguous():
    assert key("store-1", "SNK-42") == '["store-1","SNK-42"]'
    assert key("a:b", "c") != key("a", "b:c") and key("a/b", "c") != key("a", "b/c")


# --- folding -----------------------------------------------------------------------------------------

def test_orders_with_both_products_count_for_both():
    table = Table().place(placed("1", "SNK-42", "SOCK-1")).place(placed("2", "SNK-42", "SOCK-1", "CAP-7"))
    assert (table.count("SNK-42", "SOCK-1"), table.count("SOCK-1", "SNK-42")) == (2, 2)
    assert (table.count("SNK-42", "CAP-7"), table.count("CAP-7", "SOCK-1")) == (1, 1)
    assert table[key("store-1", "SNK-42")]["orders"] == ["1", "2"]


def test_a_replayed_order_is_counted_once():
    table = Table().place(placed("1", "SNK-42", "SOCK-1"))
    before = dict(table)
    table.place(placed("1", "SNK-42", "SOCK-1"))
    assert table == before


def test_a_partner_keeps_the_latest_name_it_was_bought_under():
    (first,) = [r for r in copurchases(placed("1", "SNK-42", "SOCK-1")) if r.sku == "SNK-42"]
    renamed = first.model_copy(update={"order_id": "2", "occurred_at": T0 + dt.timedelta(days=1),
                                       "partners": [ProductRef(sku="SOCK-1", name="Merino socks 2.0")]})
    older = first.model_copy(update={"order_id": "0", "occurred_at": T0 - dt.timedelta(days=1),
                                     "partners": [ProductRef(sku="SOCK-1", name="Old socks")]})
    state = fold(fold(fold(None, first), renamed), older)
    assert state["partners"]["SOCK-1"]["name"] == "Merino socks 2.0" and state["partners"]["SOCK-1"]["n"] == 3


def test_the_top_partners_stay_and_a_newcomer_wins_a_tie_against_older_ones():
    table = Table()
    for n in range(MAX_PARTNERS):
        table.place(placed(f"old-{n}", "SNK-42", f"P-{n:02}", at=T0))
    table.place(placed("favourite", "SNK-42", "P-00", at=T0 + dt.timedelta(minutes=1)))
    table.place(placed("new", "SNK-42", "ZZ-NEW", at=T0 + dt.timedelta(minutes=2)))
    partners = table[key("store-1", "SNK-42")]["partners"]
    assert len(partners) == MAX_PARTNERS
    assert partners["P-00"]["n"] == 2 and "ZZ-NEW" in partners  # the most recent of the count-1 ties stays
    assert "P-19" not in partners  # the oldest of them, last by SKU, made room


def test_only_the_last_order_ids_are_remembered():
    table = Table()
    for n in range(MAX_ORDERS + 5):
        table.place(placed(f"o-{n}", "SNK-42", "SOCK-1"))
    orders = table[key("store-1", "SNK-42")]["orders"]
    assert len(orders) == MAX_ORDERS and orders[-1] == f"o-{MAX_ORDERS + 4}" and "o-0" not in orders


# --- recommending ---------------------------------------------------------------------------------------

def test_the_product_most_often_bought_with_the_purchase_is_recommended():
    table = Table()
    for n in range(3):
        table.place(placed(f"a{n}", "SNK-42", "SOCK-1"))
    table.place(placed("b", "SNK-42", "CAP-7"))
    assert recommend(table.lookup(), ["SNK-42"]) == affinity.Recommendation("SOCK-1", "Merino running socks", 3)


def test_counts_add_up_over_every_product_of_the_purchase():
    table = Table()
    table.place(placed("1", "SNK-42", "CAP-7")).place(placed("2", "SNK-42", "CAP-7"))
    table.place(placed("3", "SNK-42", "MUG-3")).place(placed("4", "SNK-42", "MUG-3"))
    table.place(placed("5", "TEE-5", "MUG-3"))
    assert recommend(table.lookup(), ["SNK-42", "TEE-5"]).sku == "MUG-3"  # 2 + 1 beats 2


def test_nothing_the_customer_bought_is_recommended():
    table = Table().place(placed("1", "SNK-42", "SOCK-1")).place(placed("2", "SNK-42", "SOCK-1"))
    table.place(placed("3", "SNK-42", "CAP-7"))
    assert recommend(table.lookup(), ["SNK-42", "SOCK-1"]).sku == "CAP-7"
    assert recommend(table.lookup(), ["SNK-42"], exclude={"SOCK-1"}).sku == "CAP-7"
    assert recommend(table.lookup(), ["SNK-42"], exclude={"SOCK-1", "CAP-7"}) is None


def test_nothing_is_recommended_for_an_unknown_product_nor_from_another_store():
    table = Table().place(placed("1", "SNK-42", "SOCK-1", store="store-2"))
    assert recommend(table.lookup("store-1"), ["SNK-42"]) is None
    assert recommend(table.lookup("store-2"), ["SNK-42"]).sku == "SOCK-1"
    assert recommend(table.lookup(), []) is None


def test_a_product_without_a_name_is_not_recommended():
    order = Order(order_id="1", total_minor=1, currency="EUR", items=[item("SNK-42"), item("X-1", name="")])
    event = StorefrontEvent(event_id="e", event_type=EventType.ORDER_PLACED, store_id="store-1",
                            customer_id="c", occurred_at=T0, order=order)
    assert recommend(Table().place(event).lookup(), ["SNK-42"]) is None


def test_ties_go_to_the_more_recent_then_to_the_smaller_sku():
    table = Table().place(placed("1", "SNK-42", "MUG-3", at=T0)).place(placed("2", "SNK-42", "CAP-7", at=T0))
    assert recommend(table.lookup(), ["SNK-42"]).sku == "CAP-7"
    table.place(placed("3", "SNK-42", "TEE-5", at=T0 - dt.timedelta(days=1)))
    assert recommend(table.lookup(), ["SNK-42"]).sku == "CAP-7"
    table.place(placed("4", "SNK-42", "TEE-5", at=T0 + dt.timedelta(days=1)))
    assert recommend(table.lookup(), ["SNK-42"]).sku == "TEE-5"  # now bought together twice


def test_a_link_fills_the_stores_pattern_with_the_quoted_sku():
    assert link("https://shop.example/p/{sku}", "SOCK 1/ü") == "https://shop.example/p/SOCK%201%2F%C3%BC"
    assert link(None, "SOCK-1") is None


# --- properties -----------------------------------------------------------------------------------------

SKUS = [f"S{n}" for n in range(8)]  # fewer than MAX_PARTNERS: nothing is pushed out, so counts are exact
orders = st.lists(st.lists(st.sampled_from(SKUS), min_size=1, max_size=5), max_size=25)


def replayed(baskets: list[list[str]], replays: list[int]) -> list[StorefrontEvent]:
    """The orders, then some of them again (a replay after a crash: same order ids)."""
    events = [placed(f"o{n}", *basket, at=T0 + dt.timedelta(minutes=n)) for n, basket in enumerate(baskets)]
    return events + [events[i % len(events)] for i in replays] if events else events


@settings(max_examples=150)
@given(orders, st.lists(st.integers(0, 100), max_size=10))
def test_counts_are_symmetric_exact_and_replays_do_not_double_count(baskets, replays):
    table = Table()
    for event in replayed(baskets, replays):
        table.place(event)
    for a, b in itertools.permutations(SKUS, 2):
        expected = sum(1 for basket in baskets if a in basket and b in basket)
        assert table.count(a, b) == table.count(b, a) == expected


@settings(max_examples=100)
@given(st.lists(st.lists(st.integers(0, 60).map(lambda n: f"P{n}"), min_size=2, max_size=8), max_size=40))
def test_every_sku_keeps_at_most_max_partners_and_max_orders(baskets):
    table = Table()
    for event in replayed(baskets, []):
        table.place(event)
    for state in table.values():
        assert len(state["partners"]) <= MAX_PARTNERS and len(state["orders"]) <= MAX_ORDERS
        assert all(entry["n"] >= 1 for entry in state["partners"].values())


@settings(max_examples=150)
@given(orders, st.lists(st.sampled_from(SKUS), max_size=4), st.sets(st.sampled_from(SKUS), max_size=3))
def test_never_recommends_what_was_bought_and_always_the_best_scored(baskets, purchased, exclude):
    table = Table()
    for event in replayed(baskets, []):
        table.place(event)
    found = recommend(table.lookup(), purchased, exclude)
    candidates = {s: sum(table.count(p, s) for p in set(purchased)) for s in SKUS
                  if s not in set(purchased) | exclude}
    best = max(candidates.values(), default=0)
    if best == 0:
        assert found is None
    else:
        assert found is not None and found.sku not in set(purchased) | exclude
        assert found.score == candidates[found.sku] == best


@settings(max_examples=50)
@given(orders)
def test_the_recommendation_does_not_depend_on_the_order_the_purchase_lists_its_skus_in(baskets):
    table = Table()
    for event in replayed(baskets, []):
        table.place(event)
    for purchase in (["S0", "S1", "S2"], ["S3"]):
        assert recommend(table.lookup(), purchase) == recommend(table.lookup(), list(reversed(purchase)))
