"""Marketing frequency caps across channels: at most N marketing messages per customer per window.

Pure: no Faust, no I/O, no clock of its own. A store's ``FrequencyPolicy`` is a set of
``CapRule``s that must all hold, e.g. the default: at most 2 in any 24 hours and 5 in any 7 days
(our choice, not a legal figure; it stays below the 3 per 24 hours on one subject that Florida's
FTSA is reported to allow, a figure not verified). Caps count every channel together and apply to
marketing only: transactional messages are never checked nor recorded (``applies_to``).

A rule "N per W" holds when no half-open window [t, t + W) contains more than N sends; a send at
``now`` is allowed when fewer than N sends fall in (now - W, now]. When a cap is reached,
``Capped.until`` is the first instant at which every rule allows one more; the store's
``on_capped`` says whether the caller drops the message or defers it to then.

State is a JSON-able dict (part of the customer's state, ``sent``): ``{"sent": [epoch_microseconds, ...]}``,
ascending; microseconds keep ``until`` exact and stay below 2**53 (safe JSON numbers) until 2255.
``record`` keeps only sends inside the policy's longest window, and at most as many as its largest
count: that is all ``check`` ever needs, so the state stays small however many messages are sent.
A policy changed to a longer window sees only the history the old one kept. Sends are expected to be
recorded in time order; a send recorded in the future of ``now`` counts as if it had happened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from schemas.types import Purpose

CapState = dict[str, list[int]]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_US = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class CapRule:
    max_count: int
    window: dt.timedelta

    def __post_init__(self) -> None:
        if self.max_count < 1 or self.window <= dt.timedelta(0):
            raise ValueError(f"a cap needs max_count >= 1 and a positive window, got {self}")


@dataclass(frozen=True)
class FrequencyPolicy:
    rules: tuple[CapRule, ...]
    on_capped: Literal["drop", "defer"] = "defer"

    def __post_init__(self) -> None:
        if self.on_capped not in ("drop", "defer"):
            raise ValueError(f"on_capped is 'drop' or 'defer', got {self.on_capped!r}")


DEFAULT_POLICY = FrequencyPolicy((CapRule(2, dt.timedelta(hours=24)), CapRule(5, dt.timedelta(days=7))))


@dataclass(frozen=True)
class Allowed:
    pass


@dataclass(frozen=True)
class Capped:
    until: dt.datetime


CapDecision = Allowed | Capped


def applies_to(purpose: Purpose | str) -> bool:
    """Caps are for marketing; transactional messages are never capped."""
    return Purpose(purpose) == Purpose.MARKETING


def _to_us(at: dt.datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("caps need aware datetimes")
    return (at - _EPOCH) // _US


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + us * _US


def record(state: CapState | None, sent_at: dt.datetime, policy: FrequencyPolicy = DEFAULT_POLICY) -> CapState:
    """The state after a marketing send at ``sent_at``; the input is not modified."""
    sent = sorted([*(state or {}).get("sent", []), _to_us(sent_at)])
    if not policy.rules:
        return {"sent": []}
    longest = max(rule.window for rule in policy.rules) // _US
    keep = max(rule.max_count for rule in policy.rules)
    return {"sent": [us for us in sent if us > sent[-1] - longest][-keep:]}


def check(state: CapState | None, now: dt.datetime, policy: FrequencyPolicy = DEFAULT_POLICY) -> CapDecision:
    """Allowed when one more send at ``now`` keeps every rule, else Capped until the first instant it would."""
    sent = [_from_us(us) for us in (state or {}).get("sent", [])]
    until = now
    for rule in policy.rules:
        recent = [at for at in sent if at > now - rule.window]
        if len(recent) >= rule.max_count:
            # Once the oldest sends that put it over the cap leave the window, one more fits.
            until = max(until, recent[len(recent) - rule.max_count] + rule.window)
    return Allowed() if until == now else Capped(until)
