"""The decisions: ``step(state, input, context) -> Step(state', effects)``, one function per kind of input.

Pure: no Faust, no I/O, no clock of its own (``context.clock`` is read once per step). The worker and
``switchboard simulate`` both call :func:`step`; neither has a copy of what happens here.

A message a step makes itself (a journey's send, a HELP answer, a double opt-in's confirmation request, a
campaign's broadcast) is decided by the policy in the same step: nothing is published to be read back.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import deque
from dataclasses import dataclass, field

from schemas.catalog import (
    CONSENT_STATE,
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    JOURNEY_HANDOFFS,
    PRODUCT_COPURCHASES,
    STOCK_UPDATES,
)
from schemas.codec import codec_for, encode
from schemas.customers import ConsentChange, ConsentSnapshot, ConsentState
from schemas.events import EventType
from schemas.messages import Handoff, InboundMessage, MessageIntent, MessageOutcome, OutcomeReason
from schemas.types import Channel, Purpose
from streams import (
    affinity,
    campaigns,
    compliance,
    consent,
    double_opt_in,
    erasure,
    fallback,
    policy,
    publish,
    replies,
    scheduler,
)
from streams.core.context import Context
from streams.core.effects import ConsentNote, Effect, Emit, Erased, Ignored, JourneyNote, Report, Send
from streams.core.inputs import (
    CampaignInput,
    ConsentInput,
    ErasureInput,
    EventInput,
    Input,
    IntentInput,
    OutcomeInput,
    ProfileInput,
    ReplyInput,
    TimerInput,
)
from streams.core.state import JOURNEY_WAKE, RECEIPT_TIMEOUT, REPLIES_KEPT, SCHEDULED_SEND, CustomerState
from streams.journeys import engine

ERASED_DETAIL = "the customer's data was erased on request"
HOLDOUT_DETAIL = "in the experiment's holdout group"


@dataclass
class Step:
    """A step's result: the new state (None: forget the customer) and what to do."""

    state: CustomerState | None
    effects: list[Effect] = field(default_factory=list)


