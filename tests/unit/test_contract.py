"""Specs for the Avro contract: the .avsc files, their pydantic mirrors, the codec and the topic catalog.

The data teams read these topics with nothing but the .avsc files, so the framing (Avro single-object
encoding) is checked against an independent CRC-64-AVRO implementation and the bodies against the
Apache ``avro`` library, not only against fastavro (which the codec itself uses).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json

import avro.io
import avro.schema
import fastavro
import pytest
from pydantic import ValidationError
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.catalog import (
    CATALOG,
    CUSTOMER_CONSENTS,
    CUSTOMER_PROFILES,
    MESSAGE_OUTCOMES,
    STOREFRONT_EVENTS,
    TopicNames,
    dlq_topic,
    spec,
)
from schemas.contacts import ContactSuppression, SuppressionState
from schemas.codec import AVRO_DIR, PREVIOUS_SCHEMA_FILES, SCHEMA_FILES, AvroCodec, ConfluentFraming, codec_for, encode
from schemas.customers import (
    ConsentChange,
    ConsentEvidence,
    ConsentSnapshot,
    ConsentSource,
    ConsentState,
    CustomerProfile,
    ErasureRequest,
)
from schemas.dead_letter import DeadLetter
from schemas.errors import DecodeError, EncodeError, UnknownTopicError
from schemas.events import Cart, EventType, LineItem, Order, StorefrontEvent
from schemas.messages import (
    CampaignLaunch,
    Handoff,
    InboundMessage,
    LedgerState,
    MessageIntent,
    MessageOutcome,
    OutcomeReason,
    OutcomeStatus,
    SendCommand,
    SendLedgerEntry,
    TimerFired,
    SmsSegments,
    WhatsAppTemplateRef,
)
from schemas.products import CoPurchase, ProductRef
from schemas.types import Channel, Purpose, Record
from tests import factories as f

PHONE = "+972501234567"
LATER = f.NOW + dt.timedelta(hours=2)
INT_MAX, LONG_MAX = 2**31 - 1, 2**63 - 1


# --- one realistic record of every model --------------------------------------------------


def storefront_event() -> StorefrontEvent:
    items = [LineItem(sku="SNK-42", name="Sneakers ‘Loop’ 👟", quantity=2, unit_price_minor=34_950),
             LineItem(sku="SCK-1", name="גרביים", quantity=1, unit_price_minor=1_990)]
    order = Order(order_id="1001", total_minor=71_890, currency="ILS", order_url="https://shop.example/o/1001",
                  tracking_url="https://track.example/1001", carrier="Israel Post", items=items)
    return StorefrontEvent(event_id="ev-1", event_type=EventType.ORDER_SHIPPED, store_id="store-1",
                           customer_id="cust-1", occurred_at=f.NOW, order=order,
                           cart=Cart(cart_id="c-9", cart_url="https://shop.example/c/9", total_minor=1_990,
                                     currency="ILS", items=items[1:]),
                           sku="SNK-42", attributes={"channel": "web", "campaign": "חורף"})


def customer_profile() -> CustomerProfile:
    return f.profile("cust-1", first_name="Дзмітрый", locale="be", time_zone="Europe/Minsk", city="Гродна",
                     phone="+375291234567", whatsapp="+375291234568", email="dz@example.by",
                     channel_preferences=[Channel.WHATSAPP, Channel.SMS, Channel.EMAIL])


def consent_change() -> ConsentChange:
    evidence = ConsentEvidence(inbound_message_id="in-7", ip="203.0.113.9", user_agent="Mozilla/5.0",
                               disclosure_text="Reply STOP to opt out", disclosure_version="2026-01")
    return f.consent("cust-1", Channel.SMS, ConsentState.OPTED_IN, Purpose.MARKETING, source=ConsentSource.KEYWORD,
                     evidence=evidence)


def message_intent() -> MessageIntent:
    return f.intent("cust-1", purpose=Purpose.MARKETING, template="back_in_stock", channels=[Channel.WHATSAPP],
                    variables={"sku": "SNK-42", "name": "Sneakers"}, expires_at=LATER)


def send_command() -> SendCommand:
    return f.command("cust-1", channel=Channel.SMS, fallback_channels=[Channel.WHATSAPP, Channel.EMAIL],
                     subject="Zamówienie nr 1001", expires_at=LATER,
                     sms=SmsSegments(encoding="UCS-2", segments=2, units=104, cost_micros=70_000, currency="EUR"),
                     whatsapp_template=WhatsAppTemplateRef(name="shipping_update", language="pl", category="utility",
                                                           parameters=["Ana", "1001"]))


def message_outcome() -> MessageOutcome:
    return MessageOutcome(outcome_id="out-1", message_id="msg-1", customer_id="cust-1", store_id="store-1",
                          channel=Channel.SMS, status=OutcomeStatus.UNDELIVERED, reason=OutcomeReason.UNDELIVERED,
                          detail="carrier said no", template="shipping_update", purpose=Purpose.TRANSACTIONAL,
                          provider="twilio", provider_message_id="SM" + "0f" * 16, error_code="30005", segments=2,
                          cost_micros=70_000, currency="EUR", scheduled_for=LATER, trigger_event_id="ev-1",
                          occurred_at=f.NOW, journey="abandoned_cart", variant="short_text",
                          coupon_code="SB-7K2M9Q4X")


def inbound_message() -> InboundMessage:
    return InboundMessage(inbound_id="in-7", customer_id="cust-1", store_id="store-1", channel=Channel.WHATSAPP,
                          provider="meta", provider_message_id="wamid.1", text="STOP 🙅", button_payload="unsubscribe",
                          in_reply_to="wamid.0", received_at=f.NOW)


def dead_letter() -> DeadLetter:
    return DeadLetter(source_topic="storefront.events", source_partition=3, source_offset=2**40, key=b"cust-1",
                      value=b"\xc3\x01\x00\xff not avro", stage="route_events", error_type="DecodeError",
                      error_message="StorefrontEvent: corrupt Avro body (EOFError)", failed_at=f.NOW)


def send_ledger_entry() -> SendLedgerEntry:
    return SendLedgerEntry(message_id="msg-1", channel=Channel.SMS, state=LedgerState.REJECTED, provider="twilio",
                           provider_message_id="SM" + "0f" * 16, attempts=3, error_code="21211",
                           receipt_status="delivered", updated_at=f.NOW)


def consent_snapshot() -> ConsentSnapshot:
    return ConsentSnapshot(customer_id="cust-1", store_id="store-1",
                           slots={"sms:marketing": ConsentState.OPTED_OUT, "email:transactional": ConsentState.OPTED_IN},
                           updated_at=f.NOW)


def timer_fired() -> TimerFired:
    return TimerFired(customer_id="cust-1", message_id="msg-1", kind="receipt_timeout", channel=Channel.WHATSAPP,
                      due_at=f.NOW, fired_at=f.NOW)


def erasure_request() -> ErasureRequest:
    return ErasureRequest(request_id="erase-1", customer_id="cust-1", store_id="store-1", requested_at=f.NOW)


def handoff() -> Handoff:
    return Handoff(handoff_id="h-1", customer_id="cust-1", store_id="store-1", journey="delivery_feedback",
                   step="handoff", context={"reply:rate": "2"}, occurred_at=f.NOW)


def campaign_launch() -> CampaignLaunch:
    return CampaignLaunch(campaign_id="camp-1", name="flash30", store_id="store-1", template="flash_sale",
                          channels=[Channel.SMS, Channel.EMAIL], message_class="promotion",
                          segment_json='{"locales": ["pl"]}', variables={"coupon_code": "FLASH30"},
                          expires_at=LATER, launched_at=f.NOW)


def co_purchase() -> CoPurchase:
    return CoPurchase(order_id="1001", store_id="store-1", sku="SNK-42",
                      partners=[ProductRef(sku="SCK-1", name="גרביים"), ProductRef(sku="CAP-7", name="Czapka ‘Zima’ 🧢")],
                      occurred_at=f.NOW)


def contact_suppression() -> ContactSuppression:
    return ContactSuppression(sender="+15005550006", channel=Channel.SMS, state=SuppressionState.SUPPRESSED,
                              keyword="הסר", provider="twilio", provider_message_id="SM" + "7" * 32, received_at=f.NOW)


EXAMPLES: list[Record] = [storefront_event(), customer_profile(), consent_change(), message_intent(), send_command(),
                          message_outcome(), inbound_message(), dead_letter(), send_ledger_entry(), timer_fired(),
                          consent_snapshot(), erasure_request(), handoff(), campaign_launch(), co_purchase(),
                          contact_suppression()]
BY_MODEL = {type(r): r for r in EXAMPLES}
ids = [type(r).__name__ for r in EXAMPLES]


def test_there_is_an_example_for_every_model_with_a_schema():
    assert set(BY_MODEL) == set(SCHEMA_FILES)


def test_the_outcome_example_sets_every_optional_field():
    outcome = message_outcome()
    assert [name for name in MessageOutcome.model_fields if getattr(outcome, name) is None] == []


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("record", EXAMPLES, ids=ids)
def test_every_model_round_trips_through_its_codec(record):
    codec = codec_for(type(record))
    assert codec.decode(codec.encode(record)) == record
    assert encode(record) == codec.encode(record)


utc_times = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1),
                         timezones=st.builds(dt.timezone, st.integers(-23 * 60, 23 * 60).map(
                             lambda m: dt.timedelta(minutes=m))))
any_text = st.text(max_size=40)  # every code point but lone surrogates: Hebrew, emoji, NUL, RTL marks...
some_text = st.text(min_size=1, max_size=40)
currencies = st.from_regex(r"[A-Z]{3}", fullmatch=True)
line_items = st.builds(LineItem, sku=some_text, name=any_text, quantity=st.integers(1, INT_MAX),
                       unit_price_minor=st.integers(0, LONG_MAX))
orders = st.builds(Order, order_id=some_text, total_minor=st.integers(0, LONG_MAX), currency=currencies,
                   order_url=st.none() | any_text, tracking_url=st.none() | any_text, carrier=st.none() | any_text,
                   items=st.lists(line_items, max_size=3))
shipped_events = st.builds(StorefrontEvent, event_id=some_text, event_type=st.just(EventType.ORDER_SHIPPED),
                           store_id=some_text, customer_id=some_text, occurred_at=utc_times, order=orders,
                           sku=st.none() | any_text, attributes=st.dictionaries(any_text, any_text, max_size=4))
outcomes = st.builds(
    MessageOutcome, outcome_id=any_text, message_id=any_text, customer_id=any_text, store_id=any_text,
    channel=st.none() | st.sampled_from(Channel), status=st.sampled_from(OutcomeStatus),
    reason=st.none() | st.sampled_from(OutcomeReason), detail=st.none() | any_text, template=st.none() | any_text,
    purpose=st.none() | st.sampled_from(Purpose), provider=st.none() | any_text,
    provider_message_id=st.none() | any_text, error_code=st.none() | any_text,
    segments=st.none() | st.integers(-2**31, INT_MAX), cost_micros=st.none() | st.integers(-2**63, LONG_MAX),
    currency=st.none() | any_text, scheduled_for=st.none() | utc_times, trigger_event_id=st.none() | any_text,
    occurred_at=utc_times)


@settings(max_examples=150)
@given(shipped_events)
def test_any_storefront_event_round_trips(event):
    codec = codec_for(StorefrontEvent)
    assert codec.decode(codec.encode(event)) == event


@settings(max_examples=150)
@given(outcomes)
def test_any_outcome_round_trips(outcome):
    codec = codec_for(MessageOutcome)
    assert codec.decode(codec.encode(outcome)) == outcome


def test_times_are_kept_to_the_millisecond_in_utc_whatever_zone_they_were_given_in():
    warsaw = dt.timezone(dt.timedelta(hours=1))
    event = f.shipped("cust-1", occurred_at=dt.datetime(2026, 11, 22, 13, 0, 0, 123_456, tzinfo=warsaw))
    back = codec_for(StorefrontEvent).decode(encode(event))
    assert back.occurred_at == dt.datetime(2026, 11, 22, 12, 0, 0, 123_000, tzinfo=dt.timezone.utc)
    assert back == event


# --- the .avsc files and the single-object framing ------------------------------------------

AVSC_FILES = sorted(AVRO_DIR.glob("*.avsc"))


def test_every_avsc_file_belongs_to_a_model():
    assert sorted(p.name for p in AVSC_FILES) == sorted(SCHEMA_FILES.values())


@pytest.mark.parametrize("path", AVSC_FILES, ids=lambda p: p.name)
def test_every_avsc_parses_with_apache_avro_and_fastavro(path):
    text = path.read_text()
    assert avro.schema.parse(text).type == "record"
    assert fastavro.parse_schema(json.loads(text))["type"] == "record"


# CRC-64-AVRO, table-driven, exactly as the Avro specification gives it ("Schema Fingerprints").
EMPTY = 0xC15D213AA4D7A795


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return table


FP_TABLE = _fp_table()


def rabin(data: bytes) -> int:
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def canonical_form(model: type[Record]) -> str:
    return to_parsing_canonical_form(fastavro.parse_schema(json.loads((AVRO_DIR / SCHEMA_FILES[model]).read_text())))


@pytest.mark.parametrize("record", EXAMPLES, ids=ids)
def test_encoding_is_c3_01_then_the_little_endian_crc64_of_the_canonical_form(record):
    data = encode(record)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == rabin(canonical_form(type(record)).encode()).to_bytes(8, "little")


@pytest.mark.parametrize("model", list(SCHEMA_FILES), ids=lambda m: m.__name__)
def test_canonical_forms_hold_logical_types_as_their_plain_primitive(model):
    # The spec's [PRIMITIVES] and [STRIP] rules: {"type": "long", "logicalType": ...} becomes "long".
    # (Apache avro's Python canonical_form keeps {"type":"long"} and so fingerprints differently.)
    form = canonical_form(model)
    assert "logicalType" not in form and '{"type":"long"}' not in form and '"doc"' not in form


def test_different_schemas_have_different_fingerprints():
    headers = {encode(r)[:10] for r in EXAMPLES}
    assert len(headers) == len(EXAMPLES)


@pytest.mark.parametrize("record", EXAMPLES, ids=ids)
def test_the_body_after_the_header_decodes_with_apache_avro_to_the_same_values(record):
    schema = avro.schema.parse((AVRO_DIR / SCHEMA_FILES[type(record)]).read_text())
    body = encode(record)[10:]
    decoded = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(body)))
    assert decoded == record.model_dump()
    assert type(record).model_validate(decoded) == record


# --- what decode refuses, always as DecodeError ------------------------------------------------


def test_empty_bytes_and_none_are_refused():
    codec = codec_for(StorefrontEvent)
    for value in (b"", None):
        with pytest.raises(DecodeError, match="empty"):
            codec.decode(value)


def test_wrong_magic_is_refused():
    data = encode(storefront_event())
    with pytest.raises(DecodeError, match="magic"):
        codec_for(StorefrontEvent).decode(b"\x00\x01" + data[2:])


def test_a_record_of_another_schema_is_refused_by_its_fingerprint():
    with pytest.raises(DecodeError, match="fingerprint"):
        codec_for(StorefrontEvent).decode(encode(message_outcome()))


@pytest.mark.parametrize("record", EXAMPLES, ids=ids)
def test_every_truncation_is_refused(record):
    codec = codec_for(type(record))
    data = codec.encode(record)
    for length in range(1, len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:length])


@settings(max_examples=200)
@given(model=st.sampled_from(list(SCHEMA_FILES)), garbage=st.binary(max_size=120), framed=st.booleans())
def test_random_bytes_are_a_decode_error_and_nothing_else(model, garbage, framed):
    codec = codec_for(model)
    data = codec.framing.frame(garbage) if framed else garbage
    try:
        codec.decode(data)
    except DecodeError:
        pass  # anything else propagates and fails the test
    # a random body may, rarely, happen to be a valid record: then it decodes, which is fine


def _framed_raw(model: type[Record], raw: dict) -> bytes:
    """Bytes that are valid Avro for the model's schema but break its pydantic rules."""
    codec = codec_for(model)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, codec.schema, raw)
    return codec.framing.frame(buf.getvalue())


