"""Specs for the offline replay (``switchboard simulate``): scripted inputs through the shipped journeys,
the policy and the store rules on a virtual clock, and what it reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from streams.journeys.engine import message_id
from streams.journeys.loader import load_dir
from streams.simulation import Row, SimulationInputError, parse_lines, simulate
from streams.stores import StoreDirectory

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "journeys" / "examples" / "abandoned_cart.jsonl"
JOURNEYS = load_dir()
T0 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)  # a Tuesday, 11:00 in Warsaw
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)


def iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def profile(customer: str = "c1", at: dt.datetime = T0 - HOUR, store: str = "store-1", **overrides) -> dict:
    return {"type": "profile", "at": iso(at), "customer_id": customer, "store_id": store, "first_name": "Zofia",
            "locale": "pl", "time_zone": "Europe/Warsaw", "phone": "+48601234567", "email": "z@example.com",
            "channel_preferences": ["sms", "email"], **overrides}


def opt_in(customer: str = "c1", channel: str = "sms", **overrides) -> dict:
    return {"type": "consent", "customer_id": customer, "channel": channel, "purpose": "marketing",
            "state": "opted_in", **overrides}


def cart(customer: str = "c1", at: dt.datetime = T0, event_id: str = "ev-cart") -> dict:
    return {"type": "event", "at": iso(at), "event_id": event_id, "event_type": "cart_abandoned",
            "customer_id": customer, "cart": {"cart_id": "9", "cart_url": "https://shop.example/cart/9",
                                              "total_minor": 4900, "currency": "PLN"}}


def order(customer: str = "c1", at: dt.datetime = T0, event_id: str = "ev-order", kind: str = "order_placed") -> dict:
    return {"type": "event", "at": iso(at), "event_id": event_id, "event_type": kind, "customer_id": customer,
            "order": {"order_id": "1001", "total_minor": 4900, "currency": "PLN",
                      "order_url": "https://shop.example/o/1001", "tracking_url": "https://track.example/1001"}}


def receipt(status: str, customer: str = "c1", journey: str = "abandoned_cart", step: str = "sms", **at) -> dict:
    return {"type": "receipt", "customer_id": customer, "journey": journey, "step": step, "status": status, **at}


def run(*records: dict, stores: StoreDirectory | None = None, names: tuple[str, ...] = ("abandoned_cart",),
        **options) -> list[Row]:
    journeys = {name: JOURNEYS[name] for name in names}
    inputs = parse_lines([json.dumps(r) for r in records], journeys)
    return simulate(inputs, journeys, stores, **options).rows


def messages(rows: list[Row]) -> list[tuple[dt.datetime, str, str | None, str | None, str]]:
    """(time, step, channel, reason or scheduled time, decision) of each message decision."""
    return [(r.at, r.step or r.template or "", r.channel, r.reason, r.decision) for r in rows if r.kind == "message"]


ZOFIA = [profile(), opt_in(), opt_in(channel="email")]
CART_SMS = message_id("ev-cart", "abandoned_cart", "sms")


# --- the abandoned cart ------------------------------------------------------------------------------

def test_an_undelivered_cart_sms_is_followed_by_the_email():
    rows = run(*ZOFIA, receipt("undelivered", after="2m"), cart())
    assert messages(rows) == [(T0 + HOUR, "sms", "sms", None, "sent"),
                              (T0 + HOUR + 2 * MINUTE, "email", "email", None, "sent")]
    [got] = [r for r in rows if r.kind == "receipt"]
    assert (got.at, got.decision, got.message_id, got.step) == (T0 + HOUR + 2 * MINUTE, "undelivered", CART_SMS, "sms")
    assert [(r.decision, r.journey) for r in rows if r.kind == "journey"] == [
        ("entered", "abandoned_cart"), ("completed", "abandoned_cart")]


def test_a_delivered_cart_sms_sends_no_email():
    rows = run(*ZOFIA, receipt("delivered", after="1m"), cart())
    assert messages(rows) == [(T0 + HOUR, "sms", "sms", None, "sent")]
    assert rows[-1].decision == "completed" and rows[-1].at == T0 + HOUR + MINUTE + 20 * HOUR  # after the linger


def test_without_a_receipt_the_email_follows_after_four_hours():
    """Assumed accepted, never delivered: the journey's settle wait runs out."""
    rows = run(*ZOFIA, cart())
    assert messages(rows) == [(T0 + HOUR, "sms", "sms", None, "sent"),
                              (T0 + 5 * HOUR, "email", "email", None, "sent")]


