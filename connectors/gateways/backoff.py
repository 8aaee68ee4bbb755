"""Capped exponential backoff with full jitter, honouring a provider's Retry-After."""

from __future__ import annotations

import random


def delay(attempt: int, retry_after: float | None = None, *, base: float = 0.5, cap: float = 30.0,
          rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
    jittered = (rng or random).uniform(0, min(cap, base * 2 ** min(attempt - 1, 60)))
    return max(jittered, retry_after or 0.0)
