"""Every seed journey (deploy/journeys/*.yaml) end to end, on the real broker, through the public surface only:
customers and events in (`switchboard produce` and the producer library it uses), customers' replies through the
provider sandboxes (which post Meta's and Twilio's signed webhooks to the gateways), and what comes out: the
sandboxes' inspection APIs, the topics (intents, commands, outcomes, hand-offs) and the worker's /metrics.

The whole system runs once for the module (worker, three gateways, three sandboxes) with the shipped journeys and
``journey_time_scale`` = TIME_SCALE, so a journey's hours pass in moments (1 h → 1.1 s, 4 h → 4.3 s, 24 h → 26 s,
3 d → 78 s: long enough that a receipt or a reply beats the wait it should end, even on a busy machine). ``at``
waits (the birthday's 10:00) are wall-clock, not scaled. Quiet hours and frequency caps are off (make_settings'
stores file), so nothing here depends on the time of day it runs, except the birthday, whose customers' zones are
picked from the clock.

The journeys that need no answer from the customer start together in the module's ``storefront``, one batch of
JSON lines through ``switchboard produce storefront.events`` (so the cross-sell's three scaled days pass while the
other tests run); those driven by replies or by a second event start in their own test, through the producer
library. Negative checks ("nothing was sent") read the topics after the worker has provably consumed the input,
plus a few timer ticks; no assertion bounds how long anything takes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from connectors.producer import EventProducer
from schemas.catalog import (CUSTOMER_CONSENTS, CUSTOMER_PROFILES, JOURNEY_HANDOFFS, MESSAGE_INBOUND,
                             MESSAGE_OUTCOMES, STOREFRONT_EVENTS, TopicNames, commands_topic)
from schemas.codec import codec_for
from schemas.messages import Handoff, InboundMessage, MessageOutcome, SendCommand
from schemas.types import Channel, Purpose
from streams.journeys.engine import message_id
from streams.settings import Settings
from streams.topics import app_id
from tests.support import ROOT, Child, env_of, http_ok, make_settings, wait_for_worker, wait_until, write_stores

pytestmark = pytest.mark.e2e

TIME_SCALE = 0.0003
DEADLINE = 120.0  # generous: other heavy jobs may share this machine; never a timing assertion
STORE = "store-1"
CODE = re.compile(r"\bSB-[0-9A-HJKMNP-TV-Z]{8}\b")  # coupons.py: Crockford base32 after the prefix


# --- the system ----------------------------------------------------------------------------------------------------

def cli(settings: Settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "connectors.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **env_of(settings)}, timeout=120)


@pytest.fixture(scope="module")
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_settings(kafka_bootstrap, tmp_path_factory.mktemp("e2e-journeys"))
    settings.worker.stores_file = write_stores(settings.worker.data_dir.parent, {"defaults": {  # make_settings' rules
        "quiet_hours": {"enabled": False}, "frequency_caps": {"enabled": False},
        "product_url": "https://shop.example/p/{sku}"}})  # + the cross-sell's product links
    settings.worker.journey_time_scale = TIME_SCALE
    settings.worker.timer_interval = 0.5
    logs: Path = settings.worker.data_dir.parent
    assert cli(settings, "topics", "create").returncode == 0
    children = [Child(["sandbox", provider, "--fail-rate", "0"], settings, logs / f"sandbox-{provider}.log")
                for provider in ("twilio", "whatsapp", "smtp")]
    gateways = [Child(["gateway", channel], settings, logs / f"gateway-{channel}.log")
                for channel in ("sms", "whatsapp", "email")]
    worker = Child(["worker", "--loglevel", "warn"], settings, logs / "worker.log")
    children += [*gateways, worker]
    try:
        for gateway, port in zip(gateways, (settings.sms.webhook_port, settings.whatsapp.webhook_port,
                                            settings.email.webhook_port)):
            wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), 60, "gateway up", gateway)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{settings.worker.web_port}/metrics"), 60, "worker up", worker)
        yield settings
    finally:
        for child in children:
            child.stop()


def names(system: Settings) -> TopicNames:
    return TopicNames(system.kafka.topic_prefix)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def produce(system: Settings, topic: str, *payloads: dict) -> None:
    """JSON payloads through the producer library (validated, Avro-encoded, keyed by customer)."""
    with EventProducer(system.kafka.bootstrap_servers, system.kafka.topic_prefix) as producer:
        for payload in payloads:
            producer.send_json(topic, payload)
        producer.flush()


@dataclass(frozen=True)
class Customer:
    customer_id: str
    phone: str | None = None
    whatsapp: str | None = None
    email: str | None = None
    preferences: tuple[str, ...] = ()
    marketing: tuple[str, ...] = ()  # channels with a marketing opt-in
    time_zone: str | None = None
    first_name: str = "Ana"

    def profile(self) -> dict:
        return {"customer_id": self.customer_id, "store_id": STORE, "first_name": self.first_name, "locale": "en",
                "time_zone": self.time_zone, "phone": self.phone, "whatsapp": self.whatsapp, "email": self.email,
                "channel_preferences": list(self.preferences), "updated_at": now_iso()}

    def consents(self) -> list[dict]:
        return [{"change_id": str(uuid.uuid4()), "customer_id": self.customer_id, "store_id": STORE,
                 "channel": channel, "purpose": "marketing", "state": "opted_in", "source": "checkout",
                 "occurred_at": now_iso(),
                 "evidence": {"disclosure_text": "Yes, send me offers", "disclosure_version": "v1"}}
                for channel in self.marketing]

    def event(self, event_type: str, **fields: object) -> dict:
        return {"event_id": f"ev-{self.customer_id}-{event_type}-{uuid.uuid4().hex[:6]}", "event_type": event_type,
                "store_id": STORE, "customer_id": self.customer_id, "occurred_at": now_iso(), **fields}

    @property
    def wa_digits(self) -> str:
        return (self.whatsapp or self.phone or "").removeprefix("+")


def register(system: Settings, *customers: Customer) -> None:
    """Profiles and marketing opt-ins on their topics, and the worker caught up with them (its state is loaded)."""
    produce(system, CUSTOMER_PROFILES, *(c.profile() for c in customers))
    produce(system, CUSTOMER_CONSENTS, *(change for c in customers for change in c.consents()))
    wait_for_worker(system, [names(system)(CUSTOMER_PROFILES), names(system)(CUSTOMER_CONSENTS)], DEADLINE)


def order(order_id: str, **extra: object) -> dict:
    return {"order_id": order_id, "total_minor": 4990, "currency": "EUR",
            "order_url": f"https://shop.example/orders/{order_id}",
            "tracking_url": f"https://track.example/{order_id}", "carrier": "DHL", **extra}


# --- what comes out ------------------------------------------------------------------------------------------------

def read_topic(system: Settings, topic: str, model=None) -> list:
    """Every record on ``topic`` up to its current end: (key, value decoded with ``model``)."""
    consumer = KafkaConsumer(bootstrap_servers=system.kafka.bootstrap_servers.split(","), group_id=None,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        seen: list = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            assert time.monotonic() < deadline, f"{topic}: could not read to its end"
            for records in consumer.poll(timeout_ms=200).values():
                seen.extend((r.key, codec_for(model).decode(r.value) if model and r.value else r.value)
                            for r in records)
        return seen
    finally:
        consumer.close()


def eventually(read: Callable[[], list], done: Callable[[list], bool], what: str) -> list:
    """Polls ``read()`` until ``done`` holds for what it returns; fails with the last reading."""
    deadline = time.monotonic() + DEADLINE
    while True:
        seen = read()
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE}s; last saw {seen!r}"[:4000])
        time.sleep(0.5)  # polling other processes' output


def outcomes(system: Settings) -> list[MessageOutcome]:
    return [o for _, o in read_topic(system, names(system)(MESSAGE_OUTCOMES), MessageOutcome)]


def story(system: Settings, mid: str) -> list[MessageOutcome]:
    """A message's outcomes, de-duplicated on outcome_id (as a data team reads them), in order."""
    return list({o.outcome_id: o for o in outcomes(system) if o.message_id == mid}.values())


