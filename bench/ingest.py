"""State ingest: fresh customers' profiles and consent changes through the worker's own agents.

The rate is the records over the time from the first one sent to the last table write the worker
made for them (its ``customers`` changelog records: a customer touched in a batch is written once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench.kafka_io import Feed, read_range
from bench.pipeline import Pipeline
from bench.workload import Record


@dataclass
class Ingest:
    customers: int
    records: int
    seconds: float
    worker_cpu_s: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict:
        return {**asdict(self), "rate": round(self.rate, 1)}


def run_ingest(pipeline: Pipeline, records: list[tuple[str, Record]], customers: int,
               progress: Callable[[int], None], timeout: float = 600.0) -> Ingest:
    names = pipeline.worker.names
    changelogs = [pipeline.changelog("customers")]
    state_topics = pipeline.worker.state_topics()
    before = pipeline.offsets.ends(changelogs)
    cpu_before = pipeline.worker.cpu()
    feed = Feed(pipeline.bootstrap, ((names(topic), record) for topic, record in records))
    feed.start()
    shown = 0

    def tick() -> None:
        nonlocal shown
        done = sum(pipeline.offsets.ends(changelogs).values()) - sum(before.values())
        progress(max(done - shown, 0))
        shown = max(done, shown)

    while feed.is_alive():
        tick()
        feed.join(0.5)
    feed.wait()
    pipeline.wait_drained(timeout, tick, topics=state_topics)
    progress(max(len(records) - shown, 0))
    cpu = pipeline.worker.cpu() - cpu_before
    last_ms = max((r.timestamp_ms for r in read_range(pipeline.bootstrap, before, pipeline.offsets.ends(changelogs))),
                  default=0)
    assert feed.first_ms is not None
    return Ingest(customers, len(records), (last_ms - feed.first_ms) / 1000, round(cpu, 2))
