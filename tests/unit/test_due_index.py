"""Specs for the due-time index (streams/due_index.py)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from streams.core import JOURNEY_WAKE, SCHEDULED_SEND, Timer
from streams.due_index import DueIndex

T0 = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def test_only_what_is_due_is_taken_earliest_first_and_once():
    index = DueIndex()
    index.add("c1", [Timer(at(10), SCHEDULED_SEND, "m1"), Timer(at(5), JOURNEY_WAKE, "j1")])
    index.add("c2", [Timer(at(7), SCHEDULED_SEND, "m2")])
    assert index.pop_due(at(4)) == []
    assert [t.ident for _, t in index.pop_due(at(8))] == ["j1", "m2"]
    assert index.pop_due(at(8)) == []
    assert index.next_due() == at(10) and len(index) == 1


def test_a_timer_armed_twice_fires_once_and_the_limit_is_kept():
    index = DueIndex()
    timer = Timer(at(1), SCHEDULED_SEND, "m1")
    index.add("c1", [timer, timer])
    index.add("c1", [timer])
    index.add("c2", [Timer(at(1), SCHEDULED_SEND, "m2"), Timer(at(2), SCHEDULED_SEND, "m3")])
    assert len(index.pop_due(at(5), limit=2)) == 2
    assert len(index.pop_due(at(5))) == 1


@given(st.lists(st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 100), st.integers(0, 5)), max_size=40),
       st.integers(0, 100))
def test_every_armed_timer_due_by_now_is_taken_exactly_once(entries, now):
    index = DueIndex()
    armed = set()
    for customer, minute, ident in entries:
        timer = Timer(at(minute), SCHEDULED_SEND, f"m{ident}")
        index.add(customer, [timer])
        armed.add((customer, timer))
    taken = index.pop_due(at(now))
    assert len(taken) == len(set(taken))
    assert set(taken) == {(c, t) for c, t in armed if t.due <= at(now)}
    assert [t.due for _, t in taken] == sorted(t.due for _, t in taken)
