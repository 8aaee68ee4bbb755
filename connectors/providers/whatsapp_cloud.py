"""Meta WhatsApp Cloud API adapter (``POST /{version}/{phone_number_id}/messages``).

All httpx and Graph API failures are translated in one place, :func:`map_meta_errors`.
Meta answers errors as ``{"error": {"code", "message", "error_subcode", "fbtrace_id"}}``;
the ``code`` decides the class, then the HTTP status (see ``_error_for_response``).

A wamid (Meta's message id) is base64 that embeds the recipient's phone number, so this
module logs our ``message_id`` only, never the wamid.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, assert_never

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
from connectors.providers.base import (Currency, DateTime, Media, ProviderReceipt, TemplateValue, WhatsAppRequest,
                                       WhatsAppTemplate)
from connectors.providers.http_pool import HttpClients

__all__ = ["MetaWhatsAppProvider", "map_meta_errors", "build_message"]

logger = logging.getLogger(__name__)

PROVIDER = "meta_whatsapp"
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20  # characters
MAX_REPLY_ID = 256
MAX_CALLBACK_DATA = 512
MAX_TEMPLATE_BUTTONS = 10  # quick-reply buttons of a template (index 0-9)
MAX_PAYLOAD = 256  # characters of a quick-reply payload parameter
MEDIA_KINDS = ("image", "document", "video")
PAIR_RATE_LIMIT_CODE = 131056  # same (business, customer) pair: about 1 message / 6 s
THROUGHPUT_CODE = 130429  # phone-number throughput (80 msg/s by default)
# Graph/Cloud API codes, by what they mean for us. Anything else: decided by the HTTP status.
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, THROUGHPUT_CODE, PAIR_RATE_LIMIT_CODE, 131000, 131016, 133004})
MISCONFIGURED_CODES = frozenset({0, 3, 10, 190, *range(200, 300), 131005, 131031, 133010})
UNKNOWN_OBJECT = (100, 33)  # "Object with ID ... does not exist": a wrong phone_number_id
_NOT_DIGITS = re.compile(r"[\s().+-]")


@contextmanager
def map_meta_errors() -> Iterator[None]:
    """Translate httpx exceptions and non-2xx Graph API responses into ``connectors.errors``.

    Wrap both the request and ``response.raise_for_status()``.
    """
    with map_http_errors(PROVIDER, _error_for_response):
        yield


def _error_for_response(response: httpx.Response) -> Exception:
    status = response.status_code
    code, subcode, detail, trace = _meta_error_fields(response)
    message = (f"meta HTTP {status}" + (f" code {code}" if code is not None else "")
               + (f"/{subcode}" if subcode is not None else "") + (f": {detail}" if detail else "")
               + (f" (fbtrace_id {trace})" if trace else ""))
    code_text = str(code) if code is not None else None
    if code in TRANSIENT_CODES or status == 429:
        return ProviderTransientError(message, provider=PROVIDER, code=code_text,
                                      retry_after=_retry_after_for(code, response))
    if code in MISCONFIGURED_CODES or status in (401, 403) or (code, subcode) == UNKNOWN_OBJECT:
        return ProviderMisconfiguredError(message, provider=PROVIDER, code=code_text)
    if status >= 500:
        return ProviderTransientError(message, provider=PROVIDER, code=code_text,
                                      retry_after=_retry_after(response))
    if status < 400:  # a redirect: the base URL is not the Graph API
        return ProviderMisconfiguredError(message, provider=PROVIDER, code=code_text)
    # 131047 (24-hour window), 131026, 131048, 131049, 100, 132xxx template errors, ...
    return ProviderRejectedError(message, provider=PROVIDER, code=code_text)


def _meta_error_fields(response: httpx.Response) -> tuple[int | None, int | None, str | None, str | None]:
    """``(code, error_subcode, phone-number-free message, fbtrace_id)`` from a Graph API error body."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None, None, None, None
    if not isinstance(error, dict):
        return None, None, None, None
    code, subcode, detail, trace = (error.get(k) for k in ("code", "error_subcode", "message", "fbtrace_id"))
    return (
        _as_int(code),
        _as_int(subcode),
        _scrub(str(detail)) if detail else None,
        str(trace)[:64] if isinstance(trace, str) and trace.isprintable() else None,
    )


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _scrub(text: str) -> str:
    return scrub(text, prefix="+")


