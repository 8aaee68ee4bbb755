"""The fixes to faust's consumer (streams/faust_fixes.py), on a real consumer of a SwitchboardApp (no broker needed:
nothing here reaches Kafka). The rebalance they protect is exercised on the broker by tests/chaos/test_scaling.py.
The last tests pin the source of every upstream method the fixes override: a faust or mode upgrade that changes
one fails here, loudly, instead of running our override against code it was not written for."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import textwrap
import time
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent
from prometheus_client import CollectorRegistry

from streams import faust_fixes
from streams.faust_fixes import SwitchboardApp, SwitchboardConsumer, SwitchboardFlowControl, SwitchboardTransport

TOPIC = "fixes.input"


@pytest.fixture
def consumer():
    loop = asyncio.new_event_loop()
    app = SwitchboardApp("faust-fixes-test", broker="kafka://127.0.0.1:1", loop=loop)
    app.topics.acking_topics.add(TOPIC)
    app.consumer_generation_id = 2
    yield app.consumer
    loop.close()


def message(offset: int, generation: int) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, [], b"k", b"v", None, 1, 1, TP(TOPIC, 0),
                           generation_id=generation)


def test_an_acknowledgement_from_the_current_generation_is_recorded(consumer) -> None:
    for offset in range(3):
        assert consumer.ack(message(offset, generation=2))
    assert consumer._new_offset(TP(TOPIC, 0)) == 3


def test_a_stale_acknowledgement_cannot_move_the_commit_past_unread_messages(consumer) -> None:
    """A message read before the last rebalance and acknowledged after it (offset 10) must not let the
    partition commit 11 while offsets 0-9 have not been processed again."""
    stale = message(10, generation=1)
    assert not consumer.ack(stale)
    assert stale.acked  # it is done with: nothing waits for it any more
    assert consumer._new_offset(TP(TOPIC, 0)) is None
    for offset in range(4):
        consumer.ack(message(offset, generation=2))
    assert consumer._new_offset(TP(TOPIC, 0)) == 4


def test_the_wait_for_unacknowledged_messages_has_a_limit(consumer) -> None:
    """A message parked behind the suspended flow is never acknowledged: the wait ends after the limit,
    says how many were left, and commits what was acknowledged."""
    parked = message(7, generation=2)
    consumer._unacked_messages.add(parked)
    abandoned: list[int] = []
    started = time.monotonic()

    consumer.loop.run_until_complete(faust_fixes.wait_empty_bounded(consumer, 0.5, abandoned.append))

    assert abandoned == [1]
    assert time.monotonic() - started < 5  # not faust's unbounded wait (a generous bound: machines are noisy)
    assert not parked.acked  # never acknowledged for it: its offset is read again by the next owner


def test_the_wait_ends_as_soon_as_everything_is_acknowledged(consumer, monkeypatch) -> None:
    committed: list[dict[TP, int]] = []

    async def commit_offsets(offsets, start_new_transaction=True) -> bool:  # the call that reaches Kafka
        committed.append(dict(offsets))
        return True

    monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
    in_hand = message(0, generation=2)
    in_hand.incref()
    consumer._unacked_messages.add(in_hand)
    abandoned: list[int] = []

    async def scenario() -> None:
        asyncio.get_running_loop().call_later(0.1, in_hand.ack, consumer)
        await faust_fixes.wait_empty_bounded(consumer, 30, abandoned.append)

    consumer.loop.run_until_complete(scenario())
    assert abandoned == []
    assert in_hand.acked
    assert committed == [{TP(TOPIC, 0): 1}]


def commits_before_and_after_the_head(consumer, head: int, later: tuple[int, ...]) -> tuple[int | None, int | None]:
    """Partition 0 read from ``head``; ``later`` acknowledged, then ``head``: the offset to commit after each."""
    tp = TP(TOPIC, 0)
    faust_fixes.note_read(consumer, tp, head)
    for offset in later:
        consumer.ack(message(offset, generation=2))
    before = consumer._new_offset(tp)
    consumer.ack(message(head, generation=2))
    return before, consumer._new_offset(tp)


def test_a_commit_never_jumps_over_the_unacknowledged_message_at_the_head(consumer) -> None:
    """faust's own check lets a run start one past the committed offset: with 22 committed (0-21 done) and
    22 read but never acknowledged, it commits 25 and 22 is lost. Here nothing moves until 22 is done."""
    consumer._committed_offset[TP(TOPIC, 0)] = 22
    assert commits_before_and_after_the_head(consumer, head=22, later=(23, 24)) == (None, 25)


def test_a_partition_never_committed_is_checked_from_its_first_read_offset(consumer) -> None:
    """faust does not check a partition with no committed offset at all: offset 0 unacknowledged, 1-2 done,
    and it commits 3."""
    assert commits_before_and_after_the_head(consumer, head=0, later=(1, 2)) == (None, 3)


def test_each_commit_guards_the_next_head(consumer) -> None:
    """After a first commit (0-4 done, 5 committed), message 5 dropped and 6-7 done: nothing moves."""
    tp = TP(TOPIC, 0)
    faust_fixes.note_read(consumer, tp, 0)
    for offset in range(5):
        consumer.ack(message(offset, generation=2))
    assert consumer._new_offset(tp) == 5
    consumer._committed_offset[tp] = 5  # what Consumer.commit records after the broker took it
    for offset in (6, 7):
        consumer.ack(message(offset, generation=2))
    assert consumer._new_offset(tp) is None


def test_offsets_below_the_first_read_are_not_waited_for(consumer) -> None:
    """Reading starts at the log start (5, older records deleted), or past a committed offset whose record
    was compacted away (committed 10, first record 12, faust records 11-12 as a gap): neither stalls."""
    start = TP(TOPIC, 0)
    faust_fixes.note_read(consumer, start, 5)
    for offset in (5, 6):
        consumer.ack(message(offset, generation=2))
    assert consumer._new_offset(start) == 7

    compacted = TP(TOPIC, 1)
    consumer._committed_offset[compacted] = 10
    faust_fixes.note_read(consumer, compacted, 12)
    consumer._gap[compacted].addi(11, 13)  # what faust's fetch loop records when offsets jump from 10 to 12
    for offset in (12, 13):
        consumer.ack(ConsumerMessage(TOPIC, 1, offset, 0.0, 0, [], b"k", b"v", None, 1, 1, compacted,
                                     generation_id=2))
    assert consumer._new_offset(compacted) == 14


def test_a_head_that_stays_unacknowledged_is_named_in_a_warning(consumer, monkeypatch, caplog) -> None:
    monkeypatch.setattr(faust_fixes, "STUCK_HEAD_WARNING", 0.0)
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 3
    faust_fixes.note_read(consumer, tp, 3)
    in_hand = message(3, generation=2)  # noqa: F841 - held (weakly tracked) while the warning is checked
    consumer.track_message(in_hand)
    consumer.ack(message(4, generation=2))
    with caplog.at_level("WARNING", logger=faust_fixes.__name__):
        assert consumer._new_offset(tp) is None  # the first time: the wait starts
        assert consumer._new_offset(tp) is None
    assert [r.getMessage() for r in caplog.records] == [
        f"{TOPIC}[0]: offset 3 was read and is not acknowledged after 0 s; later offsets are done and wait "
        "for it, uncommitted"]


def test_a_held_head_no_longer_in_hand_is_read_again_before_the_next_fetch(consumer, monkeypatch) -> None:
    """Offset 3 was read and lost on its way to the agent (no message of it in hand); 4 was processed. The
    partition is sought back to 3 before the next fetch, so 3 is processed and the commits go on."""
    monkeypatch.setattr(faust_fixes, "STUCK_HEAD_WARNING", 0.0)
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 3
    faust_fixes.note_read(consumer, tp, 3)
    consumer._read_offset[tp] = 4
    consumer.ack(message(4, generation=2))
    seeks: list[tuple[TP, int]] = []

    async def seek(partition, offset):
        seeks.append((partition, offset))

    async def wait_next_records(timeout):
        return None, None

    monkeypatch.setattr(consumer, "_seek", seek)
    monkeypatch.setattr(consumer, "_wait_next_records", wait_next_records)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: {tp})
    assert consumer._new_offset(tp) is None and consumer._new_offset(tp) is None

    async def fetch() -> list:
        return [m async for m in consumer.getmany(timeout=1.0)]

    consumer.loop.run_until_complete(fetch())
    assert seeks == [(tp, 3)]
    consumer.loop.run_until_complete(fetch())
    assert seeks == [(tp, 3)]  # once: the head is read again, not sought back on every fetch


def test_a_held_head_still_in_hand_is_only_warned_about(consumer, monkeypatch) -> None:
    """A batch waiting out a broker outage holds its messages: they are not read again meanwhile."""
    monkeypatch.setattr(faust_fixes, "STUCK_HEAD_WARNING", 0.0)
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 3
    faust_fixes.note_read(consumer, tp, 3)
    in_hand = message(3, generation=2)
    consumer.track_message(in_hand)
    consumer.ack(message(4, generation=2))
    assert consumer._new_offset(tp) is None and consumer._new_offset(tp) is None
    assert consumer._switchboard_reread == {}


def test_resuming_a_flow_that_is_already_running_keeps_the_agents_queues(consumer) -> None:
    """faust's recovery resumes the flow a second time while agents already process messages; mode's resume
    emptied their queues each time, dropping messages read and never processed."""
    from mode.utils.queues import FlowControlQueue

    flow = consumer.app.flow_control
    flow.resume()  # the worker's start: the flow runs
    queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait("delivered, not yet taken")
    flow.resume()
    assert queue.qsize() == 1

    flow.suspend()  # a rebalance: what is queued belongs to the previous generation
    flow.resume()
    assert queue.qsize() == 0


def test_fetched_records_faust_drops_are_fetched_again(consumer, monkeypatch) -> None:
    """aiokafka fetched offsets 0-1 of a partition that is not active (any more); faust dropped them with
    aiokafka's position already past them, and the worker never saw its input. They are sought back."""
    from types import SimpleNamespace

    tp, other = TP(TOPIC, 0), TP(TOPIC, 1)
    records = {tp: [SimpleNamespace(offset=0), SimpleNamespace(offset=1)], other: [SimpleNamespace(offset=9)]}
    seeks: list[tuple[TP, int]] = []

    async def wait_next_records(timeout):
        return records, {other}

    async def seek(partition, offset):
        seeks.append((partition, offset))

    monkeypatch.setattr(consumer, "_wait_next_records", wait_next_records)
    monkeypatch.setattr(consumer, "_seek", seek)
    monkeypatch.setattr(consumer, "_to_message", lambda partition, record: message(record.offset, generation=2))
    monkeypatch.setattr(consumer, "highwater", lambda partition: 10)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: {tp, other})
    consumer.app.consumer_generation_id = 0  # what the fixture's app reads at the start of a batch
    consumer.flow_active = True

    async def drain() -> list[int]:
        return [m.offset async for _, m in consumer.getmany(timeout=1.0)]

    assert consumer.loop.run_until_complete(drain()) == [9]
    assert seeks == [(tp, 0)]


