"""Falling back across channels on delivery receipts. Pure: no Faust, no clock of its own.

When a message is sent, its intent and the channels tried so far are remembered per customer (in the
customer's state, ``in_flight``). A ``failed`` or ``undelivered`` outcome for it then asks the policy again with the channels
not tried yet — consent and contact points are re-checked, so a fallback never goes where the first
choice could not. A delivery (or, for e-mail, which has no receipts, the server's acceptance) ends
it. Entries older than :data:`KEEP` are forgotten (a channel whose receipts never come).

A receipt that never comes falls back too: :func:`due_timeouts` gives each message's deadline, which the
worker's due-time index fires (:func:`on_timeout`).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.messages import MessageIntent, MessageOutcome, OutcomeStatus
from schemas.types import Channel

KEEP = dt.timedelta(days=3)

InFlight = dict[str, dict]  # message_id -> {"intent": base64 Avro, "tried": [channel…], "at": epoch ms}

_FALL_BACK_ON = {OutcomeStatus.FAILED, OutcomeStatus.UNDELIVERED}
_DONE_ON = {OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.CLICKED, OutcomeStatus.CONVERTED}


@dataclass(frozen=True)
class Retry:
    """Ask the policy again for this message, on the channels not tried yet."""

    intent_bytes: bytes
    tried: tuple[Channel, ...]

    def narrowed(self, intent: MessageIntent) -> MessageIntent:
        return intent.model_copy(update={"channels": [c for c in intent.channels if Channel(c) not in self.tried]})


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def remember(in_flight: InFlight | None, message_id: str, intent_bytes: bytes, channel: Channel,
             now: dt.datetime) -> InFlight:
    """The state after sending ``message_id`` on ``channel`` (old entries pruned)."""
    horizon = _ms(now - KEEP)
    state = {mid: entry for mid, entry in (in_flight or {}).items() if entry["at"] >= horizon}
    tried = [*state.get(message_id, {}).get("tried", []), Channel(channel).value]
    state[message_id] = {"intent": base64.b64encode(intent_bytes).decode(), "tried": tried, "at": _ms(now)}
    return state


def on_outcome(in_flight: InFlight | None, outcome: MessageOutcome) -> tuple[InFlight, Retry | None]:
    """The state after ``outcome``, and whether to try the next channel."""
    state = dict(in_flight or {})
    entry = state.get(outcome.message_id)
    if entry is None or outcome.channel is None or Channel(outcome.channel).value != entry["tried"][-1]:
        return state, None  # not ours, or about an earlier channel of this message
    status = OutcomeStatus(outcome.status)
    done = status in _DONE_ON or (status == OutcomeStatus.SENT and outcome.channel == Channel.EMAIL)
    if done:
        del state[outcome.message_id]
        return state, None
    if status in _FALL_BACK_ON:  # the entry stays: ``remember`` adds the next channel, or ``finish`` ends it
        return state, Retry(base64.b64decode(entry["intent"]), tuple(Channel(c) for c in entry["tried"]))
    return state, None


def finish(in_flight: InFlight | None, message_id: str) -> InFlight:
    """The state once no channel is left for ``message_id``."""
    return {mid: entry for mid, entry in (in_flight or {}).items() if mid != message_id}


def due_timeouts(in_flight: InFlight | None, now: dt.datetime,
                 timeouts: Mapping[str, float]) -> list[tuple[str, Channel, dt.datetime]]:
    """(message_id, channel, due) of every message whose current channel's receipt is overdue."""
    due = []
    for message_id, entry in (in_flight or {}).items():
        channel = entry["tried"][-1]
        if channel in timeouts:
            at = dt.datetime.fromtimestamp(entry["at"] / 1000, dt.timezone.utc) + dt.timedelta(seconds=timeouts[channel])
            if at <= now:
                due.append((message_id, Channel(channel), at))
    return due


def on_timeout(in_flight: InFlight | None, message_id: str, channel: Channel) -> Retry | None:
    """Whether a fired timeout still applies (the message is still waiting on that channel)."""
    entry = (in_flight or {}).get(message_id)
    if entry is None or entry["tried"][-1] != Channel(channel).value:
        return None
    return Retry(base64.b64decode(entry["intent"]), tuple(Channel(c) for c in entry["tried"]))
