"""The preference centre's HTTP side: show a customer's preferences, save what they change, refuse bad links.

``GET /preferences/{token}`` renders the page; ``POST`` to the same address publishes the changes
(ConsentChange records on ``customers.consents``, a new profile on ``customers.profiles``, keyed by
customer id, each acknowledged by the broker) and then shows "saved". The token is the credential: it
is checked on every request, must be repeated in the form (so a form cannot be posted to another link),
and never logged — the server runs without an access log for that reason.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from aiohttp import web
from aiokafka.errors import KafkaError

from connectors.errors import ExpiredLinkError, FormEncodingError, PreferenceFormError, TamperedLinkError
from connectors.forms import decode_form
from connectors.preferences import tokens
from connectors.preferences.choices import LANGUAGES, Changes, Proof, changes, language_of, parse_form
from connectors.preferences.links import PAGE_PATH, link_for, secret_of
from connectors.preferences.page import disclosure, render_form, render_refusal, render_saved
from connectors.preferences.state import CustomerDirectory
from schemas.catalog import CUSTOMER_CONSENTS, CUSTOMER_PROFILES, TopicNames
from schemas.codec import encode
from schemas.customers import ConsentState, CustomerProfile
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import Publisher
from streams.settings import PreferenceSettings

__all__ = ["PATH", "PreferenceCentre", "Refused", "customer_for", "html_response", "link_for", "refusal"]

logger = logging.getLogger(__name__)

PATH = PAGE_PATH

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",  # the address is a credential: never hand it to another site
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class Refused(Exception):
    """A request refused with the page of ``kind`` (see :data:`texts.REFUSALS`)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def customer_for(config: PreferenceSettings, directory: CustomerDirectory, token: str,
                 now: dt.datetime) -> tuple[CustomerProfile, tokens.Claims]:
    """The customer a link opens, with its claims; :class:`Refused` for a tampered, expired or foreign link."""
    try:
        claims = tokens.verify(secret_of(config), token, now)
    except TamperedLinkError as exc:
        raise Refused("tampered") from exc
    except ExpiredLinkError as exc:
        raise Refused("expired") from exc
    profile = directory.profile(claims.customer_id)
    if profile is None or profile.store_id != claims.store_id:
        raise Refused("unknown")
    return profile, claims


class PreferenceCentre:
    def __init__(self, config: PreferenceSettings, directory: CustomerDirectory, publisher: Publisher,
                 names: TopicNames, clock: Clock, metrics: Metrics) -> None:
        self._config, self._directory, self._publisher = config, directory, publisher
        self._consents_topic, self._profiles_topic = names(CUSTOMER_CONSENTS), names(CUSTOMER_PROFILES)
        self._clock, self._metrics = clock, metrics

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.show), web.post(PATH, self.save)]

    async def show(self, request: web.Request) -> web.Response:
        token, now = request.match_info["token"], self._clock.now()
        try:
            profile = self._customer(token, now)
        except Refused as refused:
            return self._refuse("view", refused.kind)
        consent = self._directory.consent(profile.customer_id)
        self._metrics.preference_requests.labels("view", "ok").inc()
        return html_response(200, render_form(profile, consent, token, request.path, now))

    async def save(self, request: web.Request) -> web.Response:
        token, now = request.match_info["token"], self._clock.now()
        try:
            profile = self._customer(token, now)
            try:
                form = dict(decode_form(await request.read()))  # the link was checked first
            except FormEncodingError as exc:
                logger.info("preference form refused: %s", exc)
                raise Refused("form") from exc
            if not hmac.compare_digest(form.get("token", "").encode("utf-8", "surrogatepass"),
                                       token.encode("utf-8", "surrogatepass")):
                raise Refused("mismatch")
            try:
                choices = parse_form(form, profile)
            except PreferenceFormError as exc:
                logger.info("preference form refused: %s", exc)
                raise Refused("form") from exc
            shown = form.get("shown_language", "")
            proof = Proof(ip=request.remote, user_agent=request.headers.get("User-Agent"),
                          disclosure_text=disclosure(shown if shown in LANGUAGES else language_of(profile.locale)),
                          disclosure_version=self._config.disclosure_version)
            result = changes(profile, self._directory.consent(profile.customer_id), choices, proof, now)
            try:
                await self._publish(result)
            except (KafkaError, TimeoutError) as exc:
                logger.error("preferences not (fully) saved: publishing failed (%s)", type(exc).__name__)
                raise Refused("unavailable") from exc
        except Refused as refused:
            return self._refuse("save", refused.kind)
        self._metrics.preference_requests.labels("save", "ok").inc()
        logger.info("preferences saved: %d consent change(s), profile %s", len(result.consent),
                    "updated" if result.profile else "unchanged")
        return html_response(200, render_saved(choices.language, request.path))

    def _customer(self, token: str, now: dt.datetime) -> CustomerProfile:
        return customer_for(self._config, self._directory, token, now)[0]

    async def _publish(self, result: Changes) -> None:
        """Each record is noted as the customer's state once the broker has it, so a retry after a partial
        failure publishes only what is still missing."""
        for change in result.consent:
            await self._publisher.publish(self._consents_topic, change.customer_id.encode(), encode(change))
            self._directory.note_consent(change)
            kind = "opted_in" if change.state == ConsentState.OPTED_IN else "opted_out"
            self._metrics.preference_changes.labels(f"consent_{kind}").inc()
        if result.profile is not None:
            profile = result.profile
            await self._publisher.publish(self._profiles_topic, profile.customer_id.encode(), encode(profile))
            self._directory.note_profile(profile)
            self._metrics.preference_changes.labels("profile").inc()

    def _refuse(self, action: str, kind: str) -> web.Response:
        return refusal(self._metrics, action, kind)


def refusal(metrics: Metrics, action: str, kind: str) -> web.Response:
    metrics.preference_requests.labels(action, kind).inc()
    logger.info("preference %s refused: %s", action, kind)
    status, body = render_refusal(kind)
    return html_response(status, body)


def html_response(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8", headers=HEADERS)
