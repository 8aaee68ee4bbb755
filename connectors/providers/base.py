"""The provider-neutral SMS request/receipt types and the ``SmsProvider`` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["SmsRequest", "ProviderReceipt", "SmsProvider"]


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
