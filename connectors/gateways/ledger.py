"""The send ledger: at most one provider call per message id, across restarts and redeliveries.

Entries live on a compacted topic keyed by message id and in memory. Before a provider call the
gateway writes ``attempting`` and waits for the broker's ack; after it, ``accepted`` / ``rejected``
/ ``ambiguous``. The ``attempting`` entries of sends that are ready together are written as one group
(:meth:`SendLedger.attempt`: one produce request, one wait for all their acks); results are written
without waiting (:meth:`SendLedger.record_later`), and the gateway commits a command's offset only once
they are acknowledged (it awaits the returned tasks first). Memory holds the newest entry written,
acknowledged or not; a followed record of a message with a write of ours in flight is held back until
that write's offset is known, so it can never put an older state back. A call that never reached the provider (throttled, connection refused) deletes the
entry (a tombstone), so a redelivery may try again. On start the whole topic is read back: an entry
still ``attempting`` means the process died mid-call, and that message is never called again blindly.
After that the topic is followed, so every instance of a gateway sees the others' entries (a receipt
may reach an instance that did not send the message). Each entry also keeps the strongest delivery
receipt so far, which makes receipts monotonic and de-duplicated across restarts.
"""

from __future__ import annotations

import asyncio
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
        self._unacked: dict[str, int] = {}  # message id -> writes of ours not yet acknowledged
        self._held: dict[str, list[tuple[bytes | None, int]]] = {}  # followed records waiting for those acks
        self._group: list[tuple[str, SendLedgerEntry, asyncio.Future[None]]] = []  # attempting, not yet sent
        self._flushing: set[asyncio.Task[None]] = set()  # the group's writes (the loop keeps weak references)
        self._reporting: dict[str, asyncio.Future[None]] = {}  # message id -> its result's outcome, being written

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
        if message_id in self._unacked:
            self._held.setdefault(message_id, []).append((value, offset))
            return
        if offset <= self._offsets.get(message_id, -1):
            return  # already have this or something newer (our own write)
        self._offsets[message_id] = offset
        if value is None:
            self._entries.pop(message_id, None)
        else:
            self._entries[message_id] = codec_for(SendLedgerEntry).decode(value)

    def _set(self, message_id: str, entry: SendLedgerEntry | None) -> None:
        if entry is None:
            self._entries.pop(message_id, None)
        else:
            self._entries[message_id] = entry

    async def _write(self, message_id: str, entry: SendLedgerEntry | None) -> None:
        """Memory first, then the topic; returns once the broker has acknowledged it."""
        self._begin(message_id, entry)
        await self._send(message_id, entry)

    def _begin(self, message_id: str, entry: SendLedgerEntry | None) -> None:
        self._set(message_id, entry)
        self._unacked[message_id] = self._unacked.get(message_id, 0) + 1

    async def _send(self, message_id: str, entry: SendLedgerEntry | None) -> None:
        offset = -1
        try:
            offset = await self._publisher.append(self.topic, message_id.encode(), encode(entry) if entry else None)
        finally:
            self._acked(message_id, offset)

    def _acked(self, message_id: str, offset: int) -> None:
        self._offsets[message_id] = max(offset, self._offsets.get(message_id, -1))
        left = self._unacked[message_id] - 1
        if left:
            self._unacked[message_id] = left
            return
        del self._unacked[message_id]
        for value, held_offset in self._held.pop(message_id, []):
            self._apply(message_id.encode(), value, held_offset)  # only what is newer than ours applies

    def record_later(self, message_id: str, state: LedgerState, now: dt.datetime, **fields) -> asyncio.Task[None]:
        """:meth:`record` without waiting for the ack: in memory at once; await the task before committing."""
        entry = self._entry(message_id, state, now, **fields)
        self._begin(message_id, entry)  # in memory before this returns: the customer's next command sees it
        return asyncio.create_task(self._send(message_id, entry))

    async def attempt(self, message_id: str, now: dt.datetime, consent_position: int | None,
                      journey_fields: dict[str, str | None], customer_id: str | None = None,
                      store_id: str | None = None) -> None:
        """Records ``attempting`` and returns once the broker has it. Sends that reach this point together
        (in the same turn of the event loop) share one produce request and one wait for the acks. The
        customer and store are kept so a receipt that names only the message can be attributed."""
        entry = self._entry(message_id, LedgerState.ATTEMPTING, now, consent_position=consent_position,
                            journey_fields=journey_fields, owner=(customer_id, store_id))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._group.append((message_id, entry, done))
        if len(self._group) == 1:
            asyncio.get_running_loop().call_soon(self._flush_group)
        await done

    def _flush_group(self) -> None:
        group, self._group = self._group, []

        async def write(message_id: str, entry: SendLedgerEntry, done: asyncio.Future[None]) -> None:
            try:
                await self._write(message_id, entry)
            except BaseException as exc:  # noqa: BLE001 - the waiting send gets the failure
                if not done.done():
                    done.set_exception(exc)
            else:
                if not done.done():
                    done.set_result(None)

        for message_id, entry, done in group:  # all sent before any ack is awaited: one produce request
            task = asyncio.create_task(write(message_id, entry, done))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def record(self, message_id: str, state: LedgerState, now: dt.datetime,
                     provider_message_id: str | None = None, error_code: str | None = None,
                     consent_position: int | None = None,
                     journey_fields: dict[str, str | None] | None = None) -> SendLedgerEntry:
        """Writes the message's new state and waits for the broker's ack."""
        entry = self._entry(message_id, state, now, provider_message_id, error_code, consent_position, journey_fields)
        await self._write(message_id, entry)
        return entry

    def _entry(self, message_id: str, state: LedgerState, now: dt.datetime, provider_message_id: str | None = None,
               error_code: str | None = None, consent_position: int | None = None,
               journey_fields: dict[str, str | None] | None = None,
               owner: tuple[str | None, str | None] = (None, None)) -> SendLedgerEntry:
        """The message's new entry. The receipt so far, the consent position checked before the call
        (``attempting``) and the command's journey, arm and coupon (``journey_fields``) are carried into the
        later states, so the settled entry still proves the check and its receipts' outcomes say the journey."""
        previous = self._entries.get(message_id)
        tags = journey_fields or ({"journey": previous.journey, "variant": previous.variant,
                                   "coupon_code": previous.coupon_code} if previous else {})
        customer_id, store_id = owner if owner[0] is not None else (
            (previous.customer_id, previous.store_id) if previous else (None, None))
        return SendLedgerEntry(
            message_id=message_id, channel=self._channel, state=state, provider=self._provider,
            provider_message_id=provider_message_id, error_code=error_code,
            receipt_status=previous.receipt_status if previous else None,
            consent_position=(consent_position if consent_position is not None else
                              previous.consent_position if previous else None),
            **tags, customer_id=customer_id, store_id=store_id,
            attempts=(previous.attempts + 1 if previous and state == LedgerState.ATTEMPTING else
                      previous.attempts if previous else 1),
            updated_at=now,
        )

    def reporting(self, message_id: str, outcome: asyncio.Future[None]) -> None:
        """The send's outcome is being written (after its ledger entry): receipts for it wait until it is."""
        self._reporting[message_id] = outcome
        outcome.add_done_callback(lambda _: self._reporting.pop(message_id, None) if
                                  self._reporting.get(message_id) is outcome else None)

    async def advance_receipt(self, message_id: str, status: str, now: dt.datetime) -> bool:
        """Records a delivery receipt if it is news for the message; False for a repeat, a step back or a message
        this ledger has no entry for (never sent, never reached the provider, or older than the topic's retention:
        a replayed receipt changes nothing). A receipt that overtakes the send's own outcome (the provider is
        quick) waits for it, so ``sent`` comes first. Every send's ``attempting`` entry is acknowledged before its
        provider call, so a receipt reaching another instance finds it once that instance has followed it."""
        reporting = self._reporting.get(message_id)
        if reporting is not None:
            await asyncio.wait([reporting])  # its failure is the gateway's to handle, not the webhook's
        entry = self._entries.get(message_id)
        if entry is None or not is_news(entry.receipt_status, status):
            return False
        await self._write(message_id, entry.model_copy(update={"receipt_status": status, "updated_at": now}))
        return True

    async def forget(self, message_id: str) -> None:
        """The call provably never reached the provider: a redelivery may try again."""
        await self._write(message_id, None)