def test_a_shipped_event_without_customer_is_a_decode_error_that_does_not_echo_its_values():
    raw = {**storefront_event().model_dump(), "customer_id": None, "attributes": {"note": f"call {PHONE}"}}
    with pytest.raises(DecodeError) as info:
        codec_for(StorefrontEvent).decode(_framed_raw(StorefrontEvent, raw))
    message = str(info.value)
    assert "needs a customer_id" in message and "<root>" in message
    assert PHONE not in message and "call" not in message


def test_a_profile_with_a_bad_phone_is_a_decode_error_naming_the_field_but_not_the_number():
    bad = "+0" + PHONE[1:]
    raw = {**customer_profile().model_dump(), "phone": bad}
    with pytest.raises(DecodeError) as info:
        codec_for(CustomerProfile).decode(_framed_raw(CustomerProfile, raw))
    assert "phone" in str(info.value)
    assert bad not in str(info.value) and PHONE[3:] not in str(info.value)


def test_a_nested_field_is_named_by_its_path():
    raw = storefront_event().model_dump()
    raw["order"]["currency"] = "shekel"
    with pytest.raises(DecodeError, match=r"order\.currency"):
        codec_for(StorefrontEvent).decode(_framed_raw(StorefrontEvent, raw))


def test_an_encode_error_names_the_model_but_never_the_values():
    # Habit 8 and DeadLetter.error_message ("never contains personal data"); publish.describe_error passes
    # SchemaError messages to the DLQ verbatim. model_construct skips validation, as a buggy caller could.
    item = LineItem.model_construct(sku="s", name="n", quantity=2**31, unit_price_minor=1)
    order = Order.model_construct(order_id="1001", total_minor=100, currency="PLN", order_url=None, carrier=None,
                                  tracking_url=f"https://t.example/?tel={PHONE}", items=[item])
    with pytest.raises(EncodeError) as info:
        encode(f.shipped("cust-1").model_copy(update={"order": order}))
    assert "StorefrontEvent" in str(info.value)
    assert PHONE not in str(info.value)


