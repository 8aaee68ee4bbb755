"""Specs for streams.policy.decide: (intent, profile, consents, now) -> Send or Suppress.

Channel choice: the template's channels, in the customer's order of preference, kept only where
consent for the purpose and a contact point exist. Marketing needs an explicit opt-in on that
channel; transactional only needs the customer not to have opted out of it.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.customers import ConsentState, CustomerProfile
from schemas.messages import OutcomeReason
from schemas.types import Channel, Purpose
from streams import sms
from streams.consent import fold, state_of
from streams import policy
from streams.policy import PolicyConfig, Send, Suppress, decide
from streams.triggers import intents_for
from tests import factories as f

SMS, WHATSAPP, EMAIL = Channel.SMS, Channel.WHATSAPP, Channel.EMAIL
TRANSACTIONAL, MARKETING = Purpose.TRANSACTIONAL, Purpose.MARKETING
IN, OUT, PENDING, UNKNOWN = ConsentState.OPTED_IN, ConsentState.OPTED_OUT, ConsentState.PENDING, ConsentState.UNKNOWN
NOW = f.NOW + dt.timedelta(seconds=1)
VARIABLES = {"order_id": "1001", "tracking_url": "https://track.example/1001", "carrier": "InPost"}


def intent(**overrides):
    return f.intent("cust-1", **{"variables": VARIABLES, **overrides})


def profile(**overrides) -> CustomerProfile:
    return f.profile("cust-1", **overrides)


def consents(*slots: tuple[Channel, Purpose, ConsentState]) -> dict:
    state = None
    for channel, purpose, consent_state in slots:
        state = fold(state, f.consent("cust-1", channel, consent_state, purpose))
    return state or {}


def sent(decision) -> object:
    assert isinstance(decision, Send), decision
    return decision.command


def suppressed(decision) -> OutcomeReason:
    assert isinstance(decision, Suppress), decision
    return decision.reason


# --- choosing the channel ------------------------------------------------------------------


def test_sms_preferred_and_a_phone_sends_by_sms_with_the_rest_as_fallback():
    command = sent(decide(intent(), profile(channel_preferences=[SMS]), None, NOW))
    assert command.channel == SMS and command.to == "+48601234567"
    assert command.fallback_channels == [WHATSAPP, EMAIL]


def test_the_customers_order_of_preference_comes_first_then_the_templates_order():
    command = sent(decide(intent(), profile(channel_preferences=[EMAIL, WHATSAPP]), None, NOW))
    assert [command.channel, *command.fallback_channels] == [EMAIL, WHATSAPP, SMS]


def test_a_channel_the_template_does_not_offer_is_never_chosen():
    command = sent(decide(intent(channels=[EMAIL]), profile(channel_preferences=[SMS, WHATSAPP]), None, NOW))
    assert command.channel == EMAIL and command.fallback_channels == []


def test_transactional_messages_go_out_while_consent_is_unknown():
    assert sent(decide(intent(purpose=TRANSACTIONAL), profile(), None, NOW)).channel == SMS


def test_transactional_skips_a_channel_the_customer_opted_out_of():
    state = consents((SMS, TRANSACTIONAL, OUT))
    command = sent(decide(intent(), profile(channel_preferences=[SMS]), state, NOW))
    assert command.channel == WHATSAPP and command.fallback_channels == [EMAIL]


def test_a_marketing_opt_out_does_not_block_transactional_messages():
    state = consents((SMS, MARKETING, OUT))
    assert sent(decide(intent(purpose=TRANSACTIONAL), profile(), state, NOW)).channel == SMS


def test_opted_out_everywhere_is_suppressed_as_opted_out():
    state = consents(*((c, TRANSACTIONAL, OUT) for c in Channel))
    assert suppressed(decide(intent(), profile(), state, NOW)) == OutcomeReason.OPTED_OUT


def test_no_profile_is_no_contact_point():
    assert suppressed(decide(intent(), None, None, NOW)) == OutcomeReason.NO_CONTACT_POINT


def test_a_profile_without_contact_points_is_no_contact_point():
    bare = profile(phone=None, whatsapp=None, email=None)
    assert suppressed(decide(intent(), bare, None, NOW)) == OutcomeReason.NO_CONTACT_POINT


def test_a_template_with_no_channels_is_no_channel():
    assert suppressed(decide(intent(channels=[]), profile(), None, NOW)) == OutcomeReason.NO_CHANNEL


def test_a_channel_without_its_contact_point_is_skipped():
    command = sent(decide(intent(), profile(phone=None, whatsapp=None, channel_preferences=[SMS]), None, NOW))
    assert command.channel == EMAIL and command.fallback_channels == []


# --- marketing needs an explicit opt-in ---------------------------------------------------------


def test_marketing_needs_an_explicit_opt_in():
    assert suppressed(decide(intent(purpose=MARKETING), profile(), None, NOW)) == OutcomeReason.NO_CONSENT


def test_marketing_with_a_transactional_opt_in_only_is_still_no_consent():
    state = consents(*((c, TRANSACTIONAL, IN) for c in Channel))
    assert suppressed(decide(intent(purpose=MARKETING), profile(), state, NOW)) == OutcomeReason.NO_CONSENT


def test_marketing_awaiting_double_opt_in_is_pending_confirmation():
    state = consents((SMS, MARKETING, PENDING))
    assert suppressed(decide(intent(purpose=MARKETING), profile(), state, NOW)) == OutcomeReason.PENDING_CONFIRMATION


def test_marketing_goes_only_to_the_opted_in_channel():
    state = consents((SMS, MARKETING, IN), (WHATSAPP, MARKETING, PENDING))
    command = sent(decide(intent(purpose=MARKETING), profile(channel_preferences=[EMAIL]), state, NOW))
    assert command.channel == SMS and command.fallback_channels == []
    assert command.purpose == MARKETING


def test_when_nothing_is_left_the_most_telling_reason_wins():
    state = consents((SMS, MARKETING, PENDING), (WHATSAPP, MARKETING, OUT))
    assert suppressed(decide(intent(purpose=MARKETING), profile(), state, NOW)) == OutcomeReason.OPTED_OUT


# --- other suppressions ----------------------------------------------------------------------


@pytest.mark.parametrize("expires_at", [NOW, NOW - dt.timedelta(milliseconds=1)])
def test_an_intent_past_its_expiry_is_suppressed_as_expired(expires_at):
    assert suppressed(decide(intent(expires_at=expires_at), profile(), None, NOW)) == OutcomeReason.EXPIRED


def test_an_intent_before_its_expiry_is_sent_and_keeps_it():
    expires_at = NOW + dt.timedelta(milliseconds=1)
    assert sent(decide(intent(expires_at=expires_at), profile(), None, NOW)).expires_at == expires_at


def test_an_unknown_template_is_suppressed_as_unknown_template():
    decision = decide(intent(template="no_such_template"), profile(), None, NOW)
    assert suppressed(decision) == OutcomeReason.UNKNOWN_TEMPLATE


def test_a_template_missing_a_variable_is_suppressed_as_render_failed():
    decision = decide(intent(variables={"order_id": "1001", "carrier": "DHL"}), profile(), None, NOW)
    assert suppressed(decision) == OutcomeReason.RENDER_FAILED
    assert "+48601234567" not in decision.detail


def test_a_shipped_order_without_a_carrier_is_still_sent_in_english():
    order = f.shipped("cust-1").order.model_copy(update={"carrier": None})
    (shipping,) = intents_for(f.shipped("cust-1", order=order), f.NOW, f.NOW)
    assert sent(decide(shipping, profile(locale="en"), None, NOW)).channel == SMS


def test_repeated_preferences_do_not_put_the_chosen_channel_in_its_own_fallback():
    command = sent(decide(intent(), profile(channel_preferences=[SMS, SMS, EMAIL]), None, NOW))
    assert command.channel == SMS
    assert command.fallback_channels == [EMAIL, WHATSAPP]


# --- the command -----------------------------------------------------------------------------


def test_an_sms_command_carries_segments_encoding_and_cost():
    command = sent(decide(intent(), profile(locale="en"), None, NOW))
    assert command.sms.encoding == "GSM-7"
    assert command.sms.units == len(command.body) and command.sms.segments == 1
    assert (command.sms.cost_micros, command.sms.currency) == (35_000, "EUR")  # +48: Poland
    assert command.subject is None and command.locale == "en"


def test_a_hebrew_sms_is_ucs2_priced_for_israel():
    command = sent(decide(intent(), profile(locale="he", phone="+972501234567"), None, NOW))
    units = len(command.body.encode("utf-16-le")) // 2
    segments = 1 if units <= 70 else -(-units // 67)
    assert command.locale == "he" and "שלום" in command.body
    assert (command.sms.encoding, command.sms.units, command.sms.segments) == ("UCS-2", units, segments)
    assert (command.sms.cost_micros, command.sms.currency) == (segments * 150_000, "USD")


def test_sms_prices_come_from_the_config_when_given():
    config = PolicyConfig(sms_prices={"*": (1_000, "GBP")})
    command = sent(decide(intent(), profile(), None, NOW, config))
    assert (command.sms.cost_micros, command.sms.currency) == (command.sms.segments * 1_000, "GBP")


def test_an_email_command_has_a_subject_and_no_sms_info():
    command = sent(decide(intent(), profile(channel_preferences=[EMAIL]), None, NOW))
    assert command.to == "ana@example.com" and command.subject == "Your order #1001 is on its way"
    assert command.sms is None


def test_whatsapp_uses_the_whatsapp_number():
    command = sent(decide(intent(), profile(channel_preferences=[WHATSAPP], whatsapp="+31612345678"), None, NOW))
    assert (command.channel, command.to) == (WHATSAPP, "+31612345678")
    assert command.sms is None


def test_whatsapp_falls_back_to_the_phone_number():
    command = sent(decide(intent(), profile(channel_preferences=[WHATSAPP], whatsapp=None), None, NOW))
    assert (command.channel, command.to) == (WHATSAPP, "+48601234567")


def test_a_whatsapp_command_names_its_approved_template_and_parameters():
    command = sent(decide(intent(), profile(channel_preferences=[WHATSAPP], locale="pl-PL"), None, NOW))
    ref = command.whatsapp_template
    assert (ref.name, ref.language, ref.category) == ("shipping_update", "pl", "utility")
    assert ref.parameters == ["Ana", "1001", "https://track.example/1001"]


def test_the_command_is_created_now_and_keeps_the_intents_identity():
    the_intent = intent()
    command = sent(decide(the_intent, profile(), None, NOW))
    assert command.created_at == NOW
    assert (command.message_id, command.customer_id, command.store_id, command.template) == (
        the_intent.message_id, the_intent.customer_id, the_intent.store_id, the_intent.template)
    assert (command.trigger_event_id, command.trigger_received_at) == (
        the_intent.trigger_event_id, the_intent.trigger_received_at)


def test_the_body_greets_the_customer_by_first_name_in_their_language():
    command = sent(decide(intent(), profile(locale="pl", first_name="Ola"), None, NOW))
    assert command.body.startswith("Cześć Ola!") and "1001" in command.body


# --- properties over random customers ----------------------------------------------------------

LOCALES = ["en", "he", "nl", "pl", "be", "pl-PL", "he-IL", "xx"]
SLOTS = list(itertools.product(Channel, Purpose))


def contact_of(customer: CustomerProfile, channel: Channel) -> str | None:
    """Independent oracle: where each channel reaches the customer."""
    return {SMS: customer.phone, WHATSAPP: customer.whatsapp or customer.phone, EMAIL: customer.email}[channel]


def allowed(state: ConsentState, purpose: Purpose) -> bool:
    return state == IN if purpose == MARKETING else state != OUT


@st.composite
def customers(draw) -> CustomerProfile:
    return profile(
        phone=draw(st.none() | st.just("+48601234567")),
        whatsapp=draw(st.none() | st.just("+31612345678")),
        email=draw(st.none() | st.just("ana@example.com")),
        first_name=draw(st.none() | st.sampled_from(["Ana", "דנה", "Аня"])),
        locale=draw(st.sampled_from(LOCALES)),
        channel_preferences=draw(st.lists(st.sampled_from(Channel), unique=True)),
    )


@st.composite
def consent_maps(draw) -> dict | None:
    """Random states per channel x purpose, written as a ledger of changes and folded."""
    changes = draw(st.lists(st.tuples(st.sampled_from(SLOTS), st.sampled_from(ConsentState),
                                      st.integers(0, 10_000)), max_size=12))
    state = None
    for (channel, purpose), consent_state, ms in changes:
        state = fold(state, f.consent("cust-1", channel, consent_state, purpose,
                                      at=f.NOW - dt.timedelta(milliseconds=ms)))
    return state


@st.composite
def intents(draw):
    return intent(purpose=draw(st.sampled_from(Purpose)),
                  channels=draw(st.lists(st.sampled_from(Channel), unique=True)))


def expected_channels(the_intent, customer, state) -> list[Channel]:
    """Independent oracle of decide's channel order."""
    offered = [Channel(c) for c in the_intent.channels]
    preferred = [Channel(c) for c in customer.channel_preferences if Channel(c) in offered]
    ordered = preferred + [c for c in offered if c not in preferred]
    return [c for c in ordered
            if allowed(state_of(state, c, the_intent.purpose), Purpose(the_intent.purpose))
            and contact_of(customer, c) is not None]


