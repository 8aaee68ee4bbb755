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
        self.fallbacks = Counter(
            "switchboard_fallbacks_total", "Messages re-sent on their next channel after a failed send.",
            ["failed_channel"], registry=registry,
        )
        self.duplicate_commands = Counter(
            "switchboard_duplicate_commands_total", "Send commands already in the send ledger (not sent again).",
            ["channel"], registry=registry,
        )
        self.webhooks = Counter(
            "switchboard_webhooks_total", "Provider webhooks received.", ["provider", "result"], registry=registry
        )


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide metrics on the default registry (created once)."""
    global _default
    if _default is None:
        _default = Metrics()
    return _default
