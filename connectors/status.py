"""``switchboard status``: how far a consumer group (the worker's, by default) is behind, per input topic.

The worker's consumer group is its Faust app id: ``<topic prefix><worker app id>``, ``switchboard`` by
default (:func:`streams.topics.app_id`). A topic's lag is the records on it the group has not committed
yet; a group that never committed on a topic is behind by all of it. A script that must know the
worker has read what it produced (a profile before an event about that customer) runs
``switchboard status --wait``, which returns once every lag is 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from connectors.producer import TOPIC_OF
from schemas.catalog import TopicNames
from streams.settings import Settings
from streams.topics import app_id


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: int
    committed: int  # summed over the partitions; 0 where the group never committed
    end: int  # the partitions' end offsets, summed
    lag: int  # records not committed yet, summed (never negative per partition)


class GroupLag:
    """One admin client and one consumer for as many readings as the caller needs (a watch, a wait)."""

    def __init__(self, bootstrap_servers: str) -> None:
        servers = bootstrap_servers.split(",")
        self._admin = KafkaAdminClient(bootstrap_servers=servers, client_id="switchboard-status")
        # No group, no auto-commit: this consumer only asks for end offsets (and kafka-python warns otherwise).
        self._consumer = KafkaConsumer(bootstrap_servers=servers, group_id=None, enable_auto_commit=False,
                                       client_id="switchboard-status")

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        try:
            offsets = self._admin.list_group_offsets(group_id).get(group_id, {})
        except KafkaError as exc:
            if not exc.retriable:
                raise
            return {}  # e.g. the group coordinator is still being elected: nothing committed yet
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    def topics(self, group_id: str, topics: list[str]) -> list[TopicLag]:
        """One row per topic of ``topics`` (a topic missing on the cluster has no partitions and no lag)."""
        committed = self.committed(group_id)
        self._consumer.topics()  # refreshes the metadata, so topics created since the last reading are seen
        rows = []
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or ())]
            ends = self._consumer.end_offsets(partitions) if partitions else {}
            done = {tp: min(committed.get(tp, 0), ends[tp]) for tp in partitions}
            rows.append(TopicLag(topic, len(partitions), sum(done.values()), sum(ends.values()),
                                 sum(ends[tp] - done[tp] for tp in partitions)))
        return rows

    def lag(self, group_id: str, topics: list[str]) -> int:
        return sum(row.lag for row in self.topics(group_id, topics))

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

    def __enter__(self) -> GroupLag:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def input_topics(settings: Settings, lag: GroupLag, group_id: str) -> list[str]:
    """The topics producers write (always shown) and every other topic the group has committed on."""
    names = TopicNames(settings.kafka.topic_prefix)
    produced = [names(t) for t in sorted(set(TOPIC_OF.values()))]
    seen = sorted({tp.topic for tp in lag.committed(group_id)} - set(produced))
    return produced + seen


def render(group_id: str, rows: list[TopicLag]) -> str:
    """The rows as a table a person reads, widths from the content."""
    header = ("topic", "partitions", "committed", "end", "lag")
    cells = [header, *((r.topic, str(r.partitions), str(r.committed), str(r.end), str(r.lag)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    behind = sum(r.lag for r in rows)
    verdict = "caught up" if behind == 0 else f"{behind} records behind"
    return "\n".join([f"consumer group {group_id}: {verdict}", line(header),
                      "  ".join("-" * w for w in widths), *map(line, cells[1:])])


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Prints the table; with ``--wait``, prints it again until the group caught up (0) or time ran out (1)."""
    group_id = args.group or app_id(settings)
    with GroupLag(settings.kafka.bootstrap_servers) as lag:
        topics = [TopicNames(settings.kafka.topic_prefix)(t) for t in args.topic] or input_topics(settings, lag,
                                                                                                    group_id)
        rows = lag.topics(group_id, topics)
        print(render(group_id, rows))
        if not args.wait:
            return 0
        deadline, last = time.monotonic() + args.timeout, sum(r.lag for r in rows)
        while last > 0:
            if time.monotonic() > deadline:
                print(f"still {last} records behind after {args.timeout:.0f}s", file=sys.stderr)
                return 1
            time.sleep(0.5)  # polling another process's committed offsets
            rows = lag.topics(group_id, topics)
            if 0 < (behind := sum(r.lag for r in rows)) != last:
                print(f"{behind} records behind", flush=True)
            last = behind
        print("caught up")
        return 0


def add_parser(sub: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", parents=parents,
                            help="how far the worker (or another consumer group) is behind, per input topic")
    status.add_argument("--group", help="a consumer group (default: the worker's, <topic prefix><worker app id>)")
    status.add_argument("--topic", action="append", default=[],
                        help="a catalog topic to show (repeatable; default: the producers' topics and every topic "
                             "the group committed on)")
    status.add_argument("--wait", action="store_true", help="return once the group has caught up (exit 1: timed out)")
    status.add_argument("--timeout", type=float, default=120.0, help="seconds --wait waits at most")
    status.set_defaults(func=run)
