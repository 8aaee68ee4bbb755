"""Scenario 7: a long backlog on one partition, the worker SIGKILLed mid-way: no commit ever passed a
message whose work was unfinished, and nothing of that partition is lost (the guard against faust #606).

What faust #606 is about: with ``concurrency > 1``, an agent runs several messages of one partition at
once; a later offset can finish first, and faust could commit past an earlier, slow message still in
flight. A crash then loses the slow message: it is below the committed offset, yet its work never
happened. Every agent of the worker has ``concurrency=1``, so within a partition one message is handled
at a time, in order, and acknowledged when the next is taken: a slow message holds back every later
offset of its partition, and the commit cannot pass it.

There is no honest way to make one message slow from outside without changing product code (every
record of the simulated shop takes about as long). So the scenario builds the situation #606 needs in
another way: one partition of ``storefront.events`` gets a long backlog (every event in it is "in flight"
in turn, with thousands behind it), while the other partitions hold a short load that completes early
(later work done elsewhere). The worker is SIGKILLed when its group has committed between 30 % and 70 %
of the backlog. Then, before any worker runs again, an independent consumer checks the commit itself:
- every storefront event below the committed offset of the backlog partition already has its message
  ids decided (a command, or the worker's own suppression or schedule: the owner decides a journey's
  message in the step that handles the event);
- every intent below the worker's committed offset on ``messages.intents`` (producers' own intents; the
  worker writes none) already has its decision.
An offset committed past unfinished work would show as a count above zero. After a restart, every
message id of the backlog partition has its decision: none lost. How many events past the commit had
already been handled (the at-least-once window, handled again after the restart) is printed.
"""

from __future__ import annotations

import pytest

from schemas.catalog import MESSAGE_INTENTS, STOREFRONT_EVENTS, TopicNames
from schemas.codec import codec_for
from schemas.messages import MessageIntent
from streams.topics import create_topics
from tests.chaos.scenarios import (
    Decisions,
    Shop,
    Stopwatch,
    chaos_settings,
    committed,
    end_offsets,
    expected_ids,
    intents_of,
    oracle_ids,
    partition_of,
    produce_records,
    read_topics,
    report,
    routed_topics,
    start_worker,
    state_topics,
    wait_drained,
)
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

BACKLOG = 8_000  # events on the one partition
OTHERS = 600  # events on the other partitions
PARTITIONS = 3
SLOW = 0


@pytest.mark.timeout(1200)
def test_a_backlogged_partition_sigkilled_mid_way_loses_nothing(kafka_bootstrap, tmp_path) -> None:
    clock = Stopwatch()
    settings = chaos_settings(kafka_bootstrap, tmp_path, PARTITIONS)
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    shop = Shop.generate(BACKLOG * PARTITIONS + OTHERS, seed=7)  # about a third of the events on each partition
    on_slow = [e for e in shop.store.events if partition_of(e.key.encode(), PARTITIONS) == SLOW][:BACKLOG]
    elsewhere = [e for e in shop.store.events if partition_of(e.key.encode(), PARTITIONS) != SLOW][:OTHERS]
    assert len(on_slow) == BACKLOG
    oracle_ids(on_slow + elsewhere)  # the per-event ids below are the journeys' (see scenarios.oracle_ids)
    customers = {e.customer_id for e in on_slow + elsewhere}
    state = [r for r in shop.state if r.customer_id in customers]
    events_topic, intents_topic = names(STOREFRONT_EVENTS), names(MESSAGE_INTENTS)

    worker = start_worker(settings, tmp_path, "0")
    try:
        produce_records(settings, state)
        wait_drained(settings, state_topics(settings), 600, worker)
        produce_records(settings, elsewhere + on_slow)
        backlog_start = end_offsets(settings, events_topic)[SLOW] - len(on_slow)

        def mid_way() -> bool:
            return committed(settings, events_topic).get(SLOW, 0) - backlog_start >= 0.3 * BACKLOG

        wait_until(mid_way, 900, "the worker 30 % into the backlog", worker)
    finally:
        worker.kill()
    commits = {topic: committed(settings, topic) for topic in (events_topic, intents_topic)}

    # At the crash: what the commits claim is done, against what is on the topics.
    events = read_topics(settings.kafka.bootstrap_servers, [events_topic])
    decisions = Decisions.read(settings)
    intents = read_topics(settings.kafka.bootstrap_servers, [intents_topic])
    on_intents = {codec_for(MessageIntent).decode(r.value).message_id for r in intents}
    decided_at_crash = decisions.decided()  # a command, or the worker's own suppression or schedule
    slow_committed = commits[events_topic].get(SLOW, 0)
    committed_events = [r for r in events if r.partition == SLOW and r.offset < slow_committed]
    unfinished_events = [r for r in committed_events
                         if not set(intents_of(r.value)) <= on_intents | decided_at_crash]
    handled_past_commit = [r for r in events if r.partition == SLOW and r.offset >= slow_committed
                           and intents_of(r.value) and set(intents_of(r.value)) <= on_intents | decided_at_crash]
    committed_intents = [r for r in intents if r.offset < commits[intents_topic].get(r.partition, 0)]
    undecided_intents = [r for r in committed_intents
                         if codec_for(MessageIntent).decode(r.value).message_id not in decided_at_crash]

    worker = start_worker(settings, tmp_path, "1")
    try:
        wait_drained(settings, [events_topic, *routed_topics(settings)], 900, worker)
    finally:
        worker.stop()
    final = Decisions.read(settings)
    slow_ids = expected_ids(on_slow)
    lost = (slow_ids | expected_ids(elsewhere)) - final.decided()
    report("Scenario 7 — a partition's backlog, the worker SIGKILLed mid-way", [
        ("events: backlog on partition 0 / on the others", f"{len(on_slow):,} / {len(elsewhere):,}"),
        ("backlog committed when killed", (f"{slow_committed - backlog_start:,} of {len(on_slow):,} "
                                           f"({(slow_committed - backlog_start) / len(on_slow):.0%})")),
        ("other partitions committed to their end",
         sum(1 for p, end in end_offsets(settings, events_topic).items()
             if p != SLOW and commits[events_topic].get(p, 0) == end)),
        ("committed events without their decisions (commit past unfinished work)", len(unfinished_events)),
        ("committed intents without their decision", len(undecided_intents)),
        ("events past the commit already handled (handled again after restart)", len(handled_past_commit)),
        ("message ids of the backlog", len(slow_ids)),
        ("LOST after the restart", len(lost)),
        ("duplicate command records", sum(final.commanded().values()) - len(final.commanded())),
    ], clock.seconds)

    assert 0.3 * BACKLOG <= slow_committed - backlog_start < len(on_slow)  # killed mid-way
    assert unfinished_events == [] and undecided_intents == []
    assert lost == set()
