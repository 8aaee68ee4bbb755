"""The e-mail channel: a command's subject and text, with an HTML part, through an SMTP provider.

A marketing e-mail is sent compliant: an RFC 8058 one-click ``List-Unsubscribe`` (+ ``-Post``) header and,
at the end of both parts, a visible unsubscribe link and preference-centre link, in the customer's language
— signed links to the preference centre naming this message (:mod:`connectors.preferences.links`).
Transactional e-mail carries neither.
"""

from __future__ import annotations

import datetime as dt
import html
import logging

from connectors.preferences.choices import language_of
from connectors.preferences.links import EmailLinks, email_links
from connectors.preferences.texts import UNSUBSCRIBE
from connectors.providers.base import EmailProvider, EmailRequest, ProviderReceipt
from schemas.messages import SendCommand
from schemas.types import Purpose
from streams.settings import PreferenceSettings
from streams.templates import email_html

logger = logging.getLogger(__name__)


def with_footer(text: str, html_part: str, links: EmailLinks, locale: str) -> tuple[str, str]:
    """The text and HTML parts with the unsubscribe and preference links at their end. Pure."""
    t = UNSUBSCRIBE[language_of(locale)]
    text = f"{text.rstrip()}\n\n--\n{t['unsubscribe']}: {links.unsubscribe}\n{t['preferences']}: {links.preferences}\n"
    footer = (f'<hr>\n<p id="unsubscribe" style="font-size:small">'
              f'<a href="{html.escape(links.unsubscribe)}">{html.escape(t["unsubscribe"])}</a> · '
              f'<a href="{html.escape(links.preferences)}">{html.escape(t["preferences"])}</a></p>\n')
    head, body_end, tail = html_part.rpartition("</body>")  # email_html's page: the footer goes inside its body
    return text, (f"{head}{footer}{body_end}{tail}" if body_end else html_part + footer)


class EmailSender:
    def __init__(self, provider: EmailProvider, preferences: PreferenceSettings) -> None:
        self._provider = provider
        self._preferences = preferences
        self.provider_name = provider.name
        if not preferences.public_base_url.lower().startswith("https://"):
            logger.warning("preferences.public_base_url is not https: marketing e-mail gets List-Unsubscribe "
                           "without RFC 8058 one-click (List-Unsubscribe-Post)")

    def limit_key(self, command: SendCommand) -> str:
        return getattr(self._provider, "sender_id", self.provider_name)  # the relay account / sender

    def cost(self, command: SendCommand) -> int:
        return 1

    async def send(self, command: SendCommand) -> ProviderReceipt:
        return await self._provider.send(request_for(command, self._preferences))

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        return None  # the provider has no lookup: an ambiguous send stays ambiguous until a receipt says more

    async def aclose(self) -> None:
        await self._provider.aclose()


def request_for(command: SendCommand, preferences: PreferenceSettings) -> EmailRequest:
    """The e-mail of a command; the same bytes for every attempt at it (the links expire from ``created_at``)."""
    text, html_part = command.body, email_html(command.body, command.locale)
    unsubscribe = None
    if Purpose(command.purpose) == Purpose.MARKETING:
        links = email_links(preferences, command.customer_id, command.store_id, command.message_id,
                            command.created_at)
        text, html_part = with_footer(text, html_part, links, command.locale)
        unsubscribe = links.unsubscribe
    return EmailRequest(message_id=command.message_id, to=command.to, subject=command.subject or command.template,
                        text=text, html=html_part, list_unsubscribe=unsubscribe)
