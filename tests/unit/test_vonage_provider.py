import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import ProviderReceipt, SmsProvider, SmsRequest
from connectors.providers.registry import SMS_PROVIDERS, build_sms_provider
from connectors.providers.vonage import STATUS_ERRORS, VonageSmsProvider

ROOT = str(Path(__file__).resolve().parents[2])
API_KEY = "abcd1234"
API_SECRET = "s3cr3t-api"
SIGNATURE_SECRET = "sig-s3cr3t"
FROM = "+15005550006"
TO = "+31612345678"
BODY = "Your order #1042 has shipped"
CALLBACK = "https://hooks.example/vonage/dlr"
REQUEST = SmsRequest(message_id="msg-1", to=TO, body=BODY, status_callback=CALLBACK)


def part(message_id="0C000000217B7F02", status="0"):
    return {"to": TO[1:], "message-id": message_id, "status": status, "remaining-balance": "15.53590000",
            "message-price": "0.03330000", "network": "23410"}


def answer(*parts, count=None):
    return httpx.Response(200, json={"message-count": str(len(parts) if count is None else count),
                                     "messages": list(parts)})


def refusal(status, text="error"):
    return answer({"status": status, "error-text": text})


def send_with(handler, request=REQUEST, **kwargs):
    """Send ``request`` through a VonageSmsProvider whose HTTP goes to ``handler``."""
    api_secret = kwargs.pop("api_secret", API_SECRET)

    async def main():
        provider = VonageSmsProvider(API_KEY, api_secret, FROM, transport=httpx.MockTransport(handler), **kwargs)
        try:
            return await provider.send(request)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def capture(response=None):
    seen = []

    def handler(request):
        seen.append(request)
        return response or answer(part())

    return seen, handler


def form_of(request):
    return {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}


# --- the request ---------------------------------------------------------------------------


def test_request_is_a_form_post_to_sms_json_with_key_and_secret_and_digits_only_numbers():
    seen, handler = capture()
    send_with(handler)
    (request,) = seen
    assert request.method == "POST" and request.url == "https://rest.nexmo.com/sms/json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(request) == {
        "api_key": API_KEY, "api_secret": API_SECRET, "from": "15005550006", "to": "31612345678",
        "text": BODY, "type": "text", "client-ref": "msg-1", "status-report-req": "1", "callback": CALLBACK,
    }


def test_hebrew_text_is_sent_as_type_unicode():
    seen, handler = capture()
    send_with(handler, SmsRequest(message_id="m", to=TO, body="ההזמנה שלך נשלחה"))
    assert form_of(seen[0])["type"] == "unicode"


def test_gsm_extension_characters_stay_type_text():
    seen, handler = capture()
    send_with(handler, SmsRequest(message_id="m", to=TO, body="Total: 12 € [paid]"))
    assert form_of(seen[0])["type"] == "text"


def test_alphanumeric_sender_is_kept_and_no_callback_is_omitted():
    seen, handler = capture()
    send_with(handler, SmsRequest(message_id="m", to=TO, body=BODY, sender="Shop"))
    form = form_of(seen[0])
    assert form["from"] == "Shop" and "callback" not in form and form["status-report-req"] == "1"


def test_signed_request_carries_key_timestamp_and_md5_hash_sig_but_no_secret():
    seen, handler = capture()
    body = "Tom & Jerry = friends"
    send_with(handler, SmsRequest(message_id="msg-1", to=TO, body=body, status_callback=CALLBACK),
              signature_secret=SIGNATURE_SECRET, clock=lambda: 1700000000.9)
    form = form_of(seen[0])
    assert "api_secret" not in form
    assert form["timestamp"] == "1700000000" and form["text"] == body  # sent unchanged
    # By hand: params sorted by key, '&' and '=' in values replaced by '_', secret appended, md5 hex.
    signed = ("&api_key=abcd1234&callback=https://hooks.example/vonage/dlr&client-ref=msg-1"
              "&from=15005550006&status-report-req=1&text=Tom _ Jerry _ friends&timestamp=1700000000"
              "&to=31612345678&type=text" + SIGNATURE_SECRET)
    assert hashlib.md5(signed.encode()).hexdigest() == "f4d45db7fb94e1dfd381f3cc823fb2f6"
    assert form["sig"] == "f4d45db7fb94e1dfd381f3cc823fb2f6"


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_signed_request_uses_the_accounts_hmac_method(method):
    seen, handler = capture()
    send_with(handler, SmsRequest(message_id="msg-1", to=TO, body=BODY), signature_secret=SIGNATURE_SECRET,
              signature_method=method, clock=lambda: 1700000000)
    form = form_of(seen[0])
    signed = "".join(f"&{k}={form[k]}" for k in sorted(form) if k != "sig")
    assert form["sig"] == hmac.new(SIGNATURE_SECRET.encode(), signed.encode(), method).hexdigest()


