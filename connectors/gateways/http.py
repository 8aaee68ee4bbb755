"""The gateway's HTTP side: provider webhooks (signature first), ``/metrics`` and ``/health``."""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.gateways.sms import STATUS_PATH
from connectors.webhooks.receipts import ReceiptTracker
from connectors.webhooks.twilio_signature import verify_signature
from connectors.webhooks.twilio_status import outcome_status, parse_status_callback
from schemas.messages import OutcomeStatus
from schemas.types import Channel
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import OutcomeWriter, for_receipt
from streams.settings import Settings

logger = logging.getLogger(__name__)


def create_http_app(settings: Settings, outcomes: OutcomeWriter, clock: Clock, metrics: Metrics) -> web.Application:
    tracker = ReceiptTracker()
    token = settings.sms.auth_token.get_secret_value()
    public_base = settings.sms.public_base_url.rstrip("/")

    async def twilio_status(request: web.Request) -> web.Response:
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
        if status in (None, OutcomeStatus.SENT) or not tracker.advance(receipt.provider_message_id, status):
            metrics.webhooks.labels("twilio", "ignored").inc()
            return web.Response(status=204)
        await outcomes.write(for_receipt(
            message_id=message_id, customer_id=customer_id, store_id=store_id, channel=Channel.SMS,
            status=OutcomeStatus(status), provider="twilio", provider_message_id=receipt.provider_message_id,
            error_code=receipt.error_code, now=clock.now(),
        ))
        metrics.webhooks.labels("twilio", "accepted").inc()
        return web.Response(status=204)

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(STATUS_PATH, twilio_status)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/health", health)
    return app
