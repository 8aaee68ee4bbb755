"""Contact suppressions: a STOP from a number no profile has still takes effect.

The gateway that takes such a reply publishes a :class:`~schemas.contacts.ContactSuppression` to the
compacted ``contacts.suppressions`` topic, keyed by the keyed hash of (sender, channel, contact point)
— HMAC-SHA256 with ``SWITCHBOARD_CONTACTS__KEY``, hex — with the reply as its proof (provider message
id, time, keyword). Every gateway of the channel reads the topic to its end before it serves webhooks
or sends, then follows it, and checks it right before each provider call, beside the consent view: a
profile imported later with that number is suppressed at the gateway (``opted_out``), with no call. A
START (or a YES, as the worker reads one after an opt-out) from the number lifts it: a ``lifted`` record,
the START its proof. Only suppressed keys are held in memory (one 64-byte key each).

The check reads what the follower has applied (no read barrier as the consent view's): a suppression is
applied here as soon as it is written, and another instance has it within its fetch latency.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from connectors.gateways import compacted
from connectors.gateways.directory import normalise
from schemas.codec import codec_for, encode
from schemas.contacts import ContactSuppression, SuppressionState
from schemas.errors import DecodeError
from schemas.messages import SendCommand
from schemas.types import Channel
from streams.publish import Publisher

logger = logging.getLogger(__name__)


def suppression_key(key: bytes, sender: str, channel: Channel | str, point: str) -> bytes:
    """The Kafka key of a contact point's suppression: hex HMAC-SHA256 of (sender, channel, point)."""
    message = f"{sender}\x00{Channel(channel).value}\x00{normalise(point)}".encode()
    return hmac.new(key, message, "sha256").hexdigest().encode()


class Suppressions(compacted.CompactedView):
    """The suppressed contact points of one sender on one channel."""

    def __init__(self, topic: str, channel: Channel, sender: str, key: bytes, publisher: Publisher) -> None:
        self.topic, self.channel, self.sender = topic, Channel(channel), sender
        self._key, self._publisher = key, publisher
        self._suppressed: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._suppressed)

    def blocks(self, command: SendCommand) -> bool:
        """Whether ``command``'s contact point opted out by a reply before any profile had it."""
        return Channel(command.channel) == self.channel and self._key_of(command.to) in self._suppressed

    def suppressed(self, point: str) -> bool:
        return self._key_of(point) in self._suppressed

    async def suppress(self, point: str, *, keyword: str, provider: str, provider_message_id: str,
                       received_at: dt.datetime) -> None:
        """Records the opt-out (acknowledged by the broker when this returns) and applies it here at once."""
        await self._write(point, SuppressionState.SUPPRESSED, keyword, provider, provider_message_id, received_at)

    async def lift(self, point: str, *, keyword: str, provider: str, provider_message_id: str,
                   received_at: dt.datetime) -> bool:
        """Lifts the point's suppression, if it has one (False: nothing to lift)."""
        if not self.suppressed(point):
            return False
        await self._write(point, SuppressionState.LIFTED, keyword, provider, provider_message_id, received_at)
        return True

    async def _write(self, point: str, state: SuppressionState, keyword: str, provider: str,
                     provider_message_id: str, received_at: dt.datetime) -> None:
        key = self._key_of(point)
        record = ContactSuppression(sender=self.sender, channel=self.channel, state=state, keyword=keyword,
                                    provider=provider, provider_message_id=provider_message_id,
                                    received_at=received_at)
        await self._publisher.publish(self.topic, key, encode(record))
        self._set(key, state)

    def _key_of(self, point: str) -> bytes:
        return suppression_key(self._key, self.sender, self.channel, point)

    def _set(self, key: bytes, state: SuppressionState | str) -> None:
        if state == SuppressionState.SUPPRESSED:
            self._suppressed.add(key)
        else:
            self._suppressed.discard(key)

    def _apply(self, partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        if value is None:
            self._suppressed.discard(key)
            return
        try:
            record = codec_for(ContactSuppression).decode(value)
        except DecodeError as exc:
            logger.warning("suppression at %s[%d]@%d unreadable: %s", self.topic, partition, offset, exc)
            return
        if record.sender == self.sender and record.channel == self.channel:  # another sender's or channel's: not ours
            self._set(key, record.state)
