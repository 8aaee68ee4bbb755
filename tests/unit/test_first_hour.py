"""Specs for a new user's first hour (issue #16): ports that follow one setting, a demo whose terminal
shows the demo and not the Kafka clients, a deferred range that says something, and campaign runs."""

from __future__ import annotations

import datetime as dt
import io
import logging
import socket
from zoneinfo import ZoneInfo

import pytest

from connectors.campaign import campaign_id, earlier_launches, launch_record
from connectors.cli import parser
from connectors.demo import run as demo_run
from streams import ids
from streams.settings import PORT_OFFSETS, Settings
from tests import factories as f
from tests.support import ROOT

UTC = dt.timezone.utc
SYDNEY = ZoneInfo("Australia/Sydney")
WARSAW = ZoneInfo("Europe/Warsaw")
CAMPAIGN = (ROOT / "deploy" / "campaigns" / "flash30.yaml").read_text(encoding="utf-8")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)
    return monkeypatch


# --- settings that follow each other ---------------------------------------------------------------

def test_ports_from_moves_every_port_and_every_url_that_names_one(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SWITCHBOARD_PORTS_FROM", "29000")
    s = Settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:29000"  # its controller takes 29001 (kafka.sh)
    assert s.worker.web_port == 29002
    assert (s.sms.webhook_port, s.whatsapp.webhook_port, s.email.webhook_port) == (29003, 29004, 29005)
    assert (s.sandbox.port, s.sandbox.whatsapp_port, s.sandbox.vonage_port, s.sandbox.smtp_port,
            s.sandbox.smtp_http_port) == (29006, 29007, 29008, 29009, 29010)
    assert s.preferences.port == 29011
    assert (s.sms.admin_port, s.whatsapp.admin_port, s.email.admin_port, s.preferences.admin_port) == (
        29012, 29013, 29014, 29015)
    assert s.sms.api_base_url == "http://127.0.0.1:29006"
    assert s.sms.vonage_api_base_url == "http://127.0.0.1:29008"
    assert s.sms.public_base_url == "http://127.0.0.1:29003"
    assert s.whatsapp.api_base_url == "http://127.0.0.1:29007"
    assert s.whatsapp.public_base_url == "http://127.0.0.1:29004"
    assert s.email.port == 29009
    assert s.preferences.public_base_url == "http://127.0.0.1:29011"
    used = [29000 + offset for offset in PORT_OFFSETS.values()]
    assert len(set(used)) == len(used) and 29001 not in used  # no two share a port; the controller's is free


def test_admin_servers_bind_loopback_unless_the_admin_host_is_set(clean_env: pytest.MonkeyPatch) -> None:
    assert (Settings().http.admin_host, Settings().worker.web_host) == ("127.0.0.1", "127.0.0.1")
    clean_env.setenv("SWITCHBOARD_HTTP__ADMIN_HOST", "10.0.0.5")
    assert Settings().worker.web_host == "10.0.0.5"  # faust's web server is the worker's admin server
    clean_env.setenv("SWITCHBOARD_WORKER__WEB_HOST", "0.0.0.0")
    assert Settings().worker.web_host == "0.0.0.0"  # a value set is kept


def test_a_value_set_is_kept_and_the_urls_follow_the_ports_without_ports_from(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SWITCHBOARD_PORTS_FROM", "29000")
    clean_env.setenv("SWITCHBOARD_SMS__PUBLIC_BASE_URL", "https://hooks.shop.example")
    clean_env.setenv("SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092")
    s = Settings()
    assert (s.sms.public_base_url, s.kafka.bootstrap_servers) == ("https://hooks.shop.example", "kafka-1:9092")

    clean_env.delenv("SWITCHBOARD_PORTS_FROM")
    clean_env.setenv("SWITCHBOARD_SANDBOX__PORT", "18099")
    clean_env.setenv("SWITCHBOARD_WHATSAPP__WEBHOOK_PORT", "18096")
    s = Settings()
    assert s.sms.api_base_url == "http://127.0.0.1:18099"  # the gateway calls the sandbox where it listens
    assert s.whatsapp.public_base_url == "http://127.0.0.1:18096"  # the sandbox calls the gateway back there
    assert s.kafka.bootstrap_servers == "kafka-1:9092"


def test_without_any_port_setting_the_defaults_stay_what_they_were(clean_env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert (s.kafka.bootstrap_servers, s.sms.api_base_url, s.sms.public_base_url, s.whatsapp.api_base_url,
            s.whatsapp.public_base_url, s.email.port) == ("127.0.0.1:9092", "http://127.0.0.1:8099",
                                                          "http://127.0.0.1:8098", "http://127.0.0.1:8095",
                                                          "http://127.0.0.1:8096", 1025)


def test_a_bind_all_host_is_not_put_in_a_derived_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SWITCHBOARD_SMS__WEBHOOK_HOST", "0.0.0.0")
    assert Settings().sms.public_base_url == "http://127.0.0.1:8098"


def test_every_process_command_takes_ports_from() -> None:
    for command in (["demo"], ["sandbox", "twilio"], ["gateway", "sms"], ["worker"], ["status"], ["broker", "start"]):
        assert parser().parse_args([*command, "--ports-from", "29000"]).ports_from == 29000
    with pytest.raises(SystemExit):
        parser().parse_args(["demo", "--ports-from", "65530"])  # its last port would not exist


# --- the demo's terminal ----------------------------------------------------------------------------

def test_the_broker_check_answers_at_once_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka

    def no_client(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Kafka client retries a refused bootstrap: the check must not start one")

    monkeypatch.setattr(kafka, "KafkaAdminClient", no_client)
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        assert demo_run._broker_answers(f"127.0.0.1:{s.getsockname()[1]}") is False


@pytest.mark.parametrize("verbose", [False, True])
def test_the_kafka_clients_lines_go_to_the_log_file_and_reach_the_terminal_only_when_verbose(
        tmp_path, verbose: bool) -> None:
    root = logging.getLogger()
    terminal_text = io.StringIO()
    terminal = logging.StreamHandler(terminal_text)
    saved = root.handlers[:], root.level
    root.handlers[:] = [terminal]
    root.setLevel(logging.INFO)
    file_handler = demo_run.log_to(tmp_path / "demo.log", verbose)
    try:
        logging.getLogger("kafka.conn").error("Connect attempt returned error 111. Disconnecting.")
        logging.getLogger("aiokafka.consumer").warning("Heartbeat failed")
        logging.getLogger("streams.topics").info("topics: 55 created")
        logging.getLogger("connectors.demo.processes").warning("worker did not stop in 20s: killing it")
    finally:
        root.removeHandler(file_handler)
        file_handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    shown, kept = terminal_text.getvalue(), (tmp_path / "demo.log").read_text(encoding="utf-8")
    assert "worker did not stop" in shown and "topics: 55 created" not in shown
    assert ("error 111" in shown and "Heartbeat failed" in shown) is verbose
    assert ("error 111" in shown or "Heartbeat failed" in shown) is verbose
    for line in ("error 111", "Heartbeat failed", "topics: 55 created", "worker did not stop"):
        assert line in kept


def test_deferred_sends_at_one_moment_are_said_to_be_at_that_moment_in_utc_and_locally() -> None:
    at = dt.datetime(2026, 12, 3, 21, 0, 12, tzinfo=UTC)
    lines = demo_run.deferred_range([(at, "c1"), (at.replace(second=40), "c2")], {"c1": SYDNEY, "c2": SYDNEY})
    assert lines == ["all 2 at Thu 21:00 UTC (Fri 08:00 Australia/Sydney)"]


def test_deferred_sends_over_a_range_show_its_earliest_and_latest_in_utc_and_the_customers_local_time() -> None:
    early, late = dt.datetime(2026, 12, 3, 21, 0, tzinfo=UTC), dt.datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    lines = demo_run.deferred_range([(late, "pl"), (early, "au")], {"au": SYDNEY, "pl": WARSAW})
    assert lines == ["earliest Thu 21:00 UTC (Fri 08:00 Australia/Sydney)",
                     "latest   Fri 07:00 UTC (Fri 08:00 Europe/Warsaw)"]
    assert demo_run.deferred_range([], {}) == []


# --- campaign runs -----------------------------------------------------------------------------------

def test_a_campaigns_first_run_keeps_its_id_and_each_later_run_has_a_new_deterministic_one() -> None:
    first, second = launch_record(CAMPAIGN, f.NOW), launch_record(CAMPAIGN, f.NOW, run=2)
    assert first.campaign_id == ids.message_id("demo-store", "campaign:flash30")  # the id earlier launches had
    assert second.campaign_id == launch_record(CAMPAIGN, f.NOW + dt.timedelta(days=30), run=2).campaign_id
    assert len({first.campaign_id, second.campaign_id, campaign_id("demo-store", "flash30", 3)}) == 3
    with pytest.raises(ValueError):
        campaign_id("demo-store", "flash30", 0)


def test_an_earlier_launch_of_the_same_id_is_found_with_the_next_free_run() -> None:
    first = launch_record(CAMPAIGN, f.NOW)
    second = launch_record(CAMPAIGN, f.NOW + dt.timedelta(days=1), run=2)
    on_topic = [first, first, first, second, second, second]  # one record per partition each
    earlier, next_run = earlier_launches(launch_record(CAMPAIGN, f.NOW + dt.timedelta(days=30)), on_topic)
    assert ([e.launched_at for e in earlier], next_run) == ([f.NOW], 3)
    assert earlier_launches(first, []) == ([], 1)
