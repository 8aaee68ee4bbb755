"""A channel gateway: ``messages.commands.<channel>[.bulk]`` -> provider adapter -> ``messages.outcomes``.

One loop for every channel; what differs per channel (building the provider's request) is a
:class:`Sender`. Per command: decode (bad bytes -> DLQ); skip it if the send ledger already has it
(a redelivery); treat a leftover ``attempting`` entry as ambiguous (the process died mid-call: never
repeat it); suppress it as ``expired`` if its offer ran out; else record ``attempting``, call the
provider, and record and report the result.

Flow control only ever waits: a token bucket paces the sender, a circuit breaker backs off a failing
provider, and errors that provably never reached the provider (throttling, outages) are retried with
backoff until the message expires or the gateway stops — throttling never drops a message.

Consent is re-checked right before every provider call against the followed consent state: an
opt-out processed after the worker decided still stops the send (suppressed, ``opted_out``). For a
marketing send the view first catches up with the broker (a read barrier, see ``consent_view``), and
the offset it caught up to goes into the ``attempting`` ledger entry as the proof of the check. A
barrier that times out sends nothing: the command waits and tries again, like a throttled one.

Priority lane: transactional commands are always taken before the marketing ``.bulk`` lane, a few
bulk records at a time, so a campaign backlog never delays an order update.

Offsets are committed for what was processed, after each batch and on stop; the ledger makes a
redelivery harmless.

Reconciling: an ambiguous send is never repeated. Its delivery receipts (which name the message)
settle it when they come; otherwise the gateway asks the provider, where it can, every
``reconcile_every`` seconds for ``reconcile_for`` seconds, and reports ``sent`` if it finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
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
from connectors.gateways.flow import CircuitBreaker, TokenBucket
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt
from schemas.catalog import CONSENT_STATE, TopicNames, commands_topic
from schemas.codec import codec_for
from schemas.messages import LedgerState, OutcomeReason, OutcomeStatus, SendCommand, SendLedgerEntry
from schemas.types import Channel, Purpose
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, OutcomeWriter, for_command, journey_fields
from streams.settings import GatewaySettings, KafkaSettings

logger = logging.getLogger(__name__)

BULK_BATCH = 20  # marketing records taken between two looks at the transactional lane
OPTED_OUT_AFTER_DECISION = "opted out after the message was decided"  # the detail of a gateway's suppression


class Sender(Protocol):
    """Turns a send command into one provider call (raising only ``connectors.errors.ProviderError``)."""

    provider_name: str

    async def send(self, command: SendCommand) -> ProviderReceipt: ...

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        """Asks the provider whether an ambiguous send reached it (None: not found or cannot ask)."""

    async def aclose(self) -> None: ...


class Stopping(Exception):
    """The gateway was asked to stop while a message waited: leave it uncommitted for the next run."""


class Gateway:
    def __init__(self, channel: Channel, kafka: KafkaSettings, config: GatewaySettings, sender: Sender,
                 ledger: SendLedger, publisher: AiokafkaPublisher, clock: Clock, metrics: Metrics) -> None:
        self.channel = Channel(channel)
        self._kafka, self._config, self._sender, self.ledger = kafka, config, sender, ledger
        self.consents = ConsentView(TopicNames(kafka.topic_prefix)(CONSENT_STATE))
        self._publisher, self._clock, self._metrics = publisher, clock, metrics
        names = TopicNames(kafka.topic_prefix)
        self.lanes = (names(commands_topic(self.channel, Purpose.TRANSACTIONAL)),
                      names(commands_topic(self.channel, Purpose.MARKETING)))
        self._outcomes = OutcomeWriter(publisher, names, metrics)
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._bucket = TokenBucket(config.rate_per_second, config.burst)
        self._breaker = CircuitBreaker(config.breaker_threshold, config.breaker_cool_off)
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
        logger.info("%s gateway consuming %s with provider %s", self.channel.value, " + ".join(self.lanes),
                    self._sender.provider_name)
        try:
            while not stop.is_set():
                await self._one_batch(consumer)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await consumer.stop()
            await follower.stop()
            await consent_follower.stop()
            await self.consents.close()

    async def _one_batch(self, consumer: AIOKafkaConsumer) -> None:
        assigned = consumer.assignment()
        urgent = [tp for tp in assigned if tp.topic == self.lanes[0]]
        bulk = [tp for tp in assigned if tp.topic == self.lanes[1]]
        batches = await consumer.getmany(*urgent, timeout_ms=100) if urgent else {}
        if not batches and bulk:
            batches = await consumer.getmany(*bulk, timeout_ms=400, max_records=BULK_BATCH)
        elif not assigned:
            await asyncio.sleep(0.1)  # waiting for the group to assign partitions
        done: dict[TopicPartition, int] = {}
        try:
            for tp, records in batches.items():
                for record in records:
                    await self.handle(record)
                    done[tp] = record.offset + 1
        except Stopping:
            logger.info("%s gateway stopping with a message in retry: it stays uncommitted", self.channel.value)
        finally:
            if done:
                await consumer.commit(done)

    async def handle(self, record: ConsumerRecord) -> None:
        try:
            command = codec_for(SendCommand).decode(record.value)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the bytes go to the DLQ with the reason
            await self._dead_letters.write(topic=record.topic, partition=record.partition, offset=record.offset,
                                           key=record.key, value=record.value, stage=self._stage, exc=exc,
                                           now=self._clock.now())
            return
        await self.send(command)

    async def send(self, command: SendCommand) -> None:
        entry = self.ledger.get(command.message_id)
        if entry is not None and entry.state != LedgerState.ATTEMPTING:
            self._metrics.duplicate_commands.labels(self.channel.value).inc()
            logger.info("message_id=%s already %s: not sent again", command.message_id, entry.state)
            await self._report_again(command, entry)
            return
        if entry is not None:  # died mid-call last time: the provider may have it
            await self._ambiguous(command, "the gateway stopped during the provider call")
            return
        attempt = stalls = 0
        while True:
            await self._wait(self._breaker.wait())
            await self._wait(self._bucket.reserve())
            if command.expires_at is not None and command.expires_at <= self._clock.now():
                await self._outcomes.write(for_command(command, OutcomeStatus.SUPPRESSED, self._clock.now(),
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
                await self._outcomes.write(for_command(command, OutcomeStatus.SUPPRESSED, self._clock.now(),
                                                       reason=OutcomeReason.OPTED_OUT, detail=OPTED_OUT_AFTER_DECISION))
                return
            attempt += 1
            await self.ledger.record(command.message_id, LedgerState.ATTEMPTING, self._clock.now(),
                                     consent_position=position, journey_fields=journey_fields(command))
            started = time.perf_counter()
            try:
                receipt = await self._sender.send(command)
            except ProviderTransientError as exc:
                self._observe("transient", started)
                self._breaker.failure()
                await self.ledger.forget(command.message_id)
                await self._wait(delay(attempt, exc.retry_after))
                continue
            except ProviderRejectedError as exc:
                self._observe("rejected", started)
                self._breaker.success()
                await self.ledger.record(command.message_id, LedgerState.REJECTED, self._clock.now(),
                                         error_code=exc.code)
                await self._fail(command, OutcomeReason.PROVIDER_REJECTED, exc.code, "provider rejected it")
                return
            except ProviderAmbiguousError:
                self._observe("ambiguous", started)
                await self._ambiguous(command, "no answer from the provider after the request was sent")
                return
            except ProviderMisconfiguredError:
                self._observe("misconfigured", started)
                await self.ledger.forget(command.message_id)
                raise  # fatal: stop without committing, so the command is sent once the settings are fixed
            self._observe("accepted", started)
            self._breaker.success()
            await self.ledger.record(command.message_id, LedgerState.ACCEPTED, self._clock.now(),
                                     receipt.provider_message_id)
            await self._outcomes.write(for_command(command, OutcomeStatus.SENT, self._clock.now(),
                                                   provider=receipt.provider,
                                                   provider_message_id=receipt.provider_message_id))
            return

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

    async def _fail(self, command: SendCommand, reason: OutcomeReason, code: str | None, detail: str) -> None:
        await self._outcomes.write(for_command(command, OutcomeStatus.FAILED, self._clock.now(), reason=reason,
                                               detail=detail, provider=self._sender.provider_name, error_code=code))

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
        await self.ledger.record(command.message_id, LedgerState.AMBIGUOUS, self._clock.now())
        await self._outcomes.write(for_command(command, OutcomeStatus.AMBIGUOUS, self._clock.now(),
                                               reason=OutcomeReason.AMBIGUOUS_PROVIDER_CALL, detail=detail,
                                               provider=self._sender.provider_name))
