"""Specs for streams.stores: each store's rules, from one YAML file, checked at start-up.

A store's own keys are merged over the defaults key by key; an unknown store gets the defaults; a
file that does not validate raises ConfigurationError naming the bad key's path, so the worker stops
at start-up instead of failing on the first message.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.types import Channel
from streams import caps, quiet_hours
from streams.errors import ConfigurationError
from streams.keywords import HELP_TEXTS, Keyword, classify, help_reply
from streams.stores import QuietHoursSettings, StoreConfig, StoreDirectory

EXAMPLE = """
defaults:
  time_zone: Europe/Amsterdam
  quiet_hours: {start: "09:00", end: "20:00"}
  keywords: {help_text: {en: "Call 020-1234567"}}
stores:
  shop-il:
    time_zone: Asia/Jerusalem
    double_opt_in: true
    keywords: {extra: {opt_out: ["די"]}, help_text: {he: "לעזרה: 03-1234567"}}
    quiet_hours: {end: "19:00"}
    frequency_caps:
      rules: [{max_count: 1, window_hours: 24}]
      on_capped: drop
      classes: {newsletter: {rules: [{max_count: 1, window_hours: 168}]}}
  shop-nl: {}
  shop-empty:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stores.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def directory(tmp_path: Path) -> StoreDirectory:
    return StoreDirectory.load(write(tmp_path, EXAMPLE))


