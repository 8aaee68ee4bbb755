"""Back in stock on the real broker: requests re-keyed by SKU meet the restock, each subscriber hears once,
and the stock is checked again when the message goes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from schemas.catalog import CUSTOMER_PROFILES, MESSAGE_OUTCOMES, STOREFRONT_EVENTS, TopicNames, commands_topic
from schemas.codec import encode
from schemas.events import EventType, StorefrontEvent
from schemas.messages import MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel
from streams import ids
from streams.journeys.engine import message_id
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import (
    Child,
    consume_until,
    make_settings,
    produce,
    wait_for_worker,
    wait_until,
    write_journeys,
)

pytestmark = pytest.mark.integration

WAIT_SECONDS = 6  # long enough to sell out again before the message goes
JOURNEY = f"""
journey: stock_alert
purpose: transactional
trigger: {{event: back_in_stock}}
steps:
  - {{id: settle, wait: {WAIT_SECONDS}s}}
  - {{id: notify, send: back_in_stock, channels: [sms], requires_stock: true}}
"""


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("stock")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.timer_interval = 0.5
    settings.worker.journeys_dir = write_journeys(directory, JOURNEY)
    create_topics(settings)
    child = Child(["worker", "--loglevel", "warn"], settings, directory / "worker.log")
    yield settings
    assert child.stop() in (0, -15), child.output()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _request(customer_id: str, sku: str) -> StorefrontEvent:
    return StorefrontEvent(event_id=f.uid(), event_type=EventType.BACK_IN_STOCK_REQUESTED, store_id="store-1",
                           customer_id=customer_id, occurred_at=_now(), sku=sku,
                           attributes={"product_name": "sneakers", "product_url": f"https://shop.example/p/{sku}"})


def _restock(sku: str, quantity: int) -> StorefrontEvent:
    return StorefrontEvent(event_id=f.uid(), event_type=EventType.BACK_IN_STOCK, store_id="store-1",
                           occurred_at=_now(), sku=sku, attributes={"quantity": str(quantity)})


def _produce(settings: Settings, topic: str, *records) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    produce(settings.kafka.bootstrap_servers, names(topic),
            [((r.key if isinstance(r, StorefrontEvent) else r.customer_id).encode(), encode(r)) for r in records])
    wait_for_worker(settings, [names(topic)])


def _notice_id(restock: StorefrontEvent, customer_id: str) -> str:
    """The message a restock gives one subscriber: its fanned-out event, then the journey's step."""
    return message_id(ids.message_id(restock.event_id, f"restock:{customer_id}"), "stock_alert", "notify")


def test_each_subscriber_of_the_sku_hears_once_and_nobody_else(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    sku, other = f"SNK-{f.uid()[:6]}", f"MUG-{f.uid()[:6]}"
    fans = [f.profile(time_zone="UTC") for _ in range(3)]
    bystander = f.profile(time_zone="UTC")
    _produce(worker, CUSTOMER_PROFILES, *fans, bystander)
    _produce(worker, STOREFRONT_EVENTS, *(_request(c.customer_id, sku) for c in fans),
             _request(bystander.customer_id, other))

    restock = _restock(sku, 5)
    _produce(worker, STOREFRONT_EVENTS, restock)
    expected = {_notice_id(restock, c.customer_id): c for c in fans}
    topic = names(commands_topic(Channel.SMS))
    commands = consume_until(worker.kafka.bootstrap_servers, topic,
                             lambda seen: set(expected) <= {c.message_id for _, c in seen}, 60, model=SendCommand)
    mine = [c for _, c in commands if c.message_id in expected]
    assert sorted(c.message_id for c in mine) == sorted(expected)  # each once
    assert all(f"https://shop.example/p/{sku}" in c.body and c.to == expected[c.message_id].phone for c in mine)

    again = _restock(sku, 9)  # the subscriptions were used up: a second restock tells nobody
    _produce(worker, STOREFRONT_EVENTS, again)
    # A notice would come after the journey's wait: let it pass (and a few timer ticks) before looking.
    pause_until = time.monotonic() + WAIT_SECONDS + 4
    wait_until(lambda: time.monotonic() > pause_until, WAIT_SECONDS + 10, "the journey's wait to pass")
    later = consume_until(worker.kafka.bootstrap_servers, topic, lambda seen: True, model=SendCommand)
    assert not any(c.message_id in {_notice_id(again, x.customer_id) for x in [*fans, bystander]} for _, c in later)
    assert not any(c.customer_id == bystander.customer_id for _, c in later)


def test_a_sku_that_sold_out_again_before_the_message_went_is_not_announced(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    sku = f"HDP-{f.uid()[:6]}"
    fan = f.profile(time_zone="UTC")
    _produce(worker, CUSTOMER_PROFILES, fan)
    _produce(worker, STOREFRONT_EVENTS, _request(fan.customer_id, sku))
    restock = _restock(sku, 1)
    _produce(worker, STOREFRONT_EVENTS, restock, _restock(sku, 0))  # sold out within the journey's wait

    expected = _notice_id(restock, fan.customer_id)
    outcomes = consume_until(worker.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == expected for _, o in seen), 60, model=MessageOutcome)
    (outcome,) = [o for _, o in outcomes if o.message_id == expected]
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.OUT_OF_STOCK)
