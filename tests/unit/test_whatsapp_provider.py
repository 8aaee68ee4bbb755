import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
    UnknownProviderError,
)
from connectors.providers.base import (Currency, DateTime, Media, ProviderReceipt, WhatsAppProvider, WhatsAppRequest, reply_payload,
                                       WhatsAppTemplate)
from connectors.providers.whatsapp_cloud import MetaWhatsAppProvider
from connectors.providers.whatsapp_registry import WHATSAPP_PROVIDERS, build_whatsapp_provider

ROOT = str(Path(__file__).resolve().parents[2])
PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-test-access-token"
TO = "+972541234567"
TEXT = "Your order #1042 has shipped"
WAMID = "wamid.HBgMOTcyNTQxMjM0NTY3FQIAERgSQzVGNEQ1QjA2QUQ3NDg1RTk5AA=="
TEXT_REQUEST = WhatsAppRequest(message_id="msg-1", to=TO, text=TEXT)
TEMPLATE = WhatsAppTemplate(name="shipping_update", language="he", category="utility",
                            body_parameters=("Dana", "#1042"))
URL = f"https://graph.facebook.com/v21.0/{PHONE_NUMBER_ID}/messages"


def meta_error(status, code, message="error", subcode=None, headers=None):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


def accepted(request):
    return httpx.Response(200, json={"messaging_product": "whatsapp",
                                     "contacts": [{"input": TO[1:], "wa_id": TO[1:]}], "messages": [{"id": WAMID}]})


def send_with(handler, request=TEXT_REQUEST, **kwargs):
    """Send ``request`` through a MetaWhatsAppProvider whose HTTP goes to ``handler``."""

    async def main():
        provider = MetaWhatsAppProvider(PHONE_NUMBER_ID, TOKEN, transport=httpx.MockTransport(handler), **kwargs)
        try:
            return await provider.send(request)
        finally:
            await provider.aclose()

    return asyncio.run(main())


def sent_body(request):
    """The JSON body the adapter posts for ``request``."""
    seen = []

    def handler(http_request):
        seen.append(json.loads(http_request.content))
        return accepted(http_request)

    send_with(handler, request)
    return seen[0]


def must_not_send(request):
    raise AssertionError("the adapter sent a request it should have refused")


# --- success and request shapes ------------------------------------------------------------


def test_accepted_message_returns_receipt_with_wamid():
    assert send_with(accepted) == ProviderReceipt(provider="meta_whatsapp", provider_message_id=WAMID,
                                                  status="accepted", segments=None)


def test_request_is_json_post_with_bearer_token_to_the_messages_path():
    seen = []

    def handler(request):
        seen.append(request)
        return accepted(request)

    send_with(handler)
    (request,) = seen
    assert request.method == "POST" and request.url == URL
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"


def test_text_message_shape():
    assert sent_body(TEXT_REQUEST) == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                       "to": "972541234567", "type": "text", "text": {"body": TEXT}}


