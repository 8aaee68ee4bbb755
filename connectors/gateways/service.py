"""Runs one channel's gateway process: Kafka consumer, provider adapter, webhook server and admin server."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import assert_never

from aiohttp import web

from connectors.gateways.contact_state import TAKES_REPLIES, ContactState
from connectors.gateways.gateway import Gateway, Sender
from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.gateways.ledger import SendLedger
from connectors.gateways.email import EmailSender
from connectors.gateways.email_reports import EmailReports
from connectors.gateways.inbound import Contacts, InboundWriter
from connectors.gateways.sms import SmsSender, SmsWebhooks
from connectors.gateways.whatsapp import WhatsAppSender, WhatsAppWebhook
from connectors.http_server import serve
from connectors.providers.smtp import SmtpEmailProvider
from connectors.providers.whatsapp_registry import build_whatsapp_provider
from connectors.providers.registry import build_sms_provider
from schemas.catalog import TopicNames, ledger_topic
from schemas.types import Channel
from streams.clock import Clock, WallClock
from streams.metrics import Metrics, default_metrics
from streams.publish import OutcomeWriter
from streams.settings import Settings, SmsGatewaySettings

logger = logging.getLogger(__name__)


def _channel_parts(channel: Channel, settings: Settings, publisher: AiokafkaPublisher, outcomes: OutcomeWriter,
                   ledger: SendLedger, state: ContactState | None, clock: Clock,
                   metrics: Metrics) -> tuple[Sender, list[web.RouteDef]]:
    contacts = Contacts(state.directory if state else None)
    inbound = InboundWriter(TopicNames(settings.kafka.topic_prefix), publisher, contacts, clock, metrics,
                            suppressions=state.suppressions if state else None)
    match channel:
        case Channel.SMS:
            sms = settings.sms
            provider = build_sms_provider(sms.provider, **_sms_provider_config(sms), max_connections=sms.concurrency)
            webhooks = SmsWebhooks(sms, outcomes, ledger, inbound, clock, metrics)
            return SmsSender(provider, sms.public_base_url, contacts), webhooks.routes()
        case Channel.EMAIL:
            email = settings.email
            provider = SmtpEmailProvider(email.host, email.port, sender=email.sender, username=email.username,
                                         password=email.password, use_tls=email.use_tls, start_tls=email.start_tls,
                                         domain=email.domain, connections=email.connections)
            reports = EmailReports(settings.preferences, email.domain, publisher, outcomes,
                                   TopicNames(settings.kafka.topic_prefix), clock)
            return EmailSender(provider, settings.preferences), reports.routes()
        case Channel.WHATSAPP:
            wa = settings.whatsapp
            provider = build_whatsapp_provider(wa.provider, phone_number_id=wa.phone_number_id,
                                               access_token=wa.access_token, base_url=wa.api_base_url,
                                               api_version=wa.api_version, max_connections=wa.concurrency)
            webhook = WhatsAppWebhook(wa, outcomes, ledger, inbound, clock, metrics)
            return WhatsAppSender(provider), webhook.routes()
        case _ as unreachable:
            assert_never(unreachable)


def _sms_provider_config(sms: SmsGatewaySettings) -> dict:
    if sms.provider == "vonage":
        return dict(api_key=sms.vonage_api_key, api_secret=sms.vonage_api_secret, from_number=sms.from_number,
                    signature_secret=sms.vonage_signature_secret,
                    signature_method=sms.vonage_signature_method, base_url=sms.vonage_api_base_url)
    return dict(account_sid=sms.account_sid, auth_token=sms.auth_token, from_number=sms.from_number,
                base_url=sms.api_base_url)


async def run_gateway(channel: Channel | str, settings: Settings, stop: asyncio.Event | None = None,
                      clock: Clock | None = None, metrics: Metrics | None = None) -> None:
    channel = Channel(channel)
    stop = stop or _stop_on_signals()
    clock, metrics = clock or WallClock(), metrics or default_metrics()
    publisher = await AiokafkaPublisher.started(settings.kafka.bootstrap_servers,
                                                f"switchboard-gateway-{channel.value}", metrics)
    outcomes = OutcomeWriter(publisher, TopicNames(settings.kafka.topic_prefix), metrics)
    names = TopicNames(settings.kafka.topic_prefix)
    config = getattr(settings, channel.value)
    ledger = SendLedger(publisher, names(ledger_topic(channel)), channel, config.provider)
    state = ContactState(channel, settings, publisher) if channel in TAKES_REPLIES else None
    if state is not None:
        await state.start()  # every profile and suppression is in before the first webhook or send
    sender, routes = _channel_parts(channel, settings, publisher, outcomes, ledger, state, clock, metrics)
    http = await serve(routes, config.webhook_host, config.webhook_port, config.admin_port, metrics, settings.http,
                       f"{channel.value} gateway webhooks")
    try:
        await Gateway(channel, settings.kafka, config, sender, ledger, publisher, clock, metrics,
                      suppressions=state.suppressions if state else None).run(stop)
    finally:
        await http.aclose()
        if state is not None:
            await state.stop()
        await publisher.stop()
        await sender.aclose()
        logger.info("%s gateway stopped", channel.value)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
