"""Twilio webhook signatures (``X-Twilio-Signature``).

signature = base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 ...)),
params sorted by name, then by value for repeated names. JSON webhooks sign the URL
only, and the URL's ``bodySHA256`` query parameter carries hex SHA-256 of the raw body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from connectors.errors import FormEncodingError, SignatureError
from connectors.forms import decode_form

__all__ = ["compute_signature", "verify_signature", "verify_form_signature", "verify_signature_with_body",
           "SIGNATURE_HEADER"]

SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"https": 443, "http": 80}

Params = Mapping[str, str] | Iterable[tuple[str, str]]
Token = str | SecretStr


def compute_signature(auth_token: Token, url: str, params: Params) -> str:
    """Base64 HMAC-SHA1 signature Twilio sends for a request to ``url`` with form ``params``.

    ``params`` may be a mapping (a multidict's ``items()`` keeps repeated keys) or pairs.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    payload = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(_token_bytes(auth_token), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(auth_token: Token, url: str, params: Params, signature: str | None) -> None:
    """Raise ``SignatureError`` unless ``signature`` is Twilio's signature for ``url`` + ``params``.

    Like Twilio's SDKs, ``url`` is also tried with its default port (:443/:80) added or removed.
    """
    if not signature or not signature.strip():
        raise SignatureError(f"missing {SIGNATURE_HEADER}")
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    given = signature.strip().encode("utf-8")
    matches = [
        hmac.compare_digest(compute_signature(auth_token, candidate, pairs).encode("ascii"), given)
        for candidate in _url_variants(url)
    ]
    if not any(matches):
        raise SignatureError(f"invalid {SIGNATURE_HEADER}")


def verify_form_signature(auth_token: Token, url: str, raw_body: bytes, signature: str | None) -> dict[str, str]:
    """Verify a form webhook from its raw body, before anything else parses it; its fields if genuine.

    A body that is not a UTF-8 form cannot carry Twilio's signature (Twilio signs decoded values), so it is
    refused like a forgery: ``SignatureError``, never a decoding error."""
    try:
        pairs = decode_form(raw_body)
    except FormEncodingError as exc:
        raise SignatureError(f"body is not a form Twilio signs: {exc}") from None
    verify_signature(auth_token, url, pairs, signature)
    return dict(pairs)


def verify_signature_with_body(auth_token: Token, url: str, raw_body: bytes | str, signature: str | None) -> None:
    """Verify a JSON-body webhook: the URL's ``bodySHA256`` must hash ``raw_body`` and the URL must be signed."""
    verify_signature(auth_token, url, (), signature)
    expected = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not expected or not expected[0]:
        raise SignatureError("missing bodySHA256 query parameter")
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
    actual = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(actual.encode("ascii"), expected[0].strip().lower().encode("utf-8")):
        raise SignatureError("body does not match bodySHA256")


def _url_variants(url: str) -> list[str]:
    """``url`` as given, plus the same URL with its default port added or removed."""
    variants = [url]
    parts = urlsplit(url)
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        return variants
    if default is None or not parts.hostname:
        return variants
    if port is None:
        variants.append(_with_netloc(url, parts.netloc, f"{parts.netloc}:{default}"))
    elif port == default:
        host_part = parts.netloc.rsplit(":", 1)[0]
        variants.append(_with_netloc(url, parts.netloc, host_part))
    return variants


def _with_netloc(url: str, netloc: str, new_netloc: str) -> str:
    """Swap the authority in ``url`` without re-serialising (and so altering) anything else."""
    start = url.find("//") + 2
    return url[:start] + new_netloc + url[start + len(netloc):]


def _token_bytes(auth_token: Token) -> bytes:
    token = auth_token.get_secret_value() if isinstance(auth_token, SecretStr) else auth_token
    return token.encode("utf-8")