def test_template_message_shape_with_body_parameters():
    body = sent_body(WhatsAppRequest(message_id="m", to=TO, template=TEMPLATE))
    assert body == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "972541234567", "type": "template",
        "template": {"name": "shipping_update", "language": {"code": "he"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Dana"}, {"type": "text", "text": "#1042"}]}]},
    }


def test_template_with_a_media_header_money_a_date_and_quick_reply_payloads():
    template = WhatsAppTemplate(
        name="order_confirmation", language="nl", category="utility",
        header=Media("document", "https://cdn.example/invoice-1042.pdf", filename="invoice-1042.pdf"),
        body_parameters=("Dana", Currency("€19,99", "EUR", 19990), DateTime("5 augustus 2026")),
        quick_reply_payloads=("msg-1#0", "msg-1#1"))
    components = sent_body(WhatsAppRequest(message_id="m", to=TO, template=template))["template"]["components"]
    assert components == [
        {"type": "header", "parameters": [{"type": "document", "document": {
            "link": "https://cdn.example/invoice-1042.pdf", "filename": "invoice-1042.pdf"}}]},
        {"type": "body", "parameters": [
            {"type": "text", "text": "Dana"},
            {"type": "currency", "currency": {"fallback_value": "€19,99", "code": "EUR", "amount_1000": 19990}},
            {"type": "date_time", "date_time": {"fallback_value": "5 augustus 2026"}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "msg-1#0"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1",
         "parameters": [{"type": "payload", "payload": "msg-1#1"}]},
    ]


def test_an_image_header_is_a_link():
    template = WhatsAppTemplate(name="back_in_stock", language="en", category="utility",
                                header=Media("image", "https://cdn.example/shoe.jpg"))
    [header] = sent_body(WhatsAppRequest(message_id="m", to=TO, template=template))["template"]["components"]
    assert header == {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/shoe.jpg"}}]}


def test_template_without_parameters_has_no_components():
    template = WhatsAppTemplate(name="newsletter_welcome", language="en_US", category="marketing")
    body = sent_body(WhatsAppRequest(message_id="m", to=TO, template=template))
    assert body["template"] == {"name": "newsletter_welcome", "language": {"code": "en_US"}}


def test_button_payloads_make_the_reply_ids_and_come_back_from_them():
    body = sent_body(WhatsAppRequest(message_id="msg-9", to=TO, text="Talk to us?", buttons=("כן", "לא"),
                                     button_payloads=("yes", "no")))
    ids = [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]]
    assert ids == ["msg-9#yes", "msg-9#no"] and [reply_payload(i) for i in ids] == ["yes", "no"]


def test_buttons_make_an_interactive_reply_button_message_with_ids_from_the_message_id():
    body = sent_body(WhatsAppRequest(message_id="msg-9", to=TO, text="Still want it?", buttons=("Yes", "Not now")))
    assert body["type"] == "interactive" and "text" not in body
    assert body["interactive"] == {"type": "button", "body": {"text": "Still want it?"}, "action": {"buttons": [
        {"type": "reply", "reply": {"id": "msg-9#0", "title": "Yes"}},
        {"type": "reply", "reply": {"id": "msg-9#1", "title": "Not now"}},
    ]}}


def test_callback_data_travels_as_biz_opaque_callback_data():
    body = sent_body(WhatsAppRequest(message_id="m", to=TO, template=TEMPLATE, callback_data="send-7f3a"))
    assert body["biz_opaque_callback_data"] == "send-7f3a"
    assert "biz_opaque_callback_data" not in sent_body(TEXT_REQUEST)


@pytest.mark.parametrize("to", ["+972541234567", "972541234567", "+972 54-123-4567", "(972) 541234567"])
def test_recipient_is_sent_as_digits_only(to):
    assert sent_body(WhatsAppRequest(message_id="m", to=to, text="hi"))["to"] == "972541234567"


def test_base_url_and_api_version_are_configurable():
    seen = []

    def handler(request):
        seen.append(str(request.url))
        return accepted(request)

    send_with(handler, base_url="http://127.0.0.1:9999/", api_version="v23.0")
    assert seen == [f"http://127.0.0.1:9999/v23.0/{PHONE_NUMBER_ID}/messages"]


# --- refused before sending ----------------------------------------------------------------


@pytest.mark.parametrize("request_, reason", [
    (WhatsAppRequest(message_id="m", to=TO), "exactly one"),
    (WhatsAppRequest(message_id="m", to=TO, text="hi", template=TEMPLATE), "exactly one"),
    (WhatsAppRequest(message_id="m", to=TO, text="   "), "empty"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("a", "b", "c", "d")), "at most 3"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("x" * 21,)), "1-20"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("",)), "1-20"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("Yes", "Yes")), "unique"),
    (WhatsAppRequest(message_id="m", to=TO, text="", buttons=("Yes",)), "body text"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("Yes", "No"), button_payloads=("yes",)), "payload"),
    (WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=("Yes", "No"), button_payloads=("y", "y")), "payload"),
    (WhatsAppRequest(message_id="m" * 300, to=TO, text="pick", buttons=("Yes",)), "too long"),
    (WhatsAppRequest(message_id="m", to=TO, template=TEMPLATE, buttons=("Yes",)), "buttons need text"),
    (WhatsAppRequest(message_id="m", to=TO, text="hi", callback_data="x" * 513), "512"),
    (WhatsAppRequest(message_id="m", to="not a number", text="hi"), "phone number"),
    (WhatsAppRequest(message_id="m", to="+1234567890123456", text="hi"), "phone number"),
    (WhatsAppRequest(message_id="m", to="", text="hi"), "phone number"),
    (WhatsAppRequest(message_id="m", to=TO, template=WhatsAppTemplate(
        "t", "en", "utility", quick_reply_payloads=("x" * 257,))), "1-256"),
    (WhatsAppRequest(message_id="m", to=TO, template=WhatsAppTemplate(
        "t", "en", "utility", body_parameters=(Currency("19.99", "euro", 19990),))), "ISO 4217"),
    (WhatsAppRequest(message_id="m", to=TO, template=WhatsAppTemplate(
        "t", "en", "utility", header=Media("image", "http://cdn.example/a.jpg"))), "https"),
    (WhatsAppRequest(message_id="m", to=TO, template=WhatsAppTemplate(
        "t", "en", "utility", header=Media("image", "https://cdn.example/a.jpg", filename="a.jpg"))), "filename"),
])
def test_invalid_requests_are_rejected_before_anything_is_sent(request_, reason):
    with pytest.raises(ProviderRejectedError, match=reason) as info:
        send_with(must_not_send, request_)
    assert info.value.code is None and TO not in str(info.value)


