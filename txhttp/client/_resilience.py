# -*- test-case-name: txhttp.test.test_client_resilience -*-
"""
The resilience pipeline: timeouts, retries, circuit breaker and bulkhead,
composed in one fixed, documented order around the attempts of a request.

From the outside in::

    total timeout            bounds everything below, waits included
      retry                  runs attempts 1..n, sleeps between them
        circuit breaker      per attempt: fail fast if the host is down
          bulkhead           per attempt: wait for a slot (bounded, timed)
            attempt timeout  bounds one attempt's network time
              attempt(n)     what the caller supplied

Why this order:

- The **total timeout** is outermost because it is the caller's deadline:
  it must also cover backoff sleeps, bulkhead queueing and every attempt.
  When it fires, whatever is being waited for is cancelled (the attempt's
  Deferred, which aborts its connection; a sleep; a queue wait).
- **Retry** sits outside the breaker and the bulkhead so that each attempt
  goes through them again: every attempt's outcome is reported to the
  breaker (it sees the host's real failure rate, not one result per retried
  request), a circuit that opened during the retries stops them at once,
  and no bulkhead slot is held while sleeping between attempts.
- The **breaker** comes before the bulkhead: an open circuit must fail fast,
  not after queueing behind calls to the same dead host; and a bulkhead
  rejection is local congestion, which must not count against the host.
- The **attempt timeout** is innermost so that it measures only the
  attempt itself, not time spent queueing in the bulkhead (which has its
  own ``queue_timeout``), and so that a timed-out attempt frees its bulkhead
  slot and counts as a failure for the breaker and a retryable error.

Every part is optional; `ResiliencePipeline.from_parts` builds one from
whichever parts a client was given. Time comes from the injected clock and
every timer is cancelled on every way out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from ._breaker import CircuitBreakerRegistry, CircuitPermit
from ._bulkhead import Bulkhead, BulkheadSlot
from ._exceptions import (
    HTTPRetryExhaustedError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from ._retry import RetryPolicy, ScheduledRetry, is_transient_error

__all__ = [
    "PIPELINE_ORDER",
    "ResiliencePipeline",
    "RetryHook",
    "RetryableResponse",
    "TimeoutPolicy",
    "with_timeout",
]

PIPELINE_ORDER: Final[tuple[str, ...]] = (
    "total timeout",
    "retry",
    "circuit breaker",
    "bulkhead",
    "attempt timeout",
)
"""The order of the parts, outermost first (see the module docstring)."""

T = TypeVar("T")

_log = Logger()

RetryHook = Callable[[ScheduledRetry], object]
"""
Called by `ResiliencePipeline.run` before each backoff wait. It may return a
Deferred, which the pipeline waits for before sleeping; its errors (raised or
as a failed Deferred) are logged, never propagated.
"""


class RetryableResponse(Protocol):
    """
    What the pipeline needs of an attempt's result to judge its status.

    `HTTPClient`'s response satisfies it.
    """

    @property
    def code(self) -> int:
        """The response status code."""

    @property
    def headers(self) -> Headers:
        """The response headers (``Retry-After`` is read from them)."""

    def release(self) -> None:
        """Discard the unread body: this response will be retried, not used."""


R = TypeVar("R", bound=RetryableResponse)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutPolicy:
    """
    Deadlines enforced by a `ResiliencePipeline`; ``None`` means none here.

    The layers below keep their own bounds (connect, response head and body
    idle timeouts, the pool queue timeout), so leaving these unset never
    makes a request wait forever.

    Attributes:
        total_timeout: Seconds for the whole call, retries and waits included.
        attempt_timeout: Seconds for each attempt, once it has its bulkhead
            slot.
    """

    total_timeout: float | None = None
    attempt_timeout: float | None = None

    def __post_init__(self) -> None:
        for name in ("total_timeout", "attempt_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, not {value!r}")


def with_timeout(
    deferred: Deferred[T],
    timeout: float,
    clock: IReactorTime,
    *,
    phase: str,
    method: str | None = None,
    url: str | None = None,
) -> Deferred[T]:
    """
    Cancel ``deferred`` if it has not fired within ``timeout`` seconds.

    Args:
        deferred: The operation; cancelling it must stop it (an attempt's
            Deferred aborts its connection).
        timeout: Seconds to wait.
        clock: The time source.
        phase: Recorded on the error (``"total"``, ``"attempt"``).
        method: For the error message.
        url: For the error message.

    Returns:
        ``deferred`` itself. If the timeout fired, whatever failure the
        cancellation produced becomes `HTTPTimeoutError` (the original is its
        ``__cause__``). The timer is cancelled as soon as ``deferred`` fires.
    """
    timed_out = False

    def expire() -> None:
        nonlocal timed_out
        timed_out = True
        deferred.cancel()

    timer = clock.callLater(timeout, expire)

    def finished(result: T | Failure) -> T | Failure:
        if timer.active():
            timer.cancel()
        if timed_out and isinstance(result, Failure):
            error = HTTPTimeoutError(
                f"{phase} timeout of {timeout:g} s expired",
                timeout=timeout,
                phase=phase,
                method=method,
                url=url,
            )
            error.__cause__ = result.value
            return Failure(error)
        return result

    deferred.addBoth(finished)
    return deferred


class ResiliencePipeline:
    """
    Runs a request's attempts through timeout, retry, breaker and bulkhead.

    See the module docstring for the order and why. Build one with
    ``from_parts``, or directly with the same arguments.

    Args:
        clock: The time source for every wait and deadline.
        retry: The retry policy; ``None`` makes a single attempt.
        breaker_registry: Circuit breakers per host; ``None`` for none.
        bulkhead: The bulkhead (per client or per host); ``None`` for none.
        timeouts: The total and per-attempt deadlines; ``None`` for none.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        retry: RetryPolicy | None = None,
        breaker_registry: CircuitBreakerRegistry | None = None,
        bulkhead: Bulkhead | None = None,
        timeouts: TimeoutPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.retry = retry
        self.breaker_registry = breaker_registry
        self.bulkhead = bulkhead
        self.timeouts = timeouts or TimeoutPolicy()

    @classmethod
    def from_parts(
        cls,
        *,
        clock: IReactorTime,
        retry: RetryPolicy | None = None,
        breaker_registry: CircuitBreakerRegistry | None = None,
        bulkhead: Bulkhead | None = None,
        timeout: TimeoutPolicy | float | None = None,
    ) -> ResiliencePipeline:
        """
        Build a pipeline from whichever parts are given.

        Args:
            clock: The time source (the client's reactor).
            retry: See `ResiliencePipeline`.
            breaker_registry: See `ResiliencePipeline`.
            bulkhead: See `ResiliencePipeline`.
            timeout: A `TimeoutPolicy`, or a number: the total timeout in
                seconds.
        """
        if timeout is None or isinstance(timeout, TimeoutPolicy):
            timeouts = timeout
        else:
            timeouts = TimeoutPolicy(total_timeout=float(timeout))
        return cls(
            clock,
            retry=retry,
            breaker_registry=breaker_registry,
            bulkhead=bulkhead,
            timeouts=timeouts,
        )

    def run(
        self,
        attempt: Callable[[int], Deferred[R]],
        *,
        method: str,
        host: str,
        url: str | None = None,
        timeout: float | None = None,
        on_retry: RetryHook | None = None,
    ) -> Deferred[R]:
        """
        Make attempts until one succeeds, the policy gives up, or time is up.

        Args:
            attempt: Called with the attempt number (1 for the first) to
                perform that attempt; its Deferred fires with the response
                (head) or fails. Cancelling it must abort the attempt.
            method: The request method (decides what may be retried).
            host: The breaker and bulkhead key, usually ``"host:port"``.
            url: The request URL, for error messages.
            timeout: Seconds for this call, replacing the pipeline's
                ``total_timeout`` for it (a per-request deadline); ``None``
                keeps the pipeline's. Must be positive.
            on_retry: Told about each retry (``ScheduledRetry``: the next
                attempt's number, the wait, the previous error) before the
                wait starts; see ``RetryHook``.

        Returns:
            A Deferred firing with the first response that is not retried
            (which may carry an error status: the pipeline never raises
            `HTTPStatusError` for a status the policy does not retry), or
            failing with:

            - `HTTPRetryExhaustedError`: the last attempt failed in a
              retryable way and no attempt was left (only when the policy
              allows more than one attempt); ``errors`` holds each attempt's
              error, a retried status as `HTTPStatusError`;
            - `HTTPTimeoutError`: the total (``phase="total"``) or, with no
              retry left, the attempt (``phase="attempt"``) timeout fired;
            - `HTTPCircuitOpenError` or `HTTPBulkheadFullError`: refused
              before sending, never retried;
            - otherwise the attempt's own error, when it is not retryable.

            Cancelling it cancels the attempt, sleep or wait in progress.
        """
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive or None, not {timeout!r}")
        result = Deferred.fromCoroutine(
            self._attempts(attempt, method, host, url, on_retry)
        )
        total = timeout if timeout is not None else self.timeouts.total_timeout
        if total is not None:
            result = with_timeout(
                result, total, self.clock, phase="total", method=method, url=url
            )
        return result

    async def _attempts(
        self,
        attempt: Callable[[int], Deferred[R]],
        method: str,
        host: str,
        url: str | None,
        on_retry: RetryHook | None,
    ) -> R:
        retry = self.retry
        max_attempts = retry.max_attempts if retry is not None else 1
        errors: list[BaseException] = []
        number = 0
        while True:
            number += 1
            last = number >= max_attempts
            try:
                response = await self._one(attempt, number, method, host, url)
            except CancelledError:
                raise
            except Exception as error:
                errors.append(error)
                if retry is None or not retry.should_retry_error(method, error):
                    raise
                if last:
                    if max_attempts == 1:
                        raise
                    raise self._exhausted(errors, method, url) from error
                delay = retry.delay(number, headers=None, now=self.clock.seconds())
                await self._announce(on_retry, number + 1, delay, error)
                await deferLater(self.clock, delay)
                continue
            if retry is None or not retry.should_retry_status(method, response.code):
                return response
            if last and not retry.fail_on_exhausted_status:
                return response
            status_error = HTTPStatusError(
                f"retryable status {response.code} on attempt {number}",
                status=response.code,
                headers=response.headers,
                method=method,
                url=url,
            )
            errors.append(status_error)
            headers = response.headers
            response.release()
            if last:
                raise self._exhausted(errors, method, url) from status_error
            delay = retry.delay(number, headers=headers, now=self.clock.seconds())
            await self._announce(on_retry, number + 1, delay, status_error)
            await deferLater(self.clock, delay)

    @staticmethod
    async def _announce(
        on_retry: RetryHook | None, attempt: int, delay: float, error: BaseException
    ) -> None:
        """Tell ``on_retry`` about the coming attempt; never fail because of it."""
        if on_retry is None:
            return
        try:
            waiting = on_retry(
                ScheduledRetry(attempt=attempt, delay=delay, error=error)
            )
            if isinstance(waiting, Deferred):
                await waiting
        except CancelledError:
            raise
        except Exception:
            _log.failure("on_retry hook {hook!r} failed", hook=on_retry)

    async def _one(
        self,
        attempt: Callable[[int], Deferred[R]],
        number: int,
        method: str,
        host: str,
        url: str | None,
    ) -> R:
        """One attempt through breaker, bulkhead and attempt timeout."""
        permit: CircuitPermit | None = None
        breaker = None
        if self.breaker_registry is not None:
            breaker = self.breaker_registry.get(host)
            permit = breaker.acquire(method=method, url=url)
        slot: BulkheadSlot | None = None
        try:
            if self.bulkhead is not None:
                slot = await self.bulkhead.acquire(host, method=method, url=url)
            deferred = attempt(number)
            limit = self.timeouts.attempt_timeout
            if limit is not None:
                deferred = with_timeout(
                    deferred,
                    limit,
                    self.clock,
                    phase="attempt",
                    method=method,
                    url=url,
                )
            try:
                response = await deferred
            except CancelledError:
                raise
            except Exception as error:
                if permit is not None and is_transient_error(error):
                    permit.record_failure()
                raise
            if permit is not None and breaker is not None:
                if breaker.is_failure_status(response.code):
                    permit.record_failure()
                else:
                    permit.record_success()
            return response
        finally:
            if slot is not None:
                slot.release()
            if permit is not None:
                permit.release()

    @staticmethod
    def _exhausted(
        errors: list[BaseException], method: str, url: str | None
    ) -> HTTPRetryExhaustedError:
        last = errors[-1]
        return HTTPRetryExhaustedError(
            f"gave up after {len(errors)} attempts; last error: "
            f"{type(last).__name__}: {last}",
            errors,
            method=method,
            url=url,
        )
