"""The production Twilio adapter against the real sandbox server on loopback, with a real receiver."""

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from aiohttp import web

from connectors.errors import ProviderMisconfiguredError, ProviderRejectedError, ProviderTransientError, SignatureError
from connectors.providers.base import SmsRequest
from connectors.providers.twilio import TwilioSmsProvider
from connectors.sandbox.twilio import SandboxScenario, serve
from connectors.sandbox.twilio_scenario import planned_outcome
from connectors.webhooks.twilio_signature import SIGNATURE_HEADER, verify_signature
from connectors.webhooks.twilio_status import TwilioStatus, parse_status_callback

ACCOUNT_SID = "AC" + "5a" * 16
AUTH_TOKEN = "sandbox-test-token"
FROM = "+15005550006"
OK_NUMBER = "+31612345678"
FAST = dict(fail_rate=0.0, callback_delay=0.02, callback_retry_delay=0.02)
DEADLINE = 5.0


class Receiver:
    """A tiny status-callback endpoint that verifies X-Twilio-Signature like the gateway will."""

    def __init__(self, auth_token=AUTH_TOKEN, fail_first=0):
        self.auth_token = auth_token
        self.fail_first = fail_first
        self.statuses: list[TwilioStatus] = []
        self.forms: list[dict[str, str]] = []
        self.bad_signatures = 0
        self.changed = asyncio.Condition()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        pairs = [(key, str(value)) for key, value in form.items()]
        try:
            verify_signature(self.auth_token, self.url, pairs, request.headers.get(SIGNATURE_HEADER))
        except SignatureError:
            async with self.changed:
                self.bad_signatures += 1
                self.changed.notify_all()
            return web.Response(status=403)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        async with self.changed:
            self.forms.append(dict(pairs))
            self.statuses.append(parse_status_callback(form))
            self.changed.notify_all()
        return web.Response(text="")

    async def wait_until(self, predicate):
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate(self)), DEADLINE)

    def statuses_of(self, sid):
        return [(s.status, s.error_code) for s in self.statuses if s.provider_message_id == sid]


@dataclass
class Rig:
    provider: TwilioSmsProvider
    receiver: Receiver
    base_url: str

    def request(self, to=OK_NUMBER, body="Your order #1042 has shipped", callback=True):
        return SmsRequest(message_id="msg-1", to=to, body=body,
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
            await asyncio.sleep(0.02)
        return stats


@asynccontextmanager
async def rig(scenario=None, receiver=None, auth_token=AUTH_TOKEN):
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post("/twilio/status", receiver.handle)
    receiver_runner = web.AppRunner(app, access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{receiver_runner.addresses[0][1]}/twilio/status"
    sandbox = await serve("127.0.0.1", 0, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                          scenario=scenario or SandboxScenario(**FAST))
    provider = TwilioSmsProvider(ACCOUNT_SID, auth_token, FROM, base_url=sandbox.base_url, timeout=5.0)
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


# --- happy path ----------------------------------------------------------------------------


def test_accepted_message_gets_signed_sent_then_delivered_callbacks():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request())
            assert receipt.provider == "twilio" and receipt.status == "queued" and receipt.segments == 1
            assert receipt.provider_message_id.startswith("SM") and len(receipt.provider_message_id) == 34
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("sent", None), ("delivered", None)]
            assert r.receiver.bad_signatures == 0
            form = r.receiver.forms[-1]
            assert form["To"] == OK_NUMBER and form["From"] == FROM and form["AccountSid"] == ACCOUNT_SID
            assert form["ApiVersion"] == "2010-04-01" and "ErrorCode" not in form

    run(main)


def test_num_segments_comes_from_the_sms_segmenter():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(body="ש" * 71, callback=False))  # UCS-2: 70 per single SMS
            assert receipt.segments == 2

    run(main)


def test_callbacks_are_signed_with_the_account_token_so_another_token_fails_verification():
    async def main():
        async with rig(receiver=Receiver(auth_token="not-the-account-token")) as r:
            await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: rc.bad_signatures >= 2)
            assert r.receiver.statuses == []

    run(main)


# --- failures reported by callback ---------------------------------------------------------


def test_number_ending_0005_ends_undelivered_with_error_30005():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(to="+15005550005"))
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert r.receiver.statuses_of(receipt.provider_message_id) == [("sent", None), ("undelivered", "30005")]
            assert r.receiver.forms[-1]["ErrorCode"] == "30005"

    run(main)


