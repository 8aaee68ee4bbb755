"""Parsing of WhatsApp Cloud API webhook POSTs (pure; verify ``X-Hub-Signature-256`` first).

Shape: ``{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",
"value": {"statuses": [...], "messages": [...]}}]}]}``. One POST can carry several entries,
changes and events. Changes of other fields (template status, account updates) are skipped.

A malformed envelope or event raises ``WebhookPayloadError`` for the whole POST. A
*well-formed* event we do not know (a new status name, an image or reaction message) is kept:
rejecting it would only make Meta redeliver the batch for days. Dedupe downstream on
``(provider_message_id, status)`` for statuses and ``provider_message_id`` for inbound messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import WebhookPayloadError

__all__ = ["WhatsAppStatus", "WhatsAppInbound", "parse_webhook", "outcome_status", "META_OUTCOMES"]

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
    """One ``statuses[]`` entry. ``recipient_id`` is a phone number: never log it."""

    provider_message_id: str
    status: str
    timestamp: int
    recipient_id: str
    error_code: str | None
    callback_data: str | None

    def __repr__(self) -> str:
        return (f"WhatsAppStatus(provider_message_id=<redacted>, status={self.status!r}, "
                f"timestamp={self.timestamp}, error_code={self.error_code!r})")


@dataclass(frozen=True)
class WhatsAppInbound:
    """One ``messages[]`` entry from a customer.

    ``text`` is set for text messages; ``button_payload``/``button_text`` for template quick
    replies (``button.payload``/``button.text``) and interactive replies (``*_reply.id``/``title``);
    ``in_reply_to`` is the wamid the customer replied to. ``message_type`` is Meta's ``type``
    (``text``, ``button``, ``interactive``, ``image``, ``reaction``, ``unsupported``, ...).
    Everything but ``message_type`` and ``timestamp`` is personal data: never log it.
    """

    provider_message_id: str
    from_number: str
    timestamp: int
    text: str | None
    button_payload: str | None
    button_text: str | None
    in_reply_to: str | None
    message_type: str | None = None

    def __repr__(self) -> str:
        return f"WhatsAppInbound(type={self.message_type!r}, timestamp={self.timestamp}, from=<redacted>)"


def outcome_status(status: str) -> str | None:
    """Our outcome for a WhatsApp status, or None for a status we do not know (not reported)."""
    return META_OUTCOMES.get(status.strip().lower())


def parse_webhook(payload: Mapping[str, Any] | bytes | str) -> tuple[list[WhatsAppStatus], list[WhatsAppInbound]]:
    """``(statuses, inbound messages)`` from a webhook body (raw bytes/str or already-decoded JSON)."""
    if isinstance(payload, (bytes, bytearray, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookPayloadError("webhook body is not JSON") from exc
    body = _mapping(payload, "webhook body")
    if body.get("object") != "whatsapp_business_account":
        raise WebhookPayloadError("webhook object is not whatsapp_business_account")
    statuses: list[WhatsAppStatus] = []
    messages: list[WhatsAppInbound] = []
    for entry in _list(body.get("entry"), "entry"):
        for change in _list(_mapping(entry, "entry[]").get("changes"), "entry[].changes"):
            change = _mapping(change, "changes[]")
            if change.get("field") != "messages":
                continue
            value = _mapping(change.get("value"), "changes[].value")
            statuses.extend(_status(s) for s in _list(value.get("statuses", []), "value.statuses"))
            messages.extend(_inbound(m) for m in _list(value.get("messages", []), "value.messages"))
    return statuses, messages


def _status(raw: Any) -> WhatsAppStatus:
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
        recipient_id=_text(item, "recipient_id", "statuses[]"),
        error_code=error_code,
        callback_data=_optional_text(item, "biz_opaque_callback_data", "statuses[]"),
    )


def _inbound(raw: Any) -> WhatsAppInbound:
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
    return WhatsAppInbound(
        provider_message_id=_text(item, "id", "messages[]"),
        from_number=_text(item, "from", "messages[]"),
        timestamp=_timestamp(item, "messages[]"),
        text=text,
        button_payload=payload,
        button_text=title,
        in_reply_to=in_reply_to,
        message_type=kind,
    )


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


def _timestamp(item: Mapping[str, Any], where: str) -> int:
    value = item.get("timestamp")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise WebhookPayloadError(f"{where} without a unix timestamp")
