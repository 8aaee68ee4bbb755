"""The one translation of httpx's transport errors, shared by every HTTP provider adapter.

What each error means for a send does not depend on the provider: a connection that never opened
did not deliver the request (transient), a request that could not be built is our configuration,
and a connection that broke after the request left may or may not have delivered it (ambiguous).
Each adapter supplies only how to read its provider's error responses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from connectors.errors import ProviderAmbiguousError, ProviderMisconfiguredError, ProviderTransientError


@contextmanager
def map_http_errors(provider: str, error_for_response: Callable[[httpx.Response], Exception]) -> Iterator[None]:
    """Wrap both the request and ``response.raise_for_status()``."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        raise error_for_response(exc.response) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError) as exc:
        raise ProviderTransientError(
            f"{provider} unreachable, request not sent: {type(exc).__name__}", provider=provider
        ) from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
        raise ProviderMisconfiguredError(
            f"{provider} request could not be built: {type(exc).__name__}", provider=provider
        ) from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        # ReadTimeout, ReadError, WriteError, RemoteProtocolError, ...: the request may have arrived.
        raise ProviderAmbiguousError(
            f"{provider} outcome unknown, request may have been received: {type(exc).__name__}",
            provider=provider,
        ) from exc


_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{4,}\d")


def scrub(text: str, prefix: str = "+") -> str:
    """A provider's error text made safe to keep: phone-number-like runs masked (providers echo the
    recipient), at most 200 characters."""

    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return prefix + "*" * (len(digits) - 2) + digits[-2:]

    return _PHONE_LIKE.sub(mask, text)[:200]


def retry_after(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
