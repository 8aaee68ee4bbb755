"""Messages on their way: intents, send commands, outcomes, inbound replies."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.types import INT_MAX, LONG_MAX, Channel, Purpose, Record, Timestamp


class MessageIntent(Record):
    message_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    store_id: str
    template: str
    purpose: Purpose
    channels: list[Channel]
    variables: dict[str, str] = {}
    trigger_event_id: str
    trigger_received_at: Timestamp
    created_at: Timestamp
    expires_at: Timestamp | None = None
    message_class: str | None = None
    journey: str | None = None
    variant: str | None = None
    coupon_code: str | None = None
    stock_sku: str | None = None


class SmsSegments(Record):
    encoding: str
    segments: int = Field(ge=1, le=INT_MAX)
    units: int = Field(ge=0, le=INT_MAX)
    cost_micros: int = Field(ge=0, le=LONG_MAX)
    currency: str


class WhatsAppTemplateRef(Record):
    name: str
    language: str
    category: str
    parameters: list[str] = []


class ReplyButton(Record):
    payload: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=20)


class SendCommand(Record):
    message_id: str
    customer_id: str
    store_id: str
    channel: Channel
    to: str
    template: str
    locale: str
    body: str
    subject: str | None = None
    purpose: Purpose
    fallback_channels: list[Channel] = []
    sms: SmsSegments | None = None
    whatsapp_template: WhatsAppTemplateRef | None = None
    cost_micros: int | None = Field(default=None, ge=0, le=LONG_MAX)
    currency: str | None = None
    trigger_event_id: str
    trigger_received_at: Timestamp
    created_at: Timestamp
    expires_at: Timestamp | None = None
    journey: str | None = None
    variant: str | None = None
    coupon_code: str | None = None
    buttons: list[ReplyButton] = []


class OutcomeStatus(StrEnum):
    SUPPRESSED = "suppressed"
    SCHEDULED = "scheduled"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    CLICKED = "clicked"
    CONVERTED = "converted"
    OTHER = "other"


class OutcomeReason(StrEnum):
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    PENDING_CONFIRMATION = "pending_confirmation"
    NO_CONTACT_POINT = "no_contact_point"
    NO_CHANNEL = "no_channel"
    FREQUENCY_CAP = "frequency_cap"
    QUIET_HOURS_EXPIRED = "quiet_hours_expired"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    UNKNOWN_TEMPLATE = "unknown_template"
    RENDER_FAILED = "render_failed"
    PROVIDER_REJECTED = "provider_rejected"
    PROVIDER_FAILED = "provider_failed"
    UNDELIVERED = "undelivered"
    AMBIGUOUS_PROVIDER_CALL = "ambiguous_provider_call"
    RETRIES_EXHAUSTED = "retries_exhausted"
    PAUSED = "paused"
    ERASED = "erased"
    QUIET_HOURS = "quiet_hours"  # why a send was scheduled, not a suppression
    OUT_OF_STOCK = "out_of_stock"  # a back-in-stock message whose SKU sold out again before it went
    HOLDOUT = "holdout"  # the customer is in an experiment's control group: nothing is sent
    NO_RECOMMENDATION = "no_recommendation"  # a recommending step found no product to recommend
    OTHER = "other"


class MessageOutcome(Record):
    outcome_id: str
    message_id: str
    customer_id: str
    store_id: str
    channel: Channel | None = None
    status: OutcomeStatus
    reason: OutcomeReason | None = None
    detail: str | None = None
    template: str | None = None
    purpose: Purpose | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    segments: int | None = None
    cost_micros: int | None = None
    currency: str | None = None
    scheduled_for: Timestamp | None = None
    trigger_event_id: str | None = None
    occurred_at: Timestamp
    journey: str | None = None
    variant: str | None = None
    coupon_code: str | None = None


class CampaignLaunch(Record):
    campaign_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    template: str = Field(min_length=1)
    channels: list[Channel] = Field(min_length=1)
    message_class: str | None = None
    segment_json: str = "{}"
    variables: dict[str, str] = {}
    expires_at: Timestamp | None = None
    launched_at: Timestamp


class Handoff(Record):
    handoff_id: str
    customer_id: str
    store_id: str
    journey: str
    step: str
    context: dict[str, str] = {}
    occurred_at: Timestamp


class InboundMessage(Record):
    inbound_id: str
    customer_id: str
    store_id: str
    channel: Channel
    provider: str
    provider_message_id: str
    text: str | None = None
    button_payload: str | None = None
    in_reply_to: str | None = None
    received_at: Timestamp


class LedgerState(StrEnum):
    ATTEMPTING = "attempting"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"


class SendLedgerEntry(Record):
    message_id: str
    channel: Channel
    state: LedgerState
    provider: str
    provider_message_id: str | None = None
    attempts: int = 1
    error_code: str | None = None
    receipt_status: str | None = None
    consent_position: int | None = None
    journey: str | None = None
    variant: str | None = None
    coupon_code: str | None = None
    customer_id: str | None = None
    store_id: str | None = None
    updated_at: Timestamp


class TimerFired(Record):
    customer_id: str
    message_id: str
    kind: str
    channel: Channel | None = None  # the channel whose receipt is overdue; none for a scheduled send
    due_at: Timestamp
    fired_at: Timestamp
