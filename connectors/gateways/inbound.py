"""Inbound messages (replies, button presses) onto ``messages.inbound``, keyed by customer.

A provider names the sender by number and (WhatsApp, since 2026) by a business-scoped user id, or by
the user id alone for a customer who uses a username. A gateway learns which customer each number
belongs to from the messages it sends, and each user id from the receipts of those messages (bounded,
in memory); a message it cannot place is dead-lettered on its own, with its reason and its raw body,
never dropped. Providers redeliver webhooks: one event per provider message id.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

from connectors.errors import UnknownSenderError
from schemas.catalog import MESSAGE_INBOUND, TopicNames
from schemas.codec import encode
from schemas.messages import InboundMessage
from schemas.types import Channel
from streams.clock import Clock
from streams.ids import outcome_id
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, Publisher


class Contacts:
    """Which customer (and store) a number or a provider's user id belongs to, learnt from the messages sent to
    it and their receipts. Numbers are digits and user ids are not (``US.1349…``), so one map holds both."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._by_number: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def learn(self, number: str, customer_id: str, store_id: str) -> None:
        key = number.lstrip("+")
        self._by_number[key] = (customer_id, store_id)
        self._by_number.move_to_end(key)
        while len(self._by_number) > self._capacity:
            self._by_number.popitem(last=False)

    def lookup(self, number: str | None, user_id: str | None = None) -> tuple[str, str] | None:
        """The owner of ``number``, else of ``user_id``."""
        owner = self._by_number.get(number.lstrip("+")) if number else None
        return owner if owner is not None or not user_id else self._by_number.get(user_id)


class InboundWriter:
    def __init__(self, names: TopicNames, publisher: Publisher, contacts: Contacts, clock: Clock,
                 metrics: Metrics) -> None:
        self._topic = names(MESSAGE_INBOUND)
        self._publisher, self._contacts, self._clock, self._metrics = publisher, contacts, clock, metrics
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def learn(self, key: str, customer_id: str, store_id: str) -> None:
        """Remember whose ``key`` (a number or a user id a receipt named) is."""
        self._contacts.learn(key, customer_id, store_id)

    async def reject(self, *, channel: Channel, raw: bytes, error: Exception) -> None:
        """Dead-letter one inbound event on its own; ``error``'s text must carry no personal data."""
        # Not from Kafka: partition and offset -1; the raw body is kept for replay.
        await self._dead_letters.write(topic=self._topic, partition=-1, offset=-1, key=None, value=raw,
                                       stage=f"{channel.value}_inbound", exc=error, now=self._clock.now(),
                                       reason=str(error))

    async def write(self, *, channel: Channel, provider: str, provider_message_id: str, from_number: str | None,
                    text: str | None, raw: bytes, received_at: dt.datetime, button_payload: str | None = None,
                    in_reply_to: str | None = None, user_id: str | None = None) -> None:
        if provider_message_id in self._seen:
            return
        owner = self._contacts.lookup(from_number, user_id)
        if owner is None:
            who = "a number" if from_number else "a user id, without a number,"
            await self.reject(channel=channel, raw=raw, error=UnknownSenderError(
                f"inbound {channel.value} message from {who} this gateway has not messaged"))
        else:
            customer_id, store_id = owner
            if from_number and user_id:  # a later message may come with the user id alone
                self._contacts.learn(user_id, customer_id, store_id)
            inbound = InboundMessage(
                inbound_id=outcome_id(provider_message_id, "inbound"), customer_id=customer_id, store_id=store_id,
                channel=channel, provider=provider, provider_message_id=provider_message_id, text=text,
                button_payload=button_payload, in_reply_to=in_reply_to, received_at=received_at)
            await self._publisher.publish(self._topic, customer_id.encode(), encode(inbound))
            self._metrics.webhooks.labels(provider, "inbound").inc()
        self._seen[provider_message_id] = None
        while len(self._seen) > 100_000:
            self._seen.popitem(last=False)
