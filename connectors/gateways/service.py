"""Runs the SMS gateway process: Kafka consumer, provider adapter and webhook/metrics server."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from connectors.gateways.http import create_http_app
from connectors.gateways.kafka_io import AiokafkaPublisher, make_producer
from connectors.gateways.sms import SmsGateway
from connectors.providers.registry import build_sms_provider
from schemas.catalog import TopicNames
from streams.clock import Clock, WallClock
from streams.metrics import Metrics, default_metrics
from streams.publish import OutcomeWriter
from streams.settings import Settings

logger = logging.getLogger(__name__)


async def run_sms_gateway(settings: Settings, stop: asyncio.Event | None = None, clock: Clock | None = None,
                          metrics: Metrics | None = None) -> None:
    stop = stop or _stop_on_signals()
    clock, metrics = clock or WallClock(), metrics or default_metrics()
    sms = settings.sms
    provider = build_sms_provider(sms.provider, account_sid=sms.account_sid, auth_token=sms.auth_token,
                                  from_number=sms.from_number, base_url=sms.api_base_url)
    producer = make_producer(settings.kafka.bootstrap_servers, "switchboard-gateway-sms")
    await producer.start()
    publisher = AiokafkaPublisher(producer)
    http = web.AppRunner(create_http_app(settings, OutcomeWriter(publisher, TopicNames(settings.kafka.topic_prefix),
                                                                 metrics), clock, metrics), access_log=None)
    await http.setup()
    await web.TCPSite(http, sms.webhook_host, sms.webhook_port).start()
    logger.info("sms gateway webhooks and /metrics on %s:%s", sms.webhook_host, sms.webhook_port)
    try:
        await SmsGateway(settings, provider, publisher, clock, metrics).run(stop)
    finally:
        await http.cleanup()
        await producer.stop()
        await provider.aclose()
        logger.info("sms gateway stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
