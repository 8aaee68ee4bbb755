"""A marketing e-mail's unsubscribe link (RFC 8058 one-click, and a confirmation page for a browser).

``POST /unsubscribe/{token}`` with the body ``List-Unsubscribe=One-Click`` (form-urlencoded or
multipart/form-data, as RFC 8058 allows) is the mailbox provider's one-click request: no cookie, no page,
the opt-out is recorded at once — an e-mail marketing ``opted_out`` ConsentChange on ``customers.consents``,
acknowledged by the broker before the 200. Its proof: source ``preference_centre``, the time, the address and
browser of the request, and the message the link was sent in (the token's ``m`` claim) as
``evidence.inbound_message_id``. ``GET`` shows a confirmation page whose button posts that same body (a
link scanner that follows every address in a mail unsubscribes nobody). A tampered, expired or foreign link
is refused (403/410/404) and a POST without the one-click body is a 400; nothing is published then. A
customer already opted out gets the same answer and nothing is published again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from aiohttp import web
from aiokafka.errors import KafkaError

from connectors.errors import FormEncodingError
from connectors.forms import decode_form, decode_multipart_form
from connectors.preferences.choices import language_of
from connectors.preferences.links import PAGE_PATH, UNSUBSCRIBE_PATH
from connectors.preferences.page import render_unsubscribe_confirm, render_unsubscribed
from connectors.preferences.state import CustomerDirectory
from connectors.preferences.tokens import Claims
from connectors.preferences.web import Refused, customer_for, html_response, refusal
from schemas.catalog import CUSTOMER_CONSENTS, TopicNames
from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentEvidence, ConsentSource, ConsentState, CustomerProfile
from schemas.types import Channel, Purpose
from streams import ids
from streams.clock import Clock
from streams.metrics import Metrics
from streams.publish import Publisher
from streams.settings import PreferenceSettings

logger = logging.getLogger(__name__)

ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058 section 3.1
EVIDENCE_TEXT = "List-Unsubscribe=One-Click (RFC 8058) on the e-mail's unsubscribe link"
USER_AGENT_LIMIT = 512


def opt_out(profile: CustomerProfile, claims: Claims, ip: str | None, user_agent: str | None,
            now: dt.datetime) -> ConsentChange:
    """The e-mail marketing opt-out an unsubscribe link records, with its proof. Pure."""
    evidence = ConsentEvidence(inbound_message_id=claims.message_id, ip=ip,
                               user_agent=(user_agent or "")[:USER_AGENT_LIMIT] or None, disclosure_text=EVIDENCE_TEXT)
    origin = claims.message_id or profile.customer_id
    change_id = uuid.uuid5(ids.NAMESPACE, f"consent/unsubscribe/{origin}/{now.isoformat(timespec='milliseconds')}")
    return ConsentChange(change_id=str(change_id), customer_id=profile.customer_id, store_id=profile.store_id,
                         channel=Channel.EMAIL, purpose=Purpose.MARKETING, state=ConsentState.OPTED_OUT,
                         source=ConsentSource.PREFERENCE_CENTRE, occurred_at=now, evidence=evidence)


class Unsubscribe:
    def __init__(self, config: PreferenceSettings, directory: CustomerDirectory, publisher: Publisher,
                 names: TopicNames, clock: Clock, metrics: Metrics) -> None:
        self._config, self._directory, self._publisher = config, directory, publisher
        self._consents_topic = names(CUSTOMER_CONSENTS)
        self._clock, self._metrics = clock, metrics

    def routes(self) -> list[web.RouteDef]:
        return [web.get(UNSUBSCRIBE_PATH, self.confirm), web.post(UNSUBSCRIBE_PATH, self.one_click)]

    async def confirm(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        try:
            profile, _ = customer_for(self._config, self._directory, token, self._clock.now())
        except Refused as refused:
            return refusal(self._metrics, "unsubscribe_view", refused.kind)
        self._metrics.preference_requests.labels("unsubscribe_view", "ok").inc()
        return html_response(200, render_unsubscribe_confirm(language_of(profile.locale), request.path,
                                                             PAGE_PATH.format(token=token)))

    async def one_click(self, request: web.Request) -> web.Response:
        token, now = request.match_info["token"], self._clock.now()
        try:
            profile, claims = customer_for(self._config, self._directory, token, now)
            if ONE_CLICK not in await _fields(request):
                raise Refused("not_one_click")
            if self._directory.consent(profile.customer_id).get("email:marketing") != ConsentState.OPTED_OUT:
                change = opt_out(profile, claims, request.remote, request.headers.get("User-Agent"), now)
                try:
                    await self._publisher.publish(self._consents_topic, change.customer_id.encode(), encode(change))
                except (KafkaError, TimeoutError) as exc:
                    logger.error("unsubscribe not saved: publishing failed (%s)", type(exc).__name__)
                    raise Refused("unavailable") from exc
                self._directory.note_consent(change)
                self._metrics.preference_changes.labels("consent_opted_out").inc()
        except Refused as refused:
            return refusal(self._metrics, "unsubscribe", refused.kind)
        self._metrics.preference_requests.labels("unsubscribe", "ok").inc()
        logger.info("e-mail marketing unsubscribed message_id=%s", claims.message_id)
        return html_response(200, render_unsubscribed(language_of(profile.locale), PAGE_PATH.format(token=token)))


async def _fields(request: web.Request) -> list[tuple[str, str]]:
    """The body's fields, form-urlencoded or multipart/form-data, read strictly from the raw bytes."""
    raw = await request.read()
    try:
        if request.content_type == "multipart/form-data":
            return decode_multipart_form(raw, request.headers["Content-Type"])
        return decode_form(raw)
    except FormEncodingError as exc:
        logger.info("unsubscribe body refused: %s", exc)
        raise Refused("form") from exc
