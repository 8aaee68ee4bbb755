"""Event → send-command latency with a paced feed, at a given share of the sustained rate P.

A paced feed measures the pipeline, not a backlog: each event is sent on schedule, and latency is the
command record's Kafka timestamp minus the event's ``trigger_received_at`` (see
``bench/decisions.py``). The first second of each run is left out of the percentiles (warm-up).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy

from bench.decisions import read_decisions
from bench.kafka_io import Feed, drive
from bench.pipeline import Pipeline
from bench.workload import Record

WARM_UP_MS = 1000


@dataclass
class Latency:
    share: float  # of P
    target_rate: float  # events/s asked for
    achieved_rate: float  # events/s the feed kept
    events: int
    commands: int  # measured commands (first second left out)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    max_lag: int  # highest lag of the worker group seen while feeding
    worker_cpu_ms_per_event: float  # a paced feed comes in small batches: often dearer per event than P's backlog
    cpu_wait_share: float  # cores' worth of time the worker waited for a CPU while fed

    def as_json(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def run_paced(pipeline: Pipeline, events: list[Record], share: float, rate: float,
              progress: Callable[[int], None]) -> Latency:
    pipeline.wait_drained(120.0, lambda: None)
    start = pipeline.decision_ends()
    cpu_before, wait_before = pipeline.worker.cpu(), pipeline.worker.cpu_wait()
    feed = Feed(pipeline.bootstrap, ((pipeline.events, r) for r in events), rate=rate)
    started = time.monotonic()
    max_lag = 0

    def sample() -> None:
        nonlocal max_lag
        max_lag = max(max_lag, pipeline.lag())

    drive(feed, pipeline.worker.check, progress, sample)
    assert feed.first_ms is not None and feed.finished_at is not None
    feed_seconds = feed.finished_at - started
    last_sent_ms = int(time.time() * 1000)
    pipeline.wait_drained(300.0, lambda: None)
    cpu, waited = pipeline.worker.cpu() - cpu_before, pipeline.worker.cpu_wait() - wait_before
    found = read_decisions(pipeline.bootstrap, pipeline.outcomes, start, pipeline.decision_ends(),
                           window_ms=(feed.first_ms + WARM_UP_MS, last_sent_ms))
    values = numpy.array(found.latencies_ms or [float("nan")])
    p50, p95, p99 = (float(v) for v in numpy.percentile(values, [50, 95, 99]))
    return Latency(share=share, target_rate=rate, achieved_rate=len(events) / feed_seconds, events=len(events),
                   commands=len(found.latencies_ms), p50_ms=p50, p95_ms=p95, p99_ms=p99,
                   max_ms=float(values.max()), max_lag=max_lag,
                   worker_cpu_ms_per_event=1000 * cpu / max(len(events), 1),
                   cpu_wait_share=waited / max(time.monotonic() - started, 1e-9))