def test_exactly_three_buttons_of_twenty_characters_are_fine():
    titles = ("a" * 20, "b" * 20, "c" * 20)
    body = sent_body(WhatsAppRequest(message_id="m", to=TO, text="pick", buttons=titles))
    assert [b["reply"]["title"] for b in body["interactive"]["action"]["buttons"]] == list(titles)


# --- Graph API error mapping ---------------------------------------------------------------


@pytest.mark.parametrize("status, code, retry_after", [
    (400, 130429, 1.0),    # throughput: 1 s when Meta gives no Retry-After
    (400, 131056, 6.0),    # (business, customer) pair limit: ~1 message / 6 s
    (400, 4, None),        # app-level rate limit
    (400, 80007, None),    # WABA rate limit
    (500, 1, None),        # unknown
    (503, 2, None),        # service
    (500, 131000, None),   # something went wrong
])
def test_rate_limits_and_temporary_failures_are_transient(status, code, retry_after):
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: meta_error(status, code))
    assert info.value.code == str(code) and info.value.retry_after == retry_after
    assert info.value.provider == "meta_whatsapp"


def test_130429_honours_retry_after_seconds():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: meta_error(400, 130429, headers={"Retry-After": "3"}))
    assert info.value.retry_after == 3.0


def test_130429_honours_retry_after_http_date():
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: meta_error(400, 130429, headers={"Retry-After": when}))
    assert 25 <= info.value.retry_after <= 30


def test_131056_waits_six_seconds_whatever_the_header_says():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: meta_error(400, 131056, headers={"Retry-After": "1"}))
    assert info.value.retry_after == 6.0


def test_http_429_without_a_meta_body_is_transient():
    with pytest.raises(ProviderTransientError) as info:
        send_with(lambda r: httpx.Response(429, headers={"Retry-After": "2"}))
    assert info.value.retry_after == 2.0 and info.value.code is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_without_a_meta_body_is_transient(status):
    with pytest.raises(ProviderTransientError):
        send_with(lambda r: httpx.Response(status, text="<html>upstream trouble</html>"))


@pytest.mark.parametrize("code", [131047, 131026, 131048, 131049, 100, 132000, 132001, 132012, 132015])
def test_permanent_message_errors_are_rejected_with_their_code(code):
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: meta_error(400, code, f"(#{code}) something about this message"))
    assert info.value.code == str(code)


def test_outside_the_24_hour_window_is_rejected_with_131047_and_a_readable_message():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: meta_error(400, 131047, "(#131047) Re-engagement message", subcode=2494010))
    assert info.value.code == "131047"
    assert "Re-engagement" in str(info.value) and "2494010" in str(info.value) and "AbCdEf123" in str(info.value)


@pytest.mark.parametrize("status, code", [(401, 190), (400, 190), (403, 10), (400, 0), (400, 200), (400, 131031),
                                          (401, None), (403, None)])
def test_bad_credentials_or_permissions_are_misconfigured(status, code):
    response = meta_error(status, code, "Error validating access token") if code is not None \
        else httpx.Response(status, text="forbidden")
    with pytest.raises(ProviderMisconfiguredError) as info:
        send_with(lambda r: response)
    assert info.value.code == (str(code) if code is not None else None)


def test_unknown_phone_number_id_is_misconfigured_not_a_rejected_message():
    with pytest.raises(ProviderMisconfiguredError) as info:
        send_with(lambda r: meta_error(400, 100, "Unsupported post request. Object with ID does not exist", 33))
    assert info.value.code == "100"


