"""The owner of a worker's customers: the one writer of their state.

Every input about a customer (storefront event, profile, consent change, reply, outcome, intent, erasure),
every timer of their state and every campaign slice goes through :meth:`CustomerOwner.apply`, in batches:

    load each customer's state once -> core.step per input (in order) -> hand every effect to the producer
    -> wait until the broker has them (acks=all) -> write each touched state once, and wait for that too
    -> re-arm its timers; the batch's input offsets are committed by faust after that

One lock serialises those batches, so nothing reads a state between another batch's read and write. The
effects are durable before the state that records them: a crash in between replays the input from the old
state and the same ids come out again (the gateways' ledgers send each message once); the opposite order
could record a send that never left.

No Faust here: the tables and the producer come in through :class:`Store` and :class:`Sink`
(``streams/app.py`` wires Faust's). Timers come from :class:`~streams.due_index.DueIndex`, campaigns are
walks over the partition's customers (:class:`CampaignWalk`), one slice at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

from aiokafka.partitioner import murmur2

from schemas.catalog import CUSTOMER_CONSENTS, MESSAGE_OUTCOMES, TopicNames, commands_topic
from schemas.codec import codec_for, encode
from schemas.messages import CampaignLaunch, OutcomeStatus
from streams import core
from streams.due_index import DueIndex
from streams.logs import coordinates
from streams.metrics import Metrics
from streams.publish import dead_letter

logger = logging.getLogger(__name__)

ORIGIN_HEADER = "switchboard-origin"  # on the outcomes the worker writes itself: it does not read them back
ORIGIN_WORKER = b"worker"
_MS = dt.timedelta(milliseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class Store(Protocol):
    """A table of this worker's partitions: values in memory, every write to its changelog partition."""

    def get(self, key: bytes) -> Any: ...

    def cache(self, key: bytes, value: Any) -> None:
        """Replaces the in-memory value only (the same state, decoded): no changelog record."""

    def put(self, key: bytes, value: Any, partition: int) -> None: ...

    def delete(self, key: bytes, partition: int) -> None: ...

    def keys(self) -> Iterable[bytes]: ...


