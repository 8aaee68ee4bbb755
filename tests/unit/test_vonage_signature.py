"""Every signature method Vonage's dashboard offers, for requests and receipts (known answers by hand)."""

import hashlib
import hmac

import pytest

from connectors.errors import SignatureError
from connectors.webhooks.vonage_signature import SIGNATURE_METHODS, compute_signature, verify_signature
from tests.unit.test_vonage_dlr import DLR, KNOWN_SIG, SECRET, SIGNED_STRING

JOINED = SIGNED_STRING[: -len(SECRET)]  # "&key=value…" of every param but sig, sorted
# HMAC-<method>(key=secret, msg=JOINED), hex: computed once with Python's hmac over the string above.
KNOWN_HMAC = {
    "md5": "005ef981680220165a54f11523ae00e6",
    "sha1": "0f0d3714d7e74c10ad5b828b0115e0378106b5e8",
    "sha256": "67a92c8951ce168861f1100deb21a57b0d0e83c2f019c62d71d8ff513eee7200",
    "sha512": "79c1000bf1e576eb652d6e6af2c888a842b80a6af99412e21c8ab68e89e2bc874b197d48969642ae8c815fcec28ba7ad77cfac"
              "35e34bfccc60a0848c369b8bdf",
}


def test_the_five_methods_are_the_dashboards():
    assert SIGNATURE_METHODS == ("md5hash", "md5", "sha1", "sha256", "sha512")


def test_md5_hash_is_the_default_and_keeps_its_known_answer():
    assert compute_signature(SECRET, DLR) == compute_signature(SECRET, DLR, "md5hash") == KNOWN_SIG


@pytest.mark.parametrize("method", KNOWN_HMAC)
def test_hmac_methods_sign_the_joined_params_with_the_secret_as_key(method):
    assert hmac.new(SECRET.encode(), JOINED.encode(), method).hexdigest() == KNOWN_HMAC[method]
    assert compute_signature(SECRET, DLR, method) == KNOWN_HMAC[method]


@pytest.mark.parametrize("method", KNOWN_HMAC)
def test_a_receipt_signed_by_the_accounts_method_verifies_in_either_letter_case(method):
    verify_signature(SECRET, {**DLR, "sig": KNOWN_HMAC[method]}, method=method)
    verify_signature(SECRET, {**DLR, "sig": KNOWN_HMAC[method].upper()}, method=method)


@pytest.mark.parametrize("method", SIGNATURE_METHODS)
def test_a_receipt_signed_by_another_method_or_tampered_is_refused(method):
    other = "sha256" if method != "sha256" else "md5"
    with pytest.raises(SignatureError):
        verify_signature(SECRET, {**DLR, "sig": compute_signature(SECRET, DLR, other)}, method=method)
    with pytest.raises(SignatureError, match="invalid"):
        verify_signature(SECRET, {**DLR, "status": "failed", "sig": compute_signature(SECRET, DLR, method)},
                         method=method)


def test_hmac_md5_is_not_the_legacy_md5_hash():
    assert KNOWN_HMAC["md5"] != KNOWN_SIG != hashlib.md5(JOINED.encode()).hexdigest()


def test_an_unknown_method_is_a_configuration_error():
    with pytest.raises(ValueError, match="sha384"):
        compute_signature(SECRET, DLR, "sha384")
