"""Shared machinery of the fault-injection scenarios (``make chaos``, ``pytest -m chaos``).

Everything here observes the pipeline the way an operator or a data team can: committed offsets of the
worker's consumer group, the records on the topics (read from the beginning up to the end offsets taken
at the time of reading, by an independent consumer), the provider sandboxes' own record of calls, and
the processes' ``/metrics``. Nothing reaches into a process's memory.

The size of the first scenario is ``SWITCHBOARD_CHAOS_EVENTS`` (``make chaos`` sets 100,000; plain
pytest uses :data:`DEFAULT_EVENTS`).
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from connectors.producer import EventProducer
from connectors.simulator import Storefront, generate
from schemas.catalog import (
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    CUSTOMER_PROFILES,
    MESSAGE_INTENTS,
    MESSAGE_OUTCOMES,
    MESSAGE_TIMERS,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
)
from schemas.codec import codec_for, encode
from schemas.events import StorefrontEvent
from schemas.messages import MessageOutcome, OutcomeStatus, SendCommand
from schemas.types import Channel, Purpose, Record
from streams import triggers
from streams.settings import Settings
from streams.topics import app_id, group_lag
from tests.support import ROOT, Child, env_of, free_port_pair, make_settings, wait_until

DEFAULT_EVENTS = 20_000
EVENTS_PER_CUSTOMER = 3.4  # what connectors.simulator.generate makes on average (orders, shipments, carts)
NEVER = 7 * 24 * 3600.0  # receipt timeouts: no fallback of its own while a scenario runs without receipts

REPORTS: list[str] = []  # every scenario's table, printed again in pytest's terminal summary


def chaos_events() -> int:
    return int(os.environ.get("SWITCHBOARD_CHAOS_EVENTS", DEFAULT_EVENTS))


def chaos_settings(bootstrap: str, directory: Path, partitions: int = 3) -> Settings:
    """A scenario's settings: tests/support.make_settings (own prefix and ports, quiet hours and caps off, a
    6 s session timeout), and receipt timeouts far away, so no fallback starts while no gateway runs."""
    settings = make_settings(bootstrap, directory)
    settings.kafka.partitions = partitions
    settings.worker.receipt_timeouts = {"sms": NEVER, "whatsapp": NEVER}
    return settings


class Proc(Child):
    """A ``switchboard`` subcommand as a child process (tests/support.Child), with extra environment."""

    def __init__(self, args: list[str], settings: Settings, log: Path, extra_env: dict[str, str] | None = None):
        self.log = log
        self._file = open(log, "ab")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen([sys.executable, "-m", "connectors.cli", *args], cwd=ROOT,
                                        env={**os.environ, **env_of(settings), **(extra_env or {})},
                                        stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL, the crash a process cannot clean up after."""
        self.stop(signal.SIGKILL)


def start_worker(settings: Settings, log_dir: Path, label: str) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    return Proc(["worker", "--loglevel", "warn"], settings, log_dir / f"worker-{label}.log")


# ----------------------------------------------------------------------------------------------- input


@dataclass
class Shop:
    """A simulated storefront cut to exactly ``events`` storefront events."""

    store: Storefront
    events: list[StorefrontEvent]

    @classmethod
    def generate(cls, events: int, seed: int, now: dt.datetime | None = None) -> Shop:
        customers = math.ceil(events / EVENTS_PER_CUSTOMER) + 50
        store = generate(customers, seed, now or dt.datetime.now(dt.timezone.utc), malformed_rate=0.0)
        while len(store.events) < events:  # an unlucky seed: a few more customers
            customers = math.ceil(customers * 1.05)
            store = generate(customers, seed, now or dt.datetime.now(dt.timezone.utc), malformed_rate=0.0)
        return cls(store, store.events[:events])

    @property
    def state(self) -> list[Record]:
        return [*self.store.profiles, *self.store.consents, *self.store.erasures]  # erasures last, as the demo

    def expected_ids(self) -> set[str]:
        return oracle_ids(self.events)


