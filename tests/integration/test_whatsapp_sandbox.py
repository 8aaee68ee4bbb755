"""The production WhatsApp adapter against the real sandbox on loopback, with a real webhook receiver."""

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from connectors.errors import (
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
    SignatureError,
)
from connectors.providers.base import Currency, DateTime, Media, WhatsAppRequest, WhatsAppTemplate
from connectors.providers.whatsapp_cloud import MetaWhatsAppProvider
from connectors.sandbox.whatsapp import SandboxScenario, serve
from connectors.sandbox.whatsapp_scenario import planned_statuses
from connectors.webhooks.meta_events import parse_webhook
from connectors.webhooks.meta_signature import SIGNATURE_HEADER, verify_signature

PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "sandbox-test-access-token"
APP_SECRET = "sandbox-test-app-secret"
CUSTOMER = "+972541234567"
FAST = dict(fail_rate=0.0, read_rate=0.0, status_delay=0.02, webhook_retry_delay=0.02)
DEADLINE = 5.0
SHIPPING = WhatsAppTemplate(name="shipping_update", language="en", category="utility", body_parameters=("#1042",))


class Receiver:
    """A tiny webhook endpoint that verifies X-Hub-Signature-256 over the raw body like the gateway will."""

    def __init__(self, app_secret=APP_SECRET, fail_first=0):
        self.app_secret = app_secret
        self.fail_first = fail_first
        self.statuses = []
        self.inbound = []
        self.raw_bodies = []
        self.bad_signatures = 0
        self.changed = asyncio.Condition()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_signature(self.app_secret, raw, request.headers.get(SIGNATURE_HEADER))
        except SignatureError:
            async with self.changed:
                self.bad_signatures += 1
                self.changed.notify_all()
            return web.Response(status=403)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        statuses, messages = parse_webhook(raw)
        async with self.changed:
            self.raw_bodies.append(raw)
            self.statuses.extend(statuses)
            self.inbound.extend(messages)
            self.changed.notify_all()
        return web.Response(text="")

    async def wait_until(self, predicate):
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate(self)), DEADLINE)

    def statuses_of_objects(self, wamid):
        return [s for s in self.statuses if s.provider_message_id == wamid]

    def statuses_of(self, wamid):
        return [(s.status, s.error_code) for s in self.statuses if s.provider_message_id == wamid]


@dataclass
class Rig:
    provider: MetaWhatsAppProvider
    receiver: Receiver
    base_url: str

    async def sandbox(self, method, path, json=None):
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.request(method, path, json=json)
            response.raise_for_status()
            return response.json()

    async def customer_writes(self, **fields):
        return await self.sandbox("POST", "/_sandbox/inbound", {"from": CUSTOMER, **fields})

    async def wait_for_stats(self, predicate):
        deadline = time.monotonic() + DEADLINE
        while not predicate(stats := await self.sandbox("GET", "/_sandbox/stats")):
            assert time.monotonic() < deadline, f"stats never matched: {stats}"
            await asyncio.sleep(0.02)  # polling the sandbox: the condition is what is awaited
        return stats


