"""P: the full pipeline's sustained rate, storefront events produced as fast as possible until drained.

The rate is the events over the time from the first event sent to the last decision the worker wrote
(a send command, or a suppressed outcome), read back from the broker's timestamps: no polling
interval blurs it. Meanwhile the worker's committed offsets, its decisions, CPU and memory are
sampled twice a second for the JSON record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from bench.decisions import read_decisions
from bench.kafka_io import Feed
from bench.pipeline import Pipeline
from bench.workload import Record


@dataclass
class Sample:
    t: float  # seconds since the feed started
    sent: int  # events produced so far
    committed: int  # events the worker group has committed
    decisions: int  # commands + outcomes written so far
    worker_cpu_s: float
    worker_rss_mb: float


@dataclass
class Throughput:
    events: int
    seconds: float  # first event sent -> last decision written
    feed_seconds: float  # how long producing the events took
    decisions: int
    commands: dict[str, int]
    outcomes: dict[str, int]
    worker_cpu_s: float  # CPU the worker used during the phase
    worker_cpu_wait_s: float  # time it was ready to run but waited for a CPU (the machine's other load)
    records_written: dict[str, int]  # records the worker wrote, per kind of topic
    samples: list[Sample] = field(default_factory=list)
    topics_written: dict[str, int] = field(default_factory=dict)  # records the worker wrote, per topic (no prefix)
    topics_read: dict[str, int] = field(default_factory=dict)  # its group's committed-offset advance, per topic

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.worker_cpu_s / self.events if self.events else 0.0

    @property
    def cpu_wait_share(self) -> float:
        """Cores' worth of time the worker waited for a CPU: how much other load stole from it."""
        return self.worker_cpu_wait_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        """Cores the worker kept busy: below ~0.9 it was waiting (on the broker, or for the CPU)."""
        return self.worker_cpu_s / self.seconds if self.seconds > 0 else 0.0

    def records_per_event(self) -> dict:
        """Kafka records written and read per storefront event, in total and per topic: where the records go."""
        per = 1 / self.events if self.events else 0.0
        topics = {t: {"written": round(self.topics_written.get(t, 0) * per, 3),
                      "read": round(self.topics_read.get(t, 0) * per, 3)}
                  for t in sorted(set(self.topics_written) | set(self.topics_read))}
        return {"written": round(sum(self.topics_written.values()) * per, 3),
                "read": round(sum(self.topics_read.values()) * per, 3), "events": self.events,
                "records_written": sum(self.topics_written.values()), "records_read": sum(self.topics_read.values()),
                "topics": topics}

    def as_json(self) -> dict:
        data = asdict(self)
        data.pop("topics_written")
        data.pop("topics_read")  # both are in records_per_event, per event
        data.update(rate=round(self.rate, 1), cpu_ms_per_event=round(self.cpu_ms_per_event, 3),
                    cpu_share=round(self.cpu_share, 2), cpu_wait_share=round(self.cpu_wait_share, 2))
        return data


