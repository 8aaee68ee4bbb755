"""What a mail system reports back about an e-mail we sent, read from the report itself. Pure.

    HardBounce   a DSN (RFC 3464: multipart/report; report-type=delivery-status) with a recipient whose
                 ``Action: failed`` and ``Status: 5.x.x``: the address cannot take mail
    Complaint    an ARF report (RFC 5965: multipart/report; report-type=feedback-report) of
                 ``Feedback-Type: abuse``: the recipient marked our mail as spam

Anything else — a delayed or temporary (4.x.x) DSN, another feedback type, an auto-reply, a human's mail —
is ``None``: not ours to act on. Both reports carry the original's headers (a DSN its ``text/rfc822-headers``
or ``message/rfc822`` part, an ARF its ``message/rfc822`` or ``text/rfc822-headers`` part), which name our
message (``X-Switchboard-Message-Id``) and, for marketing e-mail, its signed ``List-Unsubscribe`` link: the
intake authenticates a report by that link's signature, never by the report's own, forgeable, headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, HeaderParser

__all__ = ["Complaint", "HardBounce", "OriginalHeaders", "read_report"]

_PERMANENT = re.compile(r"^5\.\d{1,3}\.\d{1,3}$")
_ADDRESS_TYPE = re.compile(r"^\s*rfc822\s*;\s*", re.IGNORECASE)


@dataclass(frozen=True)
class OriginalHeaders:
    message_id: str | None  # ours: X-Switchboard-Message-Id
    list_unsubscribe: str | None  # the URL inside <...>


@dataclass(frozen=True)
class HardBounce:
    recipient: str
    status: str  # "5.1.1"
    diagnostic: str | None
    original: OriginalHeaders


@dataclass(frozen=True)
class Complaint:
    feedback_type: str  # "abuse"
    recipient: str | None  # Original-Rcpt-To, when the provider gives it
    original: OriginalHeaders


def read_report(raw: bytes) -> HardBounce | Complaint | None:
    """The hard bounce or complaint ``raw`` reports, or None."""
    report = message_from_bytes(raw, policy=policy.default)
    if report.get_content_type() != "multipart/report":
        return None
    kind = (report.get_param("report-type") or "").lower()
    parts = list(report.iter_parts()) if isinstance(report, EmailMessage) else []
    if kind == "delivery-status":
        return _bounce(parts)
    if kind == "feedback-report":
        return _complaint(parts)
    return None


def _bounce(parts: list[Message]) -> HardBounce | None:
    status_part = next((p for p in parts if p.get_content_type() == "message/delivery-status"), None)
    if status_part is None:
        return None
    blocks = status_part.get_payload()  # the stdlib reads it as header blocks: per-message, then per-recipient
    for block in blocks[1:] if isinstance(blocks, list) else []:
        action, status = str(block.get("Action", "")).strip().lower(), str(block.get("Status", "")).strip()
        recipient = _ADDRESS_TYPE.sub("", str(block.get("Final-Recipient", ""))).strip()
        if action == "failed" and _PERMANENT.match(status) and recipient:
            diagnostic = block.get("Diagnostic-Code")
            return HardBounce(recipient, status, str(diagnostic).strip() if diagnostic else None, _original(parts))
    return None


def _complaint(parts: list[Message]) -> Complaint | None:
    feedback_part = next((p for p in parts if p.get_content_type() == "message/feedback-report"), None)
    if feedback_part is None:
        return None
    payload = feedback_part.get_payload()  # message/*: the stdlib may read it as an embedded message
    fields = payload[0] if isinstance(payload, list) and payload else HeaderParser().parsestr(_text(feedback_part))
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if feedback_type != "abuse":
        return None
    recipient = str(fields.get("Original-Rcpt-To", "")).strip().strip("<>") or None
    return Complaint(feedback_type, recipient, _original(parts))


def _original(parts: list[Message]) -> OriginalHeaders:
    headers: Message | None = None
    for part in parts:
        if part.get_content_type() == "message/rfc822":
            payload = part.get_payload()
            headers = payload[0] if isinstance(payload, list) and payload else None
        elif part.get_content_type() == "text/rfc822-headers":
            headers = BytesHeaderParser(policy=policy.default).parsebytes(_text(part).encode("utf-8", "replace"))
        if headers is not None:
            break
    if headers is None:
        return OriginalHeaders(None, None)
    message_id = headers.get("X-Switchboard-Message-Id")
    unsubscribe = headers.get("List-Unsubscribe")
    url = str(unsubscribe).strip() if unsubscribe else ""
    return OriginalHeaders(str(message_id).strip() if message_id else None,
                           url[1:-1] if url.startswith("<") and url.endswith(">") else None)


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", "replace")
    return str(part.get_payload())
