"""``switchboard demo``: broker, topics, worker, gateway and sandbox, a storefront, and a summary.

Everything it starts it stops again, also on Ctrl-C. With ``SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS``
set it uses that cluster and starts no broker. Each run uses topics of its own (a run prefix).

The terminal shows the progress display and the summary only: every log line, the Kafka clients' own
included, goes to ``demo.log`` in the run's log directory (``--verbose`` shows the clients' lines on the
terminal as well), and the broker script's output to ``broker.log`` there.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.demo.feed import feed_storefront
from connectors.demo.processes import Supervisor
from connectors.demo.watch import Tally, Watcher
from streams.quiet_hours import resolve_zone
from streams.settings import Settings
from streams.topics import create_topics

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


LIBRARY_LOGGERS = ("kafka", "aiokafka")  # the Kafka clients': their retries and warnings are not the demo's story


def _broker_answers(bootstrap_servers: str) -> bool:
    """Whether a broker answers: at once when nothing listens (a refused connection is an answer), and only
    then asks a Kafka client, which would otherwise retry a refused bootstrap for many seconds."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    def listening(server: str) -> bool:
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=2).close()
            return True
        except (OSError, ValueError):
            return False

    if not any(listening(server) for server in bootstrap_servers.split(",")):
        return False
    try:
        KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","), request_timeout_ms=3000).close()
        return True
    except (KafkaError, OSError):
        return False


class _TerminalLines(logging.Filter):
    """What reaches the terminal beside the progress display: the demo's own warnings, never a library's line
    (``verbose``: the libraries' too)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in LIBRARY_LOGGERS:
            return self.verbose
        return record.levelno >= logging.WARNING


def log_to(log_file: Path, verbose: bool) -> logging.Handler:
    """Every log line to ``log_file``; the handlers already there (the terminal's) get :class:`_TerminalLines`.
    Returns the file's handler, for the caller to remove."""
    root = logging.getLogger()
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for terminal in root.handlers:
        terminal.addFilter(_TerminalLines(verbose))
    root.addHandler(handler)
    return handler


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The demo's journeys run 500 times faster than a shop's: an abandoned cart's hour is 7 s, so its
# reminders (and the quiet hours and caps they meet) are decided before the summary.
JOURNEY_TIME_SCALE = 0.002
JOURNEY_GRACE = 3600 * JOURNEY_TIME_SCALE + 8  # seconds to keep watching after the immediate sends settle


def run_demo(settings: Settings, customers: int, seed: int, timeout: float, rate: float,
             verbose: bool = False) -> int:
    console = Console()
    external = "SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS" in os.environ
    port = settings.kafka.bootstrap_servers.rsplit(":", 1)[-1]
    broker_env = {**os.environ, "SWITCHBOARD_KAFKA_PORT": port}
    run_id = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    supervisor = Supervisor(ROOT / ".switchboard" / "logs" / f"demo-{run_id}")
    log_handler = log_to(supervisor.log_dir / "demo.log", verbose)
    # Stop at the end only a broker this run started, never one the user had running (from this checkout
    # or any other: a broker already answering on the port is used as it is).
    own_broker = not external and not _broker_answers(settings.kafka.bootstrap_servers)
    settings.kafka.topic_prefix = f"{settings.kafka.topic_prefix}demo-{run_id}."
    # Ctrl-C and SIGTERM both end in the cleanup below, even when the demo was started with SIGINT
    # ignored (a background job of a non-interactive shell inherits that).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if own_broker:
            started = time.monotonic()
            with console.status(f"Starting the embedded Kafka broker on 127.0.0.1:{port} …"):
                _broker_script("start", broker_env, supervisor.log_dir, check=True)
            console.print(f"[bold]Started the embedded Kafka broker[/] on 127.0.0.1:{port} (its controller on "
                          f"{int(port) + 1}) in {time.monotonic() - started:.0f}s")
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
        tally, elapsed, zones = _drive(console, settings, supervisor, customers, seed, timeout, rate)
        _summary(console, tally, elapsed, customers, zones)
        return 0
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted: shutting everything down.[/]")
        return 130
    finally:
        supervisor.stop_all()
        if own_broker:
            _broker_script("stop", broker_env, supervisor.log_dir, check=False)
        console.print("All processes stopped.")
        logging.getLogger().removeHandler(log_handler)
        log_handler.close()


def _broker_script(action: str, env: dict[str, str], log_dir: Path, check: bool) -> None:
    """deploy/kafka/kafka.sh, its output to broker.log; a failed start shows the log's end and raises."""
    with open(log_dir / "broker.log", "ab") as log:
        done = subprocess.run(["bash", str(KAFKA_SCRIPT), action], env=env, stdout=log, stderr=subprocess.STDOUT)
    if check and done.returncode != 0:
        tail = (log_dir / "broker.log").read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise RuntimeError(f"the broker did not start ({log_dir / 'broker.log'}):\n" + "\n".join(tail))


def _drive(console: Console, settings: Settings, supervisor: Supervisor, customers: int, seed: int,
           timeout: float, rate: float) -> tuple[Tally, float, dict[str, ZoneInfo]]:
    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
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
        zones = {p.customer_id: resolve_zone(p.time_zone, p.phone or p.whatsapp, "UTC") for p in shop.profiles}
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
    return tally, time.monotonic() - started, zones


def _expected(shop):
    from streams.triggers import intents_for

    now = dt.datetime.now(dt.timezone.utc)
    return [i for e in shop.events for i in intents_for(e, now, now)]


def _at(when: dt.datetime, zone: ZoneInfo | None) -> str:
    """``Thu 21:00 UTC (Fri 08:00 Australia/Sydney)``: when, and what the customer's clock says then."""
    utc = f"{when.astimezone(dt.timezone.utc):%a %H:%M} UTC"
    if zone is None or zone.key in ("UTC", "Etc/UTC"):
        return utc
    return f"{utc} ({when.astimezone(zone):%a %H:%M} {zone.key})"


def deferred_range(scheduled: list[tuple[dt.datetime, str]], zones: dict[str, ZoneInfo]) -> list[str]:
    """The deferred sends' range as lines: earliest and latest (UTC and that customer's local time), or the one
    moment they all share; never a range whose ends read the same."""
    if not scheduled:
        return []
    first, last = min(scheduled), max(scheduled)
    if f"{first[0]:%Y%m%d%H%M}" == f"{last[0]:%Y%m%d%H%M}":
        return [f"all {len(scheduled)} at {_at(first[0], zones.get(first[1]))}"]
    return [f"earliest {_at(first[0], zones.get(first[1]))}", f"latest   {_at(last[0], zones.get(last[1]))}"]


def _summary(console: Console, tally: Tally, elapsed: float, customers: int,
             zones: dict[str, ZoneInfo] | None = None) -> None:
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
    for line in deferred_range(tally.scheduled_for, zones or {}):
        table.add_row("scheduled (deferred)", line, "")
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
