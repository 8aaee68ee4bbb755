"""Flow control for a gateway: a token bucket per sender and a circuit breaker per provider.

Both only ever make the gateway *wait*; neither drops a message. Clocks are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._tokens, self._at = float(burst), clock()

    def reserve(self) -> float:
        """Takes a token; returns how long to wait before using it (0 when one was there)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; while open, callers wait ``cool_off`` seconds
    from the last failure before one trial call (half-open); a success closes it again."""

    def __init__(self, threshold: int = 5, cool_off: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold, self._cool_off, self._clock = threshold, cool_off, clock
        self._failures, self._opened_at = 0, 0.0

    @property
    def open(self) -> bool:
        return self._failures >= self._threshold

    def wait(self) -> float:
        """Seconds to wait before the next call may be tried."""
        if not self.open:
            return 0.0
        return max(self._opened_at + self._cool_off - self._clock(), 0.0)

    def failure(self) -> None:
        self._failures += 1
        if self._failures >= self._threshold:
            self._opened_at = self._clock()

    def success(self) -> None:
        self._failures = 0


class SenderLimits:
    """One token bucket per sender, as the provider counts (a WhatsApp phone number id, an SMS sending
    number or messaging service), spent in the provider's unit (SMS: segments), transactional first.

    A transactional send reserves its tokens at once (the bucket may go into debt) and waits its turn; a
    bulk send only takes tokens that are there, so it queues behind every transactional reservation and a
    campaign can never push an order update back."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._rate, self._burst, self._clock = rate, float(burst), clock
        self._buckets: dict[str, list[float]] = {}  # sender -> [tokens, at]

    def _refill(self, sender: str) -> list[float]:
        now = self._clock()
        bucket = self._buckets.setdefault(sender, [self._burst, now])
        bucket[0] = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        return bucket

    def reserve(self, sender: str, cost: float = 1.0) -> float:
        """Transactional: takes ``cost`` tokens now; returns how long to wait before using them."""
        bucket = self._refill(sender)
        bucket[0] -= cost
        return 0.0 if bucket[0] >= 0 else -bucket[0] / self._rate

    def take(self, sender: str, cost: float = 1.0) -> float:
        """Bulk: takes ``cost`` tokens only if they are there (0.0); else takes nothing and says how long
        until they might be (ask again then: a transactional reservation may come first)."""
        bucket = self._refill(sender)
        cost = min(cost, self._burst)  # a send costing more than the burst would otherwise never go
        if bucket[0] >= cost:
            bucket[0] -= cost
            return 0.0
        return (cost - bucket[0]) / self._rate
