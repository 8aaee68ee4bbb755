"""A/B variants and holdouts: deterministic assignment by customer and experiment.

The same customer always lands in the same arm of the same experiment (a hash, no state), arms get
their share by weight, and different experiments are independent (the experiment name is hashed in).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from streams.journeys.definitions import Variant


def bucket(experiment: str, customer_id: str) -> float:
    """A uniform number in [0, 1) for this customer in this experiment."""
    digest = hashlib.sha256(f"{experiment}/{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: str, customer_id: str, variants: Sequence[Variant]) -> Variant | None:
    if not variants:
        return None
    point = bucket(experiment, customer_id) * sum(v.weight for v in variants)
    for variant in variants:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return variants[-1]  # floating-point edge
