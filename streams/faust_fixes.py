"""Fixes to faust-streaming's consumer, applied once when :mod:`streams.app` is imported.

Rebalance re-processing (faust-streaming #502). faust's ``Consumer.on_partitions_revoked`` forgets the
acknowledged offsets of the revoked partitions first and only then runs the app's handler, which stops the
agents, waits for them and commits. That commit therefore never covers what was processed since the last
timer commit (up to ``broker_commit_interval``, 2.8 s), and the partitions' next owner decides all of it
again: every scale-out, scale-in or session timeout of a peer re-sent a few seconds of intents as duplicate
commands and outcomes (602-1,915 message ids decided twice in ``tests/chaos/test_scaling.py``).

Here the order is: stop tracking the revoked partitions as active or paused, run the app's handler (stop
the flow, wait for the agents, flush, commit), wait for a timer commit still in flight and commit once more
(faust skips its own commit when one is in flight), and only then forget the revoked partitions' offsets.
"""

from __future__ import annotations

from collections.abc import Set

from faust.transport.consumer import Consumer
from faust.types import TP

_applied = False


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


def apply() -> None:
    """Idempotent: patches the consumer class once per process."""
    global _applied
    if not _applied:
        Consumer.on_partitions_revoked = _revoke_after_committing
        _applied = True