def test_a_rewind_leaves_partitions_already_sought_further_back_or_revoked(consumer, monkeypatch) -> None:
    seeks: list[tuple[TP, int]] = []

    async def seek(partition, offset):
        seeks.append((partition, offset))

    monkeypatch.setattr(consumer, "_seek", seek)
    kept, rewound, revoked = TP(TOPIC, 0), TP(TOPIC, 1), TP(TOPIC, 2)
    monkeypatch.setattr(type(consumer), "assignment", lambda self: {kept, rewound})
    consumer._read_offset[kept] = 4  # read up to 4, then 5 onwards dropped
    consumer._read_offset[rewound] = 2  # faust took it back to its committed offset already
    consumer.loop.run_until_complete(faust_fixes.rewind(consumer, {kept: 5, rewound: 7, revoked: 3}))
    assert seeks == [(kept, 5)]
    assert consumer._read_offset[kept] == 5


def test_an_abandoned_wait_and_a_held_commit_reach_the_apps_hooks(consumer, monkeypatch) -> None:
    """streams.app sets both hooks to metrics: a rebalance wait given up, a partition's commits held."""
    app = consumer.app
    calls: list[str] = []
    app.on_wait_abandoned = lambda: calls.append("wait abandoned")
    app.on_commit_held = lambda: calls.append("commit held")
    monkeypatch.setattr(faust_fixes, "WAIT_EMPTY_LIMIT", 0.0)
    monkeypatch.setattr(faust_fixes, "STUCK_HEAD_WARNING", 0.0)
    parked = message(7, generation=2)  # never acknowledged (and held here: the set of unacknowledged is weak)
    consumer._unacked_messages.add(parked)

    consumer.loop.run_until_complete(app._consumer_wait_empty(consumer, app.log))  # what a rebalance calls
    tp = TP(TOPIC, 0)
    consumer._committed_offset[tp] = 3
    faust_fixes.note_read(consumer, tp, 3)
    consumer.ack(message(4, generation=2))
    consumer._new_offset(tp)
    consumer._new_offset(tp)

    assert calls == ["wait abandoned", "commit held"]


