# -*- test-case-name: txhttp.test.test_client_breaker -*-
"""
Circuit breakers: stop calling a host that keeps failing, then probe it.

A `CircuitBreaker` is CLOSED while calls succeed. After
``failure_threshold`` consecutive failures it trips to OPEN: every call
fails at once with `HTTPCircuitOpenError`, without touching the network.
Once ``recovery_timeout`` seconds passed it becomes HALF_OPEN and lets up to
``half_open_max_calls`` trial calls through; if that many succeed it closes
again, and any failure opens it for another ``recovery_timeout``.

The legal moves are one table (`CircuitState` x ``CircuitInput``); counters
decide which input an outcome is, the table decides where it leads. The move
from OPEN to HALF_OPEN happens when the breaker is next consulted, by the
injected clock, so a breaker owns no timer and leaves none behind.

`CircuitBreakerRegistry` keeps one breaker per host, creating them on first
use, bounded by ``max_hosts``. What counts as a failure (errors, some
statuses) is decided by the caller, usually `ResiliencePipeline`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from twisted.internet.interfaces import IReactorTime
from typing_extensions import assert_never

from ._exceptions import HTTPCircuitOpenError

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_HALF_OPEN_MAX_CALLS",
    "DEFAULT_MAX_BREAKER_HOSTS",
    "DEFAULT_RECOVERY_TIMEOUT",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitInput",
    "CircuitPermit",
    "CircuitState",
]

DEFAULT_FAILURE_THRESHOLD: Final = 5
"""Consecutive failures that open a circuit: a few blips do not, an outage does."""

DEFAULT_RECOVERY_TIMEOUT: Final = 30.0
"""Seconds a circuit stays open before trial calls probe the host again."""

DEFAULT_HALF_OPEN_MAX_CALLS: Final = 1
"""
Trial calls let through while half-open, and successes needed to close.

One: a host that just recovered gets a single probe, not a stampede.
"""

DEFAULT_FAILURE_STATUSES: Final[frozenset[int]] = frozenset({502, 503, 504})
"""
Response statuses that count as a failure of the host.

Gateway and availability errors say the host (or what is behind it) is down
or overloaded; other 5xx answers are usually about one request.
"""

DEFAULT_MAX_BREAKER_HOSTS: Final = 1024
"""
Breakers a registry keeps; past that, the least recently used one is dropped.

