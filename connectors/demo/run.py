"""``switchboard demo``: broker, topics, worker, gateway and sandbox, a storefront, and a summary.

Everything it starts it stops again, also on Ctrl-C. With ``SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS``
set it uses that cluster and starts no broker. Each run uses topics of its own (a run prefix).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.demo.feed import feed_storefront
from connectors.demo.processes import Supervisor
from connectors.demo.watch import Tally, Watcher
from streams.settings import Settings
from streams.topics import create_topics

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


def _broker_answers(bootstrap_servers: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), request_timeout_ms=3000).close()
        return True
    except (KafkaError, OSError):
        return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The demo's journeys run 500 times faster than a shop's: an abandoned cart's hour is 7 s, so its
# reminders (and the quiet hours and caps they meet) are decided before the summary.
JOURNEY_TIME_SCALE = 0.002
JOURNEY_GRACE = 3600 * JOURNEY_TIME_SCALE + 8  # seconds to keep watching after the immediate sends settle


def run_demo(settings: Settings, customers: int, seed: int, timeout: float, rate: float) -> int:
    console = Console()
    external = "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS" in os.environ
    port = settings.kafka.bootstrap_servers.rsplit(":", 1)[-1]
    broker_env = {**os.environ, "SWITCHBOARD_KAFKA_PORT": port}
    # Stop at the end only a broker this run started, never one the user had running (from this checkout
    # or any other: a broker already answering on the port is used as it is).
    own_broker = not external and not _broker_answers(settings.kafka.bootstrap_servers)
    run_id = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    settings.kafka.topic_prefix = f"{settings.kafka.topic_prefix}demo-{run_id}."
    supervisor = Supervisor(ROOT / ".switchboard" / "logs" / f"demo-{run_id}")
    # Ctrl-C and SIGTERM both end in the cleanup below, even when the demo was started with SIGINT
    # ignored (a background job of a non-interactive shell inherits that).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if own_broker:
            console.print(f"[bold]Starting the embedded Kafka broker[/] on 127.0.0.1:{port} …")
            subprocess.run(["bash", str(KAFKA_SCRIPT), "start"], check=True, env=broker_env)
        created = create_topics(settings)
        console.print(f"Created {len(created)} topics with prefix [cyan]{settings.kafka.topic_prefix}[/]")
        env = {"SWITCHBOARD_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
               "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
               "SWITCHBOARD_WORKER__DATA_DIR": str(ROOT / ".switchboard" / f"worker-{run_id}"),
               "SWITCHBOARD_WORKER__JOURNEY_TIME_SCALE": str(JOURNEY_TIME_SCALE),
               "SWITCHBOARD_WORKER__STORES_FILE": os.environ.get("SWITCHBOARD_WORKER__STORES_FILE",
                                                                 str(ROOT / "deploy" / "stores" / "demo.yaml"))}
        for provider in ("twilio", "whatsapp", "smtp"):
            supervisor.start(f"sandbox-{provider}", ["sandbox", provider], env)
        for channel in ("sms", "whatsapp", "email"):
            supervisor.start(f"gateway-{channel}", ["gateway", channel], env)
        supervisor.start("worker", ["worker", "--loglevel", "warn"], env)
        console.print(f"Started three provider sandboxes (Twilio, WhatsApp Cloud API, SMTP), three gateways and "
                      f"the worker (logs in {supervisor.log_dir})")
        tally, elapsed = _drive(console, settings, supervisor, customers, seed, timeout, rate)
        _summary(console, tally, elapsed, customers)
        return 0
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: shutting everything down.[/]")
        return 130
    finally:
        supervisor.stop_all()
        if own_broker:
            subprocess.run(["bash", str(KAFKA_SCRIPT), "stop"], check=False, env=broker_env)
        console.print("All processes stopped.")


def _drive(console: Console, settings: Settings, supervisor: Supervisor, customers: int, seed: int,
           timeout: float, rate: float) -> tuple[Tally, float]:
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        state = progress.add_task("customers + consents → Kafka", total=None)
        loaded = progress.add_task("worker loading customer state", total=None)
        events = progress.add_task("storefront events → Kafka", total=None)

        def report(phase: str, done: int, total: int | None) -> None:
            supervisor.check()
            if phase == "state":
                progress.update(loaded, total=1, completed=0 if done else 1,
                                description=f"worker loading ({done} behind)" if done else "worker loaded state")
            else:
                progress.update(state if phase == "customers" else events, completed=done, total=total)

        started = time.monotonic()
        shop = feed_storefront(settings, customers, seed, report, rate=rate)
        expected = {m.message_id for m in _expected(shop)}
        decided = progress.add_task("decisions (command/suppressed)", total=len(expected))
        settled = progress.add_task("settled (receipts back)", total=len(expected))
        watcher = Watcher(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix)
        try:
            deadline = time.monotonic() + timeout
            follow_up, grace_ends = None, 0.0
            while True:
                tally = watcher.poll()
                progress.update(decided, completed=len(tally.decided & expected))
                progress.update(settled, completed=len(tally.settled & expected))
                if expected <= tally.settled and sum(tally.dead_letters.values()) >= len(shop.malformed):
                    if follow_up is None:  # journeys that wait first (abandoned carts) decide a little later
                        follow_up = progress.add_task("journeys' later steps", total=JOURNEY_GRACE)
                        grace_ends = time.monotonic() + JOURNEY_GRACE
                    left = grace_ends - time.monotonic()
                    progress.update(follow_up, completed=min(JOURNEY_GRACE, JOURNEY_GRACE - left))
                    if left <= 0:
                        break
                if time.monotonic() > deadline:
                    console.print("[red]Timed out waiting for the pipeline; the summary shows what arrived.[/]")
                    break
                supervisor.check()
            tally.events_in = watcher.events_in()  # type: ignore[attr-defined]
        finally:
            watcher.close()
    return tally, time.monotonic() - started


def _expected(shop):
    from streams.triggers import intents_for

    now = dt.datetime.now(dt.timezone.utc)
    return [i for e in shop.events for i in intents_for(e, now, now)]


def _summary(console: Console, tally: Tally, elapsed: float, customers: int) -> None:
    table = Table(title=f"Switchboard demo — {customers} customers, {elapsed:.1f}s", show_lines=False)
    table.add_column("what", style="bold")
    table.add_column("detail")
    table.add_column("count", justify="right")
    table.add_row("storefront events in", "incl. malformed", str(getattr(tally, "events_in", "?")))
    for channel, count in sorted(tally.commands.items()):
        table.add_row("send commands", channel, str(count))
    for reason, count in tally.suppressions.most_common():
        table.add_row("suppressed", reason, str(count))
    for reason, count in tally.scheduled.most_common():
        table.add_row("scheduled (deferred)", reason, str(count))
    if tally.scheduled_for:
        first, last = min(tally.scheduled_for), max(tally.scheduled_for)
        table.add_row("scheduled (deferred)", f"from {first:%a %H:%M} to {last:%a %H:%M} UTC", "")
    for status, count in tally.outcomes.most_common():
        table.add_row("outcomes", status, str(count))
    for chain, count in tally.fallbacks.most_common():
        table.add_row("fallbacks", chain, str(count))
    for topic, count in sorted(tally.dead_letters.items()):
        table.add_row("dead letters", topic, str(count))
    for q in (50, 99):
        value = tally.percentile(q)
        table.add_row("event → command latency", f"p{q}", "-" if value is None else f"{value:.0f} ms")
    console.print(table)
