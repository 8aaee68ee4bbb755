"""Scenario 1: a Faust worker SIGKILLed three times under load loses no send command.

The simulated storefront (``connectors.simulator``; ``SWITCHBOARD_CHAOS_EVENTS`` events, 100,000 under
``make chaos``) goes in: profiles, consents and erasures first, then every storefront event at once, a
backlog. Quiet hours and caps are off (tests/support.make_settings), so every message is decided at once
and the same way however often it is decided. No gateway runs: the commands stay on their topics.

The worker is SIGKILLed when its group has committed at least 20 %, 40 % and 60 % of the events, and a
new one is started at once each time (it waits out the dead member's 6 s session, then recovers every
table from its changelog). At the end, with every input committed, an independent consumer reads the
six command lanes and the outcomes, and checks that every message id the events must lead to
(``streams.triggers.intents_for``) has a command, or the worker's suppression or schedule: none lost.

Duplicates are counted, not forbidden: the worker is at-least-once, so the records it processed after
its last commit are processed again by its successor. The gateways de-duplicate by message id (their
ledger; scenario 2). What a duplicate must never be is a different decision: the same id both sent and
suppressed, or sent on two channels.
"""

from __future__ import annotations

import pytest

from schemas.catalog import STOREFRONT_EVENTS, TopicNames
from schemas.messages import OutcomeStatus
from streams.topics import create_topics
from tests.chaos.scenarios import (
    Decisions,
    Shop,
    Stopwatch,
    chaos_events,
    chaos_settings,
    committed,
    lost_coordinates,
    produce_records,
    report,
    routed_topics,
    start_worker,
    state_topics,
    wait_drained,
    wait_for_progress,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

KILL_AT = (0.2, 0.4, 0.6)
EVENTS = chaos_events()


@pytest.mark.timeout(600 + EVENTS // 40)
def test_a_worker_sigkilled_three_times_loses_no_send_command(kafka_bootstrap: str, tmp_path) -> None:
    clock = Stopwatch()
    settings = chaos_settings(kafka_bootstrap, tmp_path)
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    shop = Shop.generate(EVENTS, seed=6)
    expected = shop.expected_ids()

    worker = start_worker(settings, tmp_path, "0")
    workers = [worker]
    kills: list[tuple[float, float]] = []  # (aimed at, committed when killed)
    commits: list[dict[int, int]] = []  # per partition of the events, after each kill
    try:
        produce_records(settings, shop.state)
        wait_drained(settings, state_topics(settings), 900, worker)
        state_loaded = clock.seconds
        produce_records(settings, shop.events)
        for share in KILL_AT:
            reached = wait_for_progress(settings, names(STOREFRONT_EVENTS), EVENTS, share, worker,
                                        above=kills[-1][1] if kills else -1.0)
            worker.kill()
            kills.append((share, reached))
            commits.append(committed(settings, names(STOREFRONT_EVENTS)))  # the dead worker's last commits
            worker = start_worker(settings, tmp_path, str(len(kills)))
            workers.append(worker)
        wait_drained(settings, [names(STOREFRONT_EVENTS), *routed_topics(settings)], 1800, worker)
    finally:
        for w in workers:
            w.stop()

    decisions = Decisions.read(settings)
    commanded = decisions.commanded()
    suppressed = decisions.by_worker(OutcomeStatus.SUPPRESSED)
    scheduled = decisions.by_worker(OutcomeStatus.SCHEDULED)
    lost = expected - decisions.decided()
    unexpected = decisions.decided() - expected
    both = set(commanded) & set(suppressed)
    channels: dict[str, set] = {}
    for c in decisions.commands:
        channels.setdefault(c.message_id, set()).add(c.channel)
    two_channels = {m for m, chans in channels.items() if len(chans) > 1}
    duplicate_commands = sum(commanded.values()) - len(commanded)
    report(f"Scenario 1 — worker SIGKILLed 3× — {EVENTS:,} storefront events", [
        ("storefront events", len(shop.events)),
        ("customers (profiles / consent changes)",
         f"{len(shop.store.profiles):,} / {len(shop.store.consents):,}"),
        ("SIGKILLs (aimed at → committed when killed)",
         ", ".join(f"{a:.0%}→{r:.1%}" for a, r in kills)),
        ("expected message ids", len(expected)),
        ("ids with a command", len(commanded)),
        ("ids suppressed by the worker", len(suppressed)),
        ("ids scheduled", len(scheduled)),
        ("command records", sum(commanded.values())),
        ("duplicate command records (same id again)", duplicate_commands),
        ("ids commanded more than once", sum(1 for n in commanded.values() if n > 1)),
        ("duplicate suppression records", sum(suppressed.values()) - len(suppressed)),
        ("LOST (no command, no suppression, no schedule)", len(lost)),
        ("unexpected ids", len(unexpected)),
        ("ids both commanded and suppressed", len(both)),
        ("ids commanded on two channels", len(two_channels)),
        ("state loaded after", f"{state_loaded:.0f} s"),
    ], clock.seconds)

    # Three kills, each mid-run: after the restarted worker's own progress, before the end of the input.
    assert len(kills) == 3 and all(share <= reached < 1.0 for share, reached in kills)
    assert kills[0][1] < kills[1][1] < kills[2][1]
    if lost:
        where = lost_coordinates(settings, lost)
        print("commits after each kill:", commits)
        for partition, offsets in sorted(where.items()):
            print(f"lost on partition {partition}: {len(offsets)} events, offsets {offsets}")
    assert lost == set(), sorted(lost)[:10]
    assert unexpected == set()
    assert both == set() and two_channels == set()