def oracle_ids(events: list[StorefrontEvent]) -> set[str]:
    """``streams.triggers.intents_for`` of every event: the message ids they must lead to.

    That is the stateless view (a customer with no journey yet); the worker runs each customer's journeys
    with their state. The two agree when every journey an event starts either sends at once and ends, or
    waits longer than a scenario runs (true of the deployed journeys and the simulator's event types).
    Checked here, so a change in the journeys fails loudly instead of showing up as "lost" messages."""
    stateless = expected_ids(events)
    stateful = stateful_ids(events)
    assert stateless == stateful, (
        f"the journeys' immediate sends depend on customer state: {len(stateless - stateful)} ids only "
        f"without it, {len(stateful - stateless)} only with it; the chaos oracle needs updating")
    return stateless


def expected_ids(events: Iterable[StorefrontEvent]) -> set[str]:
    """Every message id the events must lead to (ids are deterministic: the trigger event and the step)."""
    now = dt.datetime.now(dt.timezone.utc)
    return {intent.message_id for event in events for intent in triggers.intents_for(event, now, now)}


def stateful_ids(events: Iterable[StorefrontEvent]) -> set[str]:
    """The message ids the journeys' engine starts at once, each customer's events folded in order."""
    from streams.journeys import engine

    now = dt.datetime.now(dt.timezone.utc)
    context = engine.Context(journeys=triggers.default_journeys(), now=now)
    states: dict[str, dict | None] = {}
    ids: set[str] = set()
    for event in events:
        if event.customer_id is None:
            continue
        result = engine.on_event(states.get(event.customer_id), event, now, context)
        states[event.customer_id] = result.state
        ids |= {intent.message_id for intent in result.intents}
        ids |= {intent.message_id for intent in result.held_out}
    return ids


def produce_records(settings: Settings, records: Iterable[Record]) -> int:
    """Through the project's own producer library (validated, Avro, keyed by customer)."""
    count = 0
    with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix,
                       batch_size=256 * 1024, linger_ms=20) as producer:
        for count, record in enumerate(records, 1):
            producer.send(record)
        producer.flush()
    return count


class Feeder:
    """Produces records in a background thread at ``rate`` per second (the storefront keeps selling while a
    fault happens), through the project's producer library, with delivery errors counted, not hidden."""

    def __init__(self, settings: Settings, records: list[Record], rate: float) -> None:
        import threading

        self.settings, self.records, self.rate = settings, records, rate
        self.sent = 0
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="chaos-feeder", daemon=True)

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        try:
            with EventProducer(self.settings.kafka.bootstrap_servers, self.settings.kafka.topic_prefix,
                               delivery_timeout_ms=600_000, request_timeout_ms=30_000) as producer:
                for sent, record in enumerate(self.records, 1):
                    producer.send(record).add_errback(self.errors.append)
                    self.sent = sent
                    if (ahead := started + sent / self.rate - time.monotonic()) > 0:
                        time.sleep(ahead)  # pacing the storefront
                producer.flush()
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.errors.append(exc)

    def join(self, timeout: float = 900.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the feeder did not finish"
        assert not self.errors, f"the storefront's producer failed: {self.errors[:3]}"


def produce_raw(settings: Settings, topic: str, records: Iterable[tuple[bytes, bytes]],
                partition: int | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","), acks="all",
                             linger_ms=20, batch_size=256 * 1024)
    try:
        for key, value in records:
            producer.send(TopicNames(settings.kafka.topic_prefix)(topic), key=key, value=value, partition=partition)
        producer.flush()
    finally:
        producer.close()


def state_topics(settings: Settings) -> list[str]:
    names = TopicNames(settings.kafka.topic_prefix)
    return [names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS), names(CUSTOMER_ERASURES)]


def routed_topics(settings: Settings) -> list[str]:
    """What the routing agent reads."""
    names = TopicNames(settings.kafka.topic_prefix)
    return [names(MESSAGE_INTENTS), names(MESSAGE_OUTCOMES), names(MESSAGE_TIMERS), names(CUSTOMER_ERASURES)]


# ----------------------------------------------------------------------------------------------- observing


