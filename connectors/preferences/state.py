"""What the preference page shows: each customer's profile and folded consent, followed from Kafka.

Both topics are compacted and keyed by customer id: ``customers.profiles`` (CustomerProfile) and
``customers.consent_state`` (ConsentSnapshot, written by the worker whenever a customer's consent
changes). They are read to their end before the page serves anyone, then followed with
:mod:`connectors.gateways.compacted`, like the gateways' consent view.

What the page itself publishes is also noted here at once, so the next view shows the customer's own
change before the worker has folded it; the followed records overwrite the note when they come.
Every profile is kept in memory: fine for one shop's customers, not for a billion (a keyed store
would replace the dicts then, behind the same methods).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from connectors.gateways import compacted
from schemas.codec import codec_for
from schemas.customers import ConsentChange, ConsentSnapshot, ConsentState, CustomerProfile
from schemas.errors import DecodeError
from streams.logs import coordinates

logger = logging.getLogger(__name__)

PartitionsOf = Callable[[str], Awaitable[set[int]]]


class CustomerDirectory:
    def __init__(self, profiles_topic: str, consent_topic: str) -> None:
        self.profiles_topic, self.consent_topic = profiles_topic, consent_topic
        self._profiles: dict[str, CustomerProfile] = {}
        self._consent: dict[str, dict[str, ConsentState]] = {}  # customer id -> '<channel>:<purpose>' -> state

    def profile(self, customer_id: str) -> CustomerProfile | None:
        return self._profiles.get(customer_id)

    def consent(self, customer_id: str) -> dict[str, ConsentState]:
        return dict(self._consent.get(customer_id, {}))

    def note_profile(self, profile: CustomerProfile) -> None:
        """A profile this process has just published."""
        self._profiles[profile.customer_id] = profile

    def note_consent(self, change: ConsentChange) -> None:
        """A consent change this process has just published."""
        slots = self._consent.setdefault(change.customer_id, {})
        slots[f"{change.channel}:{change.purpose}"] = ConsentState(change.state)

    async def restore(self, bootstrap_servers: str, partitions_of: PartitionsOf) -> list[AIOKafkaConsumer]:
        """Reads both topics to their end; returns their consumers, positioned there, for :meth:`follow`."""
        consumers = []
        try:
            for topic, apply in ((self.profiles_topic, self._apply_profile), (self.consent_topic, self._apply_consent)):
                consumers.append(await compacted.read_to_end(bootstrap_servers, topic, await partitions_of(topic),
                                                             _skipping_bad(topic, apply)))
        except BaseException:
            await asyncio.gather(*(c.stop() for c in consumers))
            raise
        logger.info("customer state restored: %d profiles, %d consent states", len(self._profiles), len(self._consent))
        return consumers

    async def follow(self, consumers: list[AIOKafkaConsumer]) -> None:
        """Applies what both topics get from now on, until cancelled."""
        profiles, consent = consumers
        await asyncio.gather(compacted.follow(profiles, _skipping_bad(self.profiles_topic, self._apply_profile)),
                             compacted.follow(consent, _skipping_bad(self.consent_topic, self._apply_consent)))

    def _apply_profile(self, _partition: int, key: bytes | None, value: bytes | None, _offset: int) -> None:
        if key is None:
            return
        if not value:
            self._profiles.pop(key.decode(), None)  # a tombstone: the customer was erased
            return
        profile = codec_for(CustomerProfile).decode(value)
        self._profiles[profile.customer_id] = profile

    def _apply_consent(self, _partition: int, key: bytes | None, value: bytes | None, _offset: int) -> None:
        if key is None:
            return
        if not value:
            self._consent.pop(key.decode(), None)
            return
        snapshot = codec_for(ConsentSnapshot).decode(value)
        self._consent[snapshot.customer_id] = {slot: ConsentState(state) for slot, state in snapshot.slots.items()}


def _skipping_bad(topic: str, apply: compacted.Apply) -> compacted.Apply:
    """A record that does not decode is logged by its coordinates and skipped: one bad record must not
    take every customer's page down."""

    def guarded(partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        try:
            apply(partition, key, value, offset)
        except (DecodeError, UnicodeDecodeError) as exc:
            logger.warning("skipping %s: %s", coordinates(topic, partition, offset), exc)

    return guarded