def test_a_receipt_at_a_fixed_time_names_the_step_message():
    rows = run(*ZOFIA, cart(), receipt("failed", at=iso(T0 + HOUR + 5 * MINUTE)))
    assert [(r.kind, r.decision, r.at) for r in rows if r.kind != "journey"] == [
        ("message", "sent", T0 + HOUR), ("receipt", "failed", T0 + HOUR + 5 * MINUTE),
        ("message", "sent", T0 + HOUR + 5 * MINUTE)]


def test_a_receipt_for_a_message_not_sent_yet_is_reported_and_ignored():
    rows = run(*ZOFIA, cart(), receipt("undelivered", at=iso(T0 + 10 * MINUTE)))
    [ignored] = [r for r in rows if r.kind == "receipt"]
    assert ignored.decision == "ignored" and "line 5" in (ignored.note or "")
    assert messages(rows)[1] == (T0 + 5 * HOUR, "email", "email", None, "sent")  # the journey never heard of it


def test_an_order_within_the_hour_ends_the_journey_before_its_sms():
    rows = run(*ZOFIA, cart(), order(at=T0 + 30 * MINUTE), names=("abandoned_cart", "order_confirmation"))
    assert [(r.at, r.decision, r.journey, r.reason) for r in rows if r.kind == "journey"] == [
        (T0, "entered", "abandoned_cart", None),
        (T0 + 30 * MINUTE, "exited", "abandoned_cart", "order_placed"),
        (T0 + 30 * MINUTE, "entered", "order_confirmation", None),
        (T0 + 30 * MINUTE, "completed", "order_confirmation", None)]
    assert messages(rows) == [(T0 + 30 * MINUTE, "confirm", "email", None, "sent")]  # e-mail: her preference


def test_no_marketing_consent_suppresses_both_reminders_with_the_reason():
    rows = run(profile(), cart())
    assert messages(rows) == [(T0 + HOUR, "sms", None, "no_consent", "suppressed"),
                              (T0 + HOUR, "email", None, "no_consent", "suppressed")]


def test_a_stop_reply_opts_out_at_once():
    stop = {"type": "reply", "at": iso(T0 - 30 * MINUTE), "customer_id": "c1", "channel": "sms", "text": "stop"}
    rows = run(*ZOFIA, stop, cart())
    assert [(r.decision, r.purpose, r.reason) for r in rows if r.kind == "consent"] == [
        ("opted_out", "transactional", "keyword"), ("opted_out", "marketing", "keyword")]
    assert messages(rows) == [(T0 + HOUR, "sms", None, "opted_out", "suppressed"),
                              (T0 + HOUR, "email", "email", None, "sent")]


# --- quiet hours and caps ----------------------------------------------------------------------------

def test_a_cart_reminder_due_in_quiet_hours_is_scheduled_and_sent_when_they_end():
    night = dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.timezone.utc)  # 21:30 in New York
    ana = profile("ana", at=night, locale="en", time_zone="America/New_York", phone="+12125550123",
                  channel_preferences=["sms"])
    rows = run(ana, opt_in("ana"), receipt("delivered", customer="ana", after="1m"), cart("ana", at=night))
    morning = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.timezone.utc)  # 08:00 in New York
    [scheduled, sent] = [r for r in rows if r.kind == "message"]
    assert (scheduled.at, scheduled.decision, scheduled.reason, scheduled.scheduled_for, scheduled.channels) == (
        night + HOUR, "scheduled", "quiet_hours", morning, ("sms",))
    assert (sent.at, sent.decision, sent.channel, sent.message_id) == (morning, "sent", "sms", scheduled.message_id)
    assert scheduled.zone == "America/New_York"


def test_a_capped_reminder_is_deferred_until_the_cap_frees():
    stores = StoreDirectory(stores={"store-1": {"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 24}],
                                                                   "on_capped": "defer"}}})
    rows = run(*ZOFIA, receipt("undelivered", after="2m"), cart(), stores=stores)
    assert messages(rows) == [
        (T0 + HOUR, "sms", "sms", None, "sent"),
        (T0 + HOUR + 2 * MINUTE, "email", None, "frequency_cap", "scheduled"),
        (T0 + HOUR + DAY, "email", "email", None, "sent"),
    ]
    [scheduled] = [r for r in rows if r.decision == "scheduled"]
    assert scheduled.scheduled_for == T0 + HOUR + DAY


