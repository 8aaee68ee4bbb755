"""A marketing e-mail's one-click unsubscribe, end to end on the real broker: the worker decides an abandoned-cart
e-mail, the e-mail gateway sends it to the SMTP sandbox, the mailbox provider POSTs the List-Unsubscribe address
to the preference centre (RFC 8058), the opt-out is on ``customers.consents`` with its proof, and the worker
suppresses the next marketing e-mail for that customer."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from connectors.preferences.service import run_preferences
from schemas.catalog import CUSTOMER_CONSENTS, CUSTOMER_PROFILES, MESSAGE_OUTCOMES, STOREFRONT_EVENTS, TopicNames
from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentSource, ConsentState
from schemas.events import Cart, EventType, StorefrontEvent
from schemas.messages import MessageOutcome, OutcomeReason, OutcomeStatus
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id as journey_message_id
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.gateways import Harness
from tests.integration.test_email_gateway import smtp_sandbox
from tests.support import Child, consume_until, http_ok, produce, wait_for_worker, wait_until, write_journeys

pytestmark = pytest.mark.integration

PUBLIC = "https://prefs.example"  # what the e-mail links say; the test reaches the same server on loopback
CART_EMAIL = """
journey: cart_email
purpose: marketing
message_class: cart_reminder
trigger: {event: cart_abandoned}
steps:
  - {id: remind, send: cart_reminder, channels: [email], expires_after: 48h}
"""


def _cart(customer_id: str, store_id: str) -> StorefrontEvent:
    cart = Cart(cart_id=f.uid(), cart_url="https://shop.example/cart/9", total_minor=4_900, currency="EUR")
    return StorefrontEvent(event_id=f.uid(), event_type=EventType.CART_ABANDONED, store_id=store_id,
                           customer_id=customer_id, occurred_at=dt.datetime.now(dt.timezone.utc), cart=cart)


def _reminder(event: StorefrontEvent) -> str:
    return journey_message_id(event.event_id, "cart_email", "remind")


def test_a_one_click_unsubscribe_is_recorded_and_the_next_marketing_email_is_suppressed(
        settings: Settings, tmp_path: Path) -> None:
    settings.preferences.public_base_url = PUBLIC
    settings.worker.journeys_dir = write_journeys(tmp_path, CART_EMAIL)
    names = TopicNames(settings.kafka.topic_prefix)
    bootstrap = settings.kafka.bootstrap_servers
    create_topics(settings)
    customer = f.profile(locale="pl", time_zone="UTC", email="zofia@example.com", channel_preferences=[Channel.EMAIL])
    opt_in = f.consent(customer.customer_id, Channel.EMAIL, ConsentState.OPTED_IN, Purpose.MARKETING,
                       at=dt.datetime.now(dt.timezone.utc))
    worker = Child(["worker", "--loglevel", "warn"], settings, tmp_path / f"worker-{time.monotonic_ns()}.log")
    key = customer.customer_id.encode()
    try:
        produce(bootstrap, names(CUSTOMER_PROFILES), [(key, encode(customer))])
        produce(bootstrap, names(CUSTOMER_CONSENTS), [(key, encode(opt_in))])
        wait_for_worker(settings, [names(CUSTOMER_PROFILES), names(CUSTOMER_CONSENTS)], timeout=90)
        first, second = _cart(customer.customer_id, customer.store_id), _cart(customer.customer_id, customer.store_id)

        async def main() -> None:
            async with smtp_sandbox(settings) as sandbox_url:
                gateway = Harness(Channel.EMAIL, settings, sandbox_url)
                await gateway.start_gateway()
                stop = asyncio.Event()
                centre = asyncio.create_task(run_preferences(settings, stop, metrics=Metrics(CollectorRegistry())))
                try:
                    health = f"http://127.0.0.1:{settings.preferences.port}/health"
                    await asyncio.to_thread(wait_until, lambda: http_ok(health) or centre.done(), 30, "centre up")
                    await _unsubscribe_from_the_first_email(settings, gateway, first)
                finally:
                    stop.set()
                    await centre
                    await gateway.stop_gateway()

        asyncio.run(main())

        # The opt-out, with its proof, on the consent ledger.
        changes = consume_until(bootstrap, names(CUSTOMER_CONSENTS),
                                lambda seen: any(c.source == ConsentSource.PREFERENCE_CENTRE for _, c in seen),
                                model=ConsentChange)
        [unsubscribed] = [c for _, c in changes if c.source == ConsentSource.PREFERENCE_CENTRE]
        assert (unsubscribed.customer_id, unsubscribed.channel, unsubscribed.purpose, unsubscribed.state) == (
            customer.customer_id, Channel.EMAIL, Purpose.MARKETING, ConsentState.OPTED_OUT)
        assert unsubscribed.evidence.inbound_message_id == _reminder(first)
        assert unsubscribed.evidence.user_agent == "MailboxProvider/1.0"

        # The worker has it: the next marketing e-mail is suppressed, opted out.
        wait_for_worker(settings, [names(CUSTOMER_CONSENTS)], timeout=90)
        produce(bootstrap, names(STOREFRONT_EVENTS), [(key, encode(second))])
        outcomes = consume_until(bootstrap, names(MESSAGE_OUTCOMES),
                                 lambda seen: any(o.message_id == _reminder(second) for _, o in seen),
                                 timeout=90, model=MessageOutcome)
        [held] = [o for _, o in outcomes if o.message_id == _reminder(second)]
        assert (held.status, held.reason) == (OutcomeStatus.SUPPRESSED, OutcomeReason.OPTED_OUT)
    finally:
        assert worker.stop() in (0, -15), worker.output()


async def _unsubscribe_from_the_first_email(settings: Settings, gateway: Harness, cart: StorefrontEvent) -> None:
    """The first reminder arrives in the mailbox; its one-click header is POSTed as a mailbox provider does."""
    await asyncio.to_thread(produce, settings.kafka.bootstrap_servers, gateway.names(STOREFRONT_EVENTS),
                            [(cart.customer_id.encode(), encode(cart))])
    await gateway.outcomes(lambda seen: any(o.message_id == _reminder(cart) and o.status == "sent" for o in seen))
    [mail] = await gateway.sandbox_messages()
    assert mail["switchboard_message_id"] == _reminder(cart)
    assert mail["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    url = mail["list_unsubscribe"].strip("<>")
    assert url in mail["text"] and url.startswith(f"{PUBLIC}/unsubscribe/")
    local = f"http://127.0.0.1:{settings.preferences.port}{url.removeprefix(PUBLIC)}"
    async with httpx.AsyncClient() as client:
        altered = local[:-3] + ("AAA" if not local.endswith("AAA") else "BBB")  # the signature no longer matches
        forged = await client.post(altered, content=b"List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert forged.status_code == 403
        response = await client.post(local, content=b"List-Unsubscribe=One-Click",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "User-Agent": "MailboxProvider/1.0"})
    assert response.status_code == 200