def test_an_unknown_signature_method_refuses_to_build():
    with pytest.raises(ValueError, match="signature method"):
        VonageSmsProvider(API_KEY, API_SECRET, FROM, signature_secret=SIGNATURE_SECRET, signature_method="sha384")


def test_signature_secret_alone_is_enough_to_build_the_provider():
    seen, handler = capture()
    send_with(handler, api_secret="", signature_secret=SIGNATURE_SECRET)
    assert "sig" in form_of(seen[0])


def test_base_url_is_configurable():
    seen, handler = capture()
    send_with(handler, base_url="http://127.0.0.1:9999/")
    assert str(seen[0].url) == "http://127.0.0.1:9999/sms/json"


# --- success -------------------------------------------------------------------------------


def test_accepted_single_part_returns_receipt():
    assert send_with(lambda r: answer(part())) == ProviderReceipt(
        provider="vonage", provider_message_id="0C000000217B7F02", status="accepted", segments=1)


def test_multipart_success_uses_first_part_id_and_message_count_as_segments():
    response = answer(part("0C00000000000001"), part("0C00000000000002"), part("0C00000000000003"))
    receipt = send_with(lambda r: response)
    assert (receipt.provider_message_id, receipt.segments) == ("0C00000000000001", 3)


# --- per-part status codes -----------------------------------------------------------------


@pytest.mark.parametrize("status, kind", [
    ("1", ProviderTransientError), ("2", ProviderRejectedError), ("3", ProviderRejectedError),
    ("4", ProviderMisconfiguredError), ("5", ProviderTransientError), ("6", ProviderRejectedError),
    ("7", ProviderRejectedError), ("8", ProviderMisconfiguredError), ("9", ProviderMisconfiguredError),
    ("10", ProviderTransientError), ("11", ProviderMisconfiguredError), ("12", ProviderRejectedError),
    ("13", ProviderTransientError), ("14", ProviderMisconfiguredError), ("15", ProviderRejectedError),
    ("22", ProviderRejectedError), ("29", ProviderRejectedError), ("32", ProviderMisconfiguredError),
    ("99", ProviderRejectedError),  # unlisted: the message was not taken, and not for a known passing reason
])
def test_status_code_table(status, kind):
    with pytest.raises(ProviderError) as info:
        send_with(lambda r: refusal(status))
    assert type(info.value) is kind and info.value.code == status and info.value.provider == "vonage"


def test_throttled_is_transient_with_retry_after_one_second():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: refusal("1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry"))
    assert info.value.retry_after == 1.0


def test_other_transient_statuses_leave_the_backoff_to_the_caller():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: refusal("13"))
    assert info.value.retry_after is None


def test_table_covers_the_codes_named_in_vonage_docs():
    assert {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "22", "29"} <= set(
        STATUS_ERRORS)


def test_partial_success_is_ambiguous_never_transient_nor_rejected():
    response = answer(part("0C00000000000001"), {"status": "1", "error-text": "Throttled"})
    with pytest.raises(ProviderAmbiguousError) as info:
        send_with(lambda r: response)
    assert not isinstance(info.value, (ProviderTransientError, ProviderRejectedError))
    assert info.value.code == "1" and "1 of 2 parts" in str(info.value)


def test_every_part_refused_is_mapped_by_the_first_parts_status():
    response = answer({"status": "9", "error-text": "Quota Exceeded"}, {"status": "9", "error-text": "Quota"})
    with pytest.raises(ProviderMisconfiguredError) as info:
        send_with(lambda r: response)
    assert info.value.code == "9"


