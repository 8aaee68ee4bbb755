import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
    UnknownProviderError,
)
from connectors.providers.base import ProviderReceipt, SmsProvider, SmsRequest
from connectors.providers.registry import SMS_PROVIDERS, build_sms_provider
from connectors.providers.twilio import TwilioSmsProvider

ROOT = str(Path(__file__).resolve().parents[2])
ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "s3cr3t-token"
FROM = "+15005550006"
TO = "+31612345678"
BODY = "Your order #1042 has shipped"
SID = "SM" + "0f" * 16
REQUEST = SmsRequest(message_id="msg-1", to=TO, body=BODY, status_callback="https://hooks.example/twilio/status")


def twilio_error(status, code, message="error", headers=None):
    payload = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
               "status": status}
    return httpx.Response(status, json=payload, headers=headers)


def send_with(handler, request=REQUEST, **kwargs):
    """Send ``request`` through a TwilioSmsProvider whose HTTP goes to ``handler``."""

    async def main():
        provider = TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM, transport=httpx.MockTransport(handler),
                                     **kwargs)
        try:
            return await provider.send(request)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def accepted(request):
    return httpx.Response(201, json={"sid": SID, "status": "queued", "num_segments": "2", "to": TO})


# --- success -------------------------------------------------------------------------------


def test_accepted_message_returns_receipt_with_sid_status_and_segments():
    assert send_with(accepted) == ProviderReceipt(
        provider="twilio", provider_message_id=SID, status="queued", segments=2
    )


def test_request_is_form_encoded_post_with_basic_auth_to_messages_path():
    seen = []

    def handler(request):
        seen.append(request)
        return accepted(request)

    send_with(handler)
    (request,) = seen
    assert request.method == "POST"
    assert request.url == f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
    assert form == {"To": TO, "From": FROM, "Body": BODY, "StatusCallback": "https://hooks.example/twilio/status"}


def test_request_sender_overrides_default_from_and_no_callback_is_omitted():
    seen = []

    def handler(request):
        seen.append(parse_qs(request.content.decode()))
        return accepted(request)

    send_with(handler, SmsRequest(message_id="m", to=TO, body=BODY, sender="Shop"))
    assert seen[0]["From"] == ["Shop"] and "StatusCallback" not in seen[0]


def test_base_url_is_configurable():
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return accepted(request)

    send_with(handler, base_url="http://127.0.0.1:9999/")
    assert seen == [f"http://127.0.0.1:9999/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"]


def test_missing_num_segments_gives_none():
    receipt = send_with(lambda r: httpx.Response(201, json={"sid": SID, "status": "queued", "num_segments": None}))
    assert receipt.segments is None


@pytest.mark.parametrize("response", [
    httpx.Response(201, text="<html>ok</html>"),
    httpx.Response(201, json={"status": "queued"}),
    httpx.Response(201, json=["not", "an", "object"]),
])
def test_unreadable_2xx_is_ambiguous_because_twilio_may_have_taken_it(response):
    with pytest.raises(ProviderAmbiguousError):
        send_with(lambda r: response)


# --- HTTP error mapping --------------------------------------------------------------------


def test_429_is_transient_with_retry_after_seconds():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "1"}))
    assert info.value.retry_after == 1.0
    assert info.value.code == "20429" and info.value.provider == "twilio"


def test_429_retry_after_as_http_date_is_converted_to_seconds():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: twilio_error(429, 20429, headers={"Retry-After": when}))
    assert 25 <= info.value.retry_after <= 30


def test_code_20429_is_transient_whatever_the_http_status():
    with pytest.raises(ProviderTransientError):
        send_with(lambda r: twilio_error(400, 20429))


def test_429_without_retry_after_has_none():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: httpx.Response(429))
    assert info.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(status):
    with pytest.raises(ProviderTransientError):
        send_with(lambda r: httpx.Response(status, text="upstream trouble"))


def test_400_invalid_to_is_rejected_with_twilio_code():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: twilio_error(400, 21211, f"The 'To' number {TO} is not a valid phone number."))
    assert info.value.code == "21211"


def test_400_blocklisted_is_rejected_with_code_21610():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    assert info.value.code == "21610"


def test_error_message_never_contains_the_phone_number_or_body():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: twilio_error(400, 21211, f"The 'To' number {TO} is not a valid phone number."))
    text = str(info.value)
    assert TO not in text and TO[1:] not in text and BODY not in text
    assert "*78" in text  # masked, last two digits kept


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_misconfigured(status):
    with pytest.raises(ProviderMisconfiguredError) as info:
        send_with(lambda r: twilio_error(status, 20003, "Authenticate"))
    assert info.value.code == "20003"


def test_redirect_means_wrong_base_url_so_misconfigured():
    with pytest.raises(ProviderMisconfiguredError):
        send_with(lambda r: httpx.Response(301, headers={"Location": "https://elsewhere.example/"}))


def test_non_json_4xx_is_rejected_without_code():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: httpx.Response(404, text="not found"))
    assert info.value.code is None


# --- transport error mapping ---------------------------------------------------------------


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
    assert isinstance(info.value.__cause__, exc_type)


def test_unsupported_scheme_is_misconfigured():
    with pytest.raises(ProviderMisconfiguredError):
        send_with(raising(httpx.UnsupportedProtocol))


def test_every_failure_is_a_provider_error():
    for handler in (raising(httpx.ReadTimeout), lambda r: httpx.Response(418)):
        with pytest.raises(ProviderError):
            send_with(handler)


# --- construction, secrets, registry -------------------------------------------------------


@pytest.mark.parametrize("args", [("", AUTH_TOKEN, FROM), (ACCOUNT_SID, "", FROM), (ACCOUNT_SID, AUTH_TOKEN, "")])
def test_empty_credentials_are_misconfigured(args):
    with pytest.raises(ProviderMisconfiguredError):
        TwilioSmsProvider(*args)


def test_repr_of_provider_and_request_hides_token_number_and_body():
    provider = TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM)
    asyncio.run(provider.aclose())
    assert AUTH_TOKEN not in repr(provider)
    assert TO not in repr(REQUEST) and BODY not in repr(REQUEST)


def test_provider_satisfies_sms_provider_protocol():
    provider = TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM)
    asyncio.run(provider.aclose())
    assert isinstance(provider, SmsProvider) and provider.name == "twilio"


def test_registry_builds_twilio_by_name():
    provider = build_sms_provider("twilio", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM)
    asyncio.run(provider.aclose())
    assert isinstance(provider, TwilioSmsProvider) and "twilio" in SMS_PROVIDERS


def test_registry_rejects_unknown_name_listing_known_ones():
    with pytest.raises(UnknownProviderError, match="twilio") as info:
        build_sms_provider("carrier-pigeon")
    assert isinstance(info.value, LookupError)


def test_adapter_modules_do_not_import_faust():
    code = "import sys, connectors.providers.registry; assert 'faust' not in sys.modules, 'faust imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def test_json_error_body_is_parsed_even_with_charset():
    body = json.dumps({"code": 21610, "message": "blocked", "status": 400}).encode()
    response = httpx.Response(400, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: response)
    assert info.value.code == "21610"