class _Run:
    """One step in progress: the state as it evolves, the effects in order, the step's instant."""

    def __init__(self, state: CustomerState, ctx: Context) -> None:
        # A working copy: its parts are replaced (the pure modules return new dicts), never mutated in place,
        # so the caller's state stays as it was.
        self.state, self.ctx, self.now = copy.copy(state), ctx, ctx.clock.now()
        self.erased = ctx.erased(state.customer_id)
        self.effects: list[Effect] = []
        self.own_outcomes: deque[MessageOutcome] = deque()  # what this step reported, for the journeys to read

    def report(self, outcome: MessageOutcome, intent: MessageIntent, note: str | None, decided: bool = True) -> None:
        self.effects.append(Report(outcome, intent, note, decided))
        self.own_outcomes.append(outcome)

    def done(self) -> Step:
        """The step's end: the journeys read what it reported (a wait ``until: [outcome]`` wakes on a
        suppression), as they read a gateway's outcomes; what that decides is reported in turn."""
        while self.own_outcomes and self.state is not None:
            outcome = self.own_outcomes.popleft()
            if self.active_journeys():
                self.apply_journeys(outcome.store_id, engine.on_outcome(self.state.journeys, outcome,
                                                                        self.journey_context(outcome.store_id)))
        return Step(self.state, self.effects)

    # -- the policy ---------------------------------------------------------------------------------

    def decide(self, intent: MessageIntent, intent_bytes: bytes | None = None,
               note: str | None = None) -> policy.Decision:
        """Decides ``intent`` for this customer; a send or a deferral is recorded and reported here, a
        suppression is returned for the caller to report (a fallback with no channel left reports none)."""
        ctx, state, now = self.ctx, self.state, self.now
        if self.erased:
            return policy.Suppress(OutcomeReason.ERASED, ERASED_DETAIL)
        units = ctx.stock(f"sku:{intent.stock_sku}") if intent.stock_sku is not None else None
        if units is not None and units <= 0:
            return policy.Suppress(OutcomeReason.OUT_OF_STOCK, "sold out again before the message could go")
        store = ctx.stores(intent.store_id)
        notice = compliance.notice_due(store, state.notices.get(Channel.SMS.value), now)
        decision = policy.decide(intent, state.profile, state.consents, now, ctx.policy, state.conversations,
                                 store, state.sent, notice)
        match decision:
            case policy.Send(command=command):
                raw = intent_bytes if intent_bytes is not None else encode(intent)
                state.in_flight = fallback.remember(state.in_flight, command.message_id, raw, command.channel, now)
                if command.purpose == Purpose.MARKETING:
                    state.sent = policy.record_sent(state.sent, intent, store, now)
                    if command.channel == Channel.SMS and notice:
                        state.notices = {**state.notices, Channel.SMS.value: compliance.epoch_ms(now)}
                self.effects.append(Send(command, intent, note))
            case policy.Defer(until=until, reason=reason, detail=detail):
                raw = intent_bytes if intent_bytes is not None else encode(intent)
                state.scheduled = scheduler.add(state.scheduled, intent.message_id, raw, until, reason)
                self.report(publish.scheduled(intent, until, reason, detail, now), intent, note)
        return decision

    def decide_or_report(self, intent: MessageIntent, intent_bytes: bytes | None = None,
                         note: str | None = None) -> policy.Decision:
        decision = self.decide(intent, intent_bytes, note)
        if isinstance(decision, policy.Suppress):
            self.suppressed(intent, decision.reason, decision.detail, f"{note}: {decision.detail}" if note else None)
        return decision

    def suppressed(self, intent: MessageIntent, reason: OutcomeReason, detail: str, note: str | None = None,
                   decided: bool = True) -> None:
        self.report(publish.suppressed(intent, reason, detail, self.now), intent, note or detail, decided)

    def fall_back(self, message_id: str, retry: fallback.Retry) -> None:
        intent = retry.narrowed(codec_for(MessageIntent).decode(retry.intent_bytes))
        failed = ", ".join(c.value for c in retry.tried)
        if not isinstance(self.decide(intent, retry.intent_bytes, note=f"fallback after {failed}"), policy.Send):
            # no channel left: the failure (or the silence) is the message's last word
            self.state.in_flight = fallback.finish(self.state.in_flight, message_id)

    # -- journeys -----------------------------------------------------------------------------------

    def journey_context(self, store_id: str) -> engine.Context:
        return self.ctx.journey_context(self.state.profile, self.state.behaviour, store_id, self.now)

    def apply_journeys(self, store_id: str, result: engine.Result, cause: str | None = None) -> None:
        """The journey state after ``result``, and its messages decided at once."""
        active_before = set(self.state.journeys.get("active", {}))
        keep = result.state if result.state.get("active") or result.state.get("entered") else {}
        self.state.journeys = keep
        completed = []
        for name in result.exited:  # an exit_on event ends a journey before anything else happens
            journey = self.ctx.journeys.get(name)
            if cause and name in active_before and journey is not None and cause in journey.exit_on:
                self.effects.append(JourneyNote("exited", name, store_id, cause=cause))
            else:
                completed.append(name)
        self.effects.extend(JourneyNote("entered", name, store_id) for name in result.entered)
        for intent in result.held_out:  # the experiment's control group: an outcome says so, nothing is sent
            self.suppressed(intent, OutcomeReason.HOLDOUT, HOLDOUT_DETAIL, decided=False)
        for skipped in result.suppressed:  # e.g. a cross-sell with nothing to recommend
            self.suppressed(skipped.intent, skipped.reason, skipped.detail, decided=False)
        for intent in result.intents:
            self.decide_or_report(intent)
        for handoff in result.handoffs:
            self.effects.append(Emit(JOURNEY_HANDOFFS, self.state.customer_id.encode(), Handoff(
                handoff_id=handoff.handoff_id, customer_id=handoff.customer_id, store_id=handoff.store_id,
                journey=handoff.journey, step=handoff.step, context=handoff.context, occurred_at=self.now)))
            self.effects.append(JourneyNote("handoff", handoff.journey, store_id, step=handoff.step))
        self.effects.extend(JourneyNote("completed", name, store_id) for name in completed)  # after its sends

    def active_journeys(self) -> bool:
        return bool(self.state.journeys.get("active"))

    # -- consent ------------------------------------------------------------------------------------

    def record_consent(self, change: ConsentChange, received_at: dt.datetime, from_reply: bool) -> None:
        before = self.state.consents
        confirm = double_opt_in.needs_confirmation(change, before, self.ctx.stores(change.store_id))
        recorded = double_opt_in.as_pending(change) if confirm else change
        after = consent.fold(before, recorded)
        if after == before:
            return  # a replay, or older than what is recorded
        self.state.consents = after
        self.effects.append(ConsentNote(recorded, from_reply))
        # gateways re-check this right before calling a provider: opt-outs win the race
        self.effects.append(Emit(CONSENT_STATE, change.customer_id.encode(),
                                 consent.snapshot(change.customer_id, change.store_id, after, self.now)))
        if confirm:
            self.decide_or_report(double_opt_in.confirmation(change, received_at, self.now))