def test_a_store_that_drops_capped_messages_suppresses_them():
    stores = StoreDirectory(stores={"store-1": {"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 24}],
                                                                   "on_capped": "drop"}}})
    rows = run(*ZOFIA, receipt("undelivered", after="2m"), cart(), stores=stores)
    assert messages(rows)[1] == (T0 + HOUR + 2 * MINUTE, "email", None, "frequency_cap", "suppressed")


# --- double opt-in -----------------------------------------------------------------------------------

def test_double_opt_in_keeps_marketing_pending_until_the_yes():
    stores = StoreDirectory(stores={"store-1": {"double_opt_in": True}})
    yes = {"type": "reply", "at": iso(T0 + 3 * HOUR), "customer_id": "c1", "channel": "sms", "text": "TAK"}
    rows = run(profile(), opt_in(), cart(), yes, cart(at=T0 + 2 * DAY, event_id="ev-cart-2"), stores=stores)
    consents = [(r.at, r.decision, r.reason) for r in rows if r.kind == "consent"]
    assert consents == [(T0 - HOUR, "pending", "checkout"), (T0 + 3 * HOUR, "opted_in", "double_opt_in")]
    assert messages(rows)[:3] == [
        (T0 - HOUR, "optin_confirmation", "sms", None, "sent"),  # the one request for the YES
        (T0 + HOUR, "sms", None, "pending_confirmation", "suppressed"),
        (T0 + HOUR, "email", None, "no_consent", "suppressed"),
    ]
    assert (T0 + 2 * DAY + HOUR, "sms", "sms", None, "sent") in messages(rows)  # confirmed: the next cart's SMS goes


# --- fallback, coupons -------------------------------------------------------------------------------

def test_an_undelivered_transactional_sms_falls_back_to_the_next_channel():
    rows = run(profile(whatsapp="+48601234567", channel_preferences=["sms", "whatsapp", "email"]),
               receipt("undelivered", journey="shipping_update", step="notify", channel="sms", after="30s"),
               order(kind="order_shipped", event_id="ev-ship"), names=("shipping_update",))
    sends = [(r.at, r.channel, r.note) for r in rows if r.decision == "sent"]
    assert sends == [(T0, "sms", None), (T0 + dt.timedelta(seconds=30), "whatsapp", "fallback after sms")]
    assert {r.message_id for r in rows if r.kind == "message"} == {message_id("ev-ship", "shipping_update", "notify")}


def test_a_coupon_step_reports_its_code():
    inactive = {"type": "event", "at": iso(T0), "event_id": "ev-idle", "event_type": "customer_inactive",
                "customer_id": "c1"}
    [sent] = [r for r in run(*ZOFIA, inactive, names=("reactivation",)) if r.kind == "message"]
    assert sent.decision == "sent" and sent.coupon_code and sent.coupon_code.startswith("SB")
    assert sent.coupon_code in (sent.body or "")


def basket(customer: str, order_id: str, *skus: str, kind: str = "order_placed", at: dt.datetime = T0) -> dict:
    names = {"SNK-42": "Trail sneakers", "SOCK-1": "Merino running socks", "CAP-7": "Running cap"}
    items = [{"sku": s, "name": names[s], "quantity": 1, "unit_price_minor": 100} for s in skus]
    return {"type": "event", "at": iso(at), "event_id": f"ev-{kind}-{order_id}", "event_type": kind,
            "customer_id": customer, "store_id": "store-1",
            "order": {"order_id": order_id, "total_minor": 4900, "currency": "PLN", "items": items}}


def test_a_cross_sell_recommends_what_the_files_other_customers_bought_together():
    stores = StoreDirectory({"product_url": "https://shop.example/p/{sku}", "quiet_hours": {"enabled": False}})
    others = [basket(f"o{n}", f"A{n}", "SNK-42", "SOCK-1") for n in range(2)] + [basket("o9", "B", "SNK-42", "CAP-7")]
    shipped = basket("c1", "1001", "SNK-42", kind="order_shipped", at=T0 + HOUR)
    rows = run(*ZOFIA, *others, shipped, names=("cross_sell",), stores=stores)
    [sent] = [r for r in rows if r.kind == "message"]
    assert (sent.at, sent.decision, sent.step, sent.channel) == (T0 + HOUR + 3 * DAY, "sent", "recommend", "sms")
    assert "Merino running socks" in sent.body and "https://shop.example/p/SOCK-1" in sent.body


