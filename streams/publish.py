"""The one outcome writer and the one dead-letter helper. Every stage reports through them.

Both write through a :class:`Publisher`, so Faust agents (``FaustPublisher``) and the gateways
(an aiokafka producer) share the same code.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from schemas.catalog import MESSAGE_OUTCOMES, TopicNames
from schemas.codec import encode
from schemas.dead_letter import DeadLetter
from schemas.errors import SchemaError
from schemas.types import Channel
from schemas.messages import MessageIntent, MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand, SendLedgerEntry
from streams.errors import SwitchboardError
from streams.ids import outcome_id
from streams.logs import coordinates
from streams.metrics import Metrics

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Waits until the record is handed to the producer; ``value=None`` is a tombstone."""


def _for_intent(intent: MessageIntent, status: OutcomeStatus, reason: OutcomeReason, detail: str,
                now: dt.datetime, qualifier: str = "", **extra: object) -> MessageOutcome:
    """An outcome the worker writes about an intent it did not (yet) turn into a command."""
    return MessageOutcome(
        outcome_id=outcome_id(intent.message_id, status, qualifier),
        message_id=intent.message_id,
        customer_id=intent.customer_id,
        store_id=intent.store_id,
        status=status,
        reason=reason,
        detail=detail,
        template=intent.template,
        purpose=intent.purpose,
        trigger_event_id=intent.trigger_event_id,
        occurred_at=now,
        **journey_fields(intent),
        **extra,
    )


def suppressed(intent: MessageIntent, reason: OutcomeReason, detail: str, now: dt.datetime) -> MessageOutcome:
    return _for_intent(intent, OutcomeStatus.SUPPRESSED, reason, detail, now)


def scheduled(intent: MessageIntent, until: dt.datetime, reason: OutcomeReason, detail: str,
              now: dt.datetime) -> MessageOutcome:
    """A send deferred to ``until``; deferred again later, it gets another outcome (another time)."""
    return _for_intent(intent, OutcomeStatus.SCHEDULED, reason, detail, now, until.isoformat(), scheduled_for=until)


def journey_fields(source: MessageIntent | SendCommand) -> dict[str, str | None]:
    """Journey, A/B arm and coupon travel from the intent to the command to every outcome."""
    return {"journey": source.journey, "variant": source.variant, "coupon_code": source.coupon_code}


def for_command(
    command: SendCommand,
    status: OutcomeStatus,
    now: dt.datetime,
    *,
    reason: OutcomeReason | None = None,
    detail: str | None = None,
    provider: str | None = None,
    provider_message_id: str | None = None,
    error_code: str | None = None,
) -> MessageOutcome:
    sms = command.sms
    return MessageOutcome(
        outcome_id=outcome_id(command.message_id, status),
        message_id=command.message_id,
        customer_id=command.customer_id,
        store_id=command.store_id,
        channel=command.channel,
        status=status,
        reason=reason,
        detail=detail,
        template=command.template,
        purpose=command.purpose,
        provider=provider,
        provider_message_id=provider_message_id,
        error_code=error_code,
        segments=sms.segments if sms else None,
        cost_micros=command.cost_micros if command.cost_micros is not None else (sms.cost_micros if sms else None),
        currency=command.currency or (sms.currency if sms else None),
        trigger_event_id=command.trigger_event_id,
        occurred_at=now,
        **journey_fields(command),
    )


_RECEIPT_REASONS = {OutcomeStatus.UNDELIVERED: OutcomeReason.UNDELIVERED,
                    OutcomeStatus.FAILED: OutcomeReason.PROVIDER_FAILED}


def for_receipt(
    *,
    message_id: str,
    customer_id: str,
    store_id: str,
    channel: Channel,
    status: OutcomeStatus,
    provider: str,
    provider_message_id: str,
    error_code: str | None,
    now: dt.datetime,
    tags: SendLedgerEntry | None = None,
) -> MessageOutcome:
    """An outcome reported by a provider's delivery receipt; ``tags``, the message's ledger entry, gives it the
    command's journey, A/B arm and coupon."""
    return MessageOutcome(
        outcome_id=outcome_id(message_id, status),
        message_id=message_id,
        customer_id=customer_id,
        store_id=store_id,
        channel=channel,
        status=status,
        reason=_RECEIPT_REASONS.get(OutcomeStatus(status)),
        provider=provider,
        provider_message_id=provider_message_id,
        error_code=error_code,
        occurred_at=now,
        **({"journey": tags.journey, "variant": tags.variant, "coupon_code": tags.coupon_code} if tags else {}),
    )


class OutcomeWriter:
    def __init__(self, publisher: Publisher, names: TopicNames, metrics: Metrics) -> None:
        self._publisher = publisher
        self._topic = names(MESSAGE_OUTCOMES)
        self._metrics = metrics

    async def write(self, outcome: MessageOutcome) -> None:
        await self._publisher.publish(self._topic, outcome.customer_id.encode(), encode(outcome))
        self._metrics.outcomes.labels(outcome.channel or "none", outcome.status).inc()
        if outcome.status == OutcomeStatus.SUPPRESSED:
            self._metrics.suppressions.labels(outcome.reason or "other").inc()


def describe_error(exc: BaseException) -> str:
    """Our own errors are written to carry no personal data; anything else is named by its type only."""
    if isinstance(exc, (SchemaError, SwitchboardError)):
        return str(exc)[:1000]
    return f"{type(exc).__name__} (unexpected; message withheld, see the worker's log for the traceback)"


def dead_letter(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, stage: str,
                exc: BaseException, now: dt.datetime, reason: str | None = None) -> tuple[str, DeadLetter]:
    """The dead letter of a record a stage could not handle, and the topic it goes to (``<topic>.dlq``).
    ``reason`` replaces the exception's text; give one only when it carries no personal data."""
    return f"{topic}.dlq", DeadLetter(
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key=key,
        value=value,
        stage=stage,
        error_type=type(exc).__name__,
        error_message=reason or describe_error(exc),
        failed_at=now,
    )


class DeadLetterWriter:
    def __init__(self, publisher: Publisher, metrics: Metrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def write(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        stage: str,
        exc: BaseException,
        now: dt.datetime,
        reason: str | None = None,
    ) -> None:
        """``reason`` replaces the exception's text; give one only when it carries no personal data."""
        logger.warning("dead-lettering %s at stage %s: %s", coordinates(topic, partition, offset), stage,
                       type(exc).__name__)
        dlq, letter = dead_letter(topic, partition, offset, key, value, stage, exc, now, reason)
        await self._publisher.publish(dlq, key, encode(letter))
        self._metrics.dead_letters.labels(stage).inc()
