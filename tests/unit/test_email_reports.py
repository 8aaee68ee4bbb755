"""Hard bounces (RFC 3464 DSN) and complaints (RFC 5965 ARF) as the sandbox makes them, read back, and taken
in by the e-mail gateway's report intake with a recording publisher: believed only for the message their
original's signed unsubscribe link names."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from connectors.gateways.email import request_for
from connectors.gateways.email_reports import EmailReports
from connectors.http_server import public_app
from connectors.providers.smtp import build_message
from connectors.sandbox.smtp_reports import abuse_complaint, delivery_failure
from connectors.webhooks.email_reports import Complaint, HardBounce, read_report
from schemas.catalog import TopicNames
from schemas.codec import codec_for
from schemas.customers import ConsentChange, ConsentSource
from schemas.messages import MessageOutcome
from schemas.types import Purpose
from streams.clock import VirtualClock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter
from streams.settings import HttpSettings, PreferenceSettings
from tests import factories as f
from tests.unit.test_marketing_email import email
from tests.unit.test_preference_web import RecordingPublisher

CONFIG = PreferenceSettings(public_base_url="https://prefs.example")
NOW = f.NOW
SENDER, TO = "bounces@shop.example", "zofia@example.com"


def original(**overrides) -> tuple[bytes, str]:
    command = email(**overrides)
    return build_message(request_for(command, CONFIG), SENDER, "switchboard.local").as_bytes(), command.message_id


def test_a_dsn_of_a_permanent_failure_is_a_hard_bounce_naming_our_message_and_its_signed_link() -> None:
    raw, message_id = original()
    report = read_report(delivery_failure(raw, SENDER, TO, NOW))
    assert isinstance(report, HardBounce) and (report.recipient, report.status) == (TO, "5.1.1")
    assert report.original.message_id == message_id
    assert report.original.list_unsubscribe.startswith("https://prefs.example/unsubscribe/")


def test_an_arf_abuse_report_is_a_complaint() -> None:
    raw, message_id = original()
    report = read_report(abuse_complaint(raw, SENDER, TO, NOW))
    assert isinstance(report, Complaint) and (report.feedback_type, report.recipient) == ("abuse", TO)
    assert report.original.message_id == message_id


def test_delays_temporary_failures_other_feedback_and_plain_mail_are_not_acted_on() -> None:
    raw, _ = original()
    dsn = delivery_failure(raw, SENDER, TO, NOW)
    assert read_report(dsn.replace(b"Action: failed", b"Action: delayed")) is None
    assert read_report(delivery_failure(raw, SENDER, TO, NOW, status="4.2.2", diagnostic="452 4.2.2 Full")) is None
    assert read_report(abuse_complaint(raw, SENDER, TO, NOW).replace(b"Feedback-Type: abuse",
                                                                     b"Feedback-Type: not-spam")) is None
    assert read_report(raw) is None and read_report(b"\xff\x00garbage") is None


def with_intake(test: Callable[[TestClient, RecordingPublisher], Awaitable[None]]) -> None:
    publisher = RecordingPublisher()
    names = TopicNames("p.")
    intake = EmailReports(CONFIG, "switchboard.local", publisher,
                          OutcomeWriter(publisher, names, Metrics(CollectorRegistry())), names, VirtualClock(NOW))

    async def run() -> None:
        async with TestClient(TestServer(public_app(intake.routes(), HttpSettings()))) as client:
            await test(client, publisher)

    asyncio.run(run())


def post(client: TestClient, report: bytes):
    return client.post("/email/reports", data=report, headers={"Content-Type": "message/rfc822"})


def test_a_hard_bounce_becomes_the_messages_undelivered_outcome() -> None:
    raw, message_id = original()

    async def test(client: TestClient, publisher: RecordingPublisher) -> None:
        assert (await post(client, delivery_failure(raw, SENDER, TO, NOW))).status == 202
        [(topic, _, value)] = publisher.records
        outcome = codec_for(MessageOutcome).decode(value)
        assert topic == "p.messages.outcomes" and outcome.message_id == message_id
        assert (outcome.status, outcome.reason, outcome.error_code) == ("undelivered", "undelivered", "5.1.1")
        assert outcome.detail == "hard bounce (DSN 5.1.1)" and outcome.channel == "email"

    with_intake(test)


def test_a_complaint_becomes_an_email_marketing_opt_out_with_its_proof() -> None:
    raw, message_id = original()

    async def test(client: TestClient, publisher: RecordingPublisher) -> None:
        assert (await post(client, abuse_complaint(raw, SENDER, TO, NOW))).status == 202
        [(topic, _, value)] = publisher.records
        change = codec_for(ConsentChange).decode(value)
        assert topic == "p.customers.consents" and change.source == ConsentSource.PROVIDER
        assert (change.channel, change.purpose, change.state) == ("email", "marketing", "opted_out")
        assert change.evidence.inbound_message_id == message_id and "abuse" in change.evidence.disclosure_text

    with_intake(test)


def test_forged_reports_are_refused_and_unsigned_or_unreadable_ones_change_nothing() -> None:
    raw, _ = original()
    transactional, _ = original(purpose=Purpose.TRANSACTIONAL)

    async def test(client: TestClient, publisher: RecordingPublisher) -> None:
        dsn = delivery_failure(raw, SENDER, TO, NOW)
        token = dsn.split(b"/unsubscribe/", 1)[1].split(b">", 1)[0]
        forged = dsn.replace(token, token[:-3] + (b"AAA" if not token.endswith(b"AAA") else b"BBB"))
        assert (await post(client, forged)).status == 403
        assert (await post(client, abuse_complaint(transactional, SENDER, TO, NOW))).status == 202
        assert (await post(client, b"not a report")).status == 202
        assert publisher.records == []

    with_intake(test)
