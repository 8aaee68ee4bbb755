"""The SMS channel: Twilio-style requests with a status callback, and the status-callback webhook."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from aiohttp import web

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.gateways.ledger import SendLedger
from connectors.providers.base import ProviderReceipt, SmsProvider, SmsRequest
from connectors.webhooks.twilio_signature import verify_signature
from connectors.webhooks.twilio_status import outcome_status, parse_status_callback
from schemas.messages import OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter, for_receipt
from streams.settings import SmsGatewaySettings

logger = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"


class SmsSender:
    """Sends a command's body to its number, asking for status callbacks that name the message."""

    def __init__(self, provider: SmsProvider, public_base_url: str) -> None:
        self._provider = provider
        self.provider_name = provider.name
        self._callback_base = public_base_url.rstrip("/") + STATUS_PATH

    def status_callback(self, command: SendCommand) -> str:
        query = urlencode({"message_id": command.message_id, "customer_id": command.customer_id,
                           "store_id": command.store_id})
        return f"{self._callback_base}?{query}"

    async def send(self, command: SendCommand) -> ProviderReceipt:
        return await self._provider.send(SmsRequest(message_id=command.message_id, to=command.to, body=command.body,
                                                    status_callback=self.status_callback(command)))

    async def aclose(self) -> None:
        await self._provider.aclose()


def twilio_status_route(config: SmsGatewaySettings, outcomes: OutcomeWriter, ledger: SendLedger, clock: Clock,
                        metrics: Metrics) -> web.RouteDef:
    """``POST /webhooks/twilio/status``: signature first, then a receipt that is news becomes an outcome."""
    token = config.auth_token.get_secret_value()
    public_base = config.public_base_url.rstrip("/")

    async def handle(request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        try:
            verify_signature(token, public_base + request.path_qs, form, request.headers.get("X-Twilio-Signature"))
        except SignatureError:
            metrics.webhooks.labels("twilio", "forged").inc()
            logger.warning("twilio status callback with a bad signature refused")
            return web.Response(status=403, text="bad signature")
        try:
            receipt = parse_status_callback(form)
            status = outcome_status(receipt.status)
            message_id, customer_id = request.query["message_id"], request.query["customer_id"]
            store_id = request.query["store_id"]
        except (WebhookPayloadError, KeyError):
            metrics.webhooks.labels("twilio", "malformed").inc()
            return web.Response(status=400, text="malformed status callback")
        # ``sent`` was reported when the provider accepted the message; in-flight statuses are not news.
        if status in (None, OutcomeStatus.SENT) or not await ledger.advance_receipt(message_id, status, clock.now()):
            metrics.webhooks.labels("twilio", "ignored").inc()
            return web.Response(status=204)
        await outcomes.write(for_receipt(
            message_id=message_id, customer_id=customer_id, store_id=store_id, channel=Channel.SMS,
            status=OutcomeStatus(status), provider="twilio", provider_message_id=receipt.provider_message_id,
            error_code=receipt.error_code, now=clock.now(),
        ))
        metrics.webhooks.labels("twilio", "accepted").inc()
        return web.Response(status=204)

    return web.post(STATUS_PATH, handle)
