"""The SMS channel: requests that ask for delivery receipts naming the message, and each SMS provider's
webhooks (Twilio status callbacks and replies, Vonage delivery receipts), signatures checked first."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from urllib.parse import urlencode

from aiohttp import web

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.gateways.inbound import Contacts, InboundWriter
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt, SmsProvider, SmsRequest
from connectors.webhooks import twilio_inbound, twilio_status, vonage_dlr, vonage_signature
from connectors.webhooks.twilio_signature import verify_form_signature
from schemas.messages import OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter, for_receipt
from streams.settings import SmsGatewaySettings
from streams.sms import segment

logger = logging.getLogger(__name__)

RECEIPT_PATHS = {"twilio": "/webhooks/twilio/status", "vonage": "/webhooks/vonage/dlr"}
# Vonage's SMS API refuses a ``callback`` longer than this (its API reference; the v4 SDK's SmsMessage too).
VONAGE_CALLBACK_LIMIT = 100


INBOUND_PATHS = {"twilio": "/webhooks/twilio/inbound"}


class SmsSender:
    """Sends a command's body to its number, asking for receipts at a URL that names the message (Twilio:
    its query, which Twilio signs) or at a fixed short URL (Vonage: the signed ``client-ref`` names it)."""

    def __init__(self, provider: SmsProvider, public_base_url: str, contacts: Contacts) -> None:
        self._provider = provider
        self._contacts = contacts
        self.provider_name = provider.name
        self._callback_base = public_base_url.rstrip("/") + RECEIPT_PATHS[provider.name]
        if provider.name == "vonage" and len(self._callback_base) > VONAGE_CALLBACK_LIMIT:
            raise ValueError(f"the Vonage receipt URL {self._callback_base!r} is {len(self._callback_base)} characters;"
                             f" Vonage allows {VONAGE_CALLBACK_LIMIT}: shorten SWITCHBOARD_SMS__PUBLIC_BASE_URL")

    def status_callback(self, command: SendCommand) -> str:
        if self.provider_name == "vonage":
            return self._callback_base
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

    def _signed_form(self, request: web.Request, raw: bytes) -> dict[str, str]:
        """The form of a request whose signature matches its raw body (checked before any parsing)."""
        public_url = self._config.public_base_url.rstrip("/") + request.path_qs
        return verify_form_signature(self._config.auth_token, public_url, raw, request.headers.get("X-Twilio-Signature"))

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            form = self._signed_form(request, raw)
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
        try:
            form = self._signed_form(request, await request.read())
        except SignatureError:
            return self._forged()
        try:
            receipt = twilio_status.parse_status_callback(form)
            status = twilio_status.outcome_status(receipt.status)
        except WebhookPayloadError:
            return self._malformed()
        try:  # Twilio signs the whole URL, so the query naming the message is signed too
            owner = request.query["message_id"], request.query["customer_id"], request.query["store_id"]
        except KeyError:
            return self._malformed()
        return await self._report(owner, status, receipt.provider_message_id, receipt.error_code)

    async def vonage(self, request: web.Request) -> web.Response:
        """A signed DLR names its message only by ``client-ref`` (signed); the ledger entry gives its customer.

        No secret, no receipt: settings require one with Vonage, and without it every receipt is refused.
        A POST's query is not signed, so one that names another message than ``client-ref`` is refused.
        """
        try:
            params = vonage_dlr.receipt_params(request.method, request.query, request.content_type,
                                               await request.read())
        except WebhookPayloadError:
            return self._malformed()
        secret = self._config.vonage_signature_secret
        try:
            if secret is None:
                raise SignatureError("no signature secret configured: unsigned receipts are never accepted")
            vonage_signature.verify_signature(secret, params, method=self._config.vonage_signature_method,
                                              max_age=self._config.vonage_receipt_max_age,
                                              now=self._clock.now().timestamp())
        except SignatureError:
            return self._forged()
        try:
            receipt = vonage_dlr.parse_delivery_receipt(params)
            status = vonage_dlr.outcome_status(receipt.status)
        except WebhookPayloadError:
            return self._malformed()
        owner = self._vonage_owner(receipt.client_ref, request.query)
        if owner is None:
            return self._forged()
        if not owner:  # not a message this gateway sent (or long forgotten): nothing to settle
            self._metrics.webhooks.labels(self._provider, "ignored").inc()
            return web.Response(status=204)
        return await self._report(owner, status, receipt.provider_message_id, receipt.error_code)

    def _vonage_owner(self, client_ref: str | None,
                      query: Mapping[str, str]) -> tuple[str, str, str] | tuple[()] | None:
        """(message, customer, store) for a signed ``client-ref``; () if unknown; None if the query disagrees.

        A ledger entry written before entries named their customer falls back on the query of the long URL
        such messages were sent with, provided it names the same message."""
        if not client_ref:
            return ()
        entry = self._ledger.get(client_ref)
        named = {key: query[key] for key in ("message_id", "customer_id", "store_id") if key in query}
        if named.get("message_id", client_ref) != client_ref:
            logger.warning("vonage receipt whose query names another message than its client-ref refused")
            return None
        if entry is None:
            return ()
        customer_id = entry.customer_id or named.get("customer_id")
        store_id = entry.store_id if entry.customer_id else named.get("store_id")
        if customer_id is None or store_id is None:
            return ()
        if (named.get("customer_id", customer_id), named.get("store_id", store_id)) != (customer_id, store_id):
            logger.warning("vonage receipt whose query names another customer than its message's refused")
            return None
        return client_ref, customer_id, store_id

    async def _report(self, owner: tuple[str, str, str], status: str | None, provider_message_id: str,
                      error_code: str | None) -> web.Response:
        message_id, customer_id, store_id = owner
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
