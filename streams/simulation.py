"""Replaying a file of records through the journeys on a virtual clock: ``switchboard simulate``.

Pure: no Kafka, no Faust, no I/O, no wall clock. The replay drives the worker's own core
(:func:`streams.core.step`, the one decision code) with a virtual clock, and plays the parts around it:

* every input goes to its customer's state through ``core.step``, as the worker applies it: a profile,
  a consent change (pending where the store wants double opt-in, whose request is decided at once), a
  storefront event (journeys, and the messages they send decided by the policy in the same step), a
  reply (the WhatsApp window, keywords: STOP, YES, HELP; then the journeys);
* the gateway: a send is assumed accepted, so a ``sent`` outcome comes back to the core; nothing more
  comes unless the file scripts a receipt. Every outcome goes back through ``core.step`` (a failed or
  undelivered send tries the next channel; a wait ``until: [outcome]`` wakes);
* the product-affinity counter: an order's co-purchases are counted at once, so a cross-sell later in
  the file recommends what the file's customers bought together;
* the due-time index: deferred sends and journey waits fire at their time.

Not modelled: receipt timeouts (a silent channel falls back after 15 minutes in the worker; here a
send without a scripted receipt is simply sent), erasures, and the gateways' own checks.

Input, one JSON object a line (blank lines and lines starting with ``#`` are skipped)::

    {"type": "profile", "at": "2026-11-24T09:00:00Z", ...CustomerProfile}
    {"type": "consent", ...ConsentChange}
    {"type": "event", ...StorefrontEvent}
    {"type": "reply", ...InboundMessage}
    {"type": "receipt", "customer_id": "c1", "journey": "abandoned_cart", "step": "sms",
     "status": "undelivered", "after": "2m"}

``at`` (ISO 8601 with a zone) is when the record arrives; a line without one takes the previous
line's (the first line may give its own ``occurred_at`` / ``updated_at`` / ``received_at`` instead).
Fields the file may leave out: the record's own time (``at``), its id (derived from the line
number), ``store_id`` (the customer's profile's), a consent's ``source`` (``checkout``), a reply's
``provider`` and ``provider_message_id``.

A receipt (``"type": "outcome"`` is the same) names its message by ``message_id``, or by ``journey``
and ``step`` (the customer's latest message of that step); ``status`` is delivered, read, clicked,
converted, undelivered or failed; ``channel`` defaults to the channel the message was last sent on.
With ``at`` it happens then; with ``after`` (``90s``, ``2m``, ``1h``) instead, it is a rule: every
message of that step sent to that customer (on ``channel``, if given) gets this receipt ``after`` its
first send there.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentState, CustomerProfile
from schemas.events import StorefrontEvent
from schemas.messages import InboundMessage, MessageIntent, MessageOutcome, OutcomeStatus
from schemas.types import Channel, Timestamp
from schemas.catalog import PRODUCT_COPURCHASES
from schemas.products import CoPurchase
from streams import affinity, core, ids, policy, publish
from streams.clock import VirtualClock
from streams.journeys import engine
from streams.journeys.definitions import Journey, parse_duration
from streams.stores import StoreDirectory

DEFAULT_HORIZON = dt.timedelta(days=30)  # how long after the last input the replay runs on
MAX_STEPS = 1_000_000  # inputs, wake-ups and due sends in one replay: a guard against a runaway loop
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)
_FOREVER = dt.datetime.max.replace(tzinfo=dt.timezone.utc)

_TYPES = ("profile", "consent", "event", "reply", "receipt")
_OWN_TIME = {"profile": "updated_at", "consent": "occurred_at", "event": "occurred_at", "reply": "received_at"}
_RECORD_ID = {"consent": "change_id", "event": "event_id", "reply": "inbound_id"}
_MODELS: dict[str, type[BaseModel]] = {"profile": CustomerProfile, "consent": ConsentChange,
                                       "event": StorefrontEvent, "reply": InboundMessage}
_TIME = TypeAdapter(Timestamp)


# --- input -----------------------------------------------------------------------------------------

class SimulationInputError(ValueError):
    """Lines of the input that are not valid records, each named by its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Receipt(BaseModel):
    """A delivery receipt the file scripts (what a provider would report)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str = Field(min_length=1)
    status: Literal["delivered", "read", "clicked", "converted", "undelivered", "failed"]
    message_id: str | None = None
    journey: str | None = None
    step: str | None = None
    channel: Channel | None = None
    after: dt.timedelta | None = Field(None, description="a rule: this long after each send of the step")

    _after = field_validator("after", mode="before")(lambda v: None if v is None else parse_duration(v))

    @model_validator(mode="after")
    def _names_a_message(self) -> Receipt:
        if (self.message_id is None) == (self.journey is None or self.step is None):
            raise ValueError("a receipt names its message by message_id, or by journey and step (not both)")
        return self

    def matches(self, customer_id: str, message_id: str, journey: str | None, step: str | None,
                channel: str) -> bool:
        if customer_id != self.customer_id or (self.channel is not None and channel != self.channel):
            return False
        return message_id == self.message_id if self.message_id else (journey, step) == (self.journey, self.step)


InputRecord = CustomerProfile | ConsentChange | StorefrontEvent | InboundMessage | Receipt


@dataclass(frozen=True)
class Input:
    line: int
    at: dt.datetime
    record: InputRecord


def _problems(line: int, kind: str, exc: ValidationError) -> list[str]:
    return [f"line {line}: {kind}: {'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}"
            for e in exc.errors()]


def parse_lines(lines: Iterable[str], journeys: Mapping[str, Journey] | None = None) -> list[Input]:
    """The records of a JSON-lines file; :class:`SimulationInputError` lists every bad line."""
    inputs: list[Input] = []
    problems: list[str] = []
    stores: dict[str, str] = {}  # customer -> store, from the profiles seen so far
    previous: dt.datetime | None = None
    for number, text in enumerate(lines, 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(data, dict):
            problems.append(f"line {number}: a record is a JSON object with a \"type\"")
            continue
        kind = data.pop("type", None)
        kind = "receipt" if kind == "outcome" else kind
        if kind not in _TYPES:
            problems.append(f"line {number}: type {kind!r} is not one of {', '.join(_TYPES)} (or outcome)")
            continue
        raw_at = data.pop("at", None)
        if kind == "receipt" and data.get("after") is not None:
            if raw_at is not None:
                problems.append(f"line {number}: receipt: give at or after, not both")
                continue
            try:
                receipt = Receipt.model_validate(data)
            except ValidationError as exc:
                problems.extend(_problems(number, kind, exc))
                continue
            problems.extend(_unknown_step(number, receipt, journeys))
            inputs.append(Input(number, previous or _EPOCH, receipt))  # a rule: its time is the sends'
            continue
        own = data.get(_OWN_TIME.get(kind, ""))
        source = raw_at if raw_at is not None else (own if previous is None else None)
        if source is None and previous is None:
            problems.append(f"line {number}: no \"at\" (and no earlier line to take it from)")
            continue
        try:
            at = _TIME.validate_python(source) if source is not None else previous
        except ValidationError:
            problems.append(f"line {number}: at: not an ISO 8601 time with a zone: {source!r} "
                            f"(e.g. 2026-11-24T10:00:00Z)")
            continue
        assert at is not None
        if kind == "receipt":
            try:
                record: InputRecord = Receipt.model_validate(data)
            except ValidationError as exc:
                problems.extend(_problems(number, kind, exc))
                continue
            problems.extend(_unknown_step(number, record, journeys))
        else:
            _fill_defaults(kind, data, number, at, stores)
            try:
                record = _MODELS[kind].model_validate(data)  # type: ignore[assignment]
            except ValidationError as exc:
                problems.extend(_problems(number, kind, exc))
                continue
            if isinstance(record, CustomerProfile):
                stores[record.customer_id] = record.store_id
        previous = at
        inputs.append(Input(number, at, record))
    if problems:
        raise SimulationInputError(problems)
    return inputs


def _fill_defaults(kind: str, data: dict[str, Any], line: int, at: dt.datetime, stores: Mapping[str, str]) -> None:
    data.setdefault(_OWN_TIME[kind], at.isoformat())
    if kind in _RECORD_ID:
        data.setdefault(_RECORD_ID[kind], ids.message_id(f"simulate/line/{line}", kind))
    if "store_id" not in data and isinstance(data.get("customer_id"), str) and data["customer_id"] in stores:
        data["store_id"] = stores[data["customer_id"]]
    if kind == "consent":
        data.setdefault("source", "checkout")
    if kind == "reply":
        data.setdefault("provider", "simulated")
        data.setdefault("provider_message_id", f"sim-{data['inbound_id']}")


def _unknown_step(line: int, receipt: Receipt, journeys: Mapping[str, Journey] | None) -> list[str]:
    if journeys is None or receipt.journey is None:
        return []
    journey = journeys.get(receipt.journey)
    if journey is None:
        return [f"line {line}: receipt: journey {receipt.journey!r} is not loaded ({', '.join(sorted(journeys))})"]
    sends = [s.id for s in journey.steps if s.send]
    if receipt.step not in sends:
        return [f"line {line}: receipt: {receipt.journey} has no send step {receipt.step!r} ({', '.join(sends)})"]
    return []


# --- output ----------------------------------------------------------------------------------------

RowKind = Literal["message", "receipt", "journey", "consent"]


@dataclass(frozen=True)
class Row:
    """One thing that happened. ``decision`` is, by kind:

    * message: sent, suppressed (``reason``) or scheduled (``reason``, ``scheduled_for``);
    * receipt: the status scripted, or ignored (no such message was sent by then);
    * journey: entered, exited (``reason``: the event that ended it), completed, or handoff;
    * consent: the state a reply or double opt-in recorded (``reason``: its source).
    """

    at: dt.datetime
    kind: RowKind
    customer_id: str
    decision: str
    journey: str | None = None
    step: str | None = None
    channel: str | None = None  # sent on, or the receipt's
    channels: tuple[str, ...] = ()  # a message's candidate channels (the intent's, before the policy's choice)
    template: str | None = None
    purpose: str | None = None  # a message's, or the consent slot's
    reason: str | None = None
    scheduled_for: dt.datetime | None = None
    coupon_code: str | None = None
    variant: str | None = None
    message_id: str | None = None
    zone: str | None = None  # the customer's zone (the policy's quiet-hours zone)
    note: str | None = None
    body: str | None = None  # what a send would say (JSON output only)

    def as_json(self) -> dict[str, Any]:
        found = asdict(self)
        found["channels"] = list(self.channels)
        for key in ("at", "scheduled_for"):
            if found[key] is not None:
                found[key] = found[key].isoformat().replace("+00:00", "Z")
        return {"type": found.pop("kind"), **found}


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    until: dt.datetime | None = None  # the replay's horizon
    stopped_at: dt.datetime | None = None  # the clock when the replay ended
    pending: dict[str, int] = field(default_factory=dict)  # what was still waiting at the horizon

    def summary(self) -> list[tuple[str, str, int]]:
        """(what, detail, count): messages by decision and reason (sent: by channel), then receipts,
        journeys and consents."""
        order = {"message": 0, "receipt": 1, "journey": 2, "consent": 3}
        counts: Counter[tuple[int, str, str]] = Counter()
        for row in self.rows:
            if row.kind == "message":
                what, detail = row.decision, (row.channel if row.decision == "sent" else row.reason) or ""
            elif row.kind == "receipt":
                what, detail = "receipt", row.decision + (f" ({row.channel})" if row.channel else "")
            elif row.kind == "journey":
                what, detail = f"journey {row.decision}", f"{row.journey}" + (f" ({row.reason})" if row.reason else "")
            else:
                what, detail = f"consent {row.decision}", f"{row.channel} {row.purpose} ({row.reason})"
            counts[(order[row.kind], what, detail)] += 1
        return [(what, detail, n) for (_, what, detail), n in sorted(counts.items())]


# --- the replay ------------------------------------------------------------------------------------

_INPUT, _DUE_SEND, _WAKE = 0, 1, 2  # at the same instant: inputs first, then deferred sends, then wake-ups
_RANK = {core.SCHEDULED_SEND: _DUE_SEND, core.JOURNEY_WAKE: _WAKE}
_KIND = {rank: kind for kind, rank in _RANK.items()}


class _Replay:
    """The worker's core (:func:`streams.core.step`) on a virtual clock, its effects turned into rows. It
    plays the parts around the core too: the gateway (a send is accepted: a ``sent`` outcome comes back),
    the product-affinity counter (an order's co-purchases are counted at once) and the scripted receipts."""

    def __init__(self, journeys: Mapping[str, Journey], stores: StoreDirectory, config: policy.PolicyConfig,
                 coupon_secret: bytes, start: dt.datetime) -> None:
        self.journeys = journeys
        self.clock = VirtualClock(start)
        self.affinity: dict[str, affinity.Affinity] = {}  # by affinity.key(store, SKU), like the global table
        self.ctx = core.Context(clock=self.clock, journeys=journeys, stores=stores, policy=config,
                                coupon_secret=coupon_secret, affinity=self.affinity.get)
        self.states: dict[str, core.CustomerState] = {}
        self.bus: deque[MessageOutcome] = deque()  # outcomes coming back at this instant, in order
        self.queue: list[tuple[dt.datetime, int, int, str, Any]] = []
        self._seq = 0
        self._armed: set[tuple[int, str, str, dt.datetime]] = set()
        self._touched: set[str] = set()
        self.rules: list[tuple[int, Receipt]] = []  # (line, rule): receipts scripted with ``after``
        self._ruled: set[tuple[int, str]] = set()  # (rule's line, message id) already given its receipt
        self.latest: dict[tuple[str, str, str], str] = {}  # (customer, journey, step) -> latest message id
        self.steps: dict[str, tuple[str, str]] = {}  # message id -> (journey, step)
        self.sent_on: dict[str, tuple[str, str, str]] = {}  # message id -> (last channel sent on, store, template)
        self.rows: list[Row] = []

    # -- queue ------------------------------------------------------------------------------------

    def push(self, at: dt.datetime, rank: int, kind: str, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (at, rank, self._seq, kind, payload))

    def arm_timers(self) -> None:
        """Queue the wake-ups and deferred sends of every customer whose state changed (once each). Receipt
        deadlines are not armed: a send without a scripted receipt is taken as delivered."""
        for customer in sorted(self._touched):
            state = self.states.get(customer)
            for timer in state.timers() if state else ():
                mark = (_RANK[timer.kind], customer, timer.ident, timer.due)
                if mark not in self._armed:
                    self._armed.add(mark)
                    self.push(timer.due, mark[0], "timer", mark)
        self._touched.clear()

    def still_due(self, mark: tuple[int, str, str, dt.datetime]) -> bool:
        """A queued timer still stands: its entry or wait was not taken, moved or ended meanwhile."""
        self._armed.discard(mark)
        rank, customer, ident, due = mark
        state = self.states.get(customer)
        return state is not None and any((t.kind, t.ident, t.due) == (_KIND[rank], ident, due) for t in state.timers())

    def pending(self) -> dict[str, int]:
        waits = sum(1 for state in self.states.values() for i in state.journeys.get("active", {}).values()
                    if i.get("wake_at") is not None)
        left = {"scheduled sends": sum(len(s.scheduled) for s in self.states.values()), "journey waits": waits,
                "inputs after the horizon": sum(1 for item in self.queue if item[3] == "input")}
        return {what: n for what, n in left.items() if n}

    # -- the core -----------------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

    def apply(self, customer: str, item: core.Input) -> None:
        done = core.step(self.states.get(customer), item, self.ctx, customer)
        if done.state is None or done.state.is_empty():
            self.states.pop(customer, None)
        else:
            self.states[customer] = done.state
        self._touched.add(customer)
        for effect in done.effects:
            self.on_effect(customer, effect)

    def on_effect(self, customer: str, effect: core.Effect) -> None:
        match effect:
            case core.Send(command=command, intent=intent, note=note):
                self.remember_step(intent)
                self.sent_on[command.message_id] = (str(command.channel), command.store_id, command.template)
                self.row("message", customer, "sent", intent.store_id, intent, channel=str(command.channel),
                         note=note, body=(f"{command.subject}\n\n" if command.subject else "") + command.body)
                self.bus.append(publish.for_command(command, OutcomeStatus.SENT, self.now, provider="simulated"))
                self.apply_rules(customer, intent, str(command.channel))
            case core.Report(outcome=outcome, intent=intent, note=note, decided=decided):
                if decided:
                    self.remember_step(intent)
                scheduled = outcome.status == OutcomeStatus.SCHEDULED
                self.row("message", customer, "scheduled" if scheduled else "suppressed", intent.store_id, intent,
                         reason=str(outcome.reason), scheduled_for=outcome.scheduled_for if scheduled else None,
                         note=note)
            case core.Emit(topic=topic, value=CoPurchase() as record) if topic == PRODUCT_COPURCHASES:
                where = affinity.key(record.store_id, record.sku)  # count_copurchases, without the topic
                self.affinity[where] = affinity.fold(self.affinity.get(where), record)
            case core.JourneyNote(kind=kind, journey=journey, store_id=store_id, step=step, cause=cause):
                self.row("journey", customer, kind, store_id, journey=journey, step=step, reason=cause)
            case core.ConsentNote(change=change, from_reply=from_reply):
                if from_reply or change.state == ConsentState.PENDING:  # the file's own changes are not news
                    self.row("consent", customer, str(change.state), change.store_id, channel=str(change.channel),
                             purpose=str(change.purpose), reason=str(change.source))
            case core.Emit() | core.Erased() | core.Ignored():
                pass  # consent snapshots, the consent ledger, hand-off records, restock requests: not replayed

    # -- rows -----------------------------------------------------------------------------------------

    def step_of(self, intent: MessageIntent) -> str | None:
        journey = self.journeys.get(intent.journey or "")
        if journey is None:
            return None
        return next((s.id for s in journey.steps if s.send and engine.message_id(
            intent.trigger_event_id, journey.journey, s.id) == intent.message_id), None)

    def remember_step(self, intent: MessageIntent) -> None:
        step = self.step_of(intent)
        if intent.journey and step:
            self.latest[(intent.customer_id, intent.journey, step)] = intent.message_id
            self.steps[intent.message_id] = (intent.journey, step)

    def row(self, kind: RowKind, customer: str, decision: str, store_id: str,
            intent: MessageIntent | None = None, **fields: Any) -> Row:
        if intent is not None:
            fields = {"journey": intent.journey, "step": self.step_of(intent), "template": intent.template,
                      "channels": tuple(str(c) for c in intent.channels), "purpose": str(intent.purpose),
                      "coupon_code": intent.coupon_code, "variant": intent.variant,
                      "message_id": intent.message_id, **fields}
        state = self.states.get(customer)
        zone = self.ctx.zone(state.profile if state else None, store_id)
        row = Row(at=self.now, kind=kind, customer_id=customer, decision=decision, zone=zone.key, **fields)
        self.rows.append(row)
        return row

    # -- inputs ---------------------------------------------------------------------------------------

    def on_input(self, item: Input) -> None:
        match item.record:
            case CustomerProfile() as profile:
                self.apply(profile.customer_id, core.ProfileInput(profile, encode(profile)))
            case ConsentChange() as change:
                self.apply(change.customer_id, core.ConsentInput(change, self.now))
            case StorefrontEvent() as event:
                if event.customer_id is not None:  # keyed by SKU: no customer journey reads it
                    self.apply(event.customer_id, core.EventInput(event, self.now))
            case InboundMessage() as inbound:
                self.apply(inbound.customer_id, core.ReplyInput(inbound))
            case Receipt() as receipt:
                self.on_receipt(receipt, item.line)

    def on_receipt(self, receipt: Receipt, line: int, message_id: str | None = None) -> None:
        key = receipt.customer_id
        message_id = message_id or receipt.message_id or self.latest.get((key, receipt.journey or "",
                                                                          receipt.step or ""))
        sent = self.sent_on.get(message_id or "")
        state = self.states.get(key)
        profile = state.profile if state else None
        if message_id is None or sent is None:
            what = receipt.message_id or f"{receipt.journey}/{receipt.step}"
            self.row("receipt", key, "ignored", profile.store_id if profile else "", journey=receipt.journey,
                     step=receipt.step, channel=str(receipt.channel) if receipt.channel else None,
                     message_id=message_id,
                     note=f"line {line}: {receipt.status} for {what}, which was not sent by then")
            return
        channel, store_id, template = sent
        channel = str(receipt.channel or channel)
        outcome = publish.for_receipt(message_id=message_id, customer_id=key, store_id=store_id,
                                      channel=Channel(channel), status=OutcomeStatus(receipt.status),
                                      provider="simulated", provider_message_id=f"sim-{message_id}",
                                      error_code=None, now=self.now)
        journey, step = self.steps.get(message_id, (None, None))
        self.row("receipt", key, receipt.status, store_id, journey=journey, step=step, channel=channel,
                 template=template, reason=outcome.reason, message_id=message_id, note=f"scripted on line {line}")
        self.bus.append(outcome)

    def on_timer(self, mark: tuple[int, str, str, dt.datetime]) -> None:
        rank, customer, ident, _ = mark
        self.apply(customer, core.TimerInput(_KIND[rank], ident))

    def apply_rules(self, key: str, intent: MessageIntent, channel: str) -> None:
        """The scripted receipts (``after``) that this send gets."""
        step = self.step_of(intent)
        for line, rule in self.rules:
            if (line, intent.message_id) in self._ruled or not rule.matches(
                    key, intent.message_id, intent.journey, step, channel):
                continue
            self._ruled.add((line, intent.message_id))
            assert rule.after is not None
            specific = rule.model_copy(update={"channel": Channel(channel), "after": None})
            self.push(self.now + rule.after, _INPUT, "receipt", (specific, intent.message_id, line))

    def drain(self) -> None:
        """The outcomes one input causes at its instant (the gateway's ``sent``, a receipt), in order."""
        while self.bus:
            outcome = self.bus.popleft()
            self.apply(outcome.customer_id, core.OutcomeInput(outcome))
        self.arm_timers()


def simulate(inputs: Iterable[Input], journeys: Mapping[str, Journey], stores: StoreDirectory | None = None, *,
             until: dt.timedelta | dt.datetime | None = None, config: policy.PolicyConfig = policy.PolicyConfig(),
             coupon_secret: bytes = b"dev-only-coupon-key") -> Report:
    """Replays ``inputs`` in time order (file order at the same instant) on a virtual clock, firing the
    journeys' waits and the deferred sends when they fall due, up to ``until`` (a time, or a duration
    after the last input; default 30 days after it) or until nothing is pending."""
    inputs = list(inputs)
    timed = [i for i in inputs if not (isinstance(i.record, Receipt) and i.record.after is not None)]
    rules = [i for i in inputs if isinstance(i.record, Receipt) and i.record.after is not None]
    if not timed:
        return Report()
    last = max(i.at for i in timed)
    horizon = until if isinstance(until, dt.datetime) else last + (until if until is not None else DEFAULT_HORIZON)
    replay = _Replay(journeys, stores or StoreDirectory(), config, coupon_secret, min(i.at for i in timed))
    replay.rules = [(r.line, r.record) for r in rules if isinstance(r.record, Receipt)]
    for item in timed:
        replay.push(item.at, _INPUT, "input", item)
    for _ in range(MAX_STEPS):
        if not replay.queue or replay.queue[0][0] > horizon:
            break
        at, _rank, _seq, kind, payload = heapq.heappop(replay.queue)
        if kind == "timer" and not replay.still_due(payload):
            continue
        replay.clock.advance(max(at - replay.now, dt.timedelta(0)))
        if kind == "input":
            replay.on_input(payload)
        elif kind == "receipt":
            receipt, message_id, line = payload
            replay.on_receipt(receipt, line, message_id)
        else:
            replay.on_timer(payload)
        replay.drain()
    else:
        raise RuntimeError(f"the replay did not settle within {MAX_STEPS} steps")
    return Report(rows=replay.rows, until=horizon, stopped_at=replay.now, pending=replay.pending())
