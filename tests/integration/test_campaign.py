"""A campaign to a large segment on the real broker, while order updates keep flowing.

Driven through the public surface: profiles, consents and orders produced on their topics, the
campaign launched with ``switchboard campaign FILE``, decisions read back from the command and
outcome topics. Asserted: every customer the segment selects gets exactly one decision (a command
or an outcome saying why not), nobody outside it gets anything, and every order update is sent.
Printed, never asserted: the campaign's duration and the order updates' latency before and during
it. ``SWITCHBOARD_TEST_CAMPAIGN_CUSTOMERS`` sets the size (default 100,000).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.producer import EventProducer
from schemas.catalog import MESSAGE_OUTCOMES, TopicNames, commands_topic
from schemas.codec import codec_for
from schemas.customers import ConsentChange, ConsentSource, ConsentState, CustomerProfile
from schemas.events import EventType, LineItem, Order, StorefrontEvent
from schemas.messages import MessageOutcome, SendCommand
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id as journey_message_id
from streams.topics import create_topics
from tests.support import ROOT, Child, env_of, make_settings, wait_for_worker, wait_until

pytestmark = pytest.mark.integration

CUSTOMERS = int(os.environ.get("SWITCHBOARD_TEST_CAMPAIGN_CUSTOMERS", "100000"))
LOCALES = ["pl", "nl", "he", "be", "en"]
CAMPAIGN = """
name: flash30
store_id: store-1
template: flash_sale
channels: [sms, email]
message_class: promotion
expires_after: 3h
variables: {coupon_code: FLASH30, coupon_value: "30%"}
segment: {locales: [pl, nl], cities: [krakow, GDANSK, Amsterdam, utrecht], reachable_on: [sms, email]}
"""
CITIES = {"pl": ["Kraków", "Gdańsk"], "nl": ["Amsterdam", "Utrecht"], "he": ["Haifa"], "be": ["Brest"],
          "en": ["Kraków"]}  # the segment's cities, spelt otherwise; an English customer in Kraków is not Polish


def _city(n: int, locale: str) -> str:
    """One customer in 97 lives in Rotterdam, a city the segment does not list: left out, whatever the locale."""
    return "Rotterdam" if n % 97 == 0 else CITIES[locale][n // len(LOCALES) % len(CITIES[locale])]


def _customers(now: dt.datetime) -> tuple[list[CustomerProfile], list[ConsentChange]]:
    profiles, consents = [], []
    for n in range(CUSTOMERS):
        customer_id = f"c{n:07d}"
        locale = LOCALES[n % len(LOCALES)]
        profiles.append(CustomerProfile(customer_id=customer_id, store_id="store-1", first_name="Ana",
                                        locale=locale, time_zone="UTC", city=_city(n, locale),
                                        phone=f"+48600{n:07d}", email=f"{customer_id}@example.com",
                                        channel_preferences=[Channel.SMS], updated_at=now))
        if n % 4 != 3:  # a quarter never opted in to marketing: suppressed no_consent
            consents.append(ConsentChange(change_id=f"opt-{customer_id}", customer_id=customer_id, store_id="store-1",
                                          channel=Channel.SMS, purpose=Purpose.MARKETING,
                                          state=ConsentState.OPTED_IN, source=ConsentSource.IMPORT, occurred_at=now))
    return profiles, consents


def _shipped(n: int) -> StorefrontEvent:
    customer_id = f"c{(n * 7919) % CUSTOMERS:07d}"
    order = Order(order_id=f"o{n}", total_minor=1000, currency="PLN", tracking_url=f"https://t.example/{n}",
                  items=[LineItem(sku="SNK-1", name="Sneakers", quantity=1, unit_price_minor=1000)])
    return StorefrontEvent(event_id=f"ship-{n}-{time.time_ns()}", event_type=EventType.ORDER_SHIPPED,
                           store_id="store-1", customer_id=customer_id, occurred_at=dt.datetime.now(dt.timezone.utc),
                           order=order)


class Tally:
    """Follows the transactional SMS lane, the bulk lanes and the outcomes from the beginning."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None, enable_auto_commit=False)
        self.update_lane = names(commands_topic(Channel.SMS))
        self.outcomes_topic = names(MESSAGE_OUTCOMES)
        topics = [self.update_lane, self.outcomes_topic, names(commands_topic(Channel.SMS, Purpose.MARKETING)),
                  names(commands_topic(Channel.EMAIL, Purpose.MARKETING))]
        partitions = [TopicPartition(t, p) for t in topics for p in self.consumer.partitions_for_topic(t)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.campaign: dict[str, str] = {}  # message id -> decision
        self.updates: dict[str, float] = {}  # message id -> ms from the event's arrival to its command

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=500, max_records=20_000).values():
            for r in records:
                if r.topic == self.outcomes_topic:
                    outcome = codec_for(MessageOutcome).decode(r.value)
                    if outcome.journey == "campaign:flash30" and outcome.status in ("suppressed", "scheduled"):
                        self.campaign.setdefault(outcome.message_id, f"{outcome.status}:{outcome.reason}")
                    continue
                command = codec_for(SendCommand).decode(r.value)
                if r.topic == self.update_lane:
                    self.updates[command.message_id] = r.timestamp - command.trigger_received_at.timestamp() * 1000
                elif command.journey == "campaign:flash30":
                    self.campaign.setdefault(command.message_id, f"command:{command.channel}")


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.0f} ms, p99 {q[98]:.0f} ms (n={len(values)})"


