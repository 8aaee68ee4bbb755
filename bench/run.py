"""One benchmark run, every phase in a row on the same broker, so that the ratios compare like with like.

    broker ─ workload ─ decision code (a plain loop) ─ B (aiokafka pass-through) ─ F (bare Faust agent)
           ─ P worker: recover 50k customers ─ warm-up ─ state ingest ─ P (unpaced, records per event)
           ─ latency at 50% and 80% of P ─ profile (py-spy) ─ memory worker: N customers
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import report
from bench.baseline import run_pass_through
from bench.broker import ROOT, Broker, kafka_version
from bench.campaign import busiest_store, run_campaign_latency
from bench.chart import draw
from bench.decision import measure_decision, previous_path
from bench.faust_passthrough import run_faust_passthrough
from bench.gateway import run_gateway_phase
from bench.ingest import run_ingest
from bench.kafka_io import create_topics, delete_topics_with_prefix, produce_all
from bench.latency import run_paced
from bench.machine import CpuCensus, descendants, machine_info
from bench.memory import run_memory
from bench.pipeline import Pipeline
from bench.profiler import Sampler
from bench.throughput import run_throughput
from bench.worker import WorkerProcess, bench_settings
from bench.workload import Record, Workload, build

RESULTS = Path(__file__).resolve().parent / "results"
WARM_UP_EVENTS = 500
CAMPAIGN_FEED_SHARE = 0.1  # storefront events fed during the campaign, as a share of P: order updates trickle in


@dataclass
class Options:
    customers: int = 50_000
    events: int = 15_000  # the unpaced throughput run
    baseline_records: int = 200_000
    faust_records: int = 50_000  # F, the bare Faust agent: about 10 s here
    decision_events: int = 5_000  # the decision code in a plain loop, per repetition
    decision_repetitions: int = 5
    decision_only: bool = False  # --decision-only: that phase alone, no broker
    latency_seconds: float = 20.0
    latency_shares: tuple[float, ...] = (0.5, 0.8)
    ingest_customers: int = 2_000
    profile_seconds: float = 20.0
    campaign_seconds: float = 20.0  # transactional latency while a campaign to a whole store runs (0: skip)
    memory_customers: int = 150_000
    partitions: int = 6
    seed: int = 42
    worker_env: dict[str, str] = field(default_factory=dict)  # tuning experiments without code changes
    gateway_commands: int = 5_000  # the gateway phase: backlog per channel (0: skip)
    gateway_only: bool = False  # --gateway-only: that phase alone, on a broker of its own
    label: str = "latest"  # results/<label>.json, .png, -profile.svg: an experiment keeps its own history


class Events:
    """The workload's events, handed out in slices so no phase repeats another's (cycling if they run out)."""

    def __init__(self, events: list[Record]) -> None:
        self._events, self._next, self.cycled = events, 0, False

    def take(self, count: int) -> list[Record]:
        start, self._next = self._next, self._next + count
        if self._next > len(self._events):
            self.cycled = True
        return list(itertools.islice(itertools.cycle(self._events), start, start + count))


def run(options: Options, console: Console) -> dict:
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / ".switchboard" / "bench" / run_id
    started = time.monotonic()
    census = CpuCensus.take()
    results: dict = {"run": {"id": run_id, "started": dt.datetime.now().isoformat(timespec="seconds"),
                             "options": options.__dict__, **_code_version()}}
    previous = report.load_previous(RESULTS / f"{options.label}.json")
    console.print(f"[bold]Switchboard bench[/] {run_id}: state and logs in {run_dir}")
    broker = Broker.acquire(run_dir)
    results["machine"] = {**machine_info(kafka_version()), "broker": broker.describe()}
    console.print(f"Broker {broker.describe()}")
    workers: list[WorkerProcess] = []
    pipelines: list[Pipeline] = []
    interrupted: BaseException | None = None
    try:
        with _progress(console) as progress:
            _phases(options, broker.bootstrap_servers, run_dir, progress, workers, pipelines, results)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - what was measured so far is still reported
        interrupted = exc
        results["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        console.print(f"[red]The run stopped early[/]: {results['error']}")
    finally:
        for worker in workers:
            worker.stop()
        for pipeline in pipelines:
            pipeline.close()  # before the broker goes: its clients would retry a vanished broker for ever
        broker_pid = _broker_pid(broker)
        exclude = descendants(os.getpid()) | ({broker_pid} if broker_pid else set())
        after = CpuCensus.take()
        results["others_busy"] = after.busiest_since(census, exclude)
        if broker_pid in after.seconds:  # the broker this run started: its share of the machine
            results["machine"]["broker_cpu_s"] = round(
                after.seconds[broker_pid][1] - census.seconds.get(broker_pid, ("", 0.0))[1], 1)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        if broker.owned:
            broker.release()
        else:
            delete_topics_with_prefix(broker.bootstrap_servers, f"bench-{run_id}-")
    results["run"]["seconds"] = round(time.monotonic() - started, 1)
    if "baseline" not in results or "pipeline" not in results:  # nothing comparable: keep the last good run
        saved = report.save(results, RESULTS, f"{options.label}-failed")
        console.print(f"No figures to compare; what there is went to {saved}")
        raise interrupted or RuntimeError("the run measured nothing")
    saved = report.save(results, RESULTS, options.label)
    results["chart"] = str(draw(results, RESULTS / f"{options.label}.png"))
    report.save(results, RESULTS, options.label)
    report.print_report(console, results, previous)
    console.print(f"Results: {saved}, chart: {results['chart']}")
    if isinstance(interrupted, KeyboardInterrupt):
        raise interrupted
    return results


def _phases(options: Options, bootstrap: str, run_dir: Path, progress: Progress,
            workers: list[WorkerProcess], pipelines: list[Pipeline], out: dict) -> None:
    """Runs every phase, adding its figures to ``out`` as soon as it has them."""
    with _task(progress, f"generating {options.customers:,} customers and their events") as _:
        needed = WARM_UP_EVENTS + options.events + 60_000
        workload = build(options.customers, options.seed, needed, options.ingest_customers)
    out["workload"] = {"customers": options.customers, "profiles": len(workload.tables),
                       "events_encoded": len(workload.events), "event_mix": workload.event_mix}
    events = Events(workload.events)

    out["decision"] = _decision(options, workload, progress)
    out["baseline"] = _baseline(options, bootstrap, run_dir.name, workload.events, progress)
    with _task(progress, f"F: Faust pass-through, {options.faust_records:,} records (take(500), send_soon)",
               options.faust_records) as advance:
        out["faust_passthrough"] = run_faust_passthrough(
            bootstrap, run_dir, options.partitions, workload.events, workload.tables, options.faust_records,
            options.worker_env, workers, advance).as_json()

    worker = WorkerProcess(bench_settings(bootstrap, run_dir, "p", options.partitions), run_dir / "worker-p.log",
                           options.worker_env)
    workers.append(worker)
    worker.create_topics()
    pipeline = Pipeline(worker)
    pipelines.append(pipeline)
    with _task(progress, f"P: writing {len(workload.tables):,} customers to the table changelogs",
               2 * len(workload.tables)) as advance:
        pipeline.seed_tables(workload.tables, advance)
    with _task(progress, "P: worker starting and recovering its tables") as advance:
        worker.start()
        ready = pipeline.wait_ready(workload.sentinel, 600.0, advance)
    out["pipeline_ready"] = {"customers": options.customers, "seconds": round(ready.seconds, 1),
                             "rss_mib": round(ready.rss_bytes / 2**20, 1), "restarts": ready.restarts}
    with _task(progress, f"P: warm-up, {WARM_UP_EVENTS} events") as advance:
        produce_all(bootstrap, [(pipeline.events, r) for r in events.take(WARM_UP_EVENTS)])
        pipeline.wait_drained(120.0, advance)
    with _task(progress, f"P: state ingest, {options.ingest_customers:,} new customers", len(workload.ingest)) as adv:
        out["ingest"] = run_ingest(pipeline, workload.ingest, options.ingest_customers, adv).as_json()
    with _task(progress, f"P: {options.events:,} events unpaced (committed)", options.events) as advance:
        throughput = run_throughput(pipeline, events.take(options.events), advance)
    out["pipeline"] = throughput.as_json()
    out["records_per_event"] = throughput.records_per_event()
    out["latency"] = []
    for share in options.latency_shares:
        rate = share * throughput.rate
        count = max(int(rate * options.latency_seconds), 1)
        with _task(progress, f"latency: {share:.0%} of P = {rate:,.0f} events/s for {options.latency_seconds:.0f}s",
                   count) as advance:
            out["latency"].append(run_paced(pipeline, events.take(count), share, rate, advance).as_json())
    out["profile"] = _profile(options, pipeline, events, throughput.rate, progress)
    if options.campaign_seconds > 0:
        store = busiest_store([entry.profile for entry in workload.tables])
        rate = CAMPAIGN_FEED_SHARE * throughput.rate
        count = max(int(rate * options.campaign_seconds), 1)
        with _task(progress, f"campaign to {store[1]:,} customers; meanwhile {rate:,.0f} events/s for "
                             f"{options.campaign_seconds:.0f}s", count) as advance:
            out["campaign"] = run_campaign_latency(pipeline, events.take(count), rate, store, advance).as_json()
    out["pipeline_end"] = {"rss_mib": round(worker.rss() / 2**20, 1), "peak_rss_mib": round(worker.peak_rss() / 2**20, 1)}
    out["workload"]["events_cycled"] = events.cycled
    worker.stop()

    if options.gateway_commands > 0:
        with _task(progress, f"gateways: {options.gateway_commands:,} commands per channel against the sandboxes",
                   3 * options.gateway_commands) as advance:
            out["gateway"] = run_gateway_phase(bootstrap, run_dir, options.gateway_commands, options.partitions,
                                               advance)

    if options.memory_customers > 0:
        out["memory"] = _memory(options, bootstrap, run_dir, progress, workers, pipelines, out["pipeline_ready"])


def _baseline(options: Options, bootstrap: str, run_id: str, events: list[Record], progress: Progress) -> dict:
    source, sink = f"bench-{run_id}-b.passthrough.in", f"bench-{run_id}-b.passthrough.out"
    create_topics(bootstrap, [source, sink], options.partitions)
    records = ((source, r) for r in itertools.islice(itertools.cycle(events), options.baseline_records))
    with _task(progress, f"B: filling {source}", options.baseline_records) as advance:
        produce_all(bootstrap, records, advance)
    with _task(progress, "B: aiokafka pass-through", options.baseline_records) as advance:
        cpu = time.process_time()
        result = run_pass_through(bootstrap, source, sink, f"bench-{run_id}-b", options.baseline_records,
                                  progress=advance)
        cpu = time.process_time() - cpu
    return {"records": result.records, "seconds": round(result.seconds, 2), "rate": round(result.rate, 1),
            "commits": result.commits, "cpu_s": round(cpu, 2),
            "cpu_us_per_record": round(1e6 * cpu / max(result.records, 1), 1)}


def _decision(options: Options, workload: Workload, progress: Progress) -> dict:
    total = options.decision_events * options.decision_repetitions
    with _task(progress, f"decision code in a plain loop: {options.decision_events:,} events × "
                         f"{options.decision_repetitions}", total) as advance:
        found = measure_decision(workload, options.decision_events, options.decision_repetitions,
                                 progress=advance).as_json()
    with _task(progress, "the same loop on the previous worker's handlers (before the core), for the ratio",
               total) as advance:
        before = measure_decision(workload, options.decision_events, options.decision_repetitions,
                                  make_loop=previous_path, progress=advance)
    found["previous_us_per_event"] = round(before.median, 1)
    return found


def run_decision_only(options: Options, console: Console) -> dict:
    """The decision-code phase alone (no broker): quick to iterate on; saved as ``results/<label>-decision.json``."""
    with _progress(console) as progress:
        with _task(progress, f"generating {options.customers:,} customers and their events") as _:
            workload = build(options.customers, options.seed, options.decision_events, 1)
        found = {"run": {"id": dt.datetime.now().strftime("%Y%m%d-%H%M%S"), **_code_version()},
                 "workload": {"customers": options.customers, "event_mix": workload.event_mix},
                 "decision": _decision(options, workload, progress)}
    d = found["decision"]
    console.print(f"decision code ({d['path']}): [bold]{d['us_per_event_median']:,.1f} µs/event[/] median, "
                  f"{d['us_per_event_min']:,.1f} min, CPU time over {d['events']:,} events × {d['repetitions']}; "
                  f"{d['outputs_per_event']:.2f} outputs/event {d['produced']}")
    before = report.load_previous(RESULTS / f"{options.label}.json")
    if before and before.get("decision"):
        console.print(f"previous full run ({before['run'].get('commit', '?')}): "
                      f"{before['decision']['us_per_event']:,.1f} µs/event")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{options.label}-decision.json").write_text(json.dumps(found, indent=2, default=str), encoding="utf-8")
    return found


def _profile(options: Options, pipeline: Pipeline, events: Events, rate: float, progress: Progress) -> dict:
    """py-spy on the worker while it works through an unpaced burst a little longer than the sampling."""
    if options.profile_seconds <= 0:
        return {"samples": 0, "note": "skipped (--profile-seconds 0)"}
    burst = events.take(int(rate * options.profile_seconds * 1.3) + 1000)
    with _task(progress, f"profile: py-spy on the worker for {options.profile_seconds:.0f}s", len(burst)) as advance:
        pipeline.wait_drained(120.0, lambda: None)
        sampler = Sampler(pipeline.worker.pid, options.profile_seconds, RESULTS, options.label)
        produce_all(pipeline.bootstrap, [(pipeline.events, r) for r in burst], advance)
        profile = sampler.result()
        pipeline.wait_drained(300.0, lambda: None)
    return profile.as_json()


def _memory(options: Options, bootstrap: str, run_dir: Path, progress: Progress, workers: list[WorkerProcess],
            pipelines: list[Pipeline], small: dict) -> dict:
    worker = WorkerProcess(bench_settings(bootstrap, run_dir, "m", options.partitions), run_dir / "worker-m.log",
                           options.worker_env)
    workers.append(worker)
    worker.create_topics()
    pipeline = Pipeline(worker)
    pipelines.append(pipeline)
    try:
        with _task(progress, f"memory: writing {options.memory_customers:,} customers to the changelogs",
                   2 * options.memory_customers) as seeded, \
                _task(progress, "memory: worker recovering (RSS)") as tick:
            def show() -> None:
                if worker.alive():
                    progress.update(tick.task_id, description=f"memory: worker recovering, RSS "  # type: ignore[attr-defined]
                                    f"{worker.rss() / 2**20:,.0f} MiB")
            # Recovery ran at 2,000-7,000 changelog records/s on this 2-core machine: allow for the slow end.
            timeout = 300.0 + options.memory_customers * 2 / 1000
            memory = run_memory(pipeline, options.memory_customers, options.seed + 7, seeded, show, timeout)
    finally:
        worker.stop()
    found = memory.as_json()
    grown = options.memory_customers - small["customers"]
    if grown > 0:  # the slope between the two workers: what one more customer costs, the interpreter aside
        found["bytes_per_customer"] = round((memory.rss_bytes - small["rss_mib"] * 2**20) / grown)
    return found


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


class _Advance:
    """Advances one progress task by n (or just redraws it for phases with no known total)."""

    def __init__(self, progress: Progress, task_id: int) -> None:
        self.progress, self.task_id = progress, task_id

    def __call__(self, n: int = 0) -> None:
        self.progress.advance(self.task_id, n)  # type: ignore[arg-type]


@contextmanager
def _task(progress: Progress, description: str, total: int | None = None) -> Iterator[_Advance]:
    task_id = progress.add_task(description, total=total)
    yield _Advance(progress, task_id)  # type: ignore[arg-type]
    progress.update(task_id, completed=total if total is not None else 1, total=total or 1)  # type: ignore[arg-type]


def _code_version() -> dict[str, object]:
    """The commit measured, and whether the pipeline's code differed from it (a dirty tree compares badly)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "streams", "schemas", "connectors")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_pipeline_files": len(changed.splitlines())}


def _broker_pid(broker: Broker) -> int | None:
    if broker.data_dir is None:
        return None
    try:
        return int((broker.data_dir / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None
