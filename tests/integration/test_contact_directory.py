"""The contact directory and contact suppressions on the real broker: replies are resolved through
``customers.profiles``, not through what a gateway process happens to have sent, and a STOP from a number
no profile has still stops what is later sent to it. Replies come as Twilio sends them: signed form posts
from the sandbox to the gateway's inbound webhook."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from connectors.gateways.gateway import OPTED_OUT_BY_REPLY
from connectors.gateways.suppressions import suppression_key
from schemas.catalog import (
    CONSENT_STATE,
    CONTACT_SUPPRESSIONS,
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_OUTCOMES,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
)
from schemas.codec import encode
from schemas.contacts import ContactSuppression, SuppressionState
from schemas.customers import ConsentSnapshot, ConsentState, CustomerProfile
from schemas.messages import InboundMessage, MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id as journey_message_id
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.gateways import Harness, given_profiles, statuses
from tests.gateways import run as run_gateway_scenario
from tests.integration.test_consent_policy import CART_NOW, _cart
from tests.integration.test_sms_gateway import twilio_sandbox
from tests.support import Child, consume_until, make_settings, produce, wait_for_worker, write_journeys

pytestmark = pytest.mark.integration


def number() -> str:
    return f"+4860{random.randrange(10**7):07d}"


def run(settings: Settings, scenario) -> None:
    run_gateway_scenario(Channel.SMS, settings, twilio_sandbox, scenario)


async def customer_texts(h: Harness, sender: str, text: str) -> None:
    """The customer texts our number: the sandbox posts it, signed, to the gateway, which must answer 2xx."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{h.sandbox_url}/_sandbox/inbound", json={"from": sender, "text": text})
    assert response.status_code == 200, response.text  # the sandbox's own answer: it delivered the webhook


def inbound(settings: Settings, done) -> list[tuple[bytes, InboundMessage]]:
    return consume_until(settings.kafka.bootstrap_servers, TopicNames(settings.kafka.topic_prefix)(MESSAGE_INBOUND),
                         done, 60.0, InboundMessage)


def marketing(to: str, customer_id: str | None = None) -> SendCommand:
    return f.command(customer_id, to=to, purpose=Purpose.MARKETING, template="flash_sale")


# --- (a) a known number the gateway never messaged, after a restart, through the worker ---------------


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    directory = tmp_path_factory.mktemp("contact-directory")
    settings = make_settings(kafka_bootstrap, directory)
    settings.worker.journeys_dir = write_journeys(directory, CART_NOW)
    create_topics(settings)
    child = Child(["worker", "--loglevel", "warn"], settings, directory / f"worker-{time.monotonic_ns()}.log")
    yield settings
    assert child.stop() in (0, -15), child.output()


def _to_worker(settings: Settings, topic: str, *records) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    produce(settings.kafka.bootstrap_servers, names(topic), [(r.customer_id.encode(), encode(r)) for r in records])
    wait_for_worker(settings, [names(topic)])