@pytest.mark.timeout(3600)  # 100,000 customers to load and decide on a 2-core machine
def test_a_large_campaign_reaches_its_segment_once_while_order_updates_keep_flowing(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = tmp_path_factory.mktemp("campaign")
    settings = make_settings(kafka_bootstrap, directory)
    create_topics(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    now = dt.datetime.now(dt.timezone.utc)
    profiles, consents = _customers(now)
    worker = Child(["worker", "--loglevel", "warn"], settings, directory / "worker.log")
    try:
        started = time.monotonic()
        with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix) as producer:
            for record in [*profiles, *consents]:
                producer.send(record)
            producer.flush()
        wait_for_worker(settings, [names("customers.profiles"), names("customers.consents")], timeout=900)
        loaded = time.monotonic() - started

        tally = Tally(settings.kafka.bootstrap_servers, names)
        updates: list[str] = []
        stop = threading.Event()

        def ship_orders() -> None:  # a steady trickle of order updates, 5 per second
            with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix) as producer:
                n = 0
                while not stop.is_set():
                    event = _shipped(n)
                    producer.send(event)
                    producer.flush()
                    updates.append(journey_message_id(event.event_id, "shipping_update", "notify"))
                    n += 1
                    stop.wait(0.2)

        shipper = threading.Thread(target=ship_orders, daemon=True)
        shipper.start()
        baseline_until = time.monotonic() + 10
        while time.monotonic() < baseline_until:
            tally.poll()
        baseline = [tally.updates[m] for m in list(updates) if m in tally.updates]

        campaign_file = directory / "flash30.yaml"
        campaign_file.write_text(CAMPAIGN, encoding="utf-8")
        launched = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "connectors.cli", "campaign", str(campaign_file)], cwd=ROOT,
                                env={**os.environ, **env_of(settings)}, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        during_from = len(updates)
        selected = {i for i, p in enumerate(profiles) if p.locale in ("pl", "nl") and p.city != "Rotterdam"}
        expected_ids = {m for m in (tally_id(profiles[i].customer_id, result.stdout) for i in selected)}
        deadline = time.monotonic() + 1800
        while not expected_ids <= set(tally.campaign):
            tally.poll()
            assert time.monotonic() < deadline, f"campaign incomplete: {len(set(tally.campaign))}/{len(expected_ids)}"
            assert worker.alive(), worker.output()
        campaign_seconds = time.monotonic() - launched
        during_ids = list(updates[during_from:])
        stop.set()
        shipper.join(10)
        wait_until(lambda: (tally.poll(), set(updates) <= set(tally.updates))[1], 300, "order updates sent", worker)
        during = [tally.updates[m] for m in during_ids]

        decisions: dict[str, int] = {}
        for decision in tally.campaign.values():
            decisions[decision.split(":")[0] + ":" + decision.split(":")[1]] = decisions.get(
                decision.split(":")[0] + ":" + decision.split(":")[1], 0) + 1
        print(f"\n  customers {CUSTOMERS:,}, loaded in {loaded:.0f} s; segment {len(selected):,}; "
              f"campaign decided in {campaign_seconds:.0f} s ({len(selected) / campaign_seconds:.0f} /s)")
        for decision, count in sorted(decisions.items()):
            print(f"  {decision:<28} {count:>8,}")
        print(f"  order updates before the campaign: {_percentiles(baseline)}")
        print(f"  order updates during the campaign: {_percentiles(during)}")

        assert set(tally.campaign) == expected_ids  # the segment, each once, nobody else
        assert decisions.get("suppressed:no_consent", 0) == sum(1 for i in selected if i % 4 == 3)
        assert set(updates) <= set(tally.updates)
    finally:
        assert worker.stop() in (0, -15), worker.output()


def tally_id(customer_id: str, launch_output: str) -> str:
    """The message id the campaign gives a customer (its id is printed by ``switchboard campaign``)."""
    from streams import ids

    campaign_id = launch_output.split("id ", 1)[1].split(",", 1)[0]
    return ids.message_id(campaign_id, f"campaign:{customer_id}")
