"""The gateways' view of consent: who has opted out of what, re-checked right before a provider call.

Followed from the compacted ``customers.consent_state`` topic, which the worker writes whenever a
customer's folded consent changes. Only customers with an opt-out are kept in memory. A send is
blocked when its customer has opted out of that channel for that purpose — even if the worker decided
to send before the opt-out arrived: an opt-out wins every race.

Following alone does not win every race: a snapshot already on the broker, not yet fetched by the
follower, would be missed. So before a marketing send the gateway calls :meth:`ConsentView.catch_up`,
a read barrier: ask the broker for the end offset of the partition holding the customer, and wait
until the follower has applied everything before it. An opt-out whose snapshot the broker had
acknowledged before the barrier began is then in the view when the gateway checks. The offset is
written into the send ledger (``consent_position``), so every call carries its proof: it was legal
iff the customer's opt-out snapshot, if any, sits at or beyond that offset.

Transactional sends skip the barrier and check what the follower has applied (usually milliseconds
behind), so the priority lane keeps its latency. A barrier that cannot finish in time (broker unreachable, follower stuck) answers
"unknown": the gateway does not send on a guess, it waits and tries again like any retry.

Cost: one list-offsets request per partition per batch, on a connection of its own (see
``compacted.end_offsets_client``), plus the follower's fetch latency when a snapshot has just been
written. The gateway checks many commands at once: every check of a partition that asks before the
look-up has *started* shares it (the look-up still begins after each of them asked, so it proves as
much for each as one of its own would). A check that asks while a look-up is on its way starts the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from connectors.gateways import compacted
from schemas.codec import codec_for
from schemas.customers import ConsentSnapshot, ConsentState
from schemas.messages import SendCommand

logger = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 5.0  # seconds a barrier may take before consent counts as unknown


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """The partition a producer puts ``key`` on: aiokafka's default partitioner (murmur2 of the key bytes,
    sign bit cleared, modulo the partition count: the Java client's rule too), which Faust's producer
    uses since the worker configures no other."""
    ordered = sorted(partitions)
    return DefaultPartitioner()(key, ordered, ordered)


class AppliedPositions:
    """Per partition, the offset below which every record has been applied; waiters wake as it moves."""

    def __init__(self) -> None:
        self._at: dict[int, int] = {}
        self._moved = asyncio.Event()

    def advance(self, partition: int, position: int) -> None:
        """``compacted.Advance``: positions only move forward (a stale report is ignored)."""
        if position > self._at.get(partition, 0):
            self._at[partition] = position
            self._moved.set()  # wakes every current waiter; later ones wait on the fresh event
            self._moved = asyncio.Event()

    def reached(self, partition: int, offset: int) -> bool:
        return self._at.get(partition, 0) >= offset

    async def wait_for(self, partition: int, offset: int) -> None:
        """Until every record of ``partition`` below ``offset`` has been applied (no timeout of its own)."""
        while not self.reached(partition, offset):
            await self._moved.wait()


class ConsentView:
    def __init__(self, topic: str, catch_up_timeout: float = CATCH_UP_TIMEOUT) -> None:
        self.topic = topic
        self._timeout = catch_up_timeout
        self._opted_out: dict[str, frozenset[str]] = {}  # customer id -> opted-out '<channel>:<purpose>' slots
        self._applied = AppliedPositions()
        self._partitions: list[int] = []
        self._offsets: AIOKafkaConsumer | None = None  # for list-offsets only; see compacted.end_offsets_client
        self._queued: dict[int, asyncio.Task[int | None]] = {}  # per partition: a barrier not started yet

    def blocks(self, command: SendCommand) -> bool:
        return f"{command.channel}:{command.purpose}" in self._opted_out.get(command.customer_id, frozenset())

    def partition_of(self, customer_id: str) -> int:
        """Where the worker's producer put this customer's snapshots (keyed by customer id)."""
        return partition_for(customer_id.encode(), self._partitions)

    async def restore(self, bootstrap_servers: str, partition_ids: set[int]) -> AIOKafkaConsumer:
        """Reads the topic to its end; returns the follower for :meth:`follow` (the caller stops it).
        :meth:`close` stops what else this opened."""
        self._partitions = sorted(partition_ids)
        consumer = await compacted.read_to_end(bootstrap_servers, self.topic, partition_ids, self._apply,
                                               self._applied.advance)
        self._offsets = await compacted.end_offsets_client(bootstrap_servers)
        logger.info("consent view restored: %d customers with an opt-out", len(self._opted_out))
        return consumer

    async def follow(self, consumer: AIOKafkaConsumer) -> None:
        await compacted.follow(consumer, self._apply, self._applied.advance)

    async def catch_up(self, customer_id: str) -> int | None:
        """The read barrier: the end offset of the customer's partition, once the view has applied everything
        before it; None when that took longer than the timeout (consent unknown: do not send). Checks of one
        partition that ask in the same turn of the event loop share one look-up."""
        assert self._offsets is not None, "restore() first"
        partition = self.partition_of(customer_id)
        barrier = self._queued.get(partition)
        if barrier is None:
            barrier = self._queued[partition] = asyncio.create_task(self._barrier(partition))
        return await asyncio.shield(barrier)

    async def _barrier(self, partition: int) -> int | None:
        if self._queued.get(partition) is asyncio.current_task():
            del self._queued[partition]  # starting now: whoever asks from here on waits for the next one
        assert self._offsets is not None, "restore() first"
        tp = TopicPartition(self.topic, partition)
        try:
            async with asyncio.timeout(self._timeout):
                end = (await self._offsets.end_offsets([tp]))[tp]
                await self._applied.wait_for(tp.partition, end)
        except (TimeoutError, KafkaError) as exc:
            logger.warning("consent view of %s[%d] not caught up within %ss (%s)", tp.topic, tp.partition,
                           self._timeout, type(exc).__name__)
            return None
        return end

    async def close(self) -> None:
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None

    def _apply(self, _partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        customer_id = key.decode()
        snapshot = codec_for(ConsentSnapshot).decode(value) if value else None
        slots = frozenset(s for s, state in (snapshot.slots if snapshot else {}).items()
                          if state == ConsentState.OPTED_OUT)
        if slots:
            self._opted_out[customer_id] = slots
        else:
            self._opted_out.pop(customer_id, None)
