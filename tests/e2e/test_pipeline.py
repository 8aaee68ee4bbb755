"""End to end through the public surface only: the CLI, the topics, the sandbox's HTTP API, /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.catalog import MESSAGE_OUTCOMES, TopicNames
from schemas.messages import MessageOutcome
from streams.journeys.engine import message_id
from streams.settings import Settings
from tests.support import ROOT, Child, consume_until, env_of, http_ok, make_settings, wait_until

pytestmark = pytest.mark.e2e


def cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connectors.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **env_of(settings)}, timeout=120)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_settings(kafka_bootstrap, tmp_path_factory.mktemp("e2e"))
    logs: Path = settings.worker.data_dir.parent
    assert cli(settings, "topics", "create").returncode == 0
    children = [Child(["sandbox", provider, "--fail-rate", "0"], settings, logs / f"sandbox-{provider}.log")
                for provider in ("twilio", "whatsapp", "smtp")]
    gateways = [Child(["gateway", channel], settings, logs / f"gateway-{channel}.log")
                for channel in ("sms", "whatsapp", "email")]
    children += [*gateways, Child(["worker", "--loglevel", "warn"], settings, logs / "worker.log")]
    try:
        for gateway, port in zip(gateways, (settings.sms.webhook_port, settings.whatsapp.webhook_port,
                                            settings.email.webhook_port)):
            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), 60, "gateway up", gateway)
        yield settings
    finally:
        for child in children:
            child.stop()


PROFILE = {"customer_id": "c-e2e-1", "store_id": "store-1", "first_name": "Zofia", "locale": "pl",
           "phone": "+48601234567", "channel_preferences": ["sms"], "updated_at": "2026-11-22T10:00:00Z"}
EVENT = {"event_id": "ev-e2e-1", "event_type": "order_shipped", "store_id": "store-1", "customer_id": "c-e2e-1",
         "occurred_at": "2026-11-22T11:00:00Z",
         "order": {"order_id": "PL-7781", "total_minor": 15900, "currency": "PLN",
                   "tracking_url": "https://track.example/PL-7781", "carrier": "InPost"}}


def test_shipped_order_reaches_the_provider_and_comes_back_delivered(system: Settings) -> None:
    assert cli(system, "produce", "customers.profiles", stdin=json.dumps(PROFILE)).returncode == 0
    from tests.support import wait_for_worker

    wait_for_worker(system, [TopicNames(system.kafka.topic_prefix)("customers.profiles")])
    assert cli(system, "produce", "storefront.events", stdin=json.dumps(EVENT)).returncode == 0

    expected = message_id("ev-e2e-1", "shipping_update", "notify")
    outcomes = consume_until(system.kafka.bootstrap_servers, TopicNames(system.kafka.topic_prefix)(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == expected and o.status == "delivered" for _, o in seen),
                             model=MessageOutcome)
    statuses = [o.status for _, o in outcomes if o.message_id == expected]
    assert statuses == ["sent", "delivered"]
    [message] = json.loads(get(f"{system.sms.api_base_url}/_sandbox/messages"))
    assert message["to"] == "+48601234567" and "PL-7781" in message["body"] and "Zofia" in message["body"]

    worker_metrics = get(f"http://127.0.0.1:{system.worker.web_port}/metrics")
    assert 'switchboard_send_commands_total{channel="sms"} 1.0' in worker_metrics
    gateway_metrics = get(f"http://127.0.0.1:{system.sms.admin_port}/metrics")
    assert 'switchboard_provider_calls_total{provider="twilio",result="accepted"} 1.0' in gateway_metrics
    assert "+48601234567" not in worker_metrics + gateway_metrics  # no personal data in metrics


def test_an_sms_the_carrier_cannot_deliver_is_followed_by_an_email(system: Settings) -> None:
    profile = {**PROFILE, "customer_id": "c-e2e-2", "phone": "+48601230005", "email": "zofia@example.com",
               "channel_preferences": ["sms", "email"]}
    event = {**EVENT, "event_id": "ev-e2e-2", "customer_id": "c-e2e-2"}
    assert cli(system, "produce", "customers.profiles", stdin=json.dumps(profile)).returncode == 0
    from tests.support import wait_for_worker

    wait_for_worker(system, [TopicNames(system.kafka.topic_prefix)("customers.profiles")])
    assert cli(system, "produce", "storefront.events", stdin=json.dumps(event)).returncode == 0

    expected = message_id("ev-e2e-2", "shipping_update", "notify")
    outcomes = consume_until(system.kafka.bootstrap_servers, TopicNames(system.kafka.topic_prefix)(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == expected and o.channel == "email" for _, o in seen),
                             model=MessageOutcome)
    story = [(o.channel, o.status) for _, o in outcomes if o.message_id == expected]
    assert story == [("sms", "sent"), ("sms", "undelivered"), ("email", "sent")]
    mails = json.loads(get(f"http://127.0.0.1:{system.sandbox.smtp_http_port}/_sandbox/messages"))
    assert any("PL-7781" in m["text"] for m in mails)


def test_an_undeliverable_whatsapp_falls_back_to_one_delivered_sms(system: Settings) -> None:
    profile = {**PROFILE, "customer_id": "c-e2e-3", "phone": "+48601230026", "whatsapp": "+48601230026",
               "channel_preferences": ["whatsapp", "sms"]}  # the WhatsApp sandbox cannot deliver to …0026
    event = {**EVENT, "event_id": "ev-e2e-3", "customer_id": "c-e2e-3"}
    assert cli(system, "produce", "customers.profiles", stdin=json.dumps(profile)).returncode == 0
    from tests.support import wait_for_worker

    wait_for_worker(system, [TopicNames(system.kafka.topic_prefix)("customers.profiles")])
    assert cli(system, "produce", "storefront.events", stdin=json.dumps(event)).returncode == 0

    expected = message_id("ev-e2e-3", "shipping_update", "notify")
    outcomes = consume_until(system.kafka.bootstrap_servers, TopicNames(system.kafka.topic_prefix)(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == expected and (o.channel, o.status) == ("sms", "delivered")
                                              for _, o in seen), model=MessageOutcome)
    story = [(o.channel, o.status, o.error_code) for _, o in outcomes if o.message_id == expected]
    assert story == [("whatsapp", "sent", None), ("whatsapp", "failed", "131026"), ("sms", "sent", None),
                     ("sms", "delivered", None)]
    sms_to_customer = [m for m in json.loads(get(f"{system.sms.api_base_url}/_sandbox/messages"))
                       if m["to"] == "+48601230026"]
    assert len(sms_to_customer) == 1


def test_bad_event_is_refused_by_the_producer_with_a_clear_error(system: Settings) -> None:
    bad = {**EVENT, "event_id": "ev-e2e-bad", "order": None}
    result = cli(system, "produce", "storefront.events", stdin=json.dumps(bad) + "\n{not json\n")

    assert result.returncode == 1
    assert "line 1: invalid event" in result.stderr and "order_shipped needs an order" in result.stderr
    assert "line 2: not JSON" in result.stderr


def test_sms_info_reports_encoding_and_segments_as_json(system: Settings) -> None:
    texts = ["המשלוח שלך יגיע היום בין 14:00-16:00. עקוב אחר החבילה: [קישור]", "Your order has shipped"]
    result = cli(system, "sms-info", "--json", stdin=json.dumps(texts, ensure_ascii=False))

    infos = json.loads(result.stdout)
    assert [(i["encoding"], i["segments"]) for i in infos] == [("UCS-2", 1), ("GSM-7", 1)]


def test_demo_runs_to_its_summary_and_leaves_no_process_behind(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = make_settings(kafka_bootstrap, tmp_path)
    env = {**env_of(settings)}
    env.pop("SWITCHBOARD_KAFKA__TOPIC_PREFIX")  # the demo picks a prefix of its own per run
    result = subprocess.run([sys.executable, "-m", "connectors.cli", "demo", "--customers", "150", "--timeout", "150"],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=400)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("send commands", "suppressed", "delivered", "dead letters", "p99", "All processes stopped"):
        assert line in result.stdout, result.stdout[-3000:]
    for url in (f"{settings.sms.public_base_url}/health", f"http://127.0.0.1:{settings.worker.web_port}/metrics",
                f"http://127.0.0.1:{settings.sandbox.port}/_sandbox/stats"):
        assert not http_ok(url), f"{url} still answers after the demo ended"


def test_ctrl_c_during_the_demo_stops_every_process_it_started(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = make_settings(kafka_bootstrap, tmp_path)
    env = {**os.environ, **env_of(settings)}
    env.pop("SWITCHBOARD_KAFKA__TOPIC_PREFIX")
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        demo = subprocess.Popen([sys.executable, "-m", "connectors.cli", "demo", "--customers", "2000", "--rate", "50"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            wait_until(lambda: http_ok(f"{settings.sms.public_base_url}/health"), 120, "demo's gateway up")
            wait_until(lambda: http_ok(f"http://127.0.0.1:{settings.worker.web_port}/metrics"), 120, "demo's worker up")
            demo.send_signal(signal.SIGINT)
            assert demo.wait(120) == 130, log.read_text()[-3000:]
        finally:
            if demo.poll() is None:
                demo.kill()
    text = log.read_text()
    assert "Interrupted" in text and "All processes stopped." in text
    for url in (f"{settings.sms.public_base_url}/health", f"http://127.0.0.1:{settings.worker.web_port}/metrics",
                f"http://127.0.0.1:{settings.sandbox.port}/_sandbox/stats"):
        assert not http_ok(url), f"{url} still answers after Ctrl-C"