@asynccontextmanager
async def rig(scenario=None, receiver=None, access_token=ACCESS_TOKEN):
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post("/whatsapp/webhook", receiver.handle)
    receiver_runner = web.AppRunner(app, access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{receiver_runner.addresses[0][1]}/whatsapp/webhook"
    sandbox = await serve("127.0.0.1", 0, phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
                          app_secret=APP_SECRET, webhook_url=receiver.url,
                          scenario=scenario or SandboxScenario(**FAST))
    provider = MetaWhatsAppProvider(PHONE_NUMBER_ID, access_token, base_url=sandbox.base_url, timeout=5.0)
    try:
        yield Rig(provider, receiver, sandbox.base_url)
    finally:
        await provider.aclose()
        await sandbox.aclose()
        await receiver_runner.cleanup()


def run(coro_fn):
    return asyncio.run(asyncio.wait_for(coro_fn(), 20))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def text(body="Your parcel is on its way", **kwargs):
    return WhatsAppRequest(message_id="msg-1", to=CUSTOMER, text=body, **kwargs)


def template(name="shipping_update", **kwargs):
    return WhatsAppRequest(message_id="msg-1", to=CUSTOMER,
                           template=WhatsAppTemplate(name=name, language="en", category="utility"), **kwargs)


# --- the 24-hour customer-service window ----------------------------------------------------


def test_template_is_accepted_outside_the_window_and_reported_signed_with_callback_data():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(WhatsAppRequest(message_id="msg-1", to=CUSTOMER, template=SHIPPING,
                                                            callback_data="send-7f3a"))
            assert receipt.provider == "meta_whatsapp" and receipt.status == "accepted"
            assert receipt.provider_message_id.startswith("wamid.")
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("sent", None), ("delivered", None)]
            assert {s.callback_data for s in r.receiver.statuses} == {"send-7f3a"}
            assert {s.recipient_id for s in r.receiver.statuses} == {CUSTOMER[1:]}
            assert r.receiver.bad_signatures == 0

    run(main)


def test_free_text_outside_the_window_is_accepted_then_reported_failed_131047_by_webhook():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(text(callback_data="send-7f3a"))  # 200 with a wamid, as Meta answers
            assert receipt.provider_message_id.startswith("wamid.")
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 1)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("failed", "131047")]
            assert r.receiver.statuses[0].callback_data == "send-7f3a"
            stats = await r.sandbox("GET", "/_sandbox/stats")
            assert (stats["accepted"], stats["outside_window"], stats["rejected"]) == (1, 1, 0)

    run(main)


def test_interactive_buttons_outside_the_window_fail_with_131047_too():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(text("Still want it?", buttons=("Yes", "No")))
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 1)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("failed", "131047")]

    run(main)


def test_customer_message_arrives_signed_and_opens_the_window_for_free_text():
    async def main():
        async with rig() as r:
            await r.customer_writes(text="Where is my order? שלום")
            await r.receiver.wait_until(lambda rc: len(rc.inbound) == 1)
            (inbound,) = r.receiver.inbound
            assert (inbound.from_number, inbound.text, inbound.message_type) == (
                CUSTOMER[1:], "Where is my order? שלום", "text")
            assert b"\\u05e9" in r.receiver.raw_bodies[0]  # escaped on the wire, like Meta, and still verified
            receipt = await r.provider.send(text())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("sent", None), ("delivered", None)]

    run(main)


def test_a_customer_message_older_than_24_hours_does_not_open_the_window():
    async def main():
        async with rig() as r:
            await r.customer_writes(text="hi", age_seconds=24 * 3600 + 1)
            receipt = await r.provider.send(text())
            await r.receiver.wait_until(lambda rc: rc.statuses_of(receipt.provider_message_id))
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("failed", "131047")]

    run(main)


# --- replies to buttons ----------------------------------------------------------------------


def test_interactive_button_tap_comes_back_with_the_reply_id_and_the_message_replied_to():
    async def main():
        async with rig() as r:
            await r.customer_writes(text="hi")
            receipt = await r.provider.send(WhatsAppRequest(message_id="msg-9", to=CUSTOMER, text="Still want it?",
                                                            buttons=("Yes", "Not now")))
            await r.customer_writes(button_reply_id="msg-9#1", text="Not now")
            await r.receiver.wait_until(lambda rc: len(rc.inbound) == 2)
            tap = r.receiver.inbound[-1]
            assert (tap.message_type, tap.button_payload, tap.button_text, tap.in_reply_to) == (
                "interactive", "msg-9#1", "Not now", receipt.provider_message_id)

    run(main)


def test_template_quick_reply_comes_back_as_a_button_message():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(template("cart_reminder"))
            await r.customer_writes(button_payload="STOP_PROMOTIONS", text="Stop promotions")
            await r.receiver.wait_until(lambda rc: len(rc.inbound) == 1)
            (tap,) = r.receiver.inbound
            assert (tap.message_type, tap.button_payload, tap.button_text, tap.in_reply_to) == (
                "button", "STOP_PROMOTIONS", "Stop promotions", receipt.provider_message_id)

    run(main)


