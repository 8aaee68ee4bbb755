"""The provider-neutral SMS request/receipt types and the ``SmsProvider`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SmsRequest", "ProviderReceipt", "SmsProvider", "WhatsAppTemplate", "WhatsAppRequest", "EmailRequest",
           "WhatsAppProvider", "EmailProvider", "Currency", "DateTime", "Media", "TemplateValue"]


@dataclass(frozen=True)
class SmsRequest:
    """One SMS to send. ``to``/``body`` are personal data: never log them."""

    message_id: str
    to: str
    body: str
    sender: str | None = None
    status_callback: str | None = None

    def __repr__(self) -> str:  # keep numbers and bodies out of logs and tracebacks
        return f"SmsRequest(message_id={self.message_id!r}, to=<redacted>, body=<{len(self.body)} chars>)"


@dataclass(frozen=True)
class ProviderReceipt:
    """What the provider said when it accepted a message."""

    provider: str
    provider_message_id: str
    status: str
    segments: int | None = None


@runtime_checkable
class SmsProvider(Protocol):
    """An SMS provider adapter; errors are raised as ``connectors.errors.ProviderError``."""

    name: str

    async def send(self, request: SmsRequest) -> ProviderReceipt: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Currency:
    """A money placeholder WhatsApp localises: ``amount_1000`` is the amount times 1000 (19.99 EUR -> 19990)."""

    fallback: str
    code: str  # ISO 4217
    amount_1000: int


@dataclass(frozen=True)
class DateTime:
    """A date placeholder; Meta shows ``fallback`` as given."""

    fallback: str


@dataclass(frozen=True)
class Media:
    """A media header: an ``image``, ``document`` or ``video`` at an https ``link``."""

    kind: str
    link: str
    filename: str | None = None  # documents only


TemplateValue = str | Currency | DateTime


@dataclass(frozen=True)
class WhatsAppTemplate:
    """An approved WhatsApp message template and its parameters: the body placeholders ({{1}}, {{2}} …), a header
    (text, money, date or media) and the payloads of its quick-reply buttons, in button order."""

    name: str
    language: str
    category: str  # "marketing" | "utility" | "authentication" (Meta's template categories)
    body_parameters: tuple[TemplateValue, ...] = ()
    header: TemplateValue | Media | None = None
    quick_reply_payloads: tuple[str, ...] = ()


@dataclass(frozen=True)
class WhatsAppRequest:
    """One WhatsApp message: free-form ``text`` (only inside the 24-hour window) or a ``template``.

    ``buttons`` are quick-reply button titles (at most 3) for an interactive message, and ``button_payloads``
    (when given, one per title) what a press of each sends back: the reply id is ``<message_id>#<payload>``
    (``#<index>`` without payloads), so :func:`reply_payload` gives the payload back.
    ``callback_data`` travels to the status webhooks (``biz_opaque_callback_data``).
    """

    message_id: str
    to: str
    text: str | None = None
    template: WhatsAppTemplate | None = None
    buttons: tuple[str, ...] = ()
    callback_data: str | None = None
    button_payloads: tuple[str, ...] = ()

    def __repr__(self) -> str:
        kind = "template" if self.template else "text"
        return f"WhatsAppRequest(message_id={self.message_id!r}, to=<redacted>, {kind})"


def reply_payload(reply_id: str) -> str:
    """The payload of an interactive reply id made for a :class:`WhatsAppRequest`'s buttons."""
    return reply_id.rsplit("#", 1)[-1]


@dataclass(frozen=True)
class EmailRequest:
    """One e-mail with a plain-text part and an optional HTML part."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str | None = None
    sender: str | None = None
    list_unsubscribe: str | None = None  # URL for List-Unsubscribe / RFC 8058 one-click

    def __repr__(self) -> str:
        return f"EmailRequest(message_id={self.message_id!r}, to=<redacted>, subject=<{len(self.subject)} chars>)"


@runtime_checkable
class WhatsAppProvider(Protocol):
    name: str

    async def send(self, request: WhatsAppRequest) -> ProviderReceipt: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EmailProvider(Protocol):
    name: str

    async def send(self, request: EmailRequest) -> ProviderReceipt: ...

    async def aclose(self) -> None: ...
