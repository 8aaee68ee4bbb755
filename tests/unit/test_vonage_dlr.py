import hashlib
import json
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from connectors.errors import SignatureError, WebhookPayloadError
from connectors.webhooks.vonage_dlr import (
    VONAGE_OUTCOMES,
    VonageReceipt,
    compute_signature,
    outcome_status,
    parse_delivery_receipt,
    receipt_params,
    verify_signature,
)

SECRET = "dlr-secret"
DLR = {
    "msisdn": "31612345678", "to": "Shop", "network-code": "23410", "messageId": "0C000000217B7F02",
    "price": "0.03330000", "status": "delivered", "scts": "2401020304", "err-code": "0",
    "api-key": "abcd1234", "message-timestamp": "2024-01-02 03:04:05", "client-ref": "msg-1",
    "timestamp": "1704164645", "nonce": "6b1c1b4e-1f0e-4c8e-9a51-2f8d1c0e9a11",
}
# By hand: every param but sig, sorted by key (byte order: '-' < 'I', so message-timestamp < messageId),
# "&key=value" each, then the secret; md5, hex.
SIGNED_STRING = ("&api-key=abcd1234&client-ref=msg-1&err-code=0&message-timestamp=2024-01-02 03:04:05"
                 "&messageId=0C000000217B7F02&msisdn=31612345678&network-code=23410"
                 "&nonce=6b1c1b4e-1f0e-4c8e-9a51-2f8d1c0e9a11&price=0.03330000&scts=2401020304"
                 "&status=delivered&timestamp=1704164645&to=Shop" + SECRET)
KNOWN_SIG = "3f555ad6e76fb8a85fb3e5f11b29e344"
SIGNED = {**DLR, "sig": KNOWN_SIG}


# --- signature -----------------------------------------------------------------------------


def test_signature_known_answer():
    assert hashlib.md5(SIGNED_STRING.encode()).hexdigest() == KNOWN_SIG
    assert compute_signature(SECRET, DLR) == KNOWN_SIG
    assert compute_signature(SecretStr(SECRET), SIGNED) == KNOWN_SIG  # sig itself is never signed


def test_valid_signature_passes_in_any_letter_case():
    verify_signature(SECRET, SIGNED)
    verify_signature(SecretStr(SECRET), {**SIGNED, "sig": KNOWN_SIG.upper()})


@pytest.mark.parametrize("change", [
    {"status": "failed"}, {"err-code": "1"}, {"client-ref": "msg-2"}, {"timestamp": "1704164646"},
    {"extra": "field"},
])
def test_tampered_receipt_is_refused(change):
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature(SECRET, {**SIGNED, **change})


def test_dropped_field_is_refused():
    tampered = dict(SIGNED)
    del tampered["nonce"]
    with pytest.raises(SignatureError):
        verify_signature(SECRET, tampered)


def test_wrong_secret_is_refused():
    with pytest.raises(SignatureError):
        verify_signature("another-secret", SIGNED)


@pytest.mark.parametrize("sig", [None, "", "   ", "not-hex", KNOWN_SIG[:-1], KNOWN_SIG + "0"])
def test_missing_or_malformed_sig_is_refused(sig):
    params = {**DLR} if sig is None else {**DLR, "sig": sig}
    with pytest.raises(SignatureError):
        verify_signature(SECRET, params)


def test_empty_secret_never_verifies():
    forged = {**DLR, "sig": hashlib.md5(SIGNED_STRING.removesuffix(SECRET).encode()).hexdigest()}
    with pytest.raises(SignatureError, match="no signature secret"):
        verify_signature("", forged)


def test_ampersand_and_equals_in_values_are_hashed_as_underscores():
    params = {"b": "x=1&y=2", "a": "plain"}
    assert compute_signature("k", params) == hashlib.md5(b"&a=plain&b=x_1_y_2k").hexdigest()


def test_max_age_refuses_a_replayed_receipt_and_accepts_a_fresh_one():
    verify_signature(SECRET, SIGNED, max_age=300, now=1704164645 + 299)
    with pytest.raises(SignatureError, match="window"):
        verify_signature(SECRET, SIGNED, max_age=300, now=1704164645 + 301)


