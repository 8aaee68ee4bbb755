"""Fixes to faust-streaming's consumer, applied once when :mod:`streams.app` is imported.

1. Rebalance re-processing (faust-streaming #502). faust's ``Consumer.on_partitions_revoked`` forgets the
   acknowledged offsets of the revoked partitions first and only then runs the app's handler, which stops
   the agents, waits for them and commits. That commit therefore never covers what was processed since the
   last timer commit (up to ``broker_commit_interval``, 2.8 s), and the partitions' next owner decides all of
   it again (602-1,915 message ids decided twice in ``tests/chaos/test_scaling.py``). Here the order is:
   stop tracking the revoked partitions as active or paused, run the app's handler (stop the flow, wait for
   the agents, flush, commit), wait for a timer commit still in flight and commit once more (faust skips its
   own commit when one is in flight), and only then forget the revoked partitions' offsets.

2. A rebalance that never ends. To stop the flow faust suspends every agent's queue and then waits, without
   a limit, until every message it has read is acknowledged. A message whose delivery to a full agent queue
   was still pending is parked behind that suspension and is never acknowledged: the wait never ends, the
   group throws the member out after ``broker_rebalance_timeout`` and the worker processes nothing more
   until it is restarted (seen in the scaling scenario: a saturated worker, ``wait_empty: Waiting for tasks``
   every 10 s for good). Here the wait has a limit, :data:`WAIT_EMPTY_LIMIT`: after it, what is acknowledged
   is committed and the rebalance goes on. Nothing is lost: an offset is committed only when every offset
   before it is acknowledged, so the parked message and everything after it is read again by the
   partition's next owner.

3. Acknowledgements from an earlier generation. The parked delivery above completes once the flow resumes,
   in the next generation; faust's stream skips such a stale event but still acknowledges it, and a stale
   acknowledgement ahead of the partition's committed offset let the next commit jump over messages not yet
   read again (a loss on a crash right after). Here an acknowledgement is recorded only for a message read
   in the consumer's current generation.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Set
from typing import Any

from faust.app.base import App
from faust.transport.consumer import Consumer
from faust.types import TP, Message

logger = logging.getLogger(__name__)

WAIT_EMPTY_LIMIT = 15.0  # seconds; an agent finishes the message in hand in far less, the rebalance timeout is 60

_applied = False
_original_ack = Consumer.ack


async def _revoke_after_committing(self: Consumer, revoked: Set[TP]) -> None:
    if self._active_partitions is not None:
        self._active_partitions.difference_update(revoked)
    self._paused_partitions.difference_update(revoked)
    await self._on_partitions_revoked(revoked)
    await self.maybe_wait_for_commit_to_finish()
    await self.force_commit()
    for tp in revoked:
        self._gap.pop(tp, None)
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        self._read_offset.pop(tp, None)
        self._committed_offset.pop(tp, None)


async def wait_empty_bounded(consumer: Consumer, limit: float, on_abandoned: Callable[[int], None]) -> None:
    """faust's ``Consumer.wait_empty`` with a deadline: commit as acknowledgements come in, and stop waiting
    after ``limit`` seconds with messages still unacknowledged (``on_abandoned`` is told how many)."""
    deadline = time.monotonic() + limit
    while not consumer.should_stop and consumer._unacked_messages:
        gc.collect()  # messages dropped from cleared agent queues leave the weak set only when collected
        await consumer.commit()
        consumer._clean_unacked_messages()
        if not consumer._unacked_messages:
            break
        if time.monotonic() >= deadline:
            on_abandoned(len(consumer._unacked_messages))
            break
        await consumer._wait_for_ack(timeout=1)
        consumer._clean_unacked_messages()
    await consumer.commit_and_end_transactions()


async def _consumer_wait_empty(self: App, consumer: Consumer, log: Any) -> None:
    if self.conf.stream_wait_empty:
        await wait_empty_bounded(consumer, WAIT_EMPTY_LIMIT, lambda unacknowledged: _abandoned(self, unacknowledged))


def _abandoned(app: App, unacknowledged: int) -> None:
    logger.warning("stopped waiting for %d unacknowledged message(s) after %.0f s: committed what is "
                   "acknowledged, the rest is read again by the partitions' next owner",
                   unacknowledged, WAIT_EMPTY_LIMIT)
    hook = getattr(app, "on_wait_abandoned", None)  # set by streams.app.create_app: a metric
    if hook is not None:
        hook()


def _ack_current_generation(self: Consumer, message: Message) -> bool:
    if message.generation_id is not None and message.generation_id != self.app.consumer_generation_id:
        message.acked = True  # read before the last rebalance: its offset is read again, or already owned elsewhere
        self._unacked_messages.discard(message)
        return False
    return _original_ack(self, message)


def apply() -> None:
    """Idempotent: patches the consumer and app classes once per process."""
    global _applied
    if not _applied:
        Consumer.on_partitions_revoked = _revoke_after_committing
        Consumer.ack = _ack_current_generation
        App._consumer_wait_empty = _consumer_wait_empty
        _applied = True
