"""The contact directory: which customer a reply's number belongs to, built from ``customers.profiles``.

A gateway that takes replies (SMS, WhatsApp) reads the compacted profile topic to its end before it
serves webhooks, then follows it, so a reply reaches its customer whenever it comes, at any instance,
after any restart — not only from numbers that process has messaged. Each profile gives the contact
point the worker sends this channel's messages to (``streams.policy.contact_point``: the phone for
SMS, the WhatsApp number or else the phone for WhatsApp). A changed number moves the mapping; a
tombstone (erasure) or a profile without a point on this channel removes it.

Contact points are never kept as they are: the map's keys are the first 16 bytes of
HMAC-SHA256(``SWITCHBOARD_CONTACTS__KEY``, channel + the point normalised: E.164 digits, or an e-mail
address case-folded), so a heap dump holds no numbers. 128 bits keep collisions out of reach (about
one chance in 10^24 at 10^7 customers).

One sender per channel serves every store today, so a number two stores' customers share resolves to
the customer whose profile came last; routing by (sender, contact point) comes with a sender per store.

Memory: about 200 bytes per customer with a point on the channel (tracemalloc, 100,000 profiles with
12-character customer ids; ``tests/unit/test_contact_directory.py`` holds it under 300): the 16-byte key
and its dict slot, the customer id, and the reverse entry (customer -> key, store) that lets a changed
number or a tombstone find the old key. A million customers cost ~0.2 GB per gateway process; store ids
are interned (shared). Restoring decodes every profile once (~40 µs each on the 2-core dev machine: ~40 s
per million profiles), before the webhooks are served.
"""

from __future__ import annotations

import hmac
import logging
import sys

from connectors.gateways import compacted
from schemas.codec import codec_for
from schemas.customers import CustomerProfile
from schemas.errors import DecodeError
from schemas.types import Channel
from streams.policy import contact_point

logger = logging.getLogger(__name__)

KEY_BYTES = 16


def normalise(point: str) -> str:
    """The comparable form of a contact point: a number's digits (``+48 601-000-111`` -> ``48601000111``,
    as WhatsApp writes senders), an e-mail address stripped and case-folded."""
    if "@" in point:
        return point.strip().casefold()
    return "".join(ch for ch in point if ch.isdigit())


def point_key(key: bytes, channel: Channel | str, point: str) -> bytes:
    """The keyed hash a contact point is known by in memory."""
    message = f"{Channel(channel).value}\x00{normalise(point)}".encode()
    return hmac.digest(key, message, "sha256")[:KEY_BYTES]


class ContactDirectory(compacted.CompactedView):
    """Contact point (as a keyed hash) -> (customer, store), for one channel, from profiles."""

    def __init__(self, topic: str, channel: Channel, key: bytes) -> None:
        self.topic, self.channel, self._key = topic, Channel(channel), key
        # key -> customer id; a tuple when customers of several stores share the point (the last applied last)
        self._owners: dict[bytes, str | tuple[str, ...]] = {}
        self._points: dict[str, tuple[bytes, str]] = {}  # customer id -> (key, store id)

    def __len__(self) -> int:
        return len(self._points)

    def lookup(self, point: str) -> tuple[str, str] | None:
        """(customer id, store id) of the profile that has ``point`` on this channel, else None."""
        owners = self._owners.get(point_key(self._key, self.channel, point))
        if owners is None:
            return None
        customer_id = owners if isinstance(owners, str) else owners[-1]
        return customer_id, self._points[customer_id][1]

    def apply(self, customer_id: str, profile: CustomerProfile | None) -> None:
        """A profile's latest version (None: a tombstone, the customer erased)."""
        point = contact_point(profile, self.channel) if profile is not None else None
        new = point_key(self._key, self.channel, point) if point else None
        old = self._points.get(customer_id)
        if old is not None and old[0] == new and old[1] == profile.store_id:  # type: ignore[union-attr]
            return  # the same point: a profile update that moved nothing
        if old is not None:
            self._drop(old[0], customer_id)
            del self._points[customer_id]
        if new is None:
            return
        assert profile is not None
        self._points[customer_id] = (new, sys.intern(profile.store_id))
        owners = self._owners.get(new)
        if owners is None:
            self._owners[new] = customer_id
        else:  # a point shared with another customer (another store's, or a stale profile): the newest wins
            others = (owners,) if isinstance(owners, str) else owners
            self._owners[new] = (*(o for o in others if o != customer_id), customer_id)

    def _drop(self, key: bytes, customer_id: str) -> None:
        owners = self._owners.get(key)
        if owners is None or owners == customer_id:
            self._owners.pop(key, None)
            return
        if isinstance(owners, tuple):
            rest = tuple(o for o in owners if o != customer_id)
            self._owners[key] = rest[0] if len(rest) == 1 else rest

    def _apply(self, partition: int, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        try:
            profile = codec_for(CustomerProfile).decode(value) if value else None
        except DecodeError as exc:  # the worker dead-letters it; here the customer's last good profile stays
            logger.warning("profile at %s[%d]@%d not read into the contact directory: %s", self.topic, partition,
                           offset, exc)
            return
        self.apply(key.decode(), profile)