@settings(max_examples=200)
@given(the_intent=intents(), customer=customers(), state=consent_maps())
def test_every_send_obeys_consent_contact_points_and_the_template(the_intent, customer, state):
    decision = decide(the_intent, customer, state, NOW)
    if isinstance(decision, Suppress):
        return
    command = decision.command
    chain = [Channel(command.channel), *map(Channel, command.fallback_channels)]
    assert Channel(command.channel) not in map(Channel, command.fallback_channels)
    assert len(set(chain)) == len(chain)
    for channel in chain:
        consent = state_of(state, channel, the_intent.purpose)
        assert consent != OUT
        if the_intent.purpose == MARKETING:
            assert consent == IN
        assert contact_of(customer, channel) is not None
        assert channel in the_intent.channels
    assert command.to == contact_of(customer, Channel(command.channel))


@settings(max_examples=200)
@given(the_intent=intents(), customer=customers(), state=consent_maps())
def test_decide_sends_exactly_when_a_channel_is_eligible_and_in_preference_order(the_intent, customer, state):
    expected = expected_channels(the_intent, customer, state)
    decision = decide(the_intent, customer, state, NOW)
    if not expected:
        assert isinstance(decision, Suppress)
        assert decision.reason != OutcomeReason.RENDER_FAILED
    else:
        command = sent(decision)
        assert [command.channel, *command.fallback_channels] == expected


