"""
Tests for `txhttp.client._resilience`: the composed pipeline, with a Clock.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.error import ConnectionLost
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from txhttp.client._breaker import CircuitBreakerRegistry, CircuitState
from txhttp.client._bulkhead import Bulkhead
from txhttp.client._errors import RequestNotSent
from txhttp.client._exceptions import (
    HTTPBulkheadFullError,
    HTTPCircuitOpenError,
    HTTPRetryExhaustedError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from txhttp.client._resilience import (
    PIPELINE_ORDER,
    ResiliencePipeline,
    TimeoutPolicy,
    with_timeout,
)
from txhttp.client._retry import RetryPolicy, ScheduledRetry


class FakeResponse:
    """A response head satisfying `RetryableResponse`."""

    def __init__(self, code: int, headers: Headers | None = None) -> None:
        self.code = code
        self.headers = headers if headers is not None else Headers()
        self.released = False

    def release(self) -> None:
        """Remember that the body was discarded."""
        self.released = True


class Attempts:
    """
    An ``attempt`` callable playing back scripted outcomes.

    Each outcome is a `FakeResponse`, an exception, or `None` for an attempt
    that never finishes by itself (only cancellation ends it).
    """

    def __init__(
        self, clock: Clock, *outcomes: FakeResponse | Exception | None
    ) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.calls: list[tuple[int, float]] = []
        self.cancelled: list[int] = []

    def __call__(self, number: int) -> Deferred[FakeResponse]:
        self.calls.append((number, self.clock.seconds()))
        outcome = self.outcomes.pop(0)
        if outcome is None:
            return Deferred(lambda d: self.cancelled.append(number))
        if isinstance(outcome, Exception):
            return fail(outcome)
        return succeed(outcome)

    @property
    def numbers(self) -> list[int]:
        """The attempt numbers called, in order."""
        return [number for number, _ in self.calls]

    @property
    def times(self) -> list[float]:
        """When each attempt was made, by the clock."""
        return [when for _, when in self.calls]


def no_jitter(**kwargs: object) -> RetryPolicy:
    """A retry policy with jitter 0 (waits 0.5, 1, 2... s)."""
    return RetryPolicy(random=lambda: 0.0, jitter=0.0, **kwargs)  # type: ignore[arg-type]  # test helper


class PipelineOrderTests(SynchronousTestCase):
    """The documented order."""

    def test_order(self) -> None:
        """The parts nest as documented, outermost first."""
        self.assertEqual(
            (
                "total timeout",
                "retry",
                "circuit breaker",
                "bulkhead",
                "attempt timeout",
            ),
            PIPELINE_ORDER,
        )

    def test_from_parts_number_is_total_timeout(self) -> None:
        """A number given as timeout is the total timeout."""
        pipeline = ResiliencePipeline.from_parts(clock=Clock(), timeout=3)
        self.assertEqual(TimeoutPolicy(total_timeout=3.0), pipeline.timeouts)

    def test_timeout_policy_validated(self) -> None:
        """Timeouts must be positive."""
        self.assertRaises(ValueError, TimeoutPolicy, total_timeout=0)
        self.assertRaises(ValueError, TimeoutPolicy, attempt_timeout=-1.0)


class RetryTests(SynchronousTestCase):
    """Retries through the pipeline, timed by the Clock."""

    def test_no_parts_single_attempt(self) -> None:
        """With no parts the attempt runs once and its result is delivered."""
        clock = Clock()
        attempts = Attempts(clock, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(clock=clock)
        result = self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertEqual(200, result.code)
        self.assertEqual([1], attempts.numbers)

    def test_no_retry_policy_error_passes_through(self) -> None:
        """Without a policy an error is delivered as is."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost())
        pipeline = ResiliencePipeline.from_parts(clock=clock)
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), ConnectionLost
        )

    def test_retry_after_backoff(self) -> None:
        """A transient error is retried once the backoff has passed."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h")
        self.assertNoResult(result)
        clock.advance(0.499)
        self.assertEqual([1], attempts.numbers)
        clock.advance(0.001)
        self.assertEqual(200, self.successResultOf(result).code)
        self.assertEqual([1, 2], attempts.numbers)
        self.assertEqual([], clock.getDelayedCalls())

    def test_jitter_from_injected_random(self) -> None:
        """The backoff uses the injected randomness."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        policy = RetryPolicy(jitter=1.0, random=lambda: 0.5)
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=policy)
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(0.25)
        self.successResultOf(result)
        self.assertEqual([0.0, 0.25], attempts.times)

    def test_exhausted_carries_every_error(self) -> None:
        """Running out of attempts fails with every attempt's error, in order."""
        clock = Clock()
        errors = [ConnectionLost("1"), ConnectionLost("2"), ConnectionLost("3")]
        attempts = Attempts(clock, *errors)
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h", url="http://h/")
        clock.pump([0.5, 1.0])
        failure = self.failureResultOf(result, HTTPRetryExhaustedError)
        self.assertEqual(errors, list(failure.value.errors))
        self.assertEqual(3, failure.value.attempts)
        self.assertEqual("http://h/", failure.value.url)
        self.assertEqual([0.0, 0.5, 1.5], attempts.times)
        self.assertEqual([1, 2, 3], attempts.numbers)

    def test_single_attempt_policy_keeps_error(self) -> None:
        """With max_attempts=1 the attempt's own error is delivered."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost())
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=RetryPolicy(max_attempts=1)
        )
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), ConnectionLost
        )

    def test_post_not_retried_after_sending(self) -> None:
        """A POST whose connection was lost is not retried."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        self.failureResultOf(
            pipeline.run(attempts, method="POST", host="h"), ConnectionLost
        )
        self.assertEqual([1], attempts.numbers)

    def test_unsent_post_retried(self) -> None:
        """A POST that was never sent is retried."""
        clock = Clock()
        attempts = Attempts(clock, RequestNotSent(), FakeResponse(201))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="POST", host="h")
        clock.advance(0.5)
        self.assertEqual(201, self.successResultOf(result).code)

    def test_non_transient_error_not_retried(self) -> None:
        """A programming error is delivered at once, unwrapped."""
        clock = Clock()
        attempts = Attempts(clock, KeyError("bug"))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        self.failureResultOf(pipeline.run(attempts, method="GET", host="h"), KeyError)

    def test_retryable_status_released_and_retried(self) -> None:
        """A 503 is discarded (released) and the request retried."""
        clock = Clock()
        unavailable = FakeResponse(503)
        attempts = Attempts(clock, unavailable, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(0.5)
        self.assertEqual(200, self.successResultOf(result).code)
        self.assertTrue(unavailable.released)

    def test_retry_after_honoured(self) -> None:
        """The next attempt waits for the server's Retry-After."""
        clock = Clock()
        limited = FakeResponse(429, Headers({b"Retry-After": [b"7"]}))
        attempts = Attempts(clock, limited, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(6.9)
        self.assertNoResult(result)
        clock.advance(0.1)
        self.successResultOf(result)
        self.assertEqual([0.0, 7.0], attempts.times)

    def test_non_retryable_status_delivered(self) -> None:
        """A 500 (not configured) is delivered, not released, not raised."""
        clock = Clock()
        error_response = FakeResponse(500)
        attempts = Attempts(clock, error_response)
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertIs(error_response, result)
        self.assertFalse(error_response.released)

    def test_status_exhausted(self) -> None:
        """Retryable statuses until the end fail with HTTPStatusError entries."""
        clock = Clock()
        responses = [FakeResponse(503), FakeResponse(502), FakeResponse(504)]
        attempts = Attempts(clock, *responses)
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h")
        clock.pump([0.5, 1.0])
        failure = self.failureResultOf(result, HTTPRetryExhaustedError)
        errors = failure.value.errors
        self.assertTrue(all(isinstance(e, HTTPStatusError) for e in errors))
        self.assertEqual(
            [503, 502, 504],
            [e.status for e in errors if isinstance(e, HTTPStatusError)],
        )
        self.assertTrue(all(r.released for r in responses))

    def test_status_exhausted_returns_last_when_asked(self) -> None:
        """fail_on_exhausted_status=False delivers the last response."""
        clock = Clock()
        last = FakeResponse(503)
        attempts = Attempts(clock, FakeResponse(503), last)
        policy = no_jitter(max_attempts=2, fail_on_exhausted_status=False)
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=policy)
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(0.5)
        self.assertIs(last, self.successResultOf(result))
        self.assertFalse(last.released)


class TimeoutTests(SynchronousTestCase):
    """Per-attempt and total timeouts cancel what they bound."""

    def test_with_timeout_cancels_and_converts(self) -> None:
        """with_timeout cancels the Deferred and fails with HTTPTimeoutError."""
        clock = Clock()
        cancelled: list[bool] = []
        d: Deferred[int] = Deferred(lambda _: cancelled.append(True))
        result = with_timeout(d, 2.0, clock, phase="attempt", method="GET")
        clock.advance(2.0)
        failure = self.failureResultOf(result, HTTPTimeoutError)
        self.assertEqual([True], cancelled)
        self.assertEqual(2.0, failure.value.timeout)
        self.assertEqual("attempt", failure.value.phase)
        self.assertIsInstance(failure.value.__cause__, CancelledError)

    def test_with_timeout_timer_cancelled_on_result(self) -> None:
        """A result before the deadline cancels the timer."""
        clock = Clock()
        d: Deferred[int] = Deferred()
        result = with_timeout(d, 2.0, clock, phase="attempt")
        d.callback(5)
        self.assertEqual(5, self.successResultOf(result))
        self.assertEqual([], clock.getDelayedCalls())

    def test_with_timeout_keeps_other_failures(self) -> None:
        """A failure before the deadline is delivered unchanged."""
        clock = Clock()
        d: Deferred[int] = Deferred()
        result = with_timeout(d, 2.0, clock, phase="attempt")
        d.errback(KeyError("x"))
        self.failureResultOf(result, KeyError)
        self.assertEqual([], clock.getDelayedCalls())

    def test_attempt_timeout_retried(self) -> None:
        """A timed-out attempt is cancelled, then retried."""
        clock = Clock()
        attempts = Attempts(clock, None, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(
            clock=clock,
            retry=no_jitter(),
            timeout=TimeoutPolicy(attempt_timeout=2.0),
        )
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(2.0)
        self.assertEqual([1], attempts.cancelled)
        clock.advance(0.5)
        self.successResultOf(result)
        self.assertEqual([0.0, 2.5], attempts.times)
        self.assertEqual([], clock.getDelayedCalls())

    def test_attempt_timeouts_exhausted(self) -> None:
        """Every attempt timing out ends in exhaustion listing the timeouts."""
        clock = Clock()
        attempts = Attempts(clock, None, None)
        pipeline = ResiliencePipeline.from_parts(
            clock=clock,
            retry=no_jitter(max_attempts=2),
            timeout=TimeoutPolicy(attempt_timeout=1.0),
        )
        result = pipeline.run(attempts, method="GET", host="h")
        clock.pump([1.0, 0.5, 1.0])
        failure = self.failureResultOf(result, HTTPRetryExhaustedError)
        self.assertEqual(
            ["attempt", "attempt"],
            [e.phase for e in failure.value.errors if isinstance(e, HTTPTimeoutError)],
        )
        self.assertEqual([1, 2], attempts.cancelled)

    def test_total_timeout_cancels_attempt(self) -> None:
        """The total timeout cancels the running attempt."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(), timeout=5.0
        )
        result = pipeline.run(attempts, method="GET", host="h", url="http://h/")
        clock.advance(4.9)
        self.assertNoResult(result)
        clock.advance(0.1)
        failure = self.failureResultOf(result, HTTPTimeoutError)
        self.assertEqual("total", failure.value.phase)
        self.assertEqual(5.0, failure.value.timeout)
        self.assertEqual([1], attempts.cancelled)
        self.assertEqual([], clock.getDelayedCalls())

    def test_total_timeout_during_backoff(self) -> None:
        """The total timeout ends a backoff sleep; no timer is left behind."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(initial_delay=10.0), timeout=3.0
        )
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(3.0)
        self.failureResultOf(result, HTTPTimeoutError)
        self.assertEqual([1], attempts.numbers)
        self.assertEqual([], clock.getDelayedCalls())

    def test_cancel_by_caller(self) -> None:
        """Cancelling the result cancels the attempt and leaves no timers."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(
            clock=clock,
            retry=no_jitter(),
            timeout=TimeoutPolicy(total_timeout=9.0, attempt_timeout=3.0),
        )
        result = pipeline.run(attempts, method="GET", host="h")
        result.cancel()
        self.failureResultOf(result, CancelledError)
        self.assertEqual([1], attempts.cancelled)
        self.assertEqual([], clock.getDelayedCalls())


class BreakerTests(SynchronousTestCase):
    """The circuit breaker inside the retry loop."""

    def test_each_attempt_counts_and_open_stops_retries(self) -> None:
        """Each failed attempt counts; once open, retrying stops at once."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), ConnectionLost(), ConnectionLost())
        registry = CircuitBreakerRegistry(clock, failure_threshold=2)
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(), breaker_registry=registry
        )
        result = pipeline.run(attempts, method="GET", host="h:80")
        clock.pump([0.5, 1.0])
        failure = self.failureResultOf(result, HTTPCircuitOpenError)
        self.assertEqual("h:80", failure.value.host)
        self.assertEqual([1, 2], attempts.numbers)
        self.assertIs(CircuitState.OPEN, registry.get("h:80").state)

    def test_open_circuit_makes_no_attempt(self) -> None:
        """An open circuit fails fast without calling the attempt."""
        clock = Clock()
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        registry.get("h").acquire().record_failure()
        attempts = Attempts(clock, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(), breaker_registry=registry
        )
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), HTTPCircuitOpenError
        )
        self.assertEqual([], attempts.numbers)

    def test_failure_status_counts(self) -> None:
        """A 503 counts against the host; a 200 resets the count."""
        clock = Clock()
        registry = CircuitBreakerRegistry(clock, failure_threshold=5)
        pipeline = ResiliencePipeline.from_parts(clock=clock, breaker_registry=registry)
        attempts = Attempts(clock, FakeResponse(503), FakeResponse(200))
        self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertEqual(1, registry.get("h").consecutive_failures)
        self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertEqual(0, registry.get("h").consecutive_failures)

    def test_other_hosts_unaffected(self) -> None:
        """An open circuit for one host does not stop another."""
        clock = Clock()
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        registry.get("down").acquire().record_failure()
        pipeline = ResiliencePipeline.from_parts(clock=clock, breaker_registry=registry)
        attempts = Attempts(clock, FakeResponse(200))
        self.successResultOf(pipeline.run(attempts, method="GET", host="up"))

    def test_non_transient_error_not_counted(self) -> None:
        """A local (non-transient) error does not count against the host."""
        clock = Clock()
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        pipeline = ResiliencePipeline.from_parts(clock=clock, breaker_registry=registry)
        attempts = Attempts(clock, KeyError("bug"))
        self.failureResultOf(pipeline.run(attempts, method="GET", host="h"), KeyError)
        self.assertIs(CircuitState.CLOSED, registry.get("h").state)

    def test_recovery_through_pipeline(self) -> None:
        """After the recovery time a successful trial closes the circuit."""
        clock = Clock()
        registry = CircuitBreakerRegistry(
            clock, failure_threshold=1, recovery_timeout=30.0
        )
        pipeline = ResiliencePipeline.from_parts(clock=clock, breaker_registry=registry)
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), ConnectionLost
        )
        clock.advance(30.0)
        self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertIs(CircuitState.CLOSED, registry.get("h").state)

    def test_cancelled_trial_frees_half_open_slot(self) -> None:
        """A cancelled trial call neither closes nor blocks the circuit."""
        clock = Clock()
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        registry.get("h").acquire().record_failure()
        clock.advance(30.0)
        pipeline = ResiliencePipeline.from_parts(clock=clock, breaker_registry=registry)
        attempts = Attempts(clock, None, FakeResponse(200))
        trial = pipeline.run(attempts, method="GET", host="h")
        trial.cancel()
        self.failureResultOf(trial, CancelledError)
        self.assertIs(CircuitState.HALF_OPEN, registry.get("h").state)
        self.successResultOf(pipeline.run(attempts, method="GET", host="h"))
        self.assertIs(CircuitState.CLOSED, registry.get("h").state)


