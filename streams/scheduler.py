"""Deferred sends: what waits, per customer, until when. Pure: no Faust, no clock of its own.

The state is part of the customer's state (``scheduled``), as durable as its changelog: a restarted
worker recovers it and rebuilds its due-time index from it. A due entry is applied by the customer's
owner like any input: the core takes the entry out and decides again. Taking it out is what makes a
fire count once: a second fire of the same entry (a stale index entry, or a restart in between) finds
nothing to take.

State: ``{message_id: {"due": epoch ms, "intent": base64 Avro MessageIntent, "reason": str}}``.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping

Scheduled = dict[str, dict]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)


def _ms(at: dt.datetime) -> int:
    return -(-(at - _EPOCH) // _MS)  # rounded up: never fire before the instant


def add(state: Scheduled | None, message_id: str, intent_bytes: bytes, due: dt.datetime, reason: str) -> Scheduled:
    """The state with ``message_id`` waiting until ``due`` (replacing an earlier entry for it)."""
    updated = dict(state or {})
    updated[message_id] = {"due": _ms(due), "intent": base64.b64encode(intent_bytes).decode("ascii"), "reason": reason}
    return updated


def take(state: Scheduled | None, message_id: str) -> tuple[Scheduled, bytes | None]:
    """The state without ``message_id``, and its intent (None when it is not waiting: already taken)."""
    updated = dict(state or {})
    entry = updated.pop(message_id, None)
    return updated, base64.b64decode(entry["intent"]) if entry else None


def due(state: Mapping[str, dict] | None, now: dt.datetime) -> Iterator[tuple[str, dt.datetime]]:
    """(message_id, due time) of every entry whose time has come."""
    limit = (now - _EPOCH) // _MS  # rounded down, due times up: nothing fires before its instant
    for message_id, entry in (state or {}).items():
        if entry["due"] <= limit:
            yield message_id, _EPOCH + entry["due"] * _MS