@settings(max_examples=100)
@given(the_intent=intents(), customer=customers(), state=consent_maps())
def test_decide_is_deterministic(the_intent, customer, state):
    assert decide(the_intent, customer, state, NOW) == decide(the_intent, customer, state, NOW)


@settings(max_examples=100)
@given(customer=customers(), state=consent_maps())
def test_a_marketing_opt_in_on_a_reachable_offered_channel_is_always_sent(customer, state):
    channel = next((c for c in Channel if contact_of(customer, c) is not None), None)
    if channel is None:
        return
    state = fold(state, f.consent("cust-1", channel, IN, MARKETING, at=f.NOW + dt.timedelta(seconds=1)))
    command = sent(decide(intent(purpose=MARKETING, channels=[channel]), customer, state, NOW))
    assert command.channel == channel


def test_the_sms_info_matches_the_sms_module():
    command = sent(decide(intent(), profile(locale="nl"), None, NOW))
    info = sms.segment(command.body)
    assert (command.sms.encoding, command.sms.units, command.sms.segments) == (
        info.encoding, info.units, info.segments)


# --- the WhatsApp 24-hour window -------------------------------------------------------------------

def _whatsapp_first(**overrides):
    return f.profile(channel_preferences=[Channel.WHATSAPP, Channel.SMS], **overrides)


