"""Running journeys: a customer's journey instances as a plain dict, and what each input does to them.

Pure: no Faust, no I/O, no clock of its own. The state is part of the customer's state
(streams/core/state.py, ``journeys``); the core feeds it four kinds of input: storefront events, message
outcomes, replies, and wake-ups (a wait that is due, fired from the worker's due-time index). Each call
returns the new state and the actions to take: message intents (the core decides them in the same step),
suppressions to report and hand-offs for the support team.
``switchboard simulate`` runs the same functions with a virtual clock.

State::

    {"active": {journey: instance}, "entered": {journey: epoch ms of the last entry}}
    instance = {"id", "journey", "store_id", "trigger_event_id", "entered_at", "at" (step index),
                "wake_at" (ms or None), "wake_on" [..], "vars" {..}, "variant", "sent" {step: message id},
                "status" {message id: best status}, "replies" {step: reply}, "events" [event types],
                "skus" [the trigger event's SKUs: what a recommendation is for]}

A step with ``recommend: true`` takes its ``recommendation`` (name, ``recommendation_sku``,
``recommendation_url``) from the product-affinity table (:mod:`streams.affinity`, through the
context's lookup) at the moment it runs; else from the trigger event's or the step's
``recommendation``; with neither, its message is suppressed ``no_recommendation``, never sent empty.

Ids are deterministic: an instance is ``uuid5(trigger event, journey)`` and a message
``uuid5(trigger event, "journey:step")``, so a replay after a crash yields the same ids and the
gateways' ledgers keep a step from being sent twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from schemas.events import StorefrontEvent
from schemas.messages import InboundMessage, MessageIntent, MessageOutcome, OutcomeReason, OutcomeStatus
from schemas.types import Channel
from streams import affinity, ids
from streams.journeys import coupons, experiments
from streams.journeys.definitions import Condition, Journey, Step
from streams.keywords import normalize

JourneyState = dict
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
MAX_STEPS_PER_RUN = 100  # a journey that loops without a wait is stopped, not spun for ever

# Best status of a message so far: a later, weaker receipt never overrides a stronger one.
_RANK = {OutcomeStatus.SCHEDULED: 1, OutcomeStatus.SUPPRESSED: 2, OutcomeStatus.SENT: 3, OutcomeStatus.AMBIGUOUS: 3,
         OutcomeStatus.FAILED: 4, OutcomeStatus.UNDELIVERED: 4, OutcomeStatus.DELIVERED: 5, OutcomeStatus.READ: 6,
         OutcomeStatus.CLICKED: 7, OutcomeStatus.CONVERTED: 8}
# Outcomes that settle a message: a wait "until: [outcome]" wakes on these. Not on scheduled or sent —
# those come at once, and an SMS that is merely sent has not been delivered yet.
_SETTLED = {OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.CLICKED, OutcomeStatus.CONVERTED,
            OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED, OutcomeStatus.SUPPRESSED}


@dataclass(frozen=True)
class Handoff:
    """A customer asked for a person: the support team's queue gets it."""

    handoff_id: str
    customer_id: str
    store_id: str
    journey: str
    step: str
    context: dict[str, str]


@dataclass(frozen=True)
class Context:
    """What the engine needs besides the state: the definitions, now, the customer's zone, the keys."""

    journeys: Mapping[str, Journey]
    now: dt.datetime
    zone: ZoneInfo = ZoneInfo("UTC")
    coupon_secret: bytes = b"dev-only-coupon-key"
    time_scale: float = 1.0  # waits are multiplied by this (tests and demos shorten them)
    affinity_lookup: affinity.Lookup | None = None  # a SKU of the customer's store -> what was bought with it
    bought: frozenset[str] = frozenset()  # SKUs the customer is known to have bought: never recommended
    product_url: str | None = None  # the store's product page, "{sku}" replaced: a recommendation's link


@dataclass(frozen=True)
class Suppressed:
    """A step's message the engine itself decided not to send (the worker writes its outcome)."""

    intent: MessageIntent
    reason: OutcomeReason
    detail: str


@dataclass
class Result:
    state: JourneyState
    intents: list[MessageIntent] = field(default_factory=list)
    held_out: list[MessageIntent] = field(default_factory=list)  # a holdout arm's sends: an outcome, no message
    suppressed: list[Suppressed] = field(default_factory=list)  # e.g. nothing to recommend: an outcome, no message
    handoffs: list[Handoff] = field(default_factory=list)
    entered: list[str] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)