def test_a_cross_sell_with_nothing_to_recommend_is_reported_suppressed():
    shipped = basket("c1", "1001", "SNK-42", kind="order_shipped")
    [row] = [r for r in run(*ZOFIA, shipped, names=("cross_sell",)) if r.kind == "message"]
    assert (row.at, row.decision, row.reason, row.step) == (T0 + 3 * DAY, "suppressed", "no_recommendation",
                                                            "recommend")


# --- the horizon, determinism, the sample ------------------------------------------------------------

def test_the_replay_stops_at_until_and_reports_what_is_still_waiting():
    journeys = {"abandoned_cart": JOURNEYS["abandoned_cart"]}
    inputs = parse_lines([json.dumps(r) for r in (*ZOFIA, cart())], journeys)
    report = simulate(inputs, journeys, until=dt.timedelta(minutes=30))
    assert report.rows[-1].decision == "entered" and report.until == T0 + 30 * MINUTE
    assert report.pending == {"journey waits": 1}
    assert simulate(inputs, journeys, until=T0 + 2 * HOUR).pending == {"journey waits": 1}  # the settle wait


def test_two_runs_print_the_same():
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    first = [row.as_json() for row in simulate(parse_lines(lines, JOURNEYS), JOURNEYS).rows]
    second = [row.as_json() for row in simulate(parse_lines(lines, JOURNEYS), JOURNEYS).rows]
    assert first == second and first


def test_the_sample_shows_each_branch():
    report = simulate(parse_lines(SAMPLE.read_text(encoding="utf-8").splitlines(), JOURNEYS), JOURNEYS)
    by = {(r.customer_id, r.kind, r.step or r.journey, r.decision) for r in report.rows}
    assert {("zofia", "receipt", "sms", "undelivered"), ("zofia", "message", "email", "sent"),
            ("daan", "journey", "abandoned_cart", "exited"), ("ana", "message", "sms", "scheduled"),
            ("ana", "message", "sms", "sent"), ("sara", "message", "sms", "suppressed")} <= by
    assert ("ana", "message", "email", "sent") not in by and ("daan", "message", "sms", "sent") not in by
    assert report.pending == {}
    assert ("scheduled", "quiet_hours", 1) in report.summary()


# --- input validation --------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("{not json", "line 2: not JSON"),
    ('["a list"]', "line 2: a record is a JSON object"),
    ('{"type": "order"}', "line 2: type 'order' is not one of"),
    ('{"type": "event", "event_type": "cart_abandoned", "customer_id": "c1"}', "line 2: event: (record)"),
    ('{"type": "event", "event_type": "teleported", "customer_id": "c1"}', "line 2: event: event_type"),
    ('{"type": "consent", "customer_id": "c1", "channel": "fax", "purpose": "marketing", "state": "opted_in"}',
     "line 2: consent: channel"),
    ('{"type": "profile", "at": "yesterday", "customer_id": "c2", "store_id": "s"}', "line 2: at: not an ISO 8601"),
    ('{"type": "receipt", "customer_id": "c1", "journey": "abandoned_cart", "step": "nope", "status": "delivered"}',
     "line 2: receipt: abandoned_cart has no send step 'nope'"),
    ('{"type": "receipt", "customer_id": "c1", "message_id": "m", "status": "sent"}', "line 2: receipt: status"),
    ('{"type": "receipt", "customer_id": "c1", "message_id": "m", "status": "read", "after": "1m", "at": "x"}',
     "line 2: receipt: give at or after"),
])
def test_a_bad_line_is_named_by_its_number(line: str, expected: str):
    with pytest.raises(SimulationInputError) as caught:
        parse_lines([json.dumps(profile()), line], JOURNEYS)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


def test_every_bad_line_is_reported_and_the_first_needs_a_time():
    with pytest.raises(SimulationInputError) as caught:
        parse_lines(['{"type": "consent", "customer_id": "c1"}', "# a comment", "", "nope"])
    assert [p.split(":")[0] for p in caught.value.problems] == ["line 1", "line 4"]
    assert "no \"at\"" in caught.value.problems[0]


def test_records_take_the_previous_time_ids_and_the_profile_store():
    inputs = parse_lines([json.dumps(profile(store="shop-9")), json.dumps(opt_in()),
                          json.dumps(cart())])
    assert [i.at for i in inputs] == [T0 - HOUR, T0 - HOUR, T0]
    change = inputs[1].record
    assert (change.store_id, change.occurred_at, change.source) == ("shop-9", T0 - HOUR, "checkout")
    again = parse_lines([json.dumps(profile(store="shop-9")), json.dumps(opt_in())])
    assert change.change_id == again[1].record.change_id  # derived from the line: the same on every run