def test_numbers_an_avro_int_cannot_hold_are_refused_at_validation():
    with pytest.raises(ValidationError):
        LineItem(sku="s", name="n", quantity=2**31, unit_price_minor=1)


# --- schema evolution ----------------------------------------------------------------------


def _outcome_writer_with_new_symbols() -> dict:
    writer = copy.deepcopy(codec_for(MessageOutcome).schema_json)
    for field in writer["fields"]:
        if field["name"] == "reason":
            field["type"][1]["symbols"].insert(2, "carrier_blocked")
        if field["name"] == "status":
            field["type"]["symbols"].insert(0, "bounced")
    return writer


def test_an_outcome_written_with_a_newer_symbol_reads_as_other():
    writer = fastavro.parse_schema(_outcome_writer_with_new_symbols())
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, {**message_outcome().model_dump(), "status": "bounced",
                                             "reason": "carrier_blocked"})
    buf.seek(0)
    raw = fastavro.schemaless_reader(buf, writer, codec_for(MessageOutcome).schema)
    assert raw["reason"] == "other" and raw["status"] == "other"
    outcome = MessageOutcome.model_validate(raw)
    assert (outcome.reason, outcome.status) == (OutcomeReason.OTHER, OutcomeStatus.OTHER)
    assert outcome.model_copy(update={"reason": "undelivered", "status": "undelivered"}) == message_outcome()


