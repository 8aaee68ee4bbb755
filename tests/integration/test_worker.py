"""The Faust worker on the real broker: each agent, driven through its topics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from schemas.catalog import (
    CONSENT_STATE,
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    MESSAGE_INBOUND,
    MESSAGE_OUTCOMES,
    STOREFRONT_EVENTS,
    TopicNames,
    commands_topic,
    dlq_topic,
)
from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentSnapshot, ConsentState, CustomerProfile
from schemas.dead_letter import DeadLetter
from schemas.events import EventType
from schemas.messages import InboundMessage, MessageOutcome, OutcomeReason, OutcomeStatus, SendCommand
from schemas.types import Channel
from streams.ids import message_id
from streams.journeys.engine import message_id as journey_message_id
from streams.publish import for_command
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import Child, consume_until, make_settings, produce, wait_for_worker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_settings(kafka_bootstrap, tmp_path_factory.mktemp("worker"))
    settings.worker.receipt_timeouts = {"whatsapp": 3.0}  # SMS waits for ever here; WhatsApp falls back after 3 s
    settings.worker.timer_interval = 0.5
    create_topics(settings)
    child = Child(["worker", "--loglevel", "warn"], settings, settings.worker.data_dir.parent / "worker.log")
    yield settings
    assert child.stop() in (0, -15), child.output()


def _send(settings: Settings, topic: str, *records) -> None:
    names = TopicNames(settings.kafka.topic_prefix)
    produce(settings.kafka.bootstrap_servers, names(topic),
            [(r.customer_id.encode(), encode(r)) for r in records])
    if topic in (CUSTOMER_PROFILES, CUSTOMER_CONSENTS):  # state first, as in a shop: signed up before it ships
        wait_for_worker(settings, [names(topic)])


def _commands(settings: Settings, channel: Channel, message_ids: set[str]) -> dict[str, tuple[bytes, SendCommand]]:
    topic = TopicNames(settings.kafka.topic_prefix)(commands_topic(channel))
    records = consume_until(settings.kafka.bootstrap_servers, topic,
                            lambda seen: message_ids <= {c.message_id for _, c in seen}, model=SendCommand)
    return {c.message_id: (k, c) for k, c in records if c.message_id in message_ids}


def _outcomes(settings: Settings, message_ids: set[str]) -> dict[str, MessageOutcome]:
    topic = TopicNames(settings.kafka.topic_prefix)(MESSAGE_OUTCOMES)
    records = consume_until(settings.kafka.bootstrap_servers, topic,
                            lambda seen: message_ids <= {o.message_id for _, o in seen}, model=MessageOutcome)
    return {o.message_id: o for _, o in records if o.message_id in message_ids}


def _expected_id(event) -> str:
    return journey_message_id(event.event_id, "shipping_update", "notify")


def test_shipped_order_becomes_an_sms_command_keyed_by_customer(worker: Settings) -> None:
    customer = f.profile(locale="pl", channel_preferences=[Channel.SMS])
    _send(worker, CUSTOMER_PROFILES, customer)
    event = f.shipped(customer.customer_id, order_id="5521")
    _send(worker, STOREFRONT_EVENTS, event)

    key, command = _commands(worker, Channel.SMS, {_expected_id(event)})[_expected_id(event)]

    assert key == customer.customer_id.encode()
    assert command.to == customer.phone
    assert "5521" in command.body and "Śledź przesyłkę" in command.body
    assert command.sms is not None and command.sms.encoding == "UCS-2" and command.sms.segments >= 1
    assert command.fallback_channels == [Channel.WHATSAPP, Channel.EMAIL]


def test_customer_preference_picks_whatsapp_and_opt_out_removes_a_channel(worker: Settings) -> None:
    customer = f.profile(locale="he", channel_preferences=[Channel.WHATSAPP, Channel.EMAIL, Channel.SMS])
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, f.consent(customer.customer_id, Channel.EMAIL, ConsentState.OPTED_OUT))
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)

    _, command = _commands(worker, Channel.WHATSAPP, {_expected_id(event)})[_expected_id(event)]

    assert command.locale == "he" and "ההזמנה" in command.body
    assert command.fallback_channels == [Channel.SMS]  # email opted out


def test_customer_opted_out_everywhere_gets_a_suppression_outcome(worker: Settings) -> None:
    customer = f.profile()
    _send(worker, CUSTOMER_PROFILES, customer)
    _send(worker, CUSTOMER_CONSENTS, *(f.consent(customer.customer_id, c, ConsentState.OPTED_OUT) for c in Channel))
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)

    outcome = _outcomes(worker, {_expected_id(event)})[_expected_id(event)]

    assert outcome.status == "suppressed" and outcome.reason == OutcomeReason.OPTED_OUT
    assert outcome.trigger_event_id == event.event_id


def test_unknown_customer_is_suppressed_for_want_of_a_contact_point(worker: Settings) -> None:
    event = f.shipped(f.uid())
    _send(worker, STOREFRONT_EVENTS, event)

    outcome = _outcomes(worker, {_expected_id(event)})[_expected_id(event)]

    assert outcome.reason == OutcomeReason.NO_CONTACT_POINT


def test_malformed_event_is_dead_lettered_with_its_bytes_and_the_partition_keeps_flowing(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = f.profile(channel_preferences=[Channel.EMAIL])
    _send(worker, CUSTOMER_PROFILES, customer)
    garbage = b"\xc3\x01" + b"\x00" * 8 + b"definitely not avro"
    produce(worker.kafka.bootstrap_servers, names(STOREFRONT_EVENTS), [(customer.customer_id.encode(), garbage)])
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)

    letters = consume_until(worker.kafka.bootstrap_servers, names(dlq_topic(STOREFRONT_EVENTS)),
                            lambda seen: any(d.value == garbage for _, d in seen), model=DeadLetter)
    letter = next(d for _, d in letters if d.value == garbage)
    assert letter.source_topic == names(STOREFRONT_EVENTS) and letter.stage == "own_customers"
    assert letter.error_type == "DecodeError" and "fingerprint" in letter.error_message
    assert _commands(worker, Channel.EMAIL, {_expected_id(event)})  # the next event still flowed


def test_an_event_of_the_unknown_type_is_dead_lettered_not_swallowed(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = f.profile(channel_preferences=[Channel.EMAIL])
    _send(worker, CUSTOMER_PROFILES, customer)
    strange = f.shipped(customer.customer_id).model_copy(update={"event_type": EventType.UNKNOWN})
    _send(worker, STOREFRONT_EVENTS, strange)

    letters = consume_until(worker.kafka.bootstrap_servers, names(dlq_topic(STOREFRONT_EVENTS)),
                            lambda seen: any(d.value == encode(strange) for _, d in seen), model=DeadLetter)
    letter = next(d for _, d in letters if d.value == encode(strange))
    assert letter.error_type == "UnknownEventTypeError" and "unknown" in letter.error_message


def test_profile_keyed_by_something_else_is_dead_lettered(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = f.profile()
    produce(worker.kafka.bootstrap_servers, names(CUSTOMER_PROFILES), [(b"wrong-key", encode(customer))])

    letters = consume_until(worker.kafka.bootstrap_servers, names(dlq_topic(CUSTOMER_PROFILES)),
                            lambda seen: any(d.key == b"wrong-key" for _, d in seen), model=DeadLetter)

    assert any(d.error_type == "KeyMismatchError" for _, d in letters)


def test_a_redelivered_event_yields_the_same_message_id(worker: Settings) -> None:
    customer = f.profile(channel_preferences=[Channel.EMAIL])
    _send(worker, CUSTOMER_PROFILES, customer)
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event, event)

    topic = TopicNames(worker.kafka.topic_prefix)(commands_topic(Channel.EMAIL))
    records = consume_until(worker.kafka.bootstrap_servers, topic,
                            lambda seen: sum(c.message_id == _expected_id(event) for _, c in seen) >= 2,
                            model=SendCommand)

    assert {c.message_id for _, c in records if c.trigger_event_id == event.event_id} == {_expected_id(event)}


def test_a_failed_sms_falls_back_to_the_next_channel_with_the_same_message_id(worker: Settings) -> None:
    customer = f.profile(channel_preferences=[Channel.SMS, Channel.EMAIL], whatsapp=None, phone="+48601230005")
    _send(worker, CUSTOMER_PROFILES, customer)
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)
    _, sms_command = _commands(worker, Channel.SMS, {_expected_id(event)})[_expected_id(event)]

    failed = for_command(sms_command, OutcomeStatus.UNDELIVERED, f.NOW, provider="twilio", error_code="30005")
    _send(worker, MESSAGE_OUTCOMES, failed)

    _, email_command = _commands(worker, Channel.EMAIL, {_expected_id(event)})[_expected_id(event)]
    assert email_command.to == customer.email and email_command.fallback_channels == [Channel.WHATSAPP]


def test_a_customer_who_wrote_on_whatsapp_gets_free_text_inside_the_window(worker: Settings) -> None:
    customer = f.profile(channel_preferences=[Channel.WHATSAPP])
    _send(worker, CUSTOMER_PROFILES, customer)
    reply = InboundMessage(inbound_id=f.uid(), customer_id=customer.customer_id, store_id="store-1",
                           channel=Channel.WHATSAPP, provider="meta_whatsapp", provider_message_id="wamid.x",
                           text="Where is my parcel?", received_at=dt.datetime.now(dt.timezone.utc))
    _send(worker, MESSAGE_INBOUND, reply)
    wait_for_worker(worker, [TopicNames(worker.kafka.topic_prefix)(MESSAGE_INBOUND)])
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)

    _, command = _commands(worker, Channel.WHATSAPP, {_expected_id(event)})[_expected_id(event)]
    assert command.whatsapp_template is None and "1001" in command.body


def test_a_whatsapp_without_a_receipt_in_time_falls_back_to_sms(worker: Settings) -> None:
    customer = f.profile(channel_preferences=[Channel.WHATSAPP, Channel.SMS], email=None)
    _send(worker, CUSTOMER_PROFILES, customer)
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)
    _commands(worker, Channel.WHATSAPP, {_expected_id(event)})  # then silence: no receipt ever comes

    _, sms_command = _commands(worker, Channel.SMS, {_expected_id(event)})[_expected_id(event)]
    assert sms_command.to == customer.phone and sms_command.fallback_channels == []


def _reply(customer: CustomerProfile, text: str, channel: Channel = Channel.SMS) -> InboundMessage:
    return InboundMessage(inbound_id=f.uid(), customer_id=customer.customer_id, store_id="store-1", channel=channel,
                          provider="twilio", provider_message_id="SM" + f.uid().replace("-", ""), text=text,
                          received_at=dt.datetime.now(dt.timezone.utc))


def test_a_stop_reply_is_recorded_with_proof_and_the_next_message_avoids_that_channel(worker: Settings) -> None:
    names = TopicNames(worker.kafka.topic_prefix)
    customer = f.profile(channel_preferences=[Channel.SMS, Channel.EMAIL])
    _send(worker, CUSTOMER_PROFILES, customer)
    stop = _reply(customer, "Stop")
    _send(worker, MESSAGE_INBOUND, stop)

    changes = consume_until(worker.kafka.bootstrap_servers, names(CUSTOMER_CONSENTS),
                            lambda seen: sum(c.customer_id == customer.customer_id for _, c in seen) >= 2,
                            model=ConsentChange)
    mine = [c for _, c in changes if c.customer_id == customer.customer_id]
    assert {(c.channel, c.state, c.source) for c in mine} == {("sms", "opted_out", "keyword")}
    assert {c.evidence.inbound_message_id for c in mine} == {stop.provider_message_id}
    snapshots = consume_until(worker.kafka.bootstrap_servers, names(CONSENT_STATE),
                              lambda seen: any(s.customer_id == customer.customer_id and len(s.slots) == 2
                                               for _, s in seen), model=ConsentSnapshot)
    latest = [s for _, s in snapshots if s.customer_id == customer.customer_id][-1]
    assert latest.opted_out(Channel.SMS, "marketing") and latest.opted_out(Channel.SMS, "transactional")

    wait_for_worker(worker, [names(CUSTOMER_CONSENTS)])
    event = f.shipped(customer.customer_id)
    _send(worker, STOREFRONT_EVENTS, event)
    _, command = _commands(worker, Channel.EMAIL, {_expected_id(event)})[_expected_id(event)]
    assert Channel.SMS not in command.fallback_channels


def test_help_is_answered_on_the_channel_it_came_on(worker: Settings) -> None:
    customer = f.profile(locale="pl")
    _send(worker, CUSTOMER_PROFILES, customer)
    help_request = _reply(customer, "POMOC")
    _send(worker, MESSAGE_INBOUND, help_request)

    expected = message_id(help_request.inbound_id, "help_reply")
    _, command = _commands(worker, Channel.SMS, {expected})[expected]
    assert command.to == customer.phone and "STOP" in command.body