Bounds memory for clients that talk to many hosts; a dropped breaker starts
again closed the next time its host is used.
"""


class CircuitState(Enum):
    """Where a circuit breaker is."""

    CLOSED = auto()
    """Calls go through; consecutive failures are counted."""
    OPEN = auto()
    """Calls fail fast until the recovery timeout passed."""
    HALF_OPEN = auto()
    """A few trial calls go through to probe the host."""


class CircuitInput(Enum):
    """What happened to a circuit breaker, as its transition table sees it."""

    SUCCESS = auto()
    """A call succeeded (in HALF_OPEN: more trials are still needed)."""
    FAILURE = auto()
    """A call failed (in CLOSED: still below the threshold)."""
    THRESHOLD_REACHED = auto()
    """A call failed and the consecutive failures reached the threshold."""
    TRIALS_SUCCEEDED = auto()
    """The last trial call needed to close the circuit succeeded."""
    RECOVERY_ELAPSED = auto()
    """The recovery timeout passed since the circuit opened."""
    RESET = auto()
    """The breaker was reset by hand."""


_TRANSITIONS: Final[Mapping[tuple[CircuitState, CircuitInput], CircuitState]] = {
    (CircuitState.CLOSED, CircuitInput.SUCCESS): CircuitState.CLOSED,
    (CircuitState.CLOSED, CircuitInput.FAILURE): CircuitState.CLOSED,
    (CircuitState.CLOSED, CircuitInput.THRESHOLD_REACHED): CircuitState.OPEN,
    (CircuitState.OPEN, CircuitInput.RECOVERY_ELAPSED): CircuitState.HALF_OPEN,
    (CircuitState.HALF_OPEN, CircuitInput.SUCCESS): CircuitState.HALF_OPEN,
    (CircuitState.HALF_OPEN, CircuitInput.FAILURE): CircuitState.OPEN,
    (CircuitState.HALF_OPEN, CircuitInput.TRIALS_SUCCEEDED): CircuitState.CLOSED,
    # A manual reset is legal everywhere and always closes.
    **{(state, CircuitInput.RESET): CircuitState.CLOSED for state in CircuitState},
}
"""
Every legal move. Outcomes of calls that started before the latest move are
ignored rather than fed here (see `CircuitPermit`), so OPEN never sees
SUCCESS or FAILURE.
"""


def next_state(state: CircuitState, event: CircuitInput) -> CircuitState:
    """
    Where ``event`` leads from ``state``, by the transition table.

    Raises:
        RuntimeError: the move is not legal (a bug in the caller).
    """
    try:
        return _TRANSITIONS[state, event]
    except KeyError:
        raise RuntimeError(
            f"bug: {event.name} is not valid in circuit state {state.name}"
        ) from None


@dataclass(eq=False, slots=True)
class CircuitPermit:
    """
    Leave to make one call through a `CircuitBreaker`.

    Report the call's outcome exactly once: ``record_success``,
    ``record_failure``, or ``release`` when the call ended in a way that says
    nothing about the host (cancelled, refused locally). Later reports are
    ignored, as are reports for a permit granted before the breaker last
    changed state (a slow call must not close a circuit it did not probe).
    """

    _breaker: CircuitBreaker
    _generation: int
    _trial: bool
    _done: bool = False

    def record_success(self) -> None:
        """The call succeeded."""
        if self._finish():
            self._breaker._on_success(self._generation)

    def record_failure(self) -> None:
        """The call failed in a way that counts against the host."""
        if self._finish():
            self._breaker._on_failure(self._generation)

    def release(self) -> None:
        """The call ended without saying anything about the host."""
        self._finish()

    def _finish(self) -> bool:
        if self._done:
            return False
        self._done = True
        if self._trial:
            self._breaker._trial_done(self._generation)
        return True


class CircuitBreaker:
    """
    A circuit breaker for one host.

    Args:
        clock: The time source for the recovery timeout.
        host: The host this breaker guards, for error messages.
        failure_threshold: Consecutive failures that open the circuit
            (``DEFAULT_FAILURE_THRESHOLD``).
        recovery_timeout: Seconds the circuit stays open
            (``DEFAULT_RECOVERY_TIMEOUT``).
        half_open_max_calls: Concurrent trial calls while half-open, and
            successes needed to close (``DEFAULT_HALF_OPEN_MAX_CALLS``).
        failure_statuses: Response statuses that count as failures
            (``DEFAULT_FAILURE_STATUSES``); read by `ResiliencePipeline`.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        host: str = "",
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT,
        half_open_max_calls: int = DEFAULT_HALF_OPEN_MAX_CALLS,
        failure_statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError(
                f"failure_threshold must be at least 1, not {failure_threshold!r}"
            )
        if recovery_timeout < 0:
            raise ValueError(
                f"recovery_timeout must not be negative, not {recovery_timeout!r}"
            )
        if half_open_max_calls < 1:
            raise ValueError(
                f"half_open_max_calls must be at least 1, not {half_open_max_calls!r}"
            )
        self._clock = clock
        self.host = host
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.failure_statuses = failure_statuses
        self._state = CircuitState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trials_in_flight = 0
        self._trial_successes = 0

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit past its timeout reads HALF_OPEN)."""
        self._check_recovery()
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures counted since the last success while closed."""
        return self._failures

    def retry_after(self) -> float | None:
        """Seconds until an open circuit lets a trial through; ``None`` if not open."""
        if self.state is not CircuitState.OPEN:
            return None
        return max(0.0, self._opened_at + self.recovery_timeout - self._clock.seconds())

    def is_failure_status(self, status: int) -> bool:
        """``True`` if a response with ``status`` counts as a failure of the host."""
        return status in self.failure_statuses

    def acquire(
        self, *, method: str | None = None, url: str | None = None
    ) -> CircuitPermit:
        """
        Ask to make one call.

        Args:
            method: The request method, for the error message.
            url: The request URL, for the error message.

        Returns:
            A permit on which to report the call's outcome.

        Raises:
            HTTPCircuitOpenError: the circuit is open, or half-open with every
                trial slot taken. It says the host and, when open, how many
                seconds remain before the next trial.
        """
        state = self.state
        if state is CircuitState.CLOSED:
            return CircuitPermit(self, self._generation, False)
        if (
            state is CircuitState.HALF_OPEN
            and self._trials_in_flight + self._trial_successes
            < self.half_open_max_calls
        ):
            self._trials_in_flight += 1
            return CircuitPermit(self, self._generation, True)
        wait = self.retry_after()
        if wait is None:
            message = (
                f"circuit for {self.host!r} is half-open and its "
                f"{self.half_open_max_calls} trial call(s) are in flight"
            )
        else:
            message = (
                f"circuit for {self.host!r} is open after "
                f"{self.failure_threshold} consecutive failures; "
                f"next trial in {wait:.3g} s"
            )
        raise HTTPCircuitOpenError(
            message, host=self.host, retry_after=wait, method=method, url=url
        )

    def reset(self) -> None:
        """Close the circuit and forget every count."""
        self._move(CircuitInput.RESET)

    def _check_recovery(self) -> None:
        if (
            self._state is CircuitState.OPEN
            and self._clock.seconds() >= self._opened_at + self.recovery_timeout
        ):
            self._move(CircuitInput.RECOVERY_ELAPSED)

    def _on_success(self, generation: int) -> None:
        self._check_recovery()
        if generation != self._generation:
            return
        if self._state is CircuitState.HALF_OPEN:
            self._trial_successes += 1
            if self._trial_successes >= self.half_open_max_calls:
                self._move(CircuitInput.TRIALS_SUCCEEDED)
                return
        self._move(CircuitInput.SUCCESS)

    def _on_failure(self, generation: int) -> None:
        self._check_recovery()
        if generation != self._generation:
            return
        if (
            self._state is CircuitState.CLOSED
            and self._failures + 1 >= self.failure_threshold
        ):
            self._move(CircuitInput.THRESHOLD_REACHED)
            return
        self._move(CircuitInput.FAILURE)

    def _trial_done(self, generation: int) -> None:
        if generation == self._generation:
            self._trials_in_flight -= 1

    def _move(self, event: CircuitInput) -> None:
        previous = self._state
        self._state = next_state(previous, event)
        if self._state is not previous or event is CircuitInput.RESET:
            # Permits granted before this move report into the void.
            self._generation += 1
            self._trials_in_flight = 0
            self._trial_successes = 0
        match event:
            case CircuitInput.SUCCESS | CircuitInput.RESET:
                self._failures = 0
            case CircuitInput.FAILURE:
                self._failures += 1
            case CircuitInput.THRESHOLD_REACHED:
                self._failures += 1
                self._opened_at = self._clock.seconds()
            case CircuitInput.TRIALS_SUCCEEDED:
                self._failures = 0
            case CircuitInput.RECOVERY_ELAPSED:
                pass
            case _:
                assert_never(event)
        if previous is CircuitState.HALF_OPEN and self._state is CircuitState.OPEN:
            self._opened_at = self._clock.seconds()

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker host={self.host!r} state={self._state.name} "
            f"failures={self._failures}>"
        )


