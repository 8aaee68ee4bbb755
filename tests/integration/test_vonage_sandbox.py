"""The production Vonage adapter against the real sandbox server on loopback, with a real DLR receiver."""

import asyncio
import hashlib
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
    SignatureError,
)
from connectors.providers.base import SmsRequest
from connectors.providers.vonage import VonageSmsProvider
from connectors.sandbox.vonage import FAILURES, SandboxScenario, planned_outcome, serve, split_parts
from connectors.webhooks.vonage_dlr import VonageReceipt, outcome_status, parse_delivery_receipt, receipt_params, \
    verify_signature

API_KEY = "testkey1"
API_SECRET = "sandbox-test-secret"
SIGNATURE_SECRET = "sandbox-signature-secret"
FROM = "+15005550006"
OK_NUMBER = "+31612345678"
FAST = dict(fail_rate=0.0, callback_delay=0.02, callback_retry_delay=0.02)
DEADLINE = 5.0


class Receiver:
    """A tiny DLR endpoint (GET or POST) that verifies the MD5-hash ``sig`` like the gateway will."""

    def __init__(self, signature_secret=SIGNATURE_SECRET, method="md5hash"):
        self.signature_secret = signature_secret
        self.method = method
        self.receipts: list[VonageReceipt] = []
        self.params: list[dict[str, str]] = []
        self.methods: list[str] = []
        self.bad_signatures = 0
        self.changed = asyncio.Condition()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        params = receipt_params(request.method, request.query, request.content_type, await request.read())
        try:
            verify_signature(self.signature_secret, params, method=self.method, max_age=300)
        except SignatureError:
            async with self.changed:
                self.bad_signatures += 1
                self.changed.notify_all()
            return web.Response(status=403)
        async with self.changed:
            self.methods.append(request.method + (" json" if request.content_type == "application/json" else ""))
            self.params.append(params)
            self.receipts.append(parse_delivery_receipt(params))
            self.changed.notify_all()
        return web.Response(status=204)

    async def wait_until(self, predicate):
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate(self)), DEADLINE)


@dataclass
class Rig:
    provider: VonageSmsProvider
    receiver: Receiver
    base_url: str

    def request(self, to=OK_NUMBER, body="Your order #1042 has shipped", callback=True, message_id="msg-1"):
        return SmsRequest(message_id=message_id, to=to, body=body,
                          status_callback=self.receiver.url if callback else None)

    async def sandbox_json(self, path):
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.request("POST" if path == "/_sandbox/reset" else "GET", path)
            response.raise_for_status()
            return response.json()

    async def wait_for_stats(self, predicate):
        deadline = time.monotonic() + DEADLINE
        while not predicate(stats := await self.sandbox_json("/_sandbox/stats")):
            assert time.monotonic() < deadline, f"stats never matched: {stats}"
            await asyncio.sleep(0.02)  # polling the sandbox: the condition is what is awaited
        return stats


@asynccontextmanager
async def rig(scenario=None, receiver=None, api_secret=API_SECRET, signature_secret=None,
              sandbox_signature_secret=SIGNATURE_SECRET, signature_method="md5hash", provider_signature_method=None):
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_route("*", "/vonage/dlr", receiver.handle)
    receiver_runner = web.AppRunner(app, access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{receiver_runner.addresses[0][1]}/vonage/dlr"
    sandbox = await serve("127.0.0.1", 0, api_key=API_KEY, api_secret=API_SECRET,
                          signature_secret=sandbox_signature_secret, scenario=scenario or SandboxScenario(**FAST),
                          signature_method=signature_method)
    provider = VonageSmsProvider(API_KEY, api_secret, FROM, signature_secret=signature_secret,
                                 signature_method=provider_signature_method or signature_method,
                                 base_url=sandbox.base_url, timeout=5.0)
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


# --- the happy path ------------------------------------------------------------------------


def test_accepted_message_gets_a_signed_delivered_receipt_naming_our_message():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request())
            assert (receipt.provider, receipt.status, receipt.segments) == ("vonage", "accepted", 1)
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            (dlr,) = r.receiver.receipts
            assert dlr == VonageReceipt(receipt.provider_message_id, "delivered", None, "msg-1")
            assert outcome_status(dlr.status) == "delivered" and r.receiver.bad_signatures == 0
            params = r.receiver.params[0]
            assert params["msisdn"] == OK_NUMBER[1:] and params["to"] == FROM[1:] and params["api-key"] == API_KEY
            assert {"timestamp", "nonce", "sig", "scts", "message-timestamp", "network-code", "price"} <= set(params)

    run(main)


def test_signed_request_is_accepted_by_the_sandbox():
    async def main():
        async with rig(api_secret="", signature_secret=SIGNATURE_SECRET) as r:
            receipt = await r.provider.send(r.request(body="Tom & Jerry = friends", callback=False))
            assert receipt.segments == 1

    run(main)


