"""What the Twilio sandbox should do: a pure-data scenario and its deterministic outcomes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["SandboxScenario", "planned_outcome", "FAILURES"]

# (final status, Twilio ErrorCode) for a failing message.
FAILURES: tuple[tuple[str, str], ...] = (
    ("undelivered", "30003"),  # unreachable destination handset
    ("undelivered", "30005"),  # unknown destination handset
    ("failed", "30007"),  # message filtered (carrier violation)
)
# Magic 'To' suffixes that always fail the same way, whatever the fail_rate.
MAGIC_SUFFIXES: dict[str, tuple[str, str]] = {
    "0003": FAILURES[0],
    "0005": FAILURES[1],
    "0007": FAILURES[2],
}


@dataclass(frozen=True)
class SandboxScenario:
    """Behaviour knobs for the Twilio sandbox; the defaults look like a healthy real account.

    fail_rate: fraction of numbers whose messages end undelivered/failed, picked from a
        hash of the 'To' number so reruns agree. Numbers ending 0003/0005/0007 always fail
        with 30003/30005/30007.
    rate_limit_every: answer every Nth Messages request with 429 / 20429 (0 = never).
    callback_delay: seconds before each status callback.
    duplicate_receipts: send every status callback twice.
    reorder_receipts: send the final status before ``sent``.
    callback_retries / callback_retry_delay: extra attempts (exponential backoff) when the
        receiver refuses the connection, times out or answers 5xx (status callbacks and
        inbound-message webhooks alike).
    drop_response_every: for every Nth *accepted* create request, store the message (its
        receipts follow as usual) but close the connection without answering: the ambiguous
        send a client must reconcile through the list API (0 = never).
    segment_price: what one segment costs, in USD; Twilio fills a message's ``price`` (negative: a
        charge, ``segments × segment_price``) once it is billed, when it reaches ``delivered`` or
        ``undelivered`` (a ``failed`` message never left Twilio and is not billed).
    slow_suffix / slow_delay: a create request to a 'To' number ending ``slow_suffix`` is stored
        at once but answered only after ``slow_delay`` seconds (a provider that is slow for some
        requests: the others must not wait for it). Empty suffix = never.
    """

    fail_rate: float = 0.02
    rate_limit_every: int = 0
    callback_delay: float = 0.5
    duplicate_receipts: bool = False
    reorder_receipts: bool = False
    callback_retries: int = 3
    callback_retry_delay: float = 0.5
    drop_response_every: int = 0
    slow_suffix: str = ""
    slow_delay: float = 0.0
    segment_price: float = 0.0079

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be within [0, 1]")
        if self.rate_limit_every < 0 or self.callback_retries < 0 or self.drop_response_every < 0:
            raise ValueError("rate_limit_every, callback_retries and drop_response_every must be >= 0")
        if self.callback_delay < 0 or self.callback_retry_delay < 0 or self.slow_delay < 0 or self.segment_price < 0:
            raise ValueError("delays must be >= 0")


def planned_outcome(to: str, scenario: SandboxScenario) -> tuple[str, str | None]:
    """Final (status, ErrorCode) for a message to ``to``: the same for the same number, always."""
    for suffix, failure in MAGIC_SUFFIXES.items():
        if to.endswith(suffix):
            return failure
    digest = hashlib.sha256(to.encode("utf-8")).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    if draw < scenario.fail_rate:
        return FAILURES[digest[8] % len(FAILURES)]
    return "delivered", None
