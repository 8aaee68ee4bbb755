"""Specs for streams.quiet_hours: marketing waits for the customer's local sending hours, across DST."""

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.quiet_hours import (
    DEFAULT_RULE,
    FR_PUBLIC_HOLIDAYS,
    RULES_BY_REGION,
    SHABBAT,
    Allowed,
    Defer,
    Expired,
    QuietHoursRule,
    WeeklyBlackout,
    decide_window,
    is_allowed,
    next_allowed,
    resolve_zone,
    rule_for,
)

UTC = dt.timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
WARSAW = ZoneInfo("Europe/Warsaw")
PARIS = ZoneInfo("Europe/Paris")
JERUSALEM = ZoneInfo("Asia/Jerusalem")
US, FL, FR, IL = RULES_BY_REGION["US"], RULES_BY_REGION["US-FL"], RULES_BY_REGION["FR"], RULES_BY_REGION["IL"]
MINUTE = dt.timedelta(minutes=1)


def local(zone, *args, fold=0):
    return dt.datetime(*args, tzinfo=zone, fold=fold)


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


# Examples: the regional rules

def test_marketing_at_21_30_in_new_york_waits_until_8_the_next_morning():
    assert next_allowed(local(NEW_YORK, 2026, 1, 14, 21, 30), NEW_YORK, US) == utc(2026, 1, 15, 13)  # 08:00 EST


def test_us_hours_are_8_to_21_with_21_excluded():
    assert next_allowed(local(NEW_YORK, 2026, 1, 14, 7, 59), NEW_YORK, US) == utc(2026, 1, 14, 13)
    for allowed in [(8, 0), (12, 0), (20, 59, 59)]:
        now = local(NEW_YORK, 2026, 1, 14, *allowed)
        assert next_allowed(now, NEW_YORK, US) == now
    assert next_allowed(local(NEW_YORK, 2026, 1, 14, 21), NEW_YORK, US) == utc(2026, 1, 15, 13)


def test_the_result_is_in_utc():
    result = next_allowed(local(NEW_YORK, 2026, 1, 14, 12), NEW_YORK, US)
    assert result.utcoffset() == dt.timedelta(0)


def test_florida_defers_at_20_30_where_the_rest_of_the_us_would_send():
    miami = ZoneInfo("America/New_York")
    now = local(miami, 2026, 6, 10, 20, 30)
    assert next_allowed(now, miami, FL) == local(miami, 2026, 6, 11, 8)
    assert next_allowed(now, miami, US) == now
    assert decide_window(now, None, miami, rule_for("US-FL")) == Defer(local(miami, 2026, 6, 11, 8))


def test_sunday_in_paris_waits_until_monday_8():
    assert next_allowed(local(PARIS, 2026, 1, 11, 12), PARIS, FR) == local(PARIS, 2026, 1, 12, 8)
    assert next_allowed(local(PARIS, 2026, 1, 10, 20, 30), PARIS, FR) == local(PARIS, 2026, 1, 12, 8)
    assert next_allowed(local(PARIS, 2026, 1, 10, 19, 59), PARIS, FR) == local(PARIS, 2026, 1, 10, 19, 59)


def test_bastille_day_is_skipped_in_france():
    assert next_allowed(local(PARIS, 2026, 7, 14, 10), PARIS, FR) == local(PARIS, 2026, 7, 15, 8)
    assert next_allowed(local(PARIS, 2026, 7, 13, 20, 30), PARIS, FR) == local(PARIS, 2026, 7, 15, 8)
    assert next_allowed(local(NEW_YORK, 2026, 7, 14, 10), NEW_YORK, US) == local(NEW_YORK, 2026, 7, 14, 10)


def test_easter_weekend_and_whitsun_in_france():
    assert next_allowed(local(PARIS, 2026, 4, 4, 20, 30), PARIS, FR) == local(PARIS, 2026, 4, 7, 8)
    assert next_allowed(local(PARIS, 2027, 5, 15, 21), PARIS, FR) == local(PARIS, 2027, 5, 18, 8)
    assert next_allowed(local(PARIS, 2027, 5, 6, 9), PARIS, FR) == local(PARIS, 2027, 5, 7, 8)  # Ascension