# --- one function per kind of input ----------------------------------------------------------------------

def on_profile(run: _Run, item: ProfileInput) -> None:
    if item.profile is None:  # a tombstone (an erasure writes one): the profile is gone
        run.state = run.state.with_profile(None, None)
    elif run.erased:  # re-imported after an erasure: keep nothing
        run.effects.append(Ignored("profile_ignored"))
    else:
        run.state = run.state.with_profile(item.profile, item.avro)


def on_consent(run: _Run, item: ConsentInput) -> None:
    if run.erased:
        run.effects.append(Ignored("consent_ignored"))
        return
    run.record_consent(item.change, item.received_at, from_reply=False)


def on_event(run: _Run, item: EventInput) -> None:
    event = item.event
    result = engine.on_event(run.state.journeys, event, item.received_at, run.journey_context(event.store_id))
    if run.erased:  # report what would have gone, keep no state about the customer
        run.effects.append(Ignored("event_ignored"))
        for intent in result.intents:
            run.suppressed(intent, OutcomeReason.ERASED, ERASED_DETAIL)
        return
    if event.event_type == EventType.BACK_IN_STOCK_REQUESTED and event.sku:  # re-keyed by SKU to meet the restock
        run.effects.append(Emit(STOCK_UPDATES, f"sku:{event.sku}".encode(), event))
    for record in affinity.copurchases(event):  # an order placed: to the affinity table, once per SKU
        run.effects.append(Emit(PRODUCT_COPURCHASES, affinity.key(record.store_id, record.sku).encode(), record))
    summary = campaigns.remember(run.state.behaviour, event)
    if summary is not None:
        run.state.behaviour = summary
    run.apply_journeys(event.store_id, result, cause=str(event.event_type))


def on_reply(run: _Run, item: ReplyInput) -> None:
    inbound = item.inbound
    if run.erased:
        run.effects.append(Ignored("inbound_ignored"))
        return
    if inbound.inbound_id in run.state.replies:  # a redelivery or a replay: its STOP or START was applied once
        run.effects.append(Ignored("reply_replayed"))
        return
    run.state.replies = remember_reply(run.state.replies, inbound)
    channel = str(inbound.channel)
    seen = dict(run.state.conversations)
    seen[channel] = max(seen.get(channel, 0), int(inbound.received_at.timestamp() * 1000))
    run.state.conversations = seen
    profile = run.state.profile
    pending = consent.state_of(run.state.consents, inbound.channel, Purpose.MARKETING)
    actions = replies.actions_for(inbound, profile.locale if profile else "en",
                                  run.ctx.stores(inbound.store_id).keywords.config,
                                  awaiting_confirmation=pending == ConsentState.PENDING,
                                  current=run.state.consents)
    for change in actions.consent_changes:  # STOP acts at once, with the reply as its proof
        run.effects.append(Emit(CUSTOMER_CONSENTS, change.customer_id.encode(), change))  # the consent ledger
        run.record_consent(change, inbound.received_at, from_reply=True)
    for intent in actions.intents:  # HELP
        run.decide_or_report(intent)
    if run.active_journeys():
        run.apply_journeys(inbound.store_id, engine.on_reply(run.state.journeys, inbound,
                                                             run.journey_context(inbound.store_id)))


