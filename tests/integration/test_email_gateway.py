"""The e-mail gateway on the real broker against the real (local) SMTP sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import httpx

from connectors.sandbox.smtp import SmtpSandboxScenario, serve
from schemas.catalog import CUSTOMER_CONSENTS
from schemas.customers import ConsentChange, ConsentSource
from schemas.messages import OutcomeReason
from schemas.types import Channel, Purpose
from streams.settings import Settings
from tests import factories as f
from tests.gateways import Harness, run, statuses
from tests.support import consume_until

pytestmark = pytest.mark.integration


@asynccontextmanager
async def smtp_sandbox(settings: Settings) -> AsyncIterator[str]:
    """The sandbox, handing its reports (DSNs, complaints) to the gateway's report intake."""
    reports_url = f"http://127.0.0.1:{settings.email.webhook_port}/email/reports"
    running = await serve("127.0.0.1", settings.sandbox.smtp_port, settings.sandbox.smtp_http_port,
                          SmtpSandboxScenario(reports_url=reports_url))
    try:
        yield running.http_base_url
    finally:
        await running.aclose()


def email_command(**overrides):
    values = dict(channel=Channel.EMAIL, to="zofia@example.com", locale="pl", sms=None,
                  subject="Zamówienie nr 1001 zostało wysłane",
                  body="Cześć Zofia,\n\nTwoje zamówienie nr 1001 zostało wysłane.\nŚledź przesyłkę: https://t.example/1")
    return f.command(**{**values, **overrides})


def test_email_arrives_with_text_and_html_parts_and_is_reported_sent(settings: Settings) -> None:
    command = email_command()

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "sent" in statuses(seen, command.message_id))
        [sent] = [o for o in outcomes if o.message_id == command.message_id]
        assert sent.provider == "smtp" and sent.provider_message_id == f"<{command.message_id}@switchboard.local>"
        [mail] = await h.sandbox_messages()
        assert mail["subject"] == command.subject and "Śledź przesyłkę" in mail["text"]
        assert '<p>Cześć Zofia,</p>' in mail["html"]
        assert mail["list_unsubscribe"] is None and "/unsubscribe/" not in mail["text"]  # transactional: no footer

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_marketing_email_carries_one_click_unsubscribe_headers_and_visible_links(settings: Settings) -> None:
    settings.preferences.public_base_url = "https://prefs.example"  # RFC 8058 one-click needs an https address
    command = email_command(purpose=Purpose.MARKETING, template="cart_reminder", subject="W Twoim koszyku coś zostało")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "sent" in statuses(seen, command.message_id))
        [mail] = await h.sandbox_messages()
        assert mail["list_unsubscribe"].startswith("<https://prefs.example/unsubscribe/")
        assert mail["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
        url = mail["list_unsubscribe"].strip("<>")
        assert f"Wypisz się z tych e-maili: {url}" in mail["text"]
        assert "Twoje preferencje wiadomości: https://prefs.example/preferences/" in mail["text"]
        assert f'<a href="{url}">Wypisz się z tych e-maili</a>' in mail["html"]
        assert '>Twoje preferencje wiadomości</a>' in mail["html"]

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_hebrew_email_html_is_right_to_left(settings: Settings) -> None:
    command = email_command(locale="he", subject="ההזמנה #1001 בדרך אליך", body="שלום,\n\nההזמנה #1001 נשלחה.")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "sent" in statuses(seen, command.message_id))
        [mail] = await h.sandbox_messages()
        assert mail["subject"] == "ההזמנה #1001 בדרך אליך" and 'dir="rtl"' in mail["html"]

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_bounced_address_is_a_failed_outcome_with_the_smtp_code(settings: Settings) -> None:
    command = email_command(to="bounce-me@example.com")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: statuses(seen, command.message_id))
        [failed] = [o for o in outcomes if o.message_id == command.message_id]
        assert failed.status == "failed" and failed.reason == OutcomeReason.PROVIDER_REJECTED
        assert failed.error_code == "550"

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_redelivered_email_command_is_sent_once(settings: Settings) -> None:
    command = email_command()
    marker = email_command(customer_id=command.customer_id, subject="marker")  # same partition: ordered after

    async def scenario(h: Harness) -> None:
        await h.send(command, command, command, marker)
        await h.outcomes(lambda seen: "sent" in statuses(seen, marker.message_id))
        subjects = [m["subject"] for m in await h.sandbox_messages()]
        assert subjects.count(command.subject) == 1 and subjects.count("marker") == 1

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_a_hard_bounce_reported_after_acceptance_makes_the_message_undelivered(settings: Settings) -> None:
    settings.preferences.public_base_url = "https://prefs.example"
    command = email_command(to="hardbounce-zofia@example.com", purpose=Purpose.MARKETING, template="cart_reminder")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: {"sent", "undelivered"} <= set(statuses(seen, command.message_id)))
        [bounced] = [o for o in outcomes if o.message_id == command.message_id and o.status == "undelivered"]
        assert (bounced.reason, bounced.error_code, bounced.customer_id) == (
            OutcomeReason.UNDELIVERED, "5.1.1", command.customer_id)
        assert bounced.detail == "hard bounce (DSN 5.1.1)" and await h.sandbox_messages() == []

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)


def test_a_spam_complaint_is_an_email_marketing_opt_out_on_the_consent_ledger(settings: Settings) -> None:
    settings.preferences.public_base_url = "https://prefs.example"
    command = email_command(purpose=Purpose.MARKETING, template="cart_reminder")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "sent" in statuses(seen, command.message_id))
        [mail] = await h.sandbox_messages()
        async with httpx.AsyncClient() as client:
            filed = await client.post(f"{h.sandbox_url}/_sandbox/complaints", json={"message_id": mail["message_id"]})
        assert filed.status_code == 200
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, h.names(CUSTOMER_CONSENTS),
                                          lambda seen: bool(seen), 60.0, ConsentChange)
        [(key, change)] = records
        assert key == command.customer_id.encode() and change.source == ConsentSource.PROVIDER
        assert (change.channel, change.purpose, change.state) == ("email", "marketing", "opted_out")
        assert change.evidence.inbound_message_id == command.message_id

    run(Channel.EMAIL, settings, smtp_sandbox, scenario)
