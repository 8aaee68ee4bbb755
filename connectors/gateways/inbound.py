"""Inbound messages (replies, button presses) onto ``messages.inbound``, keyed by customer.

A provider names the sender by number and (WhatsApp, since 2026) by a business-scoped user id, or by
the user id alone for a customer who uses a username. A number is resolved through the contact
directory (:mod:`connectors.gateways.directory`, built from ``customers.profiles``), so a reply reaches
its customer whether or not this process ever messaged it; a user id is learnt from the receipts of the
messages sent (bounded, in memory). An opt-out from a number no profile has is kept as a contact
suppression (:mod:`connectors.gateways.suppressions`) and a START lifts one; any other message the
gateway cannot place is dead-lettered on its own, with its reason and its raw body, never dropped.
Providers redeliver webhooks: one event per provider message id.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

from connectors.errors import UnknownSenderError
from connectors.gateways.directory import ContactDirectory
from connectors.gateways.suppressions import Suppressions
from schemas.catalog import MESSAGE_INBOUND, TopicNames
from schemas.codec import encode
from schemas.messages import InboundMessage
from schemas.types import Channel
from streams.clock import Clock
from streams.ids import outcome_id
from streams.keywords import Keyword, classify, normalize
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, Publisher


class Contacts:
    """Which customer (and store) a number or a provider's user id belongs to: numbers from the contact
    directory (profiles), user ids learnt from receipts (bounded, in memory)."""

    def __init__(self, directory: ContactDirectory | None = None, capacity: int = 200_000) -> None:
        self.directory = directory
        self._capacity = capacity
        self._by_user_id: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def learn(self, user_id: str, customer_id: str, store_id: str) -> None:
        """Remember whose provider user id (``US.1349…``) this is. Numbers are not learnt: the directory has
        every profile's, and a number a process once messaged may since have moved to someone else."""
        if user_id.lstrip("+").isdigit():
            return
        self._by_user_id[user_id] = (customer_id, store_id)
        self._by_user_id.move_to_end(user_id)
        while len(self._by_user_id) > self._capacity:
            self._by_user_id.popitem(last=False)

    def lookup(self, number: str | None, user_id: str | None = None) -> tuple[str, str] | None:
        """The owner of ``number``, else of ``user_id``."""
        owner = self.directory.lookup(number) if number and self.directory is not None else None
        return owner if owner is not None or not user_id else self._by_user_id.get(user_id)


class InboundWriter:
    def __init__(self, names: TopicNames, publisher: Publisher, contacts: Contacts, clock: Clock,
                 metrics: Metrics, suppressions: Suppressions | None = None) -> None:
        self._topic = names(MESSAGE_INBOUND)
        self._publisher, self._contacts, self._clock, self._metrics = publisher, contacts, clock, metrics
        self._suppressions = suppressions
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def learn(self, key: str, customer_id: str, store_id: str) -> None:
        """Remember whose ``key`` (a user id a receipt named) is."""
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
        handled = await self._keyword(owner, provider, provider_message_id, from_number, text, received_at)
        if owner is None and handled:
            self._metrics.webhooks.labels(provider, handled).inc()
        elif owner is None:
            who = "a number no profile has" if from_number else "a user id, without a number, no receipt named"
            await self.reject(channel=channel, raw=raw, error=UnknownSenderError(
                f"inbound {channel.value} message from {who}"))
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

    async def _keyword(self, owner: tuple[str, str] | None, provider: str, provider_message_id: str,
                       from_number: str | None, text: str | None, received_at: dt.datetime) -> str | None:
        """Keeps or lifts a contact suppression: an opt-out from a number no profile has is kept (the worker
        records a known customer's); an opt-in lifts the number's, whoever it belongs to. Says what it did."""
        if self._suppressions is None or not from_number or not text:
            return None
        keyword = classify(text)
        proof = dict(keyword=normalize(text), provider=provider, provider_message_id=provider_message_id,
                     received_at=received_at)
        if keyword == Keyword.OPT_OUT and owner is None:
            await self._suppressions.suppress(from_number, **proof)
            return "suppressed"
        if keyword == Keyword.OPT_IN and await self._suppressions.lift(from_number, **proof):
            return "lifted"
        return None