def invalid(defaults: dict | None = None, stores: dict | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        StoreDirectory(defaults, stores)
    return str(caught.value)


# --- merging ------------------------------------------------------------------------------------


def test_a_stores_own_keys_are_merged_over_the_defaults_key_by_key(directory):
    il = directory("shop-il")
    assert il.time_zone == "Asia/Jerusalem" and il.double_opt_in
    assert (il.quiet_hours.start, il.quiet_hours.end) == (dt.time(9), dt.time(19))  # start from the defaults
    assert il.keywords.help_text == {"en": "Call 020-1234567", "he": "לעזרה: 03-1234567"}
    assert il.frequency_caps.on_capped == "drop"
    assert il.frequency_caps.enabled and il.quiet_hours.enabled  # untouched keys keep the model's defaults


def test_lists_are_replaced_not_merged():
    directory = StoreDirectory({"frequency_caps": {"rules": [{"max_count": 3, "window_hours": 24}]}},
                               {"s": {"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 1}]}}})
    assert [(r.max_count, r.window_hours) for r in directory("s").frequency_caps.rules] == [(1, 1)]
    assert [(r.max_count, r.window_hours) for r in directory.default.frequency_caps.rules] == [(3, 24)]


def test_a_store_without_keys_of_its_own_gets_the_defaults(directory):
    assert directory("shop-nl") == directory("shop-empty") == directory.default
    assert directory.default.time_zone == "Europe/Amsterdam"
    assert (directory.default.quiet_hours.start, directory.default.quiet_hours.end) == (dt.time(9), dt.time(20))


def test_an_unknown_store_gets_the_defaults(directory):
    assert directory("no-such-store") is directory.default
    assert not directory("no-such-store").double_opt_in


def test_no_file_and_no_defaults_give_the_models_defaults(tmp_path):
    for directory in (StoreDirectory(), StoreDirectory.load(None), StoreDirectory.load(write(tmp_path, ""))):
        assert directory("any") == StoreConfig()
    config = StoreConfig()
    assert config.time_zone == "UTC" and config.zone.key == "UTC" and config.country is None
    assert not config.double_opt_in and config.double_opt_in_channels == [Channel.SMS, Channel.WHATSAPP]
    assert config.quiet_hours.enabled and not config.quiet_hours.transactional and config.quiet_hours.observe_shabbat
    policy = config.frequency_caps.policies(None)["all"]
    assert policy.rules == caps.DEFAULT_POLICY.rules and policy.on_capped == "defer"


def test_merging_does_not_change_the_defaults_seen_by_other_stores():
    defaults = {"quiet_hours": {"start": "09:00"}, "keywords": {"help_text": {"en": "x"}}}
    directory = StoreDirectory(defaults, {"a": {"quiet_hours": {"start": "11:00"}, "keywords": {"help_text": {"pl": "y"}}},
                                          "b": {}})
    assert directory("a").quiet_hours.start == dt.time(11)
    assert directory("b").quiet_hours.start == dt.time(9) and directory("b").keywords.help_text == {"en": "x"}
    assert defaults == {"quiet_hours": {"start": "09:00"}, "keywords": {"help_text": {"en": "x"}}}


# --- invalid settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(("own", "path"), [
    ({"quiet_hours": {"start": "soon"}}, "stores.shop-il.quiet_hours.start"),
    ({"quiet_hours": {"end": "25:00"}}, "stores.shop-il.quiet_hours.end"),
    ({"quiet_hours": {"begin": "09:00"}}, "stores.shop-il.quiet_hours.begin"),  # unknown key
    ({"quiet_hour": {"start": "09:00"}}, "stores.shop-il.quiet_hour"),  # unknown key (a typo)
    ({"time_zone": "Mars/Olympus_Mons"}, "stores.shop-il.time_zone"),
    ({"time_zone": "../../etc/passwd"}, "stores.shop-il.time_zone"),
    ({"frequency_caps": {"rules": [{"max_count": 0, "window_hours": 24}]}},
     "stores.shop-il.frequency_caps.rules.0.max_count"),
    ({"frequency_caps": {"rules": [{"max_count": 1, "window_hours": 0}]}},
     "stores.shop-il.frequency_caps.rules.0.window_hours"),
    ({"frequency_caps": {"on_capped": "queue"}}, "stores.shop-il.frequency_caps.on_capped"),
    ({"frequency_caps": {"classes": {"newsletter": {"rules": [{"max_count": 1}]}}}},
     "stores.shop-il.frequency_caps.classes.newsletter.rules.0.window_hours"),
    ({"double_opt_in_channels": ["pigeon"]}, "stores.shop-il.double_opt_in_channels.0"),
    ({"keywords": {"extra": {"unsubscribe": ["BYE"]}}}, "stores.shop-il.keywords.extra"),
    ({"keywords": {"removed": ["STOP"]}}, "stores.shop-il.keywords.removed"),
    ({"product_url": "https://shop.example/p/"}, "stores.shop-il.product_url"),  # no {sku} to fill in
])
def test_an_invalid_store_names_the_path_of_the_bad_key(own, path):
    message = invalid({"time_zone": "Europe/Warsaw"}, {"shop-nl": {}, "shop-il": own})
    assert f"{path}:" in message or f"{path}." in message, message


def test_a_stores_product_url_links_a_recommended_product_and_is_optional():
    stores = StoreDirectory({"product_url": "https://shop.example/p/{sku}"}, {"own": {"product_url": None}})
    assert stores("any").product_url == "https://shop.example/p/{sku}" and stores("own").product_url is None


def test_invalid_defaults_name_the_defaults_path():
    assert "defaults.time_zone:" in invalid({"time_zone": "Nowhere/Special"})
    assert "defaults.colour:" in invalid({"colour": "blue"})


def test_every_problem_is_reported_at_once():
    message = invalid(None, {"a": {"quiet_hours": {"start": "soon", "end": "late"}}})
    assert "stores.a.quiet_hours.start:" in message and "stores.a.quiet_hours.end:" in message


def test_an_unknown_key_is_rejected_at_every_level():
    assert "stores.a.frequency_caps.classes.newsletter.on_capped_at:" in invalid(None, {"a": {"frequency_caps": {
        "classes": {"newsletter": {"rules": [{"max_count": 1, "window_hours": 1}], "on_capped_at": "drop"}}}}})
    assert "stores.a.keywords.help:" in invalid(None, {"a": {"keywords": {"help": "x"}}})
    with pytest.raises(ValueError):
        StoreConfig.model_validate({"quiet_hours": {"enable": False}})


# --- the YAML file --------------------------------------------------------------------------------


def test_load_reads_the_file(tmp_path):
    directory = StoreDirectory.load(write(tmp_path, EXAMPLE))
    assert directory("shop-il").zone.key == "Asia/Jerusalem"


def test_load_names_the_file_and_the_path_of_a_bad_key(tmp_path):
    path = write(tmp_path, "stores:\n  shop-il:\n    quiet_hours: {start: soon}\n")
    with pytest.raises(ConfigurationError, match=r"stores\.shop-il\.quiet_hours\.start"):
        StoreDirectory.load(path)


@pytest.mark.parametrize("text", [
    "defaults: [1, 2\n",  # not YAML
    "- a list\n- of things\n",  # not a mapping
    "store:\n  shop-il: {}\n",  # a misspelt top-level key
    "just a string\n",
])
def test_a_file_that_is_not_a_store_mapping_is_a_configuration_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError, match="stores.yaml"):
        StoreDirectory.load(path)


def test_a_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="nope.yaml"):
        StoreDirectory.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("written", "expected"), [
    ("9:30", dt.time(9, 30)),  # YAML 1.1: the base-60 integer 570
    ("21:00", dt.time(21)),  # 1260
    ("09:30", dt.time(9, 30)),  # a leading zero makes it a string
    ('"09:30"', dt.time(9, 30)),
    ("'21:15'", dt.time(21, 15)),
    ("23:59", dt.time(23, 59)),
])
def test_unquoted_times_in_yaml_are_read_as_times_of_day(tmp_path, written, expected):
    path = write(tmp_path, f"stores:\n  s:\n    quiet_hours:\n      start: {written}\n      end: {written}\n")
    config = StoreDirectory.load(path)("s")
    assert config.quiet_hours.start == expected == config.quiet_hours.end