def _ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(milliseconds=1)


def _copy(state: JourneyState | None) -> JourneyState:
    state = state or {}
    return {"active": {k: {**v} for k, v in state.get("active", {}).items()},
            "entered": dict(state.get("entered", {}))}


def message_id(trigger_event_id: str, journey: str, step: str) -> str:
    return ids.message_id(trigger_event_id, f"{journey}:{step}")


def event_variables(event: StorefrontEvent) -> dict[str, str]:
    """The variables a trigger event gives its journey's templates."""
    found = dict(event.attributes)
    if event.order is not None:
        found |= {"order_id": event.order.order_id, "order_url": event.order.order_url or "",
                  "tracking_url": event.order.tracking_url or event.order.order_url or ""}
        if event.order.carrier:
            found["carrier"] = event.order.carrier
        if event.order.items:
            found["products"] = ", ".join(item.name for item in event.order.items)
    if event.cart is not None:
        found["cart_url"] = event.cart.cart_url
        if event.cart.items:
            found["products"] = ", ".join(item.name for item in event.cart.items)
    if event.sku:
        found["sku"] = event.sku
    return found


def event_skus(event: StorefrontEvent) -> list[str]:
    """The SKUs an event is about: its order's, else its cart's, else its own."""
    items = event.order.items if event.order is not None and event.order.items else \
        event.cart.items if event.cart is not None else []
    skus = list(dict.fromkeys(item.sku for item in items))
    return skus or ([event.sku] if event.sku else [])


# --- inputs --------------------------------------------------------------------------------------

def on_event(state: JourneyState | None, event: StorefrontEvent, received_at: dt.datetime, ctx: Context) -> Result:
    """Exits, wakes and entries this event causes (in that order: an order placed ends a cart journey
    before anything else happens)."""
    result = Result(_copy(state))
    active = result.state["active"]
    kind = str(event.event_type)
    for name in list(active):
        journey = ctx.journeys.get(name)
        if journey is None or kind in journey.exit_on:
            del active[name]
            result.exited.append(name)
            continue
        instance = active[name]
        instance["events"] = [*instance["events"], kind][-50:]
        if kind in instance.get("wake_on", []):
            _resume(instance, journey, ctx, ctx.now, result)
    for name, journey in ctx.journeys.items():
        if name in active or not journey.trigger.matches(kind, event.attributes) or event.customer_id is None:
            continue
        last = result.state["entered"].get(name)
        if last is not None and _ms(ctx.now) - last < journey.reentry_cooldown / dt.timedelta(milliseconds=1):
            continue
        instance = _enter(journey, event, ctx)
        active[name] = instance
        result.state["entered"][name] = _ms(ctx.now)
        result.entered.append(name)
        _run(instance, journey, ctx, received_at, result)
    _drop_finished(result)
    return result


def on_outcome(state: JourneyState | None, outcome: MessageOutcome, ctx: Context) -> Result:
    result = Result(_copy(state))
    for name, instance in result.state["active"].items():
        if outcome.message_id not in instance["sent"].values():
            continue
        status = OutcomeStatus(outcome.status)
        best = instance["status"].get(outcome.message_id)
        if best is None or _RANK.get(status, 0) > _RANK.get(OutcomeStatus(best), 0):
            instance["status"] = {**instance["status"], outcome.message_id: status.value}
        if "outcome" in instance.get("wake_on", []) and status in _SETTLED and name in ctx.journeys:
            _resume(instance, ctx.journeys[name], ctx, ctx.now, result)
    _drop_finished(result)
    return result


def reply_value(inbound: InboundMessage) -> str:
    """A button's payload, else the normalised text (so "5", " 5 " and "５" are one answer)."""
    return normalize(inbound.button_payload or inbound.text or "")


def on_reply(state: JourneyState | None, inbound: InboundMessage, ctx: Context) -> Result:
    """A reply belongs to the last step that sent something in each active journey."""
    result = Result(_copy(state))
    for name, instance in result.state["active"].items():
        journey = ctx.journeys.get(name)
        if journey is None or not instance["sent"]:
            continue
        last_send = max(instance["sent"], key=journey.index)
        instance["replies"] = {**instance["replies"], last_send: reply_value(inbound)}
        if "reply" in instance.get("wake_on", []):
            _resume(instance, journey, ctx, ctx.now, result)
    _drop_finished(result)
    return result