def easter(year: int) -> dt.date:
    """Anonymous Gregorian algorithm (Meeus/Jones/Butcher), independent of the module's table."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def test_french_public_holidays_are_the_eleven_legal_ones_for_2026_and_2027():
    expected = set()
    for year in (2026, 2027):
        expected |= {dt.date(year, m, d) for m, d in [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11),
                                                      (12, 25)]}
        expected |= {easter(year) + dt.timedelta(days=n) for n in (1, 39, 50)}
    assert FR_PUBLIC_HOLIDAYS == expected
    assert len(FR_PUBLIC_HOLIDAYS) == 22
    assert dt.date(2026, 4, 6) in FR_PUBLIC_HOLIDAYS and dt.date(2027, 3, 29) in FR_PUBLIC_HOLIDAYS


def test_shabbat_in_jerusalem_waits_until_saturday_20():
    friday = local(JERUSALEM, 2026, 1, 16, 16, 30)
    assert next_allowed(friday, JERUSALEM, IL) == local(JERUSALEM, 2026, 1, 17, 20)
    assert next_allowed(local(JERUSALEM, 2026, 1, 17, 11), JERUSALEM, IL) == local(JERUSALEM, 2026, 1, 17, 20)
    assert next_allowed(local(JERUSALEM, 2026, 1, 16, 15, 59), JERUSALEM, IL) == local(JERUSALEM, 2026, 1, 16, 15, 59)
    assert next_allowed(local(JERUSALEM, 2026, 1, 17, 20, 30), JERUSALEM, IL) == local(JERUSALEM, 2026, 1, 17, 20, 30)
    assert next_allowed(local(JERUSALEM, 2026, 1, 17, 21), JERUSALEM, IL) == local(JERUSALEM, 2026, 1, 18, 8)


def test_shabbat_blackout_is_optional():
    secular = rule_for("IL", observe_shabbat=False)
    friday = local(JERUSALEM, 2026, 7, 17, 17)
    assert next_allowed(friday, JERUSALEM, secular) == friday
    assert rule_for("IL").weekly_blackouts == (SHABBAT,)


def test_rule_for_falls_back_from_subdivision_to_country_to_store_default():
    custom = QuietHoursRule(dt.time(9), dt.time(18))
    assert rule_for("US-FL") == FL
    assert rule_for("us_fl") == FL
    assert rule_for("US-CA") == US
    assert rule_for("IT") == DEFAULT_RULE
    assert rule_for(None) == DEFAULT_RULE
    assert rule_for("IT", custom) == custom
    assert rule_for("FR", custom) == FR
    for country in ("PL", "NL", "BY", "GB", "DE"):
        assert rule_for(country) == QuietHoursRule(dt.time(8), dt.time(21))


# Examples: DST transition days

def test_spring_forward_in_new_york_8_edt_is_12_utc():
    assert next_allowed(local(NEW_YORK, 2026, 3, 7, 21, 30), NEW_YORK, US) == utc(2026, 3, 8, 12)
    assert next_allowed(utc(2026, 3, 8, 6, 30), NEW_YORK, US) == utc(2026, 3, 8, 12)  # 01:30 EST


def test_spring_forward_start_time_in_the_gap_maps_to_the_first_valid_instant_after_it():
    rule = QuietHoursRule(dt.time(2, 30), dt.time(21))
    assert next_allowed(local(NEW_YORK, 2026, 3, 8, 1), NEW_YORK, rule) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert next_allowed(local(WARSAW, 2026, 3, 29, 1), WARSAW, rule) == utc(2026, 3, 29, 1)  # 03:00 CEST
    assert next_allowed(local(NEW_YORK, 2026, 3, 9, 1), NEW_YORK, rule) == local(NEW_YORK, 2026, 3, 9, 2, 30)


def test_a_window_that_lies_inside_the_gap_does_not_exist_that_day():
    rule = QuietHoursRule(dt.time(2, 15), dt.time(2, 45))
    assert next_allowed(local(NEW_YORK, 2026, 3, 8, 1), NEW_YORK, rule) == local(NEW_YORK, 2026, 3, 9, 2, 15)


def test_fall_back_in_new_york_8_est_is_13_utc():
    assert next_allowed(local(NEW_YORK, 2026, 10, 31, 21, 30), NEW_YORK, US) == utc(2026, 11, 1, 13)


def test_fall_back_ambiguous_start_time_uses_the_first_occurrence():
    rule = QuietHoursRule(dt.time(1, 30), dt.time(21))
    assert next_allowed(local(NEW_YORK, 2026, 11, 1, 0, 10), NEW_YORK, rule) == utc(2026, 11, 1, 5, 30)  # EDT
    assert next_allowed(local(WARSAW, 2026, 10, 25, 1), WARSAW, rule) == local(WARSAW, 2026, 10, 25, 1, 30)
    rule = QuietHoursRule(dt.time(2, 30), dt.time(21))
    assert next_allowed(local(WARSAW, 2026, 10, 25, 1), WARSAW, rule) == utc(2026, 10, 25, 0, 30)  # CEST


def test_fall_back_second_pass_through_the_start_time_is_allowed_again():
    rule = QuietHoursRule(dt.time(1, 30), dt.time(21))
    # 01:10 EST, after the clocks went back: the second 01:30 is twenty minutes away, not tomorrow.
    assert next_allowed(utc(2026, 11, 1, 6, 10), NEW_YORK, rule) == utc(2026, 11, 1, 6, 30)


def test_fall_back_reopens_a_window_at_the_transition_itself():
    rule = QuietHoursRule(dt.time(0), dt.time(1, 30))
    # 01:45 EDT is closed; at 06:00 UTC the clocks read 01:00 EST, inside the window again.
    assert next_allowed(utc(2026, 11, 1, 5, 45), NEW_YORK, rule) == utc(2026, 11, 1, 6)


def test_warsaw_transition_days_with_the_default_rule():
    assert next_allowed(local(WARSAW, 2026, 3, 28, 21, 30), WARSAW, DEFAULT_RULE) == utc(2026, 3, 29, 6)
    assert next_allowed(local(WARSAW, 2026, 10, 24, 21, 30), WARSAW, DEFAULT_RULE) == utc(2026, 10, 25, 7)


# Examples: other rule shapes and errors

def test_overnight_and_whole_day_windows():
    overnight = QuietHoursRule(dt.time(22), dt.time(6))
    assert next_allowed(local(WARSAW, 2026, 5, 5, 23), WARSAW, overnight) == local(WARSAW, 2026, 5, 5, 23)
    assert next_allowed(local(WARSAW, 2026, 5, 5, 5), WARSAW, overnight) == local(WARSAW, 2026, 5, 5, 5)
    assert next_allowed(local(WARSAW, 2026, 5, 5, 12), WARSAW, overnight) == local(WARSAW, 2026, 5, 5, 22)
    always = QuietHoursRule(dt.time(0), dt.time(0))
    assert next_allowed(local(WARSAW, 2026, 5, 5, 3), WARSAW, always) == local(WARSAW, 2026, 5, 5, 3)


def test_a_blackout_that_wraps_over_the_week_end():
    rule = QuietHoursRule(dt.time(8), dt.time(21), weekly_blackouts=(WeeklyBlackout(5, dt.time(12), 0, dt.time(9)),))
    assert next_allowed(local(WARSAW, 2026, 5, 9, 13), WARSAW, rule) == local(WARSAW, 2026, 5, 11, 9)  # Sat -> Mon
    assert next_allowed(local(WARSAW, 2026, 5, 9, 11), WARSAW, rule) == local(WARSAW, 2026, 5, 9, 11)


def test_a_rule_that_never_allows_anything_raises():
    with pytest.raises(ValueError, match="allows nothing"):
        next_allowed(utc(2026, 1, 1), WARSAW, QuietHoursRule(dt.time(8), dt.time(21), frozenset()))
    blocked = frozenset(dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(30))
    with pytest.raises(ValueError, match="allows nothing"):
        next_allowed(utc(2026, 1, 1), WARSAW, QuietHoursRule(dt.time(8), dt.time(21), blocked_dates=blocked))


def test_bad_rules_and_naive_times_are_refused():
    with pytest.raises(ValueError):
        QuietHoursRule(dt.time(8), dt.time(21), frozenset({7}))
    with pytest.raises(ValueError):
        QuietHoursRule(dt.time(8, tzinfo=UTC), dt.time(21))
    with pytest.raises(ValueError, match="aware"):
        next_allowed(dt.datetime(2026, 1, 1, 12), NEW_YORK, US)


# Time zone resolution

def test_resolve_zone_prefers_the_profile_then_an_unambiguous_phone_then_the_store():
    assert resolve_zone("America/Chicago", "+12125551234", "Europe/Warsaw") == ZoneInfo("America/Chicago")
    assert resolve_zone(None, "+12125551234", "Europe/Warsaw") == NEW_YORK
    assert resolve_zone(None, "+48221234567", "America/New_York") == WARSAW
    assert resolve_zone(None, "+33142685300", "America/New_York") == PARIS
    assert resolve_zone(None, None, "Europe/Paris") == PARIS
    assert resolve_zone("", "", "Europe/Paris") == PARIS


def test_a_phone_with_several_zones_tells_nothing_and_the_store_zone_is_used():
    assert resolve_zone(None, "+18005551234", "America/Chicago") == ZoneInfo("America/Chicago")  # toll-free


def test_bad_profile_zones_and_phone_numbers_are_skipped_but_a_bad_store_zone_raises():
    assert resolve_zone("Mars/Olympus_Mons", "+12125551234", "Europe/Warsaw") == NEW_YORK
    assert resolve_zone("../etc/passwd", None, "Europe/Warsaw") == WARSAW
    assert resolve_zone(None, "not a number", "Europe/Warsaw") == WARSAW
    assert resolve_zone(None, "+15555", "Europe/Warsaw") == WARSAW  # Etc/Unknown
    with pytest.raises(ZoneInfoNotFoundError):
        resolve_zone(None, None, "Nowhere/Special")


# decide_window

def test_decide_window_sends_defers_or_expires():
    noon = local(NEW_YORK, 2026, 1, 14, 12)
    late = local(NEW_YORK, 2026, 1, 14, 22)
    morning = local(NEW_YORK, 2026, 1, 15, 8)
    assert decide_window(noon, None, NEW_YORK, US) == Allowed()
    assert decide_window(noon, noon + MINUTE, NEW_YORK, US) == Allowed()
    assert decide_window(late, None, NEW_YORK, US) == Defer(morning)
    assert decide_window(late, morning + MINUTE, NEW_YORK, US) == Defer(morning)


def test_an_offer_expiring_before_the_next_allowed_time_is_dropped_not_sent_late():
    late = local(NEW_YORK, 2026, 1, 14, 22)
    morning = local(NEW_YORK, 2026, 1, 15, 8)
    assert decide_window(late, morning, NEW_YORK, US) == Expired(morning)  # at expiry counts as too late
    assert decide_window(late, late + dt.timedelta(hours=2), NEW_YORK, US) == Expired(morning)
    noon = local(NEW_YORK, 2026, 1, 14, 12)
    assert decide_window(noon, noon, NEW_YORK, US) == Expired(noon)
    assert decide_window(noon, noon - MINUTE, NEW_YORK, US) == Expired(noon)


# Properties

US_ZONES = [
    "America/New_York", "America/Detroit", "America/Kentucky/Louisville", "America/Kentucky/Monticello",
    "America/Indiana/Indianapolis", "America/Indiana/Vincennes", "America/Indiana/Winamac",
    "America/Indiana/Marengo", "America/Indiana/Petersburg", "America/Indiana/Vevay", "America/Chicago",
    "America/Indiana/Tell_City", "America/Indiana/Knox", "America/Menominee", "America/North_Dakota/Center",
    "America/North_Dakota/New_Salem", "America/North_Dakota/Beulah", "America/Denver", "America/Boise",
    "America/Phoenix", "America/Los_Angeles", "America/Anchorage", "America/Juneau", "America/Sitka",
    "America/Metlakatla", "America/Yakutat", "America/Nome", "America/Adak", "Pacific/Honolulu",
    "America/Puerto_Rico", "Pacific/Guam",
]
INSTANTS_2026 = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2026, 12, 31, 23, 59, 59), timezones=st.just(UTC))


def oracle_allowed(instant, zone, hours, weekdays=None, blocked=frozenset(), shabbat=False):
    """Written from the rules' wording, not from the module."""
    wall = instant.astimezone(zone)
    start, end = hours
    minutes = wall.hour * 60 + wall.minute + wall.second / 60 + wall.microsecond / 6e7
    if start < end:
        in_hours = start <= minutes < end
    else:
        in_hours = start == end or minutes >= start or minutes < end
    in_shabbat = shabbat and ((wall.weekday() == 4 and wall.hour >= 16) or (wall.weekday() == 5 and wall.hour < 20))
    return (in_hours and (weekdays is None or wall.weekday() in weekdays) and wall.date() not in blocked
            and not in_shabbat)


