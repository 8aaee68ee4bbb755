"""The production Twilio adapter against the real sandbox server on loopback, with a real receiver."""

import asyncio
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx
import pytest
from aiohttp import web

from connectors.errors import (ProviderAmbiguousError, ProviderMisconfiguredError, ProviderRejectedError,
                               ProviderTransientError, SignatureError)
from connectors.providers.base import SmsRequest
from connectors.providers.twilio import TwilioSmsProvider
from connectors.sandbox.twilio import SandboxScenario, serve
from connectors.sandbox.twilio_scenario import planned_outcome
from connectors.webhooks.twilio_inbound import TwilioInbound, parse_inbound
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


class InboundReceiver(Receiver):
    """The number's messaging URL: verifies X-Twilio-Signature and parses the incoming message."""

    def __init__(self, auth_token=AUTH_TOKEN, fail_first=0):
        super().__init__(auth_token, fail_first)
        self.inbound: list[TwilioInbound] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        pairs = [(key, str(value)) for key, value in form.items()]
        try:
            verify_signature(self.auth_token, self.url, pairs, request.headers.get(SIGNATURE_HEADER))
        except SignatureError:
            self.bad_signatures += 1
            return web.Response(status=403)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.forms.append(dict(pairs))
        self.inbound.append(parse_inbound(dict(pairs)))
        return web.Response(text="<Response/>", content_type="text/xml")


@dataclass
class Rig:
    provider: TwilioSmsProvider
    receiver: Receiver
    base_url: str
    inbound: InboundReceiver

    def request(self, to=OK_NUMBER, body="Your order #1042 has shipped", callback=True):
        return SmsRequest(message_id="msg-1", to=to, body=body,
                          status_callback=self.receiver.url if callback else None)

    async def sandbox_json(self, path):
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            response = await client.request("POST" if path == "/_sandbox/reset" else "GET", path)
            response.raise_for_status()
            return response.json()

    async def customer_writes(self, **body):
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            return await client.post("/_sandbox/inbound", json=body)

    async def list_api(self, url=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", auth=(ACCOUNT_SID, AUTH_TOKEN),
                       **params):
        async with httpx.AsyncClient(base_url=self.base_url, auth=auth) as client:
            return await client.get(url, params=params or None)

    async def wait_for_stats(self, predicate):
        deadline = time.monotonic() + DEADLINE
        while not predicate(stats := await self.sandbox_json("/_sandbox/stats")):
            assert time.monotonic() < deadline, f"stats never matched: {stats}"
            await asyncio.sleep(0.02)  # polling the sandbox: the condition is what is awaited
        return stats

    async def wait_until_sent(self):
        """Until no message is still queued (only a sent message has a date_sent the list filters on)."""
        deadline = time.monotonic() + DEADLINE
        while any(m["status"] == "queued" for m in await self.sandbox_json("/_sandbox/messages")):
            assert time.monotonic() < deadline, "messages never left the queue"
            await asyncio.sleep(0.02)  # polling the sandbox: the condition is what is awaited