def on_wake(state: JourneyState | None, instance_id: str, ctx: Context) -> Result:
    """A wait that is due (fired by the timer). A stale or repeated wake-up changes nothing."""
    result = Result(_copy(state))
    for name, instance in result.state["active"].items():
        if instance["id"] == instance_id and instance.get("wake_at") is not None \
                and instance["wake_at"] <= _ms(ctx.now) and name in ctx.journeys:
            _resume(instance, ctx.journeys[name], ctx, ctx.now, result)
    _drop_finished(result)
    return result


def due(state: JourneyState | None, now: dt.datetime) -> Iterator[tuple[str, dt.datetime]]:
    """(instance id, wake time) of every wait whose time has come."""
    for instance in (state or {}).get("active", {}).values():
        wake_at = instance.get("wake_at")
        if wake_at is not None and wake_at <= _ms(now):
            yield instance["id"], _EPOCH + dt.timedelta(milliseconds=wake_at)


# --- running steps -------------------------------------------------------------------------------

def _enter(journey: Journey, event: StorefrontEvent, ctx: Context) -> dict:
    assert event.customer_id is not None
    variant = experiments.assign(journey.journey, event.customer_id, journey.variants)
    return {"id": ids.message_id(event.event_id, journey.journey), "journey": journey.journey,
            "customer_id": event.customer_id, "store_id": event.store_id, "trigger_event_id": event.event_id,
            "entered_at": _ms(ctx.now), "at": 0, "wake_at": None, "wake_on": [], "vars": event_variables(event),
            "variant": variant.name if variant else None, "sent": {}, "status": {}, "replies": {}, "events": [],
            "skus": event_skus(event)}


def _resume(instance: dict, journey: Journey, ctx: Context, received_at: dt.datetime, result: Result) -> None:
    """Leave the wait the instance is in and run on."""
    if instance.get("wake_at") is None:
        return
    instance.update(wake_at=None, wake_on=[], at=instance["at"] + 1)
    _run(instance, journey, ctx, received_at, result)


def _run(instance: dict, journey: Journey, ctx: Context, received_at: dt.datetime, result: Result) -> None:
    """Runs steps until a wait, the end, or an exit."""
    for _ in range(MAX_STEPS_PER_RUN):
        if instance["at"] >= len(journey.steps):
            instance["done"] = True
            return
        step = journey.steps[instance["at"]]
        match step.kind:
            case "send":
                recommended = _recommendation(instance, step, ctx) if step.recommend else {}
                intent, holdout = _intent(instance, journey, step, ctx, received_at, recommended or {})
                instance["sent"] = {**instance["sent"], step.id: intent.message_id}
                if recommended is None:  # walks on like a holdout; the outcome says why nothing went
                    result.suppressed.append(Suppressed(intent, OutcomeReason.NO_RECOMMENDATION,
                                                        NOTHING_TO_RECOMMEND))
                else:
                    (result.held_out if holdout else result.intents).append(intent)  # a holdout walks on, unsent
                instance["at"] += 1
            case "wait":
                assert step.wait is not None
                wake = _wake_time(step, ctx)
                if wake is None:  # "at 10:00, same day" reached after 10:00: go on at once
                    instance["at"] += 1
                    continue
                instance.update(wake_at=_ms(wake), wake_on=list(step.wait.until))
                return
            case "branch":
                instance["at"] = _goto(journey, instance["at"], _branch(instance, step))
            case "emit":
                result.handoffs.append(Handoff(
                    handoff_id=message_id(instance["trigger_event_id"], journey.journey, step.id),
                    customer_id=instance["customer_id"], store_id=instance["store_id"], journey=journey.journey,
                    step=step.id, context={f"reply:{k}": v for k, v in instance["replies"].items()}))
                instance["at"] += 1
            case _:  # exit
                instance["done"] = True
                return
    instance["done"] = True  # looped without waiting: stopped (the definition is wrong)


def _goto(journey: Journey, at: int, target: str) -> int:
    return at + 1 if target == "next" else len(journey.steps) if target == "end" else journey.index(target)


def _branch(instance: dict, step: Step) -> str:
    for case in step.branch or []:
        if _holds(instance, case.when):
            return case.goto
    return step.otherwise


