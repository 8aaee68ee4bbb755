"""Vonage (Nexmo) SMS API delivery receipts (DLRs): signature check and parsing (pure; no I/O).

A DLR arrives as a GET query, a POST form or a POST JSON object (the account's webhook
setting) with ``msisdn``, ``to``, ``network-code``, ``messageId``, ``price``, ``status``,
``scts``, ``err-code``, ``api-key``, ``message-timestamp``, ``client-ref`` and, when signed
webhooks are enabled, ``timestamp``, ``nonce`` and ``sig``. One DLR per message *part*.

Signatures (every method Vonage offers: "MD5 hash" and the HMAC family) live in
:mod:`connectors.webhooks.vonage_signature`; this module re-exports them.

A GET receipt's query is the receipt, so a callback URL that carries a query of its own
cannot be verified in GET mode (our keys join the signed ones): name the message with
``client-ref``, which Vonage echoes, rather than with callback query parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from connectors.errors import WebhookPayloadError
from connectors.webhooks.vonage_signature import SIGNATURE_PARAM, compute_signature, verify_signature

__all__ = ["VonageReceipt", "compute_signature", "verify_signature", "parse_delivery_receipt",
           "receipt_params", "outcome_status", "VONAGE_OUTCOMES", "SIGNATURE_PARAM"]

# Vonage DLR status -> our outcome vocabulary; None means "in flight / nothing to report".
VONAGE_OUTCOMES: Mapping[str, str | None] = {
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "undelivered",
    "rejected": "undelivered",
    "accepted": None,
    "buffered": None,
    "unknown": None,
}
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True)
class VonageReceipt:
    """One DLR: which message part, its Vonage status, the DLR ``err-code`` if not 0, our ``client-ref``."""

    provider_message_id: str
    status: str
    error_code: str | None
    client_ref: str | None


MAX_FIELDS = 100  # a delivery receipt has about 15; more is not one


def receipt_params(method: str, query: Mapping[str, str], content_type: str | None, body: bytes) -> dict[str, str]:
    """The DLR's own fields: the query of a GET, else the JSON object or form of the POST body.

    The query of a POST is not part of the receipt (nor of its signature), so it is ignored.
    """
    if method.upper() == "GET":
        return {str(k): str(v) for k, v in query.items()}
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookPayloadError("delivery receipt body is not UTF-8") from exc
    if media == "application/json":
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError) as exc:  # nested too deep to read: not a receipt either
            raise WebhookPayloadError("delivery receipt body is not JSON") from exc
        if not isinstance(payload, dict):
            raise WebhookPayloadError("delivery receipt JSON is not an object")
        return {str(k): _scalar(k, v) for k, v in payload.items() if v is not None}
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS))
    except ValueError as exc:  # more fields than any receipt has
        raise WebhookPayloadError("delivery receipt form has too many fields") from exc


def parse_delivery_receipt(params: Mapping[str, Any]) -> VonageReceipt:
    """Read ``messageId``/``status``/``err-code``/``client-ref`` (verify the signature first).

    Raises ``WebhookPayloadError`` for a missing or malformed id, an unknown status or a
    non-numeric ``err-code``. An ``err-code`` of 0 ("Delivered") becomes ``None``.
    """
    message_id = str(params.get("messageId") or "").strip()
    status = str(params.get("status") or "").strip().lower()
    if not message_id:
        raise WebhookPayloadError("delivery receipt without messageId")
    if not _MESSAGE_ID.match(message_id):
        raise WebhookPayloadError("delivery receipt with a malformed messageId")
    if not status:
        raise WebhookPayloadError("delivery receipt without status")
    outcome_status(status)  # rejects unknown statuses
    err_code = str(params.get("err-code") or "").strip()
    if err_code and not (err_code.isascii() and err_code.isdigit() and len(err_code) <= 8):
        raise WebhookPayloadError("delivery receipt with a non-numeric err-code")
    client_ref = str(params.get("client-ref") or "").strip() or None
    return VonageReceipt(
        provider_message_id=message_id,
        status=status,
        error_code=err_code if err_code and int(err_code) != 0 else None,
        client_ref=client_ref,
    )


def outcome_status(vonage_status: str) -> str | None:
    """Our outcome for a DLR status, or None while in flight; unknown -> ``WebhookPayloadError``."""
    key = vonage_status.strip().lower()
    if key not in VONAGE_OUTCOMES:
        shown = f" {key[:32]!r}" if key.isascii() and key.isalpha() else ""  # never echo a number
        raise WebhookPayloadError(f"unknown Vonage DLR status{shown}")
    return VONAGE_OUTCOMES[key]


def _scalar(key: Any, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise WebhookPayloadError(f"delivery receipt field {str(key)[:32]!r} is not a scalar")

