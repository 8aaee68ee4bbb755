"""An e-mail's unsubscribe link through an in-process HTTP client, with a recording publisher: RFC 8058's
one-click POST records the e-mail marketing opt-out with its proof, a browser gets a confirmation page, and
a forged, tampered or expired link, or a POST that is no one-click request, records nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from connectors.http_server import public_app
from connectors.preferences.links import email_links
from connectors.preferences.state import CustomerDirectory
from connectors.preferences.tokens import make_token, verify
from connectors.preferences.unsubscribe import Unsubscribe
from schemas.catalog import TopicNames
from schemas.codec import codec_for
from schemas.customers import ConsentChange, ConsentSource, ConsentState
from streams.clock import VirtualClock
from streams.metrics import Metrics
from streams.settings import HttpSettings, PreferenceSettings
from tests import factories as f
from tests.unit.test_preference_web import RecordingPublisher

CONFIG = PreferenceSettings(public_base_url="https://prefs.example")
SECRET = CONFIG.secret.get_secret_value().encode()
NOW = f.NOW
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def with_endpoint(test: Callable[[TestClient, RecordingPublisher, CustomerDirectory], Awaitable[None]],
                  locale: str = "pl") -> None:
    directory = CustomerDirectory("p.customers.profiles", "p.customers.consent_state")
    directory.note_profile(f.profile("cust-1", locale=locale, email="ana@example.com"))
    directory.note_consent(f.consent("cust-1", "email", ConsentState.OPTED_IN, purpose="marketing"))
    publisher = RecordingPublisher()
    endpoint = Unsubscribe(CONFIG, directory, publisher, TopicNames("p."), VirtualClock(NOW),
                           Metrics(CollectorRegistry()))

    async def run() -> None:
        async with TestClient(TestServer(public_app(endpoint.routes(), HttpSettings()))) as client:
            await test(client, publisher, directory)

    asyncio.run(run())


def unsubscribe_path(customer_id: str = "cust-1", message_id: str = "msg-42") -> str:
    links = email_links(CONFIG, customer_id, "store-1", message_id, NOW)
    return links.unsubscribe.removeprefix("https://prefs.example")


def test_an_email_link_names_its_message_and_lasts_long_after_the_send() -> None:
    links = email_links(CONFIG, "cust-1", "store-1", "msg-42", NOW)
    assert links.unsubscribe.startswith("https://prefs.example/unsubscribe/")
    assert links.preferences.startswith("https://prefs.example/preferences/")
    claims = verify(SECRET, links.unsubscribe.rsplit("/", 1)[1], NOW + dt.timedelta(days=179))
    assert (claims.customer_id, claims.store_id, claims.message_id) == ("cust-1", "store-1", "msg-42")


def test_a_one_click_post_records_the_email_marketing_opt_out_with_its_proof() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, directory: CustomerDirectory) -> None:
        # What a mailbox provider sends: the body, no cookie, no page in between.
        response = await client.post(unsubscribe_path(), data=ONE_CLICK, headers={"User-Agent": "MailProvider/1"})
        assert response.status == 200 and "Wypisano" in await response.text()
        [(topic, key, value)] = publisher.records
        change = codec_for(ConsentChange).decode(value)
        assert (topic, key) == ("p.customers.consents", b"cust-1")
        assert (change.channel, change.purpose, change.state) == ("email", "marketing", "opted_out")
        assert change.source == ConsentSource.PREFERENCE_CENTRE and change.occurred_at == NOW
        assert change.evidence.inbound_message_id == "msg-42" and change.evidence.user_agent == "MailProvider/1"
        assert "One-Click" in change.evidence.disclosure_text
        assert directory.consent("cust-1")["email:marketing"] == ConsentState.OPTED_OUT

        again = await client.post(unsubscribe_path(), data=ONE_CLICK)  # providers may POST twice
        assert again.status == 200 and len(publisher.records) == 1

    with_endpoint(test)


def test_a_multipart_one_click_post_counts_too() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, _) -> None:
        body = (b'--b0\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
                b"--b0--\r\n")  # RFC 8058 allows multipart/form-data
        response = await client.post(unsubscribe_path(), data=body,
                                     headers={"Content-Type": "multipart/form-data; boundary=b0"})
        assert response.status == 200 and len(publisher.records) == 1

    with_endpoint(test)


def test_a_browser_gets_a_confirmation_page_in_the_customers_language_and_nothing_is_recorded() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, _) -> None:
        response = await client.get(unsubscribe_path())
        page = await response.text()
        assert response.status == 200 and 'dir="rtl"' in page and "הסרה" in page
        assert 'name="List-Unsubscribe" value="One-Click"' in page and 'method="post"' in page
        assert response.headers["Cache-Control"] == "no-store" and publisher.records == []

    with_endpoint(test, locale="he")


def test_forged_tampered_expired_or_foreign_links_and_other_bodies_record_nothing() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, _) -> None:
        good = unsubscribe_path()
        payload, signature = good.rsplit("/", 1)[1].split(".")
        forged = "/unsubscribe/" + make_token(b"guessed-secret", "cust-1", "store-1", NOW + dt.timedelta(days=1), "m")
        other_message = make_token(SECRET, "cust-1", "store-1", NOW + dt.timedelta(days=1), "msg-43").split(".")[0]
        for url, status in ((forged, 403), (f"/unsubscribe/{payload}.{signature[:-2]}xx", 403),
                            (f"/unsubscribe/{other_message}.{signature}", 403), ("/unsubscribe/garbage", 403),
                            ("/unsubscribe/" + make_token(SECRET, "cust-1", "store-1", NOW, "m"), 410),
                            (unsubscribe_path("nobody"), 404)):
            assert (await client.post(url, data=ONE_CLICK)).status == status, url
            assert (await client.get(url)).status == status, url
        assert (await client.post(good, data={"List-Unsubscribe": "Yes"})).status == 400
        assert (await client.post(good)).status == 400
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await client.post(good, data=b"List-Unsubscribe=\xff", headers=headers)).status == 400
        assert publisher.records == []

    with_endpoint(test)
