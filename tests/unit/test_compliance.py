"""Marketing SMS as sent: the store named, the opt-out line in the customer's language, counted in the cost."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from schemas.codec import encode
from schemas.customers import ConsentState
from schemas.types import Channel, Purpose
from streams import compliance, consent, core, keywords, policy, sms
from streams.clock import VirtualClock
from streams.stores import StoreConfig, StoreDirectory
from streams.templates import SAMPLE_VARIABLES, buttons, template_locales
from tests import factories as f
from tests.unit.test_core import NO_QUIET, NOW, context

MARKETING_SMS = ("cart_reminder", "flash_sale")


def consents(*slots: tuple[Channel, Purpose]) -> dict:
    found: dict = {}
    for channel, purpose in slots:
        found = consent.fold(found, f.consent("c1", channel, ConsentState.OPTED_IN, purpose))
    return found


def sms_body(template: str, locale: str, purpose: Purpose = Purpose.MARKETING, store: StoreConfig | None = None,
             notice: bool = True):
    person = f.profile("c1", locale=locale, channel_preferences=[Channel.SMS])
    intent = f.intent("c1", template=template, purpose=purpose, channels=[Channel.SMS],
                      variables=dict(SAMPLE_VARIABLES))
    decision = policy.decide(intent, person, consents((Channel.SMS, Purpose.TRANSACTIONAL), (Channel.SMS, purpose)),
                             NOW, store=store or StoreConfig(name="Sklep Ani"), opt_out_notice=notice)
    assert isinstance(decision, policy.Send), decision
    return decision.command


@pytest.mark.parametrize("template,locale", [(t, loc) for t in MARKETING_SMS for loc in template_locales(t)])
def test_every_marketing_sms_names_the_store_and_ends_with_the_opt_out_line_in_its_language(template, locale):
    command = sms_body(template, locale)
    assert command.body.startswith("Sklep Ani: ")
    assert command.body.endswith("\n" + compliance.opt_out_line(locale))
    assert command.sms.segments == sms.segment(command.body).segments  # the line is paid for
    assert command.locale == locale


@pytest.mark.parametrize("locale", sorted(compliance.OPT_OUT_LINES))
def test_each_opt_out_line_names_a_keyword_that_opts_out_at_every_store(locale):
    words = re.findall(r"\w+", compliance.OPT_OUT_LINES[locale])
    assert any(keywords.classify(word) == keywords.Keyword.OPT_OUT for word in words)


def test_a_transactional_sms_is_left_as_written():
    command = sms_body("shipping_update", "pl", purpose=Purpose.TRANSACTIONAL)
    assert not command.body.startswith("Sklep Ani") and compliance.opt_out_line("pl") not in command.body


def test_a_store_without_a_name_is_named_by_its_id():
    assert sms_body("cart_reminder", "nl", store=StoreConfig()).body.startswith("store-1: ")


def test_first_in_conversation_puts_the_line_on_the_first_marketing_sms_of_each_30_days():
    stores = StoreDirectory({**NO_QUIET, "frequency_caps": {"enabled": False}},
                            {"store-1": {"name": "Sklep Ani", "sms_opt_out": "first_in_conversation"}})
    person = f.profile("c1", locale="pl", channel_preferences=[Channel.SMS])
    state = core.CustomerState("c1").with_profile(person, encode(person))
    state = state.updated(consents=consents((Channel.SMS, Purpose.TRANSACTIONAL), (Channel.SMS, Purpose.MARKETING)))

    def send(at: dt.datetime) -> tuple[core.CustomerState, str]:
        intent = f.intent("c1", template="cart_reminder", purpose=Purpose.MARKETING, channels=[Channel.SMS],
                          variables={"cart_url": "https://shop.example/cart/1"}, created_at=at)
        done = core.step(state, core.IntentInput(intent, encode(intent)), context(VirtualClock(at), stores=stores))
        [sent] = [e for e in done.effects if isinstance(e, core.Send)]
        return done.state, sent.command.body

    line = compliance.opt_out_line("pl")
    state, first = send(NOW)
    state, second = send(NOW + dt.timedelta(days=3))
    state, next_month = send(NOW + dt.timedelta(days=31))
    assert line in first and line not in second and line in next_month
    assert all(body.startswith("Sklep Ani: ") for body in (first, second, next_month))


# --- quick replies ---------------------------------------------------------------------------------------

def whatsapp_command(template: str, locale: str, window_open: bool):
    person = f.profile("c1", locale=locale, channel_preferences=[Channel.WHATSAPP])
    intent = f.intent("c1", template=template, purpose=Purpose.TRANSACTIONAL, channels=[Channel.WHATSAPP])
    last_inbound = {"whatsapp": compliance.epoch_ms(NOW - dt.timedelta(hours=1))} if window_open else None
    decision = policy.decide(intent, person, consents((Channel.WHATSAPP, Purpose.TRANSACTIONAL)), NOW,
                             last_inbound=last_inbound)
    assert isinstance(decision, policy.Send), decision
    return decision.command


@pytest.mark.parametrize("locale", template_locales("what_went_wrong"))
def test_a_question_inside_the_whatsapp_window_offers_its_answers_as_buttons(locale):
    command = whatsapp_command("what_went_wrong", locale, window_open=True)
    assert [b.payload for b in command.buttons] == ["shipping", "quality", "service"]
    assert all(b.title in command.body for b in command.buttons)  # typing the answer still works


def test_a_yes_no_question_offers_yes_and_no_and_an_sms_offers_none():
    assert [b.payload for b in whatsapp_command("talk_to_agent", "en", window_open=True).buttons] == ["yes", "no"]
    assert sms_body("talk_to_agent", "en", purpose=Purpose.TRANSACTIONAL).buttons == []


@pytest.mark.parametrize("template", ["what_went_wrong", "talk_to_agent"])
def test_no_button_title_or_payload_is_an_opt_out_word(template):
    """A press arrives as a reply: a button named like an opt-out word would unsubscribe the customer (a Yes
    is what typing it is: the YES keyword, which only restores what a STOP withdrew)."""
    for locale in template_locales(template):
        for payload, title in buttons(template, locale):
            assert keywords.Keyword.OPT_OUT not in (keywords.classify(title), keywords.classify(payload)), title