def _retry_after_for(code: int | None, response: httpx.Response) -> float | None:
    if code == PAIR_RATE_LIMIT_CODE:
        return 6.0  # Meta's pair limit: about one message per 6 s to the same customer
    header = _retry_after(response)
    if code == THROUGHPUT_CODE and header is None:
        return 1.0
    return header




def _rejected(reason: str) -> ProviderRejectedError:
    return ProviderRejectedError(f"meta request invalid, not sent: {reason}", provider=PROVIDER)


def build_message(request: WhatsAppRequest) -> dict[str, Any]:
    """The Cloud API JSON body for ``request``; ``ProviderRejectedError`` (code None) if it cannot be sent.

    Button reply ids are ``"{message_id}#{index}"``: the inbound ``button_reply.id`` names the
    message and the button without a lookup.
    """
    to = _NOT_DIGITS.sub("", request.to or "")
    if not to.isdigit() or not 1 <= len(to) <= 15 or not to.isascii():
        raise _rejected("recipient is not a phone number")
    if (request.text is None) == (request.template is None):
        raise _rejected("exactly one of text or template is required")
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if request.template is not None:
        if request.buttons:
            raise _rejected("template quick-reply buttons are fixed at approval; buttons need text")
        template = request.template
        if not template.name or not template.language:
            raise _rejected("template needs a name and a language")
        content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if components := _components(template):
            content["components"] = components
        body.update(type="template", template=content)
    elif request.buttons:
        body.update(type="interactive", interactive=_interactive(request))
    else:
        if not request.text or not request.text.strip():
            raise _rejected("text is empty")
        body.update(type="text", text={"body": request.text})
    if request.callback_data is not None:
        if len(request.callback_data) > MAX_CALLBACK_DATA:
            raise _rejected(f"callback_data longer than {MAX_CALLBACK_DATA} characters")
        body["biz_opaque_callback_data"] = request.callback_data
    return body


def _components(template: WhatsAppTemplate) -> list[dict[str, Any]]:
    """The template's ``components``: header, body and one ``button`` component per quick-reply payload."""
    components = []
    if template.header is not None:
        components.append({"type": "header", "parameters": [_parameter(template.header)]})
    if template.body_parameters:
        components.append({"type": "body", "parameters": [_parameter(v) for v in template.body_parameters]})
    if len(template.quick_reply_payloads) > MAX_TEMPLATE_BUTTONS:
        raise _rejected(f"at most {MAX_TEMPLATE_BUTTONS} quick-reply buttons")
    for index, payload in enumerate(template.quick_reply_payloads):
        if not payload or len(payload) > MAX_PAYLOAD:
            raise _rejected(f"quick-reply payloads must be 1-{MAX_PAYLOAD} characters")
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                           "parameters": [{"type": "payload", "payload": payload}]})
    return components


def _parameter(value: TemplateValue | Media) -> dict[str, Any]:
    match value:
        case str():
            return {"type": "text", "text": value}
        case Currency(fallback=fallback, code=code, amount_1000=amount):
            if not (len(code) == 3 and code.isalpha() and code.isupper()) or not fallback:
                raise _rejected("a currency needs a fallback and an ISO 4217 code")
            return {"type": "currency", "currency": {"fallback_value": fallback, "code": code, "amount_1000": amount}}
        case DateTime(fallback=fallback):
            if not fallback:
                raise _rejected("a date_time needs a fallback")
            return {"type": "date_time", "date_time": {"fallback_value": fallback}}
        case Media(kind=kind, link=link, filename=filename):
            if kind not in MEDIA_KINDS or not link.startswith("https://"):
                raise _rejected(f"media headers are {'/'.join(MEDIA_KINDS)} at an https link")
            if filename is not None and kind != "document":
                raise _rejected("only a document takes a filename")
            return {"type": kind, kind: {"link": link, **({"filename": filename} if filename else {})}}
        case _ as unreachable:
            assert_never(unreachable)


