"""Replies: STOP withdraws consent at once with proof, START gives it back, HELP gets the help text."""

from __future__ import annotations

import pytest

from schemas.customers import ConsentSource, ConsentState
from schemas.messages import InboundMessage
from schemas.types import Channel, Purpose
from streams.replies import actions_for
from tests import factories as f


def reply(text: str, channel: Channel = Channel.SMS) -> InboundMessage:
    return InboundMessage(inbound_id="in-1", customer_id="c-1", store_id="store-1", channel=channel,
                          provider="twilio", provider_message_id="SM" + "a" * 32, text=text, received_at=f.NOW)


@pytest.mark.parametrize("text", ["STOP", "stop.", "הסר", "СТОП", "Uitschrijven", "opt out"])
def test_an_opt_out_word_withdraws_both_purposes_on_that_channel_with_the_reply_as_proof(text: str) -> None:
    changes = actions_for(reply(text, Channel.WHATSAPP), "en").consent_changes
    assert {(c.channel, c.purpose, c.state) for c in changes} == {
        (Channel.WHATSAPP, Purpose.TRANSACTIONAL, ConsentState.OPTED_OUT),
        (Channel.WHATSAPP, Purpose.MARKETING, ConsentState.OPTED_OUT)}
    assert all(c.source == ConsentSource.KEYWORD and c.evidence.inbound_message_id == "SM" + "a" * 32
               and c.occurred_at == f.NOW for c in changes)


def test_start_gives_consent_back() -> None:
    changes = actions_for(reply("START"), "en").consent_changes
    assert {c.state for c in changes} == {ConsentState.OPTED_IN}


def test_the_same_reply_always_yields_the_same_change_ids() -> None:
    assert [c.change_id for c in actions_for(reply("STOP"), "en").consent_changes] == [
        c.change_id for c in actions_for(reply("STOP"), "en").consent_changes]


def test_help_gets_the_help_text_in_the_customers_language_on_the_same_channel() -> None:
    [intent] = actions_for(reply("POMOC"), "pl").intents
    assert intent.template == "help_reply" and intent.channels == [Channel.SMS]
    assert "STOP" in intent.variables["help_text"] and "zrezygnować" in intent.variables["help_text"]


def test_an_ordinary_reply_does_nothing() -> None:
    actions = actions_for(reply("Where is my parcel? Please stop by tomorrow"), "en")
    assert actions.consent_changes == [] and actions.intents == []
