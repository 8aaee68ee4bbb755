"""The cross-sell on the real broker: placed orders feed the product-affinity table (products.copurchases ->
count_copurchases -> global table affinity), and the shipped cross_sell journey recommends what other customers
bought together with the order, or reports that there was nothing to recommend."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from schemas.catalog import (
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    MESSAGE_OUTCOMES,
    PRODUCT_COPURCHASES,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
)
from schemas.codec import encode
from schemas.customers import ConsentState
from schemas.events import EventType, LineItem, Order, StorefrontEvent
from schemas.messages import MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel, Purpose, Record
from streams.journeys.engine import message_id
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import (
    ROOT,
    Child,
    consume_until,
    make_settings,
    produce,
    wait_for_worker,
    write_journeys,
    write_stores,
)

pytestmark = pytest.mark.integration

THREE_DAYS_IN_SECONDS = 3.0  # the shipped journey's 3-day wait, scaled


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("xsell")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.timer_interval = 0.5
    settings.worker.journey_time_scale = THREE_DAYS_IN_SECONDS / (3 * 86400)
    settings.worker.journeys_dir = write_journeys(
        directory, (ROOT / "deploy" / "journeys" / "cross_sell.yaml").read_text(encoding="utf-8"))
    settings.worker.stores_file = write_stores(directory, {"defaults": {
        "quiet_hours": {"enabled": False}, "frequency_caps": {"enabled": False},
        "product_url": "https://shop.example/p/{sku}"}})
    create_topics(settings)
    child = Child(["worker", "--loglevel", "warn"], settings, directory / "worker.log")
    yield settings
    assert child.stop() in (0, -15), child.output()


def _order(kind: EventType, customer_id: str, order_id: str, *items: tuple[str, str]) -> StorefrontEvent:
    order = Order(order_id=order_id, total_minor=100 * len(items), currency="EUR",
                  items=[LineItem(sku=sku, name=name, quantity=1, unit_price_minor=100) for sku, name in items])
    return StorefrontEvent(event_id=f.uid(), event_type=kind, store_id="store-1", customer_id=customer_id,
                           occurred_at=dt.datetime.now(dt.timezone.utc), order=order)


def _produce(settings: Settings, topic: str, *records: Record) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    produce(settings.kafka.bootstrap_servers, names(topic),
            [((r.key if isinstance(r, StorefrontEvent) else r.customer_id).encode(), encode(r)) for r in records])
    wait_for_worker(settings, [names(topic)])


def _marketing_sms_customer() -> list[Record]:
    profile = f.profile(time_zone="UTC")  # reachable by SMS, which comes first in their preferences
    return [profile, f.consent(profile.customer_id, Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING)]


def test_a_customer_who_buys_a_gets_b_which_other_customers_bought_with_a(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    tag = f.uid()[:6]
    sneakers, socks, cap = (f"SNK-{tag}", "Trail sneakers"), (f"SOCK-{tag}", "Merino running socks"), \
        (f"CAP-{tag}", "Running cap")
    others = [_order(EventType.ORDER_PLACED, f"other-{n}-{tag}", f"A{n}-{tag}", sneakers, socks) for n in range(3)]
    others.append(_order(EventType.ORDER_PLACED, f"other-9-{tag}", f"B-{tag}", sneakers, cap))
    _produce(worker, STOREFRONT_EVENTS, *others)
    wait_for_worker(worker, [names(PRODUCT_COPURCHASES)])  # the affinity table has counted them

    profile, opt_in = _marketing_sms_customer()
    lonely, lonely_opt_in = _marketing_sms_customer()
    _produce(worker, CUSTOMER_PROFILES, profile, lonely)
    _produce(worker, CUSTOMER_CONSENTS, opt_in, lonely_opt_in)
    bought = _order(EventType.ORDER_SHIPPED, profile.customer_id, f"C-{tag}", sneakers)
    nothing_known = _order(EventType.ORDER_SHIPPED, lonely.customer_id, f"D-{tag}", (f"MUG-{tag}", "Mug"))
    _produce(worker, STOREFRONT_EVENTS, bought, nothing_known)

    expected = message_id(bought.event_id, "cross_sell", "recommend")
    commands = consume_until(worker.kafka.bootstrap_servers, names(commands_topic(Channel.SMS, Purpose.MARKETING)),
                             lambda seen: any(c.message_id == expected for _, c in seen), 90, model=SendCommand)
    (command,) = [c for _, c in commands if c.message_id == expected]
    assert command.customer_id == profile.customer_id and command.journey == "cross_sell"
    assert "If you liked Trail sneakers, you'll like Merino running socks." in command.body
    assert f"https://shop.example/p/SOCK-{tag}" in command.body

    skipped = message_id(nothing_known.event_id, "cross_sell", "recommend")
    outcomes = consume_until(worker.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == skipped for _, o in seen), 90, model=MessageOutcome)
    (outcome,) = [o for _, o in outcomes if o.message_id == skipped]
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.NO_RECOMMENDATION)
    assert not any(o.message_id == expected and o.status == OutcomeStatus.SUPPRESSED for _, o in outcomes)
