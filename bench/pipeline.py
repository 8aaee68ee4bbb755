"""The worker under test seen from outside: its topics, its state, when it is ready, when it has drained.

Everything here reads or writes Kafka topics and /proc; nothing reaches into the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import TopicPartition

from bench.kafka_io import Offsets, produce_all
from bench.worker import WorkerProcess
from bench.workload import Record, TableEntries
from schemas.catalog import (
    MESSAGE_INTENTS,
    MESSAGE_OUTCOMES,
    MESSAGE_TIMERS,
    STOREFRONT_EVENTS,
    commands_topic,
)
from schemas.types import Channel, Purpose

Tick = Callable[[], None]


IDLE_STALL_SECONDS = 30.0  # no decision and (almost) no CPU for this long after a start: the worker hangs
MAX_RESTARTS = 5  # the memory phase's start hung 3 times in a row once (see README, Performance); reported


@dataclass
class Ready:
    seconds: float  # from the (last) process start to its first decision
    rss_bytes: int
    peak_rss_bytes: int
    restarts: int = 0  # starts that hung idle without ever deciding, and were restarted


class Pipeline:
    """One worker process and the topics it reads and writes."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.bootstrap = worker.settings.kafka.bootstrap_servers
        names = worker.names
        self.events = names(STOREFRONT_EVENTS)
        self.intents = names(MESSAGE_INTENTS)
        self.outcomes = names(MESSAGE_OUTCOMES)
        self.commands = [names(commands_topic(c, p)) for c in Channel for p in Purpose]
        self.inputs = [self.events, self.intents, self.outcomes, names(MESSAGE_TIMERS)]  # the routed hops
        self.decisions = [*self.commands, self.outcomes]  # a send command, or an outcome (suppressed, scheduled)
        self.offsets = Offsets(self.bootstrap)

    def changelog(self, table: str) -> str:
        return f"{self.worker.group}-{table}-changelog"

    def seed_tables(self, entries: Iterable[TableEntries], progress: Callable[[int], None]) -> int:
        """Writes customers onto the ``customers`` table's changelog; a worker started afterwards recovers them.

        One record per customer, as the worker writes it (streams/core/state.py: the profile's Avro bytes and
        the folded consents). The records go to the partition of their key (the default partitioner), which
        is where the worker's own writes go: its table partitions follow the customer-keyed source topics.
        """
        customers = self.changelog("customers")

        def records() -> Iterable[tuple[str, Record]]:
            for entry in entries:
                yield customers, (entry.key, entry.state_json())

        return produce_all(self.bootstrap, records(), progress).sent

    def wait_ready(self, sentinel: Record, timeout: float, tick: Tick) -> Ready:
        """Sends one shipped order and waits for its decision: the worker has recovered and routes again.

        A worker that sits idle without deciding (seen here a few times in a few dozen starts, on a
        broker that had just started: the group joined, recovery done, nothing consumed, no commit)
        is restarted, at most MAX_RESTARTS times; the restarts are reported.
        """
        before = self.offsets.total(self.decisions)
        produce_all(self.bootstrap, [(self.events, sentinel)])
        deadline = time.monotonic() + timeout
        restarts, busy_at, cpu = 0, time.monotonic(), self.worker.cpu()
        while self.offsets.total(self.decisions) <= before:
            self.worker.check()
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"the worker made no decision within {timeout:.0f}s (log {self.worker.log})")
            if self.worker.cpu() - cpu > 0.5:
                busy_at, cpu = now, self.worker.cpu()
            elif now - busy_at > IDLE_STALL_SECONDS and restarts < MAX_RESTARTS:
                restarts += 1
                self.worker.restart()
                busy_at, cpu = time.monotonic(), self.worker.cpu()
            tick()
            time.sleep(0.5)  # polling another process through the broker
        seconds = time.monotonic() - self.worker.started_at
        self.wait_drained(60.0, tick)
        return Ready(seconds, self.worker.rss(), self.worker.peak_rss(), restarts)

    def lag(self) -> int:
        return self.offsets.lag(self.worker.group, self.inputs)

    def wait_drained(self, timeout: float, tick: Tick, topics: list[str] | None = None) -> None:
        """Until the worker's group has committed everything on its inputs (or ``topics``)."""
        deadline = time.monotonic() + timeout
        while self.offsets.lag(self.worker.group, topics or self.inputs) > 0:
            self.worker.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not drain its input within {timeout:.0f}s")
            tick()
            time.sleep(0.25)  # polling another process through the broker

    def decision_ends(self) -> dict[TopicPartition, int]:
        return self.offsets.ends(self.decisions)

    def all_ends(self) -> dict[TopicPartition, int]:
        """End offsets of every topic of this worker (its prefix), changelogs included."""
        prefix = self.worker.settings.kafka.topic_prefix
        topics = [t for t in self.offsets.topics() if t.startswith(prefix)]
        return self.offsets.ends(topics)

    def close(self) -> None:
        self.offsets.close()
