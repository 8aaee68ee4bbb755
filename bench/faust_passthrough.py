"""F: a bare batched Faust agent, decode + lookup + encode + send: what Faust itself allows on this machine.

The child process (``python -m bench.faust_passthrough``, settings from ``SWITCHBOARD_*`` variables like
the worker's) runs one agent on a topic of its own with the pipeline's partition count: batches of
``stream.take(500, within=50 ms)``; per record the StorefrontEvent is decoded (Avro via
``schemas.codec``), its customer looked up in a plain dict (the workload's customers' profiles), an
output record encoded and handed to ``send_soon`` (not awaited one by one); producer linger 5 ms,
acks=all, Faust's own offset commits (every 2.8 s). It is built with the project's fixed Faust consumer.

:func:`run_faust_passthrough` (the bench side) starts it, warms it up until its group has committed a
first slice, then feeds the same encoded storefront events as B unpaced, like P: F = records ÷ (first
record sent → last output record's broker timestamp). The child's CPU per record is reported too.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.kafka_io import Feed, Offsets, create_topics, produce_all, read_range
from bench.worker import WorkerProcess, bench_settings
from bench.workload import Record, TableEntries

BATCH = 500
WITHIN_SECONDS = 0.05
LINGER_SECONDS = 0.005
WARM_UP = 500


@dataclass
class FaustPassThrough:
    records: int
    seconds: float  # first record sent -> last output record written (broker timestamps)
    cpu_s: float  # the Faust process's CPU over the same phase
    ready_seconds: float  # process start -> its warm-up committed
    lag_at_end: int  # records its group had not committed when the phase ended (0: every record committed)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict:
        return {"records": self.records, "seconds": round(self.seconds, 2), "rate": round(self.rate, 1),
                "cpu_s": round(self.cpu_s, 2), "cpu_us_per_record": round(1e6 * self.cpu_s / max(self.records, 1), 1),
                "ready_seconds": round(self.ready_seconds, 1), "lag_at_end": self.lag_at_end,
                "batch": BATCH, "within_s": WITHIN_SECONDS, "linger_s": LINGER_SECONDS}


def run_faust_passthrough(bootstrap: str, run_dir: Path, partitions: int, events: list[Record],
                          customers: Iterable[TableEntries], count: int, extra_env: dict[str, str],
                          processes: list[WorkerProcess], progress: Callable[[int], None],
                          timeout: float = 600.0) -> FaustPassThrough:
    """Runs the child on topics of its own, ``count`` records through it after a warm-up; it is appended to
    ``processes`` so the caller stops it whatever happens."""
    settings = bench_settings(bootstrap, run_dir, "f", partitions)
    source, sink = f"{settings.kafka.topic_prefix}passthrough.in", f"{settings.kafka.topic_prefix}passthrough.out"
    create_topics(bootstrap, [source, sink], partitions)
    table = run_dir / "faust-passthrough-customers.pickle"
    table.write_bytes(pickle.dumps({entry.key: entry.profile for entry in customers}))
    child = WorkerProcess(settings, run_dir / "faust-passthrough.log", extra_env,
                          command=["-m", "bench.faust_passthrough", "--source", source, "--sink", sink,
                                   "--customers", str(table)])
    processes.append(child)
    offsets = Offsets(bootstrap)
    try:
        child.start()
        stream = itertools.cycle(events)
        produce_all(bootstrap, [(source, r) for r in itertools.islice(stream, WARM_UP)])
        _wait_committed(offsets, child, source, timeout, progress)
        ready = time.monotonic() - child.started_at
        before = offsets.ends([sink])
        cpu = child.cpu()
        feed = Feed(bootstrap, ((source, r) for r in itertools.islice(stream, count)))
        feed.start()
        shown, deadline = 0, time.monotonic() + timeout
        while feed.is_alive() or offsets.total([sink]) - sum(before.values()) < count:
            child.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Faust pass-through did not move {count} records within {timeout:.0f}s")
            moved = offsets.total([sink]) - sum(before.values())
            progress(max(moved - shown, 0))
            shown = max(moved, shown)
            time.sleep(0.25)  # polling another process through the broker
        feed.wait()
        cpu = child.cpu() - cpu
        progress(count - shown)
        last_ms = _last_timestamp(bootstrap, before, offsets.ends([sink]))
        try:
            _wait_committed(offsets, child, source, 30.0, lambda n: None)  # real commits: its group catches up
        except TimeoutError:
            pass  # reported as lag_at_end
        lag = offsets.lag(child.group, [source])
        assert feed.first_ms is not None
        return FaustPassThrough(count, (last_ms - feed.first_ms) / 1000, cpu, ready, lag)
    finally:
        child.stop()
        offsets.close()


def _wait_committed(offsets: Offsets, child: WorkerProcess, source: str, timeout: float,
                    progress: Callable[[int], None]) -> None:
    deadline = time.monotonic() + timeout
    while offsets.lag(child.group, [source]) > 0 or not offsets.committed(child.group):
        child.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Faust pass-through did not commit its input within {timeout:.0f}s "
                               f"(log {child.log})")
        progress(0)
        time.sleep(0.25)  # polling another process through the broker


def _last_timestamp(bootstrap: str, before: dict, after: dict) -> int:
    """The latest broker timestamp among the last record of each partition written during the phase."""
    last = {tp: end - 1 for tp, end in after.items() if end > before.get(tp, 0)}
    return max((r.timestamp_ms for r in read_range(bootstrap, last, after)), default=0)


# --- the child process ---------------------------------------------------------------------------------


def _broker_url(bootstrap_servers: str) -> str:
    """As streams/app.py builds it (not imported: that module builds the whole worker's imports)."""
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def main(argv: list[str] | None = None) -> int:
    import asyncio

    from schemas.codec import codec_for, encode
    from schemas.events import StorefrontEvent
    from streams.faust_fixes import SwitchboardApp  # the worker's app: the project's fixed Faust consumer
    from streams.settings import Settings
    from streams.topics import app_id

    parser = argparse.ArgumentParser(prog="python -m bench.faust_passthrough", description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--customers", type=Path, required=True, help="pickle of {customer id: profile bytes}")
    parser.add_argument("--loglevel", default="warn")
    args = parser.parse_args(argv)
    settings = Settings()
    if settings.worker.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    customers: dict[bytes, bytes] = pickle.loads(args.customers.read_bytes())  # noqa: S301 - our own file
    app = SwitchboardApp(
        app_id(settings), broker=_broker_url(settings.kafka.bootstrap_servers), store="memory://",
        datadir=str(settings.worker.data_dir), topic_partitions=settings.kafka.partitions,
        key_serializer="raw", value_serializer="raw", producer_acks=-1, producer_linger=LINGER_SECONDS,
        broker_session_timeout=settings.worker.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout / 3),
        consumer_auto_offset_reset="earliest", web_enabled=False)
    source = app.topic(args.source, key_serializer="raw", value_serializer="raw",
                       partitions=settings.kafka.partitions)
    sink = app.topic(args.sink, key_serializer="raw", value_serializer="raw", partitions=settings.kafka.partitions)
    decoder = codec_for(StorefrontEvent)

    @app.agent(source, name="pass_through", concurrency=1)
    async def pass_through(stream):  # type: ignore[no-untyped-def]
        async for values in stream.take(BATCH, within=WITHIN_SECONDS):
            for value in values:
                event = decoder.decode(value)
                key = (event.customer_id or event.store_id).encode()
                known = customers.get(key) is not None  # the lookup a decision needs first
                out = encode(event.model_copy(update={"attributes": {**event.attributes, "known": str(known)}}))
                sink.send_soon(key=key, value=out)  # queued on the producer; flushed before each commit

    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel]
    app.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
