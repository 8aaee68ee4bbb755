"""Signed, expiring preference links: ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``.

The MAC covers the payload exactly as it travels (its base64url text), and the signature is compared as
text in constant time, so changing any character of either part is refused: there is no second spelling
of a valid token. The payload is compact JSON, ``{"c": customer id, "s": store id, "e": expiry in whole
seconds since the epoch}``, and ``"m"``: our message id when the link was sent in a message (an e-mail's
unsubscribe link: the proof of which message the customer acted on); it is signed, not encrypted (a customer
may read their own id).

Pure: no clock of its own (``now`` is passed in), no settings, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

from connectors.errors import ExpiredLinkError, TamperedLinkError

MAX_TOKEN_LENGTH = 4096  # far above any real token; refuse before hashing megabytes
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Claims:
    customer_id: str
    store_id: str
    expires_at: dt.datetime
    message_id: str | None = None  # the message the link was sent in


def make_token(secret: bytes, customer_id: str, store_id: str, expires_at: dt.datetime,
               message_id: str | None = None) -> str:
    """A token for this customer of this store, valid until ``expires_at`` (rounded down to the second), naming
    the message it is sent in if ``message_id`` is given."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    claims: dict[str, object] = {"c": customer_id, "s": store_id,
                                 "e": (expires_at - _EPOCH) // dt.timedelta(seconds=1)}  # exact
    if message_id is not None:
        claims["m"] = message_id
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("ascii"))
    return f"{payload}.{_sign(secret, payload)}"


def verify(secret: bytes, token: str, now: dt.datetime) -> Claims:
    """The token's claims; :class:`TamperedLinkError` unless it is exactly as signed with ``secret``,
    :class:`ExpiredLinkError` at and after its expiry."""
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > MAX_TOKEN_LENGTH:
        raise TamperedLinkError("not a preference link")
    expected = _sign(secret, payload).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
        raise TamperedLinkError("the link's signature does not match")
    claims = _claims(payload)
    if now >= claims.expires_at:
        raise ExpiredLinkError("the link has expired")
    return claims


def _claims(payload: str) -> Claims:
    """Only reached with a valid signature, so a bad payload means a leaked secret or a bug: still refused."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        customer_id, store_id, expires, message_id = raw["c"], raw["s"], raw["e"], raw.get("m")
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
        raise TamperedLinkError("the link's payload is malformed") from exc
    if not (isinstance(customer_id, str) and isinstance(store_id, str) and type(expires) is int
            and (message_id is None or isinstance(message_id, str))):
        raise TamperedLinkError("the link's payload is malformed")
    try:
        expires_at = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise TamperedLinkError("the link's payload is malformed") from exc
    return Claims(customer_id, store_id, expires_at, message_id)


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
