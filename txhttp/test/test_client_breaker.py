"""
Tests for `txhttp.client._breaker`: the circuit breaker and its registry.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client._breaker import (
    DEFAULT_FAILURE_THRESHOLD,
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitInput,
    CircuitState,
    next_state,
)
from txhttp.client._exceptions import HTTPCircuitOpenError

S, In = CircuitState, CircuitInput

EXPECTED: dict[tuple[CircuitState, CircuitInput], CircuitState] = {
    (S.CLOSED, In.SUCCESS): S.CLOSED,
    (S.CLOSED, In.FAILURE): S.CLOSED,
    (S.CLOSED, In.THRESHOLD_REACHED): S.OPEN,
    (S.CLOSED, In.RESET): S.CLOSED,
    (S.OPEN, In.RECOVERY_ELAPSED): S.HALF_OPEN,
    (S.OPEN, In.RESET): S.CLOSED,
    (S.HALF_OPEN, In.SUCCESS): S.HALF_OPEN,
    (S.HALF_OPEN, In.FAILURE): S.OPEN,
    (S.HALF_OPEN, In.TRIALS_SUCCEEDED): S.CLOSED,
    (S.HALF_OPEN, In.RESET): S.CLOSED,
}


def make(
    clock: Clock, threshold: int = 2, recovery: float = 10.0, trials: int = 1
) -> CircuitBreaker:
    """A breaker for host ``h:80`` with small settings."""
    return CircuitBreaker(
        clock,
        host="h:80",
        failure_threshold=threshold,
        recovery_timeout=recovery,
        half_open_max_calls=trials,
    )


def fail_times(breaker: CircuitBreaker, count: int) -> None:
    """Make ``count`` failing calls."""
    for _ in range(count):
        breaker.acquire().record_failure()


class TransitionTableTests(SynchronousTestCase):
    """Every (state, input) pair of the table."""

    def test_every_pair(self) -> None:
        """Legal pairs lead where documented; all others raise RuntimeError."""
        for state in CircuitState:
            for event in CircuitInput:
                expected = EXPECTED.get((state, event))
                if expected is None:
                    with self.assertRaises(RuntimeError) as caught:
                        next_state(state, event)
                    self.assertIn(event.name, str(caught.exception))
                    self.assertIn(state.name, str(caught.exception))
                else:
                    self.assertIs(expected, next_state(state, event), (state, event))


class CircuitBreakerTests(SynchronousTestCase):
    """Behaviour of one breaker, driven by a Clock."""

    def test_closed_until_threshold(self) -> None:
        """Failures below the threshold keep the circuit closed."""
        clock = Clock()
        breaker = make(clock, threshold=3)
        fail_times(breaker, 2)
        self.assertIs(S.CLOSED, breaker.state)
        self.assertEqual(2, breaker.consecutive_failures)
        fail_times(breaker, 1)
        self.assertIs(S.OPEN, breaker.state)

    def test_success_resets_count(self) -> None:
        """A success while closed resets the consecutive failures."""
        breaker = make(Clock(), threshold=2)
        fail_times(breaker, 1)
        breaker.acquire().record_success()
        self.assertEqual(0, breaker.consecutive_failures)
        fail_times(breaker, 1)
        self.assertIs(S.CLOSED, breaker.state)

    def test_open_fails_fast(self) -> None:
        """An open circuit refuses with HTTPCircuitOpenError naming host and wait."""
        clock = Clock()
        breaker = make(clock, recovery=10.0)
        fail_times(breaker, 2)
        clock.advance(4)
        with self.assertRaises(HTTPCircuitOpenError) as caught:
            breaker.acquire(method="GET", url="http://h/")
        error = caught.exception
        self.assertEqual("h:80", error.host)
        self.assertEqual(6.0, error.retry_after)
        self.assertEqual("GET", error.method)
        self.assertIn("'h:80'", str(error))
        self.assertIn("6 s", str(error))
        self.assertFalse(error.request_sent)

    def test_half_open_after_recovery(self) -> None:
        """The circuit turns half-open exactly when the recovery time passed."""
        clock = Clock()
        breaker = make(clock, recovery=10.0)
        fail_times(breaker, 2)
        clock.advance(9.999)
        self.assertIs(S.OPEN, breaker.state)
        clock.advance(0.001)
        self.assertIs(S.HALF_OPEN, breaker.state)
        self.assertIsNone(breaker.retry_after())

    def test_half_open_limits_trials(self) -> None:
        """Half-open lets half_open_max_calls calls through, refusing the rest."""
        clock = Clock()
        breaker = make(clock, trials=2)
        fail_times(breaker, 2)
        clock.advance(10)
        breaker.acquire()
        breaker.acquire()
        with self.assertRaises(HTTPCircuitOpenError) as caught:
            breaker.acquire()
        self.assertIsNone(caught.exception.retry_after)
        self.assertIn("half-open", str(caught.exception))

    def test_trial_successes_close(self) -> None:
        """Enough successful trials close the circuit."""
        clock = Clock()
        breaker = make(clock, trials=2)
        fail_times(breaker, 2)
        clock.advance(10)
        first, second = breaker.acquire(), breaker.acquire()
        first.record_success()
        self.assertIs(S.HALF_OPEN, breaker.state)
        second.record_success()
        self.assertIs(S.CLOSED, breaker.state)
        self.assertEqual(0, breaker.consecutive_failures)

    def test_trial_failure_reopens(self) -> None:
        """A failed trial opens the circuit for another recovery period."""
        clock = Clock()
        breaker = make(clock, recovery=10.0)
        fail_times(breaker, 2)
        clock.advance(10)
        breaker.acquire().record_failure()
        self.assertIs(S.OPEN, breaker.state)
        self.assertEqual(10.0, breaker.retry_after())
        clock.advance(10)
        self.assertIs(S.HALF_OPEN, breaker.state)

    def test_released_trial_frees_slot(self) -> None:
        """A trial released without outcome lets another trial through."""
        clock = Clock()
        breaker = make(clock)
        fail_times(breaker, 2)
        clock.advance(10)
        breaker.acquire().release()
        self.assertIs(S.HALF_OPEN, breaker.state)
        breaker.acquire().record_success()
        self.assertIs(S.CLOSED, breaker.state)

    def test_stale_permit_ignored(self) -> None:
        """A call granted before the circuit opened cannot close it later."""
        clock = Clock()
        breaker = make(clock, trials=1)
        slow = breaker.acquire()
        fail_times(breaker, 2)
        clock.advance(10)
        slow.record_success()
        self.assertIs(S.HALF_OPEN, breaker.state)
        slow.record_failure()
        self.assertIs(S.HALF_OPEN, breaker.state)

    def test_late_outcome_while_open_ignored(self) -> None:
        """Outcomes reported while open change nothing."""
        clock = Clock()
        breaker = make(clock, threshold=2)
        early = breaker.acquire()
        fail_times(breaker, 2)
        early.record_failure()
        self.assertIs(S.OPEN, breaker.state)
        self.assertEqual(10.0, breaker.retry_after())

    def test_permit_reports_once(self) -> None:
        """Only the first report of a permit counts."""
        breaker = make(Clock(), threshold=2)
        permit = breaker.acquire()
        permit.record_failure()
        permit.record_failure()
        permit.record_success()
        self.assertEqual(1, breaker.consecutive_failures)

    def test_reset(self) -> None:
        """reset() closes an open circuit and clears the count."""
        breaker = make(Clock())
        fail_times(breaker, 2)
        breaker.reset()
        self.assertIs(S.CLOSED, breaker.state)
        self.assertEqual(0, breaker.consecutive_failures)
        breaker.acquire()

    def test_failure_statuses(self) -> None:
        """502, 503 and 504 count as failures by default; 500 and 429 do not."""
        breaker = make(Clock())
        self.assertTrue(breaker.is_failure_status(503))
        self.assertFalse(breaker.is_failure_status(500))
        self.assertFalse(breaker.is_failure_status(429))

    def test_no_timers(self) -> None:
        """A breaker never schedules a timer."""
        clock = Clock()
        breaker = make(clock)
        fail_times(breaker, 2)
        self.assertEqual([], clock.getDelayedCalls())

    def test_invalid_settings(self) -> None:
        """Bad settings raise ValueError naming the setting."""
        for kwargs, name in [
            ({"failure_threshold": 0}, "failure_threshold"),
            ({"recovery_timeout": -1.0}, "recovery_timeout"),
            ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ]:
            with self.assertRaises(ValueError) as caught:
                CircuitBreaker(Clock(), **kwargs)  # type: ignore[arg-type]  # mixed
            self.assertIn(name, str(caught.exception))

    def test_default_threshold(self) -> None:
        """By default five consecutive failures open the circuit."""
        breaker = CircuitBreaker(Clock())
        fail_times(breaker, DEFAULT_FAILURE_THRESHOLD - 1)
        self.assertIs(S.CLOSED, breaker.state)
        fail_times(breaker, 1)
        self.assertIs(S.OPEN, breaker.state)


class CircuitBreakerRegistryTests(SynchronousTestCase):
    """One breaker per host, bounded."""

    def test_one_per_host(self) -> None:
        """The same host gets the same breaker; other hosts are independent."""
        registry = CircuitBreakerRegistry(Clock(), failure_threshold=1)
        a = registry.get("a:80")
        self.assertIs(a, registry.get("a:80"))
        a.acquire().record_failure()
        self.assertIs(S.OPEN, a.state)
        self.assertIs(S.CLOSED, registry.get("b:80").state)
        self.assertEqual("a:80", a.host)
        self.assertEqual({"a:80": S.OPEN, "b:80": S.CLOSED}, registry.states())

    def test_bounded_evicts_closed_first(self) -> None:
        """Past max_hosts the least recently used closed breaker is dropped."""
        registry = CircuitBreakerRegistry(Clock(), failure_threshold=1, max_hosts=2)
        registry.get("a").acquire().record_failure()
        registry.get("b")
        registry.get("c")
        self.assertEqual(2, len(registry))
        self.assertIn("a", registry)
        self.assertNotIn("b", registry)

    def test_bounded_all_open(self) -> None:
        """With every breaker open the least recently used one is dropped."""
        registry = CircuitBreakerRegistry(Clock(), failure_threshold=1, max_hosts=2)
        registry.get("a").acquire().record_failure()
        registry.get("b").acquire().record_failure()
        registry.get("a")
        registry.get("c")
        self.assertEqual({"a", "c"}, set(registry.states()))

    def test_reset_all(self) -> None:
        """reset() closes every breaker."""
        registry = CircuitBreakerRegistry(Clock(), failure_threshold=1)
        registry.get("a").acquire().record_failure()
        registry.reset()
        self.assertEqual({"a": S.CLOSED}, registry.states())

    def test_invalid_settings(self) -> None:
        """Bad settings fail at construction, not on first use."""
        self.assertRaises(ValueError, CircuitBreakerRegistry, Clock(), max_hosts=0)
        self.assertRaises(
            ValueError, CircuitBreakerRegistry, Clock(), failure_threshold=0
        )
