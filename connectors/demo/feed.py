"""Feeding the simulated storefront into Kafka through the producer library."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from kafka import KafkaProducer

from connectors.producer import EventProducer
from connectors.status import GroupLag
from connectors.simulator import Storefront, generate
from schemas.catalog import CUSTOMER_CONSENTS, CUSTOMER_ERASURES, CUSTOMER_PROFILES, STOREFRONT_EVENTS, TopicNames
from streams.settings import Settings
from streams.topics import app_id

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]  # (phase, records done so far, total if known)


def _quiet(phase: str, done: int, total: int | None) -> None:
    pass


def wait_for_group(settings: Settings, group_id: str, topics: list[str], timeout: float,
                   progress: Progress = _quiet) -> None:
    """Until ``group_id`` committed everything on ``topics``; one admin client and consumer for the whole wait."""
    deadline = time.monotonic() + timeout
    with GroupLag(settings.kafka.bootstrap_servers) as lag:
        while (behind := lag.lag(group_id, topics)) > 0:
            progress("state", behind, None)
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker group {group_id} still {behind} records behind on {topics}")
            time.sleep(0.5)  # polling an external process's committed offsets
    progress("state", 0, None)


def feed_storefront(settings: Settings, customers: int, seed: int, progress: Progress = _quiet,
                    state_timeout: float = 180.0, rate: float = 0.0) -> Storefront:
    """Produces profiles and consents, waits until the worker has read them, then the orders.

    ``rate`` paces the storefront events (per second, 0 = as fast as possible): a shop's events
    arrive over time, and a paced feed measures the pipeline's latency rather than a backlog's.
    """
    shop = generate(customers, seed, dt.datetime.now(dt.timezone.utc))
    names = TopicNames(settings.kafka.topic_prefix)
    with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix) as producer:
        state = [*shop.profiles, *shop.consents, *shop.erasures]  # erasures last: they undo the state
        for done, record in enumerate(state, 1):
            producer.send(record)
            if done % 500 == 0:
                progress("customers", done, len(state))
        producer.flush()
        progress("customers", len(state), len(state))
        wait_for_group(settings, app_id(settings),
                       [names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS), names(CUSTOMER_ERASURES)], state_timeout,
                       progress)
        started = time.monotonic()
        for done, event in enumerate(shop.events, 1):
            producer.send(event)
            if done % 10 == 0:
                progress("events", done, len(shop.events) + len(shop.malformed))
                if rate > 0 and (ahead := started + done / rate - time.monotonic()) > 0:
                    time.sleep(ahead)  # pacing the feed
        producer.flush()
    raw = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","), acks="all")
    try:
        for key, value in shop.malformed:  # the fault a buggy retailer producer makes
            raw.send(names(STOREFRONT_EVENTS), key=key, value=value)
        raw.flush()
    finally:
        raw.close()
    progress("events", len(shop.events) + len(shop.malformed), len(shop.events) + len(shop.malformed))
    return shop
