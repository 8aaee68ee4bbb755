"""Specs for double opt-in (streams.double_opt_in) and its reply path (streams.replies).

Where the store asks for it, an SMS/WhatsApp marketing opt-in from a checkbox, an import or the API
is recorded as pending (its proof kept) and one confirmation goes out on that channel; the customer's
YES then records opted_in with the reply as proof. A STOP still opts out at once.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.customers import ConsentEvidence, ConsentSource, ConsentState
from schemas.messages import InboundMessage
from schemas.types import Channel, Purpose
from streams import double_opt_in
from streams.consent import fold, state_of
from streams.double_opt_in import as_pending, confirmation, needs_confirmation
from streams.keywords import YES_WORDS
from streams.policy import Send, decide
from streams.replies import actions_for
from streams.stores import StoreConfig
from tests import factories as f

SMS, WHATSAPP, EMAIL = Channel.SMS, Channel.WHATSAPP, Channel.EMAIL
MARKETING, TRANSACTIONAL = Purpose.MARKETING, Purpose.TRANSACTIONAL
IN, OUT, PENDING, UNKNOWN = ConsentState.OPTED_IN, ConsentState.OPTED_OUT, ConsentState.PENDING, ConsentState.UNKNOWN
CUSTOMER = "cust-1"
DOI = StoreConfig.model_validate({"double_opt_in": True})
NO_DOI = StoreConfig.model_validate({})
HANDSET = {ConsentSource.KEYWORD, ConsentSource.DOUBLE_OPT_IN}
PROVIDER_ID = "SM" + "b" * 32


def opt_in(channel: Channel = SMS, purpose: Purpose = MARKETING, source: ConsentSource = ConsentSource.CHECKOUT,
           **overrides):
    evidence = ConsentEvidence(ip="203.0.113.7", user_agent="Mozilla/5.0", disclosure_text="Send me offers",
                               disclosure_version="v3")
    return f.consent(CUSTOMER, channel, IN, purpose, source=source, evidence=evidence, **overrides)


def current(*slots: tuple[Channel, Purpose, ConsentState]) -> dict | None:
    state = None
    for channel, purpose, consent_state in slots:
        state = fold(state, f.consent(CUSTOMER, channel, consent_state, purpose,
                                      at=f.NOW - dt.timedelta(days=1)))
    return state


def reply(text: str, channel: Channel = SMS) -> InboundMessage:
    return InboundMessage(inbound_id="in-1", customer_id=CUSTOMER, store_id="store-1", channel=channel,
                          provider="twilio", provider_message_id=PROVIDER_ID, text=text,
                          received_at=f.NOW + dt.timedelta(minutes=5))


# --- needs_confirmation --------------------------------------------------------------------------


def test_a_checkout_marketing_opt_in_by_sms_needs_confirmation_where_the_store_asks_for_it():
    assert needs_confirmation(opt_in(), None, DOI)
    assert needs_confirmation(opt_in(WHATSAPP), None, DOI)
    assert not needs_confirmation(opt_in(), None, NO_DOI)


def test_only_the_stores_double_opt_in_channels_are_confirmed():
    assert not needs_confirmation(opt_in(EMAIL), None, DOI)
    sms_only = StoreConfig.model_validate({"double_opt_in": True, "double_opt_in_channels": ["sms"]})
    assert needs_confirmation(opt_in(SMS), None, sms_only) and not needs_confirmation(opt_in(WHATSAPP), None, sms_only)


def test_transactional_opt_ins_and_opt_outs_never_need_confirmation():
    assert not needs_confirmation(opt_in(purpose=TRANSACTIONAL), None, DOI)
    assert not needs_confirmation(f.consent(CUSTOMER, SMS, OUT, MARKETING), None, DOI)
    assert not needs_confirmation(f.consent(CUSTOMER, SMS, PENDING, MARKETING), None, DOI)


@pytest.mark.parametrize("source", sorted(HANDSET))
def test_an_opt_in_sent_from_the_handset_itself_needs_no_confirmation(source):
    assert not needs_confirmation(opt_in(source=source), None, DOI)


@pytest.mark.parametrize("source", sorted(set(ConsentSource) - HANDSET))
def test_every_other_source_needs_confirmation(source):
    assert needs_confirmation(opt_in(source=source), None, DOI)


def test_a_customer_already_opted_in_is_not_asked_again():
    assert not needs_confirmation(opt_in(), current((SMS, MARKETING, IN)), DOI)
    assert needs_confirmation(opt_in(), current((WHATSAPP, MARKETING, IN)), DOI)  # another channel
    assert needs_confirmation(opt_in(), current((SMS, TRANSACTIONAL, IN)), DOI)  # another purpose
    for earlier in (OUT, PENDING, UNKNOWN):
        assert needs_confirmation(opt_in(), current((SMS, MARKETING, earlier)), DOI)


@settings(max_examples=300)
@given(channel=st.sampled_from(Channel), purpose=st.sampled_from(Purpose), state=st.sampled_from(ConsentState),
       source=st.sampled_from(ConsentSource), before=st.sampled_from(ConsentState), store_doi=st.booleans(),
       doi_channels=st.lists(st.sampled_from(Channel), unique=True))
def test_needs_confirmation_exactly_when_every_condition_holds(channel, purpose, state, source, before, store_doi,
                                                               doi_channels):
    the_store = StoreConfig.model_validate({"double_opt_in": store_doi, "double_opt_in_channels": doi_channels})
    change = f.consent(CUSTOMER, channel, state, purpose, source=source)
    existing = current((channel, purpose, before))
    expected = (store_doi and channel in doi_channels and purpose == MARKETING and state == IN
                and source not in HANDSET and before != IN)
    assert needs_confirmation(change, existing, the_store) == expected


# --- pending and the confirmation message ----------------------------------------------------------


def test_as_pending_keeps_the_proof_and_changes_only_the_state():
    change = opt_in()
    pending = as_pending(change)
    assert pending.state == PENDING and change.state == IN
    assert pending.model_dump(exclude={"state"}) == change.model_dump(exclude={"state"})
    assert pending.evidence.ip == "203.0.113.7" and pending.evidence.disclosure_version == "v3"


def test_a_pending_marketing_subscription_gets_no_marketing():
    state = fold(None, as_pending(opt_in()))
    assert state_of(state, SMS, MARKETING) == PENDING
    cart = f.intent(CUSTOMER, template="cart_reminder", purpose=MARKETING, channels=[SMS],
                    variables={"cart_url": "https://shop.example/cart/1"})
    decision = decide(cart, f.profile(CUSTOMER), state, f.NOW)
    assert not isinstance(decision, Send)


def test_the_confirmation_is_one_transactional_message_on_the_opt_in_channel():
    for channel in (SMS, WHATSAPP):
        change = opt_in(channel)
        message = confirmation(change)
        assert message.template == double_opt_in.TEMPLATE == "optin_confirmation"
        assert message.purpose == TRANSACTIONAL and message.channels == [channel]
        assert (message.customer_id, message.store_id) == (change.customer_id, change.store_id)
        assert message.trigger_event_id == change.change_id
        assert message.trigger_received_at == message.created_at == change.occurred_at


def test_the_confirmations_id_derives_from_the_change_so_it_is_asked_once():
    change = opt_in()
    assert confirmation(change).message_id == confirmation(change.model_copy()).message_id
    assert confirmation(change).message_id != confirmation(opt_in()).message_id


def test_the_confirmation_can_be_sent_to_a_pending_customer_at_once():
    change = opt_in()
    state = fold(None, as_pending(change))
    decision = decide(confirmation(change), f.profile(CUSTOMER, locale="pl"), state, f.NOW)
    assert isinstance(decision, Send)
    assert decision.command.channel == SMS and "TAK" in decision.command.body


# --- the YES reply ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", [*YES_WORDS, "yes", "Yes!", " ja ", "Tak.", "да", "так"])
def test_yes_while_pending_confirms_the_marketing_subscription_with_the_reply_as_proof(word):
    the_reply = reply(word)
    [change] = actions_for(the_reply, "en", awaiting_confirmation=True).consent_changes
    assert (change.channel, change.purpose, change.state, change.source) == (
        SMS, MARKETING, IN, ConsentSource.DOUBLE_OPT_IN)
    assert change.evidence.inbound_message_id == PROVIDER_ID
    assert change.occurred_at == the_reply.received_at
    assert (change.customer_id, change.store_id) == (CUSTOMER, "store-1")
    assert actions_for(the_reply, "en", awaiting_confirmation=True).intents == []


def test_a_confirming_yes_needs_no_confirmation_itself():
    [change] = actions_for(reply("YES"), "en", awaiting_confirmation=True).consent_changes
    state = fold(None, as_pending(opt_in()))
    assert not needs_confirmation(change, state, DOI)
    assert state_of(fold(state, change), SMS, MARKETING) == IN


def test_yes_confirms_on_the_channel_it_came_on():
    [change] = actions_for(reply("כן", WHATSAPP), "he", awaiting_confirmation=True).consent_changes
    assert change.channel == WHATSAPP


def test_the_same_confirming_reply_always_yields_the_same_change():
    first = actions_for(reply("YES"), "en", awaiting_confirmation=True).consent_changes
    assert first == actions_for(reply("YES"), "en", awaiting_confirmation=True).consent_changes


@pytest.mark.parametrize("word", YES_WORDS)
def test_yes_after_an_opt_out_re_subscribes_what_was_withdrawn(word):
    current = fold(fold(None, f.consent("cust-1", SMS, OUT, MARKETING)), f.consent("cust-1", SMS, OUT, TRANSACTIONAL))
    changes = actions_for(reply(word), "en", current=current).consent_changes
    assert {(c.channel, c.purpose, c.state, c.source) for c in changes} == {
        (SMS, MARKETING, IN, ConsentSource.KEYWORD), (SMS, TRANSACTIONAL, IN, ConsentSource.KEYWORD)}
    assert all(c.evidence.inbound_message_id == PROVIDER_ID for c in changes)


@pytest.mark.parametrize("word", YES_WORDS)
def test_a_bare_yes_with_nothing_withdrawn_grants_no_consent(word):
    """A "yes" answering a journey's question ("talk to an agent?") is not a marketing opt-in."""
    assert actions_for(reply(word), "en").consent_changes == []
    only_transactional_out = fold(None, f.consent("cust-1", SMS, OUT, TRANSACTIONAL))
    changes = actions_for(reply(word), "en", current=only_transactional_out).consent_changes
    assert [(c.purpose, c.state) for c in changes] == [(TRANSACTIONAL, IN)]


