"""Twilio Programmable Messaging adapter (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

``send`` creates a message; ``find`` reconciles an ambiguous send through the list API
(``GET .../Messages.json``), since Twilio has no idempotency key. All httpx and Twilio
failures are translated in one place, :func:`map_twilio_errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.providers.http_errors import map_http_errors, scrub
from connectors.providers.http_errors import retry_after as _retry_after
from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import ProviderReceipt, SmsRequest
from connectors.providers.http_pool import HttpClients

__all__ = ["TwilioSmsProvider", "map_twilio_errors"]

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
RATE_LIMIT_CODE = "20429"
FIND_PAGE_SIZE = 50
FIND_MAX_PAGES = 5


@contextmanager
def map_twilio_errors() -> Iterator[None]:
    """Translate httpx exceptions and non-2xx Twilio responses into ``connectors.errors``.

    Wrap both the request and ``response.raise_for_status()``.
    """
    with map_http_errors(PROVIDER, _error_for_response):
        yield


def _error_for_response(response: httpx.Response) -> Exception:
    status = response.status_code
    code, detail = _twilio_error_fields(response)
    message = f"twilio HTTP {status}" + (f" code {code}" if code else "") + (f": {detail}" if detail else "")
    if status == 429 or code == RATE_LIMIT_CODE:
        return ProviderTransientError(
            message, provider=PROVIDER, code=code, retry_after=_retry_after(response)
        )
    if status >= 500:
        return ProviderTransientError(
            message, provider=PROVIDER, code=code, retry_after=_retry_after(response)
        )
    if status in (401, 403) or status < 400:
        return ProviderMisconfiguredError(message, provider=PROVIDER, code=code)
    return ProviderRejectedError(message, provider=PROVIDER, code=code)


def _twilio_error_fields(response: httpx.Response) -> tuple[str | None, str | None]:
    """Twilio's ``code`` and a phone-number-free ``message`` from an error body."""
    try:
        payload = response.json()
    except ValueError:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    code = payload.get("code")
    detail = payload.get("message")
    return (
        str(code) if code is not None else None,
        _scrub(str(detail)) if detail else None,
    )


def _scrub(text: str) -> str:
    return scrub(text, prefix="+")


