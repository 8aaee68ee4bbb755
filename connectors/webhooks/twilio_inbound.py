"""Parsing of Twilio incoming-message webhooks (pure; verify ``X-Twilio-Signature`` first).

Twilio POSTs a form to the number's messaging URL when a customer texts it: ``MessageSid``,
``AccountSid``, ``From``, ``To``, ``Body``, ``NumMedia`` and more. Dedupe downstream on
``provider_message_id``: Twilio retries a webhook that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.errors import WebhookPayloadError

__all__ = ["TwilioInbound", "parse_inbound"]


@dataclass(frozen=True)
class TwilioInbound:
    """One message a customer sent. ``from_number``, ``to_number`` and ``text`` are personal data: never log them.

    ``text`` is ``Body`` ("" for a picture-only MMS); ``to_number`` is our number it was sent to.
    """

    provider_message_id: str
    from_number: str
    to_number: str | None
    text: str

    def __repr__(self) -> str:
        return (f"TwilioInbound(provider_message_id={self.provider_message_id!r}, from=<redacted>, "
                f"to=<redacted>, text=<{len(self.text)} chars>)")


def parse_inbound(form: Mapping[str, str]) -> TwilioInbound:
    """Read ``MessageSid`` (or the legacy ``SmsMessageSid``/``SmsSid``), ``From``, ``To`` and ``Body``.

    Raises ``WebhookPayloadError`` if the sid or ``From`` is missing or the sid is malformed.
    """
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise WebhookPayloadError("inbound message without MessageSid")
    if not sid.isalnum() or not sid.isascii() or len(sid) > 64:
        raise WebhookPayloadError("inbound message with a malformed MessageSid")
    sender = (form.get("From") or "").strip()
    if not sender:
        raise WebhookPayloadError("inbound message without From")
    to = (form.get("To") or "").strip() or None
    return TwilioInbound(provider_message_id=sid, from_number=sender, to_number=to, text=form.get("Body") or "")
