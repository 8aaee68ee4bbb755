"""The WhatsApp channel: approved templates (or free text inside the 24-hour window) through the Cloud API,
and the webhook that turns signed status and inbound events into outcomes and inbound messages.

Status webhooks carry ``biz_opaque_callback_data``, which the sender fills with the message's ids, so
a receipt needs no lookup. Meta reports most send errors asynchronously — a free-form message outside
the 24-hour window is accepted (200 with a wamid) and then ``failed`` with 131047 — so a ``failed``
status gets the reason a synchronous error with the same code would get (:func:`failure_reason`); the
worker then falls back to the next channel on the ``failed`` outcome. A receipt that names the
customer's business-scoped user id teaches the contact directory that id, so a later reply by user id
alone (a customer with a username) reaches its customer. Each event of a webhook stands alone: one
that cannot be read or attributed is dead-lettered by itself and the POST still gets 200. Inbound
messages go through :mod:`connectors.gateways.inbound`. Wamids embed the customer's number, so they
are never logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.gateways.inbound import InboundWriter
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import (
    ProviderReceipt,
    WhatsAppProvider,
    WhatsAppRequest,
    WhatsAppTemplate,
    reply_payload,
)
from connectors.providers.whatsapp_cloud import MISCONFIGURED_CODES, TRANSIENT_CODES
from connectors.webhooks.meta_events import WhatsAppInbound, WhatsAppStatus, outcome_status, parse_batch
from connectors.webhooks.meta_signature import SIGNATURE_HEADER, verify_challenge, verify_signature
from schemas.messages import MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand, SendLedgerEntry
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter, for_receipt
from streams.settings import WhatsAppGatewaySettings

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/whatsapp"


def callback_data(command: SendCommand) -> str:
    return urlencode({"m": command.message_id, "c": command.customer_id, "s": command.store_id})


def request_for(command: SendCommand) -> WhatsAppRequest:
    """An approved template when the command names one (business-initiated), else free text, with its quick
    replies as buttons when it has any (an interactive message)."""
    ref = command.whatsapp_template
    template = (WhatsAppTemplate(name=ref.name, language=ref.language, category=ref.category,
                                 body_parameters=tuple(ref.parameters)) if ref else None)
    buttons = () if template else tuple(command.buttons)
    return WhatsAppRequest(message_id=command.message_id, to=command.to, text=None if template else command.body,
                           template=template, callback_data=callback_data(command),
                           buttons=tuple(b.title for b in buttons), button_payloads=tuple(b.payload for b in buttons))


REENGAGEMENT, UNDELIVERABLE = "131047", "131026"


def failure_reason(error_code: str | None) -> tuple[OutcomeReason, str]:
    """Why a ``failed`` status failed, classed as :mod:`connectors.providers.whatsapp_cloud` classes the same
    code answered synchronously: Meta refused the message (131047, 131048, 131049, 132xxx …), the customer
    cannot receive it (131026), or Meta or the account could not send it then (throughput, 131000, 190 …)."""
    code = int(error_code) if error_code and error_code.isdigit() else None
    if error_code == REENGAGEMENT:
        return OutcomeReason.PROVIDER_REJECTED, "free-form message outside the 24-hour customer-service window"
    if error_code == UNDELIVERABLE:
        return OutcomeReason.UNDELIVERED, "the customer cannot receive WhatsApp messages from this business"
    if code in TRANSIENT_CODES:
        return OutcomeReason.PROVIDER_FAILED, "meta could not send it then (a limit or an outage)"
    if code in MISCONFIGURED_CODES:
        return OutcomeReason.PROVIDER_FAILED, "the business account could not send it (configuration)"
    if code is None:
        return OutcomeReason.PROVIDER_FAILED, "failed without an error code"
    return OutcomeReason.PROVIDER_REJECTED, "meta refused the message"


def receipt_outcome(status: WhatsAppStatus, ours: OutcomeStatus, ids: dict[str, list[str]], now: dt.datetime,
                    tags: SendLedgerEntry | None) -> MessageOutcome:
    """The outcome of one status webhook (``ids`` from its callback data); a failure carries its reason."""
    outcome = for_receipt(
        message_id=ids["m"][0], customer_id=ids["c"][0], store_id=ids["s"][0], channel=Channel.WHATSAPP,
        status=ours, provider="meta_whatsapp", provider_message_id=status.provider_message_id,
        error_code=status.error_code, now=now, tags=tags)
    if ours != OutcomeStatus.FAILED:
        return outcome
    reason, detail = failure_reason(status.error_code)
    return outcome.model_copy(update={"reason": reason, "detail": detail})


class WhatsAppSender:
    def __init__(self, provider: WhatsAppProvider) -> None:
        self._provider = provider
        self.provider_name = provider.name

    def limit_key(self, command: SendCommand) -> str:
        return getattr(self._provider, "sender_id", self.provider_name)  # the business phone number id

    def cost(self, command: SendCommand) -> int:
        return 1

    async def send(self, command: SendCommand) -> ProviderReceipt:
        return await self._provider.send(request_for(command))

    async def reconcile(self, command: SendCommand, sent_after: dt.datetime) -> ProviderReceipt | None:
        return None  # the provider has no lookup: an ambiguous send stays ambiguous until a receipt says more

    async def aclose(self) -> None:
        await self._provider.aclose()


class WhatsAppWebhook:
    def __init__(self, config: WhatsAppGatewaySettings, outcomes: OutcomeWriter, ledger: SendLedger,
                 inbound: InboundWriter, clock: Clock, metrics: Metrics) -> None:
        self._config, self._outcomes, self._ledger, self._inbound = config, outcomes, ledger, inbound
        self._clock, self._metrics = clock, metrics

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
            batch = parse_batch(raw)
        except WebhookPayloadError:
            self._metrics.webhooks.labels("meta_whatsapp", "malformed").inc()
            return web.Response(status=400, text="malformed webhook")
        for unreadable in batch.unreadable:  # alone: the rest of the batch is still handled
            self._metrics.webhooks.labels("meta_whatsapp", "malformed").inc()
            await self._inbound.reject(channel=Channel.WHATSAPP, raw=unreadable.raw,
                                       error=WebhookPayloadError(unreadable.reason))
        for status in batch.statuses:
            await self._status(status)
        for message in batch.messages:
            await self._receive_inbound(message)
        return web.Response(status=200)

    async def _status(self, status: WhatsAppStatus) -> None:
        ours = outcome_status(status.status)
        ids = parse_qs(status.callback_data or "")
        if ours is None or not {"m", "c", "s"} <= ids.keys():
            self._metrics.webhooks.labels("meta_whatsapp", "ignored").inc()
            return
        if status.recipient_user_id:
            self._inbound.learn(status.recipient_user_id, ids["c"][0], ids["s"][0])
        if ours == OutcomeStatus.SENT or not await self._ledger.advance_receipt(ids["m"][0], ours, self._clock.now()):
            self._metrics.webhooks.labels("meta_whatsapp", "ignored").inc()
            return
        await self._outcomes.write(receipt_outcome(status, OutcomeStatus(ours), ids, self._clock.now(),
                                                   self._ledger.get(ids["m"][0])))
        self._metrics.webhooks.labels("meta_whatsapp", "accepted").inc()

    async def _receive_inbound(self, message: WhatsAppInbound) -> None:
        await self._inbound.write(
            channel=Channel.WHATSAPP, provider="meta_whatsapp", provider_message_id=message.provider_message_id,
            from_number=message.from_number, user_id=message.from_user_id, text=message.text, raw=message.raw,
            received_at=dt.datetime.fromtimestamp(message.timestamp, dt.timezone.utc),
            button_payload=(reply_payload(message.button_payload) if message.message_type == "interactive"
                            and message.button_payload else message.button_payload),
            in_reply_to=message.in_reply_to)