# --- template parameters ---------------------------------------------------------------------


def test_templates_with_media_header_money_date_and_quick_reply_payloads_are_accepted():
    async def main():
        async with rig() as r:
            for header in (Media("image", "https://cdn.example/shoe.jpg"),
                           Media("document", "https://cdn.example/invoice.pdf", filename="invoice.pdf")):
                rich = WhatsAppTemplate(name="order_confirmation", language="en", category="utility", header=header,
                                        body_parameters=("Dana", Currency("$19.99", "USD", 19990),
                                                         DateTime("August 5, 2026")),
                                        quick_reply_payloads=("msg-1#0", "msg-1#1"))
                receipt = await r.provider.send(WhatsAppRequest(message_id="msg-1", to=CUSTOMER, template=rich))
                assert receipt.provider_message_id.startswith("wamid.")

    run(main)


@pytest.mark.parametrize("component", [
    {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "text", "text": "x"}]},
    {"type": "button", "sub_type": "quick_reply", "index": "10", "parameters": [{"type": "payload", "payload": "x"}]},
    {"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": []},
    {"type": "body", "parameters": [{"type": "payload", "payload": "x"}]},
    {"type": "body", "parameters": [{"type": "currency", "currency": {"fallback_value": "$1", "code": "usd",
                                                                      "amount_1000": 1000}}]},
    {"type": "body", "parameters": [{"type": "date_time", "date_time": {}}]},
    {"type": "header", "parameters": [{"type": "image", "image": {"link": "ftp://x/y.jpg"}}]},
    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/y.jpg", "filename": "y"}}]},
])
def test_template_parameters_meta_would_refuse_get_400_with_code_100(component):
    async def main():
        async with rig() as r:
            body = {"messaging_product": "whatsapp", "to": CUSTOMER[1:], "type": "template", "template": {
                "name": "shipping_update", "language": {"code": "en"}, "components": [component]}}
            async with httpx.AsyncClient(base_url=r.base_url) as client:
                response = await client.post(f"/v21.0/{PHONE_NUMBER_ID}/messages", json=body,
                                             headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
            assert response.status_code == 400 and response.json()["error"]["code"] == 100

    run(main)


# --- webhook shape: business-scoped user ids ---------------------------------------------------


def test_webhooks_name_the_customer_by_number_and_business_scoped_user_id():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(template())
            await r.customer_writes(text="hi")
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2 and rc.inbound)
            ids = {s.recipient_user_id for s in r.receiver.statuses_of_objects(receipt.provider_message_id)}
            (inbound,) = r.receiver.inbound
            assert ids == {inbound.from_user_id} and inbound.from_user_id.startswith("IL.")
            assert inbound.from_number == CUSTOMER[1:]

    run(main)


def test_a_customer_with_a_username_writes_in_without_a_phone_number():
    async def main():
        async with rig() as r:
            await r.customer_writes(text="hi", username="dana")
            await r.receiver.wait_until(lambda rc: rc.inbound)
            (inbound,) = r.receiver.inbound
            assert inbound.from_number is None and inbound.from_user_id
            assert CUSTOMER[1:].encode() not in r.receiver.raw_bodies[0]

    run(main)


def test_legacy_webhooks_carry_no_user_ids():
    async def main():
        async with rig(SandboxScenario(**FAST, legacy_webhooks=True)) as r:
            await r.provider.send(template())
            await r.customer_writes(text="hi", username="dana")  # no hiding the number in the old shape
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2 and rc.inbound)
            assert {s.recipient_user_id for s in r.receiver.statuses} == {None}
            assert (r.receiver.inbound[0].from_number, r.receiver.inbound[0].from_user_id) == (CUSTOMER[1:], None)
            assert all(b"user_id" not in raw for raw in r.receiver.raw_bodies)

    run(main)


# --- statuses --------------------------------------------------------------------------------


