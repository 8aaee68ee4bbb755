"""Inbound messages (replies, button presses) onto ``messages.inbound``, keyed by customer.

A provider names only the sender's number. A gateway learns which customer each number belongs to
from the messages it sends (bounded, in memory); a message from a number it cannot place is
dead-lettered with the raw webhook body, never dropped. Providers redeliver webhooks: one event per
provider message id.
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
    """Which customer (and store) a number belongs to, learnt from the messages sent to it."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._by_number: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def learn(self, number: str, customer_id: str, store_id: str) -> None:
        key = number.lstrip("+")
        self._by_number[key] = (customer_id, store_id)
        self._by_number.move_to_end(key)
        while len(self._by_number) > self._capacity:
            self._by_number.popitem(last=False)

    def lookup(self, number: str) -> tuple[str, str] | None:
        return self._by_number.get(number.lstrip("+"))


class InboundWriter:
    def __init__(self, names: TopicNames, publisher: Publisher, contacts: Contacts, clock: Clock,
                 metrics: Metrics) -> None:
        self._topic = names(MESSAGE_INBOUND)
        self._publisher, self._contacts, self._clock, self._metrics = publisher, contacts, clock, metrics
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def write(self, *, channel: Channel, provider: str, provider_message_id: str, from_number: str,
                    text: str | None, raw: bytes, received_at: dt.datetime, button_payload: str | None = None,
                    in_reply_to: str | None = None) -> None:
        if provider_message_id in self._seen:
            return
        owner = self._contacts.lookup(from_number)
        if owner is None:
            # Not from Kafka: partition and offset -1; the raw webhook body is kept for replay.
            error = UnknownSenderError(f"inbound {channel.value} message from a number this gateway has not messaged")
            await self._dead_letters.write(topic=self._topic, partition=-1, offset=-1, key=None, value=raw,
                                           stage=f"{channel.value}_inbound", exc=error, now=self._clock.now(),
                                           reason=str(error))
        else:
            customer_id, store_id = owner
            inbound = InboundMessage(
                inbound_id=outcome_id(provider_message_id, "inbound"), customer_id=customer_id, store_id=store_id,
                channel=channel, provider=provider, provider_message_id=provider_message_id, text=text,
                button_payload=button_payload, in_reply_to=in_reply_to, received_at=received_at)
            await self._publisher.publish(self._topic, customer_id.encode(), encode(inbound))
            self._metrics.webhooks.labels(provider, "inbound").inc()
        self._seen[provider_message_id] = None
        while len(self._seen) > 100_000:
            self._seen.popitem(last=False)
