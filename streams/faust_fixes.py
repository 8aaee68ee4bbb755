"""Fixes to faust-streaming's app and consumer, installed through faust's own seams; no class of faust's or
mode's is changed. :class:`SwitchboardApp` (the worker's ``faust.App``) builds its consumer transport as a
:class:`SwitchboardTransport`, whose ``Consumer`` is :class:`SwitchboardConsumer` (faust's
``App._new_transport`` -> ``Transport.create_consumer`` -> ``Transport.Consumer``), and its ``flow_control`` as a
:class:`SwitchboardFlowControl`. Each override replaces an upstream method whose source is fingerprinted in
tests/unit/test_faust_fixes.py: a faust or mode upgrade that changes one fails that test, and the override is
re-read against the new code before the fingerprint is updated.

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

4. A commit that jumps over a message (faust #606 and an off-by-one next to it). faust commits the first run of
   consecutive acknowledged offsets, and checks that the run starts where the partition's committed offset
   is only loosely: ``min(acked) - committed > 1`` lets a run start one past the committed offset, and a
   partition that has never been committed (faust keeps 0 and "none" alike) is not checked at all. A message
   read but never acknowledged at the head of the partition was therefore committed over and lost: one
   cart reminder in scenario 5 (tests/chaos/test_consent_recovery.py), neither decided nor dead-lettered,
   with the group's offset past it. Here a run is committed only if it starts at the committed offset, or at
   the lowest offset read since the partition was assigned when that is higher (offsets below it were never
   in the log: compacted away, or before the log start). Offsets faust recorded as gaps between two reads count as
   acknowledged, as before. A head that stays unacknowledged holds the partition's commits back: nothing
   after it is lost on a crash, the lag shows it, and :data:`STUCK_HEAD_WARNING` seconds later a warning
   names the partition and offset (never a key or a value), and ``switchboard_commits_held_total`` counts it.

5. The cause of that lost message: faust's recovery resumes the flow twice after an assignment (once when
   it starts the fetcher, again when the tables are recovered) and mode's ``FlowControlEvent.resume`` empties
   every agent's queue each time. The second resume comes while agents are already processing, and drops
   what was delivered to their queues and not yet taken: read, never processed, never acknowledged
   (measured with a trace of the fetch loop: ``storefront.events[0]`` offset 7 handed to the conductor 0.2 ms
   before the second resume, never seen by its stream). Here a resume clears the queues only when the flow
   was suspended, which is what the clearing is for: messages of the previous generation.

6. Fetched records dropped without a rewind. faust's ``Consumer.getmany`` drops what aiokafka fetched when
   the flow stops or the generation changes in the middle of a batch, and for a partition no longer
   active, but aiokafka's position has already moved past those records; its rewind (``perform_seek``)
   seeks only partitions that have a committed offset. A worker start then sat idle for good with its
   only input fetched and never seen (a state dump: aiokafka's position 1 on the partition, faust's read
   offset unset). Here every partition with dropped records is sought back to the first of them, if it
   is still assigned and nothing before it was left unread; a rebalance under way resets the positions
   anyway.

7. A head lost inside faust is read again. Fix 4 holds a partition's commits on a head read and never
   acknowledged; when, :data:`STUCK_HEAD_WARNING` seconds on, no message of that offset is in hand any more
   (faust tracks every message delivered to a stream until it is acknowledged, weakly: a message dropped
   on the way is gone from that set), the message was lost between the fetch and the agent, and waiting
   longer cannot bring it back: the partition is sought back to the head, before the next fetch, and
   everything from it is read again (what was already processed is applied again, as after a crash:
   the worker's steps are idempotent by message and event id). A head still in hand (a batch waiting
   out a broker outage) is only warned about.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable, Set
from typing import Any

from faust import transport
from faust.app.base import App
from faust.exceptions import ImproperlyConfigured
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, ConsumerT, Message, TransportT
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

logger = logging.getLogger(__name__)

WAIT_EMPTY_LIMIT = 15.0  # seconds; an agent finishes the message in hand in far less, the rebalance timeout is 60
STUCK_HEAD_WARNING = 30.0  # seconds a partition's commits may wait on one unacknowledged offset before a warning


class SwitchboardFlowControl(FlowControlEvent):
    """Fix 5: a resume clears the agents' queues only when the flow was suspended."""

    def resume(self) -> None:
        was_suspended = self._suspend.is_set()
        self._suspend.clear()
        self._resume.set()
        if was_suspended:
            self.clear()


