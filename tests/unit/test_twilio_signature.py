import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.errors import ConnectorError, SignatureError
from connectors.webhooks.twilio_signature import (
    compute_signature,
    verify_signature,
    verify_signature_with_body,
)

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

BODY = b'{"MessageSid":"SM123","MessageStatus":"delivered"}'
BODY_SHA256 = "458597634cd82805792467af543ce1e6b98ee56a12d89f07e2202e7266f76084"
BODY_URL = f"https://example.com/twilio/status?bodySHA256={BODY_SHA256}"
BODY_SIGNATURE = "HXTAi7z5aflWhwRGOQQJPF4yLUs="


# --- known answers -------------------------------------------------------------------------


def test_compute_signature_matches_twilio_known_answer():
    assert compute_signature(TOKEN, URL, PARAMS) == SIGNATURE


def test_compute_signature_accepts_pairs_and_secret_token():
    assert compute_signature(SecretStr(TOKEN), URL, list(PARAMS.items())) == SIGNATURE


def test_verify_signature_accepts_twilio_known_answer():
    verify_signature(TOKEN, URL, PARAMS, SIGNATURE)


def test_body_hash_known_answer():
    assert hashlib.sha256(BODY).hexdigest() == BODY_SHA256


def test_compute_signature_of_json_webhook_signs_url_only():
    assert compute_signature(TOKEN, BODY_URL, {}) == BODY_SIGNATURE


def test_verify_signature_with_body_accepts_known_answer():
    verify_signature_with_body(TOKEN, BODY_URL, BODY, BODY_SIGNATURE)
    verify_signature_with_body(TOKEN, BODY_URL, BODY.decode(), BODY_SIGNATURE)


# --- params are order-independent, tampering is not -------------------------------------


def test_reordered_params_still_pass():
    verify_signature(TOKEN, URL, list(reversed(list(PARAMS.items()))), SIGNATURE)


def test_repeated_keys_are_sorted_by_value_too():
    one = compute_signature(TOKEN, URL, [("Media", "b"), ("Media", "a"), ("To", "x")])
    other = compute_signature(TOKEN, URL, [("To", "x"), ("Media", "a"), ("Media", "b")])
    assert one == other


def test_flipped_param_value_is_rejected():
    tampered = {**PARAMS, "Digits": "1235"}
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature(TOKEN, URL, tampered, SIGNATURE)


def test_added_param_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, URL, {**PARAMS, "Extra": "1"}, SIGNATURE)


def test_wrong_token_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature("54321", URL, PARAMS, SIGNATURE)


def test_changed_url_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, URL.replace("foo=1", "foo=2"), PARAMS, SIGNATURE)


@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_signature_is_rejected_as_missing(missing):
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(TOKEN, URL, PARAMS, missing)


def test_signature_truncated_by_one_char_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, URL, PARAMS, SIGNATURE[:-1])


def test_non_ascii_signature_is_rejected_not_crashing():
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, URL, PARAMS, "é" * 28)


def test_signature_error_is_a_connector_error_and_leaks_nothing():
    with pytest.raises(ConnectorError) as info:
        verify_signature("54321", URL, PARAMS, SIGNATURE)
    assert "54321" not in str(info.value) and SIGNATURE not in str(info.value)


# --- default ports, as in Twilio's SDKs -------------------------------------------------


def test_signature_made_without_port_verifies_against_url_with_default_port():
    verify_signature(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, SIGNATURE)


def test_signature_made_with_default_port_verifies_against_url_without_port():
    url = "http://example.com/cb?x=1"
    signed = compute_signature(TOKEN, "http://example.com:80/cb?x=1", PARAMS)
    verify_signature(TOKEN, url, PARAMS, signed)


def test_non_default_port_is_never_dropped():
    signed = compute_signature(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=2", PARAMS)
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, "https://mycompany.com:8443/myapp.php?foo=1&bar=2", PARAMS, signed)


def test_exact_url_with_non_default_port_verifies():
    url = "http://127.0.0.1:8123/twilio/status"
    verify_signature(TOKEN, url, PARAMS, compute_signature(TOKEN, url, PARAMS))


# --- JSON-body variant -------------------------------------------------------------------


def test_tampered_body_is_rejected():
    with pytest.raises(SignatureError, match="bodySHA256"):
        verify_signature_with_body(TOKEN, BODY_URL, BODY.replace(b"delivered", b"failed"), BODY_SIGNATURE)


def test_body_url_without_body_hash_is_rejected():
    url = "https://example.com/twilio/status"
    with pytest.raises(SignatureError, match="bodySHA256"):
        verify_signature_with_body(TOKEN, url, BODY, compute_signature(TOKEN, url, {}))


def test_body_variant_with_wrong_token_is_rejected():
    with pytest.raises(SignatureError):
        verify_signature_with_body("54321", BODY_URL, BODY, BODY_SIGNATURE)


def test_body_variant_with_missing_signature_is_rejected():
    with pytest.raises(SignatureError, match="missing"):
        verify_signature_with_body(TOKEN, BODY_URL, BODY, None)


# --- property -----------------------------------------------------------------------------


@given(name=st.sampled_from(sorted(PARAMS)), new_value=st.text(max_size=40))
def test_any_mutation_of_a_param_value_is_rejected(name, new_value):
    assume(new_value != PARAMS[name])
    with pytest.raises(SignatureError):
        verify_signature(TOKEN, URL, {**PARAMS, name: new_value}, SIGNATURE)


@given(params=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=6))
def test_any_computed_signature_verifies(params):
    verify_signature(TOKEN, URL, params, compute_signature(TOKEN, URL, params))
