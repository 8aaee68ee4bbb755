"""The vonage SDK (4.x) judges the Vonage sandbox and the signatures the sandbox and our gateway produce.

The SDK is a test dependency only. It speaks HTTPS to ``rest_host`` and nothing else, so the sandbox is served
over TLS here; it sends ``api_key``/``api_secret`` as HTTP Basic auth and signs with the HMAC methods only
(it has no "MD5 hash" mode), so the legacy method is proven by hand-computed vectors in tests/unit instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from vonage import Auth, HttpClientOptions, Vonage
from vonage_sms import SmsMessage

from connectors.gateways.inbound import Contacts
from connectors.gateways.sms import SmsSender
from connectors.providers.base import SmsRequest
from connectors.providers.vonage import VonageSmsProvider
from connectors.sandbox.vonage import SandboxScenario, create_app
from connectors.webhooks.vonage_signature import compute_signature, verify_signature
from tests import factories as f
from tests.conformance.receiver import receiving
from tests.conformance.tls import serve_tls

pytestmark = pytest.mark.conformance

API_KEY, API_SECRET, SIGNATURE_SECRET = "confkey1", "conformance-api-secret", "conformance-signature-secret"
HMAC_METHODS = ["md5", "sha1", "sha256", "sha512"]
TO = "31612345678"


def _client(host: str, **auth: str) -> Vonage:
    return Vonage(Auth(api_key=API_KEY, **auth), HttpClientOptions(rest_host=host, timeout=10))


def _sandbox(signature_method: str = "md5hash"):
    return create_app(API_KEY, API_SECRET, SIGNATURE_SECRET, SandboxScenario(fail_rate=0.0, callback_delay=0.05),
                      signature_method=signature_method)


def test_the_sdk_sends_an_sms_with_basic_credentials_and_the_sandbox_takes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with receiving() as receiver, serve_tls(_sandbox(), tmp_path, monkeypatch) as host:
            client = _client(host, api_secret=API_SECRET)
            sent = await asyncio.to_thread(client.sms.send, SmsMessage(
                to=TO, from_="Shop", text="Your order #1042 has shipped", client_ref="msg-1",
                callback=receiver.url))
            assert sent.message_count == "1" and sent.messages[0].status == "0" and sent.messages[0].message_id
            [receipt] = await receiver.wait_for(1)
            assert receipt.params["client-ref"] == "msg-1" and receipt.params["status"] == "delivered"
            wrong = _client(host, api_secret="not-the-secret")
            with pytest.raises(Exception, match="Bad Credentials"):  # the SDK's SmsError, status 4
                await asyncio.to_thread(wrong.sms.send, SmsMessage(to=TO, from_="Shop", text="hi"))

    asyncio.run(main())


@pytest.mark.parametrize("method", HMAC_METHODS)
def test_receipts_the_sandbox_signs_verify_with_the_sdks_check_signature(
        method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        async with receiving() as receiver, serve_tls(_sandbox(method), tmp_path, monkeypatch) as host:
            client = _client(host, api_secret=API_SECRET)
            await asyncio.to_thread(client.sms.send, SmsMessage(to=TO, from_="Shop", text="hi", client_ref="m-2",
                                                                callback=receiver.url))
            [receipt] = await receiver.wait_for(1)
            judge = Auth(api_key=API_KEY, signature_secret=SIGNATURE_SECRET, signature_method=method)
            assert judge.check_signature(dict(receipt.params)) is True
            tampered = {**receipt.params, "client-ref": "another-message"}
            assert judge.check_signature(tampered) is False

    asyncio.run(main())


@pytest.mark.parametrize("method", HMAC_METHODS)
def test_requests_our_gateway_signs_verify_with_the_sdk_and_the_sdks_signatures_verify_with_ours(method: str) -> None:
    provider = VonageSmsProvider(API_KEY, "", "+15005550006", signature_secret=SIGNATURE_SECRET,
                                 signature_method=method)
    form = provider.build_form(SmsRequest(message_id="m-3", to="+" + TO, body="Tom & Jerry = friends",
                                          status_callback="https://hooks.example/webhooks/vonage/dlr"))
    judge = Auth(api_key=API_KEY, signature_secret=SIGNATURE_SECRET, signature_method=method)
    assert judge.check_signature(dict(form)) is True
    receipt = {"messageId": "0A00000012345678", "status": "delivered", "client-ref": "m-3", "err-code": "0",
               "timestamp": "1764763200", "nonce": "b6f1"}
    receipt["sig"] = judge.sign_params(dict(receipt))
    verify_signature(SIGNATURE_SECRET, receipt, method=method)
    assert compute_signature(SIGNATURE_SECRET, receipt, method) == receipt["sig"]


def test_the_receipt_url_and_client_ref_our_gateway_asks_for_fit_the_sdks_limits() -> None:
    sender = SmsSender(VonageSmsProvider(API_KEY, API_SECRET, "+15005550006"),
                       "https://notifications.some-retailer.example.com", Contacts())
    command = f.command()
    message = SmsMessage(to=TO, from_="Shop", text="hi", client_ref=command.message_id,
                         callback=sender.status_callback(command))
    assert message.callback == "https://notifications.some-retailer.example.com/webhooks/vonage/dlr"
    with pytest.raises(ValidationError, match="callback"):  # the limit the sandbox and the gateway enforce too
        SmsMessage(to=TO, from_="Shop", text="hi", callback="https://hooks.example/" + "d" * 79)
