"""Production mode: a process that would use a development secret refuses to start, naming each one;
in development it starts and warns once, with names and never values."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from pydantic import BaseModel, SecretStr

from connectors.cli import main
from streams import production
from streams.settings import Settings
from tests.support import ROOT

# Every development secret, and a process that uses it (and so must refuse it).
DEVELOPMENT_SECRETS = [
    ("worker", "SWITCHBOARD_WORKER__COUPON_KEY"),
    ("worker", "SWITCHBOARD_WORKER__ERASURE_KEY"),
    ("gateway sms", "SWITCHBOARD_SMS__AUTH_TOKEN"),
    ("gateway sms", "SWITCHBOARD_SMS__VONAGE_API_SECRET"),
    ("gateway whatsapp", "SWITCHBOARD_WHATSAPP__ACCESS_TOKEN"),
    ("gateway whatsapp", "SWITCHBOARD_WHATSAPP__APP_SECRET"),
    ("gateway whatsapp", "SWITCHBOARD_WHATSAPP__VERIFY_TOKEN"),
    ("gateway sms", "SWITCHBOARD_CONTACTS__KEY"),
    ("gateway whatsapp", "SWITCHBOARD_CONTACTS__KEY"),
    ("preferences", "SWITCHBOARD_PREFERENCES__SECRET"),
    ("gateway email", "SWITCHBOARD_PREFERENCES__SECRET"),  # its unsubscribe links and e-mail reports
    ("preference-link", "SWITCHBOARD_PREFERENCES__SECRET"),
]
PRODUCTION_SECRETS = {name: f"prod-{name.lower()}" for _, name in DEVELOPMENT_SECRETS}
PRODUCTION_SECRETS["SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET"] = "prod-signature-secret"


def _argv(process: str) -> list[str]:
    return {"preference-link": ["preference-link", "cust-1", "--store", "store-1"]}.get(process, process.split())


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("SWITCHBOARD_ENV", "production")
    for name, value in PRODUCTION_SECRETS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.mark.parametrize(("process", "secret"), DEVELOPMENT_SECRETS)
def test_production_mode_refuses_each_development_secret_by_its_setting_name(
        production_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, process: str, secret: str) -> None:
    production_env.delenv(secret)  # back to the shipped default
    if secret.startswith("SWITCHBOARD_SMS__VONAGE"):
        production_env.setenv("SWITCHBOARD_SMS__PROVIDER", "vonage")
    code = main(_argv(process))
    err = capsys.readouterr().err
    assert code == 2 and f"switchboard {process}: " in err and secret in err and "Traceback" not in err
    assert {s for _, s in DEVELOPMENT_SECRETS if s in err} == {secret}  # only what still has a development value


def test_a_secret_set_to_its_development_value_is_refused_too(production_env: pytest.MonkeyPatch) -> None:
    default = Settings.model_fields["worker"].default.coupon_key.get_secret_value()
    production_env.setenv("SWITCHBOARD_WORKER__COUPON_KEY", default)
    assert production.development_secrets(Settings(), "worker") == ["SWITCHBOARD_WORKER__COUPON_KEY"]


def test_a_twilio_gateway_is_not_refused_for_vonages_sandbox_secret(production_env: pytest.MonkeyPatch) -> None:
    production_env.delenv("SWITCHBOARD_SMS__VONAGE_API_SECRET")
    production.check(Settings(), "gateway sms")  # Twilio is configured: Vonage's secret is not used


def test_production_mode_with_every_secret_set_starts(production_env: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture) -> None:
    assert main(_argv("preference-link")) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:8090/preferences/")


def test_in_development_a_process_warns_once_naming_settings_never_values(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings()
    with caplog.at_level(logging.WARNING, logger="streams.production"):
        production.check(settings, "gateway whatsapp")
    [line] = [r.getMessage() for r in caplog.records]
    assert all(name in line for name in ("SWITCHBOARD_WHATSAPP__ACCESS_TOKEN", "SWITCHBOARD_WHATSAPP__APP_SECRET",
                                         "SWITCHBOARD_WHATSAPP__VERIFY_TOKEN", "SWITCHBOARD_CONTACTS__KEY"))
    values = [settings.whatsapp.access_token, settings.whatsapp.app_secret, settings.whatsapp.verify_token,
              settings.contacts.key]
    assert not any(v.get_secret_value() in line for v in values)


def test_every_secret_with_a_shipped_default_is_checked_by_some_process() -> None:
    """A new secret with a development default must be added to production.SECRETS_OF, or this fails."""
    settings = Settings(sms={"provider": "vonage", "vonage_signature_secret": "x"})
    checked = {(section, field) for uses in production.SECRETS_OF.values() for section, field in uses(settings)}
    checked |= {(section, field) for uses in production.SECRETS_OF.values() for section, field in uses(Settings())}
    sections = {name: type(info.default) for name, info in Settings.model_fields.items()
                if isinstance(info.default, BaseModel)}
    with_defaults = {(name, field) for name, model in sections.items()
                     for field, info in model.model_fields.items() if isinstance(info.default, SecretStr)}
    assert with_defaults and with_defaults <= checked


def test_the_process_exits_non_zero_without_a_traceback() -> None:
    done = subprocess.run([sys.executable, "-m", "connectors.cli", "worker"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "SWITCHBOARD_ENV": "production"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "SWITCHBOARD_WORKER__COUPON_KEY" in done.stderr and "SWITCHBOARD_WORKER__ERASURE_KEY" in done.stderr
