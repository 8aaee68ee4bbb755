"""Journeys as data: a trigger, steps, exit conditions, a re-entry cooldown. Pure; pydantic models.

One YAML document per journey (``deploy/journeys/*.yaml``, loaded by :mod:`streams.journeys.loader`)::

    journey: abandoned_cart
    purpose: marketing               # the message class the policy applies (consent, caps, quiet hours)
    message_class: cart_reminder     # for per-class frequency caps
    trigger: {event: cart_abandoned}
    exit_on: [order_placed]          # leave at once when one of these happens
    reentry_cooldown: 24h            # a new trigger within this time of the last entry is ignored
    steps:
      - {id: pause, wait: 1h}
      - {id: sms, send: cart_reminder, channels: [sms]}
      - {id: settle, wait: {for: 4h, until: [outcome]}}
      - id: check
        branch:
          - {when: {outcome: {step: sms, status: [delivered, read, clicked]}}, goto: end}
        otherwise: email
      - {id: email, send: cart_reminder, channels: [email]}

Steps run in order; ``goto`` names a step id, ``next`` or ``end``. Kinds:

* ``send``: a template (``streams.templates``) on ``channels`` (in the customer's preference order),
  with ``variables`` as defaults for those taken from the trigger event (the event's own values win),
  an optional ``coupon`` and an optional ``expires_after``. ``recommend: true`` fills ``recommendation``
  from the product-affinity table when the step runs (see :mod:`streams.journeys.engine`). A coupon
  (``{percent_off: 10 | amount_off_minor: 500, valid_for: 31d, min_cart_minor: 5000, prefix: SB}``)
  gives the template ``coupon_code``, ``coupon_value`` ("10%", "5.00"), ``coupon_expires`` (the
  customer's local date) and, for a minimum order, ``coupon_min_cart`` ("50.00"); the texts follow an
  amount with the ``currency`` variable when there is one.
* ``wait``: a duration (``90s``, ``4h``, ``3d``), or ``{at: "10:00"}`` (the next 10:00 in the
  customer's zone; at once if the step is reached on the day after 10:00 and ``same_day`` is set),
  or ``{for: 24h, until: [reply, outcome, <event type>]}`` — wake early when one of those comes (an
  outcome that settles a message: delivered, read, clicked, converted, undelivered, failed, suppressed).
* ``branch``: the first ``when`` that holds picks its ``goto``; else ``otherwise`` (default
  ``next``). Conditions: ``{event: order_placed}`` (happened since entry), ``{outcome: {step,
  status: [...]}}`` (the best status of that step's message), ``{reply: {step, in: [...]}}`` (the
  customer's last reply since that step — its text or button payload, normalised).
* ``emit: handoff``: publishes a hand-off for the support team (``journeys.handoffs``).
* ``exit``: ends the journey.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import EventType
from schemas.messages import OutcomeStatus
from schemas.types import Channel, Purpose

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: object) -> dt.timedelta:
    """``90s``, ``15m``, ``4h``, ``60d``, ``2w`` (or a number of seconds) as a timedelta."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 4h, 3d, 2w)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return dt.timedelta(seconds=seconds)


Duration = Annotated[dt.timedelta, Field(description="e.g. 90s, 15m, 4h, 3d")]
Goto = str  # a step id, "next" or "end"
WakeOn = str  # "reply", "outcome" or an event type


class _Strict(BaseModel):
    # coerce_numbers_to_str: YAML reads `in: [4, 5]` or `where: {tier: 1}` as numbers; they are texts here.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Trigger(_Strict):
    event: EventType
    where: dict[str, str] = Field({}, description="Event attributes that must equal these values.")

    def matches(self, event_type: str, attributes: dict[str, str]) -> bool:
        return event_type == self.event and all(attributes.get(k) == v for k, v in self.where.items())


class Coupon(_Strict):
    percent_off: int | None = Field(None, ge=1, le=100)
    amount_off_minor: int | None = Field(None, ge=1)
    valid_for: Duration
    min_cart_minor: int = Field(0, ge=0)
    prefix: str = Field("SB", pattern=r"^[A-Z0-9]{1,8}$")

    _duration = field_validator("valid_for", mode="before")(parse_duration)

    @model_validator(mode="after")
    def _one_discount(self) -> Coupon:
        if (self.percent_off is None) == (self.amount_off_minor is None):
            raise ValueError("a coupon has exactly one of percent_off and amount_off_minor")
        return self


class OutcomeIs(_Strict):
    step: str
    status: list[OutcomeStatus] = Field(min_length=1)


class ReplyIn(_Strict):
    step: str
    in_: list[str] = Field(alias="in", min_length=1)