def _twilio_date(value: object) -> datetime | None:
    """An RFC 2822 date as Twilio writes them ("Sat, 22 Nov 2026 11:00:00 +0000"), aware; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when




class TwilioSmsProvider:
    """Sends SMS through Twilio's Messages API; raises only ``connectors.errors.ProviderError``."""

    name = PROVIDER

    def __init__(
        self,
        account_sid: str,
        auth_token: str | SecretStr,
        from_number: str,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
    ) -> None:
        token = auth_token if isinstance(auth_token, SecretStr) else SecretStr(auth_token)
        if not account_sid or not token.get_secret_value() or not from_number:
            raise ProviderMisconfiguredError(
                "twilio needs account_sid, auth_token and from_number", provider=PROVIDER
            )
        self._account_sid = account_sid
        self._from_number = from_number
        self.sender_id = from_number  # Twilio counts throughput per sending number (in segments)
        self._path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        self._client = HttpClients(  # pooled keep-alive connections for the gateway's concurrent calls
            max_connections,
            base_url=base_url.rstrip("/"),
            auth=httpx.BasicAuth(account_sid, token.get_secret_value()),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
            # HTTP/1.1: the sandboxes speak nothing else (HTTP/2 would need the h2 package).
        )

    def __repr__(self) -> str:
        return f"TwilioSmsProvider(account_sid={self._account_sid!r}, base_url={str(self._client.base_url)!r})"

    async def send(self, request: SmsRequest) -> ProviderReceipt:
        form = {"To": request.to, "From": request.sender or self._from_number, "Body": request.body}
        if request.status_callback:
            form["StatusCallback"] = request.status_callback
        with map_twilio_errors():
            response = await self._client.next().post(self._path, data=form)
            response.raise_for_status()
        receipt = self._parse_receipt(response, request.message_id)
        logger.info(
            "twilio accepted message_id=%s sid=%s status=%s segments=%s",
            request.message_id, receipt.provider_message_id, receipt.status, receipt.segments,
        )
        return receipt

    async def find(self, request: SmsRequest, sent_after: datetime) -> ProviderReceipt | None:
        """The message ``request`` created at or after ``sent_after``, if Twilio has one; else None.

        For reconciling a send that raised ``ProviderAmbiguousError``. Lists
        ``GET .../Messages.json?To=&From=&DateSent>=YYYY-MM-DD&PageSize=50`` (Twilio filters by
        UTC date only) and follows ``next_page_uri`` for at most 5 pages. Twilio's list omits
        ``StatusCallback``, so a message matches on its exact ``body`` and ``date_created >=
        sent_after``; the newest match wins. Twilio's dates have whole seconds, so ``sent_after``
        is compared truncated to the second (a naive ``sent_after`` is taken as UTC); take it
        before the send and allow for clock skew. None is only "not found in the first 5 pages":
        Twilio sets ``date_sent`` when a message leaves its queue, so call this some time after
        the failed send, not at once. Every failure is a ``ProviderError`` (HTTP and transport
        errors through :func:`map_twilio_errors`, an unreadable list as ``ProviderAmbiguousError``)
        and means the outcome is still unknown.
        """
        if sent_after.tzinfo is None:
            sent_after = sent_after.replace(tzinfo=timezone.utc)
        since = sent_after.astimezone(timezone.utc).replace(microsecond=0)
        params: dict[str, str] | None = {
            "To": request.to,
            "From": request.sender or self._from_number,
            "DateSent>": since.date().isoformat(),
            "PageSize": str(FIND_PAGE_SIZE),
        }
        url = self._path
        best: tuple[datetime, ProviderReceipt] | None = None
        pages = 0
        while url and pages < FIND_MAX_PAGES:
            with map_twilio_errors():
                response = await self._client.next().get(url, params=params)
                response.raise_for_status()
            pages += 1
            messages, url = self._parse_page(response)
            params = None  # next_page_uri carries the query
            for message in messages:
                created = _twilio_date(message.get("date_created"))
                if message.get("body") != request.body or created is None or created < since:
                    continue
                if best is None or created > best[0]:
                    best = (created, self._receipt_from(message, response.status_code))
        if url:
            logger.warning("twilio find message_id=%s stopped after %d pages with more to read",
                           request.message_id, pages)
        receipt = best[1] if best else None
        logger.info("twilio find message_id=%s pages=%d found=%s", request.message_id, pages,
                    receipt.provider_message_id if receipt else None)
        return receipt

    def _parse_page(self, response: httpx.Response) -> tuple[list[dict[str, Any]], str | None]:
        """A list page's messages and its ``next_page_uri`` (only ever a path under this account)."""
        try:
            payload = response.json()
            messages = payload["messages"]
            next_uri = payload.get("next_page_uri") or None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderAmbiguousError(
                f"twilio HTTP {response.status_code} message list unreadable", provider=PROVIDER
            ) from exc
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages) or (
            next_uri is not None and not (isinstance(next_uri, str) and next_uri.startswith(self._path + "?"))
        ):
            # A next page elsewhere would carry our credentials off-account: refuse it.
            raise ProviderAmbiguousError(
                f"twilio HTTP {response.status_code} message list malformed", provider=PROVIDER
            )
        return messages, next_uri

    @classmethod
    def _receipt_from(cls, message: dict[str, Any], http_status: int) -> ProviderReceipt:
        sid = message.get("sid")
        if not isinstance(sid, str) or not sid:
            raise ProviderAmbiguousError(f"twilio HTTP {http_status} listed a message without a sid",
                                         provider=PROVIDER)
        raw_segments = message.get("num_segments")
        try:
            segments = int(raw_segments) if raw_segments not in (None, "") else None
        except (TypeError, ValueError):
            segments = None
        return ProviderReceipt(provider=PROVIDER, provider_message_id=sid,
                               status=str(message.get("status") or "queued"), segments=segments)

    @staticmethod
    def _parse_receipt(response: httpx.Response, message_id: str) -> ProviderReceipt:
        # A 2xx means Twilio took the message: if we cannot read it, retrying could send twice.
        try:
            payload = response.json()
            sid = payload["sid"]
            status = payload.get("status") or "queued"
            raw_segments = payload.get("num_segments")
            segments = int(raw_segments) if raw_segments not in (None, "") else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            logger.error("twilio 2xx with unreadable body message_id=%s http=%s", message_id, response.status_code)
            raise ProviderAmbiguousError(
                f"twilio HTTP {response.status_code} with unreadable body", provider=PROVIDER
            ) from exc
        if not isinstance(sid, str) or not sid:
            raise ProviderAmbiguousError(
                f"twilio HTTP {response.status_code} without a message sid", provider=PROVIDER
            )
        return ProviderReceipt(provider=PROVIDER, provider_message_id=sid, status=str(status), segments=segments)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> TwilioSmsProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
