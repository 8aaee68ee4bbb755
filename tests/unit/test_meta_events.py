"""Payloads follow the shapes of Meta's webhook reference (status and messages webhooks)."""

import copy
import json

import pytest

from connectors.errors import ConnectorError, WebhookPayloadError
from connectors.webhooks.meta_events import (
    WhatsAppInbound,
    WhatsAppStatus,
    outcome_status,
    parse_batch,
    parse_webhook,
)

CUSTOMER = "972541234567"
WAMID_OUT = "wamid.HBgMOTcyNTQxMjM0NTY3FQIAERgSQzVGNEQ1QjA2QUQ3NDg1RTk5AA=="
WAMID_IN = "wamid.HBgMOTcyNTQxMjM0NTY3FQIAEhgUM0FBMjg4MUI4QjdEQUQ4RDlBMTcA"


def envelope(value, field="messages"):
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                      **value},
            "field": field,
        }]}],
    }


SENT = envelope({"statuses": [{
    "id": WAMID_OUT,
    "status": "sent",
    "timestamp": "1750263773",
    "recipient_id": CUSTOMER,
    "biz_opaque_callback_data": "send-7f3a",
    "conversation": {"id": "6ceb9d929c0d9d6b4dae4a3fd8ba0d2c", "expiration_timestamp": "1750350180",
                     "origin": {"type": "utility"}},
    "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"},
}]})

READ_WITHOUT_DELIVERED = envelope({"statuses": [{
    "id": WAMID_OUT, "status": "read", "timestamp": "1750263790", "recipient_id": CUSTOMER,
}]})

FAILED = envelope({"statuses": [{
    "id": WAMID_OUT,
    "status": "failed",
    "timestamp": "1750263800",
    "recipient_id": CUSTOMER,
    "errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}],
}]})

CONTACTS = [{"profile": {"name": "Dana"}, "wa_id": CUSTOMER}]

HEBREW_TEXT = envelope({"contacts": CONTACTS, "messages": [{
    "from": CUSTOMER, "id": WAMID_IN, "timestamp": "1750264000", "text": {"body": "הסר"}, "type": "text",
}]})

INTERACTIVE_REPLY = envelope({"contacts": CONTACTS, "messages": [{
    "context": {"from": "15550783881", "id": WAMID_OUT},
    "from": CUSTOMER, "id": WAMID_IN, "timestamp": "1750264100", "type": "interactive",
    "interactive": {"type": "button_reply", "button_reply": {"id": "msg-1#1", "title": "Not now"}},
}]})

TEMPLATE_QUICK_REPLY = envelope({"contacts": CONTACTS, "messages": [{
    "context": {"from": "15550783881", "id": WAMID_OUT},
    "from": CUSTOMER, "id": WAMID_IN, "timestamp": "1750264200", "type": "button",
    "button": {"payload": "STOP_PROMOTIONS", "text": "Stop promotions"},
}]})


# --- outcome vocabulary --------------------------------------------------------------------


@pytest.mark.parametrize("status, outcome", [
    ("sent", "sent"), ("delivered", "delivered"), ("read", "read"), ("failed", "failed"), ("played", "read"),
    ("READ", "read"),
])
def test_whatsapp_statuses_map_to_our_outcomes(status, outcome):
    assert outcome_status(status) == outcome


def test_unknown_status_has_no_outcome_rather_than_failing_the_batch():
    assert outcome_status("deleted") is None


# --- statuses ------------------------------------------------------------------------------


def test_sent_status_with_conversation_and_pricing_is_parsed():
    statuses, messages = parse_webhook(SENT)
    assert messages == []
    assert statuses == [WhatsAppStatus(WAMID_OUT, "sent", 1750263773, CUSTOMER, None, "send-7f3a")]


def test_read_without_delivered_is_parsed_on_its_own():
    (status,), _ = parse_webhook(READ_WITHOUT_DELIVERED)
    assert (status.status, status.timestamp, status.error_code, status.callback_data) == (
        "read", 1750263790, None, None)
    assert outcome_status(status.status) == "read"


def test_failed_status_carries_the_first_error_code_as_text():
    (status,), _ = parse_webhook(FAILED)
    assert status.status == "failed" and status.error_code == "131026"


def test_raw_bytes_with_escaped_unicode_parse_like_the_decoded_json():
    raw = json.dumps(HEBREW_TEXT, ensure_ascii=True).encode("ascii")
    assert b"\\u05d4" in raw
    assert parse_webhook(raw) == parse_webhook(HEBREW_TEXT) == parse_webhook(raw.decode())