def test_the_worker_app_consumes_through_our_classes(tmp_path) -> None:
    """faust builds the consumer from the app's transport (App._new_transport -> Transport.create_consumer ->
    Transport.Consumer) and every stream queue from app.flow_control: both must be ours in the worker's app."""
    from streams.app import create_app
    from streams.metrics import Metrics
    from streams.settings import Settings

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        metrics = Metrics(CollectorRegistry())
        app = create_app(Settings(worker={"data_dir": tmp_path, "web_port": 0}), metrics=metrics)
        assert type(app) is SwitchboardApp
        assert type(app.transport) is SwitchboardTransport
        assert type(app.consumer) is SwitchboardConsumer
        assert type(app.flow_control) is SwitchboardFlowControl
        assert app.FlowControlQueue(clear_on_resume=True)._flow_control is app.flow_control
        assert app.on_wait_abandoned == metrics.rebalance_waits_abandoned.inc
        assert app.on_commit_held == metrics.commits_held.inc
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_broker_other_than_aiokafka_is_refused_rather_than_run_without_the_fixes() -> None:
    app = SwitchboardApp("faust-fixes-test", broker="confluent://127.0.0.1:1", loop=asyncio.new_event_loop())
    try:
        with pytest.raises((faust.exceptions.ImproperlyConfigured, ImportError)):
            app.transport  # noqa: B018 - the property builds the transport
    finally:
        app.loop.close()