def test_statuses_are_signed_with_the_app_secret_so_another_secret_fails_verification():
    async def main():
        async with rig(receiver=Receiver(app_secret="not-the-app-secret")) as r:
            await r.provider.send(template())
            await r.receiver.wait_until(lambda rc: rc.bad_signatures >= 2)
            assert r.receiver.statuses == []

    run(main)


def test_read_message_skips_delivered_when_the_scenario_says_so():
    async def main():
        async with rig(SandboxScenario(**{**FAST, "read_rate": 1.0}, skip_delivered_when_read=True)) as r:
            receipt = await r.provider.send(template())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("sent", None), ("read", None)]

    run(main)


def test_number_not_on_whatsapp_ends_failed_with_131026():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(WhatsAppRequest(message_id="m", to="+15550100026", template=SHIPPING))
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 1)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("failed", "131026")]

    run(main)


def test_planned_statuses_are_deterministic_per_number_and_honour_the_rates():
    numbers = [f"3161234{n:04d}" for n in range(1, 300) if n != 26]
    half = SandboxScenario(fail_rate=0.5)
    failing = sum(planned_statuses(n, "wamid.x", half) == [("failed", "131026")] for n in numbers)
    assert 0.3 * len(numbers) < failing < 0.7 * len(numbers)
    assert all(planned_statuses(n, "w", half) == planned_statuses(n, "w", SandboxScenario(fail_rate=0.5))
               for n in numbers)
    always_read = SandboxScenario(fail_rate=0.0, read_rate=1.0)
    assert planned_statuses("31612345678", "w", always_read) == [("sent", None), ("delivered", None), ("read", None)]


def test_webhook_is_retried_when_the_receiver_answers_5xx():
    async def main():
        async with rig(receiver=Receiver(fail_first=1)) as r:
            await r.provider.send(template())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert [s.status for s in r.receiver.statuses] == ["sent", "delivered"]
            stats = await r.wait_for_stats(lambda s: s["webhooks_sent"] == 2)
            assert stats["webhooks_failed"] == 0

    run(main)


def test_duplicate_webhooks_deliver_every_status_twice():
    async def main():
        async with rig(SandboxScenario(**FAST, duplicate_webhooks=True)) as r:
            receipt = await r.provider.send(template())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 4)
            assert [s for s, _ in r.receiver.statuses_of(receipt.provider_message_id)] == [
                "sent", "sent", "delivered", "delivered"]

    run(main)


# --- errors through the production adapter ---------------------------------------------------


def test_wrong_token_is_misconfigured_with_code_190():
    async def main():
        async with rig(access_token="wrong-token") as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(template())
            assert info.value.code == "190"
            assert (await r.sandbox("GET", "/_sandbox/stats"))["accepted"] == 0

    run(main)


def test_wrong_phone_number_id_is_misconfigured():
    async def main():
        async with rig() as r:
            other = MetaWhatsAppProvider("999", ACCESS_TOKEN, base_url=r.base_url)
            async with other:
                with pytest.raises(ProviderMisconfiguredError) as info:
                    await other.send(template())
            assert info.value.code == "100"

    run(main)


def test_unapproved_template_is_rejected_with_132001():
    async def main():
        async with rig() as r:
            with pytest.raises(ProviderRejectedError) as info:
                await r.provider.send(template("flash_sale_unapproved"))
            assert info.value.code == "132001"

    run(main)


def test_more_sends_per_second_than_allowed_are_transient_130429():
    async def main():
        async with rig(SandboxScenario(**FAST, rate_limit_per_second=2)) as r:
            await r.provider.send(template())
            await r.provider.send(template())
            with pytest.raises(ProviderTransientError) as info:
                await r.provider.send(template())
            assert info.value.code == "130429" and info.value.retry_after == 1.0
            stats = await r.sandbox("GET", "/_sandbox/stats")
            assert (stats["requests"], stats["accepted"], stats["rate_limited"]) == (3, 2, 1)

    run(main)


