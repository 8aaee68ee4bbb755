"""The preference centre's signed addresses: a customer's preference page, and the unsubscribe link of one
marketing e-mail. Pure: the time is passed in.

An e-mail's links stay valid for :data:`EMAIL_LINK_TTL` from when its send command was made (not from
when it is sent, so every attempt at the same message carries the same bytes): people open old e-mails,
mailbox providers keep the List-Unsubscribe address, and CAN-SPAM wants an unsubscribe mechanism to work
for at least 30 days after the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from connectors.preferences import tokens
from streams.settings import PreferenceSettings

PAGE_PATH = "/preferences/{token}"
UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
EMAIL_LINK_TTL = dt.timedelta(days=180)


def secret_of(config: PreferenceSettings) -> bytes:
    return config.secret.get_secret_value().encode()


def link_for(config: PreferenceSettings, customer_id: str, store_id: str, now: dt.datetime,
             ttl_seconds: int | None = None) -> str:
    """The signed address of a customer's preference page, valid for the configured time from ``now``."""
    expires_at = now + dt.timedelta(seconds=ttl_seconds or config.link_ttl_seconds)
    return _url(config, PAGE_PATH, tokens.make_token(secret_of(config), customer_id, store_id, expires_at))


@dataclass(frozen=True)
class EmailLinks:
    unsubscribe: str  # https: RFC 8058 one-click POSTs here; a browser GETs a confirmation page
    preferences: str


def email_links(config: PreferenceSettings, customer_id: str, store_id: str, message_id: str,
                made_at: dt.datetime) -> EmailLinks:
    """The unsubscribe and preference links of one marketing e-mail (each token names the message)."""
    token = tokens.make_token(secret_of(config), customer_id, store_id, made_at + EMAIL_LINK_TTL, message_id)
    return EmailLinks(unsubscribe=_url(config, UNSUBSCRIBE_PATH, token), preferences=_url(config, PAGE_PATH, token))


def _url(config: PreferenceSettings, path: str, token: str) -> str:
    return config.public_base_url.rstrip("/") + path.format(token=token)