# The upstream methods our classes override, each with the sha256 of its dedented source as installed
# (faust-streaming 0.15.3, mode-streaming 0.7.1). A method is looked up from the class ours derives from, so a
# faust release that moves or overrides it in between (the aiokafka driver's Consumer, say) changes it too.
UPSTREAM: list[tuple[type, type, str, str]] = [
    (SwitchboardConsumer, SwitchboardConsumer.__bases__[0], "on_partitions_revoked",
     "652177e770ee66d66ae271d4b52195b8f13586357254dfd10aca8d7b2ea36298"),
    (SwitchboardConsumer, SwitchboardConsumer.__bases__[0], "ack",
     "5548cf0f75843f73490a54177df6b38b23d6e61a65653e3de6bc929d5165bad4"),
    (SwitchboardConsumer, SwitchboardConsumer.__bases__[0], "_new_offset",
     "2b29afe4dd9a65a3b1a0acbaf09b9bc3a7f98a168a3dd2924db879fb4f9301b3"),
    (SwitchboardConsumer, SwitchboardConsumer.__bases__[0], "getmany",
     "e486c434b7928ee8dc33eb66f8ad03adae289861dcec23f4cbd767ccc3c38148"),
    # not overridden, replaced by wait_empty_bounded (called from SwitchboardApp._consumer_wait_empty)
    (SwitchboardApp, SwitchboardConsumer.__bases__[0], "wait_empty",
     "53195dca246c0a86992560be96186b5f2a9483860b29703dae41df495c602ba7"),
    (SwitchboardApp, SwitchboardApp.__bases__[0], "_consumer_wait_empty",
     "73ba99b95ca08c3113433cfe8493db2e4118482c779561c633f65374dc8d4cdc"),
    (SwitchboardApp, SwitchboardApp.__bases__[0], "_new_transport",
     "11beddacb9fee5b09032ba1f29d48e0cd7c8334853f721f3ea6426a5d7ba2511"),
    (SwitchboardApp, SwitchboardApp.__bases__[0], "flow_control",
     "e11e9eab4ea2f4802d84e883cbf635cb252d4f89784200951ea27904b83d8ad7"),
    (SwitchboardFlowControl, SwitchboardFlowControl.__bases__[0], "resume",
     "da6fc70c770ea01b0ccee8833de3ea239acb3e2545a83c17827fb4718dbafcd7"),
]

