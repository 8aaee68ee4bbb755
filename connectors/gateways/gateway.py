"""A channel gateway: ``messages.commands.<channel>`` -> provider adapter -> ``messages.outcomes``.

One loop for every channel; what differs per channel (building the provider's request) is a
:class:`Sender`. Per command: decode (bad bytes -> DLQ), skip if the send ledger already has it (a redelivery),
treat a leftover ``attempting`` entry as ambiguous (the process died mid-call: never repeat it),
drop it as ``expired`` if its offer ran out, else record ``attempting``, call the provider with
bounded retries for errors that provably never reached it, and record and report the result.
Offsets are committed after each batch; the ledger makes the redelivery of a batch harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.gateways.backoff import delay
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt
from schemas.catalog import TopicNames, commands_topic, ledger_topic
from schemas.codec import codec_for
from schemas.messages import LedgerState, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, OutcomeWriter, for_command
from streams.settings import GatewaySettings, KafkaSettings

logger = logging.getLogger(__name__)


class Sender(Protocol):
    """Turns a send command into one provider call (raising only ``connectors.errors.ProviderError``)."""

    provider_name: str

    async def send(self, command: SendCommand) -> ProviderReceipt: ...

    async def aclose(self) -> None: ...


class Gateway:
    def __init__(self, channel: Channel, kafka: KafkaSettings, config: GatewaySettings, sender: Sender,
                 publisher: AiokafkaPublisher, clock: Clock, metrics: Metrics,
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self.channel = Channel(channel)
        self._kafka = kafka
        self._config = config
        self._sender = sender
        self._clock = clock
        self._metrics = metrics
        self._sleep = sleep
        self._publisher = publisher
        names = TopicNames(kafka.topic_prefix)
        self.commands_topic = names(commands_topic(self.channel))
        self.ledger = SendLedger(publisher, names(ledger_topic(self.channel)), self.channel, sender.provider_name)
        self._outcomes = OutcomeWriter(publisher, names, metrics)
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._stage = f"gateway_{self.channel.value}"

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. The ledger is restored before the first command is read."""
        kafka = self._kafka
        ledger_partitions = await self._publisher.partitions_for(self.ledger.topic)
        await self.ledger.restore(kafka.bootstrap_servers, ledger_partitions)
        consumer = AIOKafkaConsumer(
            self.commands_topic, bootstrap_servers=kafka.bootstrap_servers.split(","),
            group_id=f"{kafka.topic_prefix}{self._config.group_id}",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=200,
        )
        await consumer.start()
        logger.info("%s gateway consuming %s with provider %s", self.channel.value, self.commands_topic,
                    self._sender.provider_name)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        await self.handle(record)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()

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
        now = self._clock.now()
        entry = self.ledger.get(command.message_id)
        if entry is not None and entry.state != LedgerState.ATTEMPTING:
            self._metrics.duplicate_commands.labels(self.channel.value).inc()
            logger.info("message_id=%s already %s: not sent again", command.message_id, entry.state)
            return
        if entry is not None:  # died mid-call last time: the provider may have it
            await self._ambiguous(command, "the gateway stopped during the provider call")
            return
        if command.expires_at is not None and command.expires_at <= now:
            await self._outcomes.write(for_command(command, OutcomeStatus.SUPPRESSED, now,
                                                   reason=OutcomeReason.EXPIRED, detail="expired before sending"))
            return
        for attempt in range(1, self._config.max_attempts + 1):
            await self.ledger.record(command.message_id, LedgerState.ATTEMPTING, self._clock.now())
            started = time.perf_counter()
            try:
                receipt = await self._sender.send(command)
            except ProviderTransientError as exc:
                self._observe("transient", started)
                await self.ledger.forget(command.message_id)
                if attempt == self._config.max_attempts:
                    await self._fail(command, OutcomeReason.RETRIES_EXHAUSTED, exc.code, "provider kept failing")
                    return
                await self._sleep(delay(attempt, exc.retry_after))
                continue
            except ProviderRejectedError as exc:
                self._observe("rejected", started)
                await self.ledger.record(command.message_id, LedgerState.REJECTED, self._clock.now())
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
            await self.ledger.record(command.message_id, LedgerState.ACCEPTED, self._clock.now(),
                                     receipt.provider_message_id)
            await self._outcomes.write(for_command(command, OutcomeStatus.SENT, self._clock.now(),
                                                   provider=receipt.provider,
                                                   provider_message_id=receipt.provider_message_id))
            return

    def _observe(self, result: str, started: float) -> None:
        self._metrics.provider_calls.labels(self._sender.provider_name, result).inc()
        self._metrics.provider_latency.labels(self._sender.provider_name).observe(time.perf_counter() - started)

    async def _fail(self, command: SendCommand, reason: OutcomeReason, code: str | None, detail: str) -> None:
        await self._outcomes.write(for_command(command, OutcomeStatus.FAILED, self._clock.now(), reason=reason,
                                               detail=detail, provider=self._sender.provider_name, error_code=code))

    async def _ambiguous(self, command: SendCommand, detail: str) -> None:
        logger.warning("message_id=%s ambiguous: %s", command.message_id, detail)
        await self.ledger.record(command.message_id, LedgerState.AMBIGUOUS, self._clock.now())
        await self._outcomes.write(for_command(command, OutcomeStatus.AMBIGUOUS, self._clock.now(),
                                               reason=OutcomeReason.AMBIGUOUS_PROVIDER_CALL, detail=detail,
                                               provider=self._sender.provider_name))