class SwitchboardConsumer(aiokafka_driver.Consumer):
    """faust's aiokafka consumer with fixes 1, 3, 4 and 6 (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # tp -> the lowest offset the fetch loop was handed since the partition was assigned (forgotten on revoke)
        self._switchboard_first_read: dict[TP, int] = {}
        # tp -> (the committed offset a run of acknowledgements waits on, since when)
        self._switchboard_stuck: dict[TP, tuple[int, float]] = {}
        # tp -> a lost head to seek back to before the next fetch (fix 7)
        self._switchboard_reread: dict[TP, int] = {}

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        """Fix 1: forget the revoked partitions' offsets only after the app's handler and a last commit."""
        if self._active_partitions is not None:
            self._active_partitions.difference_update(revoked)
        self._paused_partitions.difference_update(revoked)
        await self._on_partitions_revoked(revoked)
        await self.maybe_wait_for_commit_to_finish()
        await self.force_commit()
        for tp in revoked:
            self._switchboard_first_read.pop(tp, None)
            self._switchboard_stuck.pop(tp, None)
            self._switchboard_reread.pop(tp, None)
            self._gap.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._read_offset.pop(tp, None)
            self._committed_offset.pop(tp, None)

    def ack(self, message: Message) -> bool:
        """Fix 3: an acknowledgement is recorded only for a message read in the current generation."""
        if message.generation_id is not None and message.generation_id != self.app.consumer_generation_id:
            message.acked = True  # read before the last rebalance: its offset is read again, or already owned elsewhere
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        """Fix 4: faust's ``Consumer._new_offset``, committing a run of acknowledged offsets only from the
        partition's committed offset, or from the lowest offset read since the assignment when that is higher
        (nothing below it was in the log: compacted away, or before the log start)."""
        acked = self._acked[tp]
        if not acked:
            return None
        max_offset = max(acked)
        gap_for_tp = self._gap[tp]
        if gap_for_tp:  # offsets missing between two reads (compaction, transaction markers) count as acknowledged
            candidates = sorted(gap_for_tp.overlap(0, max_offset), key=lambda interval: interval.begin)
            if candidates:
                filled = [offset for interval in candidates for offset in range(interval.begin, interval.end)]
                acked.extend(offset for offset in filled if offset not in self._acked_index[tp])
                self._acked_index[tp].update(filled)
                gap_for_tp.chop(0, max(filled[-1], max_offset + 1))
        acked.sort()
        committed = self._committed_offset[tp]
        start = max(committed or 0, self._switchboard_first_read.get(tp, committed or 0))
        if acked[0] > start:
            self._note_stuck(tp, start)
            return None
        self._switchboard_stuck.pop(tp, None)
        end = acked[0]
        taken = 1
        for offset in acked[1:]:
            if offset == end + 1:
                end, taken = offset, taken + 1
            elif offset == end:
                taken += 1  # a duplicate (a gap over an acknowledged offset): drop it with the run
            else:
                break
        run = acked[:taken]
        del acked[:taken]
        self._acked_index[tp].difference_update(run)
        return end + 1

    def _note_stuck(self, tp: TP, head: int) -> None:
        stuck = self._switchboard_stuck
        waiting = stuck.get(tp)
        now = time.monotonic()
        if waiting is None or waiting[0] != head:
            stuck[tp] = (head, now)
        elif now - waiting[1] >= STUCK_HEAD_WARNING:
            stuck[tp] = (head, now)  # warn again after as long, not on every commit
            hook = getattr(self.app, "on_commit_held", None)  # SwitchboardApp's; streams.app sets it to a metric
            if hook is not None:
                hook()
            logger.warning("%s[%d]: offset %d was read and is not acknowledged after %.0f s; later offsets are "
                           "done and wait for it, uncommitted", tp.topic, tp.partition, head, STUCK_HEAD_WARNING)
            if not any(m.tp == tp and m.offset == head for m in list(self._unacked_messages)):
                logger.warning("%s[%d]: no message of offset %d is in hand: it was lost on its way to the agent; "
                               "reading the partition again from it", tp.topic, tp.partition, head)
                self._switchboard_reread[tp] = head

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Fix 6: faust's ``Consumer.getmany``, seeking back every partition whose fetched records it drops
        (and, fix 7, every partition whose held head was lost)."""
        if self._switchboard_reread:
            reread, self._switchboard_reread = self._switchboard_reread, {}
            await rewind(self, reread)
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        records_it = self.scheduler.iterate(records)
        dropped: dict[TP, int] = {}
        try:
            if self.flow_active:
                for tp, record in records_it:
                    if not self.flow_active or self.app.consumer_generation_id != generation_id:
                        dropped.setdefault(tp, record.offset)
                        break
                    if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                        self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                        note_read(self, tp, record.offset)  # what the commit guard (_new_offset) starts from
                        yield tp, self._to_message(tp, record)
                    else:
                        dropped.setdefault(tp, record.offset)
            else:
                try:
                    await self.perform_seek()  # faust: back to the committed offsets
                except Exception as exc:  # noqa: BLE001 - faust logs and goes on here too
                    logger.warning("seek back to committed offsets failed: %r", exc)
        finally:
            for tp, record in records_it:  # what the loop did not reach (records come in offset order per partition)
                dropped.setdefault(tp, record.offset)
            await rewind(self, dropped)


