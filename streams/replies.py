"""What a customer's reply asks for. Pure: no Faust, no clock of its own.

An opt-out word (STOP, הסר, СТОП …) withdraws consent for both purposes on the channel it came
on, at once and with the reply as proof; START / YES gives it back, also with proof; HELP gets the
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
from streams.keywords import DEFAULT, Keyword, KeywordConfig, classify, help_reply


@dataclass(frozen=True)
class ReplyActions:
    consent_changes: list[ConsentChange] = field(default_factory=list)
    intents: list[MessageIntent] = field(default_factory=list)


_STATE = {Keyword.OPT_OUT: ConsentState.OPTED_OUT, Keyword.OPT_IN: ConsentState.OPTED_IN}


def actions_for(reply: InboundMessage, locale: str, config: KeywordConfig = DEFAULT, *,
                awaiting_confirmation: bool = False) -> ReplyActions:
    keyword = classify(reply.text or "", config, awaiting_confirmation=awaiting_confirmation)
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
