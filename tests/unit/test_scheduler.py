"""Specs for streams.scheduler: deferred sends per customer, as a JSON-able dict.

Nothing fires before its instant (due times are rounded up to the millisecond, "now" down); taking
an entry out is what makes a fire count once, so a second fire of the same entry finds nothing.
"""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.scheduler import add, due, take

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 24, 7, tzinfo=UTC)
MS, US = dt.timedelta(milliseconds=1), dt.timedelta(microseconds=1)

INSTANTS = st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1),
                        timezones=st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=-5)),
                                                   dt.timezone(dt.timedelta(hours=5, minutes=45))]))
IDS = st.text(min_size=1, max_size=12)
PAYLOADS = st.binary(max_size=64)


def ceil_ms(at: dt.datetime) -> dt.datetime:
    """Independent oracle: the instant rounded up to the whole millisecond."""
    at = at.astimezone(UTC)
    extra = at.microsecond % 1000
    return at if extra == 0 else at + (1000 - extra) * US


def due_ids(state, now) -> set[str]:
    return {message_id for message_id, _ in due(state, now)}


# --- examples ------------------------------------------------------------------------------------


def test_an_empty_state_has_nothing_due_and_nothing_to_take():
    assert list(due(None, T0)) == [] and list(due({}, T0)) == []
    assert take(None, "m-1") == ({}, None)
    assert take({}, "m-1") == ({}, None)


def test_an_entry_is_due_from_its_instant_on_and_gives_back_its_intent():
    state = add(None, "m-1", b"\x00avro\xff", T0, "quiet_hours")
    assert list(due(state, T0 - MS)) == []
    assert list(due(state, T0)) == [("m-1", T0)]
    assert list(due(state, T0 + dt.timedelta(days=3))) == [("m-1", T0)]
    remaining, intent = take(state, "m-1")
    assert (remaining, intent) == ({}, b"\x00avro\xff")


def test_a_second_take_of_the_same_entry_finds_nothing():
    state = add(None, "m-1", b"intent", T0, "frequency_cap")
    state, first = take(state, "m-1")
    state, second = take(state, "m-1")
    assert first == b"intent" and second is None and state == {}


def test_adding_the_same_id_again_replaces_the_entry():
    state = add(None, "m-1", b"old", T0, "quiet_hours")
    state = add(state, "m-1", b"new", T0 + dt.timedelta(hours=2), "frequency_cap")
    assert list(state) == ["m-1"] and state["m-1"]["reason"] == "frequency_cap"
    assert list(due(state, T0 + dt.timedelta(hours=1))) == []
    assert take(state, "m-1")[1] == b"new"


def test_sub_millisecond_due_times_fire_at_the_next_whole_millisecond():
    at = T0 + 1500 * US
    state = add(None, "m-1", b"x", at, "quiet_hours")
    assert list(due(state, at)) == []  # the same millisecond: not yet
    assert list(due(state, T0 + 2 * MS - US)) == []
    assert list(due(state, T0 + 2 * MS)) == [("m-1", T0 + 2 * MS)]


def test_the_state_is_json_and_add_and_take_leave_their_input_alone():
    state = add(None, "m-1", b"\x00\x01binary", T0, "quiet_hours")
    before = json.dumps(state)
    grown = add(state, "m-2", b"two", T0 + MS, "frequency_cap")
    shrunk, _ = take(state, "m-1")
    assert json.dumps(state) == before and "m-2" not in state and shrunk == {}
    assert json.loads(json.dumps(grown)) == grown
    assert grown["m-1"] == {"due": int(T0.timestamp() * 1000), "intent": "AAFiaW5hcnk=", "reason": "quiet_hours"}


def test_entries_of_other_messages_are_kept():
    state = add(add(None, "m-1", b"one", T0, "quiet_hours"), "m-2", b"two", T0 + MS, "quiet_hours")
    remaining, intent = take(state, "m-1")
    assert intent == b"one" and list(remaining) == ["m-2"]
    assert list(due(remaining, T0 + MS)) == [("m-2", T0 + MS)]


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=300)
@given(at=INSTANTS, now=INSTANTS)
def test_nothing_is_due_before_its_instant_and_it_is_due_from_the_rounded_instant_on(at, now):
    state = add(None, "m", b"x", at, "quiet_hours")
    fired = list(due(state, now))
    if now < at:
        assert fired == []
    if now >= ceil_ms(at):
        assert fired == [("m", ceil_ms(at))]
    for _, due_at in fired:
        assert due_at >= at and due_at - at < MS and due_at <= now


@settings(max_examples=300)
@given(at=INSTANTS, late=st.timedeltas(dt.timedelta(0), dt.timedelta(days=400)))
def test_every_entry_stays_due_however_late_the_timer_looks(at, late):
    state = add(None, "m", b"x", at, "quiet_hours")
    assert due_ids(state, ceil_ms(at) + late) == {"m"}


@st.composite
def schedules(draw) -> list[tuple[str, bytes, dt.datetime, str]]:
    return draw(st.lists(st.tuples(IDS, PAYLOADS, INSTANTS, st.sampled_from(["quiet_hours", "frequency_cap"])),
                         max_size=15))


@settings(max_examples=200)
@given(entries=schedules(), now=INSTANTS)
def test_add_then_due_and_take_agree_with_a_dict_of_the_last_entry_per_id(entries, now):
    state: dict = {}
    for message_id, payload, at, reason in entries:
        state = add(state, message_id, payload, at, reason)
    last = {message_id: (payload, at) for message_id, payload, at, _ in entries}  # a later add replaces
    assert set(state) == set(last)
    assert due_ids(state, now) == {m for m, (_, at) in last.items() if ceil_ms(at) <= now}
    for message_id, (payload, _) in last.items():
        state, taken = take(state, message_id)
        assert taken == payload
        state, again = take(state, message_id)
        assert again is None  # a repeated fire is harmless
    assert state == {} and list(due(state, now)) == []


@settings(max_examples=200)
@given(entries=schedules(), now=INSTANTS, data=st.data())
def test_taking_what_is_due_leaves_exactly_what_is_not(entries, now, data):
    state: dict = {}
    for message_id, payload, at, reason in entries:
        state = add(state, message_id, payload, at, reason)
    fired = list(due(state, now))
    fired += data.draw(st.lists(st.sampled_from(fired), max_size=3)) if fired else []  # some fire twice
    taken = []
    for message_id, _ in fired:
        state, intent = take(state, message_id)
        if intent is not None:
            taken.append(message_id)
    assert sorted(taken) == sorted({m for m, _ in fired})
    assert list(due(state, now)) == []
    assert all(take(state, m)[1] is not None for m in state)
