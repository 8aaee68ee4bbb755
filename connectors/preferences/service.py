"""Runs the preference centre: follows the customers' state, serves the pages and /health (/metrics on the admin
port).

The web server opens only once both compacted topics have been read to their end, so ``/health``
answering means every customer's page is current. A follower that dies takes the process down with
it (a supervisor restarts it) rather than serving state that silently stopped moving.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from connectors.gateways.kafka_io import AiokafkaPublisher
from connectors.preferences.state import CustomerDirectory
from connectors.http_server import Servers, serve
from connectors.preferences.unsubscribe import Unsubscribe
from connectors.preferences.web import PreferenceCentre
from schemas.catalog import CONSENT_STATE, CUSTOMER_PROFILES, TopicNames
from streams.clock import Clock, WallClock
from streams.metrics import Metrics, default_metrics
from streams.settings import Settings

logger = logging.getLogger(__name__)


async def run_preferences(settings: Settings, stop: asyncio.Event | None = None, clock: Clock | None = None,
                          metrics: Metrics | None = None) -> None:
    config, kafka = settings.preferences, settings.kafka
    stop = stop or _stop_on_signals()
    clock, metrics = clock or WallClock(), metrics or default_metrics()
    names = TopicNames(kafka.topic_prefix)
    publisher = await AiokafkaPublisher.started(kafka.bootstrap_servers, "switchboard-preferences", metrics)
    consumers = []
    follower: asyncio.Task | None = None
    http: Servers | None = None
    try:
        directory = CustomerDirectory(names(CUSTOMER_PROFILES), names(CONSENT_STATE))
        consumers = await directory.restore(kafka.bootstrap_servers, publisher.partitions_for)
        follower = asyncio.create_task(directory.follow(consumers), name="preferences-follower")
        centre = PreferenceCentre(config, directory, publisher, names, clock, metrics)
        unsubscribe = Unsubscribe(config, directory, publisher, names, clock, metrics)
        http = await serve(centre.routes() + unsubscribe.routes(), config.host, config.port, config.admin_port,
                           metrics, settings.http, "preference centre")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, follower}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if follower.done():
            follower.result()  # re-raises what stopped the follower
            raise RuntimeError("the customer-state follower stopped")
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        if http is not None:
            await http.aclose()
        await asyncio.gather(*(c.stop() for c in consumers), return_exceptions=True)
        await publisher.stop()
        logger.info("preference centre stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
