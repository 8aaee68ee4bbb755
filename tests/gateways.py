"""A harness for gateway tests: a provider sandbox and a (restartable) gateway in one event loop,
on the real broker, with topics of the test's own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import httpx
from prometheus_client import CollectorRegistry

from connectors.gateways.service import run_gateway
from schemas.catalog import CUSTOMER_PROFILES, MESSAGE_OUTCOMES, TopicNames, commands_topic
from schemas.codec import encode
from schemas.customers import CustomerProfile
from schemas.messages import MessageOutcome, SendCommand
from schemas.types import Channel, Purpose
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import create_topics
from tests.support import consume_until, http_ok, produce, wait_until

Scenario = Callable[["Harness"], Awaitable[None]]
Sandbox = Callable[[Settings], AbstractAsyncContextManager[str]]  # yields the sandbox's inspection base URL


class Harness:
    def __init__(self, channel: Channel, settings: Settings, sandbox_url: str) -> None:
        self.channel, self.settings, self.sandbox_url = channel, settings, sandbox_url
        self.names = TopicNames(settings.kafka.topic_prefix)
        self.metrics = Metrics(registry=CollectorRegistry())
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    @property
    def config(self):
        return getattr(self.settings, self.channel.value)

    async def start_gateway(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(run_gateway(self.channel, self.settings, self._stop, metrics=self.metrics))
        health = f"http://127.0.0.1:{self.config.webhook_port}/health"
        await asyncio.to_thread(wait_until, lambda: http_ok(health) or self._task.done(), 30, "gateway up")

    async def stop_gateway(self) -> None:
        assert self._stop and self._task
        self._stop.set()
        await self._task

    async def send(self, *commands: SendCommand | bytes) -> None:
        """Produces to the lane each command belongs to (raw bytes: the transactional lane)."""
        for lane in (Purpose.TRANSACTIONAL, Purpose.MARKETING):
            records = [(b"k", c) if isinstance(c, bytes) else (c.customer_id.encode(), encode(c)) for c in commands
                       if (Purpose(c.purpose) if isinstance(c, SendCommand) else Purpose.TRANSACTIONAL) == lane]
            if records:
                await asyncio.to_thread(produce, self.settings.kafka.bootstrap_servers,
                                        self.names(commands_topic(self.channel, lane)), records)

    async def outcomes(self, done: Callable[[list[MessageOutcome]], bool]) -> list[MessageOutcome]:
        records = await asyncio.to_thread(consume_until, self.settings.kafka.bootstrap_servers,
                                          self.names(MESSAGE_OUTCOMES), lambda seen: done([o for _, o in seen]),
                                          60.0, MessageOutcome)
        return [o for _, o in records]

    async def sandbox_messages(self) -> list[dict]:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{self.sandbox_url}/_sandbox/messages")).json()


def given_profiles(settings: Settings, *profiles: CustomerProfile) -> None:
    """Profiles on ``customers.profiles``, where a gateway's contact directory finds who a reply is from."""
    create_topics(settings)
    produce(settings.kafka.bootstrap_servers, TopicNames(settings.kafka.topic_prefix)(CUSTOMER_PROFILES),
            [(p.customer_id.encode(), encode(p)) for p in profiles])


def run(channel: Channel, settings: Settings, sandbox: Sandbox, scenario: Scenario) -> None:
    create_topics(settings)

    async def main() -> None:
        async with sandbox(settings) as sandbox_url:
            harness = Harness(channel, settings, sandbox_url)
            await harness.start_gateway()
            try:
                await scenario(harness)
            finally:
                await harness.stop_gateway()

    asyncio.run(main())


def statuses(outcomes: list[MessageOutcome], message_id: str) -> list[str]:
    """A message's story as a data team reads it: outcomes de-duplicated on outcome_id, in order."""
    story = {o.outcome_id: o.status for o in outcomes if o.message_id == message_id}
    return list(story.values())


