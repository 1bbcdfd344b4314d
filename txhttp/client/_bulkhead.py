# -*- test-case-name: txhttp.test.test_client_bulkhead -*-
"""
Bulkheads: a bound on concurrent calls, with a bounded, timed wait queue.

A `Bulkhead` lets at most ``max_concurrent`` calls run at once. Further calls
wait, first come first served, in a queue of at most ``max_queued`` entries,
each for at most ``queue_timeout`` seconds. A call that finds the queue full,
or waits too long, fails with `HTTPBulkheadFullError` and never runs. One
slow dependency thus cannot tie up every connection and every caller.

With ``per_host=True`` each host gets its own compartment with those bounds;
state is kept only for hosts with running or waiting calls. Time comes from
the injected clock; a waiting call's timer is cancelled when it gets a slot,
times out or is cancelled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ._exceptions import HTTPBulkheadFullError

__all__ = [
    "DEFAULT_MAX_CONCURRENT",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_QUEUE_TIMEOUT",
    "Bulkhead",
    "BulkheadSlot",
]

R = TypeVar("R")

DEFAULT_MAX_CONCURRENT: Final = 10
"""Calls allowed to run at once (per compartment)."""

DEFAULT_MAX_QUEUED: Final = 100
"""
Calls allowed to wait for a slot (per compartment).

Past this, waiting would only add latency to a backlog that is not
draining; failing fast lets the caller shed load or degrade.
"""

DEFAULT_QUEUE_TIMEOUT: Final = 10.0
"""Seconds a call may wait for a slot before it fails."""


@dataclass(eq=False, slots=True)
class BulkheadSlot:
    """
    One running call's place in a `Bulkhead`.

    Call ``release`` when the call finished (however it ended); later calls
    of ``release`` do nothing.
    """

    _compartment: _Compartment
    _released: bool = False

    def release(self) -> None:
        """Give the slot back, letting the next waiting call run."""
        if not self._released:
            self._released = True
            self._compartment.release()


@dataclass(eq=False, slots=True)
class _Waiter:
    deferred: Deferred[BulkheadSlot]
    timer: IDelayedCall | None = None


@dataclass(eq=False, slots=True)
class _Compartment:
    owner: Bulkhead
    key: str
    active: int = 0
    waiters: deque[_Waiter] = field(default_factory=deque)

    def release(self) -> None:
        self.active -= 1
        if self.waiters:
            waiter = self.waiters.popleft()
            if waiter.timer is not None and waiter.timer.active():
                waiter.timer.cancel()
            self.active += 1
            waiter.deferred.callback(BulkheadSlot(self))
        else:
            self.owner._forget_if_idle(self)


class Bulkhead:
    """
    Bounded concurrency plus a bounded, timed queue, per client or per host.

    Args:
        clock: The time source for ``queue_timeout``.
        max_concurrent: Calls running at once (``DEFAULT_MAX_CONCURRENT``).
        max_queued: Calls waiting for a slot (``DEFAULT_MAX_QUEUED``); 0 means
            a call fails at once when every slot is taken.
        queue_timeout: Seconds a call may wait (``DEFAULT_QUEUE_TIMEOUT``).
        per_host: One compartment per host instead of one for all calls.
        name: How errors name this bulkhead.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        max_concurrent: int = DEFAULT_MAX_CONCURRENT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        per_host: bool = False,
        name: str = "bulkhead",
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(
                f"max_concurrent must be at least 1, not {max_concurrent!r}"
            )
        if max_queued < 0:
            raise ValueError(f"max_queued must not be negative, not {max_queued!r}")
        if not queue_timeout > 0:
            raise ValueError(f"queue_timeout must be positive, not {queue_timeout!r}")
        self._clock = clock
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.queue_timeout = queue_timeout
        self.per_host = per_host
        self.name = name
        self._compartments: dict[str, _Compartment] = {}

    def _key(self, host: str) -> str:
        return host if self.per_host else ""

    def _label(self, key: str) -> str:
        return f"{self.name}[{key}]" if key else self.name

    def active(self, host: str = "") -> int:
        """Calls running now (for ``host``'s compartment when per host)."""
        compartment = self._compartments.get(self._key(host))
        return compartment.active if compartment else 0

    def queued(self, host: str = "") -> int:
        """Calls waiting now (for ``host``'s compartment when per host)."""
        compartment = self._compartments.get(self._key(host))
        return len(compartment.waiters) if compartment else 0

    def tracked_hosts(self) -> int:
        """Compartments with running or waiting calls (idle ones are dropped)."""
        return len(self._compartments)

    def acquire(
        self, host: str = "", *, method: str | None = None, url: str | None = None
    ) -> Deferred[BulkheadSlot]:
        """
        Ask for a slot to run one call.

        Args:
            host: The call's host; only used when ``per_host`` is set.
            method: The request method, for error messages.
            url: The request URL, for error messages.

        Returns:
            A Deferred firing with a `BulkheadSlot` (at once if one is free),
            or failing with `HTTPBulkheadFullError` when the queue is full
            (``reason="queue-full"``) or the wait exceeded ``queue_timeout``
            (``reason="queue-timeout"``). Cancelling it while it waits leaves
            the queue and fails it with ``CancelledError``.
        """
        key = self._key(host)
        compartment = self._compartments.get(key)
        if compartment is None:
            compartment = self._compartments[key] = _Compartment(self, key)
        if compartment.active < self.max_concurrent:
            compartment.active += 1
            return succeed(BulkheadSlot(compartment))
        label = self._label(key)
        if len(compartment.waiters) >= self.max_queued:
            return fail(
                HTTPBulkheadFullError(
                    f"bulkhead {label!r} is full: {compartment.active} call(s) "
                    f"running (max_concurrent={self.max_concurrent}) and "
                    f"{len(compartment.waiters)} waiting "
                    f"(max_queued={self.max_queued})",
                    bulkhead=label,
                    reason="queue-full",
                    method=method,
                    url=url,
                )
            )

        def cancel(deferred: Deferred[BulkheadSlot]) -> None:
            self._leave(compartment, waiter)

        waiter = _Waiter(Deferred(cancel))

        def expire() -> None:
            waiter.timer = None
            self._leave(compartment, waiter)
            waiter.deferred.errback(
                HTTPBulkheadFullError(
                    f"waited {self.queue_timeout:g} s (queue_timeout) for a slot "
                    f"in bulkhead {label!r}",
                    bulkhead=label,
                    reason="queue-timeout",
                    method=method,
                    url=url,
                )
            )

        waiter.timer = self._clock.callLater(self.queue_timeout, expire)
        compartment.waiters.append(waiter)
        return waiter.deferred

    def run(
        self,
        call: Callable[[], Deferred[R]],
        host: str = "",
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> Deferred[R]:
        """
        Run ``call`` once a slot is free, and free the slot when it finished.

        Returns:
            A Deferred with ``call``'s result, or failing like ``acquire``.
            Cancelling it cancels the wait or the running call.
        """

        async def run() -> R:
            slot = await self.acquire(host, method=method, url=url)
            try:
                return await call()
            finally:
                slot.release()

        return Deferred.fromCoroutine(run())

    def _leave(self, compartment: _Compartment, waiter: _Waiter) -> None:
        """Take ``waiter`` out of the queue and stop its timer."""
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        waiter.timer = None
        try:
            compartment.waiters.remove(waiter)
        except ValueError:
            return
        self._forget_if_idle(compartment)

    def _forget_if_idle(self, compartment: _Compartment) -> None:
        if (
            compartment.active == 0
            and not compartment.waiters
            and self._compartments.get(compartment.key) is compartment
        ):
            del self._compartments[compartment.key]