def test_the_outcome_enums_declare_other_as_their_default():
    fields = {f_["name"]: f_["type"] for f_ in codec_for(MessageOutcome).schema_json["fields"]}
    assert fields["status"]["default"] == "other"
    assert fields["reason"][1]["default"] == "other"
    assert "other" in fields["status"]["symbols"] and "other" in fields["reason"][1]["symbols"]


def _written_with_the_first_profile_schema(profile: CustomerProfile) -> bytes:
    """A profile as version 1 (no ``city``) wrote it: the compacted profiles topic keeps such records for ever."""
    (name,) = PREVIOUS_SCHEMA_FILES[CustomerProfile]
    old = fastavro.parse_schema(json.loads((AVRO_DIR / name).read_text(encoding="utf-8")))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old, {k: v for k, v in profile.model_dump().items() if k != "city"})
    return b"\xc3\x01" + rabin(to_parsing_canonical_form(old).encode()).to_bytes(8, "little") + buf.getvalue()


def test_a_profile_written_before_cities_existed_still_decodes_without_a_city():
    data = _written_with_the_first_profile_schema(customer_profile())
    assert data[:10] != encode(customer_profile())[:10]  # another fingerprint: the schema did change
    assert codec_for(CustomerProfile).decode(data) == customer_profile().model_copy(update={"city": None})