class CircuitBreakerRegistry:
    """
    One `CircuitBreaker` per host, created on first use.

    Every breaker gets the settings given here. At most ``max_hosts``
    breakers are kept (``DEFAULT_MAX_BREAKER_HOSTS``); beyond that the least
    recently used is dropped, preferring a closed one.

    Args:
        clock: The time source of every breaker.
        failure_threshold: See `CircuitBreaker`.
        recovery_timeout: See `CircuitBreaker`.
        half_open_max_calls: See `CircuitBreaker`.
        failure_statuses: See `CircuitBreaker`.
        max_hosts: How many breakers to keep.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        failure_threshold: int = DEFAULT_FAILURE_THRESHOLD,
        recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT,
        half_open_max_calls: int = DEFAULT_HALF_OPEN_MAX_CALLS,
        failure_statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES,
        max_hosts: int = DEFAULT_MAX_BREAKER_HOSTS,
    ) -> None:
        if max_hosts < 1:
            raise ValueError(f"max_hosts must be at least 1, not {max_hosts!r}")
        # Build one breaker now so bad settings fail here, not on first use.
        CircuitBreaker(
            clock,
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            half_open_max_calls=half_open_max_calls,
        )
        self._clock = clock
        self._failure_threshold = failure_threshold
        self._recovery_timeout = recovery_timeout
        self._half_open_max_calls = half_open_max_calls
        self._failure_statuses = failure_statuses
        self.max_hosts = max_hosts
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()

    def get(self, host: str) -> CircuitBreaker:
        """The breaker for ``host`` (for example ``"example.com:443"``)."""
        breaker = self._breakers.get(host)
        if breaker is not None:
            self._breakers.move_to_end(host)
            return breaker
        if len(self._breakers) >= self.max_hosts:
            self._evict()
        breaker = CircuitBreaker(
            self._clock,
            host=host,
            failure_threshold=self._failure_threshold,
            recovery_timeout=self._recovery_timeout,
            half_open_max_calls=self._half_open_max_calls,
            failure_statuses=self._failure_statuses,
        )
        self._breakers[host] = breaker
        return breaker

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, host: object) -> bool:
        return host in self._breakers

    def states(self) -> dict[str, CircuitState]:
        """The state of every kept breaker, by host (for health checks)."""
        return {host: breaker.state for host, breaker in self._breakers.items()}

    def reset(self) -> None:
        """Reset every kept breaker to closed."""
        for breaker in self._breakers.values():
            breaker.reset()

    def _evict(self) -> None:
        for host, breaker in self._breakers.items():
            if breaker.state is CircuitState.CLOSED:
                del self._breakers[host]
                return
        self._breakers.popitem(last=False)
