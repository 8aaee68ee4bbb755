"""``switchboard simulate FILE``: replay a JSON-lines file through the journeys offline and print what
would be sent, suppressed or scheduled (the replay itself is :mod:`streams.simulation`; no Kafka).

    switchboard simulate deploy/journeys/examples/abandoned_cart.jsonl
    switchboard simulate my-day.jsonl --stores deploy/stores/demo.yaml --until 3d --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the heavy imports wait until the command runs: every other subcommand parses this parser
    from rich.console import Console
    from rich.text import Text

    from streams.settings import Settings
    from streams.simulation import Report, Row


def until_arg(value: str) -> dt.timedelta | dt.datetime:
    """``--until``: a duration after the last input (``30d``, ``36h``) or a time (ISO 8601 with a zone)."""
    from pydantic import TypeAdapter, ValidationError

    from schemas.types import Timestamp
    from streams.journeys.definitions import parse_duration

    try:
        return parse_duration(value)
    except ValueError:
        pass
    try:
        return TypeAdapter(Timestamp).validate_python(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a duration (30d, 36h, 90m) nor a time with a zone (2026-12-01T00:00:00Z)") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="replay a JSON-lines file of records through the journeys, offline",
                       description="Replays profiles, consents, storefront events, replies and scripted receipts "
                                   "through the journeys and the policy on a virtual clock (no Kafka) and prints "
                                   "what would be sent to whom, when and on which channel, and what was "
                                   "suppressed or scheduled and why. The input format is described in "
                                   "streams/simulation.py; deploy/journeys/examples/ has a sample.")
    p.add_argument("file", help="JSON lines, one record each ('-': standard input)")
    p.add_argument("--journeys", type=Path, default=None,
                   help="journey directory (default: SWITCHBOARD_WORKER__JOURNEYS_DIR, else deploy/journeys)")
    p.add_argument("--stores", type=Path, default=None,
                   help="store rules YAML (default: SWITCHBOARD_WORKER__STORES_FILE, else built-in defaults)")
    p.add_argument("--until", type=until_arg, default=None,
                   help="stop at this time, or this long after the last input (default: 30d)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console

    from streams.errors import ConfigurationError
    from streams.journeys.loader import load_dir
    from streams.policy import PolicyConfig
    from streams.simulation import SimulationInputError, parse_lines, simulate
    from streams.stores import StoreDirectory

    try:
        if args.file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"simulate: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    try:
        journeys = load_dir(args.journeys or settings.worker.journeys_dir)
        stores = StoreDirectory.load(args.stores or settings.worker.stores_file)
    except ConfigurationError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    try:
        inputs = parse_lines(lines, journeys)
    except SimulationInputError as exc:
        for problem in exc.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 1
    config = PolicyConfig(default_country=settings.worker.default_country,
                          smart_encoding=settings.worker.smart_encoding)
    report = simulate(inputs, journeys, stores, until=args.until, config=config,
                      coupon_secret=settings.worker.coupon_key.get_secret_value().encode())
    if args.json:
        for row in report.rows:
            print(json.dumps(row.as_json(), ensure_ascii=False))
        print(json.dumps({"type": "summary", "counts": [{"what": w, "detail": d, "count": n}
                                                         for w, d, n in report.summary()],
                          "until": _iso(report.until), "stopped_at": _iso(report.stopped_at),
                          "pending": report.pending}, ensure_ascii=False))
        return 0
    console = Console()
    if not console.is_terminal:
        console = Console(width=1000)  # piped: the tables' natural width, each row on one line
    print_report(console, report, args.file)
    return 0


def _iso(at: dt.datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _utc(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _local(at: dt.datetime, zone: str | None) -> str:
    if zone is None:
        return ""
    local = at.astimezone(ZoneInfo(zone))
    return f"{local:%a %H:%M} {local.tzname()}"


_STYLE = {"sent": "green", "suppressed": "red", "scheduled": "yellow"}


def decision_text(row: Row) -> Text:
    from rich.text import Text

    match row.kind:
        case "message" if row.decision == "scheduled" and row.scheduled_for is not None:
            text = f"scheduled for {_utc(row.scheduled_for)} ({_local(row.scheduled_for, row.zone)}): {row.reason}"
        case "message" if row.decision == "suppressed":
            text = f"suppressed: {row.reason}"
        case "message":
            text = row.decision
        case "receipt":
            text = f"receipt: {row.decision}"
        case "journey":
            text = f"journey {row.decision}" + (f" on {row.reason}" if row.reason else "")
        case _:
            text = f"consent {row.purpose}: {row.decision} ({row.reason})"
    style = _STYLE.get(row.decision, "cyan") if row.kind == "message" else "cyan" if row.kind == "receipt" else "dim"
    return Text(text, style=style)


def print_report(console: Console, report: Report, source: str) -> None:
    from rich.table import Table

    if not report.rows:
        console.print(f"{source}: nothing happened (no inputs, or none that start a journey)")
    table = Table(title=f"switchboard simulate — {source}", show_lines=False)
    for name, options in (("time (UTC)", {"no_wrap": True}), ("local", {"no_wrap": True}),
                          ("customer", {}), ("journey / step", {}), ("channel", {}), ("template", {}),
                          ("decision", {}), ("coupon", {}), ("variant", {}), ("note", {"style": "dim"})):
        table.add_column(name, **options)
    for row in report.rows:
        where = "/".join(p for p in (row.journey, row.step) if p)
        channel = row.channel or (f"({', '.join(row.channels)})" if row.channels else "—")
        table.add_row(_utc(row.at), _local(row.at, row.zone), row.customer_id, where or "—", channel,
                      row.template or "—", decision_text(row), row.coupon_code or "", row.variant or "",
                      row.note or "")
    if report.rows:
        console.print(table)
    summary = Table(title="summary")
    summary.add_column("what", style="bold")
    summary.add_column("detail")
    summary.add_column("count", justify="right")
    for what, detail, count in report.summary():
        summary.add_row(what, detail, str(count))
    for what, count in report.pending.items():
        summary.add_row("still pending", what, str(count))
    console.print(summary)
    if report.until is not None and report.stopped_at is not None:
        console.print(f"replayed up to {_utc(report.stopped_at)} UTC (horizon {_utc(report.until)} UTC)")
