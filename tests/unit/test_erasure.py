"""Specs for streams.erasure: what is kept of an erased customer is one keyed hash of their id."""

from __future__ import annotations

import hashlib
import hmac
import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from streams.erasure import suppression_key

SECRET = b"erasure-key-of-this-deployment"
IDS = st.one_of(st.uuids().map(str), st.emails(), st.text(min_size=1, max_size=40))
SECRETS = st.binary(min_size=16, max_size=64)


def test_the_key_is_the_hex_hmac_sha256_of_the_id():
    expected = hmac.new(SECRET, b"cust-1", hashlib.sha256).hexdigest().encode("ascii")
    assert suppression_key(SECRET, "cust-1") == expected
    assert len(expected) == 64


@settings(max_examples=200)
@given(customer_id=IDS, secret=SECRETS)
def test_the_key_is_stable_and_hex(customer_id, secret):
    key = suppression_key(secret, customer_id)
    assert key == suppression_key(secret, customer_id)
    assert isinstance(key, bytes) and len(key) == 64 and set(key.decode("ascii")) <= set(string.hexdigits.lower())


@settings(max_examples=200)
@given(customer_id=IDS, secret=SECRETS, other=SECRETS)
def test_another_key_gives_another_hash(customer_id, secret, other):
    assume(secret != other)
    assert suppression_key(secret, customer_id) != suppression_key(other, customer_id)


@settings(max_examples=200)
@given(customer_id=IDS, other_id=IDS, secret=SECRETS)
def test_different_customers_get_different_hashes(customer_id, other_id, secret):
    assume(customer_id != other_id)
    assert suppression_key(secret, customer_id) != suppression_key(secret, other_id)


@settings(max_examples=200)
@given(customer_id=st.one_of(st.uuids().map(str), st.emails(), st.text(min_size=6, max_size=40)), secret=SECRETS)
def test_the_key_does_not_contain_the_id(customer_id, secret):
    key = suppression_key(secret, customer_id)
    assert customer_id.encode("utf-8") not in key
    assert customer_id.encode("utf-8").hex().encode() not in key
    assert hashlib.sha256(customer_id.encode("utf-8")).hexdigest().encode() != key  # keyed, not a plain hash


def test_the_key_is_not_the_id_in_any_case():
    customer_id = "0123abcd"  # an id that is itself hex
    assert customer_id.encode() not in suppression_key(SECRET, customer_id)
