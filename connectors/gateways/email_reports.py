"""The e-mail gateway's intake of what mail systems report back: hard bounces (DSN) and complaints (ARF).

``POST /email/reports`` takes one report as ``message/rfc822`` (the raw message the bounce mailbox or the
e-mail service's webhook received; see :mod:`connectors.webhooks.email_reports`):

- a hard bounce (``Action: failed``, ``Status: 5.x.x``) becomes the message's ``undelivered`` outcome on
  ``messages.outcomes`` (reason ``undelivered``, ``error_code`` the DSN status, ``detail`` "hard bounce");
- an abuse complaint becomes an e-mail marketing opt-out on ``customers.consents`` (source ``provider``, the
  time, the complained-about message as ``evidence.inbound_message_id``, the report type as the text).

A report is believed only for the message its original's signed ``List-Unsubscribe`` link names (the
preference-centre secret signs it; the report's own headers are not signed by anyone): 403 without one, or
with a forged or altered one. Only marketing e-mail carries that link today, so a report about a
transactional e-mail is answered 202 and dropped (counted, logged). A report we do not act on (a delayed
DSN, another feedback type) is 202 too, so the sender does not retry it; an unreadable body is 400.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from aiohttp import web
from aiokafka.errors import KafkaError

from connectors.errors import ExpiredLinkError, TamperedLinkError
from connectors.preferences import tokens
from connectors.preferences.links import UNSUBSCRIBE_PATH, secret_of
from connectors.providers.smtp import message_id_header
from connectors.webhooks.email_reports import Complaint, HardBounce, read_report
from schemas.catalog import CUSTOMER_CONSENTS, TopicNames
from schemas.codec import encode
from schemas.customers import ConsentChange, ConsentEvidence, ConsentSource, ConsentState
from schemas.messages import OutcomeStatus
from schemas.types import Channel, Purpose
from streams import ids
from streams.clock import Clock
from streams.publish import OutcomeWriter, Publisher, for_receipt
from streams.settings import PreferenceSettings

logger = logging.getLogger(__name__)

PATH = "/email/reports"
PROVIDER = "smtp"
_PREFIX = UNSUBSCRIBE_PATH.split("{", 1)[0]  # "/unsubscribe/"


def bounce_outcome(bounce: HardBounce, claims: tokens.Claims, domain: str, now: dt.datetime):
    """The ``undelivered`` outcome of the bounced message. Pure."""
    assert claims.message_id is not None
    outcome = for_receipt(message_id=claims.message_id, customer_id=claims.customer_id, store_id=claims.store_id,
                          channel=Channel.EMAIL, status=OutcomeStatus.UNDELIVERED, provider=PROVIDER,
                          provider_message_id=message_id_header(claims.message_id, domain), error_code=bounce.status,
                          now=now)
    return outcome.model_copy(update={"detail": f"hard bounce (DSN {bounce.status})"})


def complaint_opt_out(complaint: Complaint, claims: tokens.Claims, now: dt.datetime) -> ConsentChange:
    """The e-mail marketing opt-out an abuse complaint is, with its proof. Pure."""
    change_id = uuid.uuid5(ids.NAMESPACE, f"consent/complaint/{claims.message_id}/{complaint.feedback_type}")
    evidence = ConsentEvidence(inbound_message_id=claims.message_id,
                               disclosure_text=f"ARF feedback report (RFC 5965), Feedback-Type: "
                                               f"{complaint.feedback_type}")
    return ConsentChange(change_id=str(change_id), customer_id=claims.customer_id, store_id=claims.store_id,
                         channel=Channel.EMAIL, purpose=Purpose.MARKETING, state=ConsentState.OPTED_OUT,
                         source=ConsentSource.PROVIDER, occurred_at=now, evidence=evidence)


class EmailReports:
    def __init__(self, preferences: PreferenceSettings, domain: str, publisher: Publisher, outcomes: OutcomeWriter,
                 names: TopicNames, clock: Clock) -> None:
        self._preferences, self._domain = preferences, domain
        self._publisher, self._outcomes = publisher, outcomes
        self._consents_topic, self._clock = names(CUSTOMER_CONSENTS), clock

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PATH, self.take)]

    async def take(self, request: web.Request) -> web.Response:
        now = self._clock.now()
        report = read_report(await request.read())
        if report is None:
            logger.info("e-mail report ignored: not a hard bounce nor an abuse complaint")
            return web.Response(status=202, text="not acted on")
        claims, refusal = self._claims(report.original.list_unsubscribe, now)
        if claims is None:
            return refusal
        try:
            if isinstance(report, HardBounce):
                await self._outcomes.write(bounce_outcome(report, claims, self._domain, now))
            else:
                change = complaint_opt_out(report, claims, now)
                await self._publisher.publish(self._consents_topic, change.customer_id.encode(), encode(change))
        except (KafkaError, TimeoutError) as exc:
            logger.error("e-mail report not recorded message_id=%s: %s", claims.message_id, type(exc).__name__)
            return web.Response(status=503, text="try again")  # the sender retries
        logger.info("e-mail %s recorded message_id=%s", type(report).__name__, claims.message_id)
        return web.Response(status=202, text="recorded")

    def _claims(self, link: str | None, now: dt.datetime) -> tuple[tokens.Claims | None, web.Response]:
        """The signed claims of the original's unsubscribe link, or None and the answer to give."""
        dropped = web.Response(status=202, text="not acted on")
        if not link or _PREFIX not in link:
            logger.info("e-mail report about a message without an unsubscribe link: dropped")
            return None, dropped
        try:
            claims = tokens.verify(secret_of(self._preferences), link.rsplit(_PREFIX, 1)[1], now)
        except TamperedLinkError:
            logger.warning("e-mail report refused: its original's unsubscribe link is not genuine")
            return None, web.Response(status=403, text="the report names no message of ours")
        except ExpiredLinkError:
            logger.info("e-mail report about a message older than its links: dropped")
            return None, dropped
        if claims.message_id is None:  # a preference-page link: signed, but names no message
            return None, web.Response(status=403, text="the report names no message of ours")
        return claims, dropped
