"""The preference centre's handlers through an in-process HTTP client, with a recording publisher:
who gets which page, what a save publishes, and that a failed publish changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry

from connectors.http_server import public_app
from connectors.preferences.state import CustomerDirectory
from connectors.preferences.tokens import make_token
from connectors.preferences.web import PreferenceCentre, link_for
from schemas.catalog import TopicNames
from schemas.codec import codec_for
from schemas.customers import ConsentChange, ConsentSource, ConsentState, CustomerProfile
from streams.clock import VirtualClock
from streams.metrics import Metrics
from streams.settings import HttpSettings, PreferenceSettings
from tests import factories as f

CONFIG = PreferenceSettings(public_base_url="https://prefs.example")
SECRET = CONFIG.secret.get_secret_value().encode()
NOW = f.NOW


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None]] = []
        self.fail = fail

    async def publish(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if self.fail:
            raise KafkaConnectionError("broker gone")
        self.records.append((topic, key, value))


def with_centre(test: Callable[[TestClient, RecordingPublisher, CustomerDirectory, Metrics], Awaitable[None]],
                fail: bool = False) -> None:
    directory = CustomerDirectory("p.customers.profiles", "p.customers.consent_state")
    directory.note_profile(f.profile("cust-1", phone="+48601234567", whatsapp=None, email="ana@example.com",
                                     channel_preferences=["sms"]))
    directory.note_consent(f.consent("cust-1", "sms", ConsentState.OPTED_IN, purpose="marketing"))
    publisher, metrics = RecordingPublisher(fail), Metrics(CollectorRegistry())
    centre = PreferenceCentre(CONFIG, directory, publisher, TopicNames("p."), VirtualClock(NOW), metrics)

    async def run() -> None:
        async with TestClient(TestServer(public_app(centre.routes(), HttpSettings()))) as client:
            await test(client, publisher, directory, metrics)

    asyncio.run(run())


def path(customer_id: str = "cust-1", store_id: str = "store-1", expires_in: float = 3600) -> str:
    return "/preferences/" + make_token(SECRET, customer_id, store_id, NOW + dt.timedelta(seconds=expires_in))


def test_the_link_an_operator_prints_opens_the_customers_page_and_nothing_is_cached_or_leaked() -> None:
    link = link_for(CONFIG, "cust-1", "store-1", NOW)
    assert link.startswith("https://prefs.example/preferences/")

    async def test(client: TestClient, *_) -> None:
        response = await client.get(link.removeprefix("https://prefs.example"))
        assert response.status == 200 and "+48601•••4567" in await response.text()
        assert response.headers["Cache-Control"] == "no-store" and response.headers["Referrer-Policy"] == "no-referrer"
        assert "form-action 'self'" in response.headers["Content-Security-Policy"]

    with_centre(test)


def test_bad_links_get_their_refusal_status() -> None:
    async def test(client: TestClient, _publisher, _directory, metrics: Metrics) -> None:
        good = path()
        for url, status in ((good[:-2] + "xx", 403), (path(expires_in=-1), 410), (path(expires_in=0), 410),
                            (path("nobody"), 404), (path(store_id="store-2"), 404), ("/preferences/garbage", 403)):
            assert (await client.get(url)).status == status, url
        assert metrics.preference_requests.labels("view", "unknown")._value.get() == 2

    with_centre(test)


def test_a_save_publishes_each_change_keyed_by_customer_and_shows_it_at_once() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, directory: CustomerDirectory, _) -> None:
        url = path()
        form = {"token": url.rsplit("/", 1)[1], "shown_language": "en", "marketing_email": "yes",
                "preferred": "email", "language": "pl", "pause": "7"}
        response = await client.post(url, data=form, headers={"User-Agent": "TestBrowser/1"})
        assert response.status == 200 and "Zapisano" in await response.text()
        assert [(topic, key) for topic, key, _ in publisher.records] == [("p.customers.consents", b"cust-1")] * 2 + [
            ("p.customers.profiles", b"cust-1")]
        consent = [codec_for(ConsentChange).decode(v) for t, _, v in publisher.records if t.endswith("consents")]
        assert {(c.channel, c.state) for c in consent} == {("sms", "opted_out"), ("email", "opted_in")}
        assert all(c.source == ConsentSource.PREFERENCE_CENTRE and c.evidence.user_agent == "TestBrowser/1"
                   and c.evidence.ip == "127.0.0.1" and c.evidence.disclosure_version == CONFIG.disclosure_version
                   for c in consent)
        profile = codec_for(CustomerProfile).decode(publisher.records[-1][2])
        assert profile.channel_preferences == ["email", "sms"] and profile.locale == "pl"
        assert profile.marketing_paused_until == NOW + dt.timedelta(days=7)
        assert directory.profile("cust-1") == profile and directory.consent("cust-1")["sms:marketing"] == "opted_out"

        again = await client.post(url, data={**form, "pause": "keep"})  # the same choices again: nothing new
        assert again.status == 200 and len(publisher.records) == 3

    with_centre(test)


def test_a_form_for_another_link_or_with_values_never_offered_is_refused() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, *_) -> None:
        url = path()
        token = url.rsplit("/", 1)[1]
        other = path("cust-2").rsplit("/", 1)[1]
        assert (await client.post(url, data={"token": other, "language": "en"})).status == 403
        assert (await client.post(url, data={"language": "en"})).status == 403
        assert (await client.post(url, data={"token": token, "language": "fr"})).status == 400
        assert (await client.post(url, data={"token": token, "language": "en", "preferred": "fax"})).status == 400
        assert (await client.post(url, data={"token": token, "language": "en", "pause": "365"})).status == 400
        assert publisher.records == []

    with_centre(test)


def test_a_badly_encoded_form_is_refused_with_400_after_the_link_is_checked_never_a_500() -> None:
    async def test(client: TestClient, publisher: RecordingPublisher, *_) -> None:
        url = path()
        token = url.rsplit("/", 1)[1]
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        for body in (b"token=" + token.encode() + b"&language=\xff", b"token=" + token.encode() + b"&language=%FF"):
            assert (await client.post(url, data=body, headers=headers)).status == 400
        forged = "/preferences/" + "x" * len(token)
        assert (await client.post(forged, data=b"language=\xff", headers=headers)).status == 403
        assert publisher.records == []

    with_centre(test)


def test_when_the_broker_is_gone_the_customer_is_told_and_their_state_is_unchanged() -> None:
    async def test(client: TestClient, _publisher, directory: CustomerDirectory, metrics: Metrics) -> None:
        url = path()
        response = await client.post(url, data={"token": url.rsplit("/", 1)[1], "language": "nl", "pause": "0"})
        assert response.status == 503 and "Nothing was changed" in await response.text()
        assert directory.profile("cust-1").locale == "en"
        assert metrics.preference_requests.labels("save", "unavailable")._value.get() == 1

    with_centre(test, fail=True)