def test_outside_the_window_whatsapp_goes_as_the_approved_template() -> None:
    p = _whatsapp_first()
    decision = policy.decide(f.intent(p.customer_id), p, None, f.NOW)
    assert decision.command.channel == Channel.WHATSAPP
    assert decision.command.whatsapp_template.name == "shipping_update"


def test_inside_the_window_whatsapp_goes_as_free_text() -> None:
    p = _whatsapp_first()
    wrote = int((f.NOW - dt.timedelta(hours=23)).timestamp() * 1000)
    decision = policy.decide(f.intent(p.customer_id), p, None, f.NOW, last_inbound={"whatsapp": wrote})
    assert decision.command.channel == Channel.WHATSAPP and decision.command.whatsapp_template is None


def test_a_window_older_than_24_hours_is_closed() -> None:
    p = _whatsapp_first()
    wrote = int((f.NOW - dt.timedelta(hours=24, seconds=1)).timestamp() * 1000)
    decision = policy.decide(f.intent(p.customer_id), p, None, f.NOW, last_inbound={"whatsapp": wrote})
    assert decision.command.whatsapp_template is not None


def test_without_an_approved_template_whatsapp_is_skipped_outside_the_window(monkeypatch) -> None:
    monkeypatch.setattr(policy, "has_whatsapp_template", lambda name: False)
    monkeypatch.setattr(policy, "whatsapp_template", lambda *a: pytest.fail("no template may be used"))
    p = _whatsapp_first()
    decision = policy.decide(f.intent(p.customer_id), p, None, f.NOW)
    assert decision.command.channel == Channel.SMS and Channel.WHATSAPP not in decision.command.fallback_channels