def test_redirect_means_wrong_base_url_so_misconfigured():
    with pytest.raises(ProviderMisconfiguredError):
        send_with(lambda r: httpx.Response(301, headers={"Location": "https://elsewhere.example/"}))


def test_non_json_4xx_is_rejected_without_code():
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: httpx.Response(404, text="not found"))
    assert info.value.code is None


@pytest.mark.parametrize("error", [{"code": "not-a-number"}, "oops", {"code": True}, None])
def test_odd_error_bodies_still_map_by_http_status(error):
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: httpx.Response(400, json={"error": error}))
    assert info.value.code is None


def test_error_message_never_contains_the_phone_number_or_text():
    detail = f"(#131030) Recipient phone number {TO} not in allowed list; also 972541234567"
    with pytest.raises(ProviderRejectedError) as info:
        send_with(lambda r: meta_error(400, 131030, detail))
    text = str(info.value)
    assert TO not in text and TO[1:] not in text and TEXT not in text
    assert "*67" in text  # masked, last two digits kept


# --- 2xx that we cannot read ---------------------------------------------------------------


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="<html>ok</html>"),
    httpx.Response(200, json={"messaging_product": "whatsapp"}),
    httpx.Response(200, json={"messages": []}),
    httpx.Response(200, json={"messages": [{"id": ""}]}),
    httpx.Response(200, json=["not", "an", "object"]),
])
def test_unreadable_2xx_is_ambiguous_because_meta_may_have_taken_it(response):
    with pytest.raises(ProviderAmbiguousError):
        send_with(lambda r: response)


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
    for handler in (raising(httpx.ReadTimeout), lambda r: httpx.Response(418), lambda r: meta_error(400, 131047)):
        with pytest.raises(ProviderError):
            send_with(handler)


# --- construction, secrets, registry -------------------------------------------------------


@pytest.mark.parametrize("args", [("", TOKEN), (PHONE_NUMBER_ID, ""), (PHONE_NUMBER_ID, SecretStr(""))])
def test_empty_credentials_are_misconfigured(args):
    with pytest.raises(ProviderMisconfiguredError):
        MetaWhatsAppProvider(*args)


def test_secret_str_token_is_sent_as_bearer():
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        return accepted(request)

    async def main():
        async with MetaWhatsAppProvider(PHONE_NUMBER_ID, SecretStr(TOKEN),
                                        transport=httpx.MockTransport(handler)) as provider:
            await provider.send(TEXT_REQUEST)

    asyncio.run(main())
    assert seen == [f"Bearer {TOKEN}"]


def test_repr_of_provider_and_request_hides_token_number_and_text():
    provider = MetaWhatsAppProvider(PHONE_NUMBER_ID, TOKEN)
    asyncio.run(provider.aclose())
    assert TOKEN not in repr(provider)
    assert TO not in repr(TEXT_REQUEST) and TEXT not in repr(TEXT_REQUEST)


def test_success_log_has_message_id_but_no_number_text_or_wamid(caplog):
    caplog.set_level("DEBUG", logger="connectors.providers.whatsapp_cloud")
    send_with(accepted)
    logged = caplog.text
    assert "msg-1" in logged
    assert TO[1:] not in logged and TEXT not in logged and WAMID not in logged and TOKEN not in logged


def test_provider_satisfies_whatsapp_provider_protocol():
    provider = MetaWhatsAppProvider(PHONE_NUMBER_ID, TOKEN)
    asyncio.run(provider.aclose())
    assert isinstance(provider, WhatsAppProvider) and provider.name == "meta_whatsapp"


def test_registry_builds_meta_whatsapp_by_name():
    provider = build_whatsapp_provider(" Meta_WhatsApp ", phone_number_id=PHONE_NUMBER_ID, access_token=TOKEN)
    asyncio.run(provider.aclose())
    assert isinstance(provider, MetaWhatsAppProvider) and "meta_whatsapp" in WHATSAPP_PROVIDERS


def test_registry_rejects_unknown_name_listing_known_ones():
    with pytest.raises(UnknownProviderError, match="meta_whatsapp") as info:
        build_whatsapp_provider("carrier-pigeon")
    assert isinstance(info.value, LookupError)


def test_adapter_modules_do_not_import_faust():
    code = ("import sys, connectors.providers.whatsapp_registry, connectors.webhooks.meta_events, "
            "connectors.webhooks.meta_signature, connectors.sandbox.whatsapp; "
            "assert 'faust' not in sys.modules, 'faust imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