def assert_next_allowed_is_right(now, zone, rule, allowed):
    result = next_allowed(now, zone, rule)
    assert result >= now
    assert allowed(result)
    if allowed(now):
        assert result == now
    minute = now.replace(second=0, microsecond=0) + MINUTE
    while minute < result:  # sending hours begin and end on whole minutes, so minutes are enough
        assert not allowed(minute), f"{minute} is allowed but next_allowed({now}) said {result}"
        minute += MINUTE
    assert is_allowed(result, zone, rule)


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(US_ZONES), now=INSTANTS_2026, florida=st.booleans())
def test_for_any_us_zone_and_any_instant_in_2026_the_next_allowed_time_is_the_first_allowed_one(zone, now, florida):
    zone = ZoneInfo(zone)
    rule, end = (FL, 20 * 60) if florida else (US, 21 * 60)
    assert_next_allowed_is_right(now, zone, rule, lambda i: oracle_allowed(i, zone, (8 * 60, end)))


@settings(max_examples=100, deadline=None)
@given(now=st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 25), timezones=st.just(UTC)))
def test_french_rule_property(now):
    assert_next_allowed_is_right(now, PARIS, FR, lambda i: oracle_allowed(i, PARIS, (480, 1200), set(range(6)),
                                                                          FR_PUBLIC_HOLIDAYS))


