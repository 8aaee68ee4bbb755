"""The preference centre on the real broker, driven through Debian's chromium (headless, via WebDriver).

A customer opens their signed link, sees their contact points masked, changes their choices and saves;
the consent changes (with proof) and the new profile are then on Kafka. Tampered, expired and foreign
links are refused in the browser and publish nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from connectors.preferences.tokens import make_token
from schemas.catalog import CONSENT_STATE, CUSTOMER_CONSENTS, CUSTOMER_PROFILES, TopicNames
from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentSnapshot, ConsentSource, ConsentState, CustomerProfile
from schemas.types import Channel
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.support import ROOT, Child, consume_until, env_of, http_ok, produce, wait_until

pytestmark = pytest.mark.integration

INSTALL = "run `make browser` (Debian: apt-get install -y chromium chromium-driver)"
WAIT = 15.0  # seconds for a page to come back; explicit waits return as soon as it is there


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    """Debian's chromium, headless, through Debian's chromedriver (never a downloaded one). Called in the
    test itself, not a fixture, so a machine without them FAILS the test (a fixture would make it an error)."""
    missing = [tool for tool in ("chromium", "chromedriver") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"this test drives a real browser, but {' and '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not on PATH: {INSTALL}", pytrace=False)
    options = Options()
    options.binary_location = shutil.which("chromium")
    # --no-sandbox: chromium refuses to start as root (CI containers) with its sandbox on.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1024,900", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver: WebDriver, selector: str) -> WebElement:
    return WebDriverWait(driver, WAIT).until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector)))


def status_of(url: str, form: dict[str, str] | None = None) -> int:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def record_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","))
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def signed_link(settings: Settings, customer_id: str, store_id: str) -> str:
    """The link as an operator makes it: ``switchboard preference-link``."""
    command = [sys.executable, "-m", "connectors.cli", "preference-link", customer_id, "--store", store_id]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, **env_of(settings)}, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.strip()


@dataclass(frozen=True)
class Visit:
    """What the browser saw and sent while the customer saved their choices."""

    disclosure: str
    user_agent: str
    submitted: dt.datetime  # just before the click on Save
    answered: dt.datetime  # once the "saved" page was there


def refused_in_the_browser(browser: WebDriver, link: str, links: dict[str, str]) -> None:
    """Altered, expired and foreign links show a refusal page; a genuine form posted to an expired link or
    carrying another token is refused on submit."""
    for kind, status, heading in (("tampered", 403, "This link is not valid"),
                                  ("expired", 410, "This link has expired"),
                                  ("stranger", 404, "We could not find your preferences")):
        browser.get(links[kind])
        assert shown(browser, "#refused h1").text == heading
        assert status_of(links[kind]) == status
    browser.get(link)
    browser.execute_script("arguments[0].action = arguments[1]", shown(browser, "#preferences-form"), links["expired"])
    browser.find_element(By.CSS_SELECTOR, "label[for=marketing_email]").click()
    browser.find_element(By.ID, "save").click()
    assert shown(browser, "#refused h1").text == "This link has expired"
    assert status_of(link, {"token": links["tampered"].rsplit("/", 1)[1], "language": "en", "pause": "0"}) == 403


def change_preferences(browser: WebDriver, link: str) -> Visit:
    """Untick SMS marketing, tick e-mail marketing, prefer WhatsApp, switch to Dutch, pause for 30 days; save."""
    browser.get(link)
    shown(browser, "#preferences-form")
    page = browser.page_source
    assert "+97250•••4567" in page and "a•••@example.com" in page
    assert "972501234567" not in page and "ana@example.com" not in page  # never in full, not even hidden
    assert ticked(browser) == [True, False, False]
    browser.find_element(By.CSS_SELECTOR, "label[for=marketing_sms]").click()  # labels are wired to their boxes
    browser.find_element(By.CSS_SELECTOR, "label[for=marketing_email]").click()
    Select(browser.find_element(By.ID, "preferred")).select_by_value("whatsapp")
    Select(browser.find_element(By.ID, "language")).select_by_value("nl")
    Select(browser.find_element(By.ID, "pause")).select_by_value("30")
    disclosure = browser.find_element(By.ID, "disclosure").text
    user_agent = browser.execute_script("return navigator.userAgent")
    submitted = dt.datetime.now(dt.timezone.utc) - dt.timedelta(milliseconds=1)  # Avro keeps milliseconds
    browser.find_element(By.ID, "save").click()
    assert shown(browser, "#saved h1").text == "Opgeslagen"
    return Visit(disclosure, user_agent, submitted, dt.datetime.now(dt.timezone.utc))


def ticked(browser: WebDriver) -> list[bool]:
    return [browser.find_element(By.ID, f"marketing_{c}").is_selected() for c in ("sms", "whatsapp", "email")]


def test_a_customer_changes_their_preferences_in_the_browser_and_the_changes_reach_kafka(
        settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    names, servers = TopicNames(settings.kafka.topic_prefix), settings.kafka.bootstrap_servers
    profile = f.profile(f.uid(), phone="+972501234567", whatsapp=None, email="ana@example.com", locale="en",
                        channel_preferences=[Channel.SMS, Channel.EMAIL])
    key = profile.customer_id.encode()
    produce(servers, names(CUSTOMER_PROFILES), [(key, encode(profile))])
    # What the worker writes when it folds the customer's consent ledger: SMS marketing on, e-mail off.
    produce(servers, names(CONSENT_STATE), [(key, encode(ConsentSnapshot(
        customer_id=profile.customer_id, store_id=profile.store_id, updated_at=f.NOW,
        slots={"sms:marketing": ConsentState.OPTED_IN, "email:marketing": ConsentState.OPTED_OUT,
               "sms:transactional": ConsentState.OPTED_IN})))])
    base = settings.preferences.public_base_url
    secret, now = settings.preferences.secret.get_secret_value().encode(), dt.datetime.now(dt.timezone.utc)

    with headless_chromium() as browser:
        centre = Child(["preferences"], settings, tmp_path / "preferences.log")
        try:
            wait_until(lambda: http_ok(f"{base}/health"), 60.0, "preference centre serving", centre)
            link = signed_link(settings, profile.customer_id, profile.store_id)
            assert link.startswith(f"{base}/preferences/")
            refused_in_the_browser(browser, link, {
                "tampered": link[:-1] + ("A" if link[-1] != "A" else "B"),
                "expired": f"{base}/preferences/" + make_token(secret, profile.customer_id, profile.store_id,
                                                               now - dt.timedelta(hours=1)),
                "stranger": f"{base}/preferences/" + make_token(secret, "nobody", profile.store_id,
                                                                now + dt.timedelta(hours=1)),
            })
            visit = change_preferences(browser, link)
            browser.get(link)  # coming back shows the new choices at once, in Dutch
            shown(browser, "#preferences-form")
            assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "nl"
            assert ticked(browser) == [False, False, True]
            assert Select(browser.find_element(By.ID, "preferred")).first_selected_option.text == "WhatsApp"
        finally:
            centre.stop()

    changes = consume_until(servers, names(CUSTOMER_CONSENTS), lambda seen: len(seen) >= 2, 60.0, ConsentChange)
    assert {(c.channel, c.state) for _, c in changes} == {("sms", "opted_out"), ("email", "opted_in")}
    for record_key, change in changes:
        assert record_key == key and change.customer_id == profile.customer_id and change.store_id == "store-1"
        assert change.purpose == "marketing" and change.source == ConsentSource.PREFERENCE_CENTRE
        assert visit.submitted <= change.occurred_at <= visit.answered
        assert change.evidence.ip == "127.0.0.1" and change.evidence.user_agent == visit.user_agent
        assert change.evidence.disclosure_text == visit.disclosure
        assert change.evidence.disclosure_version == settings.preferences.disclosure_version
    assert len({c.change_id for _, c in changes}) == 2

    profiles = consume_until(servers, names(CUSTOMER_PROFILES), lambda seen: len(seen) >= 2, 60.0, CustomerProfile)
    record_key, new = profiles[-1]
    assert record_key == key and new.locale == "nl" and new.channel_preferences == ["whatsapp", "sms", "email"]
    assert visit.submitted <= new.updated_at <= visit.answered
    assert new.marketing_paused_until == new.updated_at + dt.timedelta(days=30)
    untouched = {"channel_preferences", "locale", "marketing_paused_until", "updated_at"}
    assert new.model_dump(exclude=untouched) == profile.model_dump(exclude=untouched)

    # The refused requests published nothing: the customer's one save is all there is.
    assert record_count(servers, names(CUSTOMER_CONSENTS)) == 2
    assert record_count(servers, names(CUSTOMER_PROFILES)) == 2