def test_long_unicode_text_is_split_into_parts_each_with_its_own_id_and_receipt():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(body="ש" * 71))  # UCS-2: 70 per single SMS
            assert receipt.segments == 2
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 2)
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert message["type"] == "unicode" and message["message_ids"][0] == receipt.provider_message_id
            assert sorted(d.provider_message_id for d in r.receiver.receipts) == sorted(message["message_ids"])
            assert {d.client_ref for d in r.receiver.receipts} == {"msg-1"}

    run(main)


def test_sandbox_part_count_agrees_with_the_sms_segmenter_and_honours_type():
    assert len(split_parts("a" * 160, "text")) == 1 and len(split_parts("a" * 161, "text")) == 2
    assert len(split_parts("a" * 71, "unicode")) == 2  # GSM text forced to UCS-2
    assert len(split_parts("ש" * 140, "unicode")) == 3


def test_receipts_from_another_signature_secret_fail_verification():
    async def main():
        async with rig(receiver=Receiver(signature_secret="not-the-account-secret")) as r:
            await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: rc.bad_signatures >= 1)
            assert r.receiver.receipts == []

    run(main)


@pytest.mark.parametrize("method, seen", [("GET", "GET"), ("POST", "POST"), ("POST-JSON", "POST json")])
def test_receipts_arrive_by_the_configured_method_and_verify(method, seen):
    async def main():
        async with rig(SandboxScenario(**FAST, callback_method=method)) as r:
            await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            assert r.receiver.methods == [seen] and r.receiver.bad_signatures == 0

    run(main)


# --- failures reported by receipt ----------------------------------------------------------


def test_number_ending_0005_ends_failed_with_dlr_err_code_5():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(to="+15005550005"))
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            (dlr,) = r.receiver.receipts
            assert (dlr.provider_message_id, dlr.status, dlr.error_code) == (receipt.provider_message_id, "failed", "5")
            assert outcome_status(dlr.status) == "undelivered"

    run(main)


def test_fail_rate_outcome_is_deterministic_per_number():
    scenario = SandboxScenario(fail_rate=0.5)
    numbers = [f"3161234{n:04d}" for n in range(10, 400)]
    outcomes = [planned_outcome(n, scenario) for n in numbers]
    assert outcomes == [planned_outcome(n, SandboxScenario(fail_rate=0.5)) for n in numbers]
    failing = sum(status != "delivered" for status, _ in outcomes)
    assert 0.3 * len(numbers) < failing < 0.7 * len(numbers)
    assert set(outcomes) == {("delivered", "0"), *FAILURES}
    assert all(planned_outcome(n, SandboxScenario(fail_rate=0.0)) == ("delivered", "0") for n in numbers)


def test_duplicate_receipts_sends_every_receipt_twice():
    async def main():
        async with rig(SandboxScenario(**FAST, duplicate_receipts=True)) as r:
            receipt = await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 2)
            assert [d.provider_message_id for d in r.receiver.receipts] == [receipt.provider_message_id] * 2
            assert r.receiver.params[0]["nonce"] != r.receiver.params[1]["nonce"]

    run(main)


def test_receipt_to_a_dead_receiver_is_counted_failed_after_retries():
    async def main():
        scenario = SandboxScenario(**{**FAST, "callback_retry_delay": 0.01}, callback_retries=2)
        async with rig(scenario) as r:
            dead = SmsRequest(message_id="m", to=OK_NUMBER, body="hi",
                              status_callback=f"http://127.0.0.1:{free_port()}/vonage/dlr")
            await r.provider.send(dead)
            stats = await r.wait_for_stats(lambda s: s["callbacks_failed"] == 1)
            assert stats["callbacks_sent"] == 0

    run(main)


# --- refusals through the production adapter -----------------------------------------------


def test_throttled_raises_transient_with_retry_after_1():
    async def main():
        async with rig(SandboxScenario(**FAST, throttle_every=1)) as r:
            with pytest.raises(ProviderTransientError) as info:
                await r.provider.send(r.request())
            assert info.value.retry_after == 1.0 and info.value.code == "1"
            stats = await r.sandbox_json("/_sandbox/stats")
            assert (stats["throttled"], stats["accepted"]) == (1, 0)

    run(main)


def test_throttle_every_third_request_lets_two_through():
    async def main():
        async with rig(SandboxScenario(**FAST, throttle_every=3)) as r:
            await r.provider.send(r.request(callback=False))
            await r.provider.send(r.request(callback=False))
            with pytest.raises(ProviderTransientError):
                await r.provider.send(r.request(callback=False))

    run(main)


def test_partly_throttled_multipart_message_is_ambiguous_and_its_sent_parts_still_report():
    async def main():
        async with rig(SandboxScenario(**FAST, throttle_last_part=True)) as r:
            with pytest.raises(ProviderAmbiguousError) as info:
                await r.provider.send(r.request(body="x" * 200))
            assert info.value.code == "1" and not isinstance(info.value, ProviderTransientError)
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert (message["parts"], len(message["message_ids"])) == (2, 1)

    run(main)


def test_wrong_credentials_raise_misconfigured_with_status_4():
    async def main():
        async with rig(api_secret="wrong-secret") as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(r.request())
            assert info.value.code == "4"
            assert (await r.sandbox_json("/_sandbox/stats"))["accepted"] == 0

    run(main)


