"""Specs for the small pure parts: settings, log masking, receipt ordering, backoff, the producer's validation."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import ConnectorError, InvalidEventError
from connectors.gateways.backoff import delay
from connectors.producer import TOPIC_OF, key_of, validate
from connectors.webhooks.receipts import RANK, is_news
from schemas.catalog import (
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    CUSTOMER_PROFILES,
    MESSAGE_OUTCOMES,
    STOREFRONT_EVENTS,
    dlq_topic,
)
from schemas.customers import ConsentChange, CustomerProfile
from schemas.errors import UnknownTopicError
from schemas.events import EventType, StorefrontEvent
from streams.logs import mask
from streams.settings import Settings
from tests import factories as f

# --- settings -------------------------------------------------------------------------------

TOKEN = "tw-auth-9f8e7d6c5b4a"


def test_settings_are_read_from_switchboard_environment_variables(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("SWITCHBOARD_SMS__AUTH_TOKEN", TOKEN)
    s = Settings()
    assert s.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.sms.auth_token.get_secret_value() == TOKEN


def test_the_redacted_settings_never_contain_the_token(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_SMS__AUTH_TOKEN", TOKEN)
    s = Settings()
    assert TOKEN not in json.dumps(s.redacted())
    assert TOKEN not in repr(s) and TOKEN not in str(s)
    assert s.redacted()["sms"]["auth_token"] == "**********"


def test_settings_objects_do_not_share_their_sections():
    a, b = Settings(), Settings()
    before = b.kafka.topic_prefix
    a.kafka.topic_prefix = before + "t1."
    assert b.kafka.topic_prefix == before


# --- masking contact points in logs ----------------------------------------------------------


@pytest.mark.parametrize("contact, masked", [
    ("+48601234567", "+*********67"),
    ("ana@example.com", "a**@example.com"),
    ("", "<none>"),
    (None, "<none>"),
])
def test_mask_examples(contact, masked):
    assert mask(contact) == masked


phones = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-+", min_size=1, max_size=20)
domains = st.from_regex(r"[a-z0-9-]{1,12}\.[a-z]{2,6}", fullmatch=True)
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


@given(phones)
def test_a_masked_phone_shows_only_its_last_two_digits(phone):
    masked = mask(phone)
    assert len(masked) == len(phone) and masked.endswith(phone[-2:])
    assert [c for c in masked if c.isdigit()] == list(phone[-2:])
    assert phone not in masked


@given(emails)
def test_a_masked_email_keeps_the_domain_but_not_the_local_part(email):
    local, _, domain = email.partition("@")
    masked = mask(email)
    assert masked.endswith("@" + domain)
    assert masked[:-len(domain) - 1] == local[0] + "**"
    if len(local) >= 2:
        assert local not in masked[:-len(domain) - 1]  # the domain may contain it by chance


@given(st.one_of(phones, emails))
def test_the_masked_string_never_contains_the_original(contact):
    assert len(contact) >= 6
    assert contact not in mask(contact)


# --- receipts never move a message backwards ---------------------------------------------------

statuses = st.sampled_from(sorted(RANK))


@settings(max_examples=200)
@given(st.lists(statuses, max_size=20))
def test_receipts_let_through_a_strictly_rising_sequence_ending_at_the_strongest(reports):
    strongest, let_through = None, []
    for status in reports:
        if is_news(strongest, status):
            strongest = status
            let_through.append(status)
    ranks = [RANK[s] for s in let_through]
    assert ranks == sorted(set(ranks))
    if reports:
        assert ranks[-1] == max(RANK[s] for s in reports)
        assert let_through[0] == reports[0]
    else:
        assert let_through == []


def test_a_repeated_receipt_is_not_news():
    assert is_news(None, "delivered") and not is_news("delivered", "delivered")


def test_failed_after_undelivered_is_not_news_but_delivered_after_failed_is():
    assert not is_news("undelivered", "failed") and is_news("failed", "delivered")
    assert not is_news("read", "sent") and is_news("delivered", "read")


# --- backoff -----------------------------------------------------------------------------------


@settings(max_examples=200)
@given(attempt=st.integers(1, 64), retry_after=st.none() | st.floats(0, 3600),
       base=st.floats(0.01, 5), cap=st.floats(0.1, 120), seed=st.integers(0, 2**32))
def test_backoff_honours_retry_after_and_the_cap(attempt, retry_after, base, cap, seed):
    wait = delay(attempt, retry_after, base=base, cap=cap, rng=random.Random(seed))
    assert wait >= (retry_after or 0.0)
    assert wait <= max(cap, retry_after or 0.0)


def test_backoff_grows_with_the_attempt_until_the_cap():
    class Top(random.Random):
        def uniform(self, a, b):
            return b

    assert [delay(n, rng=Top()) for n in (1, 2, 3, 4, 10)] == [0.5, 1.0, 2.0, 4.0, 30.0]


def test_backoff_survives_any_attempt_number():
    assert 0 <= delay(2_000, rng=random.Random(1)) <= 30.0


# --- the producer's validation ------------------------------------------------------------------


def shipped_payload() -> dict:
    return f.shipped("cust-1").model_dump(mode="json")


def test_a_valid_storefront_event_payload_becomes_a_storefront_event():
    event = validate(STOREFRONT_EVENTS, shipped_payload())
    assert isinstance(event, StorefrontEvent) and event.event_type == EventType.ORDER_SHIPPED
    assert event.order.order_id == "1001"


def test_profiles_and_consents_are_validated_into_their_models():
    assert isinstance(validate(CUSTOMER_PROFILES, f.profile("c1").model_dump(mode="json")), CustomerProfile)
    consent = f.consent("c1", "sms", "opted_in").model_dump(mode="json")
    assert isinstance(validate(CUSTOMER_CONSENTS, consent), ConsentChange)


def test_an_invalid_event_lists_every_field_path_that_is_wrong():
    payload = shipped_payload()
    payload["order"]["currency"] = "zł"
    payload["order"]["items"] = [{"sku": "", "name": "x", "quantity": 0, "unit_price_minor": 1}]
    del payload["store_id"]
    with pytest.raises(InvalidEventError) as info:
        validate(STOREFRONT_EVENTS, payload)
    paths = {e.split(":")[0] for e in info.value.errors}
    assert paths == {"store_id", "order.currency", "order.items.0.sku", "order.items.0.quantity"}
    assert isinstance(info.value, ConnectorError)


def test_an_event_missing_what_its_type_needs_is_invalid():
    with pytest.raises(InvalidEventError, match="needs a customer_id"):
        validate(STOREFRONT_EVENTS, {**shipped_payload(), "customer_id": None})


@pytest.mark.parametrize("topic", [MESSAGE_OUTCOMES, "messages.commands.sms", dlq_topic(STOREFRONT_EVENTS)])
def test_producers_may_not_write_pipeline_topics(topic):
    with pytest.raises(InvalidEventError, match="may not write"):
        validate(topic, {"anything": "at all"})


def test_a_topic_outside_the_catalog_is_unknown():
    with pytest.raises(UnknownTopicError):
        validate("storefront.evnets", shipped_payload())


def test_producers_write_exactly_events_profiles_consents_and_erasure_requests():
    assert set(TOPIC_OF.values()) == {STOREFRONT_EVENTS, CUSTOMER_PROFILES, CUSTOMER_CONSENTS, CUSTOMER_ERASURES}


def test_a_back_in_stock_event_is_keyed_by_its_sku():
    event = validate(STOREFRONT_EVENTS, {"event_id": "e1", "event_type": "back_in_stock", "store_id": "store-1",
                                         "occurred_at": "2026-11-22T12:00:00Z", "sku": "SNK-42"})
    assert key_of(event) == b"sku:SNK-42"


def test_customer_records_are_keyed_by_customer():
    assert key_of(f.shipped("cust-1")) == b"cust-1"
    assert key_of(f.profile("cust-2")) == b"cust-2"
    assert key_of(f.consent("cust-3", "sms", "opted_out")) == b"cust-3"
