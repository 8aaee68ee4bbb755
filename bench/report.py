"""The figures: a rich table on the terminal, ``results/latest.json``, and the change since the last run."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

# (key in "figures", label, detail, unit, higher is better)
Figure = tuple[str, str, str, str, bool]


def figures(results: dict) -> dict[str, float]:
    """The comparable numbers of a run, flat, for the table and for the delta against another run."""
    b, p = results["baseline"], results["pipeline"]
    found: dict[str, float] = {
        "baseline_rate": b["rate"],
        "pipeline_rate": p["rate"],
        "p_over_b": p["rate"] / b["rate"] if b["rate"] else 0.0,
        "baseline_cpu_us_per_record": b["cpu_us_per_record"],
        "worker_cpu_ms_per_event": p["cpu_ms_per_event"],
        "worker_cpu_share": p["cpu_share"],
        "worker_cpu_wait_share": p.get("cpu_wait_share", 0.0),
    }
    f = results.get("faust_passthrough")
    if f:
        found["faust_rate"] = f["rate"]
        found["p_over_f"] = p["rate"] / f["rate"] if f["rate"] else 0.0
        found["faust_cpu_us_per_record"] = f["cpu_us_per_record"]
    decision = results.get("decision")
    if decision:
        found["decision_us_per_event"] = decision["us_per_event"]
        found["decision_us_per_event_min"] = decision["us_per_event_min"]
    per_event = results.get("records_per_event")
    if per_event:
        found["records_written_per_event"] = per_event["written"]
        found["records_read_per_event"] = per_event["read"]
    for run in results.get("latency", []):
        share = round(run["share"] * 100)
        for q in ("p50", "p95", "p99"):
            found[f"latency_{q}_at_{share}"] = run[f"{q}_ms"]
    campaign = results.get("campaign")
    if campaign:
        for q in ("p50", "p95", "p99"):
            found[f"campaign_transactional_{q}"] = campaign[f"{q}_ms"]
        found["campaign_rate"] = campaign["campaign_rate"]
    if "ingest" in results:
        found["ingest_rate"] = results["ingest"]["rate"]
    gateway = results.get("gateway")
    if gateway:
        for key in ("rate", "whatsapp_rate", "email_rate", "transactional_p99_ms"):
            found[f"gateway_{key}"] = gateway[key]
    ready = results.get("pipeline_ready")
    if ready:
        found["rss_mib_pipeline"] = ready["rss_mib"]
    memory = results.get("memory")
    if memory:
        found["rss_mib_memory"] = memory["rss_mib"]
        found["recovery_rate"] = memory["recovery_rate"]
        if memory.get("bytes_per_customer"):
            found["bytes_per_customer"] = memory["bytes_per_customer"]
    return {k: round(v, 4) for k, v in found.items()}


def rows(results: dict) -> list[Figure]:
    p, b = results["pipeline"], results["baseline"]
    listed: list[Figure] = [
        ("baseline_rate", "B: aiokafka pass-through", f"{b['records']:,} records, 1 hop", "rec/s", True),
        ("pipeline_rate", "P: switchboard worker",
         f"{p['events']:,} events, {results['workload']['customers']:,} customers", "ev/s", True),
        ("p_over_b", "P/B", "events/s over pass-through records/s", "%", True),
    ]
    f = results.get("faust_passthrough")
    if f:
        listed += [
            ("faust_rate", "F: bare Faust agent",
             f"{f['records']:,} records: decode, dict lookup, encode, send_soon; take({f['batch']})", "rec/s", True),
            ("p_over_f", "P/F", "events/s over the bare Faust agent's records/s", "%", True),
            ("faust_cpu_us_per_record", "CPU per record, F", "Faust process", "µs", False),
        ]
    decision = results.get("decision")
    if decision:
        detail = (f"plain loop, no Kafka, {decision['events']:,} events × {decision['repetitions']}; "
                  f"{decision['outputs_per_event']:.2f} outputs/event")
        listed += [("decision_us_per_event", "decision code per event", detail + "; median", "µs", False),
                   ("decision_us_per_event_min", "decision code per event", "the same, fastest repetition", "µs",
                    False)]
    per_event = results.get("records_per_event")
    if per_event:
        def top(kind: str) -> str:
            ranked = sorted(per_event["topics"].items(), key=lambda item: -item[1][kind])[:3]
            return ", ".join(f"{name} {counts[kind]:.2f}" for name, counts in ranked if counts[kind] > 0)
        listed += [("records_written_per_event", "Kafka records written per event", "P: " + top("written"),
                    "rec", False),
                   ("records_read_per_event", "Kafka records read per event", "P: " + top("read"), "rec", False)]
    listed += [
        ("baseline_cpu_us_per_record", "CPU per record, B", "bench process", "µs", False),
        ("worker_cpu_ms_per_event", "CPU per event, P", "worker process", "ms", False),
        ("worker_cpu_share", "worker CPU use during P", "cores busy", "cores", True),
        ("worker_cpu_wait_share", "worker waiting for a CPU", "runnable, other load ran (schedstat)", "cores",
         False),
    ]
    for run in results.get("latency", []):
        share = round(run["share"] * 100)
        detail = (f"{share}% of P: {run['achieved_rate']:,.0f} ev/s, {run['commands']:,} commands, "
                  f"{run.get('worker_cpu_ms_per_event', 0):.2f} ms CPU/event")
        for q in ("p50", "p95", "p99"):
            listed.append((f"latency_{q}_at_{share}", f"event → command {q}", detail, "ms", False))
    campaign = results.get("campaign")
    if campaign:
        detail = (f"campaign to ~{campaign['store_customers']:,} customers at {campaign['campaign_rate']:,.0f} "
                  f"decisions/s; {campaign['feed_rate']:,.0f} ev/s fed, {campaign['transactional_commands']:,} "
                  f"order updates")
        for q in ("p50", "p95", "p99"):
            listed.append((f"campaign_transactional_{q}", f"transactional {q} during a campaign", detail, "ms",
                           False))
        listed.append(("campaign_rate", "campaign decisions meanwhile", "commands and suppressions", "/s", True))
    gateway = results.get("gateway")
    if gateway:
        backlog = gateway["channels"]["sms"]["backlog"]
        listed += [("gateway_rate", "SMS gateway process", f"provider calls, {backlog:,} commands, limit lifted",
                    "/s", True),
                   ("gateway_whatsapp_rate", "WhatsApp gateway process", "provider calls", "/s", True),
                   ("gateway_email_rate", "e-mail gateway process", "provider calls (SMTP)", "/s", True),
                   ("gateway_transactional_p99_ms", "gateway transactional p99",
                    f"order updates at {gateway['probe_rate']:.0f}/s while bulk drains; worst channel", "ms", False)]
    if "ingest" in results:
        i = results["ingest"]
        listed.append(("ingest_rate", "state ingest (agents)",
                       f"{i['records']:,} profiles + consent changes, {i['customers']:,} customers", "rec/s", True))
    ready = results.get("pipeline_ready")
    if ready:
        listed.append(("rss_mib_pipeline", "worker RSS, ready",
                       f"{results['workload']['customers']:,} customers, recovered in {ready['seconds']:.0f}s",
                       "MiB", False))
    memory = results.get("memory")
    if memory:
        listed.append(("rss_mib_memory", "worker RSS, ready",
                       f"{memory['customers']:,} customers (peak {memory['peak_rss_mib']:,.0f} MiB)", "MiB", False))
        if memory.get("bytes_per_customer"):
            listed.append(("bytes_per_customer", "memory per customer", "profile + folded consents, memory store",
                           "bytes", False))
        listed.append(("recovery_rate", "table recovery on start",
                       f"{memory['changelog_records']:,} changelog records in {memory['recovery_seconds']:.0f}s",
                       "rec/s", True))
    return listed


def _value(key: str, value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1%}"
    if unit in ("ms", "cores", "µs") or abs(value) < 100:
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{value:,.0f}"


def table(results: dict, previous: dict | None) -> Table:
    now = figures(results)
    before = figures(previous) if previous else {}
    title = (f"Switchboard bench — {results['machine']['cores']} cores, {results['machine']['ram_gib']} GiB, "
             f"Kafka {results['machine']['kafka']}, {results['run']['seconds']:.0f}s")
    out = Table(title=title)
    for column, justify in (("what", "left"), ("detail", "left"), ("value", "right"), ("unit", "left"),
                            ("previous", "right"), ("Δ", "right")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for key, label, detail, unit, higher_better in rows(results):
        value = now.get(key)
        if value is None:
            continue
        old = before.get(key)
        delta = ""
        if old:
            change = (value - old) / abs(old)
            better = change > 0 if higher_better else change < 0
            colour = "green" if better and abs(change) >= 0.05 else "red" if abs(change) >= 0.05 else "dim"
            delta = f"[{colour}]{change:+.0%}[/]"
        out.add_row(label, detail, _value(key, value, unit), unit,
                    _value(key, old, unit) if old is not None else "", delta)
    return out


def load_previous(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save(results: dict, results_dir: Path, label: str = "latest") -> Path:
    """Writes ``<label>.json`` and a timestamped copy beside it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False, default=str)
    (results_dir / f"run-{results['run']['id']}.json").write_text(text, encoding="utf-8")
    latest = results_dir / f"{label}.json"
    latest.write_text(text, encoding="utf-8")
    return latest


