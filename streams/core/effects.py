"""What a step asks its driver to do. The worker publishes and counts them; the simulator turns them into
rows. A closed vocabulary: a driver matches on these and ends in ``assert_never``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from schemas.customers import ConsentChange
from schemas.messages import MessageIntent, MessageOutcome, SendCommand


@dataclass(frozen=True, slots=True)
class Send:
    """A send command for the channel's gateway (``messages.commands.<channel>[.bulk]``)."""

    command: SendCommand
    intent: MessageIntent
    note: str | None = None  # why this decision came now: a deferred send, a fallback


@dataclass(frozen=True, slots=True)
class Report:
    """An outcome the worker itself writes: a message suppressed or scheduled, with its reason."""

    outcome: MessageOutcome
    intent: MessageIntent
    note: str | None = None
    decided: bool = True  # False: the journey engine's own (a holdout, nothing to recommend), not the policy's


@dataclass(frozen=True, slots=True)
class Emit:
    """Any other record, to a catalog topic (unprefixed name); ``value`` None is a tombstone."""

    topic: str
    key: bytes
    value: BaseModel | None


@dataclass(frozen=True, slots=True)
class JourneyNote:
    kind: Literal["entered", "exited", "completed", "handoff"]
    journey: str
    store_id: str
    step: str | None = None
    cause: str | None = None  # the event type that ended it (exited)


@dataclass(frozen=True, slots=True)
class ConsentNote:
    """Consent the step recorded (changed state only): from a reply's keyword, or pending a confirmation."""

    change: ConsentChange  # as recorded (pending where the store wants the YES first)
    from_reply: bool


@dataclass(frozen=True, slots=True)
class Erased:
    """Keep the erased customer's suppression key (a keyed hash: never the id itself)."""

    suppression_key: bytes


@dataclass(frozen=True, slots=True)
class Ignored:
    """Input dropped on purpose (counted, never stored): about an erased customer, or a reply already applied."""

    what: Literal["event_ignored", "profile_ignored", "consent_ignored", "inbound_ignored", "reply_replayed"]


Effect = Send | Report | Emit | JourneyNote | ConsentNote | Erased | Ignored
