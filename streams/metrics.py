"""Every Prometheus metric of Switchboard, built from an injectable registry.

Labels are bounded vocabularies only (event type, channel, status, reason, stage, provider, result):
never a customer, message or template id.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.events_in = Counter(
            "switchboard_storefront_events_total", "Storefront events read.", ["event_type"], registry=registry
        )
        self.intents = Counter("switchboard_intents_total", "Message intents emitted.", ["purpose"], registry=registry)
        self.state_updates = Counter(
            "switchboard_state_updates_total", "Customer state records applied.", ["kind"], registry=registry
        )
        self.commands = Counter(
            "switchboard_send_commands_total", "Send commands emitted.", ["channel"], registry=registry
        )
        self.suppressions = Counter(
            "switchboard_suppressions_total", "Messages suppressed.", ["reason"], registry=registry
        )
        self.dead_letters = Counter(
            "switchboard_dead_letters_total", "Records sent to a dead-letter topic.", ["stage"], registry=registry
        )
        self.outcomes = Counter(
            "switchboard_outcomes_total", "Outcomes written.", ["channel", "status"], registry=registry
        )
        self.event_to_command = Histogram(
            "switchboard_event_to_command_seconds",
            "From the trigger reaching Kafka to its send command being produced.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.provider_calls = Counter(
            "switchboard_provider_calls_total", "Provider API calls.", ["provider", "result"], registry=registry
        )
        self.provider_latency = Histogram(
            "switchboard_provider_call_seconds", "Provider API call time.", ["provider"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.keywords = Counter(
            "switchboard_keyword_replies_total", "Replies recognised as keywords, by what they did.", ["action"],
            registry=registry,
        )
        self.scheduled = Counter(
            "switchboard_scheduled_total", "Sends deferred to a later moment, by why (quiet_hours, frequency_cap).",
            ["reason"], registry=registry,
        )
        self.journeys = Counter(
            "switchboard_journeys_total", "Journey instances entered and exited, by journey (configured names).",
            ["journey", "event"], registry=registry,
        )
        self.campaign_recipients = Counter(
            "switchboard_campaign_recipients_total", "Customers a campaign's segment selected (intents published).",
            registry=registry,
        )
        self.stock_notices = Counter(
            "switchboard_stock_notices_total", "Back-in-stock notices fanned out to subscribers.", registry=registry,
        )
        self.erasures = Counter(
            "switchboard_erasures_total", "Customers erased (GDPR), and records of erased customers ignored.",
            ["kind"], registry=registry,
        )
        self.fallbacks = Counter(
            "switchboard_fallbacks_total", "Messages re-sent on their next channel after a failed send.",
            ["failed_channel"], registry=registry,
        )
        self.replies_replayed = Counter(
            "switchboard_replies_replayed_total",
            "Replies already applied (a provider's redelivery, or a replay), ignored by the worker.", registry=registry,
        )
        self.duplicate_commands = Counter(
            "switchboard_duplicate_commands_total", "Send commands already in the send ledger (not sent again).",
            ["channel"], registry=registry,
        )
        self.webhooks = Counter(
            "switchboard_webhooks_total", "Provider webhooks received.", ["provider", "result"], registry=registry
        )
        self.consent_catch_up = Histogram(
            "switchboard_consent_catch_up_seconds",
            "A gateway's read barrier before a marketing send: list-offsets plus waiting for its consent view "
            "(result: caught_up, or timed_out and not sent).",
            ["channel", "result"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.preference_requests = Counter(
            "switchboard_preference_requests_total", "Preference-centre page views and saves, by result.",
            ["action", "result"], registry=registry,
        )
        self.kafka_write_retries = Counter(
            "switchboard_kafka_write_retries_total",
            "A Kafka write retried after the broker did not take it (no leader, timeout, connection): gateways, worker.",
            ["topic_kind"], registry=registry,
        )
        self.rebalance_waits_abandoned = Counter(
            "switchboard_rebalance_waits_abandoned_total",
            "A rebalance or shutdown stopped waiting for unacknowledged messages (streams/faust_fixes.py); "
            "they are read again by the partitions' next owner.", registry=registry,
        )
        self.commits_held = Counter(
            "switchboard_commits_held_total",
            "A partition's offset commits held back 30 s (and every 30 s after) by a message read and never "
            "acknowledged while later ones are done (streams/faust_fixes.py): nothing is lost, the lag grows.",
            registry=registry,
        )
        self.preference_changes = Counter(
            "switchboard_preference_changes_total", "Records the preference centre published, by kind.", ["kind"],
            registry=registry,
        )


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide metrics on the default registry (created once)."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