def test_the_previous_profile_schema_differs_from_the_current_only_by_the_optional_city():
    (name,) = PREVIOUS_SCHEMA_FILES[CustomerProfile]
    old = json.loads((AVRO_DIR / name).read_text(encoding="utf-8"))
    new = codec_for(CustomerProfile).schema_json
    added = [field for field in new["fields"] if field["name"] not in {g["name"] for g in old["fields"]}]
    assert [(f_["name"], f_["type"], f_["default"]) for f_ in added] == [("city", ["null", "string"], None)]
    assert [g for g in new["fields"] if g["name"] != "city"] == old["fields"]


def test_a_command_written_before_buttons_existed_still_decodes_without_buttons():
    """A gateway upgraded while commands of the previous worker wait on its topic still reads them."""
    (name,) = PREVIOUS_SCHEMA_FILES[SendCommand]
    old = fastavro.parse_schema(json.loads((AVRO_DIR / name).read_text(encoding="utf-8")))
    command = f.command()
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old, {k: v for k, v in command.model_dump().items() if k != "buttons"})
    data = b"\xc3\x01" + rabin(to_parsing_canonical_form(old).encode()).to_bytes(8, "little") + buf.getvalue()
    assert data[:10] != encode(command)[:10]
    assert codec_for(SendCommand).decode(data) == command
    new = codec_for(SendCommand).schema_json
    assert [g for g in new["fields"] if g["name"] != "buttons"] == json.loads((AVRO_DIR / name).read_text())["fields"]


