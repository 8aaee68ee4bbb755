"""Customer state: profiles (compacted) and the append-only consent ledger."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.types import Channel, Purpose, Record, Timestamp


class CustomerProfile(Record):
    customer_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    first_name: str | None = None
    locale: str = "en"
    time_zone: str | None = None
    city: str | None = None  # as the shop has it ("Kraków"); campaign segments compare it without case or accents
    phone: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    whatsapp: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    channel_preferences: list[Channel] = []
    marketing_paused_until: Timestamp | None = None
    updated_at: Timestamp


class ConsentState(StrEnum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class ConsentSource(StrEnum):
    CHECKOUT = "checkout"
    KEYWORD = "keyword"
    PREFERENCE_CENTRE = "preference_centre"
    IMPORT = "import"
    API = "api"
    DOUBLE_OPT_IN = "double_opt_in"
    PROVIDER = "provider"
    OTHER = "other"


class ConsentEvidence(Record):
    inbound_message_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    disclosure_text: str | None = None
    disclosure_version: str | None = None


class ConsentChange(Record):
    change_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    channel: Channel
    purpose: Purpose
    state: ConsentState
    source: ConsentSource
    occurred_at: Timestamp
    evidence: ConsentEvidence = ConsentEvidence()


class ConsentSnapshot(Record):
    customer_id: str
    store_id: str
    slots: dict[str, ConsentState] = {}
    updated_at: Timestamp

    def opted_out(self, channel: Channel | str, purpose: Purpose | str) -> bool:
        slot = f"{Channel(channel).value}:{Purpose(purpose).value}"
        return self.slots.get(slot) == ConsentState.OPTED_OUT


class ErasureRequest(Record):
    """A GDPR erasure: forget the customer's data, keep only a hashed suppression entry."""

    request_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    requested_at: Timestamp
