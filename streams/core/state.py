"""One customer's state: everything the decisions read about them, in one record with one writer.

The parts are the plain dicts the pure modules already fold (so each keeps its own tests):

    profile        the CustomerProfile, kept as its Avro bytes and decoded once, on first use
    consents       streams.consent: "<channel>:<purpose>" -> {state, at, change_id, source}
    conversations  channel -> epoch ms of the customer's last inbound message (the WhatsApp window)
    in_flight      streams.fallback: sent messages awaiting a receipt, with their intent
    scheduled      streams.scheduler: deferred sends (quiet hours, caps) with their intent
    sent           streams.policy.record_sent: marketing sends per cap slot
    journeys       streams.journeys.engine: journey instances and last entries
    behaviour      streams.campaigns.remember: what campaign segments read
    replies        inbound id -> epoch ms, the newest REPLIES_KEPT replies applied (a replay changes nothing)
    notices        channel -> epoch ms of the last marketing message that carried the opt-out line

A step never changes the state it is given: it works on a shallow copy whose parts it replaces (every
pure module returns a new dict), so a driver can keep the old state until the step's effects are handed
over. Nothing else may assign to a state's parts. ``as_json``/``from_json`` are the changelog's format.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from schemas.codec import codec_for
from schemas.customers import CustomerProfile
from schemas.types import Channel
from streams import fallback, scheduler
from streams.journeys import engine
from streams.errors import StateError

FORMAT = 1  # the record's format version, written with it
_FOREVER = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
_PARTS = ("consents", "conversations", "in_flight", "scheduled", "sent", "journeys", "behaviour", "replies",
          "notices")
REPLIES_KEPT = 64  # replies remembered per customer; a provider redelivers within days, far fewer than this

SCHEDULED_SEND = "scheduled_send"
JOURNEY_WAKE = "journey_wake"
RECEIPT_TIMEOUT = "receipt_timeout"


@dataclass(frozen=True, slots=True)
class Timer:
    """Something the state waits for: a deferred send, a journey's wake-up, a receipt's deadline."""

    due: dt.datetime
    kind: str  # SCHEDULED_SEND, JOURNEY_WAKE or RECEIPT_TIMEOUT
    ident: str  # the message id (sends, receipts) or the journey instance id (wake-ups)
    channel: Channel | None = None  # the channel a receipt is awaited on


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    profile_avro: bytes | None = None
    consents: dict = field(default_factory=dict)
    conversations: dict = field(default_factory=dict)
    in_flight: dict = field(default_factory=dict)
    scheduled: dict = field(default_factory=dict)
    sent: dict = field(default_factory=dict)
    journeys: dict = field(default_factory=dict)
    behaviour: dict | None = None
    replies: dict = field(default_factory=dict)
    notices: dict = field(default_factory=dict)
    _profile: list = field(default_factory=list, compare=False, repr=False)  # [decoded profile], once decoded

    @property
    def profile(self) -> CustomerProfile | None:
        if self.profile_avro is None:
            return None
        if not self._profile:
            try:
                self._profile.append(codec_for(CustomerProfile).decode(self.profile_avro))
            except Exception as exc:
                raise StateError(f"stored profile unreadable: {type(exc).__name__}") from exc
        return self._profile[0]

    def with_profile(self, profile: CustomerProfile | None, avro: bytes | None) -> CustomerState:
        """The state with a profile already decoded (at ingest), or without one (``None``)."""
        return replace(self, profile_avro=avro, _profile=[profile] if profile is not None else [])

    def __copy__(self) -> CustomerState:
        return replace(self, _profile=self._profile)

    def updated(self, **parts: Any) -> CustomerState:
        return replace(self, **parts, _profile=self._profile)

    def is_empty(self) -> bool:
        """Nothing held: the driver may delete the record."""
        return self.profile_avro is None and not any(getattr(self, part) for part in _PARTS)

    def timers(self, receipt_timeouts: Mapping[str, float] | None = None) -> list[Timer]:
        """Every timer of the state, whatever its time (a driver's due-time index is built from these).
        Receipt deadlines only with ``receipt_timeouts`` (seconds per channel)."""
        found = [Timer(due, SCHEDULED_SEND, message_id) for message_id, due in scheduler.due(self.scheduled, _FOREVER)]
        found += [Timer(due, JOURNEY_WAKE, instance) for instance, due in engine.due(self.journeys, _FOREVER)]
        if receipt_timeouts:
            found += [Timer(due, RECEIPT_TIMEOUT, message_id, channel) for message_id, channel, due
                      in fallback.due_timeouts(self.in_flight, _FOREVER, receipt_timeouts)]
        return found

    def as_json(self) -> dict:
        found: dict[str, Any] = {"v": FORMAT}
        if self.profile_avro is not None:
            found["profile"] = base64.b64encode(self.profile_avro).decode("ascii")
        for part in _PARTS:
            value = getattr(self, part)
            if value:
                found[part] = value
        return found

    @classmethod
    def from_json(cls, customer_id: str, data: Mapping[str, Any]) -> CustomerState:
        if data.get("v") != FORMAT:
            raise StateError(f"customer state of format {data.get('v')!r}, this worker reads {FORMAT}")
        profile = data.get("profile")
        return cls(customer_id=customer_id, profile_avro=base64.b64decode(profile) if profile else None,
                   **{part: data[part] for part in _PARTS if part in data})