def test_fail_rate_outcome_is_deterministic_per_number():
    scenario = SandboxScenario(fail_rate=0.5)
    numbers = [f"+3161234{n:04d}" for n in range(1, 200) if n not in (3, 5, 7)]
    outcomes = [planned_outcome(n, scenario) for n in numbers]
    assert outcomes == [planned_outcome(n, SandboxScenario(fail_rate=0.5)) for n in numbers]
    failing = sum(status != "delivered" for status, _ in outcomes)
    assert 0.3 * len(numbers) < failing < 0.7 * len(numbers)
    assert {code for _, code in outcomes} == {None, "30003", "30005", "30007"}
    assert all(planned_outcome(n, SandboxScenario(fail_rate=0.0)) == ("delivered", None) for n in numbers)
    assert all(planned_outcome(n, SandboxScenario(fail_rate=1.0))[0] != "delivered" for n in numbers)


# --- HTTP-level errors through the production adapter -------------------------------------


def test_wrong_credentials_raise_misconfigured():
    async def main():
        async with rig(auth_token="wrong-token") as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(r.request())
            assert info.value.code == "20003"
            assert (await r.sandbox_json("/_sandbox/stats"))["accepted"] == 0

    run(main)


def test_rate_limit_every_request_raises_transient_with_retry_after_1():
    async def main():
        async with rig(SandboxScenario(**FAST, rate_limit_every=1)) as r:
            with pytest.raises(ProviderTransientError) as info:
                await r.provider.send(r.request())
            assert info.value.retry_after == 1.0 and info.value.code == "20429"

    run(main)


def test_rate_limit_every_third_request_lets_two_through():
    async def main():
        async with rig(SandboxScenario(**FAST, rate_limit_every=3)) as r:
            await r.provider.send(r.request(callback=False))
            await r.provider.send(r.request(callback=False))
            with pytest.raises(ProviderTransientError):
                await r.provider.send(r.request(callback=False))
            stats = await r.sandbox_json("/_sandbox/stats")
            assert (stats["requests"], stats["accepted"], stats["rate_limited"]) == (3, 2, 1)

    run(main)


def test_non_e164_number_is_rejected_with_21211_without_leaking_it():
    async def main():
        async with rig() as r:
            with pytest.raises(ProviderRejectedError) as info:
                await r.provider.send(r.request(to="0612345678"))
            assert info.value.code == "21211" and "0612345678" not in str(info.value)

    run(main)


# --- delivery quirks -----------------------------------------------------------------------


def test_duplicate_receipts_sends_every_callback_twice():
    async def main():
        async with rig(SandboxScenario(**FAST, duplicate_receipts=True)) as r:
            receipt = await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 4)
            assert [s for s, _ in r.receiver.statuses_of(receipt.provider_message_id)] == [
                "sent", "sent", "delivered", "delivered"]

    run(main)


def test_reorder_receipts_sends_delivered_before_sent():
    async def main():
        async with rig(SandboxScenario(**FAST, reorder_receipts=True)) as r:
            receipt = await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert [s for s, _ in r.receiver.statuses_of(receipt.provider_message_id)] == ["delivered", "sent"]
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert message["status"] == "delivered"

    run(main)


def test_callback_is_retried_when_the_receiver_answers_5xx():
    async def main():
        async with rig(receiver=Receiver(fail_first=1)) as r:
            await r.provider.send(r.request())
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            assert [s.status for s in r.receiver.statuses] == ["sent", "delivered"]
            stats = await r.wait_for_stats(lambda s: s["callbacks_sent"] == 2)
            assert stats["callbacks_failed"] == 0

    run(main)


def test_callback_to_a_dead_receiver_is_counted_failed_after_retries():
    async def main():
        scenario = SandboxScenario(**{**FAST, "callback_retry_delay": 0.01}, callback_retries=2)
        async with rig(scenario) as r:
            dead = SmsRequest(message_id="m", to=OK_NUMBER, body="hi",
                              status_callback=f"http://127.0.0.1:{free_port()}/twilio/status")
            await r.provider.send(dead)
            stats = await r.wait_for_stats(lambda s: s["callbacks_failed"] == 2)
            assert stats["callbacks_sent"] == 0

    run(main)


# --- inspection endpoints ------------------------------------------------------------------


def test_inspection_lists_messages_counts_traffic_and_resets():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(body="hello"))
            with pytest.raises(ProviderRejectedError):
                await r.provider.send(r.request(to="not-a-number"))
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            stats = await r.wait_for_stats(lambda s: s["callbacks_sent"] == 2)
            assert stats == {"requests": 2, "accepted": 1, "rejected": 1, "rate_limited": 0,
                             "callbacks_sent": 2, "callbacks_failed": 0}
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert message["sid"] == receipt.provider_message_id
            assert (message["to"], message["body"], message["status"]) == (OK_NUMBER, "hello", "delivered")
            assert message["status_callback"] == r.receiver.url
            await r.sandbox_json("/_sandbox/reset")
            assert await r.sandbox_json("/_sandbox/messages") == []
            assert set((await r.sandbox_json("/_sandbox/stats")).values()) == {0}

    run(main)
