"""Name -> WhatsApp provider factory, so configuration can pick a provider by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.errors import UnknownProviderError
from connectors.providers.base import WhatsAppProvider
from connectors.providers.whatsapp_cloud import MetaWhatsAppProvider

__all__ = ["WHATSAPP_PROVIDERS", "build_whatsapp_provider"]

WHATSAPP_PROVIDERS: dict[str, Callable[..., WhatsAppProvider]] = {
    "meta_whatsapp": MetaWhatsAppProvider,
}


def build_whatsapp_provider(name: str, **config: Any) -> WhatsAppProvider:
    """Build the provider registered as ``name`` (case-insensitive) with its ``config``.

    Raises ``UnknownProviderError`` for an unregistered name; a missing or unexpected
    config key is the factory's ``TypeError``.
    """
    try:
        factory = WHATSAPP_PROVIDERS[name.strip().lower()]
    except KeyError:
        raise UnknownProviderError(name, WHATSAPP_PROVIDERS) from None
    return factory(**config)
