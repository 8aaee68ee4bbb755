"""Parsing of WhatsApp Cloud API webhook POSTs (pure; verify ``X-Hub-Signature-256`` first).

Shape: ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {"statuses": [...], "messages": [...]}}]}]}``. One POST can carry several entries,
changes and events. Changes of other fields (template status, account updates) are skipped.

Each event stands alone (:func:`parse_batch`): a malformed envelope raises ``WebhookPayloadError``
for the whole POST, but a malformed event becomes an :class:`UnreadableEvent` beside the good ones,
for the caller to dead-letter on its own — answering 400 would only make Meta redeliver the whole
batch for days. :func:`parse_webhook` is the strict form (any unreadable event raises). A
*well-formed* event we do not know (a new status name, an image or reaction message) is kept.
Dedupe downstream on ``(provider_message_id, status)`` for statuses and ``provider_message_id`` for
inbound messages.

Customers are named by phone number (``from``, ``recipient_id``, ``contacts[].wa_id``) and, in the
current shape, by a business-scoped user id (``from_user_id``, ``recipient_user_id``,
``contacts[].user_id``). A customer who uses a username may come with the user id only, so both are
optional here: attributing the event is the gateway's job. Meta's "Business-scoped user IDs" page
describes the fields; ``contacts`` entries are matched to events by either id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from connectors.errors import WebhookPayloadError

__all__ = ["WhatsAppStatus", "WhatsAppInbound", "UnreadableEvent", "WebhookBatch", "parse_batch", "parse_webhook",
           "outcome_status", "META_OUTCOMES"]

# WhatsApp status -> our outcome vocabulary. "played" (a voice message was played) implies read.
META_OUTCOMES: Mapping[str, str] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "played": "read",
}


@dataclass(frozen=True)
class WhatsAppStatus:
    """One ``statuses[]`` entry. ``recipient_id`` (a phone number) and ``recipient_user_id`` are personal data:
    never log them."""

    provider_message_id: str
    status: str
    timestamp: int
    recipient_id: str | None
    error_code: str | None
    callback_data: str | None
    recipient_user_id: str | None = None

    def __repr__(self) -> str:
        return (f"WhatsAppStatus(provider_message_id=<redacted>, status={self.status!r}, "
                f"timestamp={self.timestamp}, error_code={self.error_code!r})")


@dataclass(frozen=True)
class WhatsAppInbound:
    """One ``messages[]`` entry from a customer.

    ``text`` is set for text messages; ``button_payload``/``button_text`` for template quick
    replies (``button.payload``/``button.text``) and interactive replies (``*_reply.id``/``title``);
    ``in_reply_to`` is the wamid the customer replied to. ``from_number`` or ``from_user_id`` may be
    missing (a username user, or the shape from before user ids), never both in a well-formed event. ``message_type`` is Meta's ``type``
    (``text``, ``button``, ``interactive``, ``image``, ``reaction``, ``unsupported``, ...).
    Everything but ``message_type`` and ``timestamp`` is personal data: never log it.
    """

    provider_message_id: str
    from_number: str | None
    timestamp: int
    text: str | None
    button_payload: str | None
    button_text: str | None
    in_reply_to: str | None
    message_type: str | None = None
    from_user_id: str | None = None
    raw: bytes = field(default=b"", compare=False)  # this message alone, in a one-message webhook body: what a dead letter keeps

    def __repr__(self) -> str:
        return f"WhatsAppInbound(type={self.message_type!r}, timestamp={self.timestamp}, from=<redacted>)"


def outcome_status(status: str) -> str | None:
    """Our outcome for a WhatsApp status, or None for a status we do not know (not reported)."""
    return META_OUTCOMES.get(status.strip().lower())


@dataclass(frozen=True)
class UnreadableEvent:
    """One event of a batch that could not be read: ``reason`` names the field, never its value; ``raw`` is
    the event alone in a one-event webhook body, for a dead letter."""

    reason: str
    raw: bytes

    def __repr__(self) -> str:
        return f"UnreadableEvent(reason={self.reason!r})"


class WebhookBatch(NamedTuple):
    statuses: list[WhatsAppStatus]
    messages: list[WhatsAppInbound]
    unreadable: list[UnreadableEvent]


def parse_webhook(payload: Mapping[str, Any] | bytes | str) -> tuple[list[WhatsAppStatus], list[WhatsAppInbound]]:
    """``(statuses, inbound messages)`` from a webhook body; ``WebhookPayloadError`` if any part is unreadable."""
    batch = parse_batch(payload)
    if batch.unreadable:
        raise WebhookPayloadError(batch.unreadable[0].reason)
    return batch.statuses, batch.messages


def parse_batch(payload: Mapping[str, Any] | bytes | str) -> WebhookBatch:
    """Every event of a webhook body (raw bytes/str or decoded JSON), each read on its own.

    Raises ``WebhookPayloadError`` only when the envelope itself (``object``, ``entry``, ``changes``,
    ``value`` and its lists) is not Meta's."""
    if isinstance(payload, (bytes, bytearray, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # nested too deep to read: not JSON to us
            raise WebhookPayloadError("webhook body is not JSON") from exc
    body = _mapping(payload, "webhook body")
    if body.get("object") != "whatsapp_business_account":
        raise WebhookPayloadError("webhook object is not whatsapp_business_account")
    batch = WebhookBatch([], [], [])
    for entry in _list(body.get("entry"), "entry"):
        entry = _mapping(entry, "entry[]")
        for change in _list(entry.get("changes"), "entry[].changes"):
            change = _mapping(change, "changes[]")
            if change.get("field") != "messages":
                continue
            value = _mapping(change.get("value"), "changes[].value")
            contacts = [c for c in _list(value.get("contacts", []), "value.contacts") if isinstance(c, Mapping)]
            for key, read, out in (("statuses", _status, batch.statuses), ("messages", _inbound, batch.messages)):
                for item in _list(value.get(key, []), f"value.{key}"):
                    contact = _contact_of(item, contacts)
                    alone = _alone(entry, value, key, item, contact)
                    try:
                        out.append(read(item, contact, alone))
                    except WebhookPayloadError as exc:
                        batch.unreadable.append(UnreadableEvent(str(exc), alone))
    return batch


def _contact_of(item: Any, contacts: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The ``contacts[]`` entry naming the same customer as ``item`` (by phone number or user id), if any."""
    if not isinstance(item, Mapping):
        return {}
    numbers = {item.get("from"), item.get("recipient_id")} - {None}
    user_ids = {item.get("from_user_id"), item.get("recipient_user_id")} - {None}
    matches = [c for c in contacts if c.get("wa_id") in numbers or c.get("user_id") in user_ids]
    return matches[0] if matches else (contacts[0] if len(contacts) == 1 and not numbers | user_ids else {})


def _alone(entry: Mapping[str, Any], value: Mapping[str, Any], key: str, item: Any,
           contact: Mapping[str, Any]) -> bytes:
    one = {k: v for k, v in value.items() if k not in ("statuses", "messages", "contacts")}
    one[key] = [item]
    if contact:
        one["contacts"] = [contact]
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": entry.get("id"), "changes": [{"value": one, "field": "messages"}]}]}
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _status(raw: Any, contact: Mapping[str, Any], alone: bytes) -> WhatsAppStatus:
    item = _mapping(raw, "statuses[]")
    errors = _list(item.get("errors", []), "statuses[].errors")
    error_code = None
    if errors:
        code = _mapping(errors[0], "statuses[].errors[]").get("code")
        if isinstance(code, bool) or (code is not None and not isinstance(code, (int, str))):
            raise WebhookPayloadError("statuses[].errors[].code is not a code")
        error_code = str(code) if code is not None else None
    return WhatsAppStatus(
        provider_message_id=_text(item, "id", "statuses[]"),
        status=_text(item, "status", "statuses[]").lower(),
        timestamp=_timestamp(item, "statuses[]"),
        recipient_id=_id(item, "recipient_id", contact, "wa_id", "statuses[]"),
        error_code=error_code,
        callback_data=_optional_text(item, "biz_opaque_callback_data", "statuses[]"),
        recipient_user_id=_id(item, "recipient_user_id", contact, "user_id", "statuses[]"),
    )


def _inbound(raw: Any, contact: Mapping[str, Any], alone: bytes) -> WhatsAppInbound:
    item = _mapping(raw, "messages[]")
    kind = _text(item, "type", "messages[]")
    text = payload = title = None
    if kind == "text":
        text = _text(_mapping(item.get("text"), "messages[].text"), "body", "messages[].text", allow_empty=True)
    elif kind == "button":
        button = _mapping(item.get("button"), "messages[].button")
        payload = _optional_text(button, "payload", "messages[].button")
        title = _optional_text(button, "text", "messages[].button")
    elif kind == "interactive":
        interactive = _mapping(item.get("interactive"), "messages[].interactive")
        reply_kind = interactive.get("type")
        if reply_kind in ("button_reply", "list_reply"):
            reply = _mapping(interactive.get(reply_kind), f"messages[].interactive.{reply_kind}")
            payload = _text(reply, "id", f"messages[].interactive.{reply_kind}")
            title = _optional_text(reply, "title", f"messages[].interactive.{reply_kind}")
    context = item.get("context")
    in_reply_to = _optional_text(_mapping(context, "messages[].context"), "id", "messages[].context") \
        if context is not None else None
    from_number = _id(item, "from", contact, "wa_id", "messages[]")
    from_user_id = _id(item, "from_user_id", contact, "user_id", "messages[]")
    if from_number is None and from_user_id is None:
        raise WebhookPayloadError("messages[] without a from or from_user_id")
    return WhatsAppInbound(
        provider_message_id=_text(item, "id", "messages[]"),
        from_number=from_number,
        timestamp=_timestamp(item, "messages[]"),
        text=text,
        button_payload=payload,
        button_text=title,
        in_reply_to=in_reply_to,
        message_type=kind,
        from_user_id=from_user_id,
        raw=alone,
    )


def _id(item: Mapping[str, Any], key: str, contact: Mapping[str, Any], contact_key: str, where: str) -> str | None:
    """A customer id from the event, else from its ``contacts[]`` entry; a present but empty id is malformed."""
    value = item.get(key, contact.get(contact_key))
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise WebhookPayloadError(f"{where}.{key} is not an id")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WebhookPayloadError(f"{where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{where} is not a list")
    return value


def _text(item: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = False) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise WebhookPayloadError(f"{where} without a {key}")
    return value


def _optional_text(item: Mapping[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise WebhookPayloadError(f"{where}.{key} is not a string")
    return value


_LAST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z: the last second a datetime can hold


def _timestamp(item: Mapping[str, Any], where: str) -> int:
    value = item.get("timestamp")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)  # at most 12 digits: int() refuses strings of over 4,300, and no clock needs more
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _LAST_TIMESTAMP:
        return value
    raise WebhookPayloadError(f"{where} without a unix timestamp a clock can hold")