def wait_story(system: Settings, mid: str, done: Callable[[list[tuple[str | None, str]]], bool],
               what: str) -> list[MessageOutcome]:
    def read() -> list[MessageOutcome]:
        return story(system, mid)
    return eventually(read, lambda seen: done([(o.channel, o.status) for o in seen]), what)


def reached(channel: str, status: str) -> Callable[[list[tuple[str | None, str]]], bool]:
    return lambda seen: (channel, status) in seen


def decided(system: Settings) -> list[SendCommand | MessageOutcome]:
    """Every message the worker decided: its send commands, and its own outcomes (suppressed, scheduled).
    A journey's message is decided in the step that makes it: there is no intent record to read."""
    found: list[SendCommand | MessageOutcome] = [
        c for channel in Channel for purpose in Purpose for c in commands(system, channel, purpose)]
    return found + [o for o in outcomes(system) if o.status in ("suppressed", "scheduled") and o.provider is None]


def commands(system: Settings, channel: Channel, purpose: Purpose) -> list[SendCommand]:
    return [c for _, c in read_topic(system, names(system)(commands_topic(channel, purpose)), SendCommand)]


def get_json(url: str) -> list | dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def sms_to(system: Settings, number: str) -> list[dict]:
    """What the Twilio sandbox was asked to send to ``number`` (bodies as sent)."""
    return [m for m in get_json(f"{system.sms.api_base_url}/_sandbox/messages")
            if m["to"] == number and m["direction"] != "inbound"]


def whatsapp_to(system: Settings, digits: str) -> list[dict]:
    return [m for m in get_json(f"{system.whatsapp.api_base_url}/_sandbox/messages") if m["to"] == digits]


def mails_to(system: Settings, address: str) -> list[dict]:
    return [m for m in get_json(f"http://127.0.0.1:{system.sandbox.smtp_http_port}/_sandbox/messages")
            if address in (m["to"] or "")]


def customer_writes(system: Settings, customer: Customer, text: str | None = None,
                    button_payload: str | None = None, button_reply_id: str | None = None) -> None:
    """The customer answers on WhatsApp (a text, a template's quick-reply button, or a button of an interactive
    message, titled ``text``): the sandbox posts Meta's signed webhook to the gateway, which puts the reply on
    messages.inbound."""
    body = {"from": customer.wa_digits, "text": text, "button_payload": button_payload,
            "button_reply_id": button_reply_id}
    post_json(f"{system.whatsapp.api_base_url}/_sandbox/inbound", {k: v for k, v in body.items() if v is not None})


def open_window(system: Settings, customer: Customer) -> None:
    """The customer's order is confirmed on WhatsApp (an approved template) and they answer it: the 24-hour window
    is open, and the worker knows it (it has consumed the reply) before anything else is decided."""
    placed = customer.event("order_placed", order=order(f"WIN-{customer.customer_id}"))
    produce(system, STOREFRONT_EVENTS, placed)
    sent_outcome(system, message_id(placed["event_id"], "order_confirmation", "confirm"), "whatsapp")
    eventually(lambda: whatsapp_to(system, customer.wa_digits), bool, "the order confirmation on WhatsApp")
    customer_writes(system, customer, text="Thanks, can't wait!")
    eventually(lambda: [i for _, i in read_topic(system, names(system)(MESSAGE_INBOUND), InboundMessage)
                        if i.customer_id == customer.customer_id], bool, "the customer's message on messages.inbound")
    wait_for_worker(system, [names(system)(MESSAGE_INBOUND)], DEADLINE)


def chat_number(system: Settings, customer: Customer, n: int, what: str) -> dict:
    """The n-th WhatsApp message the sandbox took for the customer (1-based), once it is there."""
    return eventually(lambda: whatsapp_to(system, customer.wa_digits), lambda seen: len(seen) >= n, what)[n - 1]


def metric(system: Settings, name: str, **labels: str) -> float:
    """A sample of the worker's /metrics (0 when it has not been counted yet)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{system.worker.web_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and sample.labels == labels)


def sent_outcome(system: Settings, mid: str, channel: str) -> MessageOutcome:
    [sent] = [o for o in wait_story(system, mid, reached(channel, "sent"), f"{mid} sent on {channel}")
              if (o.channel, o.status) == (channel, "sent")]
    return sent


# --- the storefront: journeys that run without the customer's answer -----------------------------------------------

def zone_where_local_hour_in(hours: range) -> str:
    """A fixed-offset IANA zone (Etc/GMT±N: POSIX signs, inverted) whose local hour now is in ``hours``."""
    now = dt.datetime.now(dt.timezone.utc)
    for offset in range(-12, 15):
        name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
        if now.astimezone(ZoneInfo(name)).hour in hours:
            return name
    raise AssertionError(f"no zone has a local hour in {hours}")  # UTC-12 … UTC+14 covers every hour


SHIP_SMS = Customer("ship-sms", phone="+48601100011", email="ship-sms@example.com", preferences=("sms",))
SHIP_EMAIL = Customer("ship-email", phone="+48601100012", email="ship-email@example.com", preferences=("email",))
SHIP_WA = Customer("ship-wa", phone="+31612100013", whatsapp="+31612100013", preferences=("whatsapp",))
OC_WA = Customer("oc-wa", phone="+31612100021", whatsapp="+31612100021", email="oc-wa@example.com",
                 preferences=("whatsapp",))
OC_EMAIL = Customer("oc-email", email="oc-email@example.com")  # no number: no WhatsApp
REACT = Customer("react", phone="+447700900031", marketing=("sms",))
NEWS_SMS = Customer("news-sms", phone="+31612100041", whatsapp="+31612100041", marketing=("sms", "whatsapp"))
NEWS_WA = Customer("news-wa", phone="+31612100042", whatsapp="+31612100042", marketing=("whatsapp",))
XSELL = Customer("xsell", email="xsell@example.com", marketing=("email",))
XSELL_PEERS = [Customer(f"xsell-peer-{n}") for n in range(3)]  # their orders feed the product-affinity table


def line(sku: str, name: str) -> dict:
    return {"sku": sku, "name": name, "quantity": 1, "unit_price_minor": 4990}


SNEAKERS, SOCKS, CAP = line("SNK-42", "Trail sneakers"), line("SOCK-1", "Merino running socks"), \
    line("CAP-7", "Running cap")


@dataclass(frozen=True)
class Storefront:
    events: dict[str, dict]  # customer id -> the event that started their journey
    birthday_now: Customer
    birthday_later: Customer


@pytest.fixture(scope="module")
def storefront(system: Settings) -> Storefront:
    # Birthdays: one customer whose local time is past 10:00 (same_day: at once), one whose 10:00 is hours away.
    birthday_now = Customer("bday-now", phone="+48601100051", marketing=("sms",),
                            time_zone=zone_where_local_hour_in(range(11, 20)))
    birthday_later = Customer("bday-later", phone="+48601100052", marketing=("sms",),
                              time_zone=zone_where_local_hour_in(range(1, 9)))
    everyone = (SHIP_SMS, SHIP_EMAIL, SHIP_WA, OC_WA, OC_EMAIL, REACT, NEWS_SMS, NEWS_WA, XSELL, birthday_now,
                birthday_later)
    register(system, *everyone)
    events = {
        **{c.customer_id: c.event("order_shipped", order=order(f"SHIP-{c.customer_id}"))
           for c in (SHIP_SMS, SHIP_EMAIL, SHIP_WA)},
        **{c.customer_id: c.event("order_placed", order=order(f"OC-{c.customer_id}")) for c in (OC_WA, OC_EMAIL)},
        REACT.customer_id: REACT.event("customer_inactive"),
        NEWS_SMS.customer_id: NEWS_SMS.event("customer_signup", attributes={"channel": "sms"}),
        NEWS_WA.customer_id: NEWS_WA.event("customer_signup", attributes={"channel": "whatsapp"}),
        # Other customers bought the sneakers with socks twice, with a cap once: the cross-sell, three scaled days
        # after XSELL's sneakers ship, recommends the socks (no recommendation on the event itself).
        **{peer.customer_id: peer.event("order_placed", order=order(f"XP-{n}", items=[SNEAKERS, partner]))
           for n, (peer, partner) in enumerate(zip(XSELL_PEERS, (SOCKS, SOCKS, CAP)))},
        XSELL.customer_id: XSELL.event("order_shipped", order=order("XS-1", items=[SNEAKERS])),
        birthday_now.customer_id: birthday_now.event("birthday"),
        birthday_later.customer_id: birthday_later.event("birthday"),
    }
    result = cli(system, "produce", "storefront.events", stdin="\n".join(json.dumps(e) for e in events.values()))
    assert result.returncode == 0, result.stderr
    return Storefront(events, birthday_now, birthday_later)


# --- shipping_update -----------------------------------------------------------------------------------------------

def test_shipping_update_sends_the_tracking_link_on_each_customers_preferred_channel(
        system: Settings, storefront: Storefront) -> None:
    def mid(c: Customer) -> str:
        return message_id(storefront.events[c.customer_id]["event_id"], "shipping_update", "notify")

    by_sms = sent_outcome(system, mid(SHIP_SMS), "sms")
    [sms] = eventually(lambda: sms_to(system, SHIP_SMS.phone), bool, "the shipping SMS at the provider")
    assert "https://track.example/SHIP-ship-sms" in sms["body"] and "Ana" in sms["body"]

    by_email = sent_outcome(system, mid(SHIP_EMAIL), "email")
    [mail] = eventually(lambda: mails_to(system, SHIP_EMAIL.email), bool, "the shipping e-mail at the provider")
    assert "https://track.example/SHIP-ship-email" in mail["text"] and mail["switchboard_message_id"] == mid(SHIP_EMAIL)
    assert not sms_to(system, SHIP_EMAIL.phone)  # e-mail is what this customer prefers

    by_whatsapp = sent_outcome(system, mid(SHIP_WA), "whatsapp")
    [chat] = eventually(lambda: whatsapp_to(system, SHIP_WA.wa_digits), bool, "the shipping WhatsApp at the provider")
    assert (chat["type"], chat["template"]) == ("template", "shipping_update")  # business-initiated: the template
    [command] = [c for c in commands(system, Channel.WHATSAPP, Purpose.TRANSACTIONAL) if c.message_id == mid(SHIP_WA)]
    assert "https://track.example/SHIP-ship-wa" in command.whatsapp_template.parameters

    for outcome in (by_sms, by_email, by_whatsapp):
        assert (outcome.journey, outcome.variant, outcome.coupon_code) == ("shipping_update", None, None)


# --- order_confirmation --------------------------------------------------------------------------------------------

def test_order_confirmation_goes_on_whatsapp_or_else_by_email_with_the_order_link(
        system: Settings, storefront: Storefront) -> None:
    def mid(c: Customer) -> str:
        return message_id(storefront.events[c.customer_id]["event_id"], "order_confirmation", "confirm")

    on_whatsapp = sent_outcome(system, mid(OC_WA), "whatsapp")
    [chat] = eventually(lambda: whatsapp_to(system, OC_WA.wa_digits), bool, "the confirmation at the WhatsApp sandbox")
    assert chat["template"] == "order_confirmation"
    [command] = [c for c in commands(system, Channel.WHATSAPP, Purpose.TRANSACTIONAL) if c.message_id == mid(OC_WA)]
    assert "https://shop.example/orders/OC-oc-wa" in command.whatsapp_template.parameters
    assert "https://shop.example/orders/OC-oc-wa" in command.body
    assert not mails_to(system, OC_WA.email)  # WhatsApp first; e-mail is only its fallback

    by_email = sent_outcome(system, mid(OC_EMAIL), "email")
    [mail] = eventually(lambda: mails_to(system, OC_EMAIL.email), bool, "the confirmation e-mail")
    assert "https://shop.example/orders/OC-oc-email" in mail["text"]

    assert on_whatsapp.journey == by_email.journey == "order_confirmation"


# --- reactivation --------------------------------------------------------------------------------------------------

def test_reactivation_sends_an_sms_with_a_coupon_code_that_the_outcome_carries(
        system: Settings, storefront: Storefront) -> None:
    mid = message_id(storefront.events[REACT.customer_id]["event_id"], "reactivation", "offer")
    sent = sent_outcome(system, mid, "sms")
    [sms] = eventually(lambda: sms_to(system, REACT.phone), bool, "the reactivation SMS")
    [code] = CODE.findall(sms["body"])
    assert "10% off your next order of 50.00 EUR or more" in sms["body"]  # the coupon's minimum order
    assert (sent.journey, sent.coupon_code, sent.purpose) == ("reactivation", code, "marketing")
    delivered = wait_story(system, mid, reached("sms", "delivered"), "the reactivation SMS delivered")
    assert [o.status for o in delivered] == ["sent", "delivered"]


# --- whatsapp_newsletter and whatsapp_welcome ----------------------------------------------------------------------

def test_an_sms_signup_gets_the_whatsapp_newsletter_invite_with_the_signup_link(
        system: Settings, storefront: Storefront) -> None:
    event_id = storefront.events[NEWS_SMS.customer_id]["event_id"]
    sent = sent_outcome(system, message_id(event_id, "whatsapp_newsletter", "invite"), "sms")
    [sms] = eventually(lambda: sms_to(system, NEWS_SMS.phone), bool, "the newsletter invite SMS")
    assert "https://shop.example/whatsapp" in sms["body"]  # the step's default signup_url
    assert sent.journey == "whatsapp_newsletter"
    # An SMS signup is not a WhatsApp signup: no welcome (the other journey's `where` wants channel whatsapp).
    assert not any(i.journey == "whatsapp_welcome" for i in decided(system) if i.trigger_event_id == event_id)


def test_a_whatsapp_signup_in_the_chat_gets_the_welcome_with_a_code(system: Settings) -> None:
    """The customer is talking to the shop on WhatsApp (they answered their order confirmation), then subscribes:
    the welcome goes inside the open window, as free text, with its code."""
    subscriber = Customer("news-wa-chat", phone="+31612100043", whatsapp="+31612100043", preferences=("whatsapp",),
                          marketing=("whatsapp",))
    register(system, subscriber)
    open_window(system, subscriber)
    signup = subscriber.event("customer_signup", attributes={"channel": "whatsapp"})
    produce(system, STOREFRONT_EVENTS, signup)

    mid = message_id(signup["event_id"], "whatsapp_welcome", "welcome")
    sent = sent_outcome(system, mid, "whatsapp")
    chats = eventually(lambda: whatsapp_to(system, subscriber.wa_digits), lambda seen: len(seen) == 2, "the welcome")
    assert chats[1]["type"] == "text"
    [code] = CODE.findall(chats[1]["text"])
    assert "5.00 EUR" in chats[1]["text"]
    assert (sent.journey, sent.coupon_code, sent.purpose) == ("whatsapp_welcome", code, "marketing")
    assert not sms_to(system, subscriber.phone)  # WhatsApp only: never the invite meant for SMS signups


def test_a_whatsapp_signup_outside_the_window_gets_the_welcome_as_its_approved_template(
        system: Settings, storefront: Storefront) -> None:
    mid = message_id(storefront.events[NEWS_WA.customer_id]["event_id"], "whatsapp_welcome", "welcome")
    story_ = wait_story(system, mid, lambda seen: bool({("whatsapp", "sent"), ("whatsapp", "failed")} & set(seen)),
                        "the welcome sent or failed")
    assert [(o.channel, o.status, o.error_code) for o in story_][:1] == [("whatsapp", "sent", None)]
    [command] = [c for c in commands(system, Channel.WHATSAPP, Purpose.MARKETING) if c.message_id == mid]
    [code] = CODE.findall(command.body)
    assert story_[0].coupon_code == code and code in command.whatsapp_template.parameters
    [chat] = eventually(lambda: whatsapp_to(system, NEWS_WA.wa_digits), bool, "the welcome at the WhatsApp sandbox")
    assert chat["template"] == "whatsapp_welcome"


# --- birthday ------------------------------------------------------------------------------------------------------

def test_birthday_goes_at_once_after_ten_local_and_waits_for_ten_before_it(
        system: Settings, storefront: Storefront) -> None:
    now_customer, later_customer = storefront.birthday_now, storefront.birthday_later
    now_event = storefront.events[now_customer.customer_id]["event_id"]
    later_event = storefront.events[later_customer.customer_id]["event_id"]

    sent = sent_outcome(system, message_id(now_event, "birthday", "greet"), "sms")
    [sms] = eventually(lambda: sms_to(system, now_customer.phone), bool, "the birthday SMS")
    [code] = CODE.findall(sms["body"])
    assert "happy birthday" in sms["body"] and "15%" in sms["body"]
    assert (sent.journey, sent.coupon_code) == ("birthday", code)

    # The other customer's 10:00 is hours away: the journey entered and waits (entered 2, exited 1: the one sent).
    wait_for_worker(system, [names(system)(STOREFRONT_EVENTS)], DEADLINE)
    eventually(lambda: [metric(system, "switchboard_journeys_total", journey="birthday", event="exited")],
               lambda v: v == [1.0], "the same-day birthday journey finished")
    assert metric(system, "switchboard_journeys_total", journey="birthday", event="entered") == 2.0
    later = message_id(later_event, "birthday", "greet")
    time.sleep(3)  # several timer ticks: a wake that were (wrongly) due now would have fired
    assert not [i for i in decided(system) if i.message_id == later]
    assert not sms_to(system, later_customer.phone)
    # Its wake-up is durable state: the customer's state on the customers table's changelog holds it, at 10:00
    # in the customer's zone.
    changelog = f"{app_id(system)}-customers-changelog"
    states = [json.loads(v) for k, v in read_topic(system, changelog) if k == later_customer.customer_id.encode()]
    instance = states[-1]["journeys"]["active"]["birthday"]
    zone = ZoneInfo(later_customer.time_zone)
    ten = dt.datetime.combine(dt.datetime.now(zone).date(), dt.time(10), tzinfo=zone)
    assert instance["wake_at"] == int(ten.timestamp() * 1000)


# --- abandoned_cart ------------------------------------------------------------------------------------------------

def test_abandoned_cart_sms_then_email_only_when_the_sms_fails_and_nothing_after_an_order(system: Settings) -> None:
    delivered = Customer("cart-ok", phone="+48601100061", email="cart-ok@example.com", marketing=("sms", "email"))
    failing = Customer("cart-fail", phone="+48601100005", email="cart-fail@example.com",  # Twilio: 30005
                       marketing=("sms", "email"))
    bought = Customer("cart-bought", phone="+48601100063", email="cart-bought@example.com",
                      marketing=("sms", "email"))
    register(system, delivered, failing, bought)

    def cart(c: Customer) -> dict:
        return c.event("cart_abandoned", cart={"cart_id": f"cart-{c.customer_id}", "total_minor": 5900,
                                               "currency": "EUR",
                                               "cart_url": f"https://shop.example/cart/{c.customer_id}"})

    carts = {c.customer_id: cart(c) for c in (delivered, failing, bought)}
    order_placed = bought.event("order_placed", order=order("CART-BOUGHT"))
    # The order follows the cart at once, well inside the journey's first (scaled) hour.
    produce(system, STOREFRONT_EVENTS, *carts.values(), order_placed)

    def mid(c: Customer, step: str) -> str:
        return message_id(carts[c.customer_id]["event_id"], "abandoned_cart", step)

    # Undeliverable SMS -> the e-mail follows, with the same cart link.
    wait_story(system, mid(failing, "sms"), reached("sms", "undelivered"), "the failing cart SMS undelivered")
    email = sent_outcome(system, mid(failing, "email"), "email")
    [sms] = sms_to(system, failing.phone)
    [mail] = eventually(lambda: mails_to(system, failing.email), bool, "the cart e-mail")
    assert "https://shop.example/cart/cart-fail" in sms["body"]
    assert "https://shop.example/cart/cart-fail" in mail["text"]
    assert (email.journey, email.purpose) == ("abandoned_cart", "marketing")

    # Delivered SMS -> no e-mail. The worker has consumed the delivery receipt (its group committed it, and what it
    # decided on it was published before that commit): no e-mail intent is there, and the sandbox got no mail.
    sms_sent = sent_outcome(system, mid(delivered, "sms"), "sms")
    assert sms_sent.journey == "abandoned_cart"
    wait_story(system, mid(delivered, "sms"), reached("sms", "delivered"), "the cart SMS delivered")
    [sms] = sms_to(system, delivered.phone)
    assert "https://shop.example/cart/cart-ok" in sms["body"]
    wait_for_worker(system, [names(system)(MESSAGE_OUTCOMES)], DEADLINE)
    time.sleep(4 * 3600 * TIME_SCALE + 2)  # past the settle wait too, in case the receipt had not woken it
    assert not [i for i in decided(system) if i.message_id == mid(delivered, "email")]
    assert not mails_to(system, delivered.email)

    # An order placed during the first wait ends the journey: nothing is sent; the order is confirmed.
    confirmation = message_id(order_placed["event_id"], "order_confirmation", "confirm")
    sent_outcome(system, confirmation, "whatsapp")
    assert not [i for i in decided(system) if i.trigger_event_id == carts[bought.customer_id]["event_id"]]
    assert not sms_to(system, bought.phone) and not mails_to(system, bought.email)


# --- delivery_feedback ---------------------------------------------------------------------------------------------
# The customers already talk to the shop on WhatsApp (they answered their order confirmation), so the questions go
# as free text inside the window; outside it they go as approved templates (tested below).

def test_delivery_feedback_a_five_gets_the_review_request(system: Settings) -> None:
    happy = Customer("fb-happy", phone="+31612100071", whatsapp="+31612100071", preferences=("whatsapp",))
    register(system, happy)
    open_window(system, happy)
    event = happy.event("order_delivered", order=order("FB-71"),
                        attributes={"review_url": "https://shop.example/review/FB-71"})
    produce(system, STOREFRONT_EVENTS, event)

    def step(name: str) -> str:
        return message_id(event["event_id"], "delivery_feedback", name)

    assert sent_outcome(system, step("rate"), "whatsapp").journey == "delivery_feedback"
    question = chat_number(system, happy, 2, "rate us")
    assert question["type"] == "text" and "FB-71" in question["text"] and "1 to 5" in question["text"]

    customer_writes(system, happy, text="5")
    assert sent_outcome(system, step("review"), "whatsapp").journey == "delivery_feedback"
    review = chat_number(system, happy, 3, "the review request")
    assert "https://shop.example/review/FB-71" in review["text"]
    assert not [i for i in decided(system) if i.message_id == step("what_went_wrong")]


def test_delivery_feedback_a_two_asks_what_went_wrong_and_hands_off_to_an_agent(system: Settings) -> None:
    unhappy = Customer("fb-unhappy", phone="+31612100072", whatsapp="+31612100072", preferences=("whatsapp",))
    register(system, unhappy)
    open_window(system, unhappy)
    event = unhappy.event("order_delivered", order=order("FB-72"))
    produce(system, STOREFRONT_EVENTS, event)

    def step(name: str) -> str:
        return message_id(event["event_id"], "delivery_feedback", name)

    sent_outcome(system, step("rate"), "whatsapp")
    assert "1 to 5" in chat_number(system, unhappy, 2, "rate us")["text"]
    customer_writes(system, unhappy, text="2")
    sent_outcome(system, step("what_went_wrong"), "whatsapp")
    asked = chat_number(system, unhappy, 3, "what went wrong")
    assert "What went wrong?" in asked["text"]
    assert asked["type"] == "interactive" and asked["buttons"] == ["Shipping", "Quality", "Service"]  # the seed's
    customer_writes(system, unhappy, text="Shipping", button_reply_id=asked["button_ids"][0])  # pressed
    sent_outcome(system, step("offer_agent"), "whatsapp")
    offer = chat_number(system, unhappy, 4, "talk to an agent")
    assert "talk to one of our team" in offer["text"] and offer["buttons"] == ["Yes", "No"]
    customer_writes(system, unhappy, text="yes")  # typed, not pressed: understood all the same

    records = eventually(lambda: [h for _, h in read_topic(system, names(system)(JOURNEY_HANDOFFS), Handoff)
                                  if h.customer_id == unhappy.customer_id], bool, "the hand-off")
    [handoff] = records
    assert (handoff.journey, handoff.step, handoff.store_id) == ("delivery_feedback", "handoff", STORE)
    assert handoff.context == {"reply:rate": "2", "reply:what_went_wrong": "shipping", "reply:offer_agent": "yes"}
    assert not [i for i in decided(system) if i.message_id == step("review")]


def test_delivery_feedback_outside_the_window_asks_on_whatsapp_with_the_approved_template(system: Settings) -> None:
    customer = Customer("fb-cold", phone="+31612100073", whatsapp="+31612100073", preferences=("whatsapp",))
    register(system, customer)
    event = customer.event("order_delivered", order=order("FB-73"))
    produce(system, STOREFRONT_EVENTS, event)
    rate = message_id(event["event_id"], "delivery_feedback", "rate")
    seen = wait_story(system, rate, lambda s: bool({("whatsapp", "sent"), ("whatsapp", "failed")} & set(s)),
                      "rate us sent or failed")
    assert [(o.channel, o.status, o.error_code) for o in seen][:1] == [("whatsapp", "sent", None)]
    [chat] = eventually(lambda: whatsapp_to(system, customer.wa_digits), bool, "rate us at the WhatsApp sandbox")
    assert chat["template"] == "rate_us"


def test_delivery_feedback_answered_by_sms_gets_the_review_request_by_sms(system: Settings) -> None:
    """The number is not on WhatsApp (the sandbox fails …0026 with 131026): the question falls back to SMS, the
    customer answers there (Twilio's signed webhook), and the review request must reach them too."""
    customer = Customer("fb-sms", phone="+31612100026")
    register(system, customer)
    event = customer.event("order_delivered", order=order("FB-26"))  # no review_url: the order page is linked
    produce(system, STOREFRONT_EVENTS, event)

    def step(name: str) -> str:
        return message_id(event["event_id"], "delivery_feedback", name)

    wait_story(system, step("rate"), reached("sms", "sent"), "rate us fell back to SMS")
    [question] = eventually(lambda: sms_to(system, customer.phone), bool, "rate us by SMS")
    assert "FB-26" in question["body"]
    post_json(f"{system.sms.api_base_url}/_sandbox/inbound", {"from": customer.phone, "text": "5"})
    review = wait_story(system, step("review"), lambda seen: bool(seen), "the review request decided")
    assert [(o.channel, o.status) for o in review][:1] == [("sms", "sent")], \
        [(o.status, o.reason, o.detail) for o in review]
    texts = eventually(lambda: sms_to(system, customer.phone), lambda seen: len(seen) == 2, "the review request SMS")
    assert "https://shop.example/orders/FB-26" in texts[1]["body"]


# --- cross_sell (last: its three scaled days started with the storefront) --------------------------------------------

def test_cross_sell_sends_the_recommendation_three_scaled_days_after_shipping(
        system: Settings, storefront: Storefront) -> None:
    shipped = storefront.events[XSELL.customer_id]
    mid = message_id(shipped["event_id"], "cross_sell", "recommend")
    sent = sent_outcome(system, mid, "email")
    assert (sent.journey, sent.purpose) == ("cross_sell", "marketing")
    [intent] = [i for i in decided(system) if i.message_id == mid]
    shipping = [i for i in decided(system)
                if i.trigger_event_id == shipped["event_id"] and i.journey == "shipping_update"]
    assert (intent.created_at - shipping[0].created_at).total_seconds() >= 3 * 86400 * TIME_SCALE - 1
    mails = eventually(lambda: [m for m in mails_to(system, XSELL.email) if m["switchboard_message_id"] == mid], bool,
                       "the recommendation e-mail")
    assert "Merino running socks" in mails[0]["text"] and "Trail sneakers" in mails[0]["text"]
    assert "https://shop.example/p/SOCK-1" in mails[0]["text"]
    assert "Merino running socks" in intent.body and "https://shop.example/p/SOCK-1" in intent.body
    # The shipping customers' orders list no products, so there is nothing to recommend: their cross-sell is
    # suppressed with that reason (before consent is even asked), never sent with an empty recommendation.
    for customer in (SHIP_SMS, SHIP_EMAIL, SHIP_WA):
        other = message_id(storefront.events[customer.customer_id]["event_id"], "cross_sell", "recommend")
        [suppressed] = wait_story(system, other, lambda seen: bool(seen), f"{customer.customer_id}'s cross-sell")
        assert (suppressed.status, suppressed.reason) == ("suppressed", "no_recommendation")
