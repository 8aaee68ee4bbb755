"""Parsing of Twilio message status callbacks (pure; verify the signature first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from connectors.errors import WebhookPayloadError

__all__ = ["TwilioStatus", "parse_status_callback", "outcome_status", "TWILIO_OUTCOMES"]

# Twilio message status -> our outcome vocabulary; None means "in flight, not reported".
TWILIO_OUTCOMES: Mapping[str, str | None] = {
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}


@dataclass(frozen=True)
class TwilioStatus:
    """One status callback: which message, its Twilio status, and Twilio's ErrorCode if failing."""

    provider_message_id: str
    status: str
    error_code: str | None


def parse_status_callback(form: Mapping[str, str]) -> TwilioStatus:
    """Read ``MessageSid``/``MessageStatus``/``ErrorCode`` (or the legacy ``Sms*`` names).

    Raises ``WebhookPayloadError`` if the sid or status is missing or the status is unknown.
    """
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid:
        raise WebhookPayloadError("status callback without MessageSid")
    if not sid.isalnum() or len(sid) > 64:
        raise WebhookPayloadError("status callback with a malformed MessageSid")
    if not status:
        raise WebhookPayloadError("status callback without MessageStatus")
    outcome_status(status)  # rejects unknown statuses
    error_code = (form.get("ErrorCode") or "").strip() or None
    return TwilioStatus(provider_message_id=sid, status=status, error_code=error_code)


def outcome_status(twilio_status: str) -> str | None:
    """Our outcome for a Twilio status, or None for in-flight statuses; unknown -> ``WebhookPayloadError``."""
    key = twilio_status.strip().lower()
    if key not in TWILIO_OUTCOMES:
        raise WebhookPayloadError(f"unknown Twilio message status {twilio_status[:32]!r}")
    return TWILIO_OUTCOMES[key]