def test_error_text_never_leaks_the_phone_number_or_body():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: refusal("3", f"Invalid to address {TO[1:]}"))
    text = str(info.value)
    assert TO[1:] not in text and BODY not in text and "*78" in text


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="<html>ok</html>"),
    httpx.Response(200, json={"message-count": "1"}),
    httpx.Response(200, json={"message-count": "0", "messages": []}),
    httpx.Response(200, json={"message-count": "1", "messages": ["0"]}),
    httpx.Response(200, json={"message-count": "1", "messages": [{"message-id": "x"}]}),
    httpx.Response(200, json={"message-count": "2", "messages": [{"status": "0", "message-id": "x"}]}),
    httpx.Response(200, json={"message-count": "1", "messages": [{"status": "0"}]}),
])
def test_unreadable_200_is_ambiguous_because_vonage_may_have_taken_it(response):
    with pytest.raises(ProviderAmbiguousError):
        send_with(lambda r: response)


# --- HTTP and transport errors -------------------------------------------------------------


def test_http_429_is_transient_with_retry_after_header():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: httpx.Response(429, headers={"Retry-After": "2"}))
    assert info.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(status):
    with pytest.raises(ProviderTransientError):
        send_with(lambda r: httpx.Response(status, text="upstream trouble"))


@pytest.mark.parametrize("status", [301, 401, 403, 404, 405])
def test_redirect_auth_and_missing_route_mean_a_wrong_endpoint_so_misconfigured(status):
    with pytest.raises(ProviderMisconfiguredError):
        send_with(lambda r: httpx.Response(status, headers={"Location": "https://elsewhere.example/"}))


def test_other_4xx_is_rejected_with_the_problem_title():
    response = httpx.Response(422, json={"type": "about:blank", "title": "Invalid text", "detail": "…"})
    with pytest.raises(ProviderRejectedError, match="Invalid text"):
        send_with(lambda r: response)


def raising(exc_type):
    def handler(request):
        raise exc_type("boom", request=request)

    return handler


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_request_that_never_left_is_transient(exc_type):
    with pytest.raises(ProviderTransientError) as info:
        send_with(raising(exc_type))
    assert isinstance(info.value.__cause__, exc_type)


@pytest.mark.parametrize("exc_type", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError,
                                      httpx.WriteTimeout])
def test_failure_after_sending_is_ambiguous_never_transient(exc_type):
    with pytest.raises(ProviderAmbiguousError) as info:
        send_with(raising(exc_type))
    assert not isinstance(info.value, ProviderTransientError)


def test_unsupported_scheme_is_misconfigured():
    with pytest.raises(ProviderMisconfiguredError):
        send_with(raising(httpx.UnsupportedProtocol))


# --- construction, secrets, registry -------------------------------------------------------


@pytest.mark.parametrize("args", [("", API_SECRET, FROM), (API_KEY, "", FROM), (API_KEY, API_SECRET, "")])
def test_missing_credentials_are_misconfigured(args):
    with pytest.raises(ProviderMisconfiguredError):
        VonageSmsProvider(*args)


def test_repr_hides_secrets():
    provider = VonageSmsProvider(API_KEY, API_SECRET, FROM, signature_secret=SIGNATURE_SECRET)
    asyncio.run(provider.aclose())
    assert API_SECRET not in repr(provider) and SIGNATURE_SECRET not in repr(provider)


def test_provider_satisfies_sms_provider_protocol():
    provider = VonageSmsProvider(API_KEY, API_SECRET, FROM)
    asyncio.run(provider.aclose())
    assert isinstance(provider, SmsProvider) and provider.name == "vonage"


def test_registry_can_build_vonage_by_name_from_keyword_config(monkeypatch):
    monkeypatch.setitem(SMS_PROVIDERS, "vonage", VonageSmsProvider)
    provider = build_sms_provider("Vonage", api_key=API_KEY, api_secret=API_SECRET, from_number=FROM,
                                  signature_secret=None, base_url="http://127.0.0.1:1")
    asyncio.run(provider.aclose())
    assert isinstance(provider, VonageSmsProvider)


def test_vonage_adapter_does_not_import_faust():
    code = "import sys, connectors.providers.vonage; assert 'faust' not in sys.modules, 'faust imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
