"""Form bodies (``application/x-www-form-urlencoded``) read from their raw bytes, strictly.

aiohttp's ``request.post()`` raises ``UnicodeDecodeError`` on a body that is not UTF-8 (a 500, with a
traceback, before any signature could be checked). :func:`decode_form` reads the same pairs, in order and
with repeated and blank fields kept (what Twilio signs), and raises :class:`FormEncodingError` instead.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from connectors.errors import FormEncodingError

MAX_FIELDS = 1000  # a provider's webhook has a few dozen; a page's form fewer


def decode_form(raw: bytes) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of a form body; :class:`FormEncodingError` for one that is not UTF-8
    (raw or percent-escaped) or has more than :data:`MAX_FIELDS` fields."""
    try:
        return parse_qsl(raw.rstrip().decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict",
                         max_num_fields=MAX_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError is one
        raise FormEncodingError(f"unreadable form body ({type(exc).__name__})") from None
