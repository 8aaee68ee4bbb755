"""The SMS gateway with the Vonage adapter: a different provider API behind the same gateway loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from connectors.sandbox.vonage import SandboxScenario, serve
from connectors.webhooks.vonage_dlr import compute_signature
from schemas.messages import OutcomeReason
from schemas.types import Channel
from streams.settings import Settings
from tests import factories as f
from tests.gateways import Harness, run, statuses

pytestmark = pytest.mark.integration

SIGNING = "vonage-signature-secret"


@pytest.fixture
def vonage(settings: Settings) -> Settings:
    settings.sms.provider = "vonage"
    settings.sms.vonage_signature_secret = SecretStr(SIGNING)
    return settings


@asynccontextmanager
async def vonage_sandbox(settings: Settings) -> AsyncIterator[str]:
    sms = settings.sms
    running = await serve("127.0.0.1", settings.sandbox.vonage_port, api_key=sms.vonage_api_key,
                          api_secret=sms.vonage_api_secret.get_secret_value(), signature_secret=SIGNING,
                          scenario=SandboxScenario(fail_rate=0.0, callback_delay=0.05, duplicate_receipts=True))
    try:
        yield running.base_url
    finally:
        await running.aclose()


def test_hebrew_sms_goes_through_vonage_and_its_receipt_becomes_one_outcome(vonage: Settings) -> None:
    command = f.command(body="שלום, ההזמנה #1001 נשלחה! עקוב אחר החבילה: https://t.example/1")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        assert statuses(outcomes, command.message_id) == ["sent", "delivered"]  # duplicate receipts: one outcome
        [message] = await h.sandbox_messages()
        assert message["type"] == "unicode"

    run(Channel.SMS, vonage, vonage_sandbox, scenario)


def test_vonage_failed_receipt_is_an_undelivered_outcome_with_its_code(vonage: Settings) -> None:
    command = f.command(to="+48601230005")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "undelivered" in statuses(seen, command.message_id))
        failed = next(o for o in outcomes if o.status == "undelivered")
        assert failed.reason == OutcomeReason.UNDELIVERED and failed.error_code == "5"

    run(Channel.SMS, vonage, vonage_sandbox, scenario)


def test_an_unsigned_or_forged_vonage_receipt_is_refused(vonage: Settings) -> None:
    async def scenario(h: Harness) -> None:
        url = f"{vonage.sms.public_base_url}/webhooks/vonage/dlr?message_id=m&customer_id=c&store_id=s"
        receipt = {"messageId": "0A0000001234", "status": "delivered", "timestamp": "1795000000", "nonce": "n1"}
        async with httpx.AsyncClient() as client:
            unsigned = await client.post(url, data=receipt)
            forged = await client.post(url, data={**receipt, "sig": compute_signature("wrong", receipt)})
            genuine = await client.post(url, data={**receipt, "sig": compute_signature(SIGNING, receipt)})
        assert (unsigned.status_code, forged.status_code, genuine.status_code) == (403, 403, 204)

    run(Channel.SMS, vonage, vonage_sandbox, scenario)
