"""Contact points without a customer: suppressions written by the gateways (compacted ``contacts.suppressions``).

A STOP from a number no profile has is kept here, keyed by a keyed hash of (sender, channel, contact
point), so the number itself is never stored; the value is the reply that proves it. START lifts it
(a ``lifted`` record, which keeps the START as proof in turn).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.types import Channel, Record, Timestamp


class SuppressionState(StrEnum):
    SUPPRESSED = "suppressed"
    LIFTED = "lifted"


class ContactSuppression(Record):
    sender: str = Field(min_length=1)  # our side: the sending number or WhatsApp phone number id the reply went to
    channel: Channel
    state: SuppressionState
    keyword: str  # the reply as the keyword table reads it (normalised: "stop", "הסר", "start")
    provider: str
    provider_message_id: str = Field(min_length=1)
    received_at: Timestamp