def test_several_entries_changes_and_events_are_all_returned_in_order():
    payload = copy.deepcopy(SENT)
    payload["entry"][0]["changes"].append(READ_WITHOUT_DELIVERED["entry"][0]["changes"][0])
    payload["entry"].append(HEBREW_TEXT["entry"][0])
    statuses, messages = parse_webhook(payload)
    assert [s.status for s in statuses] == ["sent", "read"] and len(messages) == 1


def test_changes_of_other_fields_are_skipped():
    template_update = envelope({"event": "APPROVED", "message_template_name": "shipping_update"},
                               field="message_template_status_update")
    assert parse_webhook(template_update) == ([], [])


def test_reprs_hide_numbers_texts_and_wamids():
    (status,), _ = parse_webhook(SENT)
    _, (message,) = parse_webhook(HEBREW_TEXT)
    for text in (repr(status), repr(message)):
        assert CUSTOMER not in text and WAMID_OUT not in text and WAMID_IN not in text and "הסר" not in text


# --- inbound messages ----------------------------------------------------------------------


def test_inbound_hebrew_text_is_parsed():
    statuses, (message,) = parse_webhook(HEBREW_TEXT)
    assert statuses == []
    assert message == WhatsAppInbound(WAMID_IN, CUSTOMER, 1750264000, "הסר", None, None, None, "text")


def test_interactive_button_reply_gives_id_title_and_replied_wamid():
    _, (message,) = parse_webhook(INTERACTIVE_REPLY)
    assert (message.text, message.button_payload, message.button_text, message.in_reply_to) == (
        None, "msg-1#1", "Not now", WAMID_OUT)
    assert message.message_type == "interactive"


def test_template_quick_reply_button_gives_payload_text_and_replied_wamid():
    _, (message,) = parse_webhook(TEMPLATE_QUICK_REPLY)
    assert (message.text, message.button_payload, message.button_text, message.in_reply_to) == (
        None, "STOP_PROMOTIONS", "Stop promotions", WAMID_OUT)
    assert message.message_type == "button"


def test_interactive_list_reply_is_read_like_a_button_reply():
    payload = copy.deepcopy(INTERACTIVE_REPLY)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"] = {
        "type": "list_reply", "list_reply": {"id": "size-m", "title": "M", "description": "Medium"}}
    _, (message,) = parse_webhook(payload)
    assert (message.button_payload, message.button_text) == ("size-m", "M")


@pytest.mark.parametrize("extra", [
    {"type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg", "sha256": "abc"}},
    {"type": "reaction", "reaction": {"message_id": WAMID_OUT, "emoji": "\U0001F44D"}},
    {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
])
def test_unknown_message_types_are_kept_with_no_text(extra):
    payload = envelope({"messages": [{"from": CUSTOMER, "id": WAMID_IN, "timestamp": "1750264300", **extra}]})
    _, (message,) = parse_webhook(payload)
    assert message.message_type == extra["type"]
    assert (message.text, message.button_payload, message.button_text) == (None, None, None)


def test_text_reply_quoting_a_message_keeps_the_context():
    payload = copy.deepcopy(HEBREW_TEXT)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {"from": "15550783881", "id": WAMID_OUT}
    _, (message,) = parse_webhook(payload)
    assert message.in_reply_to == WAMID_OUT and message.text == "הסר"


# --- malformed -----------------------------------------------------------------------------


def mutate(payload, path, new_value):
    payload = copy.deepcopy(payload)
    target = payload
    for key in path[:-1]:
        target = target[key]
    if new_value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = new_value
    return payload


STATUS = ("entry", 0, "changes", 0, "value", "statuses", 0)
MESSAGE = ("entry", 0, "changes", 0, "value", "messages", 0)