def test_whatsapp_only_without_window_or_template_is_suppressed_for_want_of_a_channel(monkeypatch) -> None:
    monkeypatch.setattr(policy, "has_whatsapp_template", lambda name: False)
    p = f.profile(channel_preferences=[Channel.WHATSAPP])
    decision = policy.decide(f.intent(p.customer_id, channels=[Channel.WHATSAPP]), p, None, f.NOW)
    assert decision == policy.Suppress(OutcomeReason.NO_CHANNEL, decision.detail)


def test_smart_encoding_keeps_a_curly_quoted_sms_in_gsm7_when_the_store_allows_it(monkeypatch) -> None:
    p = f.profile()
    intent = f.intent(p.customer_id, variables={"order_id": "“1001”", "tracking_url": "https://t.example/1"})
    plain = decide(intent, p, None, f.NOW)
    smart = decide(intent, p, None, f.NOW, PolicyConfig(smart_encoding=True))
    assert plain.command.sms.encoding == "UCS-2" and "“1001”" in plain.command.body
    assert smart.command.sms.encoding == "GSM-7" and '"1001"' in smart.command.body


def test_smart_encoding_never_touches_text_that_needs_ucs2_anyway() -> None:
    p = f.profile(locale="he")
    intent = f.intent(p.customer_id, variables={"order_id": "“1001”", "tracking_url": "https://t.example/1"})
    smart = decide(intent, p, None, f.NOW, PolicyConfig(smart_encoding=True))
    assert smart.command.sms.encoding == "UCS-2" and "“1001”" in smart.command.body


def test_every_command_carries_its_estimated_cost() -> None:
    sms_first = f.profile(channel_preferences=[Channel.SMS])
    whatsapp_first = f.profile(channel_preferences=[Channel.WHATSAPP])
    email_first = f.profile(channel_preferences=[Channel.EMAIL])
    sms_cmd = decide(f.intent(sms_first.customer_id), sms_first, None, f.NOW).command
    wa_cmd = decide(f.intent(whatsapp_first.customer_id), whatsapp_first, None, f.NOW).command
    wrote = int(f.NOW.timestamp() * 1000)
    wa_reply = decide(f.intent(whatsapp_first.customer_id), whatsapp_first, None, f.NOW,
                      last_inbound={"whatsapp": wrote}).command
    email_cmd = decide(f.intent(email_first.customer_id), email_first, None, f.NOW).command
    assert (sms_cmd.cost_micros, sms_cmd.currency) == (sms_cmd.sms.cost_micros, sms_cmd.sms.currency)
    assert (wa_cmd.cost_micros, wa_cmd.currency) == (26_500, "USD")  # a utility template to a Polish number
    assert wa_reply.cost_micros == 0  # a service reply inside the window is free
    assert email_cmd.cost_micros is None