def test_a_stop_from_a_known_number_the_gateway_never_messaged_after_a_restart_stops_all_marketing(
        worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = f.profile(store_id="store-1", time_zone="UTC", locale="he", phone=number())
    _to_worker(worker, CUSTOMER_PROFILES, customer)
    _to_worker(worker, CUSTOMER_CONSENTS, f.consent(customer.customer_id, Channel.SMS, ConsentState.OPTED_IN,
                                                    Purpose.MARKETING, at=dt.datetime.now(dt.timezone.utc)))
    first = _cart(customer)
    _to_worker(worker, STOREFRONT_EVENTS, first)
    reminder = journey_message_id(first.event_id, "cart_now", "remind")

    async def scenario(h: Harness) -> None:
        await h.outcomes(lambda seen: "sent" in statuses(seen, reminder))  # marketing reaches the customer
        await h.stop_gateway()
        await h.start_gateway()  # a fresh process: it has messaged nobody
        await customer_texts(h, customer.phone, "הסר")
        [(key, reply)] = await asyncio.to_thread(inbound, worker, bool)
        assert key == customer.customer_id.encode() and reply.text == "הסר"

    run(worker, scenario)
    consume_until(worker.kafka.bootstrap_servers, names(CONSENT_STATE), lambda seen: any(
        s and s.customer_id == customer.customer_id and s.opted_out("sms", "marketing") for _, s in seen),
        60.0, ConsentSnapshot)

    second = _cart(customer)
    _to_worker(worker, STOREFRONT_EVENTS, second)
    later = journey_message_id(second.event_id, "cart_now", "remind")
    outcomes = consume_until(worker.kafka.bootstrap_servers, names(MESSAGE_OUTCOMES),
                             lambda seen: any(o.message_id == later for _, o in seen), 60.0, MessageOutcome)
    [stopped] = [o for _, o in outcomes if o.message_id == later]
    assert (stopped.status, stopped.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.OPTED_OUT)
    commands = consume_until(worker.kafka.bootstrap_servers, names(commands_topic(Channel.SMS, Purpose.MARKETING)),
                             lambda seen: len(seen) >= 1, 10.0, SendCommand)
    assert [c.message_id for _, c in commands] == [reminder]  # the one before the STOP, none after


# --- (b) a STOP from a number no profile has ----------------------------------------------------------


def test_a_stop_from_a_number_no_profile_has_suppresses_it_when_a_profile_with_it_is_imported(
        settings: Settings) -> None:
    stranger, other = number(), number()
    names = TopicNames(settings.kafka.topic_prefix)

    async def scenario(h: Harness) -> None:
        await customer_texts(h, stranger, "STOP")
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers,
                                          names(CONTACT_SUPPRESSIONS), bool, 60.0, ContactSuppression)
        [(key, proof)] = records
        assert key == suppression_key(settings.contacts.key.get_secret_value().encode(), settings.sms.from_number,
                                      Channel.SMS, stranger)
        assert (proof.state, proof.keyword, proof.channel, proof.provider) == (
            SuppressionState.SUPPRESSED, "stop", "sms", "twilio")
        assert proof.provider_message_id.startswith("SM")

        imported = f.profile(phone=stranger)  # then a store imports the number, and a campaign goes out
        await asyncio.to_thread(given_profiles, settings, imported)
        blocked, free = marketing(stranger, imported.customer_id), marketing(other)
        await h.send(blocked, free)
        outcomes = await h.outcomes(lambda seen: statuses(seen, blocked.message_id)
                                    and "sent" in statuses(seen, free.message_id))
        [suppressed] = [o for o in outcomes if o.message_id == blocked.message_id]
        assert (suppressed.status, suppressed.reason, suppressed.detail) == (
            OutcomeStatus.SUPPRESSED, OutcomeReason.OPTED_OUT, OPTED_OUT_BY_REPLY)
        assert stranger not in [m["to"] for m in await h.sandbox_messages()]  # no provider call

        await customer_texts(h, stranger, "START")  # the customer (known by now) opts back in: lifted
        await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, names(CONTACT_SUPPRESSIONS),
                                lambda seen: len(seen) == 2, 60.0, ContactSuppression)
        again = marketing(stranger, imported.customer_id)
        await h.send(again)
        await h.outcomes(lambda seen: "sent" in statuses(seen, again.message_id))
        assert h.metrics.webhooks.labels("twilio", "suppressed")._value.get() == 1  # kept, not dead-lettered

    run(settings, scenario)


# --- (c) the directory survives a restart -------------------------------------------------------------


def test_a_second_gateway_instance_resolves_the_same_number_from_the_profiles(settings: Settings) -> None:
    customer = f.profile(phone=number())
    given_profiles(settings, customer)

    async def scenario(h: Harness) -> None:
        await customer_texts(h, customer.phone, "Dziękuję!")
        await h.stop_gateway()
        await h.start_gateway()  # another instance: everything it knows comes from the topic
        await customer_texts(h, customer.phone, "Kiedy dostawa?")
        records = await asyncio.to_thread(inbound, settings, lambda seen: len(seen) == 2)
        assert [(k, m.text) for k, m in records] == [(customer.customer_id.encode(), "Dziękuję!"),
                                                     (customer.customer_id.encode(), "Kiedy dostawa?")]

    run(settings, scenario)
