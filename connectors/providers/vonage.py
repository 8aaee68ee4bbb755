"""Vonage (Nexmo) SMS API adapter (``POST {base}/sms/json``, form-encoded).

Unlike Twilio, Vonage answers almost everything with HTTP 200 and puts the outcome in the
body, one entry per concatenated part::

    {"message-count": "2", "messages": [{"status": "0", "message-id": "…", "to": "…",
      "remaining-balance": "…", "message-price": "…", "network": "…"}, {"status": "0", …}]}

Status ``"0"`` is success; anything else is one of Vonage's "SMS API error codes"
(developer.vonage.com/messaging/sms/guides/troubleshooting-sms), translated by
:data:`STATUS_ERRORS`. Transport failures and non-2xx answers are translated in
:func:`map_vonage_errors`; both meet in :meth:`VonageSmsProvider.send` and nowhere else.

Partial success: when some parts were accepted and others not, the customer may already
have received part of the text. Retrying would send those parts again and giving up would
call a half-delivered message failed, so it is a ``ProviderAmbiguousError`` (never blindly
retried; a human or a reconciliation job decides), carrying the first failing status as
``code``. The Vonage Python SDK likewise raises a distinct ``PartialFailureError``.

Authentication is ``api_key`` + ``api_secret`` in the form, or, when a ``signature_secret``
is given, a signed request: ``api_key`` + ``timestamp`` + ``sig`` by the account's signature method
("MD5 hash", Vonage's default, or an HMAC; see :mod:`connectors.webhooks.vonage_signature`) and no
``api_secret`` (sending both is Vonage error 32).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.providers.http_errors import map_http_errors, scrub
from connectors.providers.http_errors import retry_after as _retry_after
from connectors.errors import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import ProviderReceipt, SmsRequest
from connectors.providers.http_pool import HttpClients
from connectors.webhooks.vonage_signature import compute_signature
from streams.sms import encoding_of

__all__ = ["VonageSmsProvider", "map_vonage_errors", "error_for_status", "STATUS_ERRORS"]

logger = logging.getLogger(__name__)

PROVIDER = "vonage"
SEND_PATH = "/sms/json"
THROTTLED = "1"
THROTTLED_RETRY_AFTER = 1.0  # seconds; Vonage's own advice is "wait and retry"

_T, _R, _M = ProviderTransientError, ProviderRejectedError, ProviderMisconfiguredError
# Vonage per-message status -> (our error class, what it means). Unlisted non-zero codes: rejected.
STATUS_ERRORS: Mapping[str, tuple[type[ProviderError], str]] = {
    "1": (_T, "throttled"),
    "2": (_R, "missing parameters"),
    "3": (_R, "invalid parameters"),
    "4": (_M, "invalid credentials"),
    "5": (_T, "internal error"),
    "6": (_R, "invalid message"),
    "7": (_R, "number barred"),
    "8": (_M, "partner account barred"),
    "9": (_M, "partner quota violation (insufficient credit)"),
    "10": (_T, "too many existing binds"),
    "11": (_M, "account not enabled for HTTP"),
    "12": (_R, "message too long"),
    "13": (_T, "communication failed, message not submitted"),
    "14": (_M, "invalid signature"),
    "15": (_R, "invalid sender address"),
    "16": (_R, "invalid TTL"),
    "19": (_M, "facility not allowed"),
    "20": (_R, "invalid message class"),
    "22": (_R, "invalid network code"),
    "23": (_M, "invalid callback URL"),
    "29": (_R, "non-whitelisted destination"),
    "32": (_M, "signature and API secret disallowed"),
    "33": (_R, "number de-activated"),
}
# A redirect or a missing route means base_url is not Vonage's REST host: every message would fail.
_MISCONFIGURED_HTTP = frozenset({401, 403, 404, 405})
_NUMERIC_SENDER = re.compile(r"^\+\d+$")


@contextmanager
def map_vonage_errors() -> Iterator[None]:
    """Translate httpx exceptions and non-2xx answers into ``connectors.errors``.

    Wrap both the request and ``response.raise_for_status()``; the per-part statuses of a
    200 answer are translated by :func:`error_for_status`.
    """
    with map_http_errors(PROVIDER, _error_for_response):
        yield


def error_for_status(status: str, error_text: str | None = None) -> ProviderError:
    """The error for one non-zero per-message ``status`` (``error-text`` is scrubbed of numbers)."""
    kind, meaning = STATUS_ERRORS.get(status, (ProviderRejectedError, "unlisted status"))
    message = f"vonage status {status} ({meaning})" + (f": {_scrub(error_text)}" if error_text else "")
    if kind is ProviderTransientError:
        retry_after = THROTTLED_RETRY_AFTER if status == THROTTLED else None
        return ProviderTransientError(message, provider=PROVIDER, code=status, retry_after=retry_after)
    return kind(message, provider=PROVIDER, code=status)


def _error_for_response(response: httpx.Response) -> ProviderError:
    status = response.status_code
    title = _error_title(response)
    message = f"vonage HTTP {status}" + (f": {title}" if title else "")
    if status == 429 or status >= 500:
        return ProviderTransientError(message, provider=PROVIDER, retry_after=_retry_after(response))
    if status < 400 or status in _MISCONFIGURED_HTTP:
        return ProviderMisconfiguredError(message, provider=PROVIDER)
    return ProviderRejectedError(message, provider=PROVIDER)


def _error_title(response: httpx.Response) -> str | None:
    """``title`` (RFC 7807 bodies) or ``error-text``, if the error body has one."""
    try:
        payload = response.json()
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    text = payload.get("title") or payload.get("error-text")
    return _scrub(str(text)) if text else None


def _scrub(text: str) -> str:
    return scrub(text, prefix="")




def _parts(response: httpx.Response) -> tuple[list[dict[str, Any]], int]:
    """The per-part entries and the message count; an unreadable 200 is ambiguous (it may have been sent)."""
    try:
        payload = response.json()
        parts = payload["messages"]
        count = payload.get("message-count")
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            raise TypeError("messages is not a non-empty list of objects")
        if any(not str(p.get("status", "")).strip() for p in parts):
            raise KeyError("status")
        if count not in (None, "") and int(count) != len(parts):
            raise ValueError("message-count disagrees with messages")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderAmbiguousError(
            f"vonage HTTP {response.status_code} with an unreadable body", provider=PROVIDER
        ) from exc
    return parts, len(parts)


class VonageSmsProvider:
    """Sends SMS through Vonage's SMS API; raises only ``connectors.errors.ProviderError``."""

    name = PROVIDER

    def __init__(
        self,
        api_key: str,
        api_secret: str | SecretStr,
        from_number: str,
        signature_secret: str | SecretStr | None = None,
        signature_method: str = "md5hash",
        base_url: str = "https://rest.nexmo.com",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secret = api_secret if isinstance(api_secret, SecretStr) else SecretStr(api_secret or "")
        signing = (signature_secret if isinstance(signature_secret, SecretStr)
                   else SecretStr(signature_secret) if signature_secret else None)
        if signing is not None and not signing.get_secret_value():
            signing = None
        if not api_key or not from_number or not (secret.get_secret_value() or signing):
            raise ProviderMisconfiguredError(
                "vonage needs api_key, from_number and api_secret or signature_secret", provider=PROVIDER
            )
        self._api_key = api_key
        self._api_secret = secret
        self._signature_secret = signing
        compute_signature("", {}, signature_method)  # an unknown method fails here, not at the first send
        self._signature_method = signature_method
        self._from = _sender(from_number)
        self.sender_id = self._from  # Vonage counts throughput per sending number, per message part
        self._clock = clock
        self._client = HttpClients(  # pooled keep-alive connections for the gateway's concurrent calls
            max_connections,
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return (f"VonageSmsProvider(api_key={self._api_key!r}, signed={self._signature_secret is not None}, "
                f"base_url={str(self._client.base_url)!r})")

    def build_form(self, request: SmsRequest) -> dict[str, str]:
        """The form fields for ``request``, authenticated (and signed, if configured)."""
        form = {
            "api_key": self._api_key,
            "from": _sender(request.sender) if request.sender else self._from,
            "to": "".join(ch for ch in request.to if ch in "0123456789"),
            "text": request.body,
            "type": "unicode" if encoding_of(request.body) == "UCS-2" else "text",
            "client-ref": request.message_id,
            "status-report-req": "1",
        }
        if request.status_callback:
            form["callback"] = request.status_callback
        if self._signature_secret is not None:
            form["timestamp"] = str(int(self._clock()))
            form["sig"] = compute_signature(self._signature_secret, form, self._signature_method)
        else:
            form["api_secret"] = self._api_secret.get_secret_value()
        return form

    async def send(self, request: SmsRequest) -> ProviderReceipt:
        form = self.build_form(request)
        with map_vonage_errors():
            response = await self._client.next().post(SEND_PATH, data=form)
            response.raise_for_status()
        parts, count = _parts(response)
        failed = [p for p in parts if str(p["status"]).strip() != "0"]
        if failed and len(failed) < count:
            sent_ids = [str(p.get("message-id")) for p in parts if str(p["status"]).strip() == "0"]
            first = str(failed[0]["status"]).strip()
            logger.error("vonage partly sent message_id=%s accepted_parts=%d/%d vonage_ids=%s failing_status=%s",
                         request.message_id, count - len(failed), count, sent_ids, first)
            raise ProviderAmbiguousError(
                f"vonage accepted {count - len(failed)} of {count} parts; part status {first} "
                f"({STATUS_ERRORS.get(first, (None, 'unlisted status'))[1]}): never resend blindly",
                provider=PROVIDER, code=first,
            )
        if failed:  # every part refused: nothing went out, the first part's status decides
            first_part = failed[0]
            error = error_for_status(str(first_part["status"]).strip(), first_part.get("error-text"))
            logger.warning("vonage refused message_id=%s status=%s", request.message_id, error.code)
            raise error
        message_id = parts[0].get("message-id")
        if not isinstance(message_id, str) or not message_id:
            raise ProviderAmbiguousError(
                f"vonage HTTP {response.status_code} without a message-id", provider=PROVIDER
            )
        logger.info("vonage accepted message_id=%s vonage_id=%s parts=%d",
                    request.message_id, message_id, count)
        return ProviderReceipt(provider=PROVIDER, provider_message_id=message_id, status="accepted",
                               segments=count)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> VonageSmsProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _sender(sender: str) -> str:
    """A numeric sender goes without its ``+`` (Vonage wants E.164 digits); alphanumeric IDs as given."""
    sender = sender.strip()
    return sender[1:] if _NUMERIC_SENDER.match(sender) else sender
