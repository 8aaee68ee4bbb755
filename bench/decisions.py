"""Reading back what the worker decided in a phase: send commands and outcomes, and their latencies."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kafka import TopicPartition

from bench.kafka_io import read_range
from schemas.codec import codec_for
from schemas.messages import MessageOutcome, SendCommand


@dataclass
class Decisions:
    commands: Counter = field(default_factory=Counter)  # channel -> count
    outcomes: Counter = field(default_factory=Counter)  # "status:reason" -> count
    last_ms: int = 0  # broker timestamp of the last decision
    latencies_ms: list[float] = field(default_factory=list)  # command timestamp - its event's, in the window

    @property
    def total(self) -> int:
        return sum(self.commands.values()) + sum(self.outcomes.values())


def read_decisions(bootstrap: str, outcomes_topic: str, start: dict[TopicPartition, int],
                   end: dict[TopicPartition, int], window_ms: tuple[int, int] | None = None) -> Decisions:
    """Decodes the decisions between two offset sets; latencies only for events received in ``window_ms``.

    Latency is measured as ``connectors/demo/watch.py`` does: the command record's timestamp minus the
    event's ``trigger_received_at`` (the storefront event's own Kafka timestamp).
    """
    found = Decisions()
    low, high = window_ms or (0, 2**63)
    for record in read_range(bootstrap, start, end):
        found.last_ms = max(found.last_ms, record.timestamp_ms)
        if record.topic == outcomes_topic:
            outcome = codec_for(MessageOutcome).decode(record.value)
            found.outcomes[f"{outcome.status}:{outcome.reason}" if outcome.reason else str(outcome.status)] += 1
            continue
        command = codec_for(SendCommand).decode(record.value)
        found.commands[str(command.channel)] += 1
        received_ms = command.trigger_received_at.timestamp() * 1000
        if low <= received_ms <= high:
            found.latencies_ms.append(record.timestamp_ms - received_ms)
    return found