def test_wrong_signature_secret_raises_misconfigured_with_status_14():
    async def main():
        async with rig(api_secret="", signature_secret="not-the-signature-secret") as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(r.request())
            assert info.value.code == "14"

    run(main)


def test_out_of_credit_raises_misconfigured_with_status_9():
    async def main():
        async with rig(SandboxScenario(**FAST, balance=0.05, part_price=0.04)) as r:
            await r.provider.send(r.request(callback=False))
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(r.request(callback=False))
            assert info.value.code == "9"

    run(main)


def test_invalid_number_is_rejected_with_status_3_without_leaking_it():
    async def main():
        async with rig() as r:
            with pytest.raises(ProviderRejectedError) as info:
                await r.provider.send(r.request(to="0612345678"))
            assert info.value.code == "3" and "0612345678" not in str(info.value)

    run(main)


# --- inspection endpoints ------------------------------------------------------------------


def test_inspection_lists_messages_counts_traffic_and_resets():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(body="hello"))
            with pytest.raises(ProviderRejectedError):
                await r.provider.send(r.request(to="12"))
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            stats = await r.wait_for_stats(lambda s: s["callbacks_sent"] == 1)
            assert {k: v for k, v in stats.items() if k != "balance"} == {
                "requests": 2, "accepted": 1, "rejected": 1, "throttled": 0, "parts": 1,
                "callbacks_sent": 1, "callbacks_failed": 0}
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert message["message_ids"] == [receipt.provider_message_id]
            assert (message["to"], message["text"], message["status"]) == (OK_NUMBER[1:], "hello", "delivered")
            assert message["callback"] == r.receiver.url and message["client_ref"] == "msg-1"
            await r.sandbox_json("/_sandbox/reset")
            assert await r.sandbox_json("/_sandbox/messages") == []
            stats = await r.sandbox_json("/_sandbox/stats")
            assert set(v for k, v in stats.items() if k != "balance") == {0} and stats["balance"] == 100.0

    run(main)


def test_sandbox_accepts_a_json_body_too():
    async def main():
        async with rig() as r:
            async with httpx.AsyncClient(base_url=r.base_url) as client:
                response = await client.post("/sms/json", json={
                    "api_key": API_KEY, "api_secret": API_SECRET, "from": "Shop", "to": OK_NUMBER[1:],
                    "text": "hello"})
            assert response.status_code == 200
            body = response.json()
            assert body["message-count"] == "1" and body["messages"][0]["status"] == "0"

    run(main)


# --- as Vonage: Basic credentials, the callback's 100 characters, every signature method -----------


async def _post_sms(base_url, form, auth=None):
    async with httpx.AsyncClient(base_url=base_url, auth=auth) as client:
        response = await client.post("/sms/json", data=form)
    assert response.status_code == 200  # Vonage puts the outcome in the body
    return response.json()["messages"][0]


def test_credentials_are_accepted_as_http_basic_auth_as_vonage_takes_them():
    async def main():
        async with rig() as r:
            form = {"from": "Shop", "to": OK_NUMBER[1:], "text": "hello"}
            accepted = await _post_sms(r.base_url, form, auth=(API_KEY, API_SECRET))
            wrong = await _post_sms(r.base_url, form, auth=(API_KEY, "not-the-secret"))
            none = await _post_sms(r.base_url, form)
            assert (accepted["status"], wrong["status"], none["status"]) == ("0", "4", "2")

    run(main)


def test_a_callback_over_100_characters_is_refused_with_status_23_as_vonage_does():
    async def main():
        async with rig() as r:
            base = {"api_key": API_KEY, "api_secret": API_SECRET, "from": "Shop", "to": OK_NUMBER[1:], "text": "hi"}
            at_limit = "https://hooks.example/" + "d" * (100 - len("https://hooks.example/"))
            fits = await _post_sms(r.base_url, {**base, "callback": at_limit})
            too_long = await _post_sms(r.base_url, {**base, "callback": at_limit + "x"})
            assert (fits["status"], too_long["status"]) == ("0", "23")
            with pytest.raises(ProviderMisconfiguredError) as info:  # the adapter: every send would fail so
                await r.provider.send(SmsRequest(message_id="m", to=OK_NUMBER, body="hi",
                                                 status_callback=at_limit + "x"))
            assert info.value.code == "23"

    run(main)


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_an_hmac_account_signs_receipts_and_checks_requests_by_its_method(method):
    async def main():
        receiver = Receiver()
        receiver.method = method
        async with rig(receiver=receiver, api_secret="", signature_secret=SIGNATURE_SECRET,
                       signature_method=method) as r:
            await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.receipts) >= 1)
            assert r.receiver.bad_signatures == 0 and len(r.receiver.params[0]["sig"]) == len(
                hashlib.new(method).hexdigest())
        async with rig(api_secret="", signature_secret=SIGNATURE_SECRET, signature_method=method,
                       provider_signature_method="md5hash") as r:  # signed by another method than the account's
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(r.request())
            assert info.value.code == "14"

    run(main)
