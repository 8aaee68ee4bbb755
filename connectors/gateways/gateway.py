"""A channel gateway: ``messages.commands.<channel>[.bulk]`` -> provider adapter -> ``messages.outcomes``.

One loop for every channel; what differs per channel (building the provider's request, who the provider
counts a send against) is a :class:`Sender`. Per command: decode (bad bytes -> DLQ); skip it if the send
ledger already has it (a redelivery); treat a leftover ``attempting`` entry as ambiguous (the process died
mid-call: never repeat it); suppress it as ``expired`` if its offer ran out; else record ``attempting``,
call the provider, and record and report the result.

Many calls in flight (see ``lanes``): the fetch loop keeps taking batches while earlier ones are still
being sent, up to ``max_in_flight`` commands; at most ``concurrency`` provider calls run at once, and a
customer's commands on a topic are sent one after another in offset order, so one slow or throttled call
holds up only its own customer. The ``attempting`` entries of the sends that get a call slot together
are written as one group and acknowledged together before those calls (``SendLedger.attempt``); results
and outcomes are written in the background (the outcome after its ledger entry is acknowledged), and a
batch's offsets are committed, in batch order, only once all of its writes are acknowledged.

Flow control only ever waits: a token bucket per sender paces the calls as the provider counts them
(``flow.SenderLimits``), a circuit breaker backs off a failing provider, and errors that provably never
reached the provider (throttling, outages) are retried with backoff until the message expires or the
gateway stops — throttling never drops a message.

Consent is re-checked right before every provider call against the followed consent state: an
opt-out processed after the worker decided still stops the send (suppressed, ``opted_out``). For a
marketing send the view first catches up with the broker (a read barrier, see ``consent_view``; the
sends of a batch share one look-up per partition), and the offset it caught up to goes into the
``attempting`` ledger entry as the proof of the check. A barrier that times out sends nothing: the
command waits and tries again, like a throttled one.

Contact suppressions (``suppressions``) are checked in the same place: a number that sent STOP before any
profile had it is suppressed (``opted_out``) whoever it belongs to now, with no provider call.

Priority lane: transactional commands are fetched before the marketing ``.bulk`` lane, take a free call
slot before any bulk send, and reserve their sender's tokens ahead of bulk sends, so a campaign backlog
never delays an order update.

Stopping: sends waiting (for tokens, a retry, a slot) stop at once and stay uncommitted; calls already
made finish and are recorded; each partition is committed up to its first command not finished.

Reconciling: an ambiguous send is never repeated. Its delivery receipts (which name the message)
settle it when they come; otherwise the gateway asks the provider, where it can, every
``reconcile_every`` seconds for ``reconcile_for`` seconds, and reports ``sent`` if it finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.gateways.backoff import delay
from connectors.gateways.consent_view import ConsentView
from connectors.gateways.flow import CircuitBreaker, SenderLimits
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.gateways.lanes import CustomerLanes, PrioritySlots
from connectors.gateways.ledger import SendLedger
from connectors.gateways.suppressions import Suppressions
from connectors.providers.base import ProviderReceipt
from schemas.catalog import CONSENT_STATE, TopicNames, commands_topic
from schemas.codec import codec_for
from schemas.messages import (LedgerState, MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand,
                              SendLedgerEntry)
from schemas.types import Channel, Purpose
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, OutcomeWriter, for_command, journey_fields
from streams.settings import GatewaySettings, KafkaSettings

logger = logging.getLogger(__name__)

OPTED_OUT_AFTER_DECISION = "opted out after the message was decided"  # the detail of a gateway's suppression
OPTED_OUT_BY_REPLY = "the contact point opted out by a reply before a profile had it"  # contacts.suppressions
IDLE_POLL_MS = 100  # how long a fetch waits for new commands when nothing is in flight
BUSY_POLL_MS = 5  # ... and while sends are in flight (finished batches are committed between fetches)

# The background writes (ledger results, outcomes) of the batch a send belongs to; None outside a batch.
_WRITES: contextvars.ContextVar[list[asyncio.Task[None]] | None] = contextvars.ContextVar("writes", default=None)


class Sender(Protocol):
    """Turns a send command into one provider call (raising only ``connectors.errors.ProviderError``)."""

    provider_name: str

    async def send(self, command: SendCommand) -> ProviderReceipt: ...

    def limit_key(self, command: SendCommand) -> str:
        """Who the provider counts this send against (its rate limit's key): a number, a number id."""

    def cost(self, command: SendCommand) -> int:
        """How many of the provider's units the send spends (SMS: segments; else 1)."""

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        """Asks the provider whether an ambiguous send reached it (None: not found or cannot ask)."""

    async def aclose(self) -> None: ...


class Stopping(Exception):
    """The gateway was asked to stop while a message waited: leave it uncommitted for the next run."""


@dataclass
class _Batch:
    """The records of one fetch, sent concurrently; committed once ``task`` is done (it waits for the writes)."""

    records: list[ConsumerRecord]
    sends: list[asyncio.Task[bool]] = field(default_factory=list)  # per record: finished (False: stopped)
    writes: list[asyncio.Task[None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def settle(self) -> None:
        results = await asyncio.gather(*self.sends, return_exceptions=True)
        await asyncio.gather(*self.writes)  # every write of the batch, acknowledged
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def offsets(self, blocked: set[TopicPartition]) -> dict[TopicPartition, int]:
        """Per partition, the offset after its last record finished with none unfinished before it; a
        partition with an unfinished record goes into ``blocked`` (later batches commit nothing there)."""
        done: dict[TopicPartition, int] = {}
        for record, send in zip(self.records, self.sends):
            tp = TopicPartition(record.topic, record.partition)
            if tp in blocked:
                continue
            if send.done() and not send.cancelled() and send.exception() is None and send.result():
                done[tp] = record.offset + 1
            else:
                blocked.add(tp)
        return done


class Gateway:
    def __init__(self, channel: Channel, kafka: KafkaSettings, config: GatewaySettings, sender: Sender,
                 ledger: SendLedger, publisher: AiokafkaPublisher, clock: Clock, metrics: Metrics,
                 suppressions: Suppressions | None = None) -> None:
        self.channel = Channel(channel)
        self._kafka, self._config, self._sender, self.ledger = kafka, config, sender, ledger
        self.suppressions = suppressions  # restored and followed by the caller (before webhooks are served)
        self.consents = ConsentView(TopicNames(kafka.topic_prefix)(CONSENT_STATE))
        self._publisher, self._clock, self._metrics = publisher, clock, metrics
        names = TopicNames(kafka.topic_prefix)
        self.lanes = (names(commands_topic(self.channel, Purpose.TRANSACTIONAL)),
                      names(commands_topic(self.channel, Purpose.MARKETING)))
        self._outcomes = OutcomeWriter(publisher, names, metrics)
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._limits = SenderLimits(config.rate_per_second, config.burst)
        self._breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cool_off)
        self._slots = PrioritySlots(config.concurrency)
        self._customers = CustomerLanes()
        self._bulk_pacing: dict[str, asyncio.Lock] = {}  # per sender
        self._in_flight: deque[_Batch] = deque()
        self._in_flight_records = 0
        self._to_commit: dict[TopicPartition, int] = {}  # finished, durable, not yet committed
        self._committing: asyncio.Task[None] | None = None
        self._stage = f"gateway_{self.channel.value}"
        self._stop = asyncio.Event()
        self._unresolved: dict[str, tuple[SendCommand, dt.datetime]] = {}  # ambiguous sends to reconcile

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. The ledger is restored before the first command is read."""
        self._stop = stop
        bootstrap = self._kafka.bootstrap_servers
        follower = await self.ledger.restore(bootstrap, await self._publisher.partitions_for(self.ledger.topic))
        consent_follower = await self.consents.restore(
            bootstrap, await self._publisher.partitions_for(self.consents.topic))
        tasks = [asyncio.create_task(self.ledger.follow(follower)),
                 asyncio.create_task(self.consents.follow(consent_follower)),
                 asyncio.create_task(self._reconcile_forever())]
        consumer = AIOKafkaConsumer(
            *self.lanes, bootstrap_servers=self._kafka.bootstrap_servers.split(","),
            group_id=f"{self._kafka.topic_prefix}{self._config.group_id}",
            enable_auto_commit=False, auto_offset_reset="earliest",
        )
        await consumer.start()
        logger.info("%s gateway consuming %s with provider %s, %d calls at once", self.channel.value,
                    " + ".join(self.lanes), self._sender.provider_name, self._config.concurrency)
        try:
            while not stop.is_set():
                await self._fetch(consumer)
                await self._commit(consumer)
            await self._drain(consumer)
        finally:
            for batch in self._in_flight:  # only left on a fatal error: nothing more is committed
                for task in [*batch.sends, *([batch.task] if batch.task else [])]:
                    task.cancel()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await consumer.stop()
            await follower.stop()
            await consent_follower.stop()
            await self.consents.close()

    async def _fetch(self, consumer: AIOKafkaConsumer) -> None:
        """Takes the next commands while there is room: transactional first, then bulk."""
        assigned = consumer.assignment()
        if not assigned:
            await asyncio.sleep(0.1)  # waiting for the group to assign partitions
            return
        urgent = [tp for tp in assigned if tp.topic == self.lanes[0]]
        bulk = [tp for tp in assigned if tp.topic == self.lanes[1]]
        room = self._config.max_in_flight - self._in_flight_records
        if room <= 0:  # full: bulk waits; transactional still comes in, up to twice the bound
            urgent_room = 2 * self._config.max_in_flight - self._in_flight_records
            batches = (await consumer.getmany(*urgent, timeout_ms=BUSY_POLL_MS,
                                              max_records=min(urgent_room, self._config.batch))
                       if urgent and urgent_room > 0 else {})
            if not batches:
                await self._wait_for_room()
        else:
            limit = min(room, self._config.batch)
            batches = await consumer.getmany(*urgent, timeout_ms=0, max_records=limit) if urgent else {}
            if not batches:
                poll = BUSY_POLL_MS if self._in_flight else IDLE_POLL_MS
                batches = await consumer.getmany(*urgent, *bulk, timeout_ms=poll, max_records=limit)
        records = [r for tp in sorted(batches, key=lambda tp: tp.topic != self.lanes[0]) for r in batches[tp]]
        if records:
            self._start(records)

    async def _wait_for_room(self) -> None:
        waiting = [b.task for b in self._in_flight if b.task is not None]
        if waiting:
            await asyncio.wait(waiting, timeout=BUSY_POLL_MS / 1000, return_when=asyncio.FIRST_COMPLETED)

    def _start(self, records: list[ConsumerRecord]) -> None:
        batch = _Batch(records)
        for record in records:  # lanes are joined in offset order, before any send runs
            before, mine = self._customers.join(record.topic, record.key or b"")
            batch.sends.append(asyncio.create_task(self._send_record(batch, record, before, mine)))
        batch.task = asyncio.create_task(batch.settle())
        self._in_flight_records += len(records)
        batch.task.add_done_callback(lambda _: self._finished(len(records)))
        self._in_flight.append(batch)

    def _finished(self, count: int) -> None:
        self._in_flight_records -= count

    async def _send_record(self, batch: _Batch, record: ConsumerRecord, before: asyncio.Future[None] | None,
                           mine: asyncio.Future[None]) -> bool:
        _WRITES.set(batch.writes)
        try:
            if before is not None:
                await before  # the customer's previous command on this topic has been sent
            await self.handle(record)
            return True
        except Stopping:
            return False
        finally:
            self._customers.leave(record.topic, record.key or b"", mine)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        """Commits the finished batches at the head, in order (a fatal send error is raised here). The commit
        runs beside the fetch loop, one at a time: a slow broker round trip never holds up the next fetch."""
        blocked: set[TopicPartition] = set()
        while self._in_flight and self._in_flight[0].task is not None and self._in_flight[0].task.done():
            batch = self._in_flight.popleft()
            if batch.task.exception() is not None:
                await self._commit_now(consumer)
                raise batch.task.exception()
            self._to_commit.update(batch.offsets(blocked))
        if self._committing is not None and self._committing.done():
            committing, self._committing = self._committing, None
            committing.result()  # a failed commit stops the gateway, as it did when awaited here
        if self._to_commit and self._committing is None:
            offsets, self._to_commit = self._to_commit, {}
            self._committing = asyncio.create_task(consumer.commit(offsets))

    async def _commit_now(self, consumer: AIOKafkaConsumer) -> None:
        """Waits for the commit on its way, then commits what is left."""
        if self._committing is not None:
            committing, self._committing = self._committing, None
            await committing
        if self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            await consumer.commit(offsets)

    async def _drain(self, consumer: AIOKafkaConsumer) -> None:
        """On stop: calls in flight finish and are recorded, waiting sends stop; then what finished is committed."""
        waiting = [b.task for b in self._in_flight if b.task is not None]
        if waiting:
            await asyncio.wait(waiting)
        done: dict[TopicPartition, int] = {}
        blocked: set[TopicPartition] = set()
        stopped = 0
        while self._in_flight:
            batch = self._in_flight.popleft()
            if batch.task is not None and not batch.task.cancelled() and batch.task.exception() is not None:
                break  # a fatal error: commit only what came before it
            done.update(batch.offsets(blocked))
            stopped += sum(1 for s in batch.sends if s.done() and not s.cancelled() and s.exception() is None
                           and s.result() is False)
        if stopped:
            logger.info("%s gateway stopping with %d messages waiting: they stay uncommitted", self.channel.value,
                        stopped)
        self._to_commit.update(done)
        await self._commit_now(consumer)

    async def handle(self, record: ConsumerRecord) -> None:
        try:
            command = codec_for(SendCommand).decode(record.value)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the bytes go to the DLQ with the reason
            await self._dead_letters.write(topic=record.topic, partition=record.partition, offset=record.offset,
                                           key=record.key, value=record.value, stage=self._stage, exc=exc,
                                           now=self._clock.now())
            return
        await self.send(command, urgent=record.topic == self.lanes[0])

    async def send(self, command: SendCommand, urgent: bool | None = None) -> None:
        if urgent is None:
            urgent = Purpose(command.purpose) != Purpose.MARKETING
        entry = self.ledger.get(command.message_id)
        if entry is not None and entry.state != LedgerState.ATTEMPTING:
            self._metrics.duplicate_commands.labels(self.channel.value).inc()
            logger.info("message_id=%s already %s: not sent again", command.message_id, entry.state)
            await self._later(self._report_again(command, entry))
            return
        if entry is not None:  # died mid-call last time: the provider may have it
            await self._ambiguous(command, "the gateway stopped during the provider call")
            return
        attempt = stalls = 0
        while True:
            await self._wait(self._breaker.wait())
            await self._pace(command, urgent)
            if command.expires_at is not None and command.expires_at <= self._clock.now():
                await self._report(for_command(command, OutcomeStatus.SUPPRESSED, self._clock.now(),
                                               reason=OutcomeReason.EXPIRED, detail="expired before sending"))
                return
            position = None
            if Purpose(command.purpose) == Purpose.MARKETING:  # transactional keeps its latency: no barrier
                position = await self._catch_up(command)
                if position is None:  # consent unknown: never send on a guess; wait as for a throttled call
                    stalls += 1
                    await self._wait(delay(stalls))
                    continue
            if self.consents.blocks(command):  # an opt-out that arrived after the decision still wins
                await self._report(for_command(command, OutcomeStatus.SUPPRESSED, self._clock.now(),
                                               reason=OutcomeReason.OPTED_OUT, detail=OPTED_OUT_AFTER_DECISION))
                return
            if self.suppressions is not None and self.suppressions.blocks(command):  # a STOP before its profile
                await self._report(for_command(command, OutcomeStatus.SUPPRESSED, self._clock.now(),
                                               reason=OutcomeReason.OPTED_OUT, detail=OPTED_OUT_BY_REPLY))
                return
            attempt += 1
            async with self._slots.slot(urgent):
                await self._wait(0)  # stopping while waiting for the slot: no attempting entry, no call
                await self.ledger.attempt(command.message_id, self._clock.now(), consent_position=position,
                                          journey_fields=journey_fields(command), customer_id=command.customer_id,
                                          store_id=command.store_id)
                started = time.perf_counter()
                try:
                    receipt = await self._sender.send(command)
                except ProviderTransientError as exc:
                    self._observe("transient", started)
                    if exc.retry_after is None:  # an outage; a throttled call says when to come back instead:
                        self._breaker.failure()  # with many calls in flight a burst of those must not open it
                    retry_after = exc.retry_after
                except ProviderRejectedError as exc:
                    self._observe("rejected", started)
                    self._breaker.success()
                    await self._settle(command, LedgerState.REJECTED, for_command(
                        command, OutcomeStatus.FAILED, self._clock.now(), reason=OutcomeReason.PROVIDER_REJECTED,
                        detail="provider rejected it", provider=self._sender.provider_name, error_code=exc.code),
                        error_code=exc.code)
                    return
                except ProviderAmbiguousError:
                    self._observe("ambiguous", started)
                    await self._ambiguous(command, "no answer from the provider after the request was sent")
                    return
                except ProviderMisconfiguredError:
                    self._observe("misconfigured", started)
                    await self.ledger.forget(command.message_id)
                    raise  # fatal: stop without committing, so the command is sent once the settings are fixed
                else:
                    self._observe("accepted", started)
                    self._breaker.success()
                    await self._settle(command, LedgerState.ACCEPTED, for_command(
                        command, OutcomeStatus.SENT, self._clock.now(), provider=receipt.provider,
                        provider_message_id=receipt.provider_message_id),
                        provider_message_id=receipt.provider_message_id)
                    return
            # transient: it provably never reached the provider; free the slot, then try again
            await self.ledger.forget(command.message_id)
            await self._wait(delay(attempt, retry_after))

    async def _pace(self, command: SendCommand, urgent: bool) -> None:
        """Waits for the sender's tokens: transactional reserves ahead, bulk takes only what is there."""
        key, cost = self._sender.limit_key(command), self._sender.cost(command)
        if urgent:
            await self._wait(self._limits.reserve(key, cost))
            return
        # One bulk send at a time asks for tokens (the rest queue on the lock, in order): a thousand bulk
        # sends polling the bucket would wake a thousand times for every token.
        async with self._bulk_pacing.setdefault(key, asyncio.Lock()):
            while (wait := self._limits.take(key, cost)) > 0:
                await self._wait(wait)
        await self._wait(0)

    async def _later(self, write: Awaitable[None]) -> None:
        """Inside a batch: the write runs in the background and the batch's commit waits for it. Else: now."""
        writes = _WRITES.get()
        if writes is None:
            await write
        else:
            writes.append(asyncio.ensure_future(write))

    async def _report(self, outcome: MessageOutcome) -> None:
        await self._later(self._outcomes.write(outcome))

    async def _settle(self, command: SendCommand, state: LedgerState, outcome: MessageOutcome,
                      **fields: str | None) -> None:
        """The ledger's result (in memory now), then, once it is acknowledged, the outcome: an outcome never runs
        ahead of the ledger."""
        written = asyncio.ensure_future(self._after(
            self.ledger.record_later(command.message_id, state, self._clock.now(), **fields),
            self._outcomes.write(outcome)))
        self.ledger.reporting(command.message_id, written)
        await self._later(written)

    @staticmethod
    async def _after(first: Awaitable[None], then: Awaitable[None]) -> None:
        await first
        await then

    async def _catch_up(self, command: SendCommand) -> int | None:
        """The consent view's read barrier, timed: its offset, or None when consent is unknown (timed out)."""
        started = time.perf_counter()
        position = await self.consents.catch_up(command.customer_id)
        result = "timed_out" if position is None else "caught_up"
        self._metrics.consent_catch_up.labels(self.channel.value, result).observe(time.perf_counter() - started)
        if position is None:
            logger.warning("message_id=%s not sent yet: consent state unknown", command.message_id)
        return position

    async def _report_again(self, command: SendCommand, entry: SendLedgerEntry) -> None:
        """A redelivered command whose send is settled: write its outcome again (same outcome id), since the
        process may have died between the ledger write and the outcome. Consumers dedupe on outcome_id."""
        now, provider = self._clock.now(), self._sender.provider_name
        match LedgerState(entry.state):
            case LedgerState.ACCEPTED:
                outcome = for_command(command, OutcomeStatus.SENT, now, provider=provider,
                                      provider_message_id=entry.provider_message_id)
            case LedgerState.REJECTED:
                outcome = for_command(command, OutcomeStatus.FAILED, now, reason=OutcomeReason.PROVIDER_REJECTED,
                                      detail="provider rejected it", provider=provider, error_code=entry.error_code)
            case _:
                outcome = for_command(command, OutcomeStatus.AMBIGUOUS, now,
                                      reason=OutcomeReason.AMBIGUOUS_PROVIDER_CALL, provider=provider,
                                      detail="the provider call's result is unknown")
        await self._outcomes.write(outcome)

    async def _wait(self, seconds: float) -> None:
        """Sleeps, unless asked to stop first (then :class:`Stopping`)."""
        if seconds <= 0:
            if self._stop.is_set():
                raise Stopping
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        if self._stop.is_set():
            raise Stopping

    def _observe(self, result: str, started: float) -> None:
        self._metrics.provider_calls.labels(self._sender.provider_name, result).inc()
        self._metrics.provider_latency.labels(self._sender.provider_name).observe(time.perf_counter() - started)

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.reconcile_every)
            await self.reconcile()

    async def reconcile(self) -> None:
        """One pass over the ambiguous sends of this process."""
        now = self._clock.now()
        for message_id, (command, since) in list(self._unresolved.items()):
            entry = self.ledger.get(message_id)
            if entry is None or entry.state != LedgerState.AMBIGUOUS:
                del self._unresolved[message_id]  # settled elsewhere
                continue
            if entry.receipt_status is not None:  # a receipt already told the story: the provider had it
                await self.ledger.record(message_id, LedgerState.ACCEPTED, now, entry.provider_message_id)
                del self._unresolved[message_id]
                continue
            try:
                receipt = await self._sender.reconcile(command, since - dt.timedelta(seconds=5))
            except Exception as exc:  # noqa: BLE001 - a failed lookup settles nothing; try again next pass
                logger.info("message_id=%s reconcile failed: %s", message_id, type(exc).__name__)
                continue
            if receipt is not None:
                await self.ledger.record(message_id, LedgerState.ACCEPTED, now, receipt.provider_message_id)
                await self._outcomes.write(for_command(command, OutcomeStatus.SENT, now, provider=receipt.provider,
                                                       provider_message_id=receipt.provider_message_id,
                                                       detail="reconciled after an ambiguous provider call"))
                del self._unresolved[message_id]
            elif (now - since).total_seconds() > self._config.reconcile_for:
                logger.warning("message_id=%s still ambiguous after %ss: left for an operator", message_id,
                               self._config.reconcile_for)
                del self._unresolved[message_id]

    async def _ambiguous(self, command: SendCommand, detail: str) -> None:
        logger.warning("message_id=%s ambiguous: %s", command.message_id, detail)
        self._unresolved[command.message_id] = (command, self._clock.now())
        await self._settle(command, LedgerState.AMBIGUOUS, for_command(
            command, OutcomeStatus.AMBIGUOUS, self._clock.now(), reason=OutcomeReason.AMBIGUOUS_PROVIDER_CALL,
            detail=detail, provider=self._sender.provider_name))
