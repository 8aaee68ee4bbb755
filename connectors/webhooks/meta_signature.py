"""Meta (WhatsApp Cloud API) webhook signatures and the subscription handshake.

Event POSTs carry ``X-Hub-Signature-256: sha256=<hex>`` where
hex = lowercase hex(HMAC-SHA256(key=App Secret, msg=raw request body bytes)).
Meta signs the bytes it sends (unicode escaped as ``\\u00e4``), so verify the raw body
before parsing and never re-serialise parsed JSON.

Only the exact form Meta sends is accepted: the ``sha256=`` prefix and 64 *lowercase* hex
digits. An uppercase digest is the same HMAC, but Meta never sends one, so it is treated as
"not from Meta" rather than normalised. The legacy ``X-Hub-Signature: sha1=...`` is not
accepted here.

The handshake is ``GET <callback>?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``:
answer 200 with the challenge as a ``text/plain`` body, or 403 on ``SignatureError``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from pydantic import SecretStr

from connectors.errors import SignatureError

__all__ = ["compute_signature", "verify_signature", "verify_challenge", "SIGNATURE_HEADER", "PREFIX"]

SIGNATURE_HEADER = "X-Hub-Signature-256"
PREFIX = "sha256="
_HEX_LENGTH = 64
_LOWER_HEX = frozenset("0123456789abcdef")

Secret = str | SecretStr


def compute_signature(app_secret: Secret, raw_body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``raw_body``: ``"sha256=" + lowercase hex``."""
    return PREFIX + hmac.new(_secret_bytes(app_secret), raw_body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: Secret, raw_body: bytes, header: str | None) -> None:
    """Raise ``SignatureError`` unless ``header`` is Meta's signature of exactly ``raw_body``."""
    if header is None or not header.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER}")
    given = header.strip()
    if not given.startswith(PREFIX):
        raise SignatureError(f"{SIGNATURE_HEADER} is not a sha256= signature")
    digest = given[len(PREFIX):]
    if len(digest) != _HEX_LENGTH or not set(digest) <= _LOWER_HEX:
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: expected {_HEX_LENGTH} lowercase hex digits")
    if not _secret_bytes(app_secret):
        raise SignatureError("no app secret configured")
    expected = compute_signature(app_secret, raw_body)
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise SignatureError(f"invalid {SIGNATURE_HEADER}")


def verify_challenge(params: Mapping[str, str], verify_token: Secret) -> str:
    """The ``hub.challenge`` to echo if this is a subscribe request with our verify token.

    Raises ``SignatureError`` for another mode, a wrong or missing token, an empty configured
    token or a missing challenge.
    """
    expected = _secret_bytes(verify_token)
    if not expected:
        raise SignatureError("no verify token configured")
    if params.get("hub.mode") != "subscribe":
        raise SignatureError("hub.mode is not subscribe")
    given = params.get("hub.verify_token")
    if not given or not hmac.compare_digest(given.encode("utf-8"), expected):
        raise SignatureError("hub.verify_token does not match")
    challenge = params.get("hub.challenge")
    if not challenge:
        raise SignatureError("missing hub.challenge")
    return challenge


def _secret_bytes(secret: Secret) -> bytes:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return value.encode("utf-8")