def _interactive(request: WhatsAppRequest) -> dict[str, Any]:
    titles = request.buttons
    if len(titles) > MAX_BUTTONS:
        raise _rejected(f"{len(titles)} buttons, at most {MAX_BUTTONS} allowed")
    if any(not t or not t.strip() or len(t) > MAX_BUTTON_TITLE for t in titles):
        raise _rejected(f"button titles must be 1-{MAX_BUTTON_TITLE} characters")
    if len(set(titles)) != len(titles):
        raise _rejected("button titles must be unique")
    if not request.text or not request.text.strip():
        raise _rejected("an interactive message needs body text")
    payloads = request.button_payloads
    if payloads and (len(payloads) != len(titles) or len(set(payloads)) != len(payloads) or not all(payloads)):
        raise _rejected("one distinct, non-empty payload per button")
    ids = [f"{request.message_id}#{tail}" for tail in (payloads or range(len(titles)))]
    if any(len(reply_id) > MAX_REPLY_ID for reply_id in ids):
        raise _rejected("message_id too long for a button reply id")
    return {"type": "button", "body": {"text": request.text}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": reply_id, "title": title}} for reply_id, title in zip(ids, titles)]}}


class MetaWhatsAppProvider:
    """Sends WhatsApp messages through Meta's Cloud API; raises only ``connectors.errors.ProviderError``."""

    name = PROVIDER

    def __init__(
        self,
        phone_number_id: str,
        access_token: str | SecretStr,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 64,
    ) -> None:
        token = access_token if isinstance(access_token, SecretStr) else SecretStr(access_token)
        if not phone_number_id or not token.get_secret_value() or not api_version:
            raise ProviderMisconfiguredError(
                "meta_whatsapp needs phone_number_id, access_token and api_version", provider=PROVIDER
            )
        self._phone_number_id = phone_number_id
        self.sender_id = phone_number_id  # Meta's throughput (80/s, up to 1,000/s) is per business phone number
        self._path = f"/{api_version.strip('/')}/{phone_number_id}/messages"
        self._client = HttpClients(  # pooled keep-alive connections for the gateway's concurrent calls
            max_connections,
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token.get_secret_value()}"},
            # The Graph API speaks HTTP/2, but httpx needs the h2 package for it and the sandbox speaks
            # HTTP/1.1 only: HTTP/1.1, with a pool.
        )

    def __repr__(self) -> str:
        return (f"MetaWhatsAppProvider(phone_number_id={self._phone_number_id!r}, "
                f"base_url={str(self._client.base_url)!r})")

    async def send(self, request: WhatsAppRequest) -> ProviderReceipt:
        body = build_message(request)  # rejects before any network traffic
        with map_meta_errors():
            response = await self._client.next().post(self._path, json=body)
            response.raise_for_status()
        receipt = self._parse_receipt(response, request.message_id)
        logger.info("meta_whatsapp accepted message_id=%s type=%s", request.message_id, body["type"])
        return receipt

    @staticmethod
    def _parse_receipt(response: httpx.Response, message_id: str) -> ProviderReceipt:
        # A 2xx means Meta took the message: if we cannot read it, retrying could send twice.
        try:
            wamid = response.json()["messages"][0]["id"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            logger.error("meta_whatsapp 2xx with unreadable body message_id=%s http=%s",
                         message_id, response.status_code)
            raise ProviderAmbiguousError(
                f"meta HTTP {response.status_code} with unreadable body", provider=PROVIDER
            ) from exc
        if not isinstance(wamid, str) or not wamid:
            raise ProviderAmbiguousError(f"meta HTTP {response.status_code} without a message id", provider=PROVIDER)
        return ProviderReceipt(provider=PROVIDER, provider_message_id=wamid, status="accepted")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> MetaWhatsAppProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
