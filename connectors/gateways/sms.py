"""The SMS gateway: ``messages.commands.sms`` -> provider adapter -> ``messages.outcomes``.

Per command: decode (bad bytes -> DLQ), skip if the send ledger already has it (a redelivery),
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
from urllib.parse import urlencode

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
from connectors.providers.base import SmsProvider, SmsRequest
from schemas.catalog import TopicNames, commands_topic, ledger_topic
from schemas.codec import codec_for
from schemas.messages import LedgerState, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, OutcomeWriter, for_command
from streams.settings import Settings

logger = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"


class SmsGateway:
    def __init__(self, settings: Settings, provider: SmsProvider, publisher: AiokafkaPublisher, clock: Clock,
                 metrics: Metrics, sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self._settings = settings
        self._provider = provider
        self._clock = clock
        self._metrics = metrics
        self._sleep = sleep
        self._publisher = publisher
        names = TopicNames(settings.kafka.topic_prefix)
        self.commands_topic = names(commands_topic(Channel.SMS))
        self.ledger = SendLedger(publisher, names(ledger_topic(Channel.SMS)), Channel.SMS, provider.name)
        self._outcomes = OutcomeWriter(publisher, names, metrics)
        self._dead_letters = DeadLetterWriter(publisher, metrics)

    def status_callback(self, command: SendCommand) -> str:
        query = urlencode({"message_id": command.message_id, "customer_id": command.customer_id,
                           "store_id": command.store_id})
        return f"{self._settings.sms.public_base_url.rstrip('/')}{STATUS_PATH}?{query}"

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. The ledger is restored before the first command is read."""
        kafka = self._settings.kafka
        ledger_partitions = await self._publisher.partitions_for(self.ledger.topic)
        await self.ledger.restore(kafka.bootstrap_servers, ledger_partitions)
        consumer = AIOKafkaConsumer(
            self.commands_topic, bootstrap_servers=kafka.bootstrap_servers.split(","),
            group_id=f"{kafka.topic_prefix}{self._settings.sms.group_id}",
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=200,
        )
        await consumer.start()
        logger.info("sms gateway consuming %s with provider %s", self.commands_topic, self._provider.name)
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
                                           key=record.key, value=record.value, stage="gateway_sms", exc=exc,
                                           now=self._clock.now())
            return
        await self.send(command)

    async def send(self, command: SendCommand) -> None:
        now = self._clock.now()
        entry = self.ledger.get(command.message_id)
        if entry is not None and entry.state != LedgerState.ATTEMPTING:
            self._metrics.duplicate_commands.labels("sms").inc()
            logger.info("message_id=%s already %s: not sent again", command.message_id, entry.state)
            return
        if entry is not None:  # died mid-call last time: the provider may have it
            await self._ambiguous(command, "the gateway stopped during the provider call")
            return
        if command.expires_at is not None and command.expires_at <= now:
            await self._outcomes.write(for_command(command, OutcomeStatus.SUPPRESSED, now,
                                                   reason=OutcomeReason.EXPIRED, detail="expired before sending"))
            return
        request = SmsRequest(message_id=command.message_id, to=command.to, body=command.body,
                             status_callback=self.status_callback(command))
        for attempt in range(1, self._settings.sms.max_attempts + 1):
            await self.ledger.record(command.message_id, LedgerState.ATTEMPTING, self._clock.now())
            started = time.perf_counter()
            try:
                receipt = await self._provider.send(request)
            except ProviderTransientError as exc:
                self._observe("transient", started)
                await self.ledger.forget(command.message_id)
                if attempt == self._settings.sms.max_attempts:
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
        self._metrics.provider_calls.labels(self._provider.name, result).inc()
        self._metrics.provider_latency.labels(self._provider.name).observe(time.perf_counter() - started)

    async def _fail(self, command: SendCommand, reason: OutcomeReason, code: str | None, detail: str) -> None:
        await self._outcomes.write(for_command(command, OutcomeStatus.FAILED, self._clock.now(), reason=reason,
                                               detail=detail, provider=self._provider.name, error_code=code))

    async def _ambiguous(self, command: SendCommand, detail: str) -> None:
        logger.warning("message_id=%s ambiguous: %s", command.message_id, detail)
        await self.ledger.record(command.message_id, LedgerState.AMBIGUOUS, self._clock.now())
        await self._outcomes.write(for_command(command, OutcomeStatus.AMBIGUOUS, self._clock.now(),
                                               reason=OutcomeReason.AMBIGUOUS_PROVIDER_CALL, detail=detail,
                                               provider=self._provider.name))