def run_throughput(pipeline: Pipeline, events: list[Record], progress: Callable[[int], None],
                   timeout: float = 900.0) -> Throughput:
    worker = pipeline.worker
    pipeline.wait_drained(60.0, lambda: None)
    start_decisions, start_all = pipeline.decision_ends(), pipeline.all_ends()
    start_read = pipeline.offsets.committed(worker.group)
    base_committed = pipeline.offsets.committed_total(worker.group, [pipeline.events])
    base_decisions = sum(start_decisions.values())
    cpu_before, wait_before = worker.cpu(), worker.cpu_wait()
    feed = Feed(pipeline.bootstrap, ((pipeline.events, r) for r in events))
    started = time.monotonic()
    feed.start()
    samples: list[Sample] = []
    shown = 0
    while feed.is_alive() or pipeline.lag() > 0:
        worker.check()
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"the worker did not drain {len(events)} events within {timeout:.0f}s")
        committed = pipeline.offsets.committed_total(worker.group, [pipeline.events]) - base_committed
        samples.append(Sample(round(time.monotonic() - started, 2), feed.sent, committed,
                              pipeline.offsets.total(pipeline.decisions) - base_decisions,
                              round(worker.cpu() - cpu_before, 2), round(worker.rss() / 2**20, 1)))
        progress(max(committed - shown, 0))
        shown = max(committed, shown)
        time.sleep(0.5)  # sampling another process through the broker
    feed.wait()
    worker_cpu, worker_wait = worker.cpu() - cpu_before, worker.cpu_wait() - wait_before
    progress(len(events) - shown)
    found = read_decisions(pipeline.bootstrap, pipeline.outcomes, start_decisions, pipeline.decision_ends())
    assert feed.first_ms is not None and feed.finished_at is not None
    _settle(pipeline, start_read)  # the rate is measured: now let every agent of the group catch up and commit
    by_topic = _written_by_topic(pipeline, start_all, len(events))
    return Throughput(
        events=len(events), seconds=(found.last_ms - feed.first_ms) / 1000, feed_seconds=feed.finished_at - started,
        decisions=found.total, commands=dict(found.commands), outcomes=dict(found.outcomes),
        worker_cpu_s=round(worker_cpu, 2), worker_cpu_wait_s=round(worker_wait, 2),
        records_written=_written(pipeline, start_all), samples=samples, topics_written=by_topic,
        topics_read=_read_by_topic(pipeline, start_read))


def _settle(pipeline: Pipeline, start_read: dict, timeout: float = 30.0) -> None:
    """Waits (a while) until the group has committed everything on every topic it reads, not only the routed
    hops P waits for: the co-purchases and other side inputs are read by agents of their own."""
    subscribed = sorted({tp.topic for tp in start_read} | set(pipeline.inputs))
    try:
        pipeline.wait_drained(timeout, lambda: None, subscribed)
    except TimeoutError:
        pass  # what is committed by then is what is counted; the lag left shows in the per-topic reads


def _written_by_topic(pipeline: Pipeline, before: dict, fed: int) -> dict[str, int]:
    """Records the worker process wrote during the phase, per topic (outputs, changelogs, its own round trips).
    The bench's feed wrote ``fed`` of those on storefront.events: only the rest are the worker's."""
    prefix = pipeline.worker.settings.kafka.topic_prefix
    written: dict[str, int] = {}
    for tp, end in pipeline.all_ends().items():
        added = end - before.get(tp, 0)
        if added > 0:
            written[tp.topic] = written.get(tp.topic, 0) + added
    if pipeline.events in written:
        written[pipeline.events] -= fed
    return {t.removeprefix(prefix): n for t, n in sorted(written.items()) if n > 0}


def _read_by_topic(pipeline: Pipeline, before: dict) -> dict[str, int]:
    """Records the worker's consumer group consumed during the phase: the advance of its committed offsets."""
    prefix = pipeline.worker.settings.kafka.topic_prefix
    read: dict[str, int] = {}
    for tp, offset in pipeline.offsets.committed(pipeline.worker.group).items():
        advanced = offset - before.get(tp, 0)
        if advanced > 0:
            read[tp.topic.removeprefix(prefix)] = read.get(tp.topic.removeprefix(prefix), 0) + advanced
    return dict(sorted(read.items()))


def _written(pipeline: Pipeline, before: dict) -> dict[str, int]:
    """Records on the worker's topics during the phase, by kind: what one event costs in Kafka writes."""
    kinds: dict[str, int] = {}
    prefix = pipeline.worker.settings.kafka.topic_prefix
    for tp, end in pipeline.all_ends().items():
        added = end - before.get(tp, 0)
        if added <= 0 or tp.topic == pipeline.events:
            continue
        name = tp.topic.removeprefix(prefix)
        kind = ("changelog:" + name.split("-")[-2]) if name.endswith("-changelog") else \
            "commands" if name.startswith("messages.commands.") else name
        kinds[kind] = kinds.get(kind, 0) + added
    return kinds
