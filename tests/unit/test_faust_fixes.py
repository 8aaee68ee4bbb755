"""The fixes to faust's consumer (streams/faust_fixes.py), on a real faust consumer object (no broker needed:
nothing here reaches Kafka). The rebalance they protect is exercised on the broker by tests/chaos/test_scaling.py."""

from __future__ import annotations

import asyncio
import time

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams import faust_fixes

TOPIC = "fixes.input"


@pytest.fixture
def consumer():
    faust_fixes.apply()
    loop = asyncio.new_event_loop()
    app = faust.App("faust-fixes-test", broker="kafka://127.0.0.1:1", loop=loop)
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
