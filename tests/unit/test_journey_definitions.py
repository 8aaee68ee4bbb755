"""Specs for journey definitions and their loader: YAML in, a validated Journey out, or an error that
names the file and the line of the bad key."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

from schemas.types import Channel, Purpose
from streams import templates
from streams.errors import ConfigurationError
from streams.journeys.definitions import parse_duration
from streams.journeys.loader import DEFAULTS_DIR, load_dir, parse

SHIPPED = {"abandoned_cart", "back_in_stock", "birthday", "cross_sell", "delivery_feedback", "order_confirmation", "reactivation",
           "shipping_update", "whatsapp_newsletter", "whatsapp_welcome"}


def yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def error_of(text: str, source: str = "cart.yaml") -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse(yaml(text), source)
    return str(caught.value)


CART = """
    journey: cart
    purpose: marketing
    trigger: {event: cart_abandoned}
    steps:
      - {id: pause, wait: 1h}
      - {id: sms, send: cart_reminder, channels: [sms]}
    """


def test_a_valid_journey_parses():
    journey = parse(yaml(CART), "cart.yaml")
    assert journey.journey == "cart" and journey.purpose == Purpose.MARKETING
    assert [s.kind for s in journey.steps] == ["wait", "send"]
    assert journey.steps[0].wait.for_ == dt.timedelta(hours=1)
    assert journey.steps[1].channels == [Channel.SMS]
    assert journey.templates() == {"cart_reminder"}


# --- errors name the file and the line --------------------------------------------------------------

def test_an_unknown_step_kind_names_the_file_and_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: pause, wait: 1h}
          - id: sms
            sned: cart_reminder
            channels: [sms]
        """)
    assert "cart.yaml:7: steps.1.sned: Extra inputs are not permitted" in message


def test_a_misspelt_top_level_key_points_at_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        exit_onn: [order_placed]
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert re.search(r"cart\.yaml:4: exit_onn: Extra inputs are not permitted", message)


def test_an_unknown_event_type_points_at_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger:
          event: cart_abandonned
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert "cart.yaml:4: trigger.event" in message


def test_text_that_is_not_yaml_is_a_configuration_error():
    assert "not valid YAML" in error_of("journey: [unclosed\n")


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "a string\n"])
def test_a_journey_is_a_mapping(text):
    assert "a journey is a mapping" in error_of(text)


def test_a_goto_to_an_unknown_step_is_refused():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
          - id: check
            branch:
              - {when: {event: order_placed}, goto: nowhere}
        """)
    assert "goto 'nowhere' is not a step id, next or end" in message and "cart.yaml:1:" in message


def test_an_otherwise_to_an_unknown_step_is_refused():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
          - id: check
            branch:
              - {when: {event: order_placed}, goto: end}
            otherwise: emial
        """)
    assert "goto 'emial'" in message


@pytest.mark.parametrize("condition", [
    "{outcome: {step: smss, status: [delivered]}}",
    "{reply: {step: smss, in: [yes]}}",
])
def test_a_condition_on_an_unknown_step_is_refused(condition):
    message = error_of(f"""
        journey: cart
        purpose: marketing
        trigger: {{event: cart_abandoned}}
        steps:
          - {{id: sms, send: cart_reminder, channels: [sms]}}
          - id: check
            branch:
              - {{when: {condition}, goto: end}}
        """)
    assert "condition refers to unknown step 'smss'" in message


def test_a_condition_is_exactly_one_of_event_outcome_reply():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
          - id: check
            branch:
              - {when: {event: order_placed, reply: {step: sms, in: [yes]}}, goto: end}
        """)
    assert "cart.yaml:8: steps.1.branch.0.when" in message and "exactly one of event, outcome, reply" in message


def test_a_send_step_without_channels_is_refused_at_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: pause, wait: 1h}
          - {id: sms, send: cart_reminder}
        """)
    assert "cart.yaml:6: steps.1" in message and "sends but lists no channels" in message


def test_a_step_of_two_kinds_is_refused():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms], wait: 1h}
        """)
    assert "must be exactly one of send, wait, branch, emit, exit (has send, wait)" in message


def test_an_unknown_channel_is_refused_at_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - id: sms
            send: cart_reminder
            channels: [sms, pigeon]
        """)
    assert "cart.yaml:7: steps.0.channels.1" in message