EXTENDED_NOT_REPLACED = {"__init__"}  # SwitchboardConsumer.__init__ calls faust's, then adds two dicts


def upstream_function(base: type, name: str) -> Callable[..., Any]:
    attribute = inspect.getattr_static(base, name)
    if isinstance(attribute, cached_property):
        return attribute._cached_property__get  # the getter faust wrote (mode stores it name-mangled)
    return attribute


def fingerprint(function: Callable[..., Any]) -> str:
    return hashlib.sha256(textwrap.dedent(inspect.getsource(function)).encode()).hexdigest()


@pytest.mark.parametrize(("ours", "base", "name", "pinned"), UPSTREAM,
                         ids=[f"{base.__name__}.{name}" for _, base, name, _ in UPSTREAM])
def test_the_upstream_code_our_fixes_replace_is_the_code_they_were_written_against(ours, base, name, pinned) -> None:
    function = upstream_function(base, name)
    assert fingerprint(function) == pinned, (
        f"faust's {function.__module__}.{function.__qualname__} changed: re-read our override "
        f"{ours.__name__}.{name} (or what replaces it) in streams/faust_fixes.py against the new upstream code, "
        f"then update this fingerprint to {fingerprint(function)}")


@pytest.mark.parametrize("ours", [SwitchboardConsumer, SwitchboardApp, SwitchboardFlowControl])
def test_every_upstream_method_we_override_is_fingerprinted(ours) -> None:
    overridden = {name for name, attribute in vars(ours).items()
                  if (inspect.isfunction(attribute) or isinstance(attribute, cached_property))
                  and hasattr(ours.__bases__[0], name)}
    guarded = {name for owner, _, name, _ in UPSTREAM if owner is ours and name in vars(ours)}
    assert overridden - EXTENDED_NOT_REPLACED == guarded, (
        f"{ours.__name__} overrides {sorted(overridden - EXTENDED_NOT_REPLACED - guarded)} without a fingerprint "
        "of the upstream method in UPSTREAM")


def test_the_transport_gives_faust_our_consumer_class_and_nothing_else_of_its_own() -> None:
    assert SwitchboardTransport.Consumer is SwitchboardConsumer
    assert SwitchboardConsumer.__bases__[0] is SwitchboardTransport.__bases__[0].Consumer  # faust's aiokafka one
    assert {name for name in vars(SwitchboardTransport) if not name.startswith("_")} == {"Consumer"}


def test_no_class_of_faust_or_mode_is_patched() -> None:
    """The fixes live in our subclasses only: a plain faust app still runs faust's own code."""
    from faust.transport.consumer import Consumer

    for base, name in [(Consumer, "on_partitions_revoked"), (Consumer, "ack"), (Consumer, "_new_offset"),
                       (Consumer, "getmany"), (faust.App, "_consumer_wait_empty"), (faust.App, "_new_transport"),
                       (FlowControlEvent, "resume")]:
        assert inspect.getattr_static(base, name).__module__.startswith(("faust.", "mode.")), f"{base}.{name}"
