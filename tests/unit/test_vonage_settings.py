"""Vonage as the SMS provider: a signature secret is required, and the receipt URL fits Vonage's 100 characters."""

import pytest
from pydantic import ValidationError

from connectors.gateways.inbound import Contacts
from connectors.gateways.sms import SmsSender
from connectors.providers.vonage import VonageSmsProvider
from streams.settings import Settings
from tests import factories as f


def test_vonage_without_a_signature_secret_refuses_to_start_naming_the_setting(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_SMS__PROVIDER", "vonage")
    monkeypatch.delenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET", raising=False)
    with pytest.raises(ValidationError, match="SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET is required"):
        Settings()
    monkeypatch.setenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET", "")
    with pytest.raises(ValidationError, match="VONAGE_SIGNATURE_SECRET"):
        Settings()


def test_vonage_with_a_secret_and_its_method_is_accepted_and_twilio_needs_no_vonage_secret(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_SMS__PROVIDER", "vonage")
    monkeypatch.setenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET", "dashboard-secret")
    monkeypatch.setenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_METHOD", "sha512")
    sms = Settings().sms
    assert (sms.vonage_signature_method, sms.vonage_receipt_max_age) == ("sha512", 300.0)
    monkeypatch.setenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_METHOD", "sha384")
    with pytest.raises(ValidationError, match="vonage_signature_method"):
        Settings()
    monkeypatch.setenv("SWITCHBOARD_SMS__PROVIDER", "twilio")
    monkeypatch.delenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_SECRET")
    monkeypatch.delenv("SWITCHBOARD_SMS__VONAGE_SIGNATURE_METHOD")
    assert Settings().sms.provider == "twilio"


def _sender(public_base_url: str) -> SmsSender:
    provider = VonageSmsProvider("key", "secret", "+15005550006", signature_secret="s")
    return SmsSender(provider, public_base_url, Contacts())


def test_the_vonage_receipt_url_names_no_message_and_stays_within_100_characters():
    base = "https://hooks.a-rather-long-retailer-domain.example.com/switchboard"
    callback = _sender(base).status_callback(f.command())
    assert callback == base + "/webhooks/vonage/dlr" and len(callback) <= 100


def test_a_public_url_that_would_make_the_vonage_receipt_url_too_long_is_refused():
    with pytest.raises(ValueError, match="100"):
        _sender("https://" + "h" * 70 + ".example")