class Condition(_Strict):
    event: EventType | None = None
    outcome: OutcomeIs | None = None
    reply: ReplyIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Condition:
        if sum(x is not None for x in (self.event, self.outcome, self.reply)) != 1:
            raise ValueError("a condition is exactly one of event, outcome, reply")
        return self


class Case(_Strict):
    when: Condition
    goto: Goto


class WaitFor(_Strict):
    for_: Duration | None = Field(None, alias="for")
    at: dt.time | None = None
    same_day: bool = Field(False, description="with at: reached after that time on the day, go at once")
    until: list[WakeOn] = []

    _duration = field_validator("for_", mode="before")(lambda v: None if v is None else parse_duration(v))

    @field_validator("at", mode="before")
    @classmethod
    def _sexagesimal(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted 10:00 as the base-60 integer 600: minutes after midnight."""
        return dt.time(value // 60, value % 60) if isinstance(value, int) and 0 <= value < 1440 else value

    @field_validator("until")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in ("reply", "outcome") and item not in {e.value for e in EventType}:
                raise ValueError(f"until: {item!r} is not reply, outcome or an event type")
        return value

    @model_validator(mode="after")
    def _one_time(self) -> WaitFor:
        if (self.for_ is None) == (self.at is None):
            raise ValueError("a wait has exactly one of for (a duration) and at (a local time)")
        return self


class Step(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    send: str | None = None
    channels: list[Channel] = []
    variables: dict[str, str] = {}
    coupon: Coupon | None = None
    expires_after: Duration | None = None
    requires_stock: bool = Field(False, description="send only while the event's SKU is in stock, checked at send time")
    recommend: bool = Field(False, description="recommendation = what others bought with the event's products, looked "
                                               "up when the step runs; none at all: suppressed no_recommendation")
    wait: WaitFor | None = None
    branch: list[Case] | None = None
    otherwise: Goto = "next"
    emit: Literal["handoff"] | None = None
    exit: bool = False

    _expiry = field_validator("expires_after", mode="before")(
        lambda v: None if v is None else parse_duration(v))

    @field_validator("wait", mode="before")
    @classmethod
    def _short_wait(cls, value: object) -> object:
        return {"for": value} if isinstance(value, str | int | float) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k, v in (("send", self.send), ("wait", self.wait), ("branch", self.branch),
                                ("emit", self.emit)) if v is not None] + (["exit"] if self.exit else [])
        if len(kinds) != 1:
            raise ValueError(f"step {self.id!r} must be exactly one of send, wait, branch, emit, exit "
                             f"(has {', '.join(kinds) or 'none'})")
        if self.send is not None and not self.channels:
            raise ValueError(f"step {self.id!r} sends but lists no channels")
        if self.recommend and self.send is None:
            raise ValueError(f"step {self.id!r}: recommend is for a send step")
        return self

    @property
    def kind(self) -> str:
        for kind in ("send", "wait", "branch", "emit"):
            if getattr(self, kind) is not None:
                return kind
        return "exit"


class Variant(_Strict):
    """An A/B arm: a share of the customers entering, and the template its sends use instead."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    weight: float = Field(gt=0)
    templates: dict[str, str] = Field({}, description="step id -> template used by this arm")
    holdout: bool = Field(False, description="this arm receives nothing (the control group)")


class Journey(_Strict):
    journey: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    purpose: Purpose
    message_class: str | None = None
    trigger: Trigger
    exit_on: list[EventType] = []
    reentry_cooldown: Duration = dt.timedelta(0)
    variants: list[Variant] = []
    steps: list[Step] = Field(min_length=1)

    _cooldown = field_validator("reentry_cooldown", mode="before")(parse_duration)

    @model_validator(mode="after")
    def _targets_exist(self) -> Journey:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"step ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        known = set(ids) | {"next", "end"}
        for step in self.steps:
            targets = [c.goto for c in step.branch or []] + ([step.otherwise] if step.branch else [])
            for target in targets:
                if target not in known:
                    raise ValueError(f"step {step.id!r}: goto {target!r} is not a step id, next or end")
            for case in step.branch or []:
                ref = case.when.outcome.step if case.when.outcome else case.when.reply.step if case.when.reply else None
                if ref is not None and ref not in ids:
                    raise ValueError(f"step {step.id!r}: condition refers to unknown step {ref!r}")
        for variant in self.variants:
            unknown = set(variant.templates) - {s.id for s in self.steps if s.send}
            if unknown:
                raise ValueError(f"variant {variant.name!r}: no send step {sorted(unknown)}")
        return self

    def index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)

    def templates(self) -> set[str]:
        return {s.send for s in self.steps if s.send} | {t for v in self.variants for t in v.templates.values()}
