"""Reading the pipeline's public output topics and tallying what happened, as a data team would."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from schemas.catalog import MESSAGE_OUTCOMES, STOREFRONT_EVENTS, TopicNames, commands_topic, dlq_topic
from schemas.codec import codec_for
from schemas.messages import MessageOutcome, OutcomeStatus, SendCommand
from schemas.types import Channel, Purpose

# When a message needs nothing more, per channel: SMS and WhatsApp wait for a delivery receipt; SMTP has
# none, so an e-mail is settled once the server accepted it.
_FINAL_RECEIPTS = {OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED,
                   OutcomeStatus.AMBIGUOUS, OutcomeStatus.SUPPRESSED}
SETTLED = {
    Channel.SMS: _FINAL_RECEIPTS,
    Channel.WHATSAPP: _FINAL_RECEIPTS,
    Channel.EMAIL: {OutcomeStatus.SENT, OutcomeStatus.FAILED, OutcomeStatus.AMBIGUOUS, OutcomeStatus.SUPPRESSED},
}


@dataclass
class Tally:
    commands: Counter = field(default_factory=Counter)  # channel -> count
    suppressions: Counter = field(default_factory=Counter)  # reason -> count
    scheduled: Counter = field(default_factory=Counter)  # why deferred -> count
    scheduled_for: list = field(default_factory=list)  # (when the deferred send will go, customer id)
    outcomes: Counter = field(default_factory=Counter)  # status -> count
    dead_letters: Counter = field(default_factory=Counter)  # topic -> count
    latencies_ms: list[float] = field(default_factory=list)
    decided: set[str] = field(default_factory=set)  # message ids with a command or a suppression
    settled: set[str] = field(default_factory=set)  # message ids that need nothing more
    channels: dict[str, list[str]] = field(default_factory=dict)  # message id -> channels it was sent on

    @property
    def fallbacks(self) -> Counter:
        """``"sms → email"`` -> messages that went on to that channel after the first failed."""
        return Counter(" → ".join(chain) for chain in self.channels.values() if len(chain) > 1)

    def percentile(self, q: float) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else None
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


class Watcher:
    """Follows commands, outcomes and dead-letter topics from the beginning."""

    def __init__(self, bootstrap_servers: str, prefix: str) -> None:
        self.names = TopicNames(prefix)
        self.tally = Tally()
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), enable_auto_commit=False,
                                       group_id=None)
        topics = [self.names(MESSAGE_OUTCOMES), *(self.names(commands_topic(c, p)) for c in Channel for p in Purpose),
                  self.names(dlq_topic(STOREFRONT_EVENTS))]
        partitions = [TopicPartition(t, p) for t in topics for p in self._consumer.partitions_for_topic(t) or ()]
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        self._events = [TopicPartition(self.names(STOREFRONT_EVENTS), p)
                        for p in self._consumer.partitions_for_topic(self.names(STOREFRONT_EVENTS)) or ()]

    def events_in(self) -> int:
        return sum(self._consumer.end_offsets(self._events).values())

    def poll(self) -> Tally:
        for records in self._consumer.poll(timeout_ms=300, max_records=5000).values():
            for record in records:
                self._apply(record)
        return self.tally

    def _apply(self, record) -> None:
        t = self.tally
        if record.topic.endswith(".dlq"):
            t.dead_letters[record.topic.removeprefix(self.names.prefix)] += 1
        elif record.topic == self.names(MESSAGE_OUTCOMES):
            outcome = codec_for(MessageOutcome).decode(record.value)
            t.outcomes[outcome.status] += 1
            if outcome.status == OutcomeStatus.SUPPRESSED:
                t.suppressions[outcome.reason] += 1
                t.decided.add(outcome.message_id)
                t.settled.add(outcome.message_id)
            elif outcome.status == OutcomeStatus.SCHEDULED:  # decided; it goes later, past the demo's end
                t.scheduled[outcome.reason] += 1
                if outcome.scheduled_for is not None:
                    t.scheduled_for.append((outcome.scheduled_for, outcome.customer_id))
                t.decided.add(outcome.message_id)
                t.settled.add(outcome.message_id)
            elif outcome.channel in SETTLED and outcome.status in SETTLED[Channel(outcome.channel)]:
                t.settled.add(outcome.message_id)
        else:
            command = codec_for(SendCommand).decode(record.value)
            t.commands[command.channel] += 1
            chain = t.channels.setdefault(command.message_id, [])
            chain.append(command.channel)
            t.decided.add(command.message_id)
            if len(chain) == 1:  # a fallback's delay is the failed channel's, not the pipeline's
                t.latencies_ms.append(record.timestamp - command.trigger_received_at.timestamp() * 1000)
            if command.channel not in SETTLED:
                t.settled.add(command.message_id)

    def close(self) -> None:
        self._consumer.close()
