"""A gateway killed with SIGKILL mid-run, twice, and restarted: no provider call is ever repeated for
a send whose result was known; the only possible repeats are sends flagged ambiguous."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from urllib.parse import parse_qs, urlsplit

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
from tests.support import Child, consume_until, produce

pytestmark = pytest.mark.integration

MESSAGES = 300


def calls_per_message(messages: list[dict]) -> Counter:
    return Counter(parse_qs(urlsplit(m["status_callback"]).query)["message_id"][0] for m in messages)


def test_a_gateway_killed_twice_mid_run_never_repeats_a_known_send(settings: Settings, tmp_path) -> None:
    settings.sms.rate_per_second, settings.sms.burst = 60.0, 1
    create_topics(settings)
    commands = [f.command() for _ in range(MESSAGES)]
    names = TopicNames(settings.kafka.topic_prefix)

    async def main() -> tuple[Counter, list[MessageOutcome], int]:
        sandbox = await serve("127.0.0.1", settings.sandbox.port, account_sid=settings.sms.account_sid,
                              auth_token=settings.sms.auth_token.get_secret_value(),
                              scenario=SandboxScenario(fail_rate=0.0, callback_delay=0.05))
        kills, children = 0, []
        try:
            await asyncio.to_thread(produce, settings.kafka.bootstrap_servers, names(commands_topic(Channel.SMS)),
                                    [(c.customer_id.encode(), encode(c)) for c in commands])
            async with httpx.AsyncClient() as client:
                async def sent() -> int:
                    return len((await client.get(f"{sandbox.base_url}/_sandbox/messages")).json())

                for share in (0.3, 0.6):
                    gateway = Child(["gateway", "sms"], settings, tmp_path / f"gateway-{kills}.log")
                    children.append(gateway)
                    while await sent() < MESSAGES * share:
                        assert gateway.alive(), gateway.output()
                        await asyncio.sleep(0.05)  # polling the sandbox while the gateway process works
                    gateway.stop(signal.SIGKILL)
                    kills += 1
                survivor = Child(["gateway", "sms"], settings, tmp_path / "gateway-last.log")
                children.append(survivor)
                ids = {c.message_id for c in commands}
                outcomes = [o for _, o in await asyncio.to_thread(
                    consume_until, settings.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                    lambda seen: ids <= {o.message_id for _, o in seen if o.status in ("sent", "ambiguous")},
                    120.0, MessageOutcome)]
                calls = calls_per_message((await client.get(f"{sandbox.base_url}/_sandbox/messages")).json())
        finally:
            for child in children:  # never leave a gateway process behind, whatever failed
                child.stop()
            await sandbox.aclose()
        return calls, outcomes, kills

    calls, outcomes, kills = asyncio.run(main())

    ambiguous = {o.message_id for o in outcomes if o.status == "ambiguous"}
    repeated = {message_id for message_id, n in calls.items() if n > 1}
    print(f"\n{MESSAGES} messages, {kills} SIGKILLs: {sum(calls.values())} provider calls, "
          f"{len(repeated)} repeated, {len(ambiguous)} flagged ambiguous")
    assert kills == 2
    assert repeated <= ambiguous  # a repeat is only ever of a send whose result was unknown
    assert set(calls) | ambiguous == {c.message_id for c in commands}  # nothing lost
