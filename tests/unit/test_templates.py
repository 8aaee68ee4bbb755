"""Specs for streams.templates: per-locale texts, rendered in a sandboxed, strict Jinja2 environment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError

from schemas.types import Channel
from streams import templates
from streams.errors import TemplateError, UnknownTemplateError
from streams.journeys import coupons
from streams.templates import render, resolve_locale, template_names

LOCALES = ["en", "he", "nl", "pl", "be"]
VARIABLES = {"first_name": "Ana", "order_id": "1001", "carrier": "InPost", "tracking_url": "https://t.example/1"}
ORDER_TEMPLATES = ["shipping_update"]
EVERY_TEXT = [(name, locale, channel) for name in ORDER_TEMPLATES for locale in LOCALES for channel in Channel]
GREETING = {"en": "Hi", "he": "שלום", "nl": "Hallo", "pl": "Cześć", "be": "Прывітанне"}


def test_there_is_at_least_the_shipping_update():
    assert "shipping_update" in template_names()


@pytest.mark.parametrize("channel", list(Channel))
def test_the_help_reply_carries_the_already_localised_help_text_verbatim(channel):
    text = "Odpowiedz STOP, aby zrezygnować."
    assert render("help_reply", "pl", channel, {"help_text": text}).body == text


@pytest.mark.parametrize("name, locale, channel", EVERY_TEXT)
def test_every_template_renders_in_every_locale_and_channel(name, locale, channel):
    rendered = render(name, locale, channel, VARIABLES)
    assert rendered.locale == locale
    assert rendered.body.startswith(GREETING[locale]) and "Ana" in rendered.body
    assert "1001" in rendered.body and "https://t.example/1" in rendered.body
    assert "{{" not in rendered.body and "{%" not in rendered.body
    assert rendered.body == rendered.body.strip()
    if channel == Channel.EMAIL:
        assert rendered.subject and "1001" in rendered.subject
    else:
        assert rendered.subject is None


@pytest.mark.parametrize("locale", LOCALES)
def test_an_empty_first_name_drops_the_name_from_the_greeting(locale):
    body = render("shipping_update", locale, Channel.SMS, {**VARIABLES, "first_name": ""}).body
    assert body.startswith(GREETING[locale]) and "Ana" not in body and "  " not in body


@pytest.mark.parametrize("locale", [
    "en",
    *LOCALES[1:],
])
@pytest.mark.parametrize("channel", list(Channel))
def test_the_carrier_is_optional(locale, channel):
    variables = {k: v for k, v in VARIABLES.items() if k != "carrier"}
    assert "InPost" not in render("shipping_update", locale, channel, variables).body


def test_the_english_texts_name_the_carrier_when_given():
    for channel in Channel:
        assert "with InPost" in render("shipping_update", "en", channel, VARIABLES).body


@pytest.mark.parametrize("asked, resolved", [
    ("pl", "pl"), ("pl-PL", "pl"), ("PL", "pl"), ("he-IL", "he"), ("nl-BE", "nl"), ("be-BY", "be"),
    ("en-GB", "en"), ("xx", "en"), ("xx-YY", "en"), ("", "en"),
])
def test_a_locale_resolves_to_its_language_else_english(asked, resolved):
    assert resolve_locale("shipping_update", asked) == resolved
    assert render("shipping_update", asked, Channel.SMS, VARIABLES).locale == resolved


def test_an_unknown_template_is_an_unknown_template_error():
    with pytest.raises(UnknownTemplateError):
        render("no_such_template", "en", Channel.SMS, VARIABLES)
    assert issubclass(UnknownTemplateError, TemplateError)


@pytest.mark.parametrize("missing", ["order_id", "tracking_url"])
def test_a_missing_variable_is_a_template_error(missing):
    variables = {k: v for k, v in VARIABLES.items() if k != missing}
    with pytest.raises(TemplateError, match=missing):
        render("shipping_update", "pl", Channel.SMS, variables)


def test_the_environment_is_sandboxed():
    hostile = templates._ENV.from_string("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SecurityError):
        hostile.render()


def test_the_environment_refuses_to_mutate_values():
    with pytest.raises(SecurityError):
        templates._ENV.from_string("{{ items.append(1) }}").render(items=[])


def test_variable_values_are_data_never_template_code():
    values = {**VARIABLES, "first_name": "{{ 7*7 }}", "order_id": "{% for x in range(3) %}x{% endfor %}"}
    for channel in Channel:
        body = render("shipping_update", "en", channel, values).body
        assert "{{ 7*7 }}" in body and "49" not in body
        assert "{% for x in range(3) %}x{% endfor %}" in body and "xxx" not in body


def test_values_are_not_html_escaped():
    body = render("shipping_update", "en", Channel.EMAIL, {**VARIABLES, "first_name": "Tom & <Jerry>"}).body
    assert "Tom & <Jerry>" in body


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", list(Channel))
def test_the_cart_reminder_carries_the_cart_link_in_every_locale(locale, channel):
    rendered = render("cart_reminder", locale, channel, {"first_name": "Ana", "cart_url": "https://shop.example/c/9"})
    assert rendered.locale == locale and "https://shop.example/c/9" in rendered.body
    assert (rendered.subject is not None) == (channel == Channel.EMAIL)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("channel", [Channel.SMS, Channel.WHATSAPP])
def test_the_opt_in_confirmation_names_a_word_that_confirms_and_one_that_opts_out(locale, channel):
    from streams.keywords import Keyword, classify

    words = render("optin_confirmation", locale, channel, {}).body.replace(".", " ").replace("!", " ").split()
    assert any(classify(w, awaiting_confirmation=True) == Keyword.CONFIRM for w in words)
    assert any(classify(w) == Keyword.OPT_OUT for w in words)


# --- a coupon's minimum order (coupon_min_cart) ----------------------------------------------------------

COUPON_TEMPLATES = ["reactivation", "birthday_greeting", "whatsapp_welcome", "flash_sale"]
COUPON_TEXTS = [(name, locale, channel) for name in COUPON_TEMPLATES for locale in LOCALES
                for channel in templates._COMPILED[name][locale]]
# How each language says "on orders of at least {amount}" around the amount.
AT_LEAST = {"en": "{} or more", "he": "בסך {} ומעלה", "nl": "vanaf {}", "pl": "od {}", "be": "ад {}"}


def coupon_variables(**extra: str) -> dict[str, str]:
    return {"first_name": "Ana", "coupon_code": "SB-7K2M9Q4X", "coupon_value": "10%", "coupon_expires": "2026-12-31",
            **extra}


@pytest.mark.parametrize("name, locale, channel", COUPON_TEXTS)
def test_a_coupons_minimum_order_is_stated_with_its_currency_in_every_locale(name, locale, channel):
    body = render(name, locale, channel, coupon_variables(coupon_min_cart="50.00", currency="EUR")).body
    assert AT_LEAST[locale].format("50.00 EUR") in body
    assert "10% EUR" not in body  # the currency follows amounts, never a percentage
    assert "{{" not in body and "{%" not in body and "  " not in body


@pytest.mark.parametrize("name, locale, channel", COUPON_TEXTS)
def test_without_a_minimum_order_the_text_says_nothing_of_one(name, locale, channel):
    without = render(name, locale, channel, coupon_variables(currency="EUR"))
    assert render(name, locale, channel, coupon_variables(currency="EUR", coupon_min_cart="")) == without
    with_minimum = render(name, locale, channel, coupon_variables(currency="EUR", coupon_min_cart="50.00"))
    assert with_minimum.subject == without.subject  # the subject line stays short
    assert len(with_minimum.body) > len(without.body) and "50.00" not in without.body


@pytest.mark.parametrize("locale", LOCALES)
def test_a_minimum_order_without_a_currency_is_the_bare_amount(locale):
    body = render("reactivation", locale, Channel.SMS, coupon_variables(coupon_min_cart="120.00")).body
    assert AT_LEAST[locale].format("120.00") in body


@given(minor=st.integers(min_value=1, max_value=10**9), currency=st.sampled_from(["EUR", "PLN", "ILS", "BYN", ""]),
       locale=st.sampled_from(LOCALES), name=st.sampled_from(COUPON_TEMPLATES))
@settings(max_examples=150, deadline=None)
def test_any_minimum_the_engine_issues_reads_back_from_every_text(minor, currency, locale, name):
    shown = coupons.amount(minor)
    for channel in templates._COMPILED[name][locale]:
        body = render(name, locale, channel, coupon_variables(coupon_min_cart=shown, currency=currency)).body
        assert AT_LEAST[locale].format(f"{shown} {currency}".strip()) in body


@pytest.mark.parametrize("name", ["birthday_greeting", "whatsapp_welcome", "flash_sale"])
def test_the_approved_whatsapp_templates_keep_their_fixed_parameters(name):
    # Meta approved each text with a fixed number of placeholders: an optional minimum cannot be one of them.
    plain = templates.whatsapp_template(name, "nl", coupon_variables())
    assert templates.whatsapp_template(name, "nl", coupon_variables(coupon_min_cart="50.00")) == plain
    assert "coupon_min_cart" not in templates._WHATSAPP[name][1]
