# -*- test-case-name: txhttp.test.test_server_timers -*-
"""
``ChannelTimers``: the timeouts of many connections on one reactor timer.

A server factory owns one ``ChannelTimers``; its channels schedule their idle,
header, lingering and abort timeouts through it (``HTTPChannel.callLater``),
and get back a small ``TimerHandle`` providing ``IDelayedCall``, which is all
``TimeoutMixin`` and the channel use. A reactor ``DelayedCall`` costs a few
hundred bytes per connection and reactor work on every create and cancel;
here the connections share one real call, set for the earliest deadline.

Deadlines are exact (no wheel of coarse slots): a handle fires when the clock
reaches the time it was set for, as a ``DelayedCall`` would, so tests driving
a ``twisted.internet.task.Clock`` see the same times. Handles due together
fire in deadline order, ties in the order the handles were made (as
``Clock`` orders them).

How: a binary heap of ``(deadline, order, handle)`` entries, the scheme the
reactor itself uses, with lazy deletion.

- Making a handle pushes one entry (``O(log n)``); the reactor call moves
  only if the new deadline is the earliest.
- Moving a deadline later (``reset``, as every received byte does to the
  idle timeout) stores the new time and nothing else (``O(1)``); the old
  entry is pushed again at the new time when it reaches the top.
- Moving one sooner pushes a new entry; the old one becomes stale.
- Cancelling marks the handle; its entry is dropped when it reaches the top.
  When stale entries outnumber live ones by more than
  `COMPACT_STALE_FACTOR` (and `COMPACT_MIN_STALE`), the heap is rebuilt from
  the live entries, so its size stays within a constant factor of the
  handles pending.
- When the last pending handle goes, the reactor call is cancelled and the
  heap emptied: an idle server leaves no timer behind.

Time comes only from the injected ``IReactorTime``. Nothing here knows about
connections or HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from heapq import heapify, heappop, heappush, heapreplace
from typing import Final, NoReturn, cast

from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

COMPACT_STALE_FACTOR: Final = 2
"""The heap is rebuilt when its stale entries exceed this many times the
pending handles (and `COMPACT_MIN_STALE`): at most this factor of wasted
entries, and rebuilds rare enough to cost ``O(1)`` per handle overall."""

COMPACT_MIN_STALE: Final = 64
"""Stale entries always tolerated: a few pending handles never cause a
rebuild per cancellation."""

# The heap is rebuilt beyond _HEAP_PER_PENDING * pending + COMPACT_MIN_STALE.
_HEAP_PER_PENDING: Final = 1 + COMPACT_STALE_FACTOR

_new: Final = object.__new__

_Entry = tuple[float, int, "TimerHandle"]

# What a handle's ``_entry`` holds once it left the heap for good: tuples
# shaped like entries (the cast keeps the slot one type), never in the heap
# and only ever compared by identity.
_CANCELLED: Final = cast(_Entry, (math.inf, -1, None))
_CALLED: Final = cast(_Entry, (math.inf, -2, None))


@implementer(IDelayedCall)
class TimerHandle:
    """
    One scheduled call of a `ChannelTimers`; provides ``IDelayedCall``.

    Made by `ChannelTimers.callLater`, never directly. Like a reactor's
    ``DelayedCall``, ``cancel``, ``reset`` and ``delay`` raise
    ``AlreadyCancelled`` or ``AlreadyCalled`` once it is no longer pending.
    """

    # Slots only: a pending handle is this object and its heap entry.
    __slots__ = ("_entry", "_func", "_time", "_timers")

    # Set by ChannelTimers.callLater, which makes handles without calling
    # a Python __init__ (a third of the cost of making one).
    _timers: ChannelTimers
    _time: float
    _func: Callable[[], object] | None
    _entry: _Entry
    """The heap entry standing for this handle, or ``_CANCELLED`` /
    ``_CALLED`` once it left the heap for good."""

    def getTime(self) -> float:
        """The clock time (``seconds()``) at which the call is due."""
        return self._time

    def cancel(self) -> None:
        """
        Unschedule the call; it never runs.

        Raises:
            AlreadyCancelled: It was cancelled before.
            AlreadyCalled: It has run (or is running).
        """
        # The checks and the bookkeeping are inline: every connection
        # cancels its timers, so this is on the path of each one.
        entry = self._entry
        if entry is _CANCELLED or entry is _CALLED:
            self._refuse()
        self._entry = _CANCELLED
        self._func = None
        timers = self._timers
        pending = timers._pending = timers._pending - 1
        if not pending:
            timers._release()
        elif len(timers._heap) > _HEAP_PER_PENDING * pending + COMPACT_MIN_STALE:
            timers._compact()

    def reset(self, secondsFromNow: float) -> None:
        """
        Make the call due ``secondsFromNow`` seconds from now.

        Raises:
            AlreadyCancelled: It was cancelled.
            AlreadyCalled: It has run (or is running).
        """
        entry = self._entry
        if entry is _CANCELLED or entry is _CALLED:
            self._refuse()
        timers = self._timers
        time = self._time = timers.seconds() + secondsFromNow
        if time < entry[0]:
            timers._push(self, time, entry[1])

    def delay(self, secondsLater: float) -> None:
        """
        Move the call ``secondsLater`` seconds later (sooner if negative).

        Raises:
            AlreadyCancelled: It was cancelled.
            AlreadyCalled: It has run (or is running).
        """
        entry = self._entry
        if entry is _CANCELLED or entry is _CALLED:
            self._refuse()
        time = self._time = self._time + secondsLater
        if time < entry[0]:
            self._timers._push(self, time, entry[1])

    def active(self) -> bool:
        """Whether the call is still to run (not run, not cancelled)."""
        entry = self._entry
        return entry is not _CANCELLED and entry is not _CALLED

    def _refuse(self) -> NoReturn:
        if self._entry is _CANCELLED:
            raise AlreadyCancelled(self)
        raise AlreadyCalled(self)

    def __repr__(self) -> str:
        state = (
            "cancelled"
            if self._entry is _CANCELLED
            else "called"
            if self._entry is _CALLED
            else f"due {self._time}"
        )
        return f"<TimerHandle {state}: {self._func!r}>"


class ChannelTimers:
    """
    Many timers on one reactor call (see the module docstring).

    Args:
        clock: The time source and the reactor the one real call is
            scheduled on (a ``Clock`` in tests).
    """

    _log: Final = Logger()

    def __init__(self, clock: IReactorTime) -> None:
        self.clock: Final = clock
        """The injected time source."""
        self.seconds: Final = clock.seconds
        """The current time, as ``clock.seconds()``."""
        self._heap: list[_Entry] = []
        # Entry order numbers: ties between equal deadlines go to the handle
        # made first. A handle keeps its number when it is pushed again.
        self._order = 0
        self._pending = 0
        self._call: IDelayedCall | None = None
        self._call_time = math.inf
        self._running = False

    @property
    def pending(self) -> int:
        """How many handles are scheduled and not yet run or cancelled."""
        return self._pending

    @property
    def heap_size(self) -> int:
        """Entries in the heap, stale ones included (bounded, see module)."""
        return len(self._heap)

    def callLater(
        self, delay: float, func: Callable[..., object], *args: object, **kw: object
    ) -> TimerHandle:
        """
        Call ``func(*args, **kw)`` ``delay`` seconds from now.

        A call that raises is logged; the others due with it still run.

        Raises:
            ValueError: ``delay`` is negative.
        """
        if not delay >= 0:
            raise ValueError(f"delay must be a non-negative number, not {delay!r}")
        time = self.seconds() + delay
        handle = _new(TimerHandle)
        handle._timers = self
        handle._time = time
        # Arguments are bound here, so that a handle holds one callable
        # (the channels pass none).
        handle._func = partial(func, *args, **kw) if args or kw else func
        order = self._order
        self._order = order + 1
        # _push, inline: one call per connection at least.
        handle._entry = entry = (time, order, handle)
        heap = self._heap
        heappush(heap, entry)
        pending = self._pending = self._pending + 1
        if time < self._call_time and not self._running:
            self._schedule(time)
        if len(heap) > _HEAP_PER_PENDING * pending + COMPACT_MIN_STALE:
            self._compact()
        return handle

    def stop(self) -> None:
        """
        Cancel the reactor call and empty the heap if no handle is pending.

        Handles still pending (those of connections still open when their
        factory stops listening) keep running; the reactor call is cancelled
        with the last of them. `cancel_all` stops them too.
        """
        if not self._pending:
            self._release()

    def cancel_all(self) -> None:
        """Cancel every pending handle and the reactor call."""
        for _, _, handle in self._heap:
            if handle._entry is not _CANCELLED and handle._entry is not _CALLED:
                handle._entry = _CANCELLED
                handle._func = None
        self._pending = 0
        self._release()

    # -- the heap ------------------------------------------------------------

    def _push(self, handle: TimerHandle, time: float, order: int) -> None:
        """Queue ``handle`` at ``time``; its older entry, if any, goes stale."""
        entry = (time, order, handle)
        handle._entry = entry
        heap = self._heap
        heappush(heap, entry)
        if time < self._call_time and not self._running:
            self._schedule(time)
        if len(heap) > _HEAP_PER_PENDING * self._pending + COMPACT_MIN_STALE:
            self._compact()

    def _compact(self) -> None:
        """Rebuild the heap (in place) from the entries still current."""
        heap = self._heap
        heap[:] = [entry for entry in heap if entry[2]._entry is entry]
        heapify(heap)

    def _release(self) -> None:
        """Nothing is pending: cancel the reactor call, empty the heap."""
        self._heap.clear()
        call = self._call
        if call is not None:
            self._call = None
            self._call_time = math.inf
            call.cancel()

    # -- the reactor call ----------------------------------------------------

    def _schedule(self, time: float) -> None:
        """Have the reactor run `_run` at ``time`` (and not before)."""
        call = self._call
        if call is not None:
            call.cancel()
        now = self.seconds()
        delay = time - now
        if delay <= 0:
            delay = 0.0
        else:
            # The reactor adds the delay to its own now: keep the sum from
            # rounding past ``time`` (a Clock advanced to exactly ``time``
            # must run it).
            while now + delay > time:
                delay = math.nextafter(delay, 0.0)
        self._call_time = time
        self._call = self.clock.callLater(delay, self._run)

    def _run(self) -> None:
        """The reactor call: run every handle due, then re-arm."""
        # A call that landed a rounding step short of its time (see
        # _schedule) runs nothing and is set again: near the deadline, the
        # difference is exact, so the next one lands on it.
        now = self.seconds()
        self._call = None
        self._call_time = math.inf
        heap = self._heap
        # Handles made by the callbacks below wait for the next run, so a
        # callback re-arming itself with no delay cannot loop here.
        made_before = self._order
        self._running = True
        try:
            while heap:
                entry = heap[0]
                time, order, handle = entry
                if time > now or order >= made_before:
                    break
                heappop(heap)
                if handle._entry is not entry:
                    continue  # Stale: cancelled, or queued again elsewhere.
                if handle._time > time:
                    # Reset later since queued: queue it at its new time.
                    entry = (handle._time, order, handle)
                    handle._entry = entry
                    heappush(heap, entry)
                    continue
                self._fire(handle)
        finally:
            self._running = False
            self._rearm()

    def _fire(self, handle: TimerHandle) -> None:
        func = handle._func
        handle._entry = _CALLED
        handle._func = None
        self._pending -= 1
        assert func is not None
        try:
            func()
        except Exception:
            self._log.failure("timer call {func!r} failed", func=func)

    def _rearm(self) -> None:
        """Drop stale entries from the top; set the reactor call for the next."""
        if not self._pending:
            self._release()
            return
        heap = self._heap
        while heap:
            entry = heap[0]
            handle = entry[2]
            if handle._entry is not entry:
                heappop(heap)
            elif handle._time > entry[0]:
                # Reset later since queued: move it now, not at a wake-up.
                entry = (handle._time, entry[1], handle)
                handle._entry = entry
                heapreplace(heap, entry)
            else:
                if entry[0] < self._call_time:
                    self._schedule(entry[0])
                return
        # Unreachable while handles are pending: each has its entry.
        raise RuntimeError("bug: pending timers with an empty heap")
