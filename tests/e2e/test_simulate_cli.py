"""``switchboard simulate``: the offline replay through the CLI, as a user runs it (no Kafka)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.e2e

SAMPLE = "deploy/journeys/examples/abandoned_cart.jsonl"


def switchboard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}  # the shipped defaults
    return subprocess.run([sys.executable, "-m", "connectors.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_the_sample_prints_what_would_be_sent_suppressed_and_scheduled():
    result = switchboard("simulate", SAMPLE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def line_of(*words: str) -> str:
        [found] = [line for line in lines if all(word in line for word in words)]
        return found

    assert "Tue 08:00 EST" in line_of("ana", "scheduled for 2026-11-24 13:00", "quiet_hours")
    assert "deferred send" in line_of("2026-11-24 13:00", "ana", "abandoned_cart/sms", "sms", "sent")
    assert line_of("zofia", "abandoned_cart/sms", "receipt: undelivered")
    assert line_of("2026-11-24 11:02", "zofia", "abandoned_cart/email", "email", "sent")
    assert line_of("daan", "journey exited on order_placed")
    assert line_of("daan", "order_confirmation/confirm", "whatsapp", "sent")
    assert line_of("sara", "abandoned_cart/sms", "suppressed: opted_out")
    assert not [line for line in lines if "daan" in line and "cart_reminder" in line]  # he ordered first
    summary = lines[next(i for i, line in enumerate(lines) if "summary" in line):]
    assert any("scheduled" in line and "quiet_hours" in line and line.rstrip(" │").endswith("1") for line in summary)
    assert any("sent" in line and "email" in line and line.rstrip(" │").endswith("2") for line in summary)


def test_json_output_is_one_record_a_line_ending_with_the_summary():
    result = switchboard("simulate", SAMPLE, "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[-1]["type"] == "summary" and records[-1]["pending"] == {}
    sent = [r for r in records if r["type"] == "message" and r["decision"] == "sent"]
    assert {(r["customer_id"], r["step"], r["channel"]) for r in sent} == {
        ("zofia", "sms", "sms"), ("zofia", "email", "email"), ("ana", "sms", "sms"), ("sara", "email", "email"),
        ("daan", "confirm", "whatsapp")}
    assert result.stdout == switchboard("simulate", SAMPLE, "--json").stdout  # deterministic


def test_a_bad_line_exits_1_naming_its_line(tmp_path: Path):
    lines = (ROOT / SAMPLE).read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("{"))
    lines.insert(at + 1, '{"type": "event", "event_type": "cart_abandoned", "customer_id": "zofia"}')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = switchboard("simulate", str(bad))
    assert result.returncode == 1
    assert f"line {at + 2}: event:" in result.stderr and "cart_abandoned needs a cart" in result.stderr
    assert result.stdout == ""


def test_input_on_stdin_and_a_horizon():
    profile = {"type": "profile", "at": "2026-11-24T09:00:00Z", "customer_id": "c1", "store_id": "s",
               "phone": "+48601234567", "time_zone": "Europe/Warsaw"}
    cart = {"type": "event", "at": "2026-11-24T10:00:00Z", "event_type": "cart_abandoned", "customer_id": "c1",
            "cart": {"cart_id": "1", "cart_url": "https://shop.example/c/1", "total_minor": 1, "currency": "PLN"}}
    result = switchboard("simulate", "-", "--until", "30m", "--json",
                         stdin=f"{json.dumps(profile)}\n{json.dumps(cart)}\n")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["until"] == "2026-11-24T10:30:00Z" and summary["pending"] == {"journey waits": 1}
    assert switchboard("simulate", "-", "--until", "soon").returncode == 2  # argparse: not a duration nor a time


def test_the_storefront_feed_is_now_switchboard_feed():
    result = switchboard("feed", "--help")
    assert result.returncode == 0 and "--customers" in result.stdout and "--rate" in result.stdout
    assert "FILE" in switchboard("simulate", "--help").stdout.upper()
