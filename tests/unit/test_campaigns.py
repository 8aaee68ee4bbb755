"""Specs for campaign segments (streams.campaigns): which customers a segment selects, and how a
campaign file's segment travels to the workers (``segment_json`` on the launch record)."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.campaign import launch_record
from connectors.errors import InvalidEventError
from connectors.simulator import MARKETS, generate
from streams.campaigns import Segment, segment_of
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
NOW = f.NOW
DAY = dt.timedelta(days=1)


def lives_in(city: str | None, **profile):
    return f.profile("cust-1", city=city, **profile)


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


# --- cities ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("city", ["Kraków", "krakow", "KRAKÓW", "Krakow", " Kraków ", "Krako\u0301w"])
def test_a_city_matches_whatever_its_case_and_accents(city):
    assert Segment(cities=["Kraków"]).selects(lives_in(city), None, NOW)
    assert Segment(cities=[city]).selects(lives_in("Kraków"), None, NOW)


@pytest.mark.parametrize("listed, profile_city", [("Gdansk", "Gdańsk"), ("Lodz", "Łódź"), ("Tel-Aviv", "Tel Aviv"),
                                                  ("tel aviv", "TEL AVIV"), ("мінск", "Мінск"), ("Brest", "BREST")])
def test_the_seeds_cities_match_as_people_type_them(listed, profile_city):
    assert Segment(cities=[listed]).selects(lives_in(profile_city), None, NOW)


@pytest.mark.parametrize("listed, profile_city", [("Warszawa", "Kraków"), ("Tel Aviv", "Tel Aviv-Yafo"),
                                                  ("Minsk", "Мінск"), ("Haifa", None)])
def test_another_city_a_longer_name_another_script_or_no_city_is_not_selected(listed, profile_city):
    # No transliteration and no guessing: a segment lists every spelling its store's profiles use.
    assert not Segment(cities=[listed]).selects(lives_in(profile_city), None, NOW)


def test_a_segment_without_cities_selects_customers_with_or_without_one():
    assert Segment().selects(lives_in(None), None, NOW) and Segment().selects(lives_in("Haifa"), None, NOW)


def test_any_of_the_listed_cities_will_do_and_every_other_key_must_hold_too():
    segment = Segment(cities=["Amsterdam", "Utrecht"], locales=["nl"])
    assert segment.selects(lives_in("Utrecht", locale="nl"), None, NOW)
    assert not segment.selects(lives_in("Utrecht", locale="pl"), None, NOW)
    assert not segment.selects(lives_in("Rotterdam", locale="nl"), None, NOW)


@pytest.mark.parametrize("names", [[""], ["  "], ["Haifa", "--"]])
def test_a_city_without_letters_is_refused(names):
    with pytest.raises(ValidationError, match="a city needs a name"):
        Segment(cities=names)


def _accent(text: str, marks: list[str]) -> str:
    """``text`` with combining accents after some of its letters (decomposed, as some keyboards send them)."""
    out = []
    for i, ch in enumerate(unicodedata.normalize("NFD", text)):
        out.append(ch + (marks[i % len(marks)] if ch.isalpha() and i % 2 and marks else ""))
    return "".join(out)


latin_city = st.from_regex(r"[A-Za-z]{2,12}( [A-Za-z]{2,12}){0,2}", fullmatch=True)
accents = st.lists(st.sampled_from(["\u0301", "\u0300", "\u0308", "\u030c", "\u0327", "\u0328"]), max_size=3)


@settings(max_examples=200, deadline=None)
@given(city=latin_city, marks=accents, upper=st.booleans())
def test_any_latin_city_matches_itself_with_accents_and_in_another_case(city, marks, upper):
    typed = _accent(city.upper() if upper else city.lower(), marks)
    assert Segment(cities=[city]).selects(lives_in(typed), None, NOW)
    assert Segment(cities=[typed]).selects(lives_in(city), None, NOW)


@settings(max_examples=200, deadline=None)
@given(city=latin_city, other=latin_city)
def test_two_latin_cities_match_only_when_their_letters_agree(city, other):
    same = " ".join(city.lower().split()) == " ".join(other.lower().split())
    assert Segment(cities=[city]).selects(lives_in(other), None, NOW) == same


# --- the segment on the launch record -------------------------------------------------------------

CAMPAIGN = ROOT / "deploy" / "campaigns" / "flash30.yaml"


def test_the_example_campaign_selects_by_city_and_its_segment_survives_the_launch_record():
    launch = launch_record(CAMPAIGN.read_text(encoding="utf-8"), NOW)
    segment = segment_of(launch)
    assert segment.cities and "Kraków" in segment.cities
    assert segment.last_order_older_than == 30 * DAY  # held as ISO 8601 ("P30D") in segment_json
    bought_long_ago = {"orders": 1, "last_order": _ms(NOW - 40 * DAY), "skus": ["SNK-42"]}
    assert segment.selects(lives_in("krakow", locale="pl"), bought_long_ago, NOW)
    assert not segment.selects(lives_in("Haifa", locale="pl"), bought_long_ago, NOW)
    assert not segment.selects(lives_in("Kraków", locale="pl"), {**bought_long_ago, "skus": ["MUG-01"]}, NOW)


@pytest.mark.parametrize("key, value, expected", [("ordered_within", "7d", 7 * DAY),
                                                  ("abandoned_cart_within", "90m", dt.timedelta(minutes=90)),
                                                  ("last_order_older_than", "2w", 14 * DAY)])
def test_every_duration_key_reads_back_from_the_launch_record(key, value, expected):
    text = f"name: c1\nstore_id: s\ntemplate: flash_sale\nchannels: [sms]\n" \
           f"variables: {{coupon_code: X, coupon_value: '5%'}}\nsegment: {{{key}: {value}}}\n"
    assert getattr(segment_of(launch_record(text, NOW)), key) == expected


def test_a_misspelt_segment_key_is_refused_at_launch():
    text = "name: c1\nstore_id: s\ntemplate: flash_sale\nchannels: [sms]\nsegment: {city: [Haifa]}\n"
    with pytest.raises(InvalidEventError):
        launch_record(text, NOW)


# --- the simulated storefront's customers ----------------------------------------------------------

def test_generated_customers_live_in_a_city_of_their_market_and_a_seed_repeats_them():
    shop = generate(600, seed=11, now=NOW)
    cities = {(locale, zone): set(names) for locale, zone, *_, names in MARKETS}
    assert all(p.city in cities[(p.locale, p.time_zone)] for p in shop.profiles)
    assert {p.city for p in shop.profiles} == set().union(*cities.values())  # 600 customers reach every city
    again = generate(600, seed=11, now=NOW)
    assert (again.profiles, again.events, again.consents) == (shop.profiles, shop.events, shop.consents)