class BulkheadTests(SynchronousTestCase):
    """The bulkhead inside the breaker, per attempt."""

    def test_slot_held_only_during_attempt(self) -> None:
        """The slot is held while an attempt runs, not during backoff."""
        clock = Clock()
        bulkhead = Bulkhead(clock, max_concurrent=1, max_queued=0)
        first: Deferred[FakeResponse] = Deferred()
        outcomes: list[Deferred[FakeResponse]] = [first, succeed(FakeResponse(200))]
        seen: list[int] = []

        def attempt(number: int) -> Deferred[FakeResponse]:
            seen.append(bulkhead.active())
            return outcomes.pop(0)

        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(), bulkhead=bulkhead
        )
        result = pipeline.run(attempt, method="GET", host="h")
        self.assertEqual(1, bulkhead.active())
        first.errback(ConnectionLost())
        self.assertEqual(0, bulkhead.active())
        clock.advance(0.5)
        self.successResultOf(result)
        self.assertEqual([1, 1], seen)
        self.assertEqual(0, bulkhead.active())

    def test_full_bulkhead_not_retried_nor_counted(self) -> None:
        """A bulkhead refusal is final and does not count against the host."""
        clock = Clock()
        bulkhead = Bulkhead(clock, max_concurrent=1, max_queued=0)
        held = self.successResultOf(bulkhead.acquire())
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        attempts = Attempts(clock, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(
            clock=clock,
            retry=no_jitter(),
            breaker_registry=registry,
            bulkhead=bulkhead,
        )
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), HTTPBulkheadFullError
        )
        self.assertEqual([], attempts.numbers)
        self.assertIs(CircuitState.CLOSED, registry.get("h").state)
        held.release()

    def test_open_circuit_checked_before_bulkhead(self) -> None:
        """An open circuit fails fast even when the bulkhead is full."""
        clock = Clock()
        bulkhead = Bulkhead(clock, max_concurrent=1, max_queued=5)
        held = self.successResultOf(bulkhead.acquire())
        registry = CircuitBreakerRegistry(clock, failure_threshold=1)
        registry.get("h").acquire().record_failure()
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, breaker_registry=registry, bulkhead=bulkhead
        )
        attempts = Attempts(clock, FakeResponse(200))
        self.failureResultOf(
            pipeline.run(attempts, method="GET", host="h"), HTTPCircuitOpenError
        )
        self.assertEqual(0, bulkhead.queued())
        held.release()

    def test_queue_wait_not_counted_by_attempt_timeout(self) -> None:
        """The attempt timeout starts once the bulkhead slot is granted."""
        clock = Clock()
        bulkhead = Bulkhead(clock, max_concurrent=1, max_queued=1, queue_timeout=60)
        held = self.successResultOf(bulkhead.acquire())
        attempts = Attempts(clock, FakeResponse(200))
        pipeline = ResiliencePipeline.from_parts(
            clock=clock,
            bulkhead=bulkhead,
            timeout=TimeoutPolicy(attempt_timeout=2.0),
        )
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(10.0)
        self.assertNoResult(result)
        held.release()
        self.assertEqual(200, self.successResultOf(result).code)
        self.assertEqual([10.0], attempts.times)
        self.assertEqual([], clock.getDelayedCalls())

    def test_total_timeout_leaves_queue(self) -> None:
        """The total timeout removes a call waiting in the bulkhead queue."""
        clock = Clock()
        bulkhead = Bulkhead(clock, max_concurrent=1, max_queued=1, queue_timeout=60)
        held = self.successResultOf(bulkhead.acquire())
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, bulkhead=bulkhead, timeout=2.0
        )
        attempts = Attempts(clock, FakeResponse(200))
        result = pipeline.run(attempts, method="GET", host="h")
        clock.advance(2.0)
        self.failureResultOf(result, HTTPTimeoutError)
        self.assertEqual(0, bulkhead.queued())
        self.assertEqual([], clock.getDelayedCalls())
        held.release()
        self.assertEqual(0, bulkhead.active())


