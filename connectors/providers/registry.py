"""Name -> SMS provider factory, so configuration can pick a provider by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.errors import UnknownProviderError
from connectors.providers.base import SmsProvider
from connectors.providers.twilio import TwilioSmsProvider
from connectors.providers.vonage import VonageSmsProvider

__all__ = ["SMS_PROVIDERS", "build_sms_provider"]

SMS_PROVIDERS: dict[str, Callable[..., SmsProvider]] = {
    "twilio": TwilioSmsProvider,
    "vonage": VonageSmsProvider,
}


def build_sms_provider(name: str, **config: Any) -> SmsProvider:
    """Build the provider registered as ``name`` (case-insensitive) with its ``config``.

    Raises ``UnknownProviderError`` for an unregistered name; a missing or unexpected
    config key is the factory's ``TypeError``.
    """
    try:
        factory = SMS_PROVIDERS[name.strip().lower()]
    except KeyError:
        raise UnknownProviderError(name, SMS_PROVIDERS) from None
    return factory(**config)