@asynccontextmanager
async def rig(scenario=None, receiver=None, auth_token=AUTH_TOKEN, inbound=None, inbound_url="receiver",
              **sandbox_kwargs):
    receiver = receiver or Receiver()
    inbound = inbound or InboundReceiver()
    app = web.Application()
    app.router.add_post("/twilio/status", receiver.handle)
    app.router.add_post("/twilio/inbound", inbound.handle)
    receiver_runner = web.AppRunner(app, access_log=None)
    await receiver_runner.setup()
    await web.TCPSite(receiver_runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{receiver_runner.addresses[0][1]}/twilio/status"
    inbound.url = f"http://127.0.0.1:{receiver_runner.addresses[0][1]}/twilio/inbound"
    sandbox = await serve("127.0.0.1", 0, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                          scenario=scenario or SandboxScenario(**FAST),
                          inbound_url=inbound.url if inbound_url == "receiver" else inbound_url, **sandbox_kwargs)
    provider = TwilioSmsProvider(ACCOUNT_SID, auth_token, FROM, base_url=sandbox.base_url, timeout=5.0)
    try:
        yield Rig(provider, receiver, sandbox.base_url, inbound)
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
            assert stats == {"requests": 2, "accepted": 1, "rejected": 1, "rate_limited": 0, "dropped": 0,
                             "callbacks_sent": 2, "callbacks_failed": 0, "inbound": 0, "inbound_failed": 0}
            (message,) = await r.sandbox_json("/_sandbox/messages")
            assert message["sid"] == receipt.provider_message_id
            assert (message["to"], message["body"], message["status"]) == (OK_NUMBER, "hello", "delivered")
            assert message["status_callback"] == r.receiver.url
            await r.sandbox_json("/_sandbox/reset")
            assert await r.sandbox_json("/_sandbox/messages") == []
            assert set((await r.sandbox_json("/_sandbox/stats")).values()) == {0}

    run(main)


# --- ambiguous sends and reconciliation through the list API -------------------------------


def wait_for_sent(r, predicate=lambda rc: len(rc.statuses) >= 1):
    return r.receiver.wait_until(predicate)


def test_dropped_response_is_ambiguous_and_find_reconciles_it():
    async def main():
        async with rig(SandboxScenario(**FAST, drop_response_every=1)) as r:
            sent_after = datetime.now(timezone.utc)
            request = r.request()
            with pytest.raises(ProviderAmbiguousError):
                await r.provider.send(request)
            (stored,) = await r.sandbox_json("/_sandbox/messages")
            await wait_for_sent(r)  # Twilio's DateSent filter sees a message once it left the queue
            receipt = await r.provider.find(request, sent_after)
            assert receipt is not None and receipt.provider_message_id == stored["sid"]
            assert receipt.provider == "twilio" and receipt.segments == 1
            assert receipt.status in ("sent", "delivered")
            never_sent = SmsRequest(message_id="msg-2", to=OK_NUMBER, body="never sent")
            assert await r.provider.find(never_sent, sent_after) is None
            assert await r.provider.find(r.request(to="+31687654321"), sent_after) is None
            assert await r.provider.find(request, datetime.now(timezone.utc) + timedelta(seconds=2)) is None
            stats = await r.wait_for_stats(lambda s: s["callbacks_sent"] == 2)
            assert (stats["accepted"], stats["dropped"]) == (1, 1)
            # The dropped message is delivered and reported like any other.
            assert r.receiver.statuses_of(stored["sid"]) == [("sent", None), ("delivered", None)]

    run(main)


def test_drop_response_every_second_accepted_message_counts_only_accepted_ones():
    async def main():
        async with rig(SandboxScenario(**FAST, drop_response_every=2)) as r:
            first = await r.provider.send(r.request(callback=False))
            with pytest.raises(ProviderRejectedError):  # rejected: does not count towards the drop
                await r.provider.send(r.request(to="not-a-number", callback=False))
            with pytest.raises(ProviderAmbiguousError):
                await r.provider.send(r.request(callback=False))
            third = await r.provider.send(r.request(callback=False))
            stats = await r.sandbox_json("/_sandbox/stats")
            assert (stats["requests"], stats["accepted"], stats["rejected"], stats["dropped"]) == (4, 3, 1, 1)
            sids = [m["sid"] for m in await r.sandbox_json("/_sandbox/messages")]
            assert len(sids) == 3 and sids[0] == first.provider_message_id and sids[2] == third.provider_message_id

    run(main)


def test_find_picks_the_newest_of_several_identical_messages_and_reads_many_pages():
    async def main():
        async with rig(SandboxScenario(**{**FAST, "callback_delay": 0.0})) as r:
            sent_after = datetime.now(timezone.utc)
            for _ in range(54):  # more than one 50-message page
                await r.provider.send(r.request(body="filler", callback=False))
            last = await r.provider.send(r.request(callback=False))
            for _ in range(3):
                await r.provider.send(r.request(body="filler", callback=False))
            await r.wait_until_sent()
            assert (await r.provider.find(r.request(), sent_after)).provider_message_id == last.provider_message_id

    run(main)


def test_list_api_is_shaped_like_twilios():
    async def main():
        async with rig() as r:
            before = datetime.now(timezone.utc).replace(microsecond=0)
            receipt = await r.provider.send(r.request())
            await wait_for_sent(r, lambda rc: len(rc.statuses) >= 2)
            response = await r.list_api(To=OK_NUMBER, From=FROM, **{"DateSent>": before.date().isoformat()},
                                        PageSize="50")
            assert response.status_code == 200
            page = response.json()
            assert {"messages", "next_page_uri", "page", "page_size", "uri", "first_page_uri",
                    "previous_page_uri", "start", "end"} <= page.keys()
            assert (page["page"], page["page_size"], page["next_page_uri"]) == (0, 50, None)
            assert page["uri"].startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?")
            (message,) = page["messages"]
            assert message["sid"] == receipt.provider_message_id
            assert (message["to"], message["from"], message["body"]) == (OK_NUMBER, FROM, "Your order #1042 has shipped")
            assert (message["status"], message["num_segments"], message["error_code"]) == ("delivered", "1", None)
            assert message["direction"] == "outbound-api" and message["account_sid"] == ACCOUNT_SID
            for key in ("date_created", "date_sent", "date_updated"):
                assert message[key].endswith(" +0000") and message[key][3:5] == ", "  # "Sat, 22 Nov 2026 11:00:00 +0000"
                assert parsedate_to_datetime(message[key]) >= before
            assert "status_callback" not in message  # like Twilio: not in the resource

    run(main)


def test_list_api_filters_by_to_from_and_sent_date():
    async def main():
        async with rig() as r:
            await r.provider.send(r.request(callback=False))
            await r.provider.send(r.request(to="+31687654321", callback=False))
            await r.provider.send(SmsRequest(message_id="m", to=OK_NUMBER, body="from the brand", sender="Shop"))
            await r.wait_for_stats(lambda s: s["accepted"] == 3)
            await r.wait_until_sent()
            today = datetime.now(timezone.utc).date()
            everything = (await r.list_api()).json()["messages"]
            assert len(everything) == 3
            to_ok = (await r.list_api(To=OK_NUMBER)).json()["messages"]
            assert {m["from"] for m in to_ok} == {FROM, "Shop"}
            assert len((await r.list_api(To=OK_NUMBER, From=FROM)).json()["messages"]) == 1
            assert len((await r.list_api(**{"DateSent>": today.isoformat()})).json()["messages"]) == 3
            assert len((await r.list_api(**{"DateSent": today.isoformat()})).json()["messages"]) == 3
            tomorrow = (today + timedelta(days=1)).isoformat()
            assert (await r.list_api(**{"DateSent>": tomorrow})).json()["messages"] == []
            assert len((await r.list_api(**{"DateSent<": tomorrow})).json()["messages"]) == 3
            bad = await r.list_api(**{"DateSent>": "last tuesday"})
            assert bad.status_code == 400 and bad.json()["code"] == 20001

    run(main)


def test_list_api_queued_messages_have_no_date_sent_so_the_date_filter_skips_them():
    async def main():
        async with rig(SandboxScenario(**{**FAST, "callback_delay": 30.0})) as r:
            await r.provider.send(r.request(callback=False))
            (message,) = (await r.list_api()).json()["messages"]
            assert message["status"] == "queued" and message["date_sent"] is None
            today = datetime.now(timezone.utc).date().isoformat()
            assert (await r.list_api(**{"DateSent>": today})).json()["messages"] == []

    run(main)


def test_list_api_pages_newest_first_with_next_page_uri():
    async def main():
        async with rig(SandboxScenario(**{**FAST, "callback_delay": 0.0})) as r:
            sids = [(await r.provider.send(r.request(body=f"n{i}", callback=False))).provider_message_id
                    for i in range(5)]
            await r.wait_until_sent()
            seen, pages = [], 0
            page = (await r.list_api(To=OK_NUMBER, PageSize="2")).json()
            while True:
                pages += 1
                assert page["page_size"] == 2 and len(page["messages"]) <= 2
                seen += [m["sid"] for m in page["messages"]]
                url = page["next_page_uri"]
                if not url:
                    break
                assert url.startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?") and "PageToken=PA" in url
                page = (await r.list_api(url)).json()
            assert pages == 3 and seen == list(reversed(sids))

    run(main)


def test_list_api_needs_the_account_credentials():
    async def main():
        async with rig() as r:
            response = await r.list_api(auth=(ACCOUNT_SID, "wrong"))
            assert response.status_code == 401 and response.json()["code"] == 20003
            other = await r.list_api(url="/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json")
            assert other.status_code == 401

    run(main)


# --- inbound messages (customer replies) ---------------------------------------------------


CUSTOMER = "+48601234567"


def test_inbound_stop_reaches_the_receiver_signed_with_twilios_fields():
    async def main():
        async with rig() as r:
            response = await r.customer_writes(**{"from": CUSTOMER, "text": "STOP"})
            assert response.status_code == 200
            sid = response.json()["sid"]
            assert sid.startswith("SM") and len(sid) == 34 and int(sid[2:], 16) >= 0
            # answered only after the receiver said 2xx: no waiting needed
            (inbound,) = r.inbound.inbound
            assert inbound == TwilioInbound(provider_message_id=sid, from_number=CUSTOMER, to_number=FROM,
                                            text="STOP")
            form = r.inbound.forms[0]
            assert (form["MessageSid"], form["AccountSid"], form["NumMedia"]) == (sid, ACCOUNT_SID, "0")
            assert form["From"] == CUSTOMER and form["To"] == FROM and form["Body"] == "STOP"
            assert r.inbound.bad_signatures == 0
            stats = await r.sandbox_json("/_sandbox/stats")
            assert (stats["inbound"], stats["inbound_failed"], stats["requests"]) == (1, 0, 0)

    run(main)


def test_inbound_is_addressed_to_the_configured_account_number_and_keeps_unicode():
    async def main():
        async with rig(from_number="+15005550001") as r:
            response = await r.customer_writes(**{"from": CUSTOMER, "text": "Stop, dziękuję 🙏"})
            assert response.status_code == 200
            (inbound,) = r.inbound.inbound
            assert inbound.to_number == "+15005550001" and inbound.text == "Stop, dziękuję 🙏"

    run(main)


def test_inbound_signed_with_the_account_token_fails_another_token():
    async def main():
        async with rig(inbound=InboundReceiver(auth_token="not-the-account-token")) as r:
            response = await r.customer_writes(**{"from": CUSTOMER, "text": "STOP"})
            assert response.status_code == 502 and response.json()["delivered"] is False
            assert r.inbound.bad_signatures == 1 and r.inbound.inbound == []  # 4xx: not retried
            assert (await r.sandbox_json("/_sandbox/stats"))["inbound_failed"] == 1

    run(main)


def test_inbound_is_retried_when_the_receiver_answers_5xx():
    async def main():
        async with rig(inbound=InboundReceiver(fail_first=2)) as r:
            response = await r.customer_writes(**{"from": CUSTOMER, "text": "STOP"})
            assert response.status_code == 200
            assert [m.provider_message_id for m in r.inbound.inbound] == [response.json()["sid"]]

    run(main)


def test_inbound_to_a_dead_receiver_fails_after_retries():
    async def main():
        scenario = SandboxScenario(**{**FAST, "callback_retry_delay": 0.01}, callback_retries=1)
        async with rig(scenario, inbound_url=f"http://127.0.0.1:{free_port()}/twilio/inbound") as r:
            response = await r.customer_writes(**{"from": CUSTOMER, "text": "STOP"})
            assert response.status_code == 502
            assert (await r.sandbox_json("/_sandbox/stats"))["inbound_failed"] == 1

    run(main)


def test_inbound_without_inbound_url_or_with_a_bad_body_is_refused():
    async def main():
        async with rig(inbound_url=None) as r:
            assert (await r.customer_writes(**{"from": CUSTOMER, "text": "STOP"})).status_code == 409
        async with rig() as r:
            for body in ({"text": "STOP"}, {"from": "0601234567", "text": "STOP"}, {"from": CUSTOMER},
                         {"from": CUSTOMER, "text": 7}):
                assert (await r.customer_writes(**body)).status_code == 400
            async with httpx.AsyncClient(base_url=r.base_url) as client:
                assert (await client.post("/_sandbox/inbound", content=b"not json")).status_code == 400
            assert r.inbound.inbound == []

    run(main)


def test_inbound_message_is_listed_as_inbound_but_not_found_as_an_outbound_send():
    async def main():
        async with rig() as r:
            sent_after = datetime.now(timezone.utc)
            sid = (await r.customer_writes(**{"from": OK_NUMBER, "text": "Your order #1042 has shipped"})).json()["sid"]
            (listed,) = (await r.list_api()).json()["messages"]
            assert (listed["sid"], listed["direction"], listed["status"]) == (sid, "inbound", "received")
            assert (listed["from"], listed["to"]) == (OK_NUMBER, FROM)
            assert await r.provider.find(r.request(), sent_after) is None  # same body, other direction

    run(main)


# --- fetch one message, and its price once billed ---------------------------------------------


def test_fetch_one_message_returns_its_resource_and_404_20404_for_an_unknown_sid():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request())
            sid = receipt.provider_message_id
            one = await r.list_api(url=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
            assert one.status_code == 200
            message = one.json()
            assert (message["sid"], message["to"], message["from"]) == (sid, OK_NUMBER, FROM)
            assert message["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"
            missing = await r.list_api(url=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/SM{'0' * 32}.json")
            assert (missing.status_code, missing.json()["code"]) == (404, 20404)
            stranger = await r.list_api(url=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json",
                                        auth=(ACCOUNT_SID, "not-the-token"))
            assert (stranger.status_code, stranger.json()["code"]) == (401, 20003)

    run(main)


def test_price_is_null_until_the_message_is_billed_then_a_charge_per_segment():
    async def main():
        scenario = SandboxScenario(fail_rate=0.0, callback_delay=0.3, segment_price=0.0079)
        async with rig(scenario=scenario) as r:
            receipt = await r.provider.send(r.request(body="ש" * 71))  # two UCS-2 segments
            url = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{receipt.provider_message_id}.json"
            queued = (await r.list_api(url=url)).json()
            assert (queued["status"], queued["price"], queued["price_unit"]) == ("queued", None, None)
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            delivered = (await r.list_api(url=url)).json()
            assert (delivered["status"], delivered["price"], delivered["price_unit"]) == ("delivered", "-0.01580", "USD")

    run(main)


def test_a_failed_message_is_never_billed():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(r.request(to="+31612340007"))  # 0007: failed, 30007
            await r.receiver.wait_until(lambda rc: len(rc.statuses) >= 2)
            message = (await r.list_api(url=f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/"
                                            f"{receipt.provider_message_id}.json")).json()
            assert (message["status"], message["price"]) == ("failed", None)

    run(main)
