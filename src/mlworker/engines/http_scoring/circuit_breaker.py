"""A consecutive-failure circuit breaker (closed → open → half-open → closed).

The breaker protects a scoring request from an endpoint that is down: after
``failure_threshold`` consecutive failed calls it *opens* and refuses calls outright, so
candidates get their fallback score at once instead of waiting for a timeout each. After
``reset_timeout_s`` it lets exactly one trial call through (*half-open*): success closes it,
failure opens it for another ``reset_timeout_s``.

References
----------
.. [1] M. T. Nygard, *Release It!*, 2nd ed., Pragmatic Bookshelf, 2018, "Circuit Breaker".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    """Where a :class:`CircuitBreaker` stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe circuit breaker counting consecutive failures.

    Every :meth:`allow` that returns ``True`` must be followed by exactly one
    :meth:`record_success` or :meth:`record_failure` for that call.

    Parameters
    ----------
    failure_threshold
        Consecutive failures that open the breaker.
    reset_timeout_s
        Seconds the breaker stays open before it lets one trial call through.
    clock
        Monotonic time source in seconds (tests pass a fake one).

    Examples
    --------
    >>> now = [0.0]
    >>> breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=30, clock=lambda: now[0])
    >>> for _ in range(2):
    ...     assert breaker.allow()
    ...     breaker.record_failure()
    >>> breaker.state, breaker.allow()
    (<BreakerState.OPEN: 'open'>, False)
    >>> now[0] = 30.0
    >>> breaker.state, breaker.allow(), breaker.allow()
    (<BreakerState.HALF_OPEN: 'half_open'>, True, False)
    >>> breaker.record_success()
    >>> breaker.state
    <BreakerState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        *,
        failure_threshold: int,
        reset_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if reset_timeout_s < 0:
            raise ValueError(f"reset_timeout_s must be non-negative, got {reset_timeout_s}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose reset timeout has passed is half-open."""
        with self._lock:
            return self._state_locked()

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        with self._lock:
            return self._consecutive_failures

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only the first caller may."""
        with self._lock:
            state = self._state_locked()
            if state is BreakerState.CLOSED:
                return True
            if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        """Record that a permitted call succeeded: close the breaker."""
        with self._lock:
            self._consecutive_failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def record_failure(self) -> None:
        """Record a failed call: open at the threshold, or re-open after a failed trial."""
        with self._lock:
            self._consecutive_failures += 1
            if self._trial_in_flight or self._consecutive_failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def _state_locked(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN
