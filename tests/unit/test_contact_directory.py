"""Specs for the gateways' contact directory, contact suppressions and what an inbound reply does with them."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest
from prometheus_client import CollectorRegistry

from connectors.gateways.directory import ContactDirectory, normalise, point_key
from connectors.gateways.inbound import Contacts, InboundWriter
from connectors.gateways.suppressions import Suppressions, suppression_key
from schemas.catalog import CONTACT_SUPPRESSIONS, MESSAGE_INBOUND, TopicNames, dlq_topic
from schemas.codec import codec_for, encode
from schemas.contacts import ContactSuppression, SuppressionState
from schemas.messages import InboundMessage
from schemas.types import Channel
from streams.clock import VirtualClock
from streams.metrics import Metrics
from tests import factories as f

KEY = b"test-contact-key"
SENDER = "+15005550006"


def directory(channel: Channel = Channel.SMS) -> ContactDirectory:
    return ContactDirectory("customers.profiles", channel, KEY)


# --- keyed hashing ---------------------------------------------------------------------------


def test_a_number_is_known_by_the_same_key_however_a_provider_writes_it():
    assert normalise("+48 601-234-567") == normalise("48601234567") == "48601234567"
    assert point_key(KEY, Channel.SMS, "+48601234567") == point_key(KEY, Channel.SMS, "48601234567")
    assert normalise(" Ana@Example.COM ") == "ana@example.com"


def test_the_key_depends_on_the_secret_and_the_channel_and_holds_no_digits_of_the_number():
    key = point_key(KEY, Channel.SMS, "+48601234567")
    assert len(key) == 16 and b"48601234567" not in key
    assert key != point_key(b"another-key", Channel.SMS, "+48601234567")
    assert key != point_key(KEY, Channel.WHATSAPP, "+48601234567")
    assert key != point_key(KEY, Channel.SMS, "+48601234568")


def test_a_suppression_key_is_hex_and_names_sender_channel_and_point():
    key = suppression_key(KEY, SENDER, Channel.SMS, "+48601234567")
    assert len(key) == 64 and int(key, 16) and b"48601234567" not in key
    assert key == suppression_key(KEY, SENDER, Channel.SMS, "48601234567")
    assert key != suppression_key(KEY, "+15005550007", Channel.SMS, "+48601234567")
    assert key != suppression_key(KEY, SENDER, Channel.WHATSAPP, "+48601234567")


# --- the directory's updates -----------------------------------------------------------------


def test_a_profile_makes_its_number_resolve_to_its_customer_and_store():
    d = directory()
    p = f.profile(phone="+48601000111", store_id="store-7")
    d.apply(p.customer_id, p)
    assert d.lookup("+48601000111") == d.lookup("48601000111") == (p.customer_id, "store-7")
    assert d.lookup("+48601000112") is None


def test_a_changed_number_removes_the_old_mapping():
    d = directory()
    p = f.profile(phone="+48601000111")
    d.apply(p.customer_id, p)
    d.apply(p.customer_id, p.model_copy(update={"phone": "+48601000222"}))
    assert d.lookup("+48601000111") is None
    assert d.lookup("+48601000222") == (p.customer_id, "store-1") and len(d) == 1


def test_a_tombstone_or_a_profile_without_a_number_removes_the_mapping():
    d = directory()
    erased, unreachable = f.profile(phone="+48601000111"), f.profile(phone="+48601000222")
    for p in (erased, unreachable):
        d.apply(p.customer_id, p)
    d.apply(erased.customer_id, None)
    d.apply(unreachable.customer_id, unreachable.model_copy(update={"phone": None}))
    assert d.lookup("+48601000111") is None and d.lookup("+48601000222") is None and len(d) == 0


def test_a_shared_number_resolves_to_the_newest_profile_and_back_when_it_moves_away():
    d = directory()
    first, second = f.profile(phone="+48601000111", store_id="a"), f.profile(phone="+48601000111", store_id="b")
    d.apply(first.customer_id, first)
    d.apply(second.customer_id, second)
    assert d.lookup("+48601000111") == (second.customer_id, "b")
    d.apply(second.customer_id, None)
    assert d.lookup("+48601000111") == (first.customer_id, "a")


def test_whatsapp_resolves_the_whatsapp_number_else_the_phone_as_the_worker_sends_to_them():
    d = directory(Channel.WHATSAPP)
    both, phone_only = f.profile(phone="+48601000111", whatsapp="+48601000999"), f.profile(
        phone="+48601000222", whatsapp=None)
    for p in (both, phone_only):
        d.apply(p.customer_id, p)
    assert d.lookup("48601000999") == (both.customer_id, "store-1") and d.lookup("48601000111") is None
    assert d.lookup("48601000222") == (phone_only.customer_id, "store-1")


def test_a_customer_costs_the_directory_under_300_bytes():
    profiles = [f.profile(customer_id=f"cust-{n:07d}", phone=f"+4860{n:07d}") for n in range(20_000)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        d = directory()
        for p in profiles:
            d.apply(p.customer_id, p)
        per_customer = (tracemalloc.get_traced_memory()[0] - before) / len(profiles)
    finally:
        tracemalloc.stop()
    assert per_customer < 300, per_customer


def test_contacts_resolve_numbers_through_the_directory_and_never_learn_one_from_a_send():
    d = directory()
    p = f.profile(phone="+48601000111")
    d.apply(p.customer_id, p)
    contacts = Contacts(d)
    contacts.learn("+48601000333", "someone", "store-1")  # a send once made to it: not a directory entry
    contacts.learn("US.1349", p.customer_id, "store-1")
    assert contacts.lookup("+48601000111") == (p.customer_id, "store-1")
    assert contacts.lookup("+48601000333") is None
    assert contacts.lookup(None, "US.1349") == (p.customer_id, "store-1")


# --- suppressions and replies ----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None]] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.records.append((topic, key, value))

    def on(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        return [(k, v) for t, k, v in self.records if t == topic]


NAMES = TopicNames()


def rig(*profiles) -> tuple[InboundWriter, Suppressions, Recorder]:
    d = directory()
    for p in profiles:
        d.apply(p.customer_id, p)
    publisher = Recorder()
    suppressions = Suppressions(NAMES(CONTACT_SUPPRESSIONS), Channel.SMS, SENDER, KEY, publisher)
    writer = InboundWriter(NAMES, publisher, Contacts(d), VirtualClock(f.NOW), Metrics(registry=CollectorRegistry()),
                           suppressions=suppressions)
    return writer, suppressions, publisher


def reply(writer: InboundWriter, number: str, text: str, sid: str) -> None:
    asyncio.run(writer.write(channel=Channel.SMS, provider="twilio", provider_message_id=sid, from_number=number,
                             text=text, raw=b"raw", received_at=f.NOW))


@pytest.mark.parametrize("word", ["STOP", "הסר", "Rezygnuję", "СТОП", "stoppen"])
def test_a_stop_from_a_number_no_profile_has_is_kept_as_a_suppression_with_its_proof(word):
    writer, suppressions, publisher = rig()
    reply(writer, "+48601000111", word, "SM1")
    [(key, value)] = publisher.on(NAMES(CONTACT_SUPPRESSIONS))
    assert key == suppression_key(KEY, SENDER, Channel.SMS, "+48601000111")
    record = codec_for(ContactSuppression).decode(value)
    assert (record.state, record.provider_message_id, record.channel, record.sender) == (
        SuppressionState.SUPPRESSED, "SM1", "sms", SENDER)
    assert record.received_at == f.NOW and record.keyword
    assert publisher.on(dlq_topic(MESSAGE_INBOUND)) == [] and publisher.on(MESSAGE_INBOUND) == []
    assert suppressions.blocks(f.command(to="+48601000111")) and not suppressions.blocks(f.command(to="+48601000222"))


def test_a_start_lifts_the_suppression_and_other_text_from_an_unknown_number_is_dead_lettered():
    writer, suppressions, publisher = rig()
    reply(writer, "+48601000111", "STOP", "SM1")
    reply(writer, "+48601000111", "kto to?", "SM2")
    reply(writer, "+48601000111", "START", "SM3")
    assert not suppressions.blocks(f.command(to="+48601000111"))
    states = [codec_for(ContactSuppression).decode(v).state for _, v in publisher.on(CONTACT_SUPPRESSIONS)]
    assert states == ["suppressed", "lifted"]
    assert len(publisher.on(dlq_topic(MESSAGE_INBOUND))) == 1


def test_a_stop_from_a_known_number_goes_to_its_customer_and_suppresses_nothing():
    p = f.profile(phone="+48601000111")
    writer, suppressions, publisher = rig(p)
    reply(writer, "+48601000111", "STOP", "SM1")
    [(key, value)] = publisher.on(MESSAGE_INBOUND)
    assert key == p.customer_id.encode() and codec_for(InboundMessage).decode(value).text == "STOP"
    assert publisher.on(CONTACT_SUPPRESSIONS) == [] and len(suppressions) == 0


def test_a_start_from_a_customer_whose_number_was_suppressed_lifts_it_and_reaches_the_customer():
    writer, suppressions, publisher = rig()
    reply(writer, "+48601000111", "STOP", "SM1")
    p = f.profile(phone="+48601000111")
    writer._contacts.directory.apply(p.customer_id, p)  # imported later
    reply(writer, "+48601000111", "START", "SM2")
    assert not suppressions.suppressed("+48601000111")
    assert [k for k, _ in publisher.on(MESSAGE_INBOUND)] == [p.customer_id.encode()]


def test_the_follower_keeps_only_this_senders_suppressions_and_drops_a_lifted_one():
    suppressions = Suppressions(CONTACT_SUPPRESSIONS, Channel.SMS, SENDER, KEY, Recorder())
    record = ContactSuppression(sender=SENDER, channel=Channel.SMS, state=SuppressionState.SUPPRESSED,
                                keyword="stop", provider="twilio", provider_message_id="SM1", received_at=f.NOW)
    key = suppression_key(KEY, SENDER, Channel.SMS, "+48601000111")
    suppressions._apply(0, key, encode(record), 0)
    suppressions._apply(0, b"other", encode(record.model_copy(update={"sender": "+15005550007"})), 1)
    assert suppressions.suppressed("+48601000111") and len(suppressions) == 1
    suppressions._apply(0, key, encode(record.model_copy(update={"state": SuppressionState.LIFTED})), 2)
    assert len(suppressions) == 0
