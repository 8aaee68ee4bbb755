"""What a customer's owner applies to their state: one kind of input per source, already decoded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schemas.customers import ConsentChange, CustomerProfile, ErasureRequest
from schemas.events import StorefrontEvent
from schemas.messages import CampaignLaunch, InboundMessage, MessageIntent, MessageOutcome
from schemas.types import Channel


@dataclass(frozen=True, slots=True)
class ProfileInput:
    """A profile from ``customers.profiles``; ``profile`` None is its tombstone (deleted)."""

    profile: CustomerProfile | None
    avro: bytes | None


@dataclass(frozen=True, slots=True)
class ConsentInput:
    change: ConsentChange
    received_at: dt.datetime  # when it reached Kafka (an imported opt-in may be months old)


@dataclass(frozen=True, slots=True)
class EventInput:
    event: StorefrontEvent
    received_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReplyInput:
    inbound: InboundMessage


@dataclass(frozen=True, slots=True)
class OutcomeInput:
    """A gateway's outcome or a provider's receipt about a message the worker sent."""

    outcome: MessageOutcome


@dataclass(frozen=True, slots=True)
class IntentInput:
    """A message someone else asks for (a producer's own intent on ``messages.intents``)."""

    intent: MessageIntent
    intent_bytes: bytes


@dataclass(frozen=True, slots=True)
class TimerInput:
    """A timer of the state fell due (see :meth:`CustomerState.timers`)."""

    kind: str
    ident: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True)
class CampaignInput:
    """One customer's turn in a campaign's walk over the partition."""

    launch: CampaignLaunch


@dataclass(frozen=True, slots=True)
class ErasureInput:
    request: ErasureRequest


Input = (ProfileInput | ConsentInput | EventInput | ReplyInput | OutcomeInput | IntentInput | TimerInput
         | CampaignInput | ErasureInput)
