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


# --- find: reconciling an ambiguous send through the list API ------------------------------

SENT_AFTER = datetime(2026, 11, 22, 11, 0, 0, 400000, tzinfo=timezone.utc)
LIST_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def listed(sid, body=BODY, created=SENT_AFTER, status="sent", segments="1"):
    stamp = format_datetime(created.replace(microsecond=0))
    return {"sid": sid, "to": TO, "from": FROM, "body": body, "status": status, "num_segments": segments,
            "date_created": stamp, "date_sent": stamp, "date_updated": stamp, "error_code": None,
            "direction": "outbound-api"}


def page(messages, next_page_uri=None, number=0):
    return httpx.Response(200, json={"messages": messages, "next_page_uri": next_page_uri, "page": number,
                                     "page_size": 50, "uri": LIST_PATH})


def find_with(handler, request=REQUEST, sent_after=SENT_AFTER, **kwargs):
    async def main():
        provider = TwilioSmsProvider(ACCOUNT_SID, AUTH_TOKEN, FROM, transport=httpx.MockTransport(handler),
                                     **kwargs)
        try:
            return await provider.find(request, sent_after)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def test_find_lists_with_twilios_exact_query_and_basic_auth():
    seen = []

    def handler(request):
        seen.append(request)
        return page([])

    assert find_with(handler) is None
    (request,) = seen
    assert request.method == "GET" and request.url.path == LIST_PATH
    assert request.url.host == "api.twilio.com"
    assert dict(request.url.params.multi_items()) == {"To": TO, "From": FROM, "DateSent>": "2026-11-22",
                                                      "PageSize": "50"}
    assert len(request.url.params.multi_items()) == 4
    assert b"DateSent%3E=2026-11-22" in request.url.query  # Twilio's odd parameter name, encoded
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"


def test_find_uses_the_requests_sender_and_the_utc_date_of_sent_after():
    seen = []

    def handler(request):
        seen.append(request.url.params)
        return page([])

    warsaw = timezone(timedelta(hours=1))
    find_with(handler, SmsRequest(message_id="m", to=TO, body=BODY, sender="Shop"),
              sent_after=datetime(2026, 11, 23, 0, 30, tzinfo=warsaw))  # 23:30 UTC the day before
    assert seen[0]["From"] == "Shop" and seen[0]["DateSent>"] == "2026-11-22"


def test_find_returns_the_receipt_of_the_message_with_the_same_body_created_after_sent_after():
    messages = [listed("SM" + "1" * 32, body="another message"),
                listed("SM" + "2" * 32, status="delivered", segments="2"),
                listed("SM" + "3" * 32, created=SENT_AFTER - timedelta(seconds=5))]
    assert find_with(lambda r: page(messages)) == ProviderReceipt(
        provider="twilio", provider_message_id="SM" + "2" * 32, status="delivered", segments=2)


def test_find_compares_at_twilios_one_second_resolution():
    # created 11:00:00.7, listed as 11:00:00, sent_after 11:00:00.4: still a match.
    message = listed(SID, created=SENT_AFTER.replace(microsecond=700000))
    assert find_with(lambda r: page([message])).provider_message_id == SID


def test_find_prefers_the_newest_match_whatever_the_list_order():
    older = listed("SM" + "a" * 32, created=SENT_AFTER + timedelta(seconds=1))
    newer = listed("SM" + "b" * 32, created=SENT_AFTER + timedelta(seconds=30))
    assert find_with(lambda r: page([older, newer])).provider_message_id == "SM" + "b" * 32
    assert find_with(lambda r: page([newer, older])).provider_message_id == "SM" + "b" * 32


def test_find_requires_the_exact_body():
    messages = [listed(SID, body=BODY + " "), listed("SM" + "1" * 32, body=BODY.upper())]
    assert find_with(lambda r: page(messages)) is None


def test_find_without_match_is_none_and_skips_unreadable_dates():
    messages = [listed(SID, created=SENT_AFTER - timedelta(minutes=1)),
                {**listed("SM" + "1" * 32), "date_created": "yesterday-ish"},
                {**listed("SM" + "2" * 32), "date_created": None}]
    assert find_with(lambda r: page(messages)) is None


def test_naive_sent_after_is_taken_as_utc():
    message = listed(SID, created=SENT_AFTER)
    assert find_with(lambda r: page([message]), sent_after=SENT_AFTER.replace(tzinfo=None)).provider_message_id == SID
    later = (SENT_AFTER + timedelta(hours=1)).replace(tzinfo=None)
    assert find_with(lambda r: page([message]), sent_after=later) is None


def test_find_follows_next_page_uri_to_the_match():
    seen = []
    next_uri = f"{LIST_PATH}?To=%2B31612345678&From=%2B15005550006&DateSent%3E=2026-11-22&PageSize=50&Page=1&PageToken=PA{SID}"

    def handler(request):
        seen.append(request.url)
        if len(seen) == 1:
            return page([listed("SM" + "1" * 32, body="other")], next_page_uri=next_uri)
        return page([listed(SID)], number=1)

    assert find_with(handler).provider_message_id == SID
    assert len(seen) == 2
    assert seen[1].raw_path.decode() == next_uri  # exactly Twilio's uri, nothing added
    assert seen[1].host == "api.twilio.com"


def test_find_reads_at_most_five_pages():
    calls = []

    def handler(request):
        calls.append(request)
        return page([listed("SM" + "1" * 32, body="other")], next_page_uri=f"{LIST_PATH}?Page={len(calls)}")

    assert find_with(handler) is None
    assert len(calls) == 5


def test_find_refuses_a_next_page_off_the_account_so_credentials_stay_home():
    for uri in ("https://evil.example/2010-04-01/Accounts/x/Messages.json?Page=1",
                "/2010-04-01/Accounts/ACother/Messages.json?Page=1"):
        with pytest.raises(ProviderAmbiguousError):
            find_with(lambda r, uri=uri: page([], next_page_uri=uri))


@pytest.mark.parametrize("status", [500, 503])
def test_find_5xx_is_transient(status):
    with pytest.raises(ProviderTransientError):
        find_with(lambda r: httpx.Response(status, text="upstream trouble"))


def test_find_errors_go_through_the_same_mapping():
    with pytest.raises(ProviderTransientError) as info:
        find_with(lambda r: twilio_error(429, 20429, headers={"Retry-After": "2"}))
    assert info.value.retry_after == 2.0
    with pytest.raises(ProviderMisconfiguredError):
        find_with(lambda r: twilio_error(401, 20003, "Authenticate"))
    with pytest.raises(ProviderTransientError):
        find_with(raising(httpx.ConnectError))
    with pytest.raises(ProviderAmbiguousError):
        find_with(raising(httpx.ReadTimeout))


def test_second_page_failure_is_mapped_too():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return page([], next_page_uri=f"{LIST_PATH}?Page=1")
        return httpx.Response(502)

    with pytest.raises(ProviderTransientError):
        find_with(handler)


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="<html>"),
    httpx.Response(200, json={"no": "messages"}),
    httpx.Response(200, json={"messages": "nope"}),
    httpx.Response(200, json=[]),
])
def test_find_unreadable_list_is_ambiguous(response):
    with pytest.raises(ProviderAmbiguousError):
        find_with(lambda r: response)


def test_find_errors_never_contain_number_or_body():
    with pytest.raises(ProviderRejectedError) as info:
        find_with(lambda r: twilio_error(400, 21211, f"The 'To' number {TO} is not a valid phone number."))
    assert TO not in str(info.value) and TO[1:] not in str(info.value)