@pytest.mark.parametrize("body", [
    {"messaging_product": "sms", "to": "972541234567", "type": "text", "text": {"body": "hi"}},
    {"messaging_product": "whatsapp", "to": "not-a-number", "type": "text", "text": {"body": "hi"}},
    {"messaging_product": "whatsapp", "to": "972541234567", "type": "text", "text": {"body": ""}},
    {"messaging_product": "whatsapp", "to": "972541234567", "type": "template", "template": {"name": "x"}},
    {"messaging_product": "whatsapp", "to": "972541234567", "type": "interactive", "interactive": {
        "type": "button", "body": {"text": "pick"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "x" * 21}}]}}},
    {"messaging_product": "whatsapp", "to": "972541234567", "type": "sticker", "sticker": {"id": "1"}},
    ["not", "an", "object"],
])
def test_badly_shaped_bodies_get_400_with_code_100(body):
    async def main():
        async with rig() as r:
            async with httpx.AsyncClient(base_url=r.base_url) as client:
                response = await client.post(f"/v21.0/{PHONE_NUMBER_ID}/messages", json=body,
                                             headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
            assert response.status_code == 400 and response.json()["error"]["code"] == 100

    run(main)


@pytest.mark.parametrize("body", [
    {"text": "no sender"},
    {"from": "not-digits", "text": "hi"},
    {"from": CUSTOMER, "text": 42},
    {"from": CUSTOMER, "age_seconds": -1},
    {"from": CUSTOMER, "age_seconds": "old"},
    ["not", "an", "object"],
])
def test_badly_shaped_simulated_customer_messages_get_400_and_open_no_window(body):
    async def main():
        async with rig() as r:
            async with httpx.AsyncClient(base_url=r.base_url) as client:
                response = await client.post("/_sandbox/inbound", json=body)
            assert response.status_code == 400 and response.json()["error"]["code"] == 100
            assert (await r.sandbox("GET", "/_sandbox/stats"))["inbound"] == 0
            receipt = await r.provider.send(text())
            await r.receiver.wait_until(lambda rc: rc.statuses_of(receipt.provider_message_id))
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("failed", "131047")]

    run(main)


# --- inspection ------------------------------------------------------------------------------


def test_inspection_lists_messages_counts_traffic_and_resets():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(template())
            await r.provider.send(text())  # outside the window: accepted, then failed by webhook
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 3)
            stats = await r.wait_for_stats(lambda s: s["webhooks_sent"] == 3)
            assert stats == {"requests": 2, "accepted": 2, "rejected": 0, "rate_limited": 0, "outside_window": 1,
                             "inbound": 0, "webhooks_sent": 3, "webhooks_failed": 0}
            message, late = await r.sandbox("GET", "/_sandbox/messages")
            assert (late["type"], late["status"], late["error_code"]) == ("text", "failed", "131047")
            assert (message["id"], message["to"], message["type"], message["template"], message["status"]) == (
                receipt.provider_message_id, CUSTOMER[1:], "template", "shipping_update", "delivered")
            await r.sandbox("POST", "/_sandbox/reset")
            assert await r.sandbox("GET", "/_sandbox/messages") == []
            assert set((await r.sandbox("GET", "/_sandbox/stats")).values()) == {0}

    run(main)


def test_webhook_to_a_dead_receiver_is_counted_failed_after_retries():
    async def main():
        scenario = SandboxScenario(**{**FAST, "webhook_retry_delay": 0.01}, webhook_retries=2)
        sandbox = await serve("127.0.0.1", 0, phone_number_id=PHONE_NUMBER_ID, access_token=ACCESS_TOKEN,
                              app_secret=APP_SECRET, webhook_url=f"http://127.0.0.1:{free_port()}/dead",
                              scenario=scenario)
        try:
            async with MetaWhatsAppProvider(PHONE_NUMBER_ID, ACCESS_TOKEN, base_url=sandbox.base_url) as provider:
                await provider.send(template())
            rig_ = Rig(provider, Receiver(), sandbox.base_url)
            stats = await rig_.wait_for_stats(lambda s: s["webhooks_failed"] == 2)
            assert stats["webhooks_sent"] == 0
        finally:
            await sandbox.aclose()

    run(main)