def test_repeated_step_ids_are_refused():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
          - {id: sms, send: cart_reminder, channels: [email]}
        """)
    assert "step ids repeat: ['sms']" in message


def test_an_unknown_wake_reason_is_refused():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: settle, wait: {for: 4h, until: [outcome, lunch]}}
        """)
    assert "cart.yaml:5: steps.0.wait.until" in message and "'lunch'" in message


def test_a_wait_is_a_duration_or_a_time_of_day_never_both():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: settle, wait: {for: 4h, at: "10:00"}}
        """)
    assert "exactly one of for (a duration) and at (a local time)" in message


def test_a_coupon_has_exactly_one_discount():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - id: sms
            send: cart_reminder
            channels: [sms]
            coupon: {percent_off: 10, amount_off_minor: 500, valid_for: 7d}
        """)
    assert "cart.yaml:8: steps.0.coupon" in message and "exactly one of percent_off and amount_off_minor" in message


def test_a_variant_may_only_change_a_send_step():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        variants:
          - {name: a, weight: 1, templates: {pause: cart_reminder}}
        steps:
          - {id: pause, wait: 1h}
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert "variant 'a': no send step ['pause']" in message


# --- templates are checked when the journey loads ---------------------------------------------------

def test_a_template_that_does_not_exist_fails_at_load():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        steps:
          - {id: sms, send: cart_remindr, channels: [sms]}
        """)
    assert "cart.yaml: step 'sms'" in message and "cart_remindr" in message


def test_a_variants_template_that_does_not_exist_fails_at_load():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        variants:
          - {name: a, weight: 1}
          - {name: b, weight: 1, templates: {sms: no_such_text}}
        steps:
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert "step 'sms'" in message and "no_such_text" in message


def test_a_template_without_a_text_for_a_listed_channel_fails_at_load():
    message = error_of("""
        journey: welcome
        purpose: marketing
        trigger: {event: customer_signup}
        steps:
          - {id: welcome, send: whatsapp_welcome, channels: [whatsapp, sms]}
        """)
    assert "step 'welcome'" in message and "whatsapp_welcome has no sms text" in message


@pytest.fixture
def broken_template(monkeypatch):
    """A template whose Polish SMS text needs a variable no sample provides."""
    compiled = {loc: {Channel.SMS: (None, templates._ENV.from_string(body))}
                for loc, body in {"en": "Hi {{ first_name }}", "pl": "Cześć {{ pet_name }}"}.items()}
    monkeypatch.setitem(templates._COMPILED, "broken_greeting", compiled)
    return "broken_greeting"


def test_a_template_that_does_not_render_fails_at_load(broken_template):
    message = error_of(f"""
        journey: hello
        purpose: marketing
        trigger: {{event: customer_signup}}
        steps:
          - {{id: hello, send: {broken_template}, channels: [sms]}}
        """)
    assert "step 'hello'" in message and "broken_greeting/pl/sms" in message and "pet_name" in message


def test_the_load_time_render_uses_the_steps_variables(broken_template):
    journey = parse(yaml(f"""
        journey: hello
        purpose: marketing
        trigger: {{event: customer_signup}}
        steps:
          - {{id: hello, send: {broken_template}, channels: [sms], variables: {{pet_name: Rex}}}}
        """))
    assert journey.steps[0].variables == {"pet_name": "Rex"}


# --- durations, times, and YAML's surprises -------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("90s", dt.timedelta(seconds=90)), ("15m", dt.timedelta(minutes=15)), ("4h", dt.timedelta(hours=4)),
    ("3d", dt.timedelta(days=3)), ("2w", dt.timedelta(weeks=2)), ("1.5h", dt.timedelta(minutes=90)),
    ("500ms", dt.timedelta(milliseconds=500)), (" 31d ", dt.timedelta(days=31)), ("0s", dt.timedelta(0)),
    (45, dt.timedelta(seconds=45)), (2.5, dt.timedelta(seconds=2.5)),
    (dt.timedelta(hours=1), dt.timedelta(hours=1)),
])
def test_durations_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["4x", "h", "", "four hours", "-1h", "1h30m", -5, True])
def test_what_is_not_a_duration_is_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_a_bad_duration_in_a_journey_points_at_its_line():
    message = error_of("""
        journey: cart
        purpose: marketing
        trigger: {event: cart_abandoned}
        reentry_cooldown: 24h
        steps:
          - {id: pause, wait: 4x}
          - {id: sms, send: cart_reminder, channels: [sms]}
        """)
    assert "cart.yaml:6: steps.0.wait" in message and "not a duration: '4x'" in message


@pytest.mark.parametrize("at", ['"10:00"', "10:00", "'09:30'"])
def test_a_time_of_day_reads_quoted_or_not(at):
    journey = parse(yaml(f"""
        journey: birthday
        purpose: marketing
        trigger: {{event: birthday}}
        steps:
          - {{id: morning, wait: {{at: {at}, same_day: yes}}}}
          - {{id: greet, send: cart_reminder, channels: [sms]}}
        """))
    wait = journey.steps[0].wait
    assert wait.at in (dt.time(10, 0), dt.time(9, 30)) and wait.same_day is True and wait.for_ is None


def test_reply_answers_stay_text_even_where_yaml_1_1_sees_booleans_and_numbers():
    journey = parse(yaml("""
        journey: survey
        purpose: transactional
        trigger: {event: order_delivered}
        steps:
          - {id: ask, send: talk_to_agent, channels: [sms]}
          - {id: await, wait: {for: 24h, until: [reply]}}
          - id: answer
            branch:
              - {when: {reply: {step: ask, in: [yes, No, on, 4, 5]}}, goto: end}
        """))
    assert journey.steps[2].branch[0].when.reply.in_ == ["yes", "No", "on", "4", "5"]


def test_trigger_attributes_and_step_variables_are_text():
    journey = parse(yaml("""
        journey: welcome
        purpose: marketing
        trigger: {event: customer_signup, where: {channel: whatsapp, tier: 1, country: NO}}
        steps:
          - {id: welcome, send: whatsapp_welcome, channels: [whatsapp], variables: {currency: EUR, min: 50}}
        """))
    assert journey.trigger.where == {"channel": "whatsapp", "tier": "1", "country": "NO"}
    assert journey.steps[0].variables == {"currency": "EUR", "min": "50"}


# --- directories ----------------------------------------------------------------------------------

def test_every_shipped_journey_loads():
    journeys = load_dir()
    assert set(journeys) == SHIPPED
    assert load_dir(DEFAULTS_DIR) == journeys


def test_the_shipping_update_keeps_its_step_id():
    (step,) = load_dir()["shipping_update"].steps
    assert (step.id, step.send, step.channels) == ("notify", "shipping_update",
                                                   [Channel.SMS, Channel.WHATSAPP, Channel.EMAIL])


def test_one_journey_name_in_two_files_is_refused(tmp_path: Path):
    (tmp_path / "a.yaml").write_text(yaml(CART), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(yaml(CART), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"b\.yaml: journey 'cart' is defined twice"):
        load_dir(tmp_path)


def test_a_directory_loads_its_yaml_files_only(tmp_path: Path):
    (tmp_path / "cart.yaml").write_text(yaml(CART), encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a journey", encoding="utf-8")
    (tmp_path / "old.yaml.bak").write_text("journey: [", encoding="utf-8")
    assert list(load_dir(tmp_path)) == ["cart"]
    (tmp_path / "empty").mkdir()
    assert load_dir(tmp_path / "empty") == {}


def test_a_directory_that_is_not_there_is_an_error_not_a_worker_without_journeys(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="no such journey directory"):
        load_dir(tmp_path / "jounreys")


def test_a_bad_file_in_a_directory_is_named(tmp_path: Path):
    (tmp_path / "good.yaml").write_text(yaml(CART), encoding="utf-8")
    (tmp_path / "bad.yaml").write_text(yaml(CART).replace("wait: 1h", "wait: soon"), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml:5: steps\.0\.wait\.for: .*not a duration: \'soon\'"):
        load_dir(tmp_path)
