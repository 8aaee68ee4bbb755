"""What a customer can choose on the preference page, and what a submitted form changes. Pure.

A form becomes :class:`Choices`; the choices, set against the customer's current profile and consent,
become the records to publish: one ``ConsentChange`` per channel whose marketing consent flips (with
the proof: address, browser, the exact disclosure shown and its version), and a new full
``CustomerProfile`` when the preferred channel, the language or the marketing pause changed. A form that
changes nothing publishes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from connectors.errors import PreferenceFormError
from schemas.customers import ConsentChange, ConsentEvidence, ConsentSource, ConsentState, CustomerProfile
from schemas.types import Channel, Purpose
from streams import ids

LANGUAGES = ("en", "he", "nl", "pl", "be")
PAUSE_DAYS = (7, 30, 90)
KEEP_PAUSE = "keep"
USER_AGENT_LIMIT = 512  # evidence, not a place to store whatever a client sends


def language_of(locale: str) -> str:
    """The page language for a profile locale (``pl-PL`` -> ``pl``); English when we have no texts for it."""
    base = locale.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else "en"


def contact_points(profile: CustomerProfile) -> dict[Channel, str]:
    """The channels the customer can be reached on, with the address used (WhatsApp falls back to the phone)."""
    points = {Channel.SMS: profile.phone, Channel.WHATSAPP: profile.whatsapp or profile.phone,
              Channel.EMAIL: profile.email}
    return {channel: contact for channel, contact in points.items() if contact}


def preferred_channel(profile: CustomerProfile) -> Channel | None:
    reachable = contact_points(profile)
    return next((Channel(c) for c in profile.channel_preferences if Channel(c) in reachable), None)


def paused_until(profile: CustomerProfile, now: dt.datetime) -> dt.datetime | None:
    """The end of a marketing pause still running at ``now``."""
    until = profile.marketing_paused_until
    return until if until is not None and until > now else None


def marketing_on(consent: Mapping[str, ConsentState], channel: Channel) -> bool:
    return consent.get(f"{channel.value}:{Purpose.MARKETING.value}") == ConsentState.OPTED_IN


@dataclass(frozen=True)
class Choices:
    marketing: frozenset[Channel]  # the channels ticked for marketing
    preferred: Channel | None  # None: leave the order as it is
    language: str
    pause_days: int | None  # None: leave the pause as it is; 0: no pause


@dataclass(frozen=True)
class Proof:
    ip: str | None
    user_agent: str | None
    disclosure_text: str
    disclosure_version: str


@dataclass(frozen=True)
class Changes:
    consent: list[ConsentChange]
    profile: CustomerProfile | None  # None: unchanged

    def __bool__(self) -> bool:
        return bool(self.consent) or self.profile is not None


def parse_form(form: Mapping[str, str], profile: CustomerProfile) -> Choices:
    """The form's choices; :class:`PreferenceFormError` for any value the page does not offer."""
    reachable = contact_points(profile)
    preferred = form.get("preferred", "")
    if preferred and preferred not in {c.value for c in reachable}:
        raise PreferenceFormError("preferred channel not offered")
    language = form.get("language", "")
    if language not in LANGUAGES:
        raise PreferenceFormError("language not offered")
    pause = form.get("pause", KEEP_PAUSE)
    if pause != KEEP_PAUSE and pause not in {"0", *map(str, PAUSE_DAYS)}:
        raise PreferenceFormError("pause not offered")
    return Choices(marketing=frozenset(c for c in reachable if f"marketing_{c.value}" in form),
                   preferred=Channel(preferred) if preferred else None, language=language,
                   pause_days=None if pause == KEEP_PAUSE else int(pause))


def changes(profile: CustomerProfile, consent: Mapping[str, ConsentState], choices: Choices, proof: Proof,
            now: dt.datetime) -> Changes:
    """The records that make the customer's state what they chose, stamped ``now``."""
    evidence = ConsentEvidence(ip=proof.ip, user_agent=(proof.user_agent or "")[:USER_AGENT_LIMIT] or None,
                               disclosure_text=proof.disclosure_text, disclosure_version=proof.disclosure_version)
    submission = f"preference_centre/{profile.customer_id}/{now.isoformat(timespec='milliseconds')}"
    consent_changes = [
        ConsentChange(change_id=str(uuid.uuid5(ids.NAMESPACE, f"consent/{submission}/{channel.value}/marketing")),
                      customer_id=profile.customer_id, store_id=profile.store_id, channel=channel,
                      purpose=Purpose.MARKETING, state=ConsentState.OPTED_IN if wanted else ConsentState.OPTED_OUT,
                      source=ConsentSource.PREFERENCE_CENTRE, occurred_at=now, evidence=evidence)
        for channel in contact_points(profile)
        if (wanted := channel in choices.marketing) != marketing_on(consent, channel)
    ]
    return Changes(consent_changes, _new_profile(profile, choices, now))


def _new_profile(profile: CustomerProfile, choices: Choices, now: dt.datetime) -> CustomerProfile | None:
    order = [Channel(c) for c in profile.channel_preferences]
    if choices.preferred is not None:
        order = [choices.preferred, *(c for c in order if c != choices.preferred)]
    locale = profile.locale if choices.language == language_of(profile.locale) else choices.language
    pause = profile.marketing_paused_until
    if choices.pause_days == 0 and paused_until(profile, now) is not None:
        pause = None
    elif choices.pause_days:
        pause = now + dt.timedelta(days=choices.pause_days)
    if (order, locale, pause) == ([Channel(c) for c in profile.channel_preferences], profile.locale,
                                  profile.marketing_paused_until):
        return None
    return CustomerProfile.model_validate({**profile.model_dump(), "channel_preferences": order, "locale": locale,
                                           "marketing_paused_until": pause, "updated_at": now})
