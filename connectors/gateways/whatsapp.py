"""The WhatsApp channel: approved templates (or free text inside the 24-hour window) through the Cloud API,
and the webhook that turns signed status and inbound events into outcomes and inbound messages.

Status webhooks carry ``biz_opaque_callback_data``, which the sender fills with the message's ids, so
a receipt needs no lookup. An inbound message names only a phone number: the gateway remembers which
customer each number it messaged belongs to (bounded, in memory); a reply from a number it does not
know is dead-lettered with that reason, never dropped. Wamids embed the customer's number, so they
are never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import OrderedDict
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from connectors.errors import SignatureError, UnknownSenderError, WebhookPayloadError
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt, WhatsAppProvider, WhatsAppRequest, WhatsAppTemplate
from connectors.webhooks.meta_events import WhatsAppInbound, WhatsAppStatus, outcome_status, parse_webhook
from connectors.webhooks.meta_signature import SIGNATURE_HEADER, verify_challenge, verify_signature
from schemas.catalog import MESSAGE_INBOUND, TopicNames
from schemas.codec import encode
from schemas.messages import InboundMessage, OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.ids import outcome_id
from streams.metrics import Metrics
from streams.publish import DeadLetterWriter, OutcomeWriter, Publisher, for_receipt
from streams.settings import WhatsAppGatewaySettings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/whatsapp"


class Contacts:
    """Which customer (and store) a WhatsApp number belongs to, learnt from the messages sent to it."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self._by_number: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def learn(self, number: str, customer_id: str, store_id: str) -> None:
        self._by_number[number.lstrip("+")] = (customer_id, store_id)
        self._by_number.move_to_end(number.lstrip("+"))
        while len(self._by_number) > self._capacity:
            self._by_number.popitem(last=False)

    def lookup(self, number: str) -> tuple[str, str] | None:
        return self._by_number.get(number.lstrip("+"))


def callback_data(command: SendCommand) -> str:
    return urlencode({"m": command.message_id, "c": command.customer_id, "s": command.store_id})


def request_for(command: SendCommand) -> WhatsAppRequest:
    """An approved template when the command names one (business-initiated), else free text."""
    ref = command.whatsapp_template
    template = (WhatsAppTemplate(name=ref.name, language=ref.language, category=ref.category,
                                 body_parameters=tuple(ref.parameters)) if ref else None)
    return WhatsAppRequest(message_id=command.message_id, to=command.to, text=None if template else command.body,
                           template=template, callback_data=callback_data(command))


class WhatsAppSender:
    def __init__(self, provider: WhatsAppProvider, contacts: Contacts) -> None:
        self._provider = provider
        self._contacts = contacts
        self.provider_name = provider.name

    async def send(self, command: SendCommand) -> ProviderReceipt:
        receipt = await self._provider.send(request_for(command))
        self._contacts.learn(command.to, command.customer_id, command.store_id)
        return receipt

    async def aclose(self) -> None:
        await self._provider.aclose()


class WhatsAppWebhook:
    def __init__(self, config: WhatsAppGatewaySettings, names: TopicNames, publisher: Publisher,
                 outcomes: OutcomeWriter, ledger: SendLedger, contacts: Contacts, clock: Clock,
                 metrics: Metrics) -> None:
        self._config, self._names, self._publisher, self._ledger = config, names, publisher, ledger
        self._outcomes, self._contacts, self._clock, self._metrics = outcomes, contacts, clock, metrics
        self._dead_letters = DeadLetterWriter(publisher, metrics)
        self._seen_inbound: OrderedDict[str, None] = OrderedDict()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(WEBHOOK_PATH, self.handshake), web.post(WEBHOOK_PATH, self.receive)]

    async def handshake(self, request: web.Request) -> web.Response:
        try:
            return web.Response(text=verify_challenge(request.query, self._config.verify_token))
        except SignatureError:
            return web.Response(status=403, text="verification failed")

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify_signature(self._config.app_secret, raw, request.headers.get(SIGNATURE_HEADER))
        except SignatureError:
            self._metrics.webhooks.labels("meta_whatsapp", "forged").inc()
            logger.warning("whatsapp webhook with a bad signature refused")
            return web.Response(status=403, text="bad signature")
        try:
            statuses, inbound = parse_webhook(raw)
        except WebhookPayloadError:
            self._metrics.webhooks.labels("meta_whatsapp", "malformed").inc()
            return web.Response(status=400, text="malformed webhook")
        for status in statuses:
            await self._status(status)
        for message in inbound:
            await self._inbound(message, raw)
        return web.Response(status=200)

    async def _status(self, status: WhatsAppStatus) -> None:
        ours = outcome_status(status.status)
        ids = parse_qs(status.callback_data or "")
        if ours is None or not {"m", "c", "s"} <= ids.keys():
            self._metrics.webhooks.labels("meta_whatsapp", "ignored").inc()
            return
        if ours == OutcomeStatus.SENT or not await self._ledger.advance_receipt(ids["m"][0], ours, self._clock.now()):
            self._metrics.webhooks.labels("meta_whatsapp", "ignored").inc()
            return
        await self._outcomes.write(for_receipt(
            message_id=ids["m"][0], customer_id=ids["c"][0], store_id=ids["s"][0], channel=Channel.WHATSAPP,
            status=OutcomeStatus(ours), provider="meta_whatsapp", provider_message_id=status.provider_message_id,
            error_code=status.error_code, now=self._clock.now()))
        self._metrics.webhooks.labels("meta_whatsapp", "accepted").inc()

    async def _inbound(self, message: WhatsAppInbound, raw: bytes) -> None:
        if message.provider_message_id in self._seen_inbound:  # Meta redelivers: one event per wamid
            return
        self._seen_inbound[message.provider_message_id] = None
        while len(self._seen_inbound) > 100_000:
            self._seen_inbound.popitem(last=False)
        owner = self._contacts.lookup(message.from_number)
        topic = self._names(MESSAGE_INBOUND)
        if owner is None:
            # Not from Kafka: partition and offset -1; the raw webhook body is kept for replay.
            error = UnknownSenderError("inbound WhatsApp message from a number this gateway has not messaged")
            await self._dead_letters.write(topic=topic, partition=-1, offset=-1, key=None, value=raw,
                                           stage="whatsapp_inbound", exc=error, now=self._clock.now(),
                                           reason=str(error))
            return
        customer_id, store_id = owner
        inbound = InboundMessage(
            inbound_id=outcome_id(message.provider_message_id, "inbound"), customer_id=customer_id, store_id=store_id,
            channel=Channel.WHATSAPP, provider="meta_whatsapp", provider_message_id=message.provider_message_id,
            text=message.text, button_payload=message.button_payload, in_reply_to=message.in_reply_to,
            received_at=dt.datetime.fromtimestamp(message.timestamp, dt.timezone.utc))
        await self._publisher.publish(topic, customer_id.encode(), encode(inbound))
        self._metrics.webhooks.labels("meta_whatsapp", "inbound").inc()
