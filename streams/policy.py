"""The one policy function: (intent, customer state, now) -> a send command or a suppression.

Pure: no Faust, no I/O, no clock of its own. Channel choice is the template's channels, ordered by
the customer's preference, kept only where consent for the purpose and a contact point exist; the
first is used and the rest ride along as the fallback chain.

Consent: marketing needs an explicit opt-in on that channel; transactional needs only that the
customer has not opted out of it.

Timing, for marketing (and transactional too where the store says so for quiet hours): a customer who
paused marketing gets none until the pause ends; frequency caps across channels (the store's, plus
its caps for the message's class) either drop a capped message or defer it to when a send fits
again; quiet hours in the customer's zone defer it to the next allowed moment. A deferred message
whose offer would expire first is suppressed instead (``quiet_hours_expired``, ``frequency_cap``):
it is never sent late. Consent is checked before timing, so an opted-out customer is reported as
such, not scheduled; the scheduled message is decided again, from scratch, when its time comes.

WhatsApp: inside the 24-hour customer-service window (the customer wrote to us on WhatsApp within
the last 24 hours) a message goes as free text; outside it only as the template's approved WhatsApp
template, and a template without one cannot use WhatsApp at all — so error 131047 never happens.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never

from schemas.customers import ConsentState, CustomerProfile
from schemas.messages import MessageIntent, OutcomeReason, ReplyButton, SendCommand, SmsSegments, WhatsAppTemplateRef
from schemas.types import Channel, Purpose
from streams import caps, compliance, pricing, quiet_hours, sms
from streams.consent import ConsentMap, state_of
from streams.stores import StoreConfig
from streams.errors import TemplateError, UnknownTemplateError
from streams.templates import buttons, has_whatsapp_template, render, whatsapp_template


@dataclass(frozen=True)
class Send:
    command: SendCommand


@dataclass(frozen=True)
class Suppress:
    reason: OutcomeReason
    detail: str


@dataclass(frozen=True)
class Defer:
    """Decide again at ``until``: the message waits in the scheduler."""

    until: dt.datetime
    reason: OutcomeReason  # quiet_hours or frequency_cap
    detail: str


Decision = Send | Suppress | Defer

CapStates = Mapping[str, caps.CapState]  # slot ("all", "class:<name>") -> marketing sends recorded


WHATSAPP_WINDOW = dt.timedelta(hours=24)

# Last inbound message per channel, epoch milliseconds (the worker's conversations table).
LastInbound = Mapping[str, int]


def in_whatsapp_window(last_inbound: LastInbound | None, now: dt.datetime) -> bool:
    at = (last_inbound or {}).get(Channel.WHATSAPP.value)
    return at is not None and now - dt.datetime.fromtimestamp(at / 1000, dt.timezone.utc) < WHATSAPP_WINDOW


@dataclass(frozen=True)
class PolicyConfig:
    default_country: str = "US"
    smart_encoding: bool = False  # the store lets look-alikes (’ “ – …) become GSM-7 to save segments
    sms_prices: Mapping[str, tuple[int, str]] | None = None


def contact_point(profile: CustomerProfile, channel: Channel) -> str | None:
    match Channel(channel):
        case Channel.SMS:
            return profile.phone
        case Channel.WHATSAPP:
            return profile.whatsapp or profile.phone
        case Channel.EMAIL:
            return profile.email


def _consent_blocks(state: ConsentState, purpose: Purpose) -> OutcomeReason | None:
    if state == ConsentState.OPTED_OUT:
        return OutcomeReason.OPTED_OUT
    if purpose == Purpose.MARKETING and state != ConsentState.OPTED_IN:
        return OutcomeReason.PENDING_CONFIRMATION if state == ConsentState.PENDING else OutcomeReason.NO_CONSENT
    return None


def candidate_channels(intent: MessageIntent, profile: CustomerProfile) -> list[Channel]:
    """The template's channels, ordered by the customer's preference (unlisted ones after, in template order)."""
    allowed = list(dict.fromkeys(Channel(c) for c in intent.channels))  # dict keeps order, drops repeats
    preferred = list(dict.fromkeys(Channel(c) for c in profile.channel_preferences if Channel(c) in allowed))
    return preferred + [c for c in allowed if c not in preferred]


# When no channel is left, the most telling reason wins.
_REASON_RANK = [OutcomeReason.OPTED_OUT, OutcomeReason.PENDING_CONFIRMATION, OutcomeReason.NO_CONSENT,
                OutcomeReason.NO_CONTACT_POINT, OutcomeReason.NO_CHANNEL]


def eligible_channels(
    intent: MessageIntent, profile: CustomerProfile, consents: ConsentMap | None,
    whatsapp_open: bool = False,
) -> tuple[list[Channel], list[OutcomeReason]]:
    eligible, blocked = [], []
    for channel in candidate_channels(intent, profile):
        reason = _consent_blocks(state_of(consents, channel, intent.purpose), Purpose(intent.purpose))
        if reason is None and contact_point(profile, channel) is None:
            reason = OutcomeReason.NO_CONTACT_POINT
        if (reason is None and channel == Channel.WHATSAPP and not whatsapp_open
                and not has_whatsapp_template(intent.template)):
            reason = OutcomeReason.NO_CHANNEL  # outside the window and no approved template
        if reason is None:
            eligible.append(channel)
        else:
            blocked.append(reason)
    return eligible, blocked


def decide(
    intent: MessageIntent,
    profile: CustomerProfile | None,
    consents: ConsentMap | None,
    now: dt.datetime,
    config: PolicyConfig = PolicyConfig(),
    last_inbound: LastInbound | None = None,
    store: StoreConfig = StoreConfig(),
    sent: CapStates | None = None,
    opt_out_notice: bool = True,
) -> Decision:
    """Send (on which channel, with what text), defer, or suppress ``intent``. A marketing SMS is made
    compliant here (streams.compliance): the store named, and the opt-out line when ``opt_out_notice``."""
    if intent.expires_at is not None and intent.expires_at <= now:
        return Suppress(OutcomeReason.EXPIRED, "the offer expired before it could be sent")
    if profile is None:
        return Suppress(OutcomeReason.NO_CONTACT_POINT, "no profile known for this customer")
    whatsapp_open = in_whatsapp_window(last_inbound, now)
    eligible, blocked = eligible_channels(intent, profile, consents, whatsapp_open)
    if not eligible:
        reason = min(blocked, key=_REASON_RANK.index) if blocked else OutcomeReason.NO_CHANNEL
        tried = ",".join(c.value for c in candidate_channels(intent, profile)) or "none"
        return Suppress(reason, f"no channel left of {tried}")
    paused = profile.marketing_paused_until
    if Purpose(intent.purpose) == Purpose.MARKETING and paused is not None and paused > now:
        return Suppress(OutcomeReason.PAUSED, "the customer paused marketing messages")  # after consent reasons
    variables = {"first_name": profile.first_name or "", **intent.variables}
    if eligible[0] == Channel.WHATSAPP and not whatsapp_open and len(eligible) > 1:
        try:  # outside the window WhatsApp needs its approved template filled; else the next channel goes
            whatsapp_template(intent.template, profile.locale, variables)
        except TemplateError:
            eligible = eligible[1:]
    channel = eligible[0]
    try:
        rendered = render(intent.template, profile.locale, channel, variables)
        templated = channel == Channel.WHATSAPP and not whatsapp_open
        whatsapp = whatsapp_template(intent.template, profile.locale, variables) if templated else None
    except UnknownTemplateError as exc:
        return Suppress(OutcomeReason.UNKNOWN_TEMPLATE, str(exc))
    except TemplateError as exc:
        return Suppress(OutcomeReason.RENDER_FAILED, str(exc))
    to = contact_point(profile, channel)
    assert to is not None  # eligible_channels checked it
    timing = _timing(intent, profile, store, sent, now)
    if timing is not None:
        return timing
    body = rendered.body
    if channel == Channel.SMS and Purpose(intent.purpose) == Purpose.MARKETING:  # before segmenting and pricing
        body = compliance.marketing_sms(body, compliance.sender_name(store, intent.store_id), rendered.locale,
                                        opt_out_notice)
    if channel == Channel.SMS and config.smart_encoding and sms.encoding_of(sms.smart_encode(body)) == "GSM-7":
        body = sms.smart_encode(body)
    sms_info = _sms_info(body, to, config) if channel == Channel.SMS else None
    cost, currency = _cost(channel, sms_info, whatsapp, to)
    return Send(
        SendCommand(
            message_id=intent.message_id,
            customer_id=intent.customer_id,
            store_id=intent.store_id,
            channel=channel,
            to=to,
            template=intent.template,
            locale=rendered.locale,
            body=body,
            subject=rendered.subject,
            purpose=intent.purpose,
            fallback_channels=eligible[1:],
            sms=sms_info,
            whatsapp_template=whatsapp,
            buttons=[ReplyButton(payload=payload, title=title) for payload, title
                     in (buttons(intent.template, rendered.locale) if channel == Channel.WHATSAPP and not whatsapp
                         else ())],
            cost_micros=cost,
            currency=currency,
            trigger_event_id=intent.trigger_event_id,
            trigger_received_at=intent.trigger_received_at,
            created_at=now,
            expires_at=intent.expires_at,
            journey=intent.journey,
            variant=intent.variant,
            coupon_code=intent.coupon_code,
        )
    )


def _timing(intent: MessageIntent, profile: CustomerProfile, store: StoreConfig, sent: CapStates | None,
            now: dt.datetime) -> Defer | Suppress | None:
    """None when the message may go now; else when it may, or why it never will."""
    marketing = Purpose(intent.purpose) == Purpose.MARKETING
    capped_until, drop = now, False
    if marketing:
        for slot, frequency in store.frequency_caps.policies(intent.message_class).items():
            verdict = caps.check((sent or {}).get(slot), now, frequency)
            if isinstance(verdict, caps.Capped):
                capped_until = max(capped_until, verdict.until)
                drop = drop or frequency.on_capped == "drop"
    if drop:
        return Suppress(OutcomeReason.FREQUENCY_CAP, "frequency cap reached; the store drops capped messages")
    until = capped_until
    rules = store.quiet_hours
    if rules.enabled and (marketing or rules.transactional):
        phone = profile.phone or profile.whatsapp
        zone = quiet_hours.resolve_zone(profile.time_zone, phone, store.time_zone)
        region = (sms.country_of(phone) if phone else None) or store.country
        until = quiet_hours.next_allowed(capped_until, zone, rules.rule(region))
    if until == now:
        return None
    reason = OutcomeReason.FREQUENCY_CAP if capped_until > now else OutcomeReason.QUIET_HOURS
    if intent.expires_at is not None and until >= intent.expires_at:
        expired = OutcomeReason.FREQUENCY_CAP if reason == OutcomeReason.FREQUENCY_CAP else OutcomeReason.QUIET_HOURS_EXPIRED
        return Suppress(expired, f"could go at {until.isoformat()}, after the offer expires")
    why = "frequency cap reached" if reason == OutcomeReason.FREQUENCY_CAP else "quiet hours"
    return Defer(until, reason, f"{why}: scheduled for {until.isoformat()}")


def record_sent(sent: CapStates | None, intent: MessageIntent, store: StoreConfig, now: dt.datetime) -> dict:
    """The cap state after sending ``intent`` (unchanged for transactional, which is never capped)."""
    updated = dict(sent or {})
    if Purpose(intent.purpose) == Purpose.MARKETING:
        for slot, frequency in store.frequency_caps.policies(intent.message_class).items():
            updated[slot] = caps.record(updated.get(slot), now, frequency)
    return updated


def _cost(channel: Channel, sms_info: SmsSegments | None, whatsapp: WhatsAppTemplateRef | None,
          to: str) -> tuple[int | None, str | None]:
    match channel:
        case Channel.SMS:
            assert sms_info is not None
            return sms_info.cost_micros, sms_info.currency
        case Channel.WHATSAPP:
            return pricing.whatsapp_cost(sms.country_of(to), whatsapp.category if whatsapp else None)
        case Channel.EMAIL:
            return None, None  # priced by the mail provider's plan, not per message
        case _ as unreachable:
            assert_never(unreachable)


def _sms_info(body: str, to: str, config: PolicyConfig) -> SmsSegments:
    info = sms.segment(body)
    country = sms.country_of(to) or config.default_country
    prices = config.sms_prices if config.sms_prices is not None else sms.DEFAULT_PRICES
    cost, currency = sms.estimate_cost(info, country, prices)
    return SmsSegments(encoding=info.encoding, segments=info.segments, units=info.units, cost_micros=cost,
                       currency=currency)
