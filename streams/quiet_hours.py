"""Quiet hours in the customer's own time zone: when may marketing be sent, and what to do until then.

Pure: no Faust, no I/O, no clock of its own ("now" is passed in). Rules are data
(``QuietHoursRule``) and ``RULES_BY_REGION`` holds the built-in ones, keyed by ISO 3166 country
or subdivision ("US", "US-FL"); ``rule_for`` falls back from subdivision to country to the store's
default. Sources:

* US: 08:00-21:00 recipient local time, TCPA 47 CFR 64.1200(c)(1).
* US-FL: 08:00-20:00, Florida Telephone Solicitation Act (Fla. Stat. 501.059), as summarised by
  several law firms (not checked against the statute's text).
* FR: Monday-Saturday 08:00-20:00, never on Sundays or public holidays: the rule French SMS
  providers apply, citing CNIL and the mobile operators' (AF2M) code of conduct; a professional
  code rather than a statute. The holidays (``FR_PUBLIC_HOLIDAYS``) are listed for 2026-2027 only:
  extend the table before 2028.
* IL: 08:00-21:00 with a Shabbat blackout from Friday 16:00 to Saturday 20:00. The blackout is an
  approximation with fixed hours, not sunset times: Shabbat starts between about 16:00 (winter)
  and 19:15 (summer), so Friday is over-blocked; it ends between about 17:30 and 20:30, so on
  midsummer Saturdays 20:00-20:30 is still Shabbat and is *not* blocked. Jewish holidays are not
  included. Stores that do not want it pass ``observe_shabbat=False`` to ``rule_for``.
* PL, NL, BY, GB, DE and the store default: 08:00-21:00 every day (no statutory hours for SMS
  marketing found; the TCPA hours are used as a conservative default).

Time zone (``resolve_zone``): the profile's zone; else the phone number's, when libphonenumber
gives exactly one zone for it (or, when it knows none, as for Israeli mobiles, when the number's
country has exactly one zone in tzdata); else the store's. A number with several zones (US toll-free numbers
list every North American zone, from America/Adak to America/St_Johns) tells us nothing about
where the customer is: picking the alphabetically first, Adak (UTC-10), would allow messages until
03:00 on the US east coast, so the store's zone is used instead.

DST: a local start time that does not exist (spring forward) means the first instant after the
gap, i.e. the transition itself; a local time that occurs twice (fall back) means its first
occurrence. Instants are compared in UTC; results are in UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

UTC = dt.timezone.utc
SEARCH_DAYS = 14  # how far ahead next_allowed looks before it declares a rule impossible


@dataclass(frozen=True)
class WeeklyBlackout:
    """No sending from (start_weekday, start) to (end_weekday, end) local time; weekdays 0=Monday."""

    start_weekday: int
    start: dt.time
    end_weekday: int
    end: dt.time

    def covers(self, local: dt.datetime) -> bool:
        begin, finish = _minute_of_week(self.start_weekday, self.start), _minute_of_week(self.end_weekday, self.end)
        at = _minute_of_week(local.weekday(), local.time())
        return begin <= at < finish if begin <= finish else at >= begin or at < finish


def _minute_of_week(weekday: int, at: dt.time) -> float:
    return weekday * 1440 + at.hour * 60 + at.minute + (at.second + at.microsecond / 1e6) / 60


@dataclass(frozen=True)
class QuietHoursRule:
    """Sending is allowed from ``start`` to ``end`` local time (end excluded; start > end crosses
    midnight, start == end is the whole day), on ``weekdays_allowed`` (0=Monday; None = every day),
    never on ``blocked_dates`` (local dates) nor inside a ``weekly_blackouts`` period."""

    start: dt.time
    end: dt.time
    weekdays_allowed: frozenset[int] | None = None
    blocked_dates: frozenset[dt.date] = frozenset()
    weekly_blackouts: tuple[WeeklyBlackout, ...] = ()

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet-hours times are local wall-clock times, without tzinfo")
        if self.weekdays_allowed is not None and not self.weekdays_allowed <= set(range(7)):
            raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday), got {sorted(self.weekdays_allowed)}")

    def allows_local(self, local: dt.datetime) -> bool:
        at = local.time()
        if self.start < self.end:
            in_hours = self.start <= at < self.end
        else:
            in_hours = self.start == self.end or at >= self.start or at < self.end
        return (in_hours
                and (self.weekdays_allowed is None or local.weekday() in self.weekdays_allowed)
                and local.date() not in self.blocked_dates
                and not any(blackout.covers(local) for blackout in self.weekly_blackouts))


def _fr_holidays() -> frozenset[dt.date]:
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    easter = {2026: dt.date(2026, 4, 5), 2027: dt.date(2027, 3, 28)}
    days = {dt.date(year, month, day) for year in easter for month, day in fixed}
    for sunday in easter.values():  # Easter Monday, Ascension, Whit Monday
        days |= {sunday + dt.timedelta(days=offset) for offset in (1, 39, 50)}
    return frozenset(days)


FR_PUBLIC_HOLIDAYS = _fr_holidays()
SHABBAT = WeeklyBlackout(4, dt.time(16), 5, dt.time(20))
DEFAULT_RULE = QuietHoursRule(dt.time(8), dt.time(21))

RULES_BY_REGION: Mapping[str, QuietHoursRule] = MappingProxyType({
    "US": DEFAULT_RULE,
    "US-FL": QuietHoursRule(dt.time(8), dt.time(20)),
    "FR": QuietHoursRule(dt.time(8), dt.time(20), frozenset(range(6)), FR_PUBLIC_HOLIDAYS),
    "IL": QuietHoursRule(dt.time(8), dt.time(21), weekly_blackouts=(SHABBAT,)),
    **{country: DEFAULT_RULE for country in ("PL", "NL", "BY", "GB", "DE")},
})


def rule_for(region: str | None, default: QuietHoursRule = DEFAULT_RULE, *,
             observe_shabbat: bool = True) -> QuietHoursRule:
    """The rule for "US-FL", else for "US", else the store's default."""
    key = (region or "").replace("_", "-").upper()
    rule = RULES_BY_REGION.get(key) or RULES_BY_REGION.get(key.split("-")[0]) or default
    return rule if observe_shabbat else replace(rule, weekly_blackouts=())


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def resolve_zone(profile_zone: str | None, phone_e164: str | None, store_zone: str) -> ZoneInfo:
    """The customer's zone: profile, else an unambiguous phone number, else the store's (see above).

    A profile zone that is not a known IANA name is ignored; a bad store zone raises
    ``ZoneInfoNotFoundError``, since it is configuration.
    """
    zone = _zone(profile_zone)
    if zone is None and phone_e164:
        try:
            number = phonenumbers.parse(phone_e164, None)
            zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
            zones = zones or country_zones(phonenumbers.region_code_for_number(number) or "")
        except phonenumbers.NumberParseException:
            zones = ()
        if len(zones) == 1:
            zone = _zone(zones[0])
    return zone or ZoneInfo(store_zone)


