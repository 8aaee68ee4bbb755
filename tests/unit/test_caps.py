"""Specs for streams.caps: marketing frequency caps across channels, with a small JSON-able state."""

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.types import Purpose
from streams.caps import DEFAULT_POLICY, Allowed, Capped, CapRule, FrequencyPolicy, applies_to, check, record

UTC = dt.timezone.utc
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
T0 = dt.datetime(2026, 3, 2, 10, tzinfo=UTC)
US = dt.timedelta(microseconds=1)


def sent(*times, policy=DEFAULT_POLICY):
    state = None
    for at in times:
        state = record(state, at, policy)
    return state


def test_an_empty_state_allows():
    assert check(None, T0, DEFAULT_POLICY) == Allowed()
    assert check({}, T0, DEFAULT_POLICY) == Allowed()


def test_the_default_allows_two_a_day_and_then_caps_until_the_first_leaves_the_24_hours():
    state = sent(T0, T0 + HOUR)
    assert check(sent(T0), T0 + HOUR) == Allowed()
    assert check(state, T0 + 2 * HOUR) == Capped(T0 + DAY)
    assert check(state, T0 + DAY - US) == Capped(T0 + DAY)
    assert check(state, T0 + DAY) == Allowed()


def test_the_weekly_cap_holds_even_when_every_day_has_room():
    days = [T0 + n * DAY for n in range(5)]
    state = sent(*days)
    assert check(state, T0 + 5 * DAY) == Capped(T0 + 7 * DAY)
    assert check(state, T0 + 7 * DAY) == Allowed()


def test_until_is_the_latest_of_the_rules_own_times():
    state = sent(T0, T0 + DAY, T0 + 2 * DAY, T0 + 4 * DAY + HOUR, T0 + 4 * DAY + 2 * HOUR)
    # Both rules are at their cap: the daily one frees up at day 5 + 1 h, the weekly one at day 7.
    assert check(state, T0 + 4 * DAY + 3 * HOUR) == Capped(T0 + 7 * DAY)
    state = sent(T0, T0 + 4 * DAY + HOUR, T0 + 4 * DAY + 2 * HOUR)
    assert check(state, T0 + 4 * DAY + 3 * HOUR) == Capped(T0 + 5 * DAY + HOUR)


def test_record_keeps_only_what_the_longest_window_and_largest_count_need():
    times = [T0 + n * HOUR for n in range(0, 24 * 30, 7)]
    state = sent(*times)
    assert len(state["sent"]) <= 5
    assert state["sent"] == sorted(state["sent"])
    assert all(us > state["sent"][-1] - 7 * 86_400_000_000 for us in state["sent"])


def test_state_is_json_and_record_does_not_modify_its_input():
    state = sent(T0)
    before = json.dumps(state)
    after = record(state, T0 + HOUR)
    assert json.dumps(state) == before
    assert json.loads(json.dumps(after)) == after
    assert after == {"sent": [int(T0.timestamp()) * 10**6, int((T0 + HOUR).timestamp()) * 10**6]}


def test_times_are_kept_to_the_microsecond_in_any_time_zone():
    policy = FrequencyPolicy((CapRule(1, HOUR),))
    at = (T0 + 1500 * US).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    state = record(None, at, policy)
    assert state["sent"] == [int(T0.timestamp()) * 10**6 + 1500]
    assert check(state, at + HOUR - US, policy) == Capped(T0 + HOUR + 1500 * US)
    assert check(state, at + HOUR, policy) == Allowed()


def test_out_of_order_records_are_kept_sorted():
    policy = FrequencyPolicy((CapRule(3, DAY),))
    state = sent(T0 + 2 * HOUR, T0, T0 + HOUR, policy=policy)
    assert state["sent"] == sorted(state["sent"])
    assert check(state, T0 + 3 * HOUR, policy) == Capped(T0 + DAY)


