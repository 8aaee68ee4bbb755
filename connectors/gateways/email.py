"""The e-mail channel: a command's subject and text, with an HTML part, through an SMTP provider."""

from __future__ import annotations

import datetime as dt

from connectors.providers.base import EmailProvider, EmailRequest, ProviderReceipt
from schemas.messages import SendCommand
from streams.templates import email_html


class EmailSender:
    def __init__(self, provider: EmailProvider) -> None:
        self._provider = provider
        self.provider_name = provider.name

    def limit_key(self, command: SendCommand) -> str:
        return getattr(self._provider, "sender_id", self.provider_name)  # the relay account / sender

    def cost(self, command: SendCommand) -> int:
        return 1

    async def send(self, command: SendCommand) -> ProviderReceipt:
        return await self._provider.send(EmailRequest(
            message_id=command.message_id, to=command.to, subject=command.subject or command.template,
            text=command.body, html=email_html(command.body, command.locale),
        ))

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        return None  # the provider has no lookup: an ambiguous send stays ambiguous until a receipt says more

    async def aclose(self) -> None:
        await self._provider.aclose()
