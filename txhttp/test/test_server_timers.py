# -*- test-case-name: txhttp.test.test_server_timers -*-
"""
Tests for `txhttp.server._timers`: many timers on one reactor call, with the
exact timing, ordering and error behaviour of the reactor's own timers, a
bounded heap, and no reactor call left behind; and for its use by the
channels of `txhttp.server.HTTPServerFactory`.
"""

from __future__ import annotations

import math
import random

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txhttp.server import HTTPChannel, HTTPServerFactory, Request, Response
from txhttp.server._timers import (
    COMPACT_MIN_STALE,
    COMPACT_STALE_FACTOR,
    ChannelTimers,
    TimerHandle,
)
from txhttp.test._server_helpers import HalfCloseTransport, is_closing

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def make_timers() -> tuple[ChannelTimers, Clock, list[object]]:
    """Return timers on a new Clock, and a list for callbacks to record into."""
    clock = Clock()
    return ChannelTimers(clock), clock, []


def heap_bound(timers: ChannelTimers) -> int:
    """The most entries the heap may hold with ``timers.pending`` handles."""
    pending = timers.pending
    return pending + COMPACT_STALE_FACTOR * pending + COMPACT_MIN_STALE


class TimerHandleTests(SynchronousTestCase):
    """One handle behaves as a reactor's ``DelayedCall``."""

    def test_provides_idelayedcall(self) -> None:
        """A handle provides ``IDelayedCall``."""
        timers, _clock, _fired = make_timers()
        handle = timers.callLater(1, lambda: None)
        self.assertTrue(verifyObject(IDelayedCall, handle))
        self.assertIsInstance(handle, TimerHandle)

    def test_fires_at_exact_time(self) -> None:
        """The call runs when the clock reaches its time, not before."""
        timers, clock, fired = make_timers()
        clock.advance(0.1)
        handle = timers.callLater(60.0, fired.append, "a")
        self.assertEqual(handle.getTime(), 0.1 + 60.0)
        clock.advance(59.9)
        clock.rightNow = math.nextafter(handle.getTime(), 0.0)
        clock.advance(0)
        self.assertEqual(fired, [])
        self.assertTrue(handle.active())
        clock.rightNow = handle.getTime()
        clock.advance(0)
        self.assertEqual(fired, ["a"])
        self.assertFalse(handle.active())

    def test_exact_at_awkward_times(self) -> None:
        """Times whose sums round still fire exactly on their deadline."""
        for start in (0.1, 0.3, 1e6 + 0.7, 1.7e9 + 0.123, 12345.678901):
            for period in (0.2, 15.0, 59.99, 60.0, 1e-9):
                timers, clock, fired = make_timers()
                clock.rightNow = start
                handle = timers.callLater(period, fired.append, clock.seconds)
                due = handle.getTime()
                self.assertEqual(due, start + period)
                clock.rightNow = math.nextafter(due, 0.0)
                clock.advance(0)
                self.assertEqual(fired, [], (start, period))
                clock.rightNow = due
                clock.advance(0)
                self.assertEqual(len(fired), 1, (start, period))

    def test_exact_when_rearmed_later(self) -> None:
        """A deadline set again from a later time still fires exactly on it."""
        # From 0.257..., now + (deadline - now) rounds one step past deadline.
        timers, clock, fired = make_timers()
        clock.rightNow = 0.07008436108787686
        handle = timers.callLater(0.7432830602725053, fired.append, "late")
        timers.callLater(0.1, fired.append, "early")
        clock.rightNow = 0.25708002934173807
        clock.advance(0)
        self.assertEqual(fired, ["early"])
        due = handle.getTime()
        self.assertEqual(due, 0.8133674213603822)
        clock.rightNow = due
        clock.advance(0)
        self.assertEqual(fired, ["early", "late"])

    def test_passes_arguments(self) -> None:
        """Positional and keyword arguments reach the function."""
        timers, clock, fired = make_timers()
        timers.callLater(1, lambda *a, **k: fired.append((a, k)), 1, 2, x=3)
        clock.advance(1)
        self.assertEqual(fired, [((1, 2), {"x": 3})])

    def test_reset_later(self) -> None:
        """A reset moves the call later; it runs then, not at the old time."""
        timers, clock, fired = make_timers()
        handle = timers.callLater(10, fired.append, "a")
        clock.advance(5)
        handle.reset(10)
        self.assertEqual(handle.getTime(), 15.0)
        clock.advance(5)
        self.assertEqual(fired, [])
        clock.advance(4.5)
        self.assertEqual(fired, [])
        clock.advance(0.5)
        self.assertEqual(fired, ["a"])

    def test_reset_later_is_constant_time(self) -> None:
        """Moving a call later pushes nothing: the heap does not grow."""
        timers, clock, _fired = make_timers()
        handle = timers.callLater(10, lambda: None)
        for _ in range(1000):
            clock.advance(0.001)
            handle.reset(10)
        self.assertEqual(timers.heap_size, 1)
        self.assertEqual(len(clock.getDelayedCalls()), 1)

    def test_reset_earlier(self) -> None:
        """A reset moves the call sooner, and the reactor call with it."""
        timers, clock, fired = make_timers()
        handle = timers.callLater(60, fired.append, "a")
        handle.reset(5)
        [call] = clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 5.0)
        clock.advance(4.9)
        self.assertEqual(fired, [])
        clock.advance(0.1)
        self.assertEqual(fired, ["a"])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_reset_later_then_earlier(self) -> None:
        """Later then sooner than the queued time: runs at the last time set."""
        timers, clock, fired = make_timers()
        handle = timers.callLater(10, fired.append, "a")
        handle.reset(30)
        handle.reset(20)
        clock.advance(19)
        self.assertEqual(fired, [])
        clock.advance(1)
        self.assertEqual(fired, ["a"])

    def test_delay(self) -> None:
        """``delay`` moves the call later, or sooner when negative."""
        timers, clock, fired = make_timers()
        later = timers.callLater(10, fired.append, "later")
        sooner = timers.callLater(10, fired.append, "sooner")
        later.delay(5)
        sooner.delay(-7)
        self.assertEqual((later.getTime(), sooner.getTime()), (15.0, 3.0))
        clock.advance(3)
        self.assertEqual(fired, ["sooner"])
        clock.advance(11.9)
        self.assertEqual(fired, ["sooner"])
        clock.advance(0.1)
        self.assertEqual(fired, ["sooner", "later"])

    def test_cancel(self) -> None:
        """A cancelled call never runs and is no longer active."""
        timers, clock, fired = make_timers()
        handle = timers.callLater(1, fired.append, "a")
        self.assertTrue(handle.active())
        handle.cancel()
        self.assertFalse(handle.active())
        clock.advance(10)
        self.assertEqual(fired, [])

    def test_cancelled_refuses(self) -> None:
        """A cancelled call refuses cancel, reset and delay (AlreadyCancelled)."""
        timers, _clock, _fired = make_timers()
        handle = timers.callLater(1, lambda: None)
        handle.cancel()
        self.assertRaises(AlreadyCancelled, handle.cancel)
        self.assertRaises(AlreadyCancelled, handle.reset, 1)
        self.assertRaises(AlreadyCancelled, handle.delay, 1)

    def test_called_refuses(self) -> None:
        """A call that ran refuses cancel, reset and delay (AlreadyCalled)."""
        timers, clock, _fired = make_timers()
        handle = timers.callLater(1, lambda: None)
        clock.advance(1)
        self.assertRaises(AlreadyCalled, handle.cancel)
        self.assertRaises(AlreadyCalled, handle.reset, 1)
        self.assertRaises(AlreadyCalled, handle.delay, 1)

    def test_inactive_while_running(self) -> None:
        """During its own call a handle is no longer active, as a DelayedCall."""
        timers, clock, fired = make_timers()
        handles: list[TimerHandle] = []
        handles.append(timers.callLater(1, lambda: fired.append(handles[0].active())))
        clock.advance(1)
        self.assertEqual(fired, [False])

    def test_done_handle_drops_its_function(self) -> None:
        """A handle that ran or was cancelled no longer holds its function."""
        timers, clock, _fired = make_timers()
        ran = timers.callLater(1, lambda: None)
        cancelled = timers.callLater(1, lambda: None)
        cancelled.cancel()
        clock.advance(1)
        self.assertIn("None", repr(ran))
        self.assertIn("called", repr(ran))
        self.assertIn("cancelled", repr(cancelled))

    def test_negative_delay_refused(self) -> None:
        """A negative (or NaN) delay is refused with ValueError."""
        timers, _clock, _fired = make_timers()
        self.assertRaises(ValueError, timers.callLater, -1, lambda: None)
        self.assertRaises(ValueError, timers.callLater, math.nan, lambda: None)
        self.assertEqual(timers.pending, 0)


class ChannelTimersTests(SynchronousTestCase):
    """Many handles share one reactor call."""

    def test_one_reactor_call(self) -> None:
        """However many handles are pending, the clock holds one call."""
        timers, clock, _fired = make_timers()
        for delay in range(100, 0, -1):
            timers.callLater(delay, lambda: None)
        [call] = clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 1.0)
        self.assertEqual(timers.pending, 100)

    def test_ties_in_creation_order(self) -> None:
        """Calls due at the same time run in the order they were made."""
        timers, clock, fired = make_timers()
        first = timers.callLater(5, fired.append, 1)
        timers.callLater(5, fired.append, 2)
        timers.callLater(3, fired.append, 3)
        first.reset(4)
        first.reset(5)  # Back to the tie: its place stays first.
        clock.advance(5)
        self.assertEqual(fired, [3, 1, 2])

    def test_many_handles_exact_order_and_time(self) -> None:
        """Random delays, resets and cancels: each runs at its time, in order."""
        timers, clock, _ = make_timers()
        fired: list[tuple[int, float]] = []
        rng = random.Random(4)
        handles: list[TimerHandle] = []
        expected: dict[int, float] = {}

        def record(index: int) -> None:
            fired.append((index, clock.seconds()))

        for index in range(500):
            handles.append(timers.callLater(rng.uniform(0, 50), record, index))
        for _ in range(2000):
            handle = rng.choice(handles)
            if not handle.active():
                continue
            action = rng.random()
            if action < 0.1:
                handle.cancel()
            elif action < 0.55:
                handle.reset(rng.uniform(0, 60))
            else:
                # Sooner by up to 5 s, never into the past.
                room = min(5.0, handle.getTime() - clock.seconds())
                handle.delay(rng.uniform(-room, 5))
            self.assertLessEqual(timers.heap_size, heap_bound(timers))
        for index, handle in enumerate(handles):
            if handle.active():
                expected[index] = handle.getTime()
        # Advance in small steps so that each call's time is observed.
        while clock.getDelayedCalls():
            [call] = clock.getDelayedCalls()
            clock.rightNow = call.getTime()
            clock.advance(0)
        self.assertEqual(timers.pending, 0)
        self.assertEqual(dict(fired), expected)
        order = [expected[index] for index, _ in fired]
        self.assertEqual(order, sorted(order))

    def test_rearm_from_callback(self) -> None:
        """A callback may schedule a new call; it runs after its delay."""
        timers, clock, fired = make_timers()

        def again() -> None:
            fired.append(clock.seconds())
            if len(fired) < 3:
                timers.callLater(2, again)

        timers.callLater(1, again)
        clock.advance(1)
        clock.advance(2)
        clock.advance(2)
        self.assertEqual(fired, [1.0, 3.0, 5.0])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_zero_delay_rearm_waits_for_next_run(self) -> None:
        """A call made with no delay by a callback runs in a later reactor call."""
        timers, clock, fired = make_timers()
        runs: list[int] = []
        original = timers._run

        def counted_run() -> None:
            runs.append(len(fired))
            original()

        timers._run = counted_run  # type: ignore[method-assign]  # counts runs

        def first() -> None:
            fired.append("first")
            timers.callLater(0, fired.append, "second")

        timers.callLater(1, first)
        clock.advance(1)
        self.assertEqual(fired, ["first", "second"])
        self.assertEqual(runs, [0, 1])

    def test_callback_cancels_and_resets_others(self) -> None:
        """A callback may cancel or move handles due in the same run."""
        timers, clock, fired = make_timers()
        doomed = timers.callLater(2, fired.append, "doomed")
        moved = timers.callLater(2, fired.append, "moved")

        def meddle() -> None:
            fired.append("meddle")
            doomed.cancel()
            moved.reset(3)

        timers.callLater(1, meddle)
        clock.advance(1)
        self.assertEqual(fired, ["meddle"])
        clock.advance(2.9)
        self.assertEqual(fired, ["meddle"])
        clock.advance(0.1)
        self.assertEqual(fired, ["meddle", "moved"])

    def test_failing_callback_logged_others_run(self) -> None:
        """A callback that raises is logged; the calls due with it still run."""
        timers, clock, fired = make_timers()
        timers.callLater(1, fired.append, "before")
        timers.callLater(1, lambda: 1 // 0)
        timers.callLater(1, fired.append, "after")
        timers.callLater(2, fired.append, "later")
        clock.advance(1)
        self.assertEqual(fired, ["before", "after"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        clock.advance(1)
        self.assertEqual(fired, ["before", "after", "later"])

    def test_heap_compaction_bound(self) -> None:
        """Cancelled handles and sooner resets never grow the heap unbounded."""
        timers, _clock, _fired = make_timers()
        keep = [timers.callLater(100, lambda: None) for _ in range(10)]
        for _ in range(10_000):
            timers.callLater(50, lambda: None).cancel()
            self.assertLessEqual(timers.heap_size, heap_bound(timers))
        for step in range(10_000):
            keep[0].reset(99 - step / 1000)  # Sooner each time: a push each.
            self.assertLessEqual(timers.heap_size, heap_bound(timers))
        self.assertEqual(timers.pending, 10)

    def test_compaction_keeps_live_handles(self) -> None:
        """Handles survive any number of compactions and run on time."""
        timers, clock, fired = make_timers()
        live = [timers.callLater(10 + i, fired.append, i) for i in range(5)]
        for _ in range(1000):
            timers.callLater(1, lambda: None).cancel()
        clock.advance(20)
        self.assertEqual(fired, [0, 1, 2, 3, 4])
        self.assertFalse(any(handle.active() for handle in live))

    def test_heap_shrinks_as_handles_go(self) -> None:
        """Cancelling most handles shrinks the heap within the bound."""
        timers, _clock, _fired = make_timers()
        handles = [timers.callLater(i, lambda: None) for i in range(1, 2001)]
        for handle in handles[:1990]:
            handle.cancel()
            self.assertLessEqual(timers.heap_size, heap_bound(timers))
        self.assertLessEqual(timers.heap_size, 10 * 3 + COMPACT_MIN_STALE)

    def test_last_cancel_cancels_reactor_call(self) -> None:
        """Once nothing is pending, the clock holds no call and the heap none."""
        timers, clock, _fired = make_timers()
        handles = [timers.callLater(i + 1, lambda: None) for i in range(3)]
        for handle in handles:
            self.assertEqual(len(clock.getDelayedCalls()), 1)
            handle.cancel()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(timers.heap_size, 0)

    def test_cancelled_earliest_rearms_for_next(self) -> None:
        """The reactor call moves on to the next live deadline past stale ones."""
        timers, clock, fired = make_timers()
        early = [timers.callLater(i + 1, lambda: None) for i in range(5)]
        timers.callLater(30, fired.append, "late")
        for handle in early:
            handle.cancel()
        clock.advance(1)
        [call] = clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 30.0)
        self.assertEqual(timers.heap_size, 1)
        clock.advance(29)
        self.assertEqual(fired, ["late"])

    def test_reset_later_moves_reactor_call_at_wakeup(self) -> None:
        """After a wake-up, the reactor call is set for the reset deadline."""
        timers, clock, fired = make_timers()
        handle = timers.callLater(10, fired.append, "a")
        clock.advance(9)
        handle.reset(10)
        clock.advance(1)
        [call] = clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 19.0)
        clock.advance(9)
        self.assertEqual(fired, ["a"])

    def test_stop_with_nothing_pending(self) -> None:
        """``stop`` leaves no reactor call; the timers work again afterwards."""
        timers, clock, fired = make_timers()
        timers.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
        timers.callLater(1, fired.append, "a")
        clock.advance(1)
        self.assertEqual(fired, ["a"])

    def test_stop_keeps_pending_handles(self) -> None:
        """``stop`` lets pending handles run; the call ends with the last."""
        timers, clock, fired = make_timers()
        timers.callLater(5, fired.append, "a")
        timers.stop()
        clock.advance(5)
        self.assertEqual(fired, ["a"])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancel_all(self) -> None:
        """``cancel_all`` cancels every handle and the reactor call."""
        timers, clock, fired = make_timers()
        handles = [timers.callLater(i + 1, fired.append, i) for i in range(5)]
        timers.cancel_all()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(any(handle.active() for handle in handles))
        self.assertRaises(AlreadyCancelled, handles[0].cancel)
        clock.advance(10)
        self.assertEqual(fired, [])
        self.assertEqual(timers.pending, 0)


def _hello(request: Request, response: Response) -> None:
    response.finish(b"hi")


class FactoryTimersTests(SynchronousTestCase):
    """`HTTPServerFactory` channels time out through the factory's timers."""

    def connect(
        self, factory: HTTPServerFactory, count: int
    ) -> list[tuple[HTTPChannel, HalfCloseTransport]]:
        """Connect ``count`` channels of ``factory``; return them with transports."""
        pairs = []
        for _ in range(count):
            channel = factory.buildProtocol(None)
            transport = HalfCloseTransport()
            channel.makeConnection(transport)
            pairs.append((channel, transport))
        return pairs

    def test_channels_share_one_reactor_call(self) -> None:
        """A hundred idle channels hold one clock call, and all idle out."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock, idle_timeout=10.0)
        pairs = self.connect(factory, 100)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        self.assertEqual(factory.timers.pending, 100)
        clock.advance(5)
        for channel, _transport in pairs[::2]:
            channel.dataReceived(GET)
        clock.advance(5)
        closed = [is_closing(transport) for _channel, transport in pairs]
        self.assertEqual(closed, [False, True] * 50)
        clock.advance(5)
        self.assertTrue(all(is_closing(t) for _c, t in pairs))
        for channel, _transport in pairs:
            channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(factory.timers.pending, 0)

    def test_abort_timer_on_factory_timers(self) -> None:
        """A close that cannot flush is aborted through the factory's timers."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock, idle_timeout=10.0)
        [(channel, transport)] = self.connect(factory, 1)
        channel.abort_timeout = 5.0
        clock.advance(10)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        self.assertEqual(factory.timers.pending, 1)
        clock.advance(5)
        self.assertTrue(transport.disconnected)
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_close_moves_idle_handle_sooner(self) -> None:
        """Closing reuses the idle handle as the abort timer, moved sooner."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock, idle_timeout=60.0)
        [(channel, transport)] = self.connect(factory, 1)
        channel.abort_timeout = 5.0
        idle = vars(channel)["_TimeoutMixin__timeoutCall"]
        clock.advance(1)
        channel.dataReceived(GET[:-2] + b"Connection: close\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertIs(vars(channel)["_TimeoutMixin__timeoutCall"], idle)
        self.assertEqual(idle.getTime(), 6.0)
        self.assertEqual(factory.timers.pending, 1)
        clock.advance(4.9)
        self.assertFalse(transport.disconnected)
        clock.advance(0.1)
        self.assertTrue(transport.disconnected)
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_channel_timeout_call_is_a_handle(self) -> None:
        """The idle timer TimeoutMixin keeps is a TimerHandle, not a DelayedCall."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock)
        [(channel, _transport)] = self.connect(factory, 1)
        self.assertIsInstance(vars(channel)["_TimeoutMixin__timeoutCall"], TimerHandle)
        self.assertIsInstance(channel.callLater(1, lambda: None), TimerHandle)

    def test_stopping_factory_cancels_reactor_call(self) -> None:
        """A stopped factory whose connections are gone leaves no clock call."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock)
        factory.doStart()
        [(channel, _transport)] = self.connect(factory, 1)
        channel.dataReceived(GET)
        channel.connectionLost(Failure(ConnectionError("done")))
        factory.doStop()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(factory.timers.heap_size, 0)

    def test_stopping_factory_keeps_open_connections_timed(self) -> None:
        """Connections open when the factory stops still idle out on time."""
        clock = Clock()
        factory = HTTPServerFactory(_hello, clock=clock, idle_timeout=10.0)
        factory.doStart()
        [(channel, transport)] = self.connect(factory, 1)
        factory.doStop()
        clock.advance(10)
        self.assertTrue(is_closing(transport))
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_factories_have_their_own_timers(self) -> None:
        """Each factory has its own timers on its own clock."""
        first, second = Clock(), Clock()
        one = HTTPServerFactory(_hello, clock=first, idle_timeout=1.0)
        two = HTTPServerFactory(_hello, clock=second, idle_timeout=1.0)
        self.assertIsNot(one.timers, two.timers)
        [(_c1, t1)] = self.connect(one, 1)
        [(_c2, t2)] = self.connect(two, 1)
        first.advance(1)
        self.assertTrue(is_closing(t1))
        self.assertFalse(is_closing(t2))
