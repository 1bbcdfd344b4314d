"""
Tests for `txhttp.client._bulkhead`: bounded concurrency and queueing.
"""

from __future__ import annotations

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client._bulkhead import DEFAULT_MAX_QUEUED, Bulkhead
from txhttp.client._exceptions import HTTPBulkheadFullError


def make(
    clock: Clock,
    concurrent: int = 1,
    queued: int = 2,
    timeout: float = 5.0,
    per_host: bool = False,
) -> Bulkhead:
    """A small bulkhead named ``api``."""
    return Bulkhead(
        clock,
        max_concurrent=concurrent,
        max_queued=queued,
        queue_timeout=timeout,
        per_host=per_host,
        name="api",
    )


class BulkheadTests(SynchronousTestCase):
    """Slots, the queue and its bounds."""

    def test_free_slots_granted_at_once(self) -> None:
        """While slots are free, acquire fires immediately."""
        bulkhead = make(Clock(), concurrent=2)
        self.successResultOf(bulkhead.acquire())
        self.successResultOf(bulkhead.acquire())
        self.assertEqual(2, bulkhead.active())
        self.assertEqual(0, bulkhead.queued())

    def test_queue_first_in_first_out(self) -> None:
        """Waiting calls get slots in arrival order as slots are released."""
        clock = Clock()
        bulkhead = make(clock, queued=2)
        slot = self.successResultOf(bulkhead.acquire())
        second, third = bulkhead.acquire(), bulkhead.acquire()
        self.assertNoResult(second)
        self.assertNoResult(third)
        self.assertEqual(2, bulkhead.queued())
        slot.release()
        next_slot = self.successResultOf(second)
        self.assertNoResult(third)
        self.assertEqual(1, bulkhead.active())
        next_slot.release()
        self.successResultOf(third).release()
        self.assertEqual(0, bulkhead.active())
        self.assertEqual([], clock.getDelayedCalls())

    def test_queue_full(self) -> None:
        """A call finding the queue full fails at once with a clear error."""
        clock = Clock()
        bulkhead = make(clock, queued=1)
        self.successResultOf(bulkhead.acquire())
        bulkhead.acquire()
        failure = self.failureResultOf(
            bulkhead.acquire(method="GET", url="http://h/"), HTTPBulkheadFullError
        )
        error = failure.value
        self.assertEqual("queue-full", error.reason)
        self.assertEqual("api", error.bulkhead)
        self.assertIn("max_queued=1", str(error))
        self.assertIn("max_concurrent=1", str(error))
        self.assertIn("GET http://h/", str(error))
        self.assertFalse(error.request_sent)

    def test_no_queue(self) -> None:
        """With max_queued=0 a busy bulkhead refuses at once."""
        bulkhead = make(Clock(), queued=0)
        self.successResultOf(bulkhead.acquire())
        self.failureResultOf(bulkhead.acquire(), HTTPBulkheadFullError)

    def test_queue_timeout(self) -> None:
        """A queued call fails after queue_timeout seconds, not before."""
        clock = Clock()
        bulkhead = make(clock, timeout=5.0)
        slot = self.successResultOf(bulkhead.acquire())
        waiting = bulkhead.acquire()
        clock.advance(4.999)
        self.assertNoResult(waiting)
        clock.advance(0.001)
        failure = self.failureResultOf(waiting, HTTPBulkheadFullError)
        self.assertEqual("queue-timeout", failure.value.reason)
        self.assertIn("5 s", str(failure.value))
        self.assertEqual(0, bulkhead.queued())
        slot.release()
        self.assertEqual(0, bulkhead.active())
        self.assertEqual([], clock.getDelayedCalls())

    def test_granted_slot_cancels_timer(self) -> None:
        """A queued call that gets a slot no longer has a timer."""
        clock = Clock()
        bulkhead = make(clock)
        slot = self.successResultOf(bulkhead.acquire())
        waiting = bulkhead.acquire()
        self.assertEqual(1, len(clock.getDelayedCalls()))
        slot.release()
        self.successResultOf(waiting)
        self.assertEqual([], clock.getDelayedCalls())

    def test_cancel_leaves_queue(self) -> None:
        """Cancelling a queued acquire removes it and its timer."""
        clock = Clock()
        bulkhead = make(clock)
        slot = self.successResultOf(bulkhead.acquire())
        waiting = bulkhead.acquire()
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(0, bulkhead.queued())
        self.assertEqual([], clock.getDelayedCalls())
        slot.release()
        self.assertEqual(0, bulkhead.active())

    def test_release_idempotent(self) -> None:
        """Releasing a slot twice frees it only once."""
        bulkhead = make(Clock(), concurrent=2)
        slot = self.successResultOf(bulkhead.acquire())
        self.successResultOf(bulkhead.acquire())
        slot.release()
        slot.release()
        self.assertEqual(1, bulkhead.active())

    def test_per_host(self) -> None:
        """Per-host bulkheads bound each host separately."""
        bulkhead = make(Clock(), per_host=True, queued=0)
        self.successResultOf(bulkhead.acquire("a"))
        self.successResultOf(bulkhead.acquire("b"))
        failure = self.failureResultOf(bulkhead.acquire("a"), HTTPBulkheadFullError)
        self.assertEqual("api[a]", failure.value.bulkhead)
        self.assertEqual(1, bulkhead.active("a"))
        self.assertEqual(1, bulkhead.active("b"))

    def test_idle_hosts_forgotten(self) -> None:
        """No state is kept for a host once its calls are done."""
        clock = Clock()
        bulkhead = make(clock, per_host=True)
        slots = [self.successResultOf(bulkhead.acquire(f"h{n}")) for n in range(50)]
        waiting = bulkhead.acquire("h0")
        for slot in slots:
            slot.release()
        self.successResultOf(waiting).release()
        self.assertEqual(0, bulkhead.tracked_hosts())
        self.assertEqual([], clock.getDelayedCalls())

    def test_shared_across_hosts(self) -> None:
        """A per-client bulkhead bounds all hosts together."""
        bulkhead = make(Clock(), queued=0)
        self.successResultOf(bulkhead.acquire("a"))
        self.failureResultOf(bulkhead.acquire("b"), HTTPBulkheadFullError)

    def test_run_releases_on_success_and_failure(self) -> None:
        """run() frees the slot however the call ends."""
        bulkhead = make(Clock())
        self.assertEqual(7, self.successResultOf(bulkhead.run(lambda: succeed(7))))
        self.assertEqual(0, bulkhead.active())
        result = bulkhead.run(lambda: fail_with(KeyError("x")))
        self.failureResultOf(result, KeyError)
        self.assertEqual(0, bulkhead.active())

    def test_run_queues(self) -> None:
        """run() waits for a slot before calling."""
        bulkhead = make(Clock())
        first: Deferred[int] = Deferred()
        calls: list[str] = []

        def second_call() -> Deferred[int]:
            calls.append("second")
            return succeed(2)

        one = bulkhead.run(lambda: first)
        two = bulkhead.run(second_call)
        self.assertEqual([], calls)
        first.callback(1)
        self.assertEqual(1, self.successResultOf(one))
        self.assertEqual(2, self.successResultOf(two))
        self.assertEqual(["second"], calls)

    def test_run_cancel_running_call(self) -> None:
        """Cancelling run() cancels the running call and frees its slot."""
        bulkhead = make(Clock())
        running: Deferred[int] = Deferred()
        result = bulkhead.run(lambda: running)
        result.cancel()
        self.failureResultOf(result, CancelledError)
        self.assertEqual(0, bulkhead.active())

    def test_invalid_settings(self) -> None:
        """Bad bounds raise ValueError naming the setting."""
        for kwargs, name in [
            ({"max_concurrent": 0}, "max_concurrent"),
            ({"max_queued": -1}, "max_queued"),
            ({"queue_timeout": 0.0}, "queue_timeout"),
        ]:
            with self.assertRaises(ValueError) as caught:
                Bulkhead(Clock(), **kwargs)  # type: ignore[arg-type]  # mixed kwargs
            self.assertIn(name, str(caught.exception))

    def test_default_queue_bound(self) -> None:
        """The default queue holds DEFAULT_MAX_QUEUED calls."""
        bulkhead = Bulkhead(Clock(), max_concurrent=1)
        self.successResultOf(bulkhead.acquire())
        waiting = [bulkhead.acquire() for _ in range(DEFAULT_MAX_QUEUED)]
        self.assertEqual(DEFAULT_MAX_QUEUED, bulkhead.queued())
        self.failureResultOf(bulkhead.acquire(), HTTPBulkheadFullError)
        for d in waiting:
            d.cancel()
            self.failureResultOf(d, CancelledError)


def succeed(value: int) -> Deferred[int]:
    """An already fired Deferred."""
    d: Deferred[int] = Deferred()
    d.callback(value)
    return d


def fail_with(error: Exception) -> Deferred[int]:
    """An already failed Deferred."""
    d: Deferred[int] = Deferred()
    d.errback(error)
    return d
