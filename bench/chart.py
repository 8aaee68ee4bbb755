"""The PNG: throughput of the bare pass-through (B) against the pipeline (P), and latency percentiles."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # after choosing the backend


def draw(results: dict, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [1, 1.4]})
    b, p = results["baseline"]["rate"], results["pipeline"]["rate"]
    bars = left.bar(["B: aiokafka\npass-through", "P: switchboard\nworker"], [b, p], color=["#9aa5b1", "#2f6fde"])
    left.bar_label(bars, labels=[f"{b:,.0f} rec/s", f"{p:,.0f} ev/s"], padding=3)
    left.set_ylabel("records (B) / events (P) per second, log scale")
    left.set_title(f"Throughput — P/B = {p / b:.1%}" if b else "Throughput")
    left.set_yscale("log")  # B is tens of times P: on a linear axis P's bar would not show
    left.set_ylim(max(min(b, p) / 3, 1), max(b, p) * 3)

    shares = results.get("latency", [])
    width = 0.8 / max(len(shares), 1)
    for i, run in enumerate(shares):
        xs = [x + (i - (len(shares) - 1) / 2) * width for x in range(3)]
        bars = right.bar(xs, [run["p50_ms"], run["p95_ms"], run["p99_ms"]], width,
                         label=f"{run['share']:.0%} of P ({run['achieved_rate']:,.0f} ev/s)")
        right.bar_label(bars, fmt="%.0f", padding=2, fontsize=8)
    right.set_xticks(range(3), ["p50", "p95", "p99"])
    right.set_ylabel("event → send command, ms, log scale")
    right.set_title("Latency at a paced feed")
    right.set_yscale("log")  # a saturated run is seconds, an unsaturated one tens of ms
    if shares:
        highest = max(max(r["p99_ms"], r["p50_ms"]) for r in shares)
        lowest = min(r["p50_ms"] for r in shares)
        right.set_ylim(max(lowest / 3, 0.1), highest * 6)
        right.legend(loc="upper left", fontsize=8)
    machine = results["machine"]
    fig.suptitle(f"Switchboard bench — {results['run']['started']} — {machine['cores']} cores, "
                 f"{machine['ram_gib']} GiB, Python {machine['python']}, Kafka {machine['kafka']}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