def test_a_codec_with_confluent_framing_reads_only_its_own_schema():
    codec = AvroCodec(CustomerProfile, ConfluentFraming(7))
    assert codec.decode(codec.encode(customer_profile())) == customer_profile()
    with pytest.raises(DecodeError, match="Confluent"):
        codec.decode(_written_with_the_first_profile_schema(customer_profile()))


def test_codecs_are_shared_per_model_and_a_codec_can_be_built_directly():
    assert codec_for(MessageOutcome) is codec_for(MessageOutcome)
    assert AvroCodec(MessageOutcome).decode(encode(message_outcome())) == message_outcome()


# --- the topic catalog ---------------------------------------------------------------------


def test_every_topic_name_is_unique():
    names = [t.name for t in CATALOG]
    assert len(names) == len(set(names))


def test_every_topic_but_dead_letters_ledgers_and_campaign_launches_is_keyed_by_customer():
    for topic in CATALOG:
        if not topic.name.endswith((".dlq", ".ledger")) and topic.name not in ("campaigns.launches",
                                                                                 "stock.updates",
                                                                                 "products.copurchases",
                                                                                 "contacts.suppressions"):
            assert topic.key == "customer_id", topic.name


def test_contact_suppressions_are_kept_for_ever_keyed_by_a_hash_of_the_contact_point():
    (suppressions,) = [t for t in CATALOG if t.name == "contacts.suppressions"]
    assert suppressions.key == "contact_key" and suppressions.model is ContactSuppression
    assert suppressions.config() == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_co_purchases_are_keyed_by_store_and_sku():
    (copurchases,) = [t for t in CATALOG if t.name == "products.copurchases"]
    assert copurchases.key == "store_id+sku" and copurchases.model is CoPurchase and not copurchases.compacted


def test_a_campaign_launch_is_keyed_by_campaign_and_written_to_every_partition_by_its_launcher():
    (launches,) = [t for t in CATALOG if t.name == "campaigns.launches"]
    assert launches.key == "campaign_id" and launches.model is CampaignLaunch


def test_ledgers_are_keyed_by_message_and_compacted():
    ledgers = [t for t in CATALOG if t.name.endswith(".ledger")]
    assert {t.name for t in ledgers} == {f"gateways.{c.value}.ledger" for c in Channel}
    assert all(t.key == "message_id" and t.compacted and t.model is SendLedgerEntry for t in ledgers)


def test_every_topic_with_dead_letters_has_its_dlq_in_the_catalog():
    names = {t.name for t in CATALOG}
    for topic in CATALOG:
        if topic.dead_letters:
            assert dlq_topic(topic.name) in names, topic.name
            assert spec(dlq_topic(topic.name)).model is DeadLetter
            assert spec(dlq_topic(topic.name)).key == topic.key


