"""The connectors package's error tree.

Third-party errors (httpx, aiohttp, provider JSON) are translated into these
exactly once, at the boundary, with ``raise ... from exc``::

    ConnectorError
     ├── ProviderError(provider, code)
     │    ├── ProviderTransientError(retry_after)   429, 5xx, connect errors: request never arrived
     │    ├── ProviderRejectedError                 4xx: permanent for this message (21211, 21610, ...)
     │    ├── ProviderMisconfiguredError            401/403, bad credentials or endpoint
     │    └── ProviderAmbiguousError                request may have reached the provider: NEVER blindly retried
     ├── UnknownProviderError(name)                 no provider registered under that name (also a LookupError)
     ├── SignatureError                             webhook signature missing or invalid
     ├── WebhookPayloadError                        malformed webhook payload (also a ValueError)
     │    └── UnknownSenderError                    an inbound message from a number we cannot place
     ├── FormEncodingError                          a request body that is not a UTF-8 form (also a ValueError)
     └── InvalidEventError(errors)                  producer-side event validation
          └── RecordTooLargeError(size, limit)     an encoded record over the producer's request limit

Messages never contain phone numbers, message bodies or secrets.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConnectorError",
    "ProviderError",
    "ProviderTransientError",
    "ProviderRejectedError",
    "ProviderMisconfiguredError",
    "ProviderAmbiguousError",
    "UnknownProviderError",
    "SignatureError",
    "WebhookPayloadError",
    "UnknownSenderError",
    "FormEncodingError",
    "InvalidEventError",
    "RecordTooLargeError",
    "DeliveryError",
]


class ConnectorError(Exception):
    """Root of every error raised by ``connectors``."""


class ProviderError(ConnectorError):
    """A provider call failed; ``code`` is the provider's own error code, if any."""

    def __init__(self, message: str, *, provider: str, code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code


class ProviderTransientError(ProviderError):
    """The provider did not take the message; retrying later is safe."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, code=code)
        self.retry_after = retry_after


class ProviderRejectedError(ProviderError):
    """The provider refused this message for good (bad number, blocklisted, ...)."""


class ProviderMisconfiguredError(ProviderError):
    """Our side is wrong (credentials, account, endpoint); no message will pass."""


class ProviderAmbiguousError(ProviderError):
    """The request may have reached the provider; a retry could send twice."""


class UnknownProviderError(ConnectorError, LookupError):
    """No provider is registered under ``name``."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown provider {name!r}; known providers: {', '.join(self.known) or 'none'}")


class SignatureError(ConnectorError):
    """A webhook's signature is missing or does not match."""


class WebhookPayloadError(ConnectorError, ValueError):
    """A webhook payload is malformed or carries values we do not understand."""


class FormEncodingError(ConnectorError, ValueError):
    """A request body that is not an ``application/x-www-form-urlencoded`` form in UTF-8."""


class InvalidEventError(ConnectorError):
    """An event failed validation before being produced."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("invalid event: " + "; ".join(self.errors) if self.errors else "invalid event")


class RecordTooLargeError(InvalidEventError):
    """An encoded record larger than a producer request may be: that record is not sent, the next ones are."""

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__([f"the encoded record is {size} bytes, over the {limit} a record may have"])


class UnknownSenderError(WebhookPayloadError):
    """An inbound message from a number no known customer has."""


class DeliveryError(ConnectorError):
    """Records the producer library accepted did not reach Kafka (raised by ``flush``): never silent."""

    def __init__(self, failed: int, first: BaseException) -> None:
        self.failed = failed
        super().__init__(f"{failed} record(s) were not delivered to Kafka; first error: {type(first).__name__}: {first}")


# The preference centre (connectors.preferences):
#
#     ConnectorError
#      ├── PreferenceLinkError              a preference link that cannot be honoured
#      │    ├── TamperedLinkError           malformed, altered, or signed with another secret (HTTP 403)
#      │    └── ExpiredLinkError            genuine but past its expiry (HTTP 410)
#      └── PreferenceFormError              a submitted form with values the page never offered (also a ValueError)

__all__ += ["PreferenceLinkError", "TamperedLinkError", "ExpiredLinkError", "PreferenceFormError"]


class PreferenceLinkError(ConnectorError):
    """A preference-centre link that cannot be honoured. Never carries the token: it is a credential."""


class TamperedLinkError(PreferenceLinkError):
    """The link is malformed, was altered, or was signed with another secret."""


class ExpiredLinkError(PreferenceLinkError):
    """The link is genuine but its expiry has passed."""


class PreferenceFormError(ConnectorError, ValueError):
    """A preference form carries a value the page never offered."""