def test_a_policy_without_rules_never_caps():
    policy = FrequencyPolicy(())
    state = sent(*(T0 + n * US * 1000 for n in range(50)), policy=policy)
    assert state == {"sent": []}
    assert check(state, T0, policy) == Allowed()


def test_only_marketing_is_capped():
    assert applies_to(Purpose.MARKETING) and applies_to("marketing")
    assert not applies_to(Purpose.TRANSACTIONAL) and not applies_to("transactional")
    with pytest.raises(ValueError):
        applies_to("spam")


def test_bad_rules_and_policies_are_refused():
    with pytest.raises(ValueError):
        CapRule(0, DAY)
    with pytest.raises(ValueError):
        CapRule(1, dt.timedelta(0))
    with pytest.raises(ValueError):
        FrequencyPolicy((CapRule(1, DAY),), on_capped="queue")
    with pytest.raises(ValueError, match="aware"):
        record(None, dt.datetime(2026, 1, 1))
    assert FrequencyPolicy((CapRule(1, DAY),)).on_capped == "defer"
    assert DEFAULT_POLICY.rules == (CapRule(2, DAY), CapRule(5, 7 * DAY))


# Properties

RULES = st.lists(st.builds(CapRule, st.integers(1, 5), st.timedeltas(dt.timedelta(minutes=1), 7 * DAY)),
                 min_size=1, max_size=3).map(tuple)
GAPS = st.lists(st.timedeltas(dt.timedelta(0), 2 * DAY), min_size=1, max_size=40)


def oracle_allows(history, now, rules):
    """Straight from the definition, over the whole history: fewer than N sends in (now - W, now]."""
    return all(sum(1 for s in history if now - rule.window < s <= now) < rule.max_count for rule in rules)


@settings(max_examples=200, deadline=None)
@given(rules=RULES, gaps=GAPS, micros=st.integers(0, 999_999))
def test_a_caller_following_check_and_record_never_exceeds_any_cap(rules, gaps, micros):
    policy = FrequencyPolicy(rules)
    state, history, now = None, [], T0 + dt.timedelta(microseconds=micros)
    for gap in gaps:
        now += gap
        decision = check(state, now, policy)
        if isinstance(decision, Allowed):
            state = record(state, now, policy)
            history.append(now)
        else:
            assert decision.until > now
        assert len(state["sent"] if state else []) <= max(rule.max_count for rule in rules)
    for rule in rules:
        for first in history:  # the fullest half-open window starts at a send
            assert sum(1 for s in history if first <= s < first + rule.window) <= rule.max_count


@settings(max_examples=200, deadline=None)
@given(rules=RULES, gaps=GAPS, probe=st.timedeltas(dt.timedelta(0), 8 * DAY))
def test_until_is_the_first_moment_the_check_passes(rules, gaps, probe):
    policy = FrequencyPolicy(rules)
    state, history, now = None, [], T0
    for gap in gaps:  # record regardless of the check, to reach every kind of state
        now += gap
        state = record(state, now, policy)
        history.append(now)
    at = now + probe
    decision = check(state, at, policy)
    assert isinstance(decision, Allowed) == oracle_allows(history, at, rules)
    if isinstance(decision, Capped):
        assert decision.until > at
        assert check(state, decision.until, policy) == Allowed()
        assert check(state, decision.until - US, policy) == Capped(decision.until)
        assert oracle_allows(history, decision.until, rules)
        assert not oracle_allows(history, decision.until - US, rules)


@settings(max_examples=100, deadline=None)
@given(rules=RULES, gaps=GAPS)
def test_state_size_is_bounded_by_the_largest_count(rules, gaps):
    policy = FrequencyPolicy(rules)
    state, now = None, T0
    for gap in gaps * 3:
        now += gap
        state = record(state, now, policy)
        assert len(state["sent"]) <= max(rule.max_count for rule in rules)
        assert state["sent"] == sorted(state["sent"])