@settings(max_examples=100, deadline=None)
@given(now=INSTANTS_2026)
def test_israeli_rule_property(now):
    assert_next_allowed_is_right(now, JERUSALEM, IL, lambda i: oracle_allowed(i, JERUSALEM, (480, 1260),
                                                                              shabbat=True))


DST_ZONES = ["America/New_York", "Europe/Warsaw", "America/Santiago", "Australia/Lord_Howe", "Asia/Jerusalem",
             "America/Havana", "Europe/Dublin", "America/St_Johns", "Pacific/Chatham", "America/Asuncion"]
TRANSITIONS_2026 = [dt.datetime(2026, 3, 8, 7), dt.datetime(2026, 11, 1, 6), dt.datetime(2026, 3, 29, 1),
                    dt.datetime(2026, 10, 25, 1), dt.datetime(2026, 4, 5, 3), dt.datetime(2026, 9, 6, 4),
                    dt.datetime(2026, 4, 4, 15), dt.datetime(2026, 10, 3, 15), dt.datetime(2026, 3, 27),
                    dt.datetime(2026, 3, 8, 5), dt.datetime(2026, 9, 26, 14)]


@st.composite
def near_a_transition(draw):
    base = draw(st.sampled_from(TRANSITIONS_2026)).replace(tzinfo=UTC)
    return base + dt.timedelta(minutes=draw(st.integers(-36 * 60, 36 * 60)), seconds=draw(st.integers(0, 59)))


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(DST_ZONES), now=st.one_of(near_a_transition(), INSTANTS_2026),
       start=st.integers(0, 1439), end=st.integers(0, 1439),
       weekdays=st.one_of(st.none(), st.frozensets(st.integers(0, 6), min_size=3)))
def test_any_minute_rule_in_any_dst_zone(zone, now, start, end, weekdays):
    zone = ZoneInfo(zone)
    rule = QuietHoursRule(dt.time(*divmod(start, 60)), dt.time(*divmod(end, 60)), weekdays)
    assert_next_allowed_is_right(now, zone, rule, lambda i: oracle_allowed(i, zone, (start, end), weekdays))


@settings(max_examples=200, deadline=None)
@given(now=INSTANTS_2026, expiry=st.one_of(st.none(), st.timedeltas(dt.timedelta(hours=-1), dt.timedelta(days=3))),
       zone=st.sampled_from(US_ZONES))
def test_decide_window_agrees_with_next_allowed(now, expiry, zone):
    zone = ZoneInfo(zone)
    expires_at = None if expiry is None else now + expiry
    until = next_allowed(now, zone, US)
    decision = decide_window(now, expires_at, zone, US)
    if expires_at is not None and until >= expires_at:
        assert decision == Expired(until)
    elif until == now:
        assert decision == Allowed()
    else:
        assert decision == Defer(until)
