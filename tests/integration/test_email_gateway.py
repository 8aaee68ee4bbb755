"""The e-mail gateway on the real broker against the real (local) SMTP sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from connectors.sandbox.smtp import serve
from schemas.messages import OutcomeReason
from schemas.types import Channel
from streams.settings import Settings
from tests import factories as f
from tests.gateways import Harness, run, statuses

pytestmark = pytest.mark.integration


@asynccontextmanager
async def smtp_sandbox(settings: Settings) -> AsyncIterator[str]:
    running = await serve("127.0.0.1", settings.sandbox.smtp_port, settings.sandbox.smtp_http_port)
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