@pytest.mark.parametrize("word", ["START", "unstop"])
def test_start_stays_an_ordinary_opt_in_even_while_pending(word):
    changes = actions_for(reply(word), "en", awaiting_confirmation=True).consent_changes
    assert {(c.purpose, c.state, c.source) for c in changes} == {
        (MARKETING, IN, ConsentSource.KEYWORD), (TRANSACTIONAL, IN, ConsentSource.KEYWORD)}


@pytest.mark.parametrize("word", ["STOP", "הסר", "СТОП", "nie"])
def test_stop_while_pending_opts_out_of_both_purposes(word):
    changes = actions_for(reply(word), "en", awaiting_confirmation=True).consent_changes
    assert {(c.channel, c.purpose, c.state, c.source) for c in changes} == {
        (SMS, MARKETING, OUT, ConsentSource.KEYWORD), (SMS, TRANSACTIONAL, OUT, ConsentSource.KEYWORD)}
    state = fold(None, as_pending(opt_in()))
    for change in changes:
        state = fold(state, change)
    assert state_of(state, SMS, MARKETING) == OUT


def test_free_text_while_pending_confirms_nothing():
    for text in ("yes please", "YES YES", "is this the shop?", ""):
        assert actions_for(reply(text), "en", awaiting_confirmation=True).consent_changes == []


def test_a_stores_extra_confirm_word_confirms_like_yes():
    config = StoreConfig.model_validate({"keywords": {"extra": {"confirm": ["OK"]}}}).keywords.config
    [change] = actions_for(reply("ok"), "en", config, awaiting_confirmation=True).consent_changes
    assert change.source == ConsentSource.DOUBLE_OPT_IN


def test_the_whole_flow_checkout_pending_yes_opted_in():
    change = opt_in()
    state = None
    assert needs_confirmation(change, state, DOI)
    state = fold(state, as_pending(change))
    pending = state_of(state, SMS, MARKETING) == PENDING
    for confirming in actions_for(reply("TAK"), "pl", awaiting_confirmation=pending).consent_changes:
        state = fold(state, confirming)
    assert state_of(state, SMS, MARKETING) == IN
    assert state_of(state, SMS, TRANSACTIONAL) == UNKNOWN  # the YES confirmed marketing only
    assert state[f"{SMS.value}:{MARKETING.value}"]["source"] == ConsentSource.DOUBLE_OPT_IN.value