class PerCallTimeoutTests(SynchronousTestCase):
    """`ResiliencePipeline.run`'s ``timeout`` replaces the total timeout per call."""

    def test_override_shorter(self) -> None:
        """A per-call timeout shorter than the pipeline's fires first."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(clock=clock, timeout=10.0)
        result = pipeline.run(attempts, method="GET", host="h", timeout=2.0)
        clock.advance(1.9)
        self.assertNoResult(result)
        clock.advance(0.1)
        failure = self.failureResultOf(result, HTTPTimeoutError)
        self.assertEqual(("total", 2.0), (failure.value.phase, failure.value.timeout))
        self.assertEqual([1], attempts.cancelled)
        self.assertEqual([], clock.getDelayedCalls())

    def test_override_longer(self) -> None:
        """A per-call timeout replaces (not just caps) the pipeline's."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(clock=clock, timeout=1.0)
        result = pipeline.run(attempts, method="GET", host="h", timeout=4.0)
        clock.advance(3.9)
        self.assertNoResult(result)
        clock.advance(0.1)
        self.assertEqual(
            4.0, self.failureResultOf(result, HTTPTimeoutError).value.timeout
        )

    def test_override_without_pipeline_timeout(self) -> None:
        """A pipeline with no timeout still honours a per-call one."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(clock=clock)
        result = pipeline.run(attempts, method="GET", host="h", timeout=3.0)
        clock.advance(3.0)
        self.failureResultOf(result, HTTPTimeoutError)

    def test_none_keeps_pipeline_timeout(self) -> None:
        """Without a per-call timeout the pipeline's own total timeout applies."""
        clock = Clock()
        attempts = Attempts(clock, None)
        pipeline = ResiliencePipeline.from_parts(clock=clock, timeout=1.5)
        result = pipeline.run(attempts, method="GET", host="h", timeout=None)
        clock.advance(1.5)
        self.assertEqual(
            1.5, self.failureResultOf(result, HTTPTimeoutError).value.timeout
        )

    def test_override_validated(self) -> None:
        """A per-call timeout that is not positive is refused."""
        pipeline = ResiliencePipeline.from_parts(clock=Clock())
        attempts = Attempts(Clock(), FakeResponse(200))
        for bad in (0, -1.0):
            with self.assertRaises(ValueError):
                pipeline.run(attempts, method="GET", host="h", timeout=bad)
        self.assertEqual([], attempts.calls)


