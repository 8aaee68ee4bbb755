"""Form bodies (``application/x-www-form-urlencoded``, ``multipart/form-data``) read from their raw bytes, strictly.

aiohttp's ``request.post()`` raises ``UnicodeDecodeError`` on a body that is not UTF-8 (a 500, with a
traceback, before any signature could be checked). :func:`decode_form` reads the same pairs, in order and
with repeated and blank fields kept (what Twilio signs), and raises :class:`FormEncodingError` instead.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
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


def decode_multipart_form(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    """The text fields of a ``multipart/form-data`` body (``content_type`` is its header, with the boundary),
    read from the raw bytes (aiohttp's ``post()`` cannot re-read a body already read); files are skipped.
    :class:`FormEncodingError` for a body that is not one."""
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    if not message.is_multipart() or message.defects:
        raise FormEncodingError("unreadable multipart body")
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue
        try:
            fields.append((name, part.get_content()))
        except (LookupError, ValueError, KeyError) as exc:  # an unknown charset, bytes that are not its text
            raise FormEncodingError(f"unreadable multipart field ({type(exc).__name__})") from None
        if len(fields) > MAX_FIELDS:
            raise FormEncodingError("too many fields")
    return fields