def committed(settings: Settings, topic: str) -> dict[int, int]:
    """The worker group's committed offset per partition of ``topic`` (0 where it never committed)."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers.split(","))
    try:
        try:
            offsets = admin.list_group_offsets(app_id(settings)).get(app_id(settings), {})
        except KafkaError as exc:
            if not exc.retriable:
                raise
            offsets = {}
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}
    finally:
        admin.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","))
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def progress(settings: Settings, topic: str, total: int) -> float:
    """Share of ``total`` records of ``topic`` the worker group has committed."""
    return sum(committed(settings, topic).values()) / total


def wait_for_progress(settings: Settings, topic: str, total: int, share: float, child: Child,
                      above: float = -1.0, timeout: float = 1800.0) -> float:
    """Until the group has committed ``share`` of ``total`` and more than ``above`` (a restarted worker's
    own progress); returns the share it had committed."""
    reached = 0.0

    def far_enough() -> bool:
        nonlocal reached
        reached = progress(settings, topic, total)
        return reached >= share and reached > above

    wait_until(far_enough, timeout, f"worker at {share:.0%} of {topic}", child)
    return reached


def wait_drained(settings: Settings, topics: list[str], timeout: float, *children: Child) -> None:
    """Until the worker group has committed every record of ``topics``, one topic after the other (a stage's
    output is complete once its input is committed: the worker flushes its producer before committing)."""
    for topic in topics:
        def done(topic: str = topic) -> bool:
            for child in children:
                assert child.alive(), f"a process died:\n{child.output()}"
            return group_lag(settings, app_id(settings), [topic]) == 0

        try:
            wait_until(done, timeout, f"worker drained {topic}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{diagnosis(settings, topic, children)}") from None


def diagnosis(settings: Settings, topic: str, children: tuple[Child, ...]) -> str:
    """What a stuck wait shows an operator: committed against end offsets per partition, and for each
    process a py-spy dump of its threads (where its loop is waiting) and the tail of its log."""
    ends, done = end_offsets(settings, topic), committed(settings, topic)
    lines = [f"{topic} partition {p}: committed {done.get(p, 0)} of {end}" for p, end in sorted(ends.items())]
    for child in children:
        try:
            dump = subprocess.run([str(Path(sys.executable).with_name("py-spy")), "dump", "--pid",
                                   str(child.process.pid)], capture_output=True, text=True, timeout=60)
            lines.append(f"py-spy dump of {child.process.pid}:\n{dump.stdout[-6000:]}{dump.stderr[-1000:]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"py-spy dump of {child.process.pid} failed: {exc}")
        lines.append(f"log of {child.process.pid}:\n{child.output()}")
    return "\n".join(lines)


def read_topics(bootstrap: str, topics: list[str]) -> list[ConsumerRecord]:
    """Every record of ``topics`` from the beginning up to their end offsets as of now (an independent
    consumer, no group), in partition order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = {tp: end for tp, end in consumer.end_offsets(partitions).items() if end > 0}
        if not ends:
            return []
        consumer.assign(list(ends))
        consumer.seek_to_beginning(*ends)
        records: list[ConsumerRecord] = []
        remaining = set(ends)
        deadline = time.monotonic() + 300
        while remaining:
            assert time.monotonic() < deadline, f"could not read {topics} to their end offsets"
            for tp, batch in consumer.poll(timeout_ms=500, max_records=50_000).items():
                records.extend(r for r in batch if r.offset < ends[tp])
            remaining = {tp for tp in remaining if consumer.position(tp) < ends[tp]}
        return records
    finally:
        consumer.close()


def command_topics(settings: Settings) -> list[str]:
    names = TopicNames(settings.kafka.topic_prefix)
    return [names(commands_topic(c, p)) for c in Channel for p in Purpose]


