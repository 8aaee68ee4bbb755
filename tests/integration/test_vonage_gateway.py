"""The SMS gateway with the Vonage adapter: a different provider API behind the same gateway loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

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
async def vonage_sandbox(settings: Settings, scenario: SandboxScenario | None = None) -> AsyncIterator[str]:
    sms = settings.sms
    secret = sms.vonage_signature_secret.get_secret_value() if sms.vonage_signature_secret else None
    running = await serve("127.0.0.1", settings.sandbox.vonage_port, api_key=sms.vonage_api_key,
                          api_secret=sms.vonage_api_secret.get_secret_value(), signature_secret=secret,
                          signature_method=sms.vonage_signature_method,
                          scenario=scenario or SandboxScenario(fail_rate=0.0, callback_delay=0.05,
                                                               duplicate_receipts=True))
    try:
        yield running.base_url
    finally:
        await running.aclose()


def quiet_sandbox(settings: Settings) -> AbstractAsyncContextManager[str]:
    """A sandbox whose own receipts come too late for the test: the test sends the receipts itself."""
    return vonage_sandbox(settings, SandboxScenario(fail_rate=0.0, callback_delay=600))


def signed_receipt(message: dict, status: str = "delivered", err_code: str = "0", signed_at: float | None = None,
                   method: str = "md5hash") -> dict[str, str]:
    """A DLR for a message the sandbox accepted, signed with the account's secret as Vonage would."""
    fields = {"msisdn": message["to"], "to": message["from"], "network-code": "23410",
              "messageId": message["message_ids"][0], "price": "0.03330000", "status": status, "scts": "2612031200",
              "err-code": err_code, "api-key": "sandbox1", "message-timestamp": "2026-12-03 12:00:00",
              "client-ref": message["client_ref"], "timestamp": str(int(signed_at or time.time())),
              "nonce": str(uuid.uuid4())}
    return {**fields, "sig": compute_signature(SIGNING, fields, method)}


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
        receipt = {"messageId": "0A0000001234", "status": "delivered", "timestamp": str(int(time.time())),
                   "nonce": "n1"}
        async with httpx.AsyncClient() as client:
            unsigned = await client.post(url, data=receipt)
            forged = await client.post(url, data={**receipt, "sig": compute_signature("wrong", receipt)})
            genuine = await client.post(url, data={**receipt, "sig": compute_signature(SIGNING, receipt)})
        assert (unsigned.status_code, forged.status_code, genuine.status_code) == (403, 403, 204)

    run(Channel.SMS, vonage, vonage_sandbox, scenario)


def test_the_receipt_url_is_short_and_an_hmac_sha256_account_settles_its_message_by_client_ref(
        vonage: Settings) -> None:
    vonage.sms.vonage_signature_method = "sha256"
    command = f.command()

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        assert statuses(outcomes, command.message_id) == ["sent", "delivered"]
        delivered = next(o for o in outcomes if o.status == "delivered")
        assert (delivered.customer_id, delivered.store_id) == (command.customer_id, command.store_id)
        [message] = await h.sandbox_messages()
        assert message["callback"] == vonage.sms.public_base_url + "/webhooks/vonage/dlr"  # names no message
        assert len(message["callback"]) <= 100 and message["client_ref"] == command.message_id

    run(Channel.SMS, vonage, vonage_sandbox, scenario)


def test_a_signed_receipt_aimed_at_another_message_replayed_or_late_changes_nothing(vonage: Settings) -> None:
    first, second = f.command(), f.command()
    url = f"{vonage.sms.public_base_url}/webhooks/vonage/dlr"

    async def scenario(h: Harness) -> None:
        await h.send(first, second)
        await h.outcomes(lambda seen: all(statuses(seen, c.message_id) == ["sent"] for c in (first, second)))
        message = next(m for m in await h.sandbox_messages() if m["client_ref"] == first.message_id)
        failed = signed_receipt(message, "failed", "3")
        async with httpx.AsyncClient() as client:
            async def post(receipt: dict, query: str = "") -> int:
                return (await client.post(url + query, data=receipt)).status_code

            aimed = await post(failed, f"?message_id={second.message_id}&customer_id={second.customer_id}"
                                       f"&store_id={second.store_id}")
            other_customer = await post(failed, f"?message_id={first.message_id}&customer_id=someone-else"
                                                f"&store_id={first.store_id}")
            late = await post(signed_receipt(message, signed_at=time.time() - 3600))
            unsigned = await post({k: v for k, v in signed_receipt(message).items() if k != "sig"})
            unknown = await post(signed_receipt({**message, "client_ref": "never-sent-by-us"}))
            genuine = signed_receipt(message)
            first_time, replayed = await post(genuine), await post(genuine)
            stale = await post(failed)  # a weaker status after delivered
        assert (aimed, other_customer, late, unsigned) == (403, 403, 403, 403)
        assert (unknown, first_time, replayed, stale) == (204, 204, 204, 204)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, first.message_id))
        assert [o.status for o in outcomes if o.message_id == first.message_id] == ["sent", "delivered"]
        assert [o.status for o in outcomes if o.message_id == second.message_id] == ["sent"]
        assert {o.message_id for o in outcomes} == {first.message_id, second.message_id}

    run(Channel.SMS, vonage, quiet_sandbox, scenario)


def test_without_a_signature_secret_no_receipt_is_accepted(settings: Settings) -> None:
    settings.sms.provider = "vonage"  # set after validation, which would have refused it: the gateway still refuses
    settings.sms.vonage_signature_secret = None
    command = f.command()

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: statuses(seen, command.message_id) == ["sent"])
        async with httpx.AsyncClient() as client:
            deadline = time.monotonic() + 30
            while (await client.get(f"{h.sandbox_url}/_sandbox/stats")).json()["callbacks_failed"] < 1:
                assert time.monotonic() < deadline, "the sandbox's unsigned receipt never came back refused"
                await asyncio.sleep(0.05)  # polling the sandbox: the condition is what is awaited
        assert h.metrics.registry.get_sample_value("switchboard_webhooks_total",
                                                   {"provider": "vonage", "result": "forged"}) >= 1
        outcomes = await h.outcomes(lambda seen: statuses(seen, command.message_id))
        assert [o.status for o in outcomes if o.message_id == command.message_id] == ["sent"]

    sandbox = lambda s: vonage_sandbox(s, SandboxScenario(fail_rate=0.0, callback_delay=0.05, callback_retries=0))  # noqa: E731
    run(Channel.SMS, settings, sandbox, scenario)
