"""What a reply-taking gateway (SMS, WhatsApp) knows about contact points, ready before its webhooks are served:
the contact directory (from ``customers.profiles``) and the contact suppressions (``contacts.suppressions``),
each read to its end, then followed until the gateway stops. E-mail takes no replies and has neither."""

from __future__ import annotations

import asyncio
import contextlib
from typing import assert_never

from aiokafka import AIOKafkaConsumer

from connectors.gateways.directory import ContactDirectory
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.gateways.suppressions import Suppressions
from schemas.catalog import CONTACT_SUPPRESSIONS, CUSTOMER_PROFILES, TopicNames
from schemas.types import Channel
from streams.settings import Settings

TAKES_REPLIES = (Channel.SMS, Channel.WHATSAPP)


def sender_of(channel: Channel, settings: Settings) -> str:
    """The one sender of the channel's deployment (the provider counts and addresses replies to it)."""
    match channel:
        case Channel.SMS:
            return settings.sms.from_number
        case Channel.WHATSAPP:
            return settings.whatsapp.phone_number_id
        case Channel.EMAIL:
            return settings.email.sender
        case _ as unreachable:
            assert_never(unreachable)


class ContactState:
    def __init__(self, channel: Channel, settings: Settings, publisher: AiokafkaPublisher) -> None:
        names, key = TopicNames(settings.kafka.topic_prefix), settings.contacts.key.get_secret_value().encode()
        self._bootstrap, self._publisher = settings.kafka.bootstrap_servers, publisher
        self.directory = ContactDirectory(names(CUSTOMER_PROFILES), channel, key)
        self.suppressions = Suppressions(names(CONTACT_SUPPRESSIONS), channel, sender_of(channel, settings), key,
                                         publisher)
        self._followers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Reads both topics to their end, then follows them in the background."""
        for view in (self.directory, self.suppressions):
            follower = await view.restore(self._bootstrap, await self._publisher.partitions_for(view.topic))
            self._followers.append(follower)
            self._tasks.append(asyncio.create_task(view.follow(follower)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for follower in self._followers:
            await follower.stop()
