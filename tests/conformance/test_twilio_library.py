"""The twilio library (9.x) judges the Twilio sandbox and the webhook signatures it and our gateway check.

A test dependency only: ``twilio.rest.Client`` sends, fetches and lists through the sandbox (its API domain's
``base_url`` pointed at it), and ``twilio.request_validator.RequestValidator`` verifies every webhook."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from connectors.errors import SignatureError
from connectors.sandbox.twilio import SandboxScenario, serve
from connectors.webhooks.twilio_signature import SIGNATURE_HEADER, compute_signature, verify_signature
from tests.conformance.receiver import receiving

pytestmark = pytest.mark.conformance

ACCOUNT_SID = "AC" + "c0" * 16
AUTH_TOKEN = "conformance-auth-token"
FROM, TO = "+15005550006", "+31612345678"


def _client(base_url: str, auth_token: str = AUTH_TOKEN) -> Client:
    client = Client(ACCOUNT_SID, auth_token)
    client.api.base_url = base_url  # the library's own seam: every Api v2010 URL is built from it
    return client


def test_the_library_sends_fetches_and_lists_a_message_with_its_price_once_delivered() -> None:
    async def main() -> None:
        async with receiving() as receiver:
            sandbox = await serve("127.0.0.1", 0, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                  scenario=SandboxScenario(fail_rate=0.0, callback_delay=0.05))
            try:
                client = _client(sandbox.base_url)
                created = await asyncio.to_thread(client.messages.create, to=TO, from_=FROM,
                                                  body="Your order #1042 has shipped", status_callback=receiver.url)
                assert created.sid.startswith("SM") and created.status == "queued" and created.price is None
                callbacks = await receiver.wait_for(2)
                assert [c.params["MessageStatus"] for c in callbacks] == ["sent", "delivered"]
                fetched = await asyncio.to_thread(client.messages(created.sid).fetch)
                assert (fetched.sid, fetched.status, fetched.to, fetched.from_) == (created.sid, "delivered", TO, FROM)
                assert (fetched.price, fetched.price_unit, fetched.num_segments) == ("-0.00790", "USD", "1")
                assert fetched.date_sent is not None and fetched.error_code is None
                listed = await asyncio.to_thread(client.messages.list, to=TO, limit=5)
                assert [m.sid for m in listed] == [created.sid]
                with pytest.raises(TwilioRestException) as missing:
                    await asyncio.to_thread(client.messages("SM" + "0" * 32).fetch)
                assert (missing.value.status, missing.value.code) == (404, 20404)
                with pytest.raises(TwilioRestException) as refused:
                    await asyncio.to_thread(_client(sandbox.base_url, "not-the-token").messages.create,
                                            to=TO, from_=FROM, body="hi")
                assert (refused.value.status, refused.value.code) == (401, 20003)
            finally:
                await sandbox.aclose()

    asyncio.run(main())


def test_every_webhook_the_sandbox_signs_verifies_with_the_librarys_request_validator() -> None:
    async def main() -> None:
        async with receiving("/webhooks/twilio/status") as status, receiving("/webhooks/twilio/inbound") as inbound:
            callback = status.url + "?message_id=m-1&customer_id=c-1&store_id=s-1"  # as our gateway asks
            sandbox = await serve("127.0.0.1", 0, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                                  scenario=SandboxScenario(fail_rate=0.0, callback_delay=0.05),
                                  inbound_url=inbound.url)
            try:
                await asyncio.to_thread(_client(sandbox.base_url).messages.create, to=TO, from_=FROM,
                                        body="שלום & hello", status_callback=callback)
                async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
                    await http.post("/_sandbox/inbound", json={"from": TO, "text": "STOP"})
                webhooks = [*await status.wait_for(2), *await inbound.wait_for(1)]
            finally:
                await sandbox.aclose()
        validator, stranger = RequestValidator(AUTH_TOKEN), RequestValidator("not-the-token")
        for hook in webhooks:
            assert validator.validate(hook.url, hook.params, hook.headers[SIGNATURE_HEADER]) is True
            assert stranger.validate(hook.url, hook.params, hook.headers[SIGNATURE_HEADER]) is False

    asyncio.run(main())


def test_our_gateways_verifier_and_the_library_agree_on_what_twilio_signs() -> None:
    url = "https://hooks.example.com/webhooks/twilio/status?message_id=m-1&customer_id=c-1&store_id=s-1"
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "Body": "caf\u00e9 & co"}
    library = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert compute_signature(AUTH_TOKEN, url, params) == library
    verify_signature(AUTH_TOKEN, url, params, library)
    with pytest.raises(SignatureError):
        verify_signature(AUTH_TOKEN, url, {**params, "MessageStatus": "undelivered"}, library)
    # Twilio's docs' known answer, through the library and through ours.
    docs_url, docs = "https://mycompany.com/myapp.php?foo=1&bar=2", {
        "CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030",
        "To": "+18005551212"}
    assert RequestValidator("12345").compute_signature(docs_url, docs) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    verify_signature("12345", docs_url, docs, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