def records_table(results: dict) -> Table | None:
    """Where P's Kafka records go: per topic, written and read per storefront event."""
    per_event = results.get("records_per_event")
    if not per_event:
        return None
    out = Table(title=f"Kafka records per storefront event during P ({per_event['events']:,} events)")
    for column, justify in (("topic", "left"), ("written", "right"), ("read", "right")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    for topic, counts in sorted(per_event["topics"].items(), key=lambda item: -sum(item[1].values())):
        out.add_row(topic, f"{counts['written']:.3f}" if counts["written"] else "",
                    f"{counts['read']:.3f}" if counts["read"] else "")
    out.add_row("[bold]total[/]", f"[bold]{per_event['written']:.2f}[/]", f"[bold]{per_event['read']:.2f}[/]")
    return out


def print_report(console: Console, results: dict, previous: dict | None) -> None:
    console.print(table(results, previous))
    records = records_table(results)
    if records is not None:
        console.print(records)
    run = results["run"]
    console.print(f"Code {run.get('commit', '?')}"
                  + (f" with {run['uncommitted_pipeline_files']} uncommitted pipeline files"
                     if run.get("uncommitted_pipeline_files") else "")
                  + (f"; worker env {run['options']['worker_env']}" if run["options"].get("worker_env") else ""))
    if previous:
        console.print(f"Δ against the run of {previous['run']['started']} (code {previous['run'].get('commit', '?')}); "
                      "changes within ±5% are dimmed: this machine is noisy.")
    others = results.get("others_busy") or []
    hung = (results.get("pipeline_ready") or {}).get("restarts", 0) + (results.get("memory") or {}).get("restarts", 0)
    if hung:
        console.print(f"[yellow]{hung} worker start(s) hung idle without deciding and were restarted[/] "
                      "(see bench/pipeline.py); the ready times are those of the restarted process.")
    if results.get("error"):
        console.print(f"[red]Incomplete run[/] (figures above are those measured before): {results['error']}")
    if others:
        console.print("[yellow]Other processes used the CPU during this run[/] (CPU seconds; the figures may be "
                      "disturbed):")
        for proc in others:
            console.print(f"  {proc['cpu_s']:>7.1f}s  pid {proc['pid']}  {proc['cmd']}")
    else:
        console.print("No other process used more than 2 CPU seconds during the run.")
    profile = results.get("profile")
    if profile and profile.get("samples"):
        console.print(f"Profile of the worker under load ({profile['samples']:,} samples, {profile['svg']}):")
        for name, share in profile["by_package"][:8]:
            console.print(f"  {share:6.1%}  self in {name}")
        console.print("  top self frames:")
        for name, share in profile["top_self"][:8]:
            console.print(f"  {share:6.1%}  {name}")
        console.print("  our code, with what it calls:")
        for name, share in profile.get("top_ours", [])[:8]:
            console.print(f"  {share:6.1%}  {name}")
    elif profile:
        console.print(f"[yellow]No profile:[/] {profile.get('note')}")