class Sink(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        """Takes a record for the producer, without waiting (``partition`` None: the key's)."""

    async def flush(self) -> None:
        """Until every record taken so far is acknowledged by the broker."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where an input came from (a dead letter names it); none for timers and campaign slices."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Item:
    customer_id: str
    input: core.Input
    source: Source | None = None
    stage: str = "own_customers"


@dataclass
class CampaignWalk:
    """A launch's walk over one partition's customers, in key order; ``after`` is the last key done (durable,
    so a restart resumes there: ids are deterministic, so a customer done twice is still sent to once)."""

    launch: CampaignLaunch
    partition: int
    after: bytes = b""
    done: bool = False
    pending: list[bytes] = field(default_factory=list)  # the keys still to go (in memory)

    @property
    def key(self) -> bytes:
        return f"{self.launch.campaign_id}:{self.partition}".encode()

    def as_json(self) -> dict:
        return {"launch": encode(self.launch).hex(), "partition": self.partition, "after": self.after.hex(),
                "done": self.done}


# The parts of a state's changelog record that hold timers (CustomerState.timers): a record without them has none.
_TIMED_PARTS = (b'"scheduled"', b'"journeys"', b'"in_flight"')


def _decoded(customer_id: str, value: Any) -> core.CustomerState:
    """A state from its changelog record: the bytes (a compact store) or the decoded JSON."""
    return core.CustomerState.from_json(customer_id, json.loads(value) if isinstance(value, bytes) else value)


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a producer puts ``key`` on (murmur2, as Kafka's Java client, aiokafka and kafka-python)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class CustomerOwner:
    def __init__(self, ctx: core.Context, customers: Store, erased: Store, walks: Store, sink: Sink,
                 names: TopicNames, metrics: Metrics, partitions: int,
                 receipt_timeouts: Mapping[str, float] | None = None,
                 assigned: Callable[[], set[int]] | None = None) -> None:
        self.ctx, self.customers, self.erased, self.walks, self.sink = ctx, customers, erased, walks, sink
        self.names, self.metrics, self.partitions = names, metrics, partitions
        self.receipt_timeouts = dict(receipt_timeouts or {})
        self.assigned = assigned or (lambda: set(range(partitions)))
        self.index = DueIndex()
        self.campaigns: dict[bytes, CampaignWalk] = {}
        self.lock = asyncio.Lock()
        self._outcomes = names(MESSAGE_OUTCOMES)
        self._bound: dict[tuple, Any] = {}  # metric children, bound once

    # -- state ----------------------------------------------------------------------------------------

    def state_of(self, customer_id: str) -> core.CustomerState | None:
        key = customer_id.encode()
        value = self.customers.get(key)
        if value is None or isinstance(value, core.CustomerState):
            return value
        state = _decoded(customer_id, value)  # as recovered from the changelog, or held compact
        self.customers.cache(key, state)
        return state

    # -- the one way in -------------------------------------------------------------------------------

    async def apply(self, items: list[Item]) -> None:
        """Applies ``items`` in order; an input whose step raises is dead-lettered (its customer's state
        stays as it was before that input) and the others go on."""
        async with self.lock:
            pending: dict[str, core.CustomerState | None] = {}
            erased: list[tuple[bytes, int]] = []
            for item in items:
                state = pending[item.customer_id] if item.customer_id in pending else self.state_of(item.customer_id)
                try:
                    done = core.step(state, item.input, self.ctx, item.customer_id)
                    records = [r for effect in done.effects for r in self._records(item.customer_id, effect)]
                except Exception as exc:  # noqa: BLE001 - one bad input never stops the others
                    self._dead_letter(item.source, item.stage, exc, type(item.input).__name__)
                    continue
                for record in records:  # all of the step's records, or (it raised above) none of them
                    self.sink.send(*record)
                for effect in done.effects:
                    self._account(item.customer_id, effect, erased)
                pending[item.customer_id] = done.state
            await self.sink.flush()  # the effects first (and any dead letter): see the module's docstring
            now_ms = (self.ctx.clock.now() - _EPOCH) // _MS
            for suppression_key, partition in erased:
                self.erased.put(suppression_key, {"at": now_ms}, partition)
            for customer_id, state in pending.items():
                key = customer_id.encode()
                partition = partition_of(key, self.partitions)
                if state is None or state.is_empty():
                    if self.customers.get(key) is not None:
                        self.customers.delete(key, partition)
                else:
                    self.customers.put(key, state, partition)
                    self.index.add(customer_id, state.timers(self.receipt_timeouts))
            await self.sink.flush()  # the states: durable before the batch's offsets can be committed

    # -- timers -------------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """The due-time index and the campaign walks, from the states of the partitions now assigned."""
        assigned = self.assigned()
        self.index.clear()
        cold = getattr(self.customers, "cold", self.customers.get)
        for key in list(self.customers.keys()):
            if partition_of(key, self.partitions) not in assigned:
                continue
            value = cold(key)
            if value is None or (isinstance(value, bytes) and not any(part in value for part in _TIMED_PARTS)):
                continue  # a state held as bytes with no part that has timers: nothing to decode
            state = value if isinstance(value, core.CustomerState) else _decoded(key.decode(), value)
            self.index.add(state.customer_id, state.timers(self.receipt_timeouts))
        self.campaigns = {}
        for key in list(self.walks.keys()):
            saved = self.walks.get(key)
            if saved and not saved.get("done") and saved.get("partition") in assigned:
                walk = CampaignWalk(launch=codec_for(CampaignLaunch).decode(bytes.fromhex(saved["launch"])), partition=saved["partition"],
                                    after=bytes.fromhex(saved.get("after", "")))
                self.campaigns[walk.key] = walk
        logger.info("due-time index rebuilt: %d timers, %d campaign walks", len(self.index), len(self.campaigns))

    async def fire_due(self, limit: int = 2000) -> int:
        """Applies every timer that is due and still stands; returns how many fired."""
        now = self.ctx.clock.now()
        assigned = self.assigned()
        items = []
        for customer_id, timer in self.index.pop_due(now, limit):
            if partition_of(customer_id.encode(), self.partitions) not in assigned:
                continue  # revoked: its new owner rebuilt its index from the state
            state = self.state_of(customer_id)
            if state is None or timer not in state.timers(self.receipt_timeouts):
                continue  # taken, moved or ended meanwhile
            items.append(Item(customer_id, core.TimerInput(timer.kind, timer.ident, timer.channel), stage="timers"))
        await self.apply(items)
        return len(items)

    # -- campaigns ----------------------------------------------------------------------------------

    async def launch(self, launch: CampaignLaunch, partition: int) -> None:
        """Starts (or, replayed, keeps) the walk of ``launch`` over ``partition``'s customers."""
        async with self.lock:
            walk = CampaignWalk(launch, partition)
            if walk.key in self.campaigns or self.walks.get(walk.key) is not None:
                return  # already walking, or walked: a replayed launch reaches nobody twice
            self.campaigns[walk.key] = walk
            self.walks.put(walk.key, walk.as_json(), partition)
            await self.sink.flush()

    async def advance_campaigns(self, slice_size: int = 50) -> int:
        """One slice of one walking campaign (in turn); returns how many customers it reached. The lock is
        taken per slice, so live input waits for one slice at most, never for a whole campaign."""
        assigned = self.assigned()
        for key in [k for k, w in self.campaigns.items() if w.partition not in assigned]:
            self.campaigns.pop(key)  # revoked: its new owner resumes the walk from the saved progress
        if not self.campaigns:
            return 0
        key = next(iter(self.campaigns))
        walk = self.campaigns.pop(key)
        self.campaigns[key] = walk  # to the back of the line: the walks take turns
        if not walk.pending and not walk.done:
            walk.pending = sorted((k for k in self.customers.keys()
                                   if k > walk.after and partition_of(k, self.partitions) == walk.partition),
                                  reverse=True)  # popped from the end: lowest key first
        chunk = [walk.pending.pop() for _ in range(min(slice_size, len(walk.pending)))]
        await self.apply([Item(k.decode(), core.CampaignInput(walk.launch), stage="campaigns") for k in chunk])
        if chunk:
            walk.after = chunk[-1]
        walk.done = not walk.pending
        async with self.lock:
            self.walks.put(walk.key, walk.as_json(), walk.partition)
            await self.sink.flush()
        if walk.done:
            self.campaigns.pop(walk.key, None)
            logger.info("campaign %s done on partition %d", walk.launch.campaign_id, walk.partition)
        return len(chunk)

    # -- effects ------------------------------------------------------------------------------------

    def _child(self, metric: Any, *labels: str) -> Any:
        found = self._bound.get((id(metric), labels))
        if found is None:
            found = self._bound[(id(metric), labels)] = metric.labels(*labels)
        return found

    def _records(self, customer_id: str, effect: core.Effect) -> list[tuple]:
        """The Kafka records an effect asks for (topic, key, value[, headers]), encoded."""
        key = customer_id.encode()
        match effect:
            case core.Send(command=command):
                return [(self.names(commands_topic(command.channel, command.purpose)), key, encode(command))]
            case core.Report(outcome=outcome):
                return [(self._outcomes, key, encode(outcome), [(ORIGIN_HEADER, ORIGIN_WORKER)])]
            case core.Emit(topic=topic, key=emit_key, value=value):
                return [(self.names(topic), emit_key, encode(value) if value is not None else None)]
            case core.JourneyNote() | core.ConsentNote() | core.Erased() | core.Ignored():
                return []
            case _ as unreachable:
                assert_never(unreachable)

    def _account(self, customer_id: str, effect: core.Effect, erased: list[tuple[bytes, int]]) -> None:
        """What a handed-over effect changes besides Kafka: the metrics, and an erasure's suppression key."""
        m = self.metrics
        match effect:
            case core.Send(command=command, intent=intent, note=note):
                self._child(m.commands, str(command.channel)).inc()
                self._child(m.intents, str(intent.purpose)).inc()
                self._child(m.event_to_command, str(command.channel)).observe(
                    max((self.ctx.clock.now() - command.trigger_received_at).total_seconds(), 0.0))
                if note and note.startswith("fallback after "):
                    self._child(m.fallbacks, note.rsplit(" ", 1)[-1]).inc()
                if command.template == "help_reply":
                    self._child(m.keywords, "help").inc()
            case core.Report(outcome=outcome, intent=intent, decided=decided):
                self._child(m.outcomes, str(outcome.channel or "none"), str(outcome.status)).inc()
                if outcome.status == OutcomeStatus.SUPPRESSED:
                    self._child(m.suppressions, str(outcome.reason or "other")).inc()
                else:
                    self._child(m.scheduled, str(outcome.reason)).inc()
                if decided:
                    self._child(m.intents, str(intent.purpose)).inc()
            case core.Emit(topic=topic, value=value):
                if topic == CUSTOMER_CONSENTS and value is not None:
                    self._child(m.keywords, str(value.state)).inc()  # type: ignore[attr-defined]
            case core.JourneyNote(kind=kind, journey=journey):
                if kind != "handoff":
                    self._child(m.journeys, journey, "entered" if kind == "entered" else "exited").inc()
            case core.ConsentNote():
                self._child(m.state_updates, "consent").inc()
            case core.Erased(suppression_key=suppression_key):
                # In memory at once, so the batch's later inputs about the customer see it; to the changelog
                # with the batch's states.
                self.erased.cache(suppression_key, {"at": (self.ctx.clock.now() - _EPOCH) // _MS})
                erased.append((suppression_key, partition_of(customer_id.encode(), self.partitions)))
                self._child(m.erasures, "erased").inc()
            case core.Ignored(what="reply_replayed"):
                m.replies_replayed.inc()
            case core.Ignored(what=what):
                self._child(m.erasures, what).inc()
            case _ as unreachable:
                assert_never(unreachable)

    def _dead_letter(self, source: Source | None, stage: str, exc: Exception, what: str = "record") -> None:
        if source is None:  # a timer or a campaign slice: nothing to replay, the state is unchanged
            logger.error("%s: a step for a %s failed: %s", stage, what, type(exc).__name__)
            self._child(self.metrics.dead_letters, stage).inc()
            return
        logger.warning("dead-lettering %s at stage %s: %s", coordinates(source.topic, source.partition, source.offset),
                       stage, type(exc).__name__)
        topic, letter = dead_letter(source.topic, source.partition, source.offset, source.key, source.value,
                                    stage, exc, self.ctx.clock.now())
        self.sink.send(topic, source.key, encode(letter))
        self._child(self.metrics.dead_letters, stage).inc()

    def dead_letter(self, source: Source, stage: str, exc: Exception) -> None:
        """An input that could not be read (bad bytes, wrong key): to ``<topic>.dlq`` with its reason."""
        self._dead_letter(source, stage, exc)