@dataclass
class Decisions:
    """What the worker decided, read back from the topics: commands on every lane, and outcomes."""

    commands: list[SendCommand] = field(default_factory=list)
    outcomes: list[MessageOutcome] = field(default_factory=list)

    @classmethod
    def read(cls, settings: Settings) -> Decisions:
        names = TopicNames(settings.kafka.topic_prefix)
        records = read_topics(settings.kafka.bootstrap_servers, [*command_topics(settings), names(MESSAGE_OUTCOMES)])
        decisions = cls()
        for r in records:
            if r.topic == names(MESSAGE_OUTCOMES):
                decisions.outcomes.append(codec_for(MessageOutcome).decode(r.value))
            else:
                decisions.commands.append(codec_for(SendCommand).decode(r.value))
        return decisions

    def commanded(self) -> Counter:
        """message id -> command records (a record beyond the first is a duplicate on the topics)."""
        return Counter(c.message_id for c in self.commands)

    def with_status(self, *statuses: OutcomeStatus) -> Counter:
        """message id -> outcome records with one of ``statuses``."""
        return Counter(o.message_id for o in self.outcomes if o.status in statuses)

    def by_worker(self, *statuses: OutcomeStatus) -> Counter:
        """message id -> the worker's own outcome records with one of ``statuses`` (a gateway's name a channel)."""
        return Counter(o.message_id for o in self.outcomes if o.status in statuses and o.channel is None)

    def decided(self) -> set[str]:
        """Ids with a decision: a command, or a worker's suppression or schedule."""
        return set(self.commanded()) | set(self.by_worker(OutcomeStatus.SUPPRESSED, OutcomeStatus.SCHEDULED))

    def signature(self) -> set[tuple[str, str, str]]:
        """(message id, what, channel or reason) of every decision: comparable across runs."""
        sig = {(c.message_id, "command", str(c.channel)) for c in self.commands}
        sig |= {(o.message_id, str(o.status), str(o.reason)) for o in self.outcomes
                if o.status in (OutcomeStatus.SUPPRESSED, OutcomeStatus.SCHEDULED) and o.channel is None}
        return sig

    def decision_records(self) -> Counter:
        """message id -> decision records (commands, worker suppressions and schedules)."""
        ids = Counter(c.message_id for c in self.commands)
        ids.update(o.message_id for o in self.outcomes
                   if o.status in (OutcomeStatus.SUPPRESSED, OutcomeStatus.SCHEDULED) and o.channel is None)
        return ids


