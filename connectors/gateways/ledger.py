"""The send ledger: at most one provider call per message id, across restarts and redeliveries.

Entries live on a compacted topic keyed by message id and in memory. Before a provider call the
gateway writes ``attempting`` and waits for the broker's ack; after it, ``accepted`` / ``rejected``
/ ``ambiguous``. A call that never reached the provider (throttled, connection refused) deletes the
entry (a tombstone), so a redelivery may try again. On start the whole topic is read back: an entry
still ``attempting`` means the process died mid-call, and that message is never called again blindly.
After that the topic is followed, so every instance of a gateway sees the others' entries (a receipt
may reach an instance that did not send the message). Each entry also keeps the strongest delivery
receipt so far, which makes receipts monotonic and de-duplicated across restarts.
"""

from __future__ import annotations

import datetime as dt
import logging

from aiokafka import AIOKafkaConsumer

from connectors.gateways import compacted
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.webhooks.receipts import is_news
from schemas.codec import codec_for, encode
from schemas.messages import LedgerState, SendLedgerEntry
from schemas.types import Channel

logger = logging.getLogger(__name__)


class SendLedger:
    def __init__(self, publisher: AiokafkaPublisher, topic: str, channel: Channel, provider: str) -> None:
        self._publisher = publisher
        self.topic = topic
        self._channel = channel
        self._provider = provider
        self._entries: dict[str, SendLedgerEntry] = {}
        # Offset of the newest record applied per message (tombstones too): the follower must never put
        # back an older state over one this instance has written since.
        self._offsets: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, message_id: str) -> SendLedgerEntry | None:
        return self._entries.get(message_id)

    async def restore(self, bootstrap_servers: str, partition_ids: set[int]) -> AIOKafkaConsumer:
        """Reads the ledger back; returns the consumer for :meth:`follow` (the caller stops it)."""
        consumer = await compacted.read_to_end(bootstrap_servers, self.topic, partition_ids, self._apply_record)
        logger.info("send ledger restored: %d entries from %s", len(self._entries), self.topic)
        return consumer

    async def follow(self, consumer: AIOKafkaConsumer) -> None:
        """Applies entries written by any instance (our own included: applying one twice is harmless)."""
        await compacted.follow(consumer, self._apply_record)

    def _apply_record(self, _partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        """A record read from the topic (``compacted.Apply``): entries are per message id, whatever the partition."""
        self._apply(key, value, offset)

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        message_id = key.decode()
        if offset <= self._offsets.get(message_id, -1):
            return  # already have this or something newer (our own write)
        self._offsets[message_id] = offset
        if value is None:
            self._entries.pop(message_id, None)
        else:
            self._entries[message_id] = codec_for(SendLedgerEntry).decode(value)

    async def _write(self, message_id: str, entry: SendLedgerEntry | None) -> None:
        value = encode(entry) if entry else None
        self._apply(message_id.encode(), value, await self._publisher.append(self.topic, message_id.encode(), value))

    async def record(self, message_id: str, state: LedgerState, now: dt.datetime,
                     provider_message_id: str | None = None, error_code: str | None = None,
                     consent_position: int | None = None,
                     journey_fields: dict[str, str | None] | None = None) -> SendLedgerEntry:
        """Writes the message's new state. The receipt so far, the consent position checked before the call
        (``attempting``) and the command's journey, arm and coupon (``journey_fields``) are carried into the
        later states, so the settled entry still proves the check and its receipts' outcomes say the journey."""
        previous = self._entries.get(message_id)
        tags = journey_fields or ({"journey": previous.journey, "variant": previous.variant,
                                   "coupon_code": previous.coupon_code} if previous else {})
        entry = SendLedgerEntry(
            message_id=message_id, channel=self._channel, state=state, provider=self._provider,
            provider_message_id=provider_message_id, error_code=error_code,
            receipt_status=previous.receipt_status if previous else None,
            consent_position=(consent_position if consent_position is not None else
                              previous.consent_position if previous else None),
            **tags,
            attempts=(previous.attempts + 1 if previous and state == LedgerState.ATTEMPTING else
                      previous.attempts if previous else 1),
            updated_at=now,
        )
        await self._write(message_id, entry)
        return entry

    async def advance_receipt(self, message_id: str, status: str, now: dt.datetime) -> bool:
        """Records a delivery receipt if it is news for the message; False for a repeat or a step back."""
        entry = self._entries.get(message_id)
        if entry is not None and not is_news(entry.receipt_status, status):
            return False
        if entry is not None:
            await self._write(message_id, entry.model_copy(update={"receipt_status": status, "updated_at": now}))
        return True  # a message this ledger never saw (expired from it): report; its outcome id is stable

    async def forget(self, message_id: str) -> None:
        """The call provably never reached the provider: a redelivery may try again."""
        await self._write(message_id, None)