@settings(max_examples=200)
@given(hour=st.integers(0, 23), minute=st.integers(0, 59), quoted=st.booleans(), padded=st.booleans())
def test_any_hh_mm_however_written_is_that_time_or_refused_at_load_never_another_time(hour, minute, quoted, padded):
    text = f"{hour:02d}:{minute:02d}" if padded else f"{hour}:{minute:02d}"
    own = yaml.safe_load(f"quiet_hours: {{start: {text!r}}}" if quoted else f"quiet_hours: {{start: {text}}}")
    try:
        start = StoreDirectory(None, {"s": own})("s").quiet_hours.start
    except ConfigurationError as exc:  # "9:30" quoted, or "0:30" (no base-60 integer): not HH:MM
        assert not padded and (quoted or hour == 0)
        assert "stores.s.quiet_hours.start:" in str(exc)
    else:
        assert start == dt.time(hour, minute)


@pytest.mark.parametrize("written", ["24:00", "9:30:15", '"09:30+02:00"', '"21:00Z"'])
def test_a_time_that_is_not_a_local_time_of_day_is_refused_at_load(tmp_path, written):
    # Unquoted 24:00 is the integer 1440, which pydantic would read as 00:24 UTC: a time with an offset,
    # which QuietHoursRule refuses; it must fail here, not in every later decision.
    path = write(tmp_path, f"stores:\n  s:\n    quiet_hours: {{end: {written}}}\n")
    with pytest.raises(ConfigurationError, match=r"stores\.s\.quiet_hours\.end"):
        StoreDirectory.load(path)


# --- quiet-hours rules ----------------------------------------------------------------------------


def test_without_hours_of_its_own_a_store_uses_the_regions_rule():
    settings_ = QuietHoursSettings()
    for region in ("US", "US-FL", "FR", "IL", "PL", None, "ZZ"):
        assert settings_.rule(region) == quiet_hours.rule_for(region)


