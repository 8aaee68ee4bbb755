"""Concurrency and pacing of a gateway: call slots (transactional first), customer lanes, limits per sender."""

from __future__ import annotations

import asyncio

import pytest

from connectors.gateways.flow import SenderLimits
from connectors.gateways.lanes import CustomerLanes, PrioritySlots


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_freed_call_slot_goes_to_a_waiting_transactional_send_before_any_bulk_one() -> None:
    async def main() -> list[str]:
        slots, order = PrioritySlots(1), []
        release = asyncio.Event()

        async def take(name: str, urgent: bool) -> None:
            async with slots.slot(urgent):
                order.append(name)
                if name == "first":
                    await release.wait()

        first = asyncio.create_task(take("first", False))
        await asyncio.sleep(0)  # "first" holds the only slot
        waiting = [asyncio.create_task(take(f"bulk-{i}", False)) for i in range(3)]
        await asyncio.sleep(0)  # one turn of the loop (no wait): the bulk sends queue up first
        waiting.append(asyncio.create_task(take("order-update", True)))
        await asyncio.sleep(0)  # one turn of the loop: the order update queues behind them
        release.set()
        await asyncio.gather(first, *waiting)
        return order

    assert asyncio.run(main()) == ["first", "order-update", "bulk-0", "bulk-1", "bulk-2"]


def test_no_more_sends_hold_a_slot_than_there_are_slots() -> None:
    async def main() -> int:
        slots, busy, most = PrioritySlots(3), 0, 0

        async def call() -> None:
            nonlocal busy, most
            async with slots.slot(False):
                busy += 1
                most = max(most, busy)
                await asyncio.sleep(0)  # one turn of the loop, so the others can take a slot meanwhile
                busy -= 1

        await asyncio.gather(*(call() for _ in range(20)))
        return most

    assert asyncio.run(main()) == 3


def test_a_customers_sends_follow_one_another_while_other_customers_go_ahead() -> None:
    async def main() -> list[str]:
        lanes, order = CustomerLanes(), []
        slow = asyncio.Event()

        async def send(customer: bytes, name: str) -> None:
            before, mine = lanes.join("commands", customer)
            try:
                if before is not None:
                    await before
                if name == "a1":
                    await slow.wait()  # a slow provider call
                order.append(name)
            finally:
                lanes.leave("commands", customer, mine)

        tasks = [asyncio.create_task(send(c, n)) for c, n in
                 ((b"a", "a1"), (b"a", "a2"), (b"b", "b1"), (b"a", "a3"), (b"b", "b2"))]
        while len(order) < 2:  # b's sends do not wait for a's slow one
            await asyncio.sleep(0)  # one turn of the loop per check: a condition, not a timed wait
        slow.set()
        await asyncio.gather(*tasks)
        assert len(lanes) == 0
        return order

    assert asyncio.run(main()) == ["b1", "b2", "a1", "a2", "a3"]


def test_each_sender_has_its_own_bucket() -> None:
    clock = FakeClock()
    limits = SenderLimits(rate=10, burst=2, clock=clock)
    assert [limits.take("phone-1"), limits.take("phone-1")] == [0.0, 0.0]
    assert limits.take("phone-1") > 0  # phone-1 spent its burst
    assert limits.take("phone-2") == 0.0  # another number is counted apart


def test_an_sms_spends_one_token_per_segment() -> None:
    clock = FakeClock()
    limits = SenderLimits(rate=10, burst=3, clock=clock)
    assert limits.take("+15005550006", cost=3) == 0.0
    assert limits.take("+15005550006", cost=1) == pytest.approx(0.1)  # a segment's worth of refill away
    clock.now = 0.3
    assert limits.take("+15005550006", cost=3) == 0.0


def test_bulk_waits_behind_a_transactional_reservation_and_never_pushes_it_back() -> None:
    clock = FakeClock()
    limits = SenderLimits(rate=10, burst=1, clock=clock)
    assert limits.take("n") == 0.0  # bulk spends the only token
    assert limits.reserve("n") == pytest.approx(0.1)  # the order update reserves the next one
    clock.now = 0.1
    assert limits.take("n") > 0  # the refilled token is the order update's, not bulk's
    clock.now = 0.2
    assert limits.take("n") == 0.0