def _holds(instance: dict, condition: Condition) -> bool:
    if condition.event is not None:
        return str(condition.event) in instance["events"]
    if condition.outcome is not None:
        sent = instance["sent"].get(condition.outcome.step)
        status = instance["status"].get(sent) if sent else None
        return status is not None and status in {str(s) for s in condition.outcome.status}
    assert condition.reply is not None
    reply = instance["replies"].get(condition.reply.step)
    return reply is not None and reply in {normalize(v) for v in condition.reply.in_}


def _wake_time(step: Step, ctx: Context) -> dt.datetime | None:
    wait = step.wait
    assert wait is not None
    if wait.for_ is not None:
        return ctx.now + wait.for_ * ctx.time_scale
    assert wait.at is not None
    local = ctx.now.astimezone(ctx.zone)
    today = dt.datetime.combine(local.date(), wait.at, tzinfo=ctx.zone)
    if today > local:
        return today.astimezone(dt.timezone.utc)
    if wait.same_day:
        return None
    tomorrow = dt.datetime.combine(local.date() + dt.timedelta(days=1), wait.at, tzinfo=ctx.zone)
    return tomorrow.astimezone(dt.timezone.utc)


NOTHING_TO_RECOMMEND = "nothing was bought together with the trigger's products, and no recommendation was given"
_RECOMMENDED = ("recommendation", "recommendation_sku", "recommendation_url")


def _recommendation(instance: dict, step: Step, ctx: Context) -> dict[str, str] | None:
    """The recommendation variables: the affinity table's best product for the trigger's SKUs; else {} when the
    event or the step gives a recommendation of its own (kept as it is); None when there is none at all."""
    lookup = ctx.affinity_lookup
    found = affinity.recommend(lookup, instance.get("skus", []), ctx.bought) if lookup is not None else None
    if found is not None:
        url = affinity.link(ctx.product_url, found.sku)
        return {"recommendation": found.name, "recommendation_sku": found.sku} | ({"recommendation_url": url}
                                                                                 if url else {})
    given = instance["vars"].get("recommendation") or step.variables.get("recommendation")
    return {} if given else None


def _intent(instance: dict, journey: Journey, step: Step, ctx: Context, received_at: dt.datetime,
            recommended: dict[str, str]) -> tuple[MessageIntent, bool]:
    assert step.send is not None
    variant = next((v for v in journey.variants if v.name == instance["variant"]), None)
    template = variant.templates.get(step.id, step.send) if variant else step.send
    variables = {**step.variables, **instance["vars"]}  # the step's are defaults: the event's own values win
    if recommended:  # the table's product: the event's link (if any) was for another one
        variables = {k: v for k, v in variables.items() if k not in _RECOMMENDED} | recommended
    coupon_code = None
    expires_at = ctx.now + step.expires_after if step.expires_after else None
    if step.coupon is not None:
        issued = coupons.issue(step.coupon, ctx.coupon_secret, instance["customer_id"], journey.journey, step.id,
                               ctx.now, occasion=instance["trigger_event_id"])
        coupon_code = issued.code
        variables |= {"coupon_code": issued.code, "coupon_value": issued.description,
                      "coupon_expires": issued.expires_at.astimezone(ctx.zone).date().isoformat()}
        if issued.min_cart is not None:  # absent when any order will do: the texts then say nothing of it
            variables["coupon_min_cart"] = issued.min_cart
        expires_at = min(expires_at, issued.expires_at) if expires_at else issued.expires_at
    intent = MessageIntent(
        message_id=message_id(instance["trigger_event_id"], journey.journey, step.id),
        customer_id=instance["customer_id"], store_id=instance["store_id"], template=template,
        purpose=journey.purpose, channels=[Channel(c) for c in step.channels], variables=variables,
        trigger_event_id=instance["trigger_event_id"], trigger_received_at=received_at, created_at=ctx.now,
        expires_at=expires_at, message_class=journey.message_class, journey=journey.journey,
        variant=instance["variant"], coupon_code=coupon_code,
        stock_sku=instance["vars"].get("sku") if step.requires_stock else None,
    )
    return intent, bool(variant and variant.holdout)


def _drop_finished(result: Result) -> None:
    for name in [n for n, i in result.state["active"].items() if i.get("done")]:
        del result.state["active"][name]
        result.exited.append(name)