class SwitchboardTransport(aiokafka_driver.Transport):
    """faust's aiokafka transport, creating :class:`SwitchboardConsumer` consumers."""

    Consumer = SwitchboardConsumer


class SwitchboardApp(App):
    """The worker's ``faust.App``: its consumer is a :class:`SwitchboardConsumer`, its flow control a
    :class:`SwitchboardFlowControl`, and the wait for unacknowledged messages on a rebalance has a limit (fix 2)."""

    on_wait_abandoned: Callable[[], None] | None = None  # streams.app sets these two to metrics
    on_commit_held: Callable[[], None] | None = None

    def _new_transport(self) -> TransportT:
        url = self.conf.broker_consumer[0]
        if transport.by_url(url) is not aiokafka_driver.Transport:
            raise ImproperlyConfigured(f"broker {url.scheme}://: Switchboard's consumer fixes need faust's aiokafka "
                                       "transport (kafka:// or aiokafka://)")
        return SwitchboardTransport(self.conf.broker_consumer, self)

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return SwitchboardFlowControl(loop=self.loop)

    async def _consumer_wait_empty(self, consumer: ConsumerT, logger: Any) -> None:
        if self.conf.stream_wait_empty:
            await wait_empty_bounded(consumer, WAIT_EMPTY_LIMIT, self._abandoned)

    def _abandoned(self, unacknowledged: int) -> None:
        logger.warning("stopped waiting for %d unacknowledged message(s) after %.0f s: committed what is "
                       "acknowledged, the rest is read again by the partitions' next owner",
                       unacknowledged, WAIT_EMPTY_LIMIT)
        if self.on_wait_abandoned is not None:
            self.on_wait_abandoned()


async def wait_empty_bounded(consumer: ConsumerT, limit: float, on_abandoned: Callable[[int], None]) -> None:
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


def note_read(consumer: SwitchboardConsumer, tp: TP, offset: int) -> None:
    first = consumer._switchboard_first_read
    known = first.get(tp)
    if known is None or offset < known:
        first[tp] = offset


async def rewind(consumer: ConsumerT, dropped: dict[TP, int]) -> None:
    """Seeks each partition back to its first dropped offset (or lost head, fix 7), unless it is no longer
    assigned, or faust's own rewind already took it back further (``perform_seek``)."""
    if not dropped:
        return
    try:
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - the consumer is stopping: nothing to keep
        return
    for tp, offset in dropped.items():
        if tp not in assigned:
            continue
        read = consumer._read_offset.get(tp)
        if read is not None and read < offset - 1:
            continue  # sought back further already (faust's rewind to the committed offset)
        try:
            await consumer.seek(tp, offset)
        except Exception as exc:  # noqa: BLE001 - revoked meanwhile: the next owner starts at the commit
            logger.warning("%s[%d]: could not seek back to offset %d after dropping fetched records: %r",
                           tp.topic, tp.partition, offset, exc)