def test_a_stores_start_and_end_replace_the_daily_window_and_keep_the_regions_other_rules():
    settings_ = StoreConfig.model_validate({"quiet_hours": {"start": "10:00", "end": "18:30"}}).quiet_hours
    israel, france = settings_.rule("IL"), settings_.rule("FR")
    assert (israel.start, israel.end) == (dt.time(10), dt.time(18, 30)) == (france.start, france.end)
    assert israel.weekly_blackouts == (quiet_hours.SHABBAT,)
    assert france.weekdays_allowed == frozenset(range(6)) and france.blocked_dates == quiet_hours.FR_PUBLIC_HOLIDAYS
    only_start = StoreConfig.model_validate({"quiet_hours": {"start": "07:00"}}).quiet_hours.rule("US-FL")
    assert (only_start.start, only_start.end) == (dt.time(7), dt.time(20))


def test_a_store_may_leave_out_shabbat():
    rule = StoreConfig.model_validate({"quiet_hours": {"observe_shabbat": False}}).quiet_hours.rule("IL")
    assert rule.weekly_blackouts == () and (rule.start, rule.end) == (dt.time(8), dt.time(21))


# --- frequency caps -------------------------------------------------------------------------------


def test_cap_policies_per_slot(directory):
    il = directory("shop-il").frequency_caps
    assert set(il.policies(None)) == set(il.policies("promo")) == {"all"}
    newsletter = il.policies("newsletter")
    assert set(newsletter) == {"all", "class:newsletter"}
    assert newsletter["all"].rules == (caps.CapRule(1, dt.timedelta(hours=24)),)
    assert newsletter["class:newsletter"].rules == (caps.CapRule(1, dt.timedelta(days=7)),)
    assert newsletter["class:newsletter"].on_capped == "drop"  # the store's choice


def test_disabled_or_empty_caps_give_no_policies():
    assert StoreConfig.model_validate({"frequency_caps": {"enabled": False}}).frequency_caps.policies("x") == {}
    assert StoreConfig.model_validate({"frequency_caps": {"rules": []}}).frequency_caps.policies(None) == {}


# --- double opt-in and keywords -------------------------------------------------------------------


def test_double_opt_in_applies_to_the_stores_channels_only(directory):
    il = directory("shop-il")
    assert il.needs_confirmation(Channel.SMS) and il.needs_confirmation("whatsapp")
    assert not il.needs_confirmation(Channel.EMAIL)
    assert not directory("shop-nl").needs_confirmation(Channel.SMS)
    email_too = StoreConfig.model_validate({"double_opt_in": True, "double_opt_in_channels": ["sms", "email"]})
    assert email_too.needs_confirmation("email") and not email_too.needs_confirmation("whatsapp")


def test_a_stores_extra_opt_out_word_opts_out_there_only(directory):
    assert classify("די", directory("shop-il").keywords.config) == Keyword.OPT_OUT
    assert classify("די!", directory("shop-il").keywords.config) == Keyword.OPT_OUT
    assert classify("די", directory("shop-nl").keywords.config) is None
    assert classify("STOP", directory("shop-il").keywords.config) == Keyword.OPT_OUT


def test_a_store_may_remove_a_word_that_is_not_protected():
    config = StoreConfig.model_validate({"keywords": {"removed": ["NIE"]}}).keywords.config
    assert classify("nie", config) is None
    assert classify("STOP", config) == Keyword.OPT_OUT


@pytest.mark.parametrize("word", ["STOP", "stop", "Opt-Out", "unsubscribe", "QUIT"])
def test_removing_an_fcc_opt_out_word_is_refused_at_load(word):
    assert "stores.s.keywords.removed:" in invalid(None, {"s": {"keywords": {"removed": ["NIE", word]}}})
    with pytest.raises(ValueError, match="FCC"):
        StoreConfig.model_validate({"keywords": {"removed": [word]}})


def test_the_stores_help_text_comes_first(directory):
    config = directory("shop-il").keywords.config
    assert help_reply(config, "he-IL") == "לעזרה: 03-1234567"
    assert help_reply(config, "en") == "Call 020-1234567"
    assert help_reply(config, "pl") == HELP_TEXTS["pl"]  # the built-in text in the customer's language
    assert help_reply(config, "fr") == "Call 020-1234567"  # else the store's English