@functools.cache
def country_zones(country: str) -> tuple[str, ...]:
    """The IANA zones of a country (tzdata's zone.tab). libphonenumber knows no zone for many mobile
    ranges (Israel's +9725… gives Etc/Unknown); a country with one zone still tells us where it is."""
    try:
        table = importlib.resources.files("tzdata").joinpath("zoneinfo/zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return ()
    return tuple(fields[2] for line in table.splitlines()
                 if not line.startswith("#") and len(fields := line.split("\t")) >= 3 and fields[0] == country)


def _wall(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _instants(wall: dt.datetime, zone: ZoneInfo) -> set[dt.datetime]:
    """The instants a local wall time names: one, two when it is ambiguous (fall back), none in a gap."""
    found = {wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
    return {instant for instant in found if _wall(instant, zone) == wall}


def _transitions(since: dt.datetime, days: int, zone: ZoneInfo) -> set[dt.datetime]:
    """The instants at which the zone's UTC offset changes (DST), found to the second."""
    found = set()
    for day in range(days):
        low, high = int(since.timestamp()) + day * 86400, int(since.timestamp()) + (day + 1) * 86400
        after = _offset(high, zone)
        if _offset(low, zone) == after:
            continue
        while high - low > 1:  # offset(low) differs from ``after``, offset(high) is ``after``
            middle = (low + high) // 2
            low, high = (low, middle) if _offset(middle, zone) == after else (middle, high)
        found.add(dt.datetime.fromtimestamp(high, UTC))
    return found


def _offset(second: int, zone: ZoneInfo) -> dt.timedelta | None:
    return dt.datetime.fromtimestamp(second, zone).utcoffset()


def is_allowed(instant: dt.datetime, zone: ZoneInfo, rule: QuietHoursRule) -> bool:
    return rule.allows_local(instant.astimezone(zone))


def next_allowed(now: dt.datetime, zone: ZoneInfo, rule: QuietHoursRule) -> dt.datetime:
    """``now`` (in UTC) when the rule allows it, else the earliest allowed instant after it.

    An allowed span can only begin at ``now``, at a local time where the rule opens (the daily start,
    midnight, a blackout's end; both occurrences when the clock goes back) or at a DST transition
    (which is also the first instant after a local time the clock skips). Only those candidates are
    checked, in order. Raises ValueError when nothing is allowed within ``SEARCH_DAYS`` days.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("next_allowed needs an aware datetime")
    now = now.astimezone(UTC)
    first_day = _wall(now, zone).date() - dt.timedelta(days=1)
    opens = {rule.start, dt.time(0)} | {blackout.end for blackout in rule.weekly_blackouts}
    candidates = {now} | _transitions(now, SEARCH_DAYS + 1, zone)
    for offset in range(SEARCH_DAYS + 2):
        day = first_day + dt.timedelta(days=offset)
        for at in opens:
            candidates |= _instants(dt.datetime.combine(day, at), zone)
    for candidate in sorted(c for c in candidates if c >= now):
        if is_allowed(candidate, zone, rule):
            return candidate
    raise ValueError(f"the quiet-hours rule allows nothing within {SEARCH_DAYS} days of {now.isoformat()}")


@dataclass(frozen=True)
class Allowed:
    pass


@dataclass(frozen=True)
class Defer:
    until: dt.datetime


@dataclass(frozen=True)
class Expired:
    next_allowed: dt.datetime  # when it could have gone out, for the suppression's detail


WindowDecision = Allowed | Defer | Expired


def decide_window(now: dt.datetime, expires_at: dt.datetime | None, zone: ZoneInfo,
                  rule: QuietHoursRule) -> WindowDecision:
    """Send now, defer to the next allowed instant, or drop: an offer is never sent at or after its expiry."""
    until = next_allowed(now, zone, rule)
    if expires_at is not None and until >= expires_at:
        return Expired(until)
    return Allowed() if until == now else Defer(until)
