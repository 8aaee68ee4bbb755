"""A journey waiting in its wait step survives a SIGKILLed worker: the next step goes at its time, once."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest

from schemas.catalog import CUSTOMER_CONSENTS, CUSTOMER_PROFILES, STOREFRONT_EVENTS, TopicNames, commands_topic
from schemas.codec import encode
from schemas.customers import ConsentState
from schemas.events import Cart, EventType, StorefrontEvent
from schemas.messages import SendCommand
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id
from streams.topics import create_topics
from tests import factories as f
from tests.support import Child, consume_until, make_settings, produce, wait_for_worker, wait_until, write_journeys

pytestmark = pytest.mark.integration

WAIT_SECONDS = 25
JOURNEY = f"""
journey: nudge
purpose: marketing
trigger: {{event: cart_abandoned}}
steps:
  - {{id: pause, wait: {WAIT_SECONDS}s}}
  - {{id: remind, send: cart_reminder, channels: [sms]}}
"""


def test_a_worker_killed_during_a_wait_resumes_the_journey_at_its_time_once(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("journey-restart")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.timer_interval = 0.5
    settings.worker.journeys_dir = write_journeys(directory, JOURNEY)
    create_topics(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    customer = f.profile(time_zone="UTC")
    optin = f.consent(customer.customer_id, Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING,
                      at=dt.datetime.now(dt.timezone.utc))
    event = StorefrontEvent(event_id=f.uid(), event_type=EventType.CART_ABANDONED, store_id="store-1",
                            customer_id=customer.customer_id, occurred_at=dt.datetime.now(dt.timezone.utc),
                            cart=Cart(cart_id="c9", cart_url="https://shop.example/cart/9", total_minor=900,
                                      currency="EUR"))
    expected = message_id(event.event_id, "nudge", "remind")
    key = customer.customer_id.encode()

    first = Child(["worker", "--loglevel", "warn"], settings, directory / "worker-1.log")
    try:
        produce(settings.kafka.bootstrap_servers, names(CUSTOMER_PROFILES), [(key, encode(customer))])
        produce(settings.kafka.bootstrap_servers, names(CUSTOMER_CONSENTS), [(key, encode(optin))])
        wait_for_worker(settings, [names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS)])
        entered = time.time()
        produce(settings.kafka.bootstrap_servers, names(STOREFRONT_EVENTS), [(key, encode(event))])
        wait_for_worker(settings, [names(STOREFRONT_EVENTS)])  # the journey entered its wait (state written)
    finally:
        first.stop(signal.SIGKILL)
    assert time.time() - entered < WAIT_SECONDS, "the machine was too slow to kill the worker inside the wait"

    second = Child(["worker", "--loglevel", "warn"], settings, directory / "worker-2.log")
    try:
        topic = names(commands_topic(Channel.SMS, Purpose.MARKETING))
        records = consume_until(settings.kafka.bootstrap_servers, topic,
                                lambda seen: any(c.message_id == expected for _, c in seen), 120, model=SendCommand)
        (sent,) = [c for _, c in records if c.message_id == expected]
        assert sent.created_at.timestamp() >= entered + WAIT_SECONDS - 1  # not before the wait was over
        assert sent.journey == "nudge" and "https://shop.example/cart/9" in sent.body
        ticks = time.monotonic() + 6 * settings.worker.timer_interval + 2
        wait_until(lambda: time.monotonic() > ticks, 30, "a few timer ticks", second)
        again = consume_until(settings.kafka.bootstrap_servers, topic,
                              lambda seen: any(c.message_id == expected for _, c in seen), model=SendCommand)
        assert [c.message_id for _, c in again].count(expected) == 1
    finally:
        assert second.stop() in (0, -15), second.output()