def test_dead_letter_topics_have_no_dead_letters_of_their_own():
    assert all(not t.dead_letters for t in CATALOG if t.name.endswith(".dlq"))


def test_every_channel_has_a_command_topic():
    for channel in Channel:
        assert spec(f"messages.commands.{channel.value}").model is SendCommand


def test_profiles_are_compacted_and_kept():
    profiles = spec(CUSTOMER_PROFILES)
    assert profiles.compacted and profiles.config() == {"cleanup.policy": "compact", "retention.ms": "-1"}


def test_the_consent_ledger_is_never_deleted_nor_compacted():
    consents = spec(CUSTOMER_CONSENTS)
    assert consents.retention_ms == -1 and not consents.compacted
    assert consents.config() == {"cleanup.policy": "delete", "retention.ms": "-1"}


def test_every_model_in_the_catalog_has_a_schema():
    assert {t.model for t in CATALOG} <= set(SCHEMA_FILES)


def test_topic_names_get_the_deployment_prefix():
    names = TopicNames("t1234.")
    assert names(STOREFRONT_EVENTS) == "t1234.storefront.events"
    assert names(dlq_topic(MESSAGE_OUTCOMES)) == "t1234.messages.outcomes.dlq"
    assert names.all() == [f"t1234.{t.name}" for t in CATALOG]
    assert TopicNames()(STOREFRONT_EVENTS) == STOREFRONT_EVENTS


def test_a_name_missing_from_the_catalog_is_an_unknown_topic_error():
    for name in ("storefront.event", "messages.commands.fax", "t1.storefront.events", ""):
        with pytest.raises(UnknownTopicError):
            TopicNames("t1.")(name)
    with pytest.raises(KeyError):  # it is also a KeyError, for dict-like callers
        spec("nope")


def test_a_ledger_entry_written_before_it_carried_the_journey_still_decodes():
    """The gateways' ledgers are compacted topics: entries version 1 wrote (no journey, arm or coupon) stay."""
    name = PREVIOUS_SCHEMA_FILES[SendLedgerEntry][0]
    old = fastavro.parse_schema(json.loads((AVRO_DIR / name).read_text(encoding="utf-8")))
    entry = SendLedgerEntry(message_id="m-1", channel=Channel.SMS, state=LedgerState.ACCEPTED, provider="twilio",
                            provider_message_id="SM1", receipt_status="delivered", consent_position=12,
                            updated_at=dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old, {k: v for k, v in entry.model_dump().items()
                                          if k not in ("journey", "variant", "coupon_code")})
    data = b"\xc3\x01" + rabin(to_parsing_canonical_form(old).encode()).to_bytes(8, "little") + buf.getvalue()
    assert codec_for(SendLedgerEntry).decode(data) == entry
    tagged = entry.model_copy(update={"journey": "reactivation", "variant": "b", "coupon_code": "K7Q2"})
    assert codec_for(SendLedgerEntry).decode(encode(tagged)) == tagged


def test_a_ledger_entry_written_before_it_named_the_customer_still_decodes():
    """Version 2 entries (journey, no customer or store) stay on the compacted ledger; version 3 keeps both."""
    name = PREVIOUS_SCHEMA_FILES[SendLedgerEntry][1]
    old = fastavro.parse_schema(json.loads((AVRO_DIR / name).read_text(encoding="utf-8")))
    entry = SendLedgerEntry(message_id="m-1", channel=Channel.SMS, state=LedgerState.ACCEPTED, provider="vonage",
                            provider_message_id="0A1", journey="reactivation",
                            updated_at=dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, old, {k: v for k, v in entry.model_dump().items()
                                          if k not in ("customer_id", "store_id")})
    data = b"\xc3\x01" + rabin(to_parsing_canonical_form(old).encode()).to_bytes(8, "little") + buf.getvalue()
    assert codec_for(SendLedgerEntry).decode(data) == entry
    owned = entry.model_copy(update={"customer_id": "c-1", "store_id": "s-1"})
    assert codec_for(SendLedgerEntry).decode(encode(owned)) == owned