def metric(url: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The sum of a Prometheus counter's samples whose labels include ``labels``."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in (labels or {}).items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ----------------------------------------------------------------------------------------------- reporting


def report(title: str, rows: list[tuple[str, object]], seconds: float | None = None) -> str:
    """Prints a scenario's counts as a table (and keeps it for pytest's terminal summary)."""
    from rich.console import Console
    from rich.table import Table

    heading = title + (f" — {seconds:.0f} s" if seconds is not None else "")
    table = Table(title=heading, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in rows:
        table.add_row(what, f"{count:,}" if isinstance(count, int) else str(count))
    buffer = io.StringIO()
    Console(file=buffer, width=110, force_terminal=False, color_system=None).print(table)
    text = buffer.getvalue()
    print("\n" + text)
    REPORTS.append(text)
    return text


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def by_partition(records: Iterable[ConsumerRecord]) -> dict[int, list[ConsumerRecord]]:
    parts: dict[int, list[ConsumerRecord]] = defaultdict(list)
    for r in records:
        parts[r.partition].append(r)
    return parts


def intents_of(record_value: bytes) -> list[str]:
    """The message ids one storefront event's bytes lead to (none for a malformed record)."""
    event = codec_for(StorefrontEvent).decode(record_value)
    return sorted(expected_ids([event]))


def encoded(records: Iterable[Record]) -> list[tuple[bytes, bytes]]:
    return [(r.customer_id.encode(), encode(r)) for r in records]  # type: ignore[attr-defined]


def lost_coordinates(settings: Settings, lost: set[str]) -> dict[int, list[int]]:
    """partition -> offsets of the storefront events whose message ids are in ``lost`` (evidence)."""
    where: dict[int, list[int]] = defaultdict(list)
    topic = TopicNames(settings.kafka.topic_prefix)(STOREFRONT_EVENTS)
    for r in read_topics(settings.kafka.bootstrap_servers, [topic]):
        try:
            ids = intents_of(r.value)
        except Exception:  # noqa: BLE001 - a malformed record leads to no id
            ids = []
        if lost & set(ids):
            where[r.partition].append(r.offset)
    return {p: sorted(o) for p, o in where.items()}


# ----------------------------------------------------------------------------------------------- a pipeline


def partition_of(key: bytes, partitions: int) -> int:
    """The partition the project's producers (kafka-python's default partitioner) put ``key`` on."""
    from kafka.partitioner.default import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Pipeline:
    """The demo's processes, each a real ``switchboard`` child: three provider sandboxes, three gateways and
    the worker. ``alive()`` names any that died; nothing is ever restarted behind the scenario's back."""

    SANDBOXES = ("twilio", "whatsapp", "smtp")
    CHANNELS = ("sms", "whatsapp", "email")

    def __init__(self, settings: Settings, log_dir: Path, fail_rate: float = 0.0, callback_delay: float = 0.1,
                 extra_env: dict[str, str] | None = None) -> None:
        self.settings, self.log_dir = settings, log_dir
        self.fail_rate, self.callback_delay, self.extra_env = fail_rate, callback_delay, extra_env or {}
        self.procs: dict[str, Proc] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, sandboxes: bool = True, gateways: bool = True, worker: bool = True) -> Pipeline:
        if sandboxes:
            for provider in self.SANDBOXES:
                self._start(f"sandbox-{provider}", ["sandbox", provider, "--fail-rate", str(self.fail_rate),
                                                    "--callback-delay", str(self.callback_delay)])
            box = self.settings.sandbox
            for port in (box.port, box.whatsapp_port, box.smtp_http_port):
                wait_until(lambda port=port: _listening(port), 60, f"sandbox on {port}")
        if gateways:
            for channel in self.CHANNELS:
                self._start(f"gateway-{channel}", ["gateway", channel])
            for channel in self.CHANNELS:
                port = getattr(self.settings, channel).webhook_port
                wait_until(lambda port=port: _listening(port), 60, f"{channel} gateway up",
                           self.procs[f"gateway-{channel}"])
        if worker:
            self._start("worker", ["worker", "--loglevel", "warn"])
        return self

    def _start(self, name: str, args: list[str]) -> Proc:
        self.procs[name] = Proc(args, self.settings, self.log_dir / f"{name}.log", self.extra_env)
        return self.procs[name]

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if not proc.alive()]

    def check(self) -> None:
        dead = self.dead()
        assert not dead, "processes died: " + "; ".join(f"{n}:\n{self.procs[n].output()[-1500:]}" for n in dead)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def provider_calls(self) -> dict[str, Counter]:
        """channel -> provider calls per message id, as each sandbox recorded them."""
        from urllib.parse import parse_qs, urlsplit

        box = self.settings.sandbox
        calls: dict[str, Counter] = {}
        twilio = _get_json(f"http://127.0.0.1:{box.port}/_sandbox/messages")
        calls["sms"] = Counter(parse_qs(urlsplit(m["status_callback"]).query)["message_id"][0] for m in twilio)
        whatsapp = _get_json(f"http://127.0.0.1:{box.whatsapp_port}/_sandbox/messages")
        calls["whatsapp"] = Counter(parse_qs(m["callback_data"])["m"][0] for m in whatsapp)
        email = _get_json(f"http://127.0.0.1:{box.smtp_http_port}/_sandbox/messages")
        calls["email"] = Counter(m["switchboard_message_id"] for m in email)
        return calls




def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _get_json(url: str):
    import json

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


GATEWAY_VERDICTS = {OutcomeStatus.SENT, OutcomeStatus.AMBIGUOUS, OutcomeStatus.FAILED, OutcomeStatus.SUPPRESSED}


def unanswered_commands(decisions: Decisions) -> set[tuple[str, str]]:
    """(message id, channel) of commands no gateway has reported on (sent, ambiguous, failed or suppressed)."""
    answered = {(o.message_id, str(o.channel)) for o in decisions.outcomes
                if o.channel is not None and o.status in GATEWAY_VERDICTS}
    return {(c.message_id, str(c.channel)) for c in decisions.commands} - answered


class OwnBroker:
    """A KRaft broker of the scenario's own (deploy/kafka/kafka.sh), so stopping it disturbs no other test."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port_pair()
        self.env = {**os.environ, "SWITCHBOARD_KAFKA_PORT": str(self.port), "SWITCHBOARD_KAFKA_DATA": str(data_dir)}
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        subprocess.run(["bash", str(ROOT / "deploy" / "kafka" / "kafka.sh"), command], check=True, env=self.env)

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def kill(self) -> None:
        self._run("kill")
