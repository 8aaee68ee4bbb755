"""Worker memory with many customers in its tables (memory store), and how long it takes to get them back.

The customers go onto the ``customers`` changelog first (one record each); a fresh worker then recovers
them, exactly as a restarted worker does. Resident memory (VmRSS from /proc) is read once the worker
has made a decision again, after a few idle seconds; the peak (VmHWM) is reported too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench.pipeline import Pipeline, Tick
from bench.workload import customer_tables

SETTLE_SECONDS = 3.0


@dataclass
class Memory:
    customers: int
    changelog_records: int
    seed_seconds: float  # writing the changelogs (the benchmark's own time, not the worker's)
    recovery_seconds: float  # worker start -> its first decision
    rss_bytes: int
    peak_rss_bytes: int
    restarts: int = 0  # starts that hung without deciding (see Pipeline.wait_ready)

    @property
    def recovery_rate(self) -> float:
        return self.changelog_records / self.recovery_seconds if self.recovery_seconds > 0 else 0.0

    def as_json(self) -> dict:
        return {**asdict(self), "rss_mib": round(self.rss_bytes / 2**20, 1),
                "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1), "recovery_rate": round(self.recovery_rate, 1)}


def run_memory(pipeline: Pipeline, customers: int, seed: int, seeded: Callable[[int], None], tick: Tick,
               timeout: float = 1800.0) -> Memory:
    """Seeds ``customers`` customers, starts the worker, and reads its memory once it is ready."""
    sentinel, entries = customer_tables(customers, seed)
    started = time.monotonic()
    records = pipeline.seed_tables(entries, seeded)
    seed_seconds = time.monotonic() - started
    pipeline.worker.start()
    ready = pipeline.wait_ready(sentinel, timeout, tick)
    time.sleep(SETTLE_SECONDS)  # let the recovery's garbage go before reading the resident size
    return Memory(customers, records, round(seed_seconds, 1), round(ready.seconds, 1), pipeline.worker.rss(),
                  pipeline.worker.peak_rss(), ready.restarts)
