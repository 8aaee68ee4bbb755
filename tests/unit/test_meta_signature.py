import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.errors import ConnectorError, SignatureError
from connectors.webhooks.meta_signature import (
    SIGNATURE_HEADER,
    compute_signature,
    verify_challenge,
    verify_signature,
)

# Known answers: reference §4.4 (hexdocs whatsapp_sdk example) and §4.5 (self-computed).
KAT_KEY, KAT_MSG = "secret", b"test"
KAT_HEX = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
SECRET = "meta_app_secret"
BODY = b'{"id":1001,"email":"a@example.com","note":"caf\\u00e9"}'  # the escaped form Meta sends
SIGNATURE = "sha256=6b8719860494acfa3c5a7fba03da817b473a67caca0404a072c15e85930f3b73"
VERIFY_TOKEN = "our-verify-token"


# --- known answers -------------------------------------------------------------------------


def test_hmac_sha256_known_answer_from_the_sdk_docs():
    assert compute_signature(KAT_KEY, KAT_MSG) == "sha256=" + KAT_HEX


def test_compute_signature_matches_the_reference_vector_over_escaped_unicode_bytes():
    assert b"\\u00e9" in BODY and "é".encode() not in BODY
    assert compute_signature(SECRET, BODY) == SIGNATURE


def test_verify_signature_accepts_the_reference_vector_and_a_secret_str():
    verify_signature(SECRET, BODY, SIGNATURE)
    verify_signature(SecretStr(SECRET), BODY, SIGNATURE)


def test_surrounding_whitespace_in_the_header_is_tolerated():
    verify_signature(SECRET, BODY, f"  {SIGNATURE}\t")


def test_header_name_is_x_hub_signature_256():
    assert SIGNATURE_HEADER == "X-Hub-Signature-256"


# --- negatives -----------------------------------------------------------------------------


def test_the_same_text_re_serialised_with_raw_unicode_does_not_verify():
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature(SECRET, BODY.replace(b"\\u00e9", "é".encode()), SIGNATURE)


def test_flipped_body_byte_is_rejected():
    tampered = bytearray(BODY)
    tampered[10] ^= 0x01
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature(SECRET, bytes(tampered), SIGNATURE)


def test_wrong_secret_is_rejected():
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature("another_app_secret", BODY, SIGNATURE)


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_header_is_rejected_as_missing(missing):
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(SECRET, BODY, missing)


@pytest.mark.parametrize("header", [SIGNATURE[:-1], SIGNATURE + "0", "sha256=", "sha256"])
def test_truncated_or_padded_signature_is_rejected(header):
    with pytest.raises(SignatureError):
        verify_signature(SECRET, BODY, header)


def test_uppercase_hex_is_rejected_because_meta_always_sends_lowercase():
    with pytest.raises(SignatureError, match="lowercase"):
        verify_signature(SECRET, BODY, "sha256=" + SIGNATURE.removeprefix("sha256=").upper())


def test_uppercase_prefix_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature(SECRET, BODY, SIGNATURE.replace("sha256=", "SHA256="))


def test_legacy_sha1_signature_is_rejected_even_when_correct():
    sha1 = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    with pytest.raises(SignatureError, match="sha256"):
        verify_signature(SECRET, BODY, sha1)


def test_bare_hex_without_prefix_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature(SECRET, BODY, SIGNATURE.removeprefix("sha256="))


def test_non_ascii_header_is_rejected_not_crashing():
    with pytest.raises(SignatureError):
        verify_signature(SECRET, BODY, "sha256=" + "é" * 64)


def test_empty_app_secret_never_verifies():
    with pytest.raises(SignatureError):
        verify_signature("", BODY, compute_signature("", BODY))


def test_signature_error_is_a_connector_error_and_leaks_nothing():
    with pytest.raises(ConnectorError) as info:
        verify_signature("another_app_secret", BODY, SIGNATURE)
    text = str(info.value)
    assert SECRET not in text and "another_app_secret" not in text and SIGNATURE[7:] not in text


# --- properties ----------------------------------------------------------------------------


@given(data=st.data())
def test_any_single_byte_mutation_of_the_body_is_rejected(data):
    index = data.draw(st.integers(0, len(BODY) - 1))
    new_byte = data.draw(st.integers(0, 255).filter(lambda b: b != BODY[index]))
    mutated = BODY[:index] + bytes([new_byte]) + BODY[index + 1:]
    with pytest.raises(SignatureError):
        verify_signature(SECRET, mutated, SIGNATURE)


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40))
def test_any_computed_signature_verifies_and_is_lowercase_hex(body, secret):
    signature = compute_signature(secret, body)
    assert signature.startswith("sha256=") and signature[7:] == signature[7:].lower() and len(signature) == 71
    verify_signature(secret, body, signature)


# --- subscription handshake ----------------------------------------------------------------


def hub(mode="subscribe", token=VERIFY_TOKEN, challenge="1158201444"):
    params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
    return {k: v for k, v in params.items() if v is not None}


def test_challenge_is_echoed_for_subscribe_with_our_token():
    assert verify_challenge(hub(), VERIFY_TOKEN) == "1158201444"
    assert verify_challenge(hub(), SecretStr(VERIFY_TOKEN)) == "1158201444"


@pytest.mark.parametrize("params", [
    hub(token="guess"),
    hub(token=None),
    hub(token=""),
    hub(mode="unsubscribe"),
    hub(mode=None),
    hub(challenge=None),
    hub(challenge=""),
    {},
])
def test_challenge_is_refused_unless_mode_token_and_challenge_are_right(params):
    with pytest.raises(SignatureError):
        verify_challenge(params, VERIFY_TOKEN)


def test_empty_configured_verify_token_refuses_even_an_empty_param():
    with pytest.raises(SignatureError, match="configured"):
        verify_challenge(hub(token=""), "")


def test_non_ascii_verify_token_is_compared_not_crashing():
    assert verify_challenge(hub(token="jeton-é"), "jeton-é") == "1158201444"
    with pytest.raises(SignatureError):
        verify_challenge(hub(token="jeton-e"), "jeton-é")