def test_max_age_needs_a_timestamp():
    unstamped = {k: v for k, v in DLR.items() if k != "timestamp"}
    with pytest.raises(SignatureError, match="timestamp"):
        verify_signature(SECRET, {**unstamped, "sig": compute_signature(SECRET, unstamped)}, max_age=300, now=0)


# --- getting the params out of a request ---------------------------------------------------


def test_params_of_a_get_are_its_query():
    assert receipt_params("GET", SIGNED, None, b"") == SIGNED


def test_params_of_a_form_post_are_its_body_not_its_query():
    body = urlencode(SIGNED).encode()
    params = receipt_params("POST", {"message_id": "ours"}, "application/x-www-form-urlencoded", body)
    assert params == SIGNED
    verify_signature(SECRET, params)


def test_params_of_a_json_post_are_its_object():
    body = json.dumps(SIGNED).encode()
    params = receipt_params("POST", {}, "application/json; charset=utf-8", body)
    assert params == SIGNED
    verify_signature(SECRET, params)


def test_json_scalars_become_strings_and_nulls_are_dropped():
    body = json.dumps({"messageId": "ab", "price": 0.5, "flag": True, "client-ref": None}).encode()
    assert receipt_params("POST", {}, "application/json", body) == {"messageId": "ab", "price": "0.5",
                                                                   "flag": "true"}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"nested": {"a": 1}}', b"\xff\xfe"])
def test_bad_json_bodies_are_payload_errors(body):
    with pytest.raises(WebhookPayloadError):
        receipt_params("POST", {}, "application/json", body)


# --- parsing and status mapping ------------------------------------------------------------


def test_delivered_receipt_is_parsed_with_err_code_0_as_none():
    assert parse_delivery_receipt(SIGNED) == VonageReceipt(
        provider_message_id="0C000000217B7F02", status="delivered", error_code=None, client_ref="msg-1")


def test_failed_receipt_keeps_its_err_code():
    receipt = parse_delivery_receipt({**DLR, "status": "failed", "err-code": "5"})
    assert (receipt.status, receipt.error_code) == ("failed", "5")
    assert outcome_status(receipt.status) == "undelivered"


def test_status_is_read_case_insensitively_and_client_ref_is_optional():
    params = {k: v for k, v in DLR.items() if k != "client-ref"}
    receipt = parse_delivery_receipt({**params, "status": " Delivered "})
    assert receipt.status == "delivered" and receipt.client_ref is None


@pytest.mark.parametrize("vonage, ours", [
    ("delivered", "delivered"), ("expired", "undelivered"), ("failed", "undelivered"),
    ("rejected", "undelivered"), ("accepted", None), ("buffered", None), ("unknown", None),
])
def test_status_mapping(vonage, ours):
    assert outcome_status(vonage) == ours and VONAGE_OUTCOMES[vonage] == ours


def test_every_mapped_outcome_is_in_our_outcome_vocabulary():
    from schemas.messages import OutcomeStatus

    assert {v for v in VONAGE_OUTCOMES.values() if v} <= {s.value for s in OutcomeStatus}


@pytest.mark.parametrize("change", [
    {"messageId": ""}, {"messageId": "id with spaces"}, {"messageId": "x" * 65},
    {"status": ""}, {"status": "teleported"}, {"err-code": "E1"},
])
def test_malformed_receipts_are_payload_errors(change):
    with pytest.raises(WebhookPayloadError):
        parse_delivery_receipt({**DLR, **change})


def test_missing_message_id_is_a_payload_error_that_is_also_a_value_error():
    with pytest.raises(ValueError):
        parse_delivery_receipt({k: v for k, v in DLR.items() if k != "messageId"})


def test_payload_errors_never_echo_the_number():
    with pytest.raises(WebhookPayloadError) as info:
        parse_delivery_receipt({**DLR, "status": DLR["msisdn"]})
    assert DLR["msisdn"] not in str(info.value)
