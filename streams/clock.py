"""The one clock. Decision code takes "now" from a clock it is given; no ``datetime.now()`` in logic."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class WallClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


class VirtualClock:
    """A clock that moves only when told to: for tests and ``switchboard simulate``."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        self._now += delta
        return self._now


def from_millis(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)
