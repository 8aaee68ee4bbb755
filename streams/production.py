"""Production mode: no process runs on a development secret.

The secrets in :mod:`streams.settings` have defaults so that a fresh clone runs against the sandboxes,
and anyone who reads the source knows them. With ``SWITCHBOARD_ENV=production`` a process that would
use one refuses to start (:class:`~streams.errors.DevelopmentSecretError` naming each setting); in
development it starts and says once, in one log line, which settings still hold development values.
Only names are ever printed, never values.

Each process lists the secrets it uses (:data:`SECRETS_OF`): a Twilio SMS gateway is not refused for
Vonage's sandbox secret. The sandboxes, the demo and ``switchboard simulate`` are development tools
and are not checked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import SecretStr

from streams.errors import DevelopmentSecretError
from streams.settings import Settings

logger = logging.getLogger(__name__)

Secret = tuple[str, str]  # (section, field) of Settings


CONTACT_KEY: Secret = ("contacts", "key")  # the reply-taking gateways' (SMS, WhatsApp) contact directory


def _sms(settings: Settings) -> list[Secret]:
    if settings.sms.provider == "vonage":
        return [("sms", "vonage_api_secret"), ("sms", "vonage_signature_secret"), CONTACT_KEY]
    return [("sms", "auth_token"), CONTACT_KEY]


SECRETS_OF: dict[str, Callable[[Settings], list[Secret]]] = {
    "worker": lambda s: [("worker", "coupon_key"), ("worker", "erasure_key")],
    "gateway sms": _sms,
    "gateway whatsapp": lambda s: [("whatsapp", "access_token"), ("whatsapp", "app_secret"),
                                   ("whatsapp", "verify_token"), CONTACT_KEY],
    "gateway email": lambda s: [("email", "password"), ("preferences", "secret")],  # it signs unsubscribe links
    "preferences": lambda s: [("preferences", "secret")],
    "preference-link": lambda s: [("preferences", "secret")],
}


def env_name(section: str, field: str) -> str:
    return f"SWITCHBOARD_{section.upper()}__{field.upper()}"


def development_secrets(settings: Settings, process: str) -> list[str]:
    """The environment variable names of the secrets ``process`` would use that still hold their
    development default (the shipped value, whether left unset or set to it)."""
    found = []
    for section, field in SECRETS_OF[process](settings):
        value = getattr(getattr(settings, section), field)
        default = type(getattr(settings, section)).model_fields[field].default
        if isinstance(default, SecretStr) and isinstance(value, SecretStr) \
                and value.get_secret_value() == default.get_secret_value():
            found.append(env_name(section, field))
    return found


def check(settings: Settings, process: str) -> None:
    """Refuse (production) or warn once (development) when ``process`` would use a development secret."""
    names = development_secrets(settings, process)
    if not names:
        return
    if settings.env == "production":
        raise DevelopmentSecretError(names)
    logger.warning("development secrets in use (set them before production; SWITCHBOARD_ENV=production refuses "
                   "them): %s", ", ".join(names))
