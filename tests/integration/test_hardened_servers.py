"""The servers that face the internet, hardened: a gateway's webhook port drops slow clients, refuses a body
it cannot read before parsing anything (never a 500), and serves no /metrics (that is the admin port's)."""

from __future__ import annotations

import asyncio
import json
import socket
from functools import partial

import httpx
import pytest

from connectors.webhooks.meta_signature import compute_signature as meta_signature
from connectors.webhooks.twilio_signature import compute_signature as twilio_signature
from schemas.types import Channel
from streams.settings import Settings
from tests.gateways import Harness
from tests.gateways import run as run_gateway_scenario
from tests.integration.test_sms_gateway import twilio_sandbox
from tests.integration.test_whatsapp_gateway import whatsapp_sandbox

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sms(settings: Settings, scenario) -> None:
    settings.http.header_timeout = settings.http.body_timeout = 1.0
    run_gateway_scenario(Channel.SMS, settings, twilio_sandbox, scenario)


def _read_until_closed(port: int, sent: bytes, deadline: float) -> bytes:
    """Sends ``sent`` and reads until the server closes; fails if it is still open after ``deadline`` s."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline) as conn:
        conn.sendall(sent)
        received = b""
        try:
            while chunk := conn.recv(4096):
                received += chunk
        except TimeoutError:
            raise AssertionError(f"still open after {deadline}s; received {received[:200]!r}") from None
        return received


def test_a_client_that_never_finishes_its_headers_is_dropped(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        half = b"POST /webhooks/twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Twilio-Sig"
        received = await asyncio.to_thread(_read_until_closed, settings.sms.webhook_port, half, 20.0)
        assert received == b""  # dropped, nothing answered: no handler ever saw it

    sms(settings, scenario)


def test_a_client_that_never_finishes_its_body_gets_408_and_is_dropped(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        head = (b"POST /webhooks/twilio/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\nMessageSid=SM1")
        received = await asyncio.to_thread(_read_until_closed, settings.sms.webhook_port, head, 20.0)
        assert received.startswith(b"HTTP/1.1 408 ")

    sms(settings, scenario)


def test_a_badly_encoded_form_is_refused_as_unsigned_and_a_signed_unreadable_one_is_a_400(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        base = settings.sms.public_base_url
        status_url = f"{base}/webhooks/twilio/status?message_id=m&customer_id=c&store_id=s"
        token = settings.sms.auth_token.get_secret_value()
        async with httpx.AsyncClient() as client:
            for url in (status_url, f"{base}/webhooks/twilio/inbound"):
                for body in (b"MessageSid=SM1&MessageStatus=\xff\xfe", b"MessageSid=SM1&Body=%C3%28"):
                    # signed as well as anything can sign it: over the URL and what a lenient decoder reads
                    signature = twilio_signature(token, url, {"MessageSid": "SM1", "MessageStatus": "\ufffd"})
                    response = await client.post(url, content=body, headers={**FORM, "X-Twilio-Signature": signature})
                    assert response.status_code == 403, (url, body, response.status_code)
            assert h.metrics.webhooks.labels("twilio", "forged")._value.get() == 4
            absurd = {"MessageSid": "SM" + "1" * 5000, "MessageStatus": "delivered", "From": "+4860"}
            for url in (status_url, f"{base}/webhooks/twilio/inbound"):
                response = await client.post(url, data=absurd, headers={
                    "X-Twilio-Signature": twilio_signature(token, url, absurd)})
                assert response.status_code == 400, (url, response.status_code)

    sms(settings, scenario)


def test_metrics_are_on_the_admin_port_only(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        async with httpx.AsyncClient() as client:
            public = await client.get(f"{settings.sms.public_base_url}/metrics")
            admin = await client.get(f"http://127.0.0.1:{settings.sms.admin_port}/metrics")
            health = await client.get(f"{settings.sms.public_base_url}/health")
        assert public.status_code == 404 and health.status_code == 200
        assert admin.status_code == 200 and "switchboard_" in admin.text
        assert settings.http.admin_host == "127.0.0.1"  # the default: loopback only

    sms(settings, scenario)


def _signed(settings: Settings, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(settings.whatsapp.app_secret.get_secret_value(), body)}


def _inbound(timestamp: object) -> bytes:
    message = {"from": "31612345678", "id": "wamid.X1", "timestamp": timestamp, "type": "text", "text": {"body": "hi"}}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "messages": [message]}}]}]}).encode()


def test_a_signed_webhook_that_cannot_be_read_is_never_a_500(settings: Settings) -> None:
    """Unreadable as a whole (too deep, not an object): 400. One unreadable event (a timestamp no clock can
    hold) in a readable batch: 400, or 200 with that event dead-lettered alone. Never 500, which Meta retries
    for days."""
    deep = b"[" * 100_000 + b"]" * 100_000
    absurd = [deep, b'{"object": 7}', _inbound(10 ** 30), _inbound("9" * 5000)]

    async def scenario(h: Harness) -> None:
        url = f"{settings.whatsapp.public_base_url}/webhooks/whatsapp"
        async with httpx.AsyncClient() as client:
            codes = [(await client.post(url, content=body, headers=_signed(settings, body))).status_code
                     for body in absurd]
        assert codes[:2] == [400, 400] and set(codes[2:]) <= {200, 400}, codes

    run_gateway_scenario(Channel.WHATSAPP, settings, partial(whatsapp_sandbox), scenario)


def test_a_vonage_receipt_too_deep_to_read_is_refused_before_its_signature_never_a_500(settings: Settings) -> None:
    from pydantic import SecretStr

    from tests.integration.test_vonage_gateway import SIGNING, quiet_sandbox

    settings.sms.provider, settings.sms.vonage_signature_secret = "vonage", SecretStr(SIGNING)
    deep = b"[" * 100_000 + b"]" * 100_000

    async def scenario(h: Harness) -> None:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{settings.sms.public_base_url}/webhooks/vonage/dlr", content=deep,
                                         headers={"Content-Type": "application/json"})
        assert response.status_code in (400, 403), response.status_code

    run_gateway_scenario(Channel.SMS, settings, quiet_sandbox, scenario)
