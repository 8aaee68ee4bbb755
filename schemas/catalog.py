"""The topic catalog: every topic's name, key, value model, partitioning and cleanup policy.

Topic creation, the Faust app, gateways, producers, tests and docs all read this one list.
A deployment may prefix every name (``SWITCHBOARD_KAFKA__TOPIC_PREFIX``), which tests use to get
topics of their own on a shared broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.contacts import ContactSuppression
from schemas.customers import ConsentChange, ConsentSnapshot, CustomerProfile, ErasureRequest
from schemas.dead_letter import DeadLetter
from schemas.errors import UnknownTopicError
from schemas.events import StorefrontEvent
from schemas.messages import (
    CampaignLaunch,
    Handoff,
    InboundMessage,
    MessageIntent,
    MessageOutcome,
    SendCommand,
    SendLedgerEntry,
    TimerFired,
)
from schemas.products import CoPurchase
from schemas.types import Channel, Purpose, Record

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    model: type[Record]
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS  # -1: keep for ever
    dead_letters: bool = True  # has a ``<name>.dlq`` companion

    def config(self) -> dict[str, str]:
        if not self.compacted:
            policy = "delete"
        else:  # compacted topics with a retention also forget keys older than it
            policy = "compact" if self.retention_ms < 0 else "compact,delete"
        return {"cleanup.policy": policy, "retention.ms": str(self.retention_ms)}


STOREFRONT_EVENTS = "storefront.events"
CUSTOMER_PROFILES = "customers.profiles"
CUSTOMER_CONSENTS = "customers.consents"
CONSENT_STATE = "customers.consent_state"
CUSTOMER_ERASURES = "customers.erasures"
MESSAGE_INTENTS = "messages.intents"
MESSAGE_OUTCOMES = "messages.outcomes"
MESSAGE_INBOUND = "messages.inbound"
MESSAGE_TIMERS = "messages.timers"
JOURNEY_HANDOFFS = "journeys.handoffs"
CAMPAIGN_LAUNCHES = "campaigns.launches"
MESSAGE_INTENTS_BULK = "messages.intents.bulk"
STOCK_UPDATES = "stock.updates"
PRODUCT_COPURCHASES = "products.copurchases"
CONTACT_SUPPRESSIONS = "contacts.suppressions"


def commands_topic(channel: Channel | str, purpose: Purpose | str = Purpose.TRANSACTIONAL) -> str:
    """Marketing goes to a ``.bulk`` lane of its own, so a campaign backlog never delays an order update."""
    lane = ".bulk" if Purpose(purpose) == Purpose.MARKETING else ""
    return f"messages.commands.{Channel(channel).value}{lane}"


def ledger_topic(channel: Channel | str) -> str:
    return f"gateways.{Channel(channel).value}.ledger"


def dlq_topic(name: str) -> str:
    return f"{name}.dlq"


_BASE: tuple[TopicSpec, ...] = (
    TopicSpec(STOREFRONT_EVENTS, "customer_id", StorefrontEvent),
    TopicSpec(CUSTOMER_PROFILES, "customer_id", CustomerProfile, compacted=True, retention_ms=-1),
    TopicSpec(CUSTOMER_CONSENTS, "customer_id", ConsentChange, retention_ms=-1),  # the audit log: never deleted
    TopicSpec(CONSENT_STATE, "customer_id", ConsentSnapshot, compacted=True, retention_ms=-1, dead_letters=False),
    TopicSpec(CUSTOMER_ERASURES, "customer_id", ErasureRequest, retention_ms=30 * DAY_MS),
    TopicSpec(MESSAGE_INTENTS, "customer_id", MessageIntent),
    *(TopicSpec(commands_topic(c, p), "customer_id", SendCommand) for c in Channel for p in Purpose),
    TopicSpec(MESSAGE_OUTCOMES, "customer_id", MessageOutcome, retention_ms=30 * DAY_MS),
    TopicSpec(MESSAGE_INBOUND, "customer_id", InboundMessage),
    TopicSpec(MESSAGE_TIMERS, "customer_id", TimerFired),  # the worker's own moments that came
    TopicSpec(JOURNEY_HANDOFFS, "customer_id", Handoff, retention_ms=30 * DAY_MS),  # for the support team
    TopicSpec(CAMPAIGN_LAUNCHES, "campaign_id", CampaignLaunch, retention_ms=30 * DAY_MS),  # one per partition
    TopicSpec(MESSAGE_INTENTS_BULK, "customer_id", MessageIntent),  # campaigns: never ahead of order updates
    TopicSpec(STOCK_UPDATES, "sku", StorefrontEvent),  # restocks and subscriptions, re-keyed by SKU to meet
    TopicSpec(PRODUCT_COPURCHASES, "store_id+sku", CoPurchase),  # each placed order, once per SKU: product affinity
    # STOPs from numbers no profile had, keyed by a keyed hash of (sender, channel, contact point): kept for ever
    TopicSpec(CONTACT_SUPPRESSIONS, "contact_key", ContactSuppression, compacted=True, retention_ms=-1,
              dead_letters=False),
    *(
        TopicSpec(ledger_topic(c), "message_id", SendLedgerEntry, compacted=True, retention_ms=30 * DAY_MS,
                  dead_letters=False)
        for c in Channel
    ),
)

CATALOG: tuple[TopicSpec, ...] = _BASE + tuple(
    TopicSpec(dlq_topic(t.name), t.key, DeadLetter, retention_ms=30 * DAY_MS, dead_letters=False)
    for t in _BASE
    if t.dead_letters
)

_BY_NAME = {t.name: t for t in CATALOG}


def spec(name: str) -> TopicSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTopicError(name) from None


@dataclass(frozen=True)
class TopicNames:
    """Resolves catalog names to the names used on a cluster (with the deployment's prefix)."""

    prefix: str = ""

    def __call__(self, name: str) -> str:
        spec(name)
        return f"{self.prefix}{name}"

    def all(self) -> list[str]:
        return [self(t.name) for t in CATALOG]
