"""The SMS channel: requests that ask for delivery receipts naming the message, and each SMS provider's
webhooks (Twilio status callbacks and replies, Vonage delivery receipts), signatures checked first."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from aiohttp import web

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.gateways.inbound import Contacts, InboundWriter
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt, SmsProvider, SmsRequest
from connectors.webhooks import twilio_inbound, twilio_status, vonage_dlr
from connectors.webhooks.twilio_signature import verify_signature as verify_twilio
from schemas.messages import OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter, for_receipt
from streams.settings import SmsGatewaySettings
from streams.sms import segment

logger = logging.getLogger(__name__)

RECEIPT_PATHS = {"twilio": "/webhooks/twilio/status", "vonage": "/webhooks/vonage/dlr"}


INBOUND_PATHS = {"twilio": "/webhooks/twilio/inbound"}


class SmsSender:
    """Sends a command's body to its number, asking for receipts at a URL that names the message."""

    def __init__(self, provider: SmsProvider, public_base_url: str, contacts: Contacts) -> None:
        self._provider = provider
        self._contacts = contacts
        self.provider_name = provider.name
        self._callback_base = public_base_url.rstrip("/") + RECEIPT_PATHS[provider.name]

    def status_callback(self, command: SendCommand) -> str:
        query = urlencode({"message_id": command.message_id, "customer_id": command.customer_id,
                           "store_id": command.store_id})
        return f"{self._callback_base}?{query}"

    def limit_key(self, command: SendCommand) -> str:
        return getattr(self._provider, "sender_id", self.provider_name)  # the sending number

    def cost(self, command: SendCommand) -> int:
        return segment(command.body).segments  # SMS providers count throughput in segments

    async def send(self, command: SendCommand) -> ProviderReceipt:
        receipt = await self._provider.send(SmsRequest(message_id=command.message_id, to=command.to,
                                                       body=command.body, status_callback=self.status_callback(command)))
        self._contacts.learn(command.to, command.customer_id, command.store_id)
        return receipt

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        """What the provider has for a message whose send was ambiguous (None: nothing found, or a provider
        that cannot be asked)."""
        find = getattr(self._provider, "find", None)
        if find is None:
            return None
        return await find(SmsRequest(message_id=command.message_id, to=command.to, body=command.body), sent_after)

    async def aclose(self) -> None:
        await self._provider.aclose()


class SmsWebhooks:
    """The configured provider's webhooks: a receipt that is news becomes an outcome; a reply (Twilio)
    goes to ``messages.inbound``. Vonage inbound messages are not wired yet."""

    def __init__(self, config: SmsGatewaySettings, outcomes: OutcomeWriter, ledger: SendLedger,
                 inbound: InboundWriter, clock: Clock, metrics: Metrics) -> None:
        self._config, self._outcomes, self._ledger, self._clock, self._metrics = config, outcomes, ledger, clock, metrics
        self._inbound = inbound
        self._provider = config.provider

    def routes(self) -> list[web.RouteDef]:
        path = RECEIPT_PATHS[self._provider]
        if self._provider == "twilio":
            return [web.post(path, self.twilio), web.post(INBOUND_PATHS["twilio"], self.twilio_inbound)]
        return [web.post(path, self.vonage), web.get(path, self.vonage)]

    def _verify_twilio(self, request: web.Request, form: dict[str, str]) -> None:
        public_url = self._config.public_base_url.rstrip("/") + request.path_qs
        verify_twilio(self._config.auth_token, public_url, form, request.headers.get("X-Twilio-Signature"))

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        raw = await request.read()
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            self._verify_twilio(request, form)
        except SignatureError:
            return self._forged()
        try:
            message = twilio_inbound.parse_inbound(form)
        except WebhookPayloadError:
            return self._malformed()
        await self._inbound.write(channel=Channel.SMS, provider="twilio", provider_message_id=message.provider_message_id,
                                  from_number=message.from_number, text=message.text, raw=raw,
                                  received_at=self._clock.now())
        return web.Response(status=204)

    async def twilio(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            self._verify_twilio(request, form)
        except SignatureError:
            return self._forged()
        try:
            receipt = twilio_status.parse_status_callback(form)
            status = twilio_status.outcome_status(receipt.status)
        except WebhookPayloadError:
            return self._malformed()
        return await self._report(request, status, receipt.provider_message_id, receipt.error_code)

    async def vonage(self, request: web.Request) -> web.Response:
        try:
            params = vonage_dlr.receipt_params(request.method, request.query, request.content_type,
                                               await request.read())
        except WebhookPayloadError:
            return self._malformed()
        secret = self._config.vonage_signature_secret
        if secret is not None:
            try:
                vonage_dlr.verify_signature(secret, params)
            except SignatureError:
                return self._forged()
        try:
            receipt = vonage_dlr.parse_delivery_receipt(params)
            status = vonage_dlr.outcome_status(receipt.status)
        except WebhookPayloadError:
            return self._malformed()
        return await self._report(request, status, receipt.provider_message_id, receipt.error_code)

    async def _report(self, request: web.Request, status: str | None, provider_message_id: str,
                      error_code: str | None) -> web.Response:
        try:
            message_id, customer_id = request.query["message_id"], request.query["customer_id"]
            store_id = request.query["store_id"]
        except KeyError:
            return self._malformed()
        # ``sent`` was reported when the provider accepted the message; in-flight statuses are not news.
        if status in (None, OutcomeStatus.SENT) or not await self._ledger.advance_receipt(
                message_id, status, self._clock.now()):
            self._metrics.webhooks.labels(self._provider, "ignored").inc()
            return web.Response(status=204)
        await self._outcomes.write(for_receipt(
            message_id=message_id, customer_id=customer_id, store_id=store_id, channel=Channel.SMS,
            status=OutcomeStatus(status), provider=self._provider, provider_message_id=provider_message_id,
            error_code=error_code, now=self._clock.now(), tags=self._ledger.get(message_id)))
        self._metrics.webhooks.labels(self._provider, "accepted").inc()
        return web.Response(status=204)

    def _forged(self) -> web.Response:
        self._metrics.webhooks.labels(self._provider, "forged").inc()
        logger.warning("%s receipt with a bad signature refused", self._provider)
        return web.Response(status=403, text="bad signature")

    def _malformed(self) -> web.Response:
        self._metrics.webhooks.labels(self._provider, "malformed").inc()
        return web.Response(status=400, text="malformed receipt")
