"""Flow control: the token bucket paces, the circuit breaker backs off; neither drops anything."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.gateways.flow import CircuitBreaker, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)


def test_tokens_come_back_with_time_up_to_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock)
    bucket.reserve(), bucket.reserve()
    clock.now += 60
    assert [bucket.reserve() for _ in range(3)] == [0, 0, pytest.approx(0.5)]


@settings(max_examples=200)
@given(st.floats(0.5, 200), st.integers(1, 20), st.lists(st.floats(0, 2), min_size=1, max_size=60))
def test_callers_who_wait_as_told_never_exceed_the_rate(rate, burst, gaps) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
    start, sends = clock.now, []
    for gap in gaps:
        clock.now += gap
        clock.now += bucket.reserve()  # the caller sleeps as told
        sends.append(clock.now)
    assert len(sends) <= burst + rate * (sends[-1] - start) + 1e-6


def test_the_breaker_opens_after_consecutive_failures_and_closes_on_success() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, cool_off=10, clock=clock)
    breaker.failure(), breaker.failure()
    assert breaker.wait() == 0
    breaker.failure()
    assert breaker.open and breaker.wait() == 10
    clock.now += 4
    assert breaker.wait() == 6
    clock.now += 6
    assert breaker.wait() == 0  # half-open: one trial call
    breaker.success()
    assert not breaker.open


def test_a_failed_trial_call_opens_the_breaker_again() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, cool_off=5, clock=clock)
    breaker.failure()
    clock.now += 5
    breaker.failure()
    assert breaker.wait() == 5