class OnRetryTests(SynchronousTestCase):
    """`ResiliencePipeline.run` reports each retry to ``on_retry``."""

    def test_reported_before_each_wait(self) -> None:
        """Each retry is announced with the next attempt's number, wait and cause."""
        clock = Clock()
        lost = ConnectionLost()
        attempts = Attempts(clock, lost, FakeResponse(503), FakeResponse(200))
        seen: list[tuple[int, float, BaseException, float]] = []

        def on_retry(scheduled: ScheduledRetry) -> None:
            seen.append(
                (scheduled.attempt, scheduled.delay, scheduled.error, clock.seconds())
            )

        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h", on_retry=on_retry)
        self.assertEqual([(2, 0.5, lost, 0.0)], seen)
        clock.advance(0.5)
        self.assertEqual(2, len(seen))
        attempt, delay, error, when = seen[1]
        self.assertEqual((3, 1.0, 0.5), (attempt, delay, when))
        self.assertIsInstance(error, HTTPStatusError)
        self.assertEqual(503, error.status)  # type: ignore[attr-defined]  # checked above
        clock.advance(1.0)
        self.assertEqual(200, self.successResultOf(result).code)

    def test_not_called_without_retry(self) -> None:
        """No retry, no report: success and exhaustion do not call the hook."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), ConnectionLost())
        seen: list[ScheduledRetry] = []
        pipeline = ResiliencePipeline.from_parts(
            clock=clock, retry=no_jitter(max_attempts=2)
        )
        result = pipeline.run(attempts, method="GET", host="h", on_retry=seen.append)
        clock.advance(0.5)
        self.failureResultOf(result, HTTPRetryExhaustedError)
        self.assertEqual([2], [s.attempt for s in seen])

    def test_deferred_hook_awaited(self) -> None:
        """A hook's Deferred is waited for before the backoff starts."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))
        gate: Deferred[None] = Deferred()
        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(
            attempts, method="GET", host="h", on_retry=lambda scheduled: gate
        )
        clock.advance(5.0)
        self.assertEqual([1], attempts.numbers)
        gate.callback(None)
        clock.advance(0.5)
        self.assertEqual(200, self.successResultOf(result).code)
        self.assertEqual([0.0, 5.5], attempts.times)

    def test_failing_hook_logged_not_fatal(self) -> None:
        """A hook that raises is logged; the retry still happens."""
        clock = Clock()
        attempts = Attempts(clock, ConnectionLost(), FakeResponse(200))

        def broken(scheduled: ScheduledRetry) -> None:
            raise ZeroDivisionError("hook bug")

        pipeline = ResiliencePipeline.from_parts(clock=clock, retry=no_jitter())
        result = pipeline.run(attempts, method="GET", host="h", on_retry=broken)
        clock.advance(0.5)
        self.assertEqual(200, self.successResultOf(result).code)
        self.assertEqual(1, len(self.flushLoggedErrors(ZeroDivisionError)))
