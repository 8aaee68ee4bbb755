import dataclasses

import pytest

from connectors.errors import WebhookPayloadError
from connectors.webhooks.twilio_inbound import TwilioInbound, parse_inbound

SID = "SM" + "ab" * 16
CUSTOMER = "+48601234567"
OURS = "+15005550006"
FORM = {"MessageSid": SID, "SmsMessageSid": SID, "SmsSid": SID, "AccountSid": "AC" + "0" * 32,
        "From": CUSTOMER, "To": OURS, "Body": "STOP", "NumMedia": "0", "NumSegments": "1",
        "SmsStatus": "received", "ApiVersion": "2010-04-01"}


def test_full_twilio_form_is_parsed():
    assert parse_inbound(FORM) == TwilioInbound(provider_message_id=SID, from_number=CUSTOMER, to_number=OURS,
                                                text="STOP")


def test_body_is_kept_verbatim_including_unicode_and_whitespace():
    assert parse_inbound({**FORM, "Body": "  Stop, dziękuję 🙏\n"}).text == "  Stop, dziękuję 🙏\n"


def test_missing_body_is_empty_text_like_a_picture_only_mms():
    form = {k: v for k, v in FORM.items() if k != "Body"}
    assert parse_inbound({**form, "NumMedia": "1"}).text == ""


def test_missing_to_is_none_and_numbers_are_trimmed():
    form = {k: v for k, v in FORM.items() if k != "To"}
    parsed = parse_inbound({**form, "From": f" {CUSTOMER} "})
    assert parsed.to_number is None and parsed.from_number == CUSTOMER


def test_legacy_sms_sid_names_are_accepted():
    form = {k: v for k, v in FORM.items() if k != "MessageSid"}
    assert parse_inbound(form).provider_message_id == SID
    assert parse_inbound({"SmsSid": SID, "From": CUSTOMER}).provider_message_id == SID


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_missing_sid_or_from_is_a_payload_error(missing):
    form = {k: v for k, v in FORM.items() if k not in (missing, "SmsMessageSid", "SmsSid")}
    with pytest.raises(WebhookPayloadError, match=missing):
        parse_inbound(form)


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_sid_or_from_is_a_payload_error(value):
    with pytest.raises(WebhookPayloadError):
        parse_inbound({"MessageSid": value, "From": CUSTOMER})
    with pytest.raises(WebhookPayloadError):
        parse_inbound({**FORM, "From": value})


@pytest.mark.parametrize("sid", ["SM../../etc", "SM" + "a" * 63, "SMé" + "a" * 10])
def test_malformed_sid_is_a_payload_error(sid):
    with pytest.raises(WebhookPayloadError, match="malformed"):
        parse_inbound({**FORM, "MessageSid": sid})


def test_payload_error_is_a_value_error_and_never_echoes_the_number():
    with pytest.raises(ValueError) as info:
        parse_inbound({"From": CUSTOMER, "Body": "STOP"})
    assert CUSTOMER not in str(info.value) and "STOP" not in str(info.value)


def test_repr_hides_numbers_and_text():
    parsed = parse_inbound({**FORM, "Body": "call me on +48601234567"})
    text = repr(parsed)
    assert CUSTOMER not in text and OURS not in text and "call me" not in text
    assert SID in text and "23 chars" in text


def test_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_inbound(FORM).text = "START"  # type: ignore[misc]
