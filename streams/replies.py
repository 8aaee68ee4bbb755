"""What a customer's reply asks for. Pure: no Faust, no clock of its own.

An opt-out word (STOP, הסר, СТОП …) withdraws consent for both purposes on the channel it came
on, at once and with the reply as proof; START / UNSTOP gives it back, also with proof, and so does a
bare YES — but only for what was withdrawn on that channel (a YES answering a journey's question is
not a new marketing opt-in); HELP gets the
store's help text on the same channel. A YES while a double opt-in is pending on that channel
confirms the marketing subscription (source ``double_opt_in``). Anything else is just a reply
(journeys will read it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schemas.customers import ConsentChange, ConsentEvidence, ConsentSource, ConsentState
from schemas.messages import InboundMessage, MessageIntent
from schemas.types import Channel, Purpose
from streams import ids
from streams.consent import ConsentMap, state_of
from streams.keywords import DEFAULT, Keyword, KeywordConfig, classify, help_reply


@dataclass(frozen=True)
class ReplyActions:
    consent_changes: list[ConsentChange] = field(default_factory=list)
    intents: list[MessageIntent] = field(default_factory=list)


_STATE = {Keyword.OPT_OUT: ConsentState.OPTED_OUT, Keyword.OPT_IN: ConsentState.OPTED_IN}


def actions_for(reply: InboundMessage, locale: str, config: KeywordConfig = DEFAULT, *,
                awaiting_confirmation: bool = False, current: ConsentMap | None = None) -> ReplyActions:
    text = reply.text or ""
    keyword = classify(text, config, awaiting_confirmation=awaiting_confirmation)
    is_yes = classify(text, config, awaiting_confirmation=True) == Keyword.CONFIRM
    if keyword == Keyword.OPT_IN and is_yes:
        # A bare YES re-subscribes only what was withdrawn: a "yes" to a journey's question ("talk to an
        # agent?") must not grant marketing consent nobody asked for. START and UNSTOP are explicit.
        withdrawn = [p for p in Purpose if state_of(current, reply.channel, p) == ConsentState.OPTED_OUT]
        return ReplyActions(consent_changes=[_change(reply, purpose, ConsentState.OPTED_IN, ConsentSource.KEYWORD,
                                                     "keyword reply: yes after an opt-out") for purpose in withdrawn])
    if keyword in _STATE:
        return ReplyActions(consent_changes=[_change(reply, purpose, _STATE[keyword], ConsentSource.KEYWORD,
                                                     f"keyword reply: {keyword.value}") for purpose in Purpose])
    if keyword == Keyword.CONFIRM:
        return ReplyActions(consent_changes=[_change(reply, Purpose.MARKETING, ConsentState.OPTED_IN,
                                                     ConsentSource.DOUBLE_OPT_IN, "double opt-in confirmed by reply")])
    if keyword == Keyword.HELP:
        return ReplyActions(intents=[MessageIntent(
            message_id=ids.message_id(reply.inbound_id, "help_reply"), customer_id=reply.customer_id,
            store_id=reply.store_id, template="help_reply", purpose=Purpose.TRANSACTIONAL,
            channels=[Channel(reply.channel)], variables={"help_text": help_reply(config, locale)},
            trigger_event_id=reply.inbound_id, trigger_received_at=reply.received_at, created_at=reply.received_at,
        )])
    return ReplyActions()


def _change(reply: InboundMessage, purpose: Purpose, state: ConsentState, source: ConsentSource,
            disclosure: str) -> ConsentChange:
    return ConsentChange(
        change_id=ids.outcome_id(reply.inbound_id, f"consent/{purpose.value}"),
        customer_id=reply.customer_id, store_id=reply.store_id, channel=reply.channel, purpose=purpose,
        state=state, source=source, occurred_at=reply.received_at,
        evidence=ConsentEvidence(inbound_message_id=reply.provider_message_id, disclosure_text=disclosure),
    )
