"""Folding the consent ledger into per-customer state, and reading it.

The state is a plain dict (part of the customer's state, streams/core/state.py): ``"<channel>:<purpose>" -> {state, at, change_id,
source}``. A change applies only if it is not older than what is recorded, so a late-arriving old
opt-in can never undo a newer opt-out.
"""

from __future__ import annotations

import datetime as dt

from schemas.customers import ConsentChange, ConsentSnapshot, ConsentState
from schemas.types import Channel, Purpose

ConsentMap = dict[str, dict]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _slot(channel: Channel | str, purpose: Purpose | str) -> str:
    return f"{Channel(channel).value}:{Purpose(purpose).value}"


def fold(state: ConsentMap | None, change: ConsentChange) -> ConsentMap:
    """The state after ``change``; the input is not modified."""
    current = dict(state or {})
    slot = _slot(change.channel, change.purpose)
    at = (change.occurred_at - _EPOCH) // dt.timedelta(milliseconds=1)  # exact: float seconds can lose a ms
    recorded = current.get(slot)
    if recorded is not None and recorded["at"] > at:
        return current
    current[slot] = {"state": ConsentState(change.state).value, "at": at, "change_id": change.change_id,
                     "source": str(change.source)}
    return current


def state_of(consents: ConsentMap | None, channel: Channel | str, purpose: Purpose | str) -> ConsentState:
    entry = (consents or {}).get(_slot(channel, purpose))
    return ConsentState(entry["state"]) if entry else ConsentState.UNKNOWN


def snapshot(customer_id: str, store_id: str, consents: ConsentMap, now: dt.datetime) -> ConsentSnapshot:
    """The folded state as the compacted ``customers.consent_state`` record."""
    return ConsentSnapshot(customer_id=customer_id, store_id=store_id,
                           slots={slot: entry["state"] for slot, entry in consents.items()}, updated_at=now)