@pytest.mark.parametrize("payload", [
    b"not json",
    b"\xff\xfe",
    [],
    {"object": "page", "entry": []},
    mutate(SENT, ("object",), KeyError),
    mutate(SENT, ("entry",), {}),
    mutate(SENT, ("entry", 0, "changes"), None),
    mutate(SENT, ("entry", 0, "changes", 0, "value"), "x"),
    mutate(SENT, ("entry", 0, "changes", 0, "value", "statuses"), {"id": WAMID_OUT}),
    mutate(SENT, STATUS + ("id",), KeyError),
    mutate(SENT, STATUS + ("status",), ""),
    mutate(SENT, STATUS + ("timestamp",), "yesterday"),
    mutate(SENT, STATUS + ("timestamp",), True),
    mutate(SENT, STATUS + ("recipient_id",), 972541234567),
    mutate(SENT, STATUS + ("biz_opaque_callback_data",), {"send": 1}),
    mutate(FAILED, STATUS + ("errors",), [{"code": {"nested": 1}}]),
    mutate(FAILED, STATUS + ("errors",), "131026"),
    mutate(mutate(HEBREW_TEXT, MESSAGE + ("from",), KeyError), ("entry", 0, "changes", 0, "value", "contacts"), []),
    mutate(HEBREW_TEXT, MESSAGE + ("from_user_id",), ""),
    mutate(HEBREW_TEXT, MESSAGE + ("type",), KeyError),
    mutate(HEBREW_TEXT, MESSAGE + ("text",), "הסר"),
    mutate(HEBREW_TEXT, MESSAGE + ("context",), "wamid"),
    mutate(INTERACTIVE_REPLY, MESSAGE + ("interactive", "button_reply"), KeyError),
    mutate(TEMPLATE_QUICK_REPLY, MESSAGE + ("button",), None),
])
def test_malformed_payloads_are_webhook_payload_errors(payload):
    with pytest.raises(WebhookPayloadError) as info:
        parse_webhook(payload)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ConnectorError)


def test_payload_error_messages_never_echo_numbers_or_text():
    with pytest.raises(WebhookPayloadError) as info:
        parse_webhook(mutate(HEBREW_TEXT, MESSAGE + ("id",), KeyError))
    assert CUSTOMER not in str(info.value) and "הסר" not in str(info.value)


def test_integer_timestamp_is_accepted_too():
    (status,), _ = parse_webhook(mutate(SENT, STATUS + ("timestamp",), 1750263773))
    assert status.timestamp == 1750263773


# --- business-scoped user ids (Meta's "Business-scoped user IDs", 2026) -----------------------

USER_ID = "IL.13491208655302741918"
BSUID_SENT = envelope({"contacts": [{"wa_id": CUSTOMER, "user_id": USER_ID}], "statuses": [{
    "id": WAMID_OUT, "status": "delivered", "timestamp": "1750263773", "recipient_id": CUSTOMER,
    "recipient_user_id": USER_ID, "biz_opaque_callback_data": "send-7f3a"}]})
USERNAME_TEXT = envelope({
    "contacts": [{"profile": {"name": "Dana", "username": "dana"}, "user_id": USER_ID}],
    "messages": [{"from_user_id": USER_ID, "id": WAMID_IN, "timestamp": "1750264000", "text": {"body": "STOP"},
                  "type": "text"}]})


def test_status_with_user_ids_names_the_recipient_both_ways():
    (status,), _ = parse_webhook(BSUID_SENT)
    assert (status.recipient_id, status.recipient_user_id) == (CUSTOMER, USER_ID)


def test_status_without_a_phone_number_takes_the_ids_it_has():
    (status,), _ = parse_webhook(mutate(mutate(BSUID_SENT, STATUS + ("recipient_id",), KeyError),
                                        ("entry", 0, "changes", 0, "value", "contacts"), []))
    assert (status.recipient_id, status.recipient_user_id, status.callback_data) == (None, USER_ID, "send-7f3a")


def test_message_from_a_username_user_has_a_user_id_and_no_number():
    _, (message,) = parse_webhook(USERNAME_TEXT)
    assert (message.from_number, message.from_user_id, message.text) == (None, USER_ID, "STOP")


def test_a_message_missing_from_takes_the_number_of_its_contact():
    _, (message,) = parse_webhook(mutate(HEBREW_TEXT, MESSAGE + ("from",), KeyError))
    assert message.from_number == CUSTOMER


def test_one_unreadable_event_leaves_the_others_of_the_batch_readable():
    value = USERNAME_TEXT["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    bad = {**good, "id": "wamid.bad", "from_user_id": None}
    del bad["from_user_id"]
    body = envelope({"contacts": [], "messages": [bad, good], "statuses": BSUID_SENT["entry"][0]["changes"][0][
        "value"]["statuses"]})
    batch = parse_batch(body)
    assert [m.provider_message_id for m in batch.messages] == [WAMID_IN]
    assert len(batch.statuses) == 1
    [unreadable] = batch.unreadable
    assert "from_user_id" in unreadable.reason and CUSTOMER not in unreadable.reason
    # the dead letter keeps that event alone, as a webhook body the parser reads again
    with pytest.raises(WebhookPayloadError):
        parse_webhook(unreadable.raw)
    assert json.loads(unreadable.raw)["entry"][0]["changes"][0]["value"]["messages"] == [bad]


def test_each_message_keeps_itself_alone_for_a_dead_letter():
    _, (message,) = parse_webhook(USERNAME_TEXT)
    assert parse_webhook(message.raw) == parse_webhook(USERNAME_TEXT)
