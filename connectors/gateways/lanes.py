"""Concurrency for a gateway: many provider calls in flight, transactional ones first, and a customer's
messages never reordered.

- :class:`PrioritySlots` bounds the calls in flight (``concurrency``); a freed slot goes to a waiting
  transactional send before any bulk one.
- :class:`CustomerLanes` runs the sends of one customer on one command topic one after another, in offset
  order (the command topics are keyed by customer id, so a partition already holds them in order); sends of
  different customers run side by side, so one slow or throttled call holds up only its own customer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class PrioritySlots:
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("at least one slot")
        self._free = size
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if self._free > 0 and not any(self._waiting):
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[0 if urgent else 1].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiting[0 if urgent else 1].remove(waiter)
            raise

    def _release(self) -> None:
        for queue in self._waiting:  # transactional waiters first
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to it
                    return
        self._free += 1


class CustomerLanes:
    """Per (topic, customer id), the send that came before: the next one waits for it to finish."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], asyncio.Future[None]] = {}

    def join(self, topic: str, customer: str) -> tuple[asyncio.Future[None] | None, asyncio.Future[None]]:
        """(the predecessor to wait for or None, this send's own marker: finish it with :meth:`leave`).
        Called in offset order, synchronously, so the chain follows the partition's order."""
        key = (topic, customer)
        before = self._last.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._last[key] = mine
        return before, mine

    def leave(self, topic: str, customer: str, mine: asyncio.Future[None]) -> None:
        if not mine.done():
            mine.set_result(None)
        if self._last.get((topic, customer)) is mine:
            del self._last[(topic, customer)]

    def __len__(self) -> int:
        return len(self._last)
