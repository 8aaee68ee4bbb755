"""Preference links: a token opens exactly one customer's page, until it expires, and only as it was signed."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from connectors.errors import ExpiredLinkError, PreferenceLinkError, TamperedLinkError
from connectors.preferences.tokens import Claims, make_token, verify

SECRET = b"test-secret"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)

ids = st.text(min_size=1, max_size=60)
secrets = st.binary(min_size=1, max_size=64)
# Whole seconds: the token keeps its expiry to the second.
instants = st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: EPOCH + dt.timedelta(seconds=s))


def token(customer_id: str = "cust-1", store_id: str = "store-1", expires_at: dt.datetime = NOW + dt.timedelta(days=1),
          secret: bytes = SECRET) -> str:
    return make_token(secret, customer_id, store_id, expires_at)


@given(secret=secrets, customer_id=ids, store_id=ids, expires_at=instants)
def test_a_token_gives_back_the_claims_it_was_made_with(secret, customer_id, store_id, expires_at) -> None:
    made = make_token(secret, customer_id, store_id, expires_at)

    assert verify(secret, made, expires_at - dt.timedelta(seconds=1)) == Claims(customer_id, store_id, expires_at)


@given(expires_at=st.datetimes(timezones=st.just(dt.timezone.utc), min_value=dt.datetime(2000, 1, 1),
                               max_value=dt.datetime(2100, 1, 1)))
def test_the_expiry_is_kept_to_the_second_rounded_down(expires_at) -> None:
    claims = verify(SECRET, token(expires_at=expires_at), EPOCH)

    assert claims.expires_at == expires_at.replace(microsecond=0)


@given(customer_id=ids, data=st.data())
def test_any_single_character_change_is_refused_as_tampered(customer_id, data) -> None:
    made = token(customer_id)
    position = data.draw(st.integers(min_value=0, max_value=len(made) - 1), label="position")
    replacement = data.draw(st.characters(codec="utf-8"), label="replacement")
    assume(replacement != made[position])
    tampered = made[:position] + replacement + made[position + 1:]

    with pytest.raises(TamperedLinkError):
        verify(SECRET, tampered, NOW)


@given(data=st.data())
def test_a_token_cut_short_or_lengthened_is_refused(data) -> None:
    made = token()
    cut = data.draw(st.integers(min_value=0, max_value=len(made) - 1), label="cut")
    extra = data.draw(st.text(min_size=1, max_size=4), label="extra")

    for altered in (made[:cut], made + extra, extra + made):
        with pytest.raises(TamperedLinkError):
            verify(SECRET, altered, NOW)


@given(payload_of=st.tuples(ids, ids), signature_of=st.tuples(ids, ids))
def test_a_signature_moved_onto_another_payload_is_refused(payload_of, signature_of) -> None:
    assume(payload_of != signature_of)
    payload = token(*payload_of).split(".")[0]
    signature = token(*signature_of).split(".")[1]

    with pytest.raises(TamperedLinkError):
        verify(SECRET, f"{payload}.{signature}", NOW)


@given(signing=secrets, verifying=secrets)
def test_a_token_signed_with_another_secret_is_refused(signing, verifying) -> None:
    assume(signing != verifying)

    with pytest.raises(TamperedLinkError):
        verify(verifying, token(secret=signing), NOW)


@given(expires_at=instants, late=st.integers(min_value=0, max_value=10**9))
def test_a_token_is_refused_as_expired_at_and_after_its_expiry(expires_at, late) -> None:
    with pytest.raises(ExpiredLinkError):
        verify(SECRET, token(expires_at=expires_at), expires_at + dt.timedelta(seconds=late))


def test_a_token_is_valid_up_to_the_moment_it_expires() -> None:
    expires_at = NOW + dt.timedelta(hours=1)

    claims = verify(SECRET, token(expires_at=expires_at), expires_at - dt.timedelta(microseconds=1))

    assert claims.customer_id == "cust-1"


def test_a_tampered_expired_token_is_refused_as_tampered_not_expired() -> None:
    made = token(expires_at=NOW - dt.timedelta(days=1))
    tampered = made[:-1] + ("A" if made[-1] != "A" else "B")

    with pytest.raises(TamperedLinkError):
        verify(SECRET, tampered, NOW)


@pytest.mark.parametrize("garbage", ["", ".", "abc", "abc.", ".abc", "a.b.c", "🙂.🙂", "x" * 10_000])
def test_garbage_is_refused_as_tampered(garbage: str) -> None:
    with pytest.raises(TamperedLinkError):
        verify(SECRET, garbage, NOW)


def test_both_refusals_share_one_error_root() -> None:
    assert issubclass(TamperedLinkError, PreferenceLinkError) and issubclass(ExpiredLinkError, PreferenceLinkError)


def test_a_naive_expiry_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, "cust-1", "store-1", dt.datetime(2026, 1, 1))


def test_the_token_is_safe_in_a_url_path_and_names_no_secret() -> None:
    made = token("ünïcödé/?#&", "store 1")

    assert set(made) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert SECRET.decode() not in made
