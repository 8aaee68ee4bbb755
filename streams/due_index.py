"""The worker's due-time index: every timer of the customers a worker owns, in due order, in memory.

Rebuilt from the states when partitions are assigned (their tables recovered), kept up to date as a
customer's state changes, and read without a scan: taking what is due costs O(due · log n), not
O(customers). An entry is only a hint: before a timer fires, the owner checks it still stands in the
customer's current state (taken, moved or ended meanwhile, it is skipped), so a stale entry never fires
and a restart, which rebuilds from the states, neither loses nor repeats one.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterable

from streams.core import Timer

Entry = tuple[str, Timer]  # (customer id, timer)


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[dt.datetime, int, str, Timer]] = []
        self._armed: set[tuple[str, Timer]] = set()
        self._seq = 0

    def __len__(self) -> int:
        return len(self._armed)

    def clear(self) -> None:
        self._heap.clear()
        self._armed.clear()

    def add(self, customer_id: str, timers: Iterable[Timer]) -> None:
        """Arms ``timers`` of a customer (those already armed are not added twice)."""
        for timer in timers:
            mark = (customer_id, timer)
            if mark not in self._armed:
                self._armed.add(mark)
                self._seq += 1
                heapq.heappush(self._heap, (timer.due, self._seq, customer_id, timer))

    def next_due(self) -> dt.datetime | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: dt.datetime, limit: int | None = None) -> list[Entry]:
        """Takes the entries due at ``now`` (at most ``limit``), earliest first."""
        found: list[Entry] = []
        while self._heap and self._heap[0][0] <= now and (limit is None or len(found) < limit):
            _, _, customer_id, timer = heapq.heappop(self._heap)
            self._armed.discard((customer_id, timer))
            found.append((customer_id, timer))
        return found
