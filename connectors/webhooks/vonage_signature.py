"""Vonage SMS API signatures: every method the dashboard offers, for requests and for receipts (pure).

developer.vonage.com, "Signing messages": the account's signature secret and one algorithm chosen in
the dashboard, "MD5 hash" by default, or MD5 HMAC, SHA1 HMAC, SHA-256 HMAC, SHA-512 HMAC. Every
parameter but ``sig`` is sorted by key and joined as ``&key=value`` (an ``&`` or ``=`` inside a value
becomes ``_``, for hashing only; the values travel unchanged), then::

    md5hash:                    sig = hex(md5(joined + secret))
    md5 / sha1 / sha256 / sha512: sig = hex(HMAC-<method>(key=secret, msg=joined))

The v4 Python SDK (``vonage_http_client.Auth.sign_params``) implements the HMAC family only and names the
methods ``md5``, ``sha1``, ``sha256``, ``sha512``; we use its names and ``md5hash`` for the legacy one.
Vonage may send the hex in either case, so it is compared case-insensitively.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import SecretStr

from connectors.errors import SignatureError

__all__ = ["SignatureMethod", "SIGNATURE_METHODS", "SIGNATURE_PARAM", "compute_signature", "verify_signature"]

SignatureMethod = Literal["md5hash", "md5", "sha1", "sha256", "sha512"]
SIGNATURE_METHODS: tuple[str, ...] = get_args(SignatureMethod)
SIGNATURE_PARAM = "sig"
_HEX_LENGTH = {"md5hash": 32, "md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")

Secret = str | SecretStr


def compute_signature(signature_secret: Secret, params: Mapping[str, Any], method: str = "md5hash") -> str:
    """Lowercase hex signature of ``params`` by ``method`` (any ``sig`` among them is left out)."""
    joined = "".join(f"&{key}={_sanitise(params[key])}" for key in sorted(params) if key != SIGNATURE_PARAM)
    secret = _secret(signature_secret)
    if method == "md5hash":
        return hashlib.md5((joined + secret).encode("utf-8")).hexdigest()
    if method not in _HEX_LENGTH:
        raise ValueError(f"unknown Vonage signature method {method!r}: one of {', '.join(SIGNATURE_METHODS)}")
    return hmac.new(secret.encode("utf-8"), joined.encode("utf-8"), method).hexdigest()


def verify_signature(signature_secret: Secret, params: Mapping[str, Any], *, method: str = "md5hash",
                     max_age: float | None = None, now: float | None = None) -> None:
    """Raise ``SignatureError`` unless ``params["sig"]`` is the ``method`` signature of the other params.

    Compared case-insensitively, in constant time. With ``max_age`` (seconds), a signed ``timestamp``
    further than that from ``now`` (default: the wall clock) is refused too: an old receipt replayed.
    """
    given = str(params.get(SIGNATURE_PARAM) or "").strip()
    if not given:
        raise SignatureError(f"missing {SIGNATURE_PARAM} parameter")
    if len(given) != _HEX_LENGTH.get(method, 0) or not _HEX.match(given):
        raise SignatureError(f"malformed {SIGNATURE_PARAM}: expected {_HEX_LENGTH.get(method)} hex digits")
    if not _secret(signature_secret):
        raise SignatureError("no signature secret configured")
    expected = compute_signature(signature_secret, params, method)
    if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("ascii")):
        raise SignatureError(f"invalid {SIGNATURE_PARAM}")
    if max_age is not None:
        try:
            signed_at = int(str(params.get("timestamp", "")).strip())
        except ValueError:
            raise SignatureError("signed receipt without a usable timestamp") from None
        if abs((time.time() if now is None else now) - signed_at) > max_age:
            raise SignatureError("signed receipt timestamp is outside the accepted window")


def _sanitise(value: Any) -> str:
    return str(value).replace("&", "_").replace("=", "_")


def _secret(secret: Secret) -> str:
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret
