import pytest

from connectors.errors import ConnectorError, WebhookPayloadError
from connectors.webhooks.twilio_status import TwilioStatus, outcome_status, parse_status_callback

SID = "SM" + "0f" * 16


@pytest.mark.parametrize("twilio_status", ["queued", "accepted", "scheduled", "sending"])
def test_in_flight_statuses_are_not_reported(twilio_status):
    assert outcome_status(twilio_status) is None


@pytest.mark.parametrize("twilio_status, outcome", [
    ("sent", "sent"), ("delivered", "delivered"), ("read", "read"),
    ("undelivered", "undelivered"), ("failed", "failed"), ("canceled", "failed"),
])
def test_terminal_and_progress_statuses_map_to_our_outcomes(twilio_status, outcome):
    assert outcome_status(twilio_status) == outcome


def test_unknown_status_is_a_webhook_payload_error_and_a_value_error():
    with pytest.raises(WebhookPayloadError) as info:
        outcome_status("teleported")
    assert isinstance(info.value, ValueError) and isinstance(info.value, ConnectorError)


def test_parse_reads_sid_status_and_error_code():
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30005", "To": "+15005550005"}
    assert parse_status_callback(form) == TwilioStatus(SID, "undelivered", "30005")


def test_parse_without_error_code_gives_none_and_accepts_legacy_names():
    assert parse_status_callback({"SmsSid": SID, "SmsStatus": "delivered", "ErrorCode": ""}) == TwilioStatus(
        SID, "delivered", None)


@pytest.mark.parametrize("form", [
    {"MessageStatus": "delivered"},
    {"MessageSid": SID},
    {"MessageSid": "SM../../etc", "MessageStatus": "delivered"},
    {"MessageSid": SID, "MessageStatus": "teleported"},
])
def test_malformed_callbacks_are_rejected(form):
    with pytest.raises(WebhookPayloadError):
        parse_status_callback(form)
