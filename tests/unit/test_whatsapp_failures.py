"""A ``failed`` WhatsApp status — Meta's asynchronous errors — becomes a failed outcome with its reason, and the
worker's fallback takes the message to its next channel."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from connectors.gateways.whatsapp import callback_data, failure_reason, receipt_outcome
from connectors.webhooks.meta_events import WhatsAppStatus
from schemas.codec import encode
from schemas.messages import OutcomeReason, OutcomeStatus
from schemas.types import Channel
from streams import fallback
from tests import factories as f


def failed_status(command, code: str | None) -> WhatsAppStatus:
    return WhatsAppStatus(provider_message_id="wamid.X", status="failed", timestamp=1, recipient_id="31612345678",
                          error_code=code, callback_data=callback_data(command))


@pytest.mark.parametrize("code, reason", [
    ("131047", OutcomeReason.PROVIDER_REJECTED),  # outside the 24-hour window: accepted, then failed
    ("131026", OutcomeReason.UNDELIVERED),  # not on WhatsApp
    ("131049", OutcomeReason.PROVIDER_REJECTED),  # marketing per-user limit
    ("132001", OutcomeReason.PROVIDER_REJECTED),  # template
    ("130429", OutcomeReason.PROVIDER_FAILED),  # throughput
    ("131000", OutcomeReason.PROVIDER_FAILED),
    ("190", OutcomeReason.PROVIDER_FAILED),  # the token
    (None, OutcomeReason.PROVIDER_FAILED),
])
def test_a_failed_status_becomes_a_failed_outcome_with_the_codes_reason(code, reason) -> None:
    command = f.command(channel=Channel.WHATSAPP)
    status = failed_status(command, code)
    outcome = receipt_outcome(status, OutcomeStatus.FAILED, parse_qs(status.callback_data), f.NOW, None)
    assert (outcome.message_id, outcome.status, outcome.reason, outcome.error_code) == (
        command.message_id, OutcomeStatus.FAILED, reason, code)
    assert outcome.detail == failure_reason(code)[1] and "31612345678" not in outcome.detail


def test_a_131047_reported_late_falls_back_to_the_next_channel() -> None:
    intent = f.intent(channels=[Channel.WHATSAPP, Channel.SMS])
    command = f.command(channel=Channel.WHATSAPP, message_id=intent.message_id)
    state = fallback.remember(None, intent.message_id, encode(intent), Channel.WHATSAPP, f.NOW)
    status = failed_status(command, "131047")
    outcome = receipt_outcome(status, OutcomeStatus.FAILED, parse_qs(status.callback_data), f.NOW, None)
    _, retry = fallback.on_outcome(state, outcome)
    assert retry is not None and retry.narrowed(intent).channels == [Channel.SMS]


def test_a_delivered_status_carries_no_failure_reason() -> None:
    command = f.command(channel=Channel.WHATSAPP)
    status = WhatsAppStatus(provider_message_id="wamid.X", status="delivered", timestamp=1, recipient_id=None,
                            error_code=None, callback_data=callback_data(command))
    outcome = receipt_outcome(status, OutcomeStatus.DELIVERED, parse_qs(status.callback_data), f.NOW, None)
    assert outcome.reason is None and outcome.detail is None
