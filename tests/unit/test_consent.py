"""Specs for streams.consent: folding the append-only consent ledger into per-customer state."""

from __future__ import annotations

import copy
import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.customers import ConsentState
from schemas.types import Channel, Purpose
from streams.consent import fold, state_of
from tests import factories as f

SMS, EMAIL = Channel.SMS, Channel.EMAIL
TRANSACTIONAL, MARKETING = Purpose.TRANSACTIONAL, Purpose.MARKETING
IN, OUT = ConsentState.OPTED_IN, ConsentState.OPTED_OUT
SLOTS = list(itertools.product(Channel, Purpose))


def at(seconds: float) -> dt.datetime:
    return f.NOW + dt.timedelta(seconds=seconds)


def change(channel=SMS, state=IN, purpose=MARKETING, when=f.NOW):
    return f.consent("cust-1", channel, state, purpose, at=when)


def fold_all(changes, state=None):
    for c in changes:
        state = fold(state, c)
    return state


def test_nothing_recorded_is_unknown():
    assert state_of(None, SMS, MARKETING) == ConsentState.UNKNOWN
    assert state_of({}, SMS, MARKETING) == ConsentState.UNKNOWN
    assert state_of(fold(None, change(SMS, IN, MARKETING)), EMAIL, MARKETING) == ConsentState.UNKNOWN
    assert state_of(fold(None, change(SMS, IN, MARKETING)), SMS, TRANSACTIONAL) == ConsentState.UNKNOWN


def test_the_newest_change_per_channel_and_purpose_is_kept():
    state = fold_all([change(SMS, IN, when=at(0)), change(SMS, OUT, when=at(10)), change(EMAIL, IN, when=at(5)),
                      change(SMS, IN, TRANSACTIONAL, when=at(1))])
    assert state_of(state, SMS, MARKETING) == OUT
    assert state_of(state, EMAIL, MARKETING) == IN
    assert state_of(state, SMS, TRANSACTIONAL) == IN


def test_an_older_opt_in_arriving_after_a_newer_opt_out_does_not_undo_it():
    state = fold_all([change(SMS, OUT, when=at(60)), change(SMS, IN, when=at(0))])
    assert state_of(state, SMS, MARKETING) == OUT


def test_an_opt_in_one_millisecond_older_than_the_opt_out_does_not_undo_it():
    state = fold_all([change(SMS, OUT, when=at(0.001)), change(SMS, IN, when=at(0))])
    assert state_of(state, SMS, MARKETING) == OUT


def test_changes_one_millisecond_apart_are_ordered_in_any_year():
    opt_out_at = dt.datetime(2038, 3, 1, 9, 0, 0, 2_000, tzinfo=dt.timezone.utc)
    state = fold_all([change(SMS, OUT, when=opt_out_at), change(SMS, IN, when=opt_out_at - dt.timedelta(milliseconds=1))])
    assert state_of(state, SMS, MARKETING) == OUT


def test_a_change_at_the_same_instant_as_the_recorded_one_replaces_it():
    state = fold_all([change(SMS, IN, when=at(0)), change(SMS, OUT, when=at(0))])
    assert state_of(state, SMS, MARKETING) == OUT


def test_the_state_remembers_which_change_decided_it():
    latest = change(SMS, OUT, when=at(10))
    state = fold_all([change(SMS, IN, when=at(0)), latest])
    assert state["sms:marketing"]["change_id"] == latest.change_id


def test_fold_does_not_modify_its_input():
    before = fold_all([change(SMS, IN, when=at(0)), change(EMAIL, OUT, TRANSACTIONAL, when=at(1))])
    snapshot = copy.deepcopy(before)
    after = fold(before, change(SMS, OUT, when=at(5)))
    assert before == snapshot
    assert state_of(before, SMS, MARKETING) == IN and state_of(after, SMS, MARKETING) == OUT


ledgers = st.lists(
    st.tuples(st.sampled_from(SLOTS), st.sampled_from(ConsentState), st.integers(-10**9, 10**9)),
    max_size=12, unique_by=lambda t: t[2],  # distinct timestamps (ms)
).map(lambda rows: [change(ch, state, purpose, f.NOW + dt.timedelta(milliseconds=ms))
                    for (ch, purpose), state, ms in rows])


@settings(max_examples=200)
@given(data=st.data(), changes=ledgers)
def test_any_arrival_order_of_the_same_changes_gives_the_same_state(data, changes):
    shuffled = data.draw(st.permutations(changes))
    assert fold_all(shuffled) == fold_all(changes)


@settings(max_examples=200)
@given(changes=ledgers)
def test_every_slot_holds_its_newest_change(changes):
    state = fold_all(changes)
    for channel, purpose in SLOTS:
        mine = [c for c in changes if (c.channel, c.purpose) == (channel, purpose)]
        expected = max(mine, key=lambda c: c.occurred_at).state if mine else ConsentState.UNKNOWN
        assert state_of(state, channel, purpose) == expected


@settings(max_examples=100)
@given(changes=ledgers, extra=ledgers)
def test_fold_never_modifies_the_state_it_is_given(changes, extra):
    state = fold_all(changes) or {}
    snapshot = copy.deepcopy(state)
    fold_all(extra, state)
    assert state == snapshot
