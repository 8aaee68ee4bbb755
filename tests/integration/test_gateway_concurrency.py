"""Many provider calls in flight, every guarantee kept: a slow call holds up only its own customer, a
customer's messages keep their order, and a gateway SIGKILLed with calls in flight (their ``attempting``
entries written as a group, no result yet) never calls any of them again and flags each one."""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
import pytest

from connectors.sandbox.twilio import SandboxScenario, serve
from schemas.catalog import MESSAGE_OUTCOMES, TopicNames, commands_topic
from schemas.codec import encode
from schemas.messages import MessageOutcome
from schemas.types import Channel
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.gateways import Harness
from tests.integration.test_gateway_crash import calls_per_message
from tests.integration.test_sms_gateway import run
from tests.support import Child, consume_until, produce

pytestmark = pytest.mark.integration

SLOW = "9999"  # the sandbox answers numbers ending so only after SLOW_DELAY (it stores the message at once)
SLOW_DELAY = 8.0


def test_a_slow_provider_call_holds_up_only_its_own_customers_later_messages(settings: Settings) -> None:
    settings.sms.rate_per_second, settings.sms.burst = 1000.0, 100
    customer = str(uuid.uuid4())
    mine = [f.command(customer_id=customer, to=f"+4860123{SLOW}", body="first, slow"),
            f.command(customer_id=customer, body="second"), f.command(customer_id=customer, body="third")]
    others = [f.command() for _ in range(20)]

    async def scenario(h: Harness) -> None:
        await h.send(*mine, *others)
        everything = {c.message_id for c in [*mine, *others]}
        outcomes = await h.outcomes(lambda seen: everything <= {o.message_id for o in seen if o.status == "sent"})
        sent = [o.message_id for o in outcomes if o.status == "sent"]
        # Nobody else waited for the slow call ...
        assert max(sent.index(c.message_id) for c in others) < sent.index(mine[0].message_id)
        # ... but the same customer's next messages did: called after its answer, in order.
        assert [sent.index(c.message_id) for c in mine] == sorted(sent.index(c.message_id) for c in mine)
        called = [m["body"] for m in await h.sandbox_messages() if m["body"] in ("first, slow", "second", "third")]
        assert called == ["first, slow", "second", "third"]

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.05, slow_suffix=SLOW,
                                            slow_delay=SLOW_DELAY))


def test_a_gateway_killed_with_calls_in_flight_never_calls_them_again_and_flags_each(settings: Settings,
                                                                                      tmp_path) -> None:
    create_topics(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    in_flight = [f.command(to=f"+48601{i:03d}{SLOW}") for i in range(30)]  # answered only after the kill
    quick = [f.command() for _ in range(30)]
    commands = [*in_flight, *quick]

    async def main() -> tuple[dict, list[MessageOutcome]]:
        sandbox = await serve("127.0.0.1", settings.sandbox.port, account_sid=settings.sms.account_sid,
                              auth_token=settings.sms.auth_token.get_secret_value(),
                              scenario=SandboxScenario(fail_rate=0.0, callback_delay=0.05, slow_suffix=SLOW,
                                                       slow_delay=15.0))
        children = []
        try:
            await asyncio.to_thread(produce, settings.kafka.bootstrap_servers, names(commands_topic(Channel.SMS)),
                                    [(c.customer_id.encode(), encode(c)) for c in commands])
            async with httpx.AsyncClient() as client:
                async def calls() -> list[dict]:
                    return (await client.get(f"{sandbox.base_url}/_sandbox/messages")).json()

                first = Child(["gateway", "sms"], settings, tmp_path / "gateway-0.log")
                children.append(first)
                quick_ids = {c.message_id for c in quick}
                while len(await calls()) < len(commands):  # every call made; the slow ones still unanswered
                    assert first.alive(), first.output()
                    await asyncio.sleep(0.05)  # polling the sandbox while the gateway process works
                await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                                        lambda seen: quick_ids <= {o.message_id for _, o in seen
                                                                   if o.status == "sent"}, 60.0, MessageOutcome)
                first.stop(signal.SIGKILL)  # between the slow calls' ledger entries and their results
                children.append(Child(["gateway", "sms"], settings, tmp_path / "gateway-1.log"))
                ids = {c.message_id for c in commands}
                outcomes = [o for _, o in await asyncio.to_thread(
                    consume_until, settings.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                    lambda seen: ids <= {o.message_id for _, o in seen if o.status in ("sent", "ambiguous")},
                    120.0, MessageOutcome)]
                made = calls_per_message(await calls())
        finally:
            for child in children:
                child.stop()
            await sandbox.aclose()
        return made, outcomes

    made, outcomes = asyncio.run(main())

    assert set(made.values()) == {1}  # no message called twice
    ambiguous = {o.message_id for o in outcomes if o.status == "ambiguous"}
    assert {c.message_id for c in in_flight} <= ambiguous  # each call in flight at the kill is flagged
    assert not {c.message_id for c in quick} & ambiguous  # a known result is not
