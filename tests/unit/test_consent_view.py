"""Specs for the gateways' consent view and its read barrier, where they are pure: which partition holds a
customer, how far the view has applied each partition, what it blocks, and the proof the ledger keeps."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from connectors.gateways.consent_view import (
    AppliedPositions,
    ConsentView,
    partition_for,
)
from connectors.gateways.ledger import SendLedger
from schemas.codec import encode
from schemas.customers import ConsentSnapshot, ConsentState
from schemas.messages import LedgerState
from schemas.types import Channel, Purpose
from tests import factories as f

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)

# Apache Kafka's UtilsTest.testMurmur2: key bytes -> the Java client's murmur2 (a signed int).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("key", list(JAVA_MURMUR2))
@pytest.mark.parametrize("count", [1, 3, 6, 24, 50])
def test_a_key_lands_where_the_java_client_puts_it(key: bytes, count: int) -> None:
    assert partition_for(key, range(count)) == (JAVA_MURMUR2[key] & 0x7FFFFFFF) % count


def test_the_partition_does_not_depend_on_the_order_partitions_are_listed_in() -> None:
    assert partition_for(b"foobar", [49 - p for p in range(50)]) == partition_for(b"foobar", range(50)) == 16


def test_applied_positions_only_move_forward() -> None:
    applied = AppliedPositions()
    assert applied.reached(0, 0) and not applied.reached(0, 1)
    applied.advance(0, 5)
    applied.advance(0, 3)  # a stale report
    assert applied.reached(0, 5) and not applied.reached(0, 6) and not applied.reached(1, 1)


def test_a_waiter_wakes_once_everything_before_its_offset_is_applied() -> None:
    async def scenario() -> list[str]:
        applied, story = AppliedPositions(), []

        async def waiter() -> None:
            await applied.wait_for(2, 10)
            story.append("caught up")

        task = asyncio.create_task(waiter())
        for position in (4, 9):
            await asyncio.sleep(0)  # no time passes: the waiting task gets its turn between steps
            applied.advance(2, position)
            story.append(f"at {position}")
        await asyncio.sleep(0)  # a turn for the waiting task, as above (no time passes)
        applied.advance(1, 50)  # another partition does not count
        await asyncio.sleep(0)  # a turn for the waiting task, as above (no time passes)
        applied.advance(2, 12)  # past the offset, as after a compaction gap
        await task
        return story

    assert asyncio.run(scenario()) == ["at 4", "at 9", "caught up"]


def test_a_waiter_that_never_catches_up_is_ended_by_its_deadline() -> None:
    async def scenario() -> None:
        applied = AppliedPositions()
        applied.advance(0, 3)
        async with asyncio.timeout(0.05):
            await applied.wait_for(0, 4)

    with pytest.raises(TimeoutError):
        asyncio.run(scenario())


def _snapshot(customer_id: str, **slots: ConsentState) -> bytes:
    return encode(ConsentSnapshot(customer_id=customer_id, store_id="store-1", slots=slots, updated_at=NOW))


def test_the_view_blocks_exactly_the_opted_out_slot_and_forgets_it_when_consent_returns() -> None:
    view, customer = ConsentView("customers.consent_state"), "c-1"
    marketing = f.command(customer, purpose=Purpose.MARKETING)
    transactional = f.command(customer)
    key = customer.encode()
    view._apply(0, key, _snapshot(customer, **{"sms:marketing": ConsentState.OPTED_OUT}), 0)
    assert view.blocks(marketing) and not view.blocks(transactional)
    assert not view.blocks(f.command("c-2", purpose=Purpose.MARKETING))
    view._apply(0, key, _snapshot(customer, **{"sms:marketing": ConsentState.OPTED_IN}), 1)
    assert not view.blocks(marketing)
    view._apply(0, key, _snapshot(customer, **{"sms:marketing": ConsentState.OPTED_OUT}), 2)
    view._apply(0, key, None, 3)  # a tombstone (an erased customer): nothing known, nothing blocked
    assert not view.blocks(marketing)


class _Publisher:
    """Acknowledges every append with the next offset, as a one-partition broker would."""

    def __init__(self) -> None:
        self.offset = -1

    async def append(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        self.offset += 1
        return self.offset


def test_the_ledger_carries_the_checked_consent_position_into_the_settled_entry() -> None:
    async def scenario() -> list[int | None]:
        ledger = SendLedger(_Publisher(), "gateways.sms.ledger", Channel.SMS, "twilio")
        positions = []
        await ledger.record("m-1", LedgerState.ATTEMPTING, NOW, consent_position=41)
        await ledger.forget("m-1")  # throttled: the call never reached the provider
        await ledger.record("m-1", LedgerState.ATTEMPTING, NOW, consent_position=57)  # checked again
        positions.append(ledger.get("m-1").consent_position)
        await ledger.record("m-1", LedgerState.ACCEPTED, NOW, "SM1")
        positions.append(ledger.get("m-1").consent_position)
        await ledger.advance_receipt("m-1", "delivered", NOW)
        positions.append(ledger.get("m-1").consent_position)
        await ledger.record("m-2", LedgerState.ATTEMPTING, NOW)  # transactional: no barrier, no position
        positions.append(ledger.get("m-2").consent_position)
        return positions

    assert asyncio.run(scenario()) == [57, 57, 57, None]
