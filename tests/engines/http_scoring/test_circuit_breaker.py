from __future__ import annotations

import threading

import pytest

from mlworker.engines.http_scoring.circuit_breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_s=10, clock=clock)
    _fail(breaker, 2)
    assert breaker.allow()
    breaker.record_success()  # a success resets the count
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2
    _fail(breaker, 1)
    assert breaker.state.value == "open"
    assert not breaker.allow()


def test_half_open_admits_one_trial_and_success_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=10, clock=clock)
    _fail(breaker, 1)
    clock.now += 9.999
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 0.001
    assert breaker.state.value == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # the trial is out; nobody else goes
    breaker.record_success()
    assert breaker.state.value == "closed"
    assert breaker.allow() and breaker.allow()


def test_failed_trial_reopens_for_a_full_reset_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout_s=10, clock=clock)
    _fail(breaker, 5)
    clock.now += 10
    assert breaker.allow()
    clock.now += 3  # the trial took 3 s to fail
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_only_one_of_many_threads_gets_the_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_s=1, clock=clock)
    _fail(breaker, 1)
    clock.now += 1
    barrier = threading.Barrier(16)
    granted: list[bool] = []

    def contend() -> None:
        barrier.wait()
        granted.append(breaker.allow())

    threads = [threading.Thread(target=contend) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 1


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, -1.0)])
def test_bad_parameters_are_refused(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=threshold, reset_timeout_s=reset)