def remember_reply(replies: dict, inbound: InboundMessage) -> dict:
    """``replies`` with ``inbound`` added, keeping the newest :data:`REPLIES_KEPT` by time received."""
    kept = {**replies, inbound.inbound_id: int(inbound.received_at.timestamp() * 1000)}
    if len(kept) > REPLIES_KEPT:
        kept = dict(sorted(kept.items(), key=lambda item: item[1])[-REPLIES_KEPT:])
    return kept


def on_outcome(run: _Run, item: OutcomeInput) -> None:
    outcome = item.outcome
    in_flight, retry = fallback.on_outcome(run.state.in_flight, outcome)
    if in_flight != run.state.in_flight:
        run.state.in_flight = in_flight
    if retry is not None:
        run.fall_back(outcome.message_id, retry)
    if run.active_journeys():
        run.apply_journeys(outcome.store_id, engine.on_outcome(run.state.journeys, outcome,
                                                               run.journey_context(outcome.store_id)))


def on_intent(run: _Run, item: IntentInput) -> None:
    run.decide_or_report(item.intent, item.intent_bytes)


def on_timer(run: _Run, item: TimerInput) -> None:
    if item.kind == SCHEDULED_SEND:
        remaining, intent_bytes = scheduler.take(run.state.scheduled, item.ident)
        if intent_bytes is None:
            return  # already taken: a repeated fire
        run.state.scheduled = remaining
        # decided again: it may be deferred again (a cap, a new zone)
        run.decide_or_report(codec_for(MessageIntent).decode(intent_bytes), intent_bytes,
                             note="deferred send, decided again")
    elif item.kind == RECEIPT_TIMEOUT and item.channel is not None:
        retry = fallback.on_timeout(run.state.in_flight, item.ident, item.channel)
        if retry is not None:
            run.fall_back(item.ident, retry)
    elif item.kind == JOURNEY_WAKE and run.active_journeys():
        store_id = next(iter(run.state.journeys["active"].values()))["store_id"]
        run.apply_journeys(store_id, engine.on_wake(run.state.journeys, item.ident, run.journey_context(store_id)))


def on_campaign(run: _Run, item: CampaignInput) -> None:
    """The launch's message to this customer, if the segment selects them (no outcome for those it does not
    select: they were never the campaign's audience)."""
    launch, profile = item.launch, run.state.profile
    if profile is None or profile.store_id != launch.store_id:
        return
    if not campaigns.segment_of(launch).selects(profile, run.state.behaviour, run.now):
        return
    run.decide_or_report(campaigns.intent_for(launch, run.state.customer_id, run.now))


def on_erasure(run: _Run, item: ErasureInput) -> None:
    request, key = item.request, run.state.customer_id.encode()
    run.effects.append(Erased(erasure.suppression_key(run.ctx.erasure_secret, request.customer_id)))
    # Gateways stop what is already queued for the customer; the compacted profile is deleted too.
    everything = {f"{c.value}:{p.value}": ConsentState.OPTED_OUT for c in Channel for p in Purpose}
    run.effects.append(Emit(CONSENT_STATE, key, ConsentSnapshot(
        customer_id=request.customer_id, store_id=request.store_id, slots=everything, updated_at=run.now)))
    run.effects.append(Emit(CUSTOMER_PROFILES, key, None))
    run.state = None  # type: ignore[assignment] - forgotten: every part of the state goes


_HANDLERS = {ProfileInput: on_profile, ConsentInput: on_consent, EventInput: on_event, ReplyInput: on_reply,
             OutcomeInput: on_outcome, IntentInput: on_intent, TimerInput: on_timer, CampaignInput: on_campaign,
             ErasureInput: on_erasure}


def step(state: CustomerState | None, item: Input, ctx: Context, customer_id: str | None = None) -> Step:
    """Applies one input to one customer's state (``None``: nothing known yet, ``customer_id`` names them)."""
    if state is None:
        if customer_id is None:
            raise ValueError("a step on no state needs the customer's id")
        state = CustomerState(customer_id)
    run = _Run(state, ctx)
    _HANDLERS[type(item)](run, item)
    return run.done()
