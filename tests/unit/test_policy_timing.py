"""Specs for the timing part of streams.policy.decide, and record_sent.

Marketing (and transactional where the store says so) waits for the customer's local sending hours;
marketing also waits, or is dropped, when a frequency cap is reached; a paused customer gets no
marketing; an offer that would expire before it may go is suppressed, never sent late. Consent is
checked first: an opted-out customer is reported as such, never scheduled.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.customers import ConsentState
from schemas.messages import OutcomeReason
from schemas.types import Channel, Purpose
from streams import caps, quiet_hours
from streams.consent import fold
from streams.policy import Defer, Send, Suppress, decide, record_sent
from streams.stores import StoreConfig
from tests import factories as f

SMS, EMAIL = Channel.SMS, Channel.EMAIL
MARKETING, TRANSACTIONAL = Purpose.MARKETING, Purpose.TRANSACTIONAL
UTC = dt.UTC
WARSAW, NEW_YORK = ZoneInfo("Europe/Warsaw"), ZoneInfo("America/New_York")
JERUSALEM, PARIS, TOKYO = ZoneInfo("Asia/Jerusalem"), ZoneInfo("Europe/Paris"), ZoneInfo("Asia/Tokyo")
MINUTE, HOUR, DAY, US = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(microseconds=1)
MS = dt.timedelta(milliseconds=1)  # a Timestamp field keeps milliseconds
CUSTOMER = "cust-1"
NO_QUIET_HOURS = {"quiet_hours": {"enabled": False}}


def at(zone: ZoneInfo, *args) -> dt.datetime:
    """A local wall time, as the UTC instant decide is given."""
    return dt.datetime(*args, tzinfo=zone).astimezone(UTC)


def warsaw(hour: int, minute: int = 0, day: int = 24) -> dt.datetime:  # 2026-11-24 is a Tuesday
    return at(WARSAW, 2026, 11, day, hour, minute)


def store(settings: dict | None = None) -> StoreConfig:
    return StoreConfig.model_validate(settings or {})


def marketing(**overrides):
    values = {"template": "cart_reminder", "purpose": MARKETING, "channels": [SMS],
              "variables": {"cart_url": "https://shop.example/cart/1"}}
    return f.intent(CUSTOMER, **{**values, **overrides})


def transactional(**overrides):
    values = {"channels": [SMS], "variables": {"order_id": "1001", "tracking_url": "https://track.example/1001",
                                               "carrier": "InPost"}}
    return f.intent(CUSTOMER, **{**values, **overrides})


def profile(**overrides):
    return f.profile(CUSTOMER, **{"channel_preferences": [SMS], **overrides})


def consents(state: ConsentState = ConsentState.OPTED_IN, channels=(SMS, EMAIL)) -> dict:
    folded = None
    for channel in channels:
        for purpose in Purpose:
            folded = fold(folded, f.consent(CUSTOMER, channel, state, purpose))
    return folded


OPTED_IN = consents()


def history(*times: dt.datetime, the_store: StoreConfig, message_class: str | None = None) -> dict:
    """Cap state after a marketing send of that class at each time."""
    sent = None
    for when in times:
        sent = record_sent(sent, marketing(message_class=message_class), the_store, when)
    return sent or {}


def deferred(decision, reason: OutcomeReason) -> dt.datetime:
    assert isinstance(decision, Defer), decision
    assert decision.reason == reason, decision
    assert decision.until.isoformat() in decision.detail
    return decision.until


def suppressed(decision) -> OutcomeReason:
    assert isinstance(decision, Suppress), decision
    return decision.reason


def is_sent(decision) -> bool:
    assert isinstance(decision, (Send, Defer, Suppress))
    return isinstance(decision, Send)


# --- quiet hours ---------------------------------------------------------------------------------


def test_marketing_inside_sending_hours_is_sent():
    assert is_sent(decide(marketing(), profile(), OPTED_IN, warsaw(12), store=store()))


def test_marketing_at_night_waits_until_8_the_next_morning_in_the_customers_zone():
    until = deferred(decide(marketing(), profile(), OPTED_IN, warsaw(22, 30), store=store()),
                     OutcomeReason.QUIET_HOURS)
    assert until == warsaw(8, day=25) and until.utcoffset() == dt.timedelta(0)


def test_marketing_before_opening_waits_until_the_same_mornings_opening():
    now = warsaw(3)
    until = deferred(decide(marketing(), profile(), OPTED_IN, now, store=store()), OutcomeReason.QUIET_HOURS)
    assert until == warsaw(8) == quiet_hours.next_allowed(now, WARSAW, quiet_hours.rule_for("PL"))


def test_the_opening_minute_itself_is_sent_and_the_closing_one_is_not():
    assert is_sent(decide(marketing(), profile(), OPTED_IN, warsaw(8), store=store()))
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(21), store=store()),
                    OutcomeReason.QUIET_HOURS) == warsaw(8, day=25)


# 2026-11-24 04:00 UTC: 05:00 in Warsaw, 23:00 (the 23rd) in New York, 06:00 in Jerusalem, 13:00 in Tokyo.
FOUR_UTC = dt.datetime(2026, 11, 24, 4, tzinfo=UTC)


@pytest.mark.parametrize(("profile_zone", "phone", "store_zone", "expected"), [
    ("America/New_York", "+48601234567", "Asia/Tokyo", NEW_YORK),  # the profile's zone first
    (None, "+48601234567", "Asia/Tokyo", WARSAW),  # else the phone's
    ("Mars/Olympus_Mons", "+48601234567", "Asia/Tokyo", WARSAW),  # an unknown profile zone is ignored
    (None, "+18005551234", "Asia/Jerusalem", JERUSALEM),  # a toll-free number has many zones: the store's
    (None, "+18005551234", "Asia/Tokyo", TOKYO),
])
def test_quiet_hours_are_those_of_the_customers_zone(profile_zone, phone, store_zone, expected):
    customer = profile(time_zone=profile_zone, phone=phone, whatsapp=None)
    decision = decide(marketing(), customer, OPTED_IN, FOUR_UTC, store=store({"time_zone": store_zone}))
    until = quiet_hours.next_allowed(FOUR_UTC, expected, quiet_hours.DEFAULT_RULE)
    if until == FOUR_UTC:
        assert is_sent(decision)
    else:
        assert deferred(decision, OutcomeReason.QUIET_HOURS) == until


def test_without_a_phone_the_stores_zone_is_used():
    customer = profile(time_zone=None, phone=None, whatsapp=None, channel_preferences=[EMAIL])
    email = marketing(channels=[EMAIL])
    assert is_sent(decide(email, customer, OPTED_IN, FOUR_UTC, store=store({"time_zone": "Asia/Tokyo"})))
    decision = decide(email, customer, OPTED_IN, FOUR_UTC, store=store({"time_zone": "Europe/Warsaw"}))
    assert deferred(decision, OutcomeReason.QUIET_HOURS) == warsaw(8)


def test_an_israeli_number_waits_for_the_end_of_shabbat_unless_the_store_opts_out_of_it():
    # libphonenumber gives Israeli mobile numbers no zone (Etc/Unknown): the store's zone is used.
    customer = profile(time_zone=None, phone="+972501234567", whatsapp=None)
    friday_evening = at(JERUSALEM, 2026, 11, 27, 17)
    decision = decide(marketing(), customer, OPTED_IN, friday_evening, store=store({"time_zone": "Asia/Jerusalem"}))
    assert deferred(decision, OutcomeReason.QUIET_HOURS) == at(JERUSALEM, 2026, 11, 28, 20)
    landline = profile(time_zone=None, phone="+97221234567", whatsapp=None)  # Jerusalem's own zone
    decision = decide(marketing(), landline, OPTED_IN, friday_evening, store=store())
    assert deferred(decision, OutcomeReason.QUIET_HOURS) == at(JERUSALEM, 2026, 11, 28, 20)
    no_shabbat = store({"time_zone": "Asia/Jerusalem", "quiet_hours": {"observe_shabbat": False}})
    assert is_sent(decide(marketing(), customer, OPTED_IN, friday_evening, store=no_shabbat))


def test_a_french_number_gets_no_marketing_on_sunday():
    customer = profile(time_zone=None, phone="+33612345678", whatsapp=None)
    sunday_noon = at(PARIS, 2026, 11, 22, 12)
    decision = decide(marketing(), customer, OPTED_IN, sunday_noon, store=store())
    assert deferred(decision, OutcomeReason.QUIET_HOURS) == at(PARIS, 2026, 11, 23, 8)


def test_the_stores_country_gives_the_rule_when_the_number_has_none():
    customer = profile(time_zone="Europe/Paris", phone=None, whatsapp=None, channel_preferences=[EMAIL])
    sunday_noon = at(PARIS, 2026, 11, 22, 12)
    email = marketing(channels=[EMAIL])
    assert is_sent(decide(email, customer, OPTED_IN, sunday_noon, store=store()))
    decision = decide(email, customer, OPTED_IN, sunday_noon, store=store({"country": "FR"}))
    assert deferred(decision, OutcomeReason.QUIET_HOURS) == at(PARIS, 2026, 11, 23, 8)


def test_a_store_of_its_own_hours_replaces_the_daily_window():
    late_opening = store({"quiet_hours": {"start": "10:00", "end": "18:00"}})
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(9), store=late_opening),
                    OutcomeReason.QUIET_HOURS) == warsaw(10)
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(18, 30), store=late_opening),
                    OutcomeReason.QUIET_HOURS) == warsaw(10, day=25)
    assert is_sent(decide(marketing(), profile(), OPTED_IN, warsaw(17, 59), store=late_opening))


def test_disabled_quiet_hours_let_marketing_go_at_night():
    assert is_sent(decide(marketing(), profile(), OPTED_IN, warsaw(3), store=store(NO_QUIET_HOURS)))


def test_transactional_messages_are_never_deferred_by_default():
    assert is_sent(decide(transactional(), profile(), None, warsaw(3), store=store()))
    assert is_sent(decide(transactional(), profile(), None, warsaw(23, 59), store=store()))


def test_transactional_messages_wait_too_when_the_store_says_so():
    strict = store({"quiet_hours": {"transactional": True}})
    assert deferred(decide(transactional(), profile(), None, warsaw(3), store=strict),
                    OutcomeReason.QUIET_HOURS) == warsaw(8)
    assert is_sent(decide(transactional(), profile(), None, warsaw(12), store=strict))
    both_off = store({"quiet_hours": {"transactional": True, "enabled": False}})
    assert is_sent(decide(transactional(), profile(), None, warsaw(3), store=both_off))


def test_an_offer_expiring_before_the_window_opens_is_suppressed_not_sent_late():
    now, opening = warsaw(22), warsaw(8, day=25)
    for expires_at in (opening - MS, opening, now + MS):  # at the opening itself is too late
        decision = decide(marketing(expires_at=expires_at), profile(), OPTED_IN, now, store=store())
        assert suppressed(decision) == OutcomeReason.QUIET_HOURS_EXPIRED
        assert opening.isoformat() in decision.detail
    assert deferred(decide(marketing(expires_at=opening + MS), profile(), OPTED_IN, now, store=store()),
                    OutcomeReason.QUIET_HOURS) == opening


def test_an_offer_that_can_go_now_is_sent_whatever_its_expiry():
    now = warsaw(12)
    assert is_sent(decide(marketing(expires_at=now + MS), profile(), OPTED_IN, now, store=store()))


# --- frequency caps ------------------------------------------------------------------------------


def capped_store(max_count: int, on_capped: str = "defer", **extra) -> StoreConfig:
    return store({**NO_QUIET_HOURS, "frequency_caps": {"rules": [{"max_count": max_count, "window_hours": 24}],
                                                       "on_capped": on_capped, **extra}})


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 6), gaps=st.lists(st.integers(1, 120), min_size=6, max_size=6))
def test_after_n_sends_in_the_window_the_next_marketing_waits_until_the_first_leaves_it(n, gaps):
    the_store = capped_store(n)
    t0 = warsaw(9)
    times = [t0 + sum(gaps[:i], 0) * MINUTE for i in range(n)]
    sent = history(*times, the_store=the_store)
    now = times[-1] + MINUTE
    # One fewer send leaves room for this one.
    assert is_sent(decide(marketing(), profile(), OPTED_IN, now, store=the_store,
                          sent=history(*times[:-1], the_store=the_store)))
    until = deferred(decide(marketing(), profile(), OPTED_IN, now, store=the_store, sent=sent),
                     OutcomeReason.FREQUENCY_CAP)
    assert until == t0 + DAY
    assert is_sent(decide(marketing(), profile(), OPTED_IN, until, store=the_store, sent=sent))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_store_that_drops_capped_messages_suppresses_the_one_over_the_cap(n):
    the_store = capped_store(n, on_capped="drop")
    sent = history(*(warsaw(9) + i * HOUR for i in range(n)), the_store=the_store)
    decision = decide(marketing(), profile(), OPTED_IN, warsaw(9) + n * HOUR, store=the_store, sent=sent)
    assert suppressed(decision) == OutcomeReason.FREQUENCY_CAP


def test_the_default_caps_are_two_a_day_and_five_a_week():
    the_store = store(NO_QUIET_HOURS)
    two = history(warsaw(9), warsaw(10), the_store=the_store)
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(11), store=the_store, sent=two),
                    OutcomeReason.FREQUENCY_CAP) == warsaw(9, day=25)
    five = history(*(warsaw(12, day=d) for d in range(20, 25)), the_store=the_store)
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(13, day=25), store=the_store, sent=five),
                    OutcomeReason.FREQUENCY_CAP) == warsaw(12, day=27)


def test_disabled_caps_never_cap_and_record_nothing():
    the_store = store({**NO_QUIET_HOURS, "frequency_caps": {"enabled": False}})
    sent = history(*(warsaw(9) + i * MINUTE for i in range(20)), the_store=the_store)
    assert not any(state.get("sent") for state in sent.values())
    assert is_sent(decide(marketing(), profile(), OPTED_IN, warsaw(10), store=the_store, sent=sent))


NEWSLETTER_CAPS = {"rules": [{"max_count": 10, "window_hours": 24}],
                   "classes": {"newsletter": {"rules": [{"max_count": 1, "window_hours": 168}]}}}


def test_a_class_cap_counts_only_messages_of_that_class():
    the_store = store({**NO_QUIET_HOURS, "frequency_caps": NEWSLETTER_CAPS})
    one_newsletter = history(warsaw(9), the_store=the_store, message_class="newsletter")
    now = warsaw(10)
    until = deferred(decide(marketing(message_class="newsletter"), profile(), OPTED_IN, now, store=the_store,
                            sent=one_newsletter), OutcomeReason.FREQUENCY_CAP)
    assert until == warsaw(9) + 7 * DAY
    for other in (None, "promo"):
        assert is_sent(decide(marketing(message_class=other), profile(), OPTED_IN, now, store=the_store,
                              sent=one_newsletter))
    promos = history(*(warsaw(9) + i * MINUTE for i in range(5)), the_store=the_store, message_class="promo")
    assert is_sent(decide(marketing(message_class="newsletter"), profile(), OPTED_IN, now, store=the_store,
                          sent=promos))


def test_the_stores_own_cap_counts_every_class_together():
    caps_ = {**NEWSLETTER_CAPS, "rules": [{"max_count": 2, "window_hours": 24}]}
    the_store = store({**NO_QUIET_HOURS, "frequency_caps": caps_})
    sent = record_sent(None, marketing(message_class="newsletter"), the_store, warsaw(9))
    sent = record_sent(sent, marketing(message_class="promo"), the_store, warsaw(9, 30))
    for message_class in (None, "promo", "newsletter"):
        decision = decide(marketing(message_class=message_class), profile(), OPTED_IN, warsaw(10),
                          store=the_store, sent=sent)
        expected = warsaw(9) + (7 * DAY if message_class == "newsletter" else DAY)
        assert deferred(decision, OutcomeReason.FREQUENCY_CAP) == expected


def test_a_class_may_drop_while_the_store_defers_and_inherits_the_stores_choice_otherwise():
    dropping = {"rules": [{"max_count": 10, "window_hours": 24}],
                "classes": {"newsletter": {"rules": [{"max_count": 1, "window_hours": 168}], "on_capped": "drop"}}}
    the_store = store({**NO_QUIET_HOURS, "frequency_caps": dropping})
    sent = history(warsaw(9), the_store=the_store, message_class="newsletter")
    assert suppressed(decide(marketing(message_class="newsletter"), profile(), OPTED_IN, warsaw(10),
                             store=the_store, sent=sent)) == OutcomeReason.FREQUENCY_CAP
    inheriting = store({**NO_QUIET_HOURS, "frequency_caps": {**NEWSLETTER_CAPS, "on_capped": "drop"}})
    sent = history(warsaw(9), the_store=inheriting, message_class="newsletter")
    assert suppressed(decide(marketing(message_class="newsletter"), profile(), OPTED_IN, warsaw(10),
                             store=inheriting, sent=sent)) == OutcomeReason.FREQUENCY_CAP


def test_record_sent_records_a_marketing_send_in_the_stores_slot_and_its_class_slot():
    the_store = store({"frequency_caps": NEWSLETTER_CAPS})
    assert set(record_sent(None, marketing(), the_store, warsaw(9))) == {"all"}
    assert set(record_sent(None, marketing(message_class="promo"), the_store, warsaw(9))) == {"all"}
    assert set(record_sent(None, marketing(message_class="newsletter"), the_store, warsaw(9))) == {
        "all", "class:newsletter"}


def test_record_sent_does_not_modify_its_input():
    the_store = store()
    before = history(warsaw(9), the_store=the_store)
    snapshot = {slot: dict(state, sent=list(state["sent"])) for slot, state in before.items()}
    record_sent(before, marketing(), the_store, warsaw(10))
    assert before == snapshot


def test_transactional_messages_are_never_capped_nor_recorded():
    the_store = capped_store(1, on_capped="drop")
    sent = history(warsaw(9), the_store=the_store)
    assert suppressed(decide(marketing(), profile(), OPTED_IN, warsaw(10), store=the_store, sent=sent)) == (
        OutcomeReason.FREQUENCY_CAP)
    assert is_sent(decide(transactional(), profile(), None, warsaw(10), store=the_store, sent=sent))
    assert record_sent(sent, transactional(), the_store, warsaw(10)) == sent
    assert record_sent(None, transactional(), the_store, warsaw(10)) == {}


def test_a_capped_offer_that_expires_before_the_cap_frees_up_is_suppressed():
    the_store = capped_store(1)
    sent = history(warsaw(9), the_store=the_store)
    for expires_at in (warsaw(9, day=25) - MS, warsaw(9, day=25)):
        decision = decide(marketing(expires_at=expires_at), profile(), OPTED_IN, warsaw(10), store=the_store,
                          sent=sent)
        assert suppressed(decision) == OutcomeReason.FREQUENCY_CAP
    decision = decide(marketing(expires_at=warsaw(9, day=25) + MS), profile(), OPTED_IN, warsaw(10),
                      store=the_store, sent=sent)
    assert deferred(decision, OutcomeReason.FREQUENCY_CAP) == warsaw(9, day=25)


def test_a_cap_that_frees_up_at_night_waits_for_the_morning_too():
    the_store = store({"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 24}]}})
    sent = history(warsaw(20, 30), the_store=the_store)  # frees up at 20:30 tomorrow: still open
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(20, 45), store=the_store, sent=sent),
                    OutcomeReason.FREQUENCY_CAP) == warsaw(20, 30, day=25)
    the_store = store({"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 25}]}})
    sent = history(warsaw(20, 30), the_store=the_store)  # frees up at 21:30 tomorrow: closed by then
    assert deferred(decide(marketing(), profile(), OPTED_IN, warsaw(20, 45), store=the_store, sent=sent),
                    OutcomeReason.FREQUENCY_CAP) == warsaw(8, day=26)


# --- combined: the defer time is allowed by both ---------------------------------------------------

PHONES = ["+48601234567", "+972501234567", "+33612345678", "+12125551234", "+18005551234"]
ZONES = [None, "Europe/Warsaw", "America/New_York", "Asia/Jerusalem", "Pacific/Chatham", "America/Santiago"]
CLASSES = [None, "newsletter", "promo"]


@st.composite
def stores(draw) -> StoreConfig:
    rule = st.fixed_dictionaries({"max_count": st.integers(1, 4),
                                  "window_hours": st.sampled_from([0.5, 1, 12, 24, 25, 72, 168])})
    frequency_caps = {"rules": draw(st.lists(rule, max_size=3)), "on_capped": "defer"}
    if draw(st.booleans()):
        frequency_caps["classes"] = {"newsletter": {"rules": draw(st.lists(rule, min_size=1, max_size=2))}}
    quiet = {"observe_shabbat": draw(st.booleans())}
    if draw(st.booleans()):
        start, end = draw(st.integers(0, 1439)), draw(st.integers(0, 1439))
        quiet |= {"start": f"{start // 60:02d}:{start % 60:02d}", "end": f"{end // 60:02d}:{end % 60:02d}"}
    return store({"time_zone": draw(st.sampled_from(ZONES[1:])), "quiet_hours": quiet,
                  "frequency_caps": frequency_caps})


INSTANTS = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 1), timezones=st.just(UTC))


@st.composite
def histories(draw, the_store: StoreConfig, now: dt.datetime) -> dict:
    ago = draw(st.lists(st.tuples(st.timedeltas(dt.timedelta(0), 8 * DAY), st.sampled_from(CLASSES)),
                        max_size=12))
    sent = None
    for delta, message_class in sorted(ago, key=lambda item: item[0], reverse=True):  # oldest first
        sent = record_sent(sent, marketing(message_class=message_class), the_store, now - delta)
    return sent


def oracle_may_send(the_store: StoreConfig, customer, message_class, sent, when) -> bool:
    """Every cap slot allows one more and the quiet-hours rule allows ``when``."""
    for slot, policy in the_store.frequency_caps.policies(message_class).items():
        if isinstance(caps.check((sent or {}).get(slot), when, policy), caps.Capped):
            return False
    rules = the_store.quiet_hours
    zone = quiet_hours.resolve_zone(customer.time_zone, customer.phone, the_store.time_zone)
    region = {"+48": "PL", "+97": "IL", "+33": "FR", "+12": "US", "+18": "US"}[customer.phone[:3]]
    return quiet_hours.is_allowed(when, zone, rules.rule(region))


@settings(max_examples=250, deadline=None)
@given(data=st.data(), the_store=stores(), now=INSTANTS, message_class=st.sampled_from(CLASSES),
       phone=st.sampled_from(PHONES), zone=st.sampled_from(ZONES))
def test_a_deferred_message_may_go_at_its_time_and_not_a_microsecond_earlier(data, the_store, now, message_class,
                                                                           phone, zone):
    sent = data.draw(histories(the_store, now))
    customer = profile(phone=phone, whatsapp=None, time_zone=zone)
    the_intent = marketing(message_class=message_class)
    decision = decide(the_intent, customer, OPTED_IN, now, store=the_store, sent=sent)
    assert isinstance(decision, (Send, Defer)), decision
    assert isinstance(decision, Send) == oracle_may_send(the_store, customer, message_class, sent, now)
    if isinstance(decision, Defer):
        assert decision.until > now
        capped_now = any(isinstance(caps.check((sent or {}).get(slot), now, policy), caps.Capped)
                         for slot, policy in the_store.frequency_caps.policies(message_class).items())
        assert decision.reason == (OutcomeReason.FREQUENCY_CAP if capped_now else OutcomeReason.QUIET_HOURS)
        again = decide(the_intent, customer, OPTED_IN, decision.until, store=the_store, sent=sent)
        assert isinstance(again, Send), (decision, again)
        assert oracle_may_send(the_store, customer, message_class, sent, decision.until)
        earlier = decide(the_intent, customer, OPTED_IN, decision.until - US, store=the_store, sent=sent)
        assert not isinstance(earlier, Send), (decision, earlier)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), the_store=stores(), now=INSTANTS, message_class=st.sampled_from(CLASSES))
def test_timing_never_touches_transactional_messages(data, the_store, now, message_class):
    sent = data.draw(histories(the_store, now))
    decision = decide(transactional(message_class=message_class), profile(), None, now, store=the_store, sent=sent)
    assert is_sent(decision)
    assert record_sent(sent, transactional(message_class=message_class), the_store, now) == (sent or {})


# --- pause ---------------------------------------------------------------------------------------


def test_a_customer_who_paused_marketing_gets_none_until_the_pause_ends():
    now = warsaw(12)
    paused = profile(marketing_paused_until=now + HOUR)
    decision = decide(marketing(), paused, OPTED_IN, now, store=store())
    assert suppressed(decision) == OutcomeReason.PAUSED
    assert is_sent(decide(marketing(), paused, OPTED_IN, now + HOUR, store=store()))
    assert is_sent(decide(marketing(), profile(marketing_paused_until=now - US), OPTED_IN, now, store=store()))


def test_a_pause_is_suppressed_not_scheduled_even_at_night_or_when_capped():
    the_store = store({"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 24}]}})
    sent = history(warsaw(2), the_store=the_store)
    paused = profile(marketing_paused_until=warsaw(12, day=30))
    assert suppressed(decide(marketing(), paused, OPTED_IN, warsaw(3), store=the_store, sent=sent)) == (
        OutcomeReason.PAUSED)


def test_a_pause_does_not_stop_transactional_messages():
    paused = profile(marketing_paused_until=warsaw(12, day=30))
    assert is_sent(decide(transactional(), paused, None, warsaw(12), store=store()))


# --- consent comes before timing -----------------------------------------------------------------


@pytest.mark.parametrize(("state", "reason"), [
    (ConsentState.OPTED_OUT, OutcomeReason.OPTED_OUT),
    (ConsentState.UNKNOWN, OutcomeReason.NO_CONSENT),
    (ConsentState.PENDING, OutcomeReason.PENDING_CONFIRMATION),
])
def test_consent_problems_are_reported_not_scheduled(state, reason):
    state_map = consents(state)
    at_night = warsaw(3)
    assert suppressed(decide(marketing(), profile(), state_map, at_night, store=store())) == reason
    for on_capped in ("defer", "drop"):
        the_store = capped_store(1, on_capped=on_capped)
        sent = history(warsaw(2), the_store=the_store)
        assert suppressed(decide(marketing(), profile(), state_map, at_night, store=the_store, sent=sent)) == reason


def test_an_opted_out_transactional_recipient_is_not_scheduled_either():
    strict = store({"quiet_hours": {"transactional": True}})
    state_map = consents(ConsentState.OPTED_OUT)
    assert suppressed(decide(transactional(), profile(), state_map, warsaw(3), store=strict)) == (
        OutcomeReason.OPTED_OUT)


def test_an_expired_offer_is_expired_whatever_the_time():
    now = warsaw(3)
    assert suppressed(decide(marketing(expires_at=now), profile(), OPTED_IN, now, store=store())) == (
        OutcomeReason.EXPIRED)


def test_a_broken_template_is_reported_not_scheduled():
    decision = decide(marketing(template="no_such_template"), profile(), OPTED_IN, warsaw(3), store=store())
    assert suppressed(decision) == OutcomeReason.UNKNOWN_TEMPLATE
