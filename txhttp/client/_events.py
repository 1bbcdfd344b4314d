# -*- test-case-name: txhttp.test.test_client_events -*-
"""
Events that `HTTPClient` dispatches around each request, and their dispatcher.

`EventDispatcher` keeps listeners per event name, ordered by priority, and
calls them one after another; a listener may be a plain function, return a
Deferred, or be a coroutine function, and the next listener only runs once the
previous one finished.

Two kinds of events:

- **Filter events** (`FilterEvent`) may change what happens. The client
  dispatches one as ``"filter-request"`` (``FILTER_REQUEST``) before a request
  goes out; a listener that sets `FilterEvent.response` makes the client skip
  the network and use that (forged) response. The *same instance* is then
  dispatched as ``"filter-response"`` (``FILTER_RESPONSE``) once the response
  is known (real or forged), and a listener may replace it.
  `FilterEvent.stop_propagation` stops all further filtering, for both names.
- **Notification events** are small frozen dataclasses that only report:
  `RequestDispatched`, `ResponseReceived`, `RequestCompleted`,
  `RetriesExhausted`, `RequestTimedOut`, under the names listed in
  ``NOTIFICATION_EVENTS``.

`EventDispatcher.dispatch` lets a listener's failure fail the dispatch (what a
filter wants); `EventDispatcher.notify` runs every listener whatever happens
and logs failures (what a notification wants: a broken metrics listener must
not break requests). Nothing here knows about the network or time.
"""

from __future__ import annotations

import inspect
from bisect import insort
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger

__all__ = [
    "FILTER_REQUEST",
    "FILTER_RESPONSE",
    "NOTIFICATION_EVENTS",
    "REQUEST_COMPLETED",
    "REQUEST_DISPATCHED",
    "REQUEST_RETRYING",
    "REQUEST_TIMED_OUT",
    "RESPONSE_RECEIVED",
    "RETRIES_EXHAUSTED",
    "EventDispatcher",
    "FilterEvent",
    "RequestCompleted",
    "RequestDispatched",
    "RequestRetrying",
    "RequestTimedOut",
    "ResponseReceived",
    "RetriesExhausted",
    "StoppableEvent",
]

_log = Logger()

E = TypeVar("E")
ReqT = TypeVar("ReqT")
RespT = TypeVar("RespT")

FILTER_REQUEST: Final = "filter-request"
"""Name of the `FilterEvent` dispatched before a request goes out."""

FILTER_RESPONSE: Final = "filter-response"
"""Name under which the same `FilterEvent` is dispatched once a response exists."""

REQUEST_DISPATCHED: Final = "request-dispatched"
"""Name of `RequestDispatched`: a request (one attempt) is being sent."""

RESPONSE_RECEIVED: Final = "response-received"
"""Name of `ResponseReceived`: a response head arrived."""

REQUEST_COMPLETED: Final = "request-completed"
"""Name of `RequestCompleted`: a request finished, successfully or not."""

RETRIES_EXHAUSTED: Final = "retries-exhausted"
"""Name of `RetriesExhausted`: every attempt the retry policy allowed failed."""

REQUEST_RETRYING: Final = "request-retrying"
"""Name of `RequestRetrying`: an attempt failed and another is scheduled."""

REQUEST_TIMED_OUT: Final = "request-timed-out"
"""Name of `RequestTimedOut`: a request was cancelled by its timeout."""

NOTIFICATION_EVENTS: Final[frozenset[str]] = frozenset(
    {
        REQUEST_DISPATCHED,
        RESPONSE_RECEIVED,
        REQUEST_COMPLETED,
        REQUEST_RETRYING,
        RETRIES_EXHAUSTED,
        REQUEST_TIMED_OUT,
    }
)
"""The names of the notification events, for code that subscribes to all."""


class StoppableEvent:
    """
    An event whose listeners may stop its propagation.

    Once ``stop_propagation`` is called, `EventDispatcher` calls no further
    listener for this event object, under any name it is dispatched with.
    """

    __slots__ = ("_propagation_stopped",)

    def __init__(self) -> None:
        self._propagation_stopped = False

    def stop_propagation(self) -> None:
        """Call no further listener for this event, now or in later dispatches."""
        self._propagation_stopped = True

    @property
    def propagation_stopped(self) -> bool:
        """``True`` once ``stop_propagation`` was called."""
        return self._propagation_stopped


class FilterEvent(StoppableEvent, Generic[ReqT, RespT]):
    """
    The request (and later the response) offered to filter listeners.

    Dispatched first as ``FILTER_REQUEST``: a listener may replace ``request``,
    or set ``response``, in which case the client sends nothing and uses that
    response. The same instance is dispatched as ``FILTER_RESPONSE`` once a
    response exists (real or forged), where a listener may replace
    ``response``. Calling ``stop_propagation`` in either phase stops all further
    filtering of this request, in both phases.

    Attributes:
        request: The request about to be sent (the client's request type).
        response: ``None`` until a listener forges one or the real response
            arrives.
    """

    __slots__ = ("request", "response")

    def __init__(self, request: ReqT, response: RespT | None = None) -> None:
        super().__init__()
        self.request = request
        self.response = response

    @property
    def has_response(self) -> bool:
        """``True`` when a response is set (forged by a listener, or real)."""
        return self.response is not None

    def __repr__(self) -> str:
        return (
            f"FilterEvent(request={self.request!r}, response={self.response!r}, "
            f"propagation_stopped={self.propagation_stopped})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestDispatched:
    """
    One attempt of a request is being handed to the network (``REQUEST_DISPATCHED``).

    Attributes:
        method: The request method.
        url: The full request URL.
        attempt: The attempt number, 1 for the first try.
    """

    method: str
    url: str
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """
    A response head arrived for an attempt (``RESPONSE_RECEIVED``).

    Attributes:
        method: The request method.
        url: The full request URL.
        status: The response status code.
        attempt: The attempt number, 1 for the first try.
    """

    method: str
    url: str
    status: int
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCompleted:
    """
    A request finished, after all its attempts (``REQUEST_COMPLETED``).

    Attributes:
        method: The request method.
        url: The full request URL.
        status: The final status code, or ``None`` if no response arrived.
        duration: Seconds from the first attempt to the end, by the client's
            clock.
        error: The exception the request failed with, or ``None``.
    """

    method: str
    url: str
    status: int | None
    duration: float
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        """``True`` when there was no error and the status is below 400."""
        return self.error is None and self.status is not None and self.status < 400


@dataclass(frozen=True, slots=True, kw_only=True)
class RetriesExhausted:
    """
    Every attempt allowed by the retry policy failed (``RETRIES_EXHAUSTED``).

    Attributes:
        method: The request method.
        url: The full request URL.
        attempts: How many attempts were made.
        errors: Each attempt's error, first attempt first.
    """

    method: str
    url: str
    attempts: int
    errors: tuple[BaseException, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRetrying:
    """
    An attempt failed in a retryable way; another follows (``REQUEST_RETRYING``).

    Dispatched once per retry, before the backoff wait starts.

    Attributes:
        method: The request method.
        url: The full request URL.
        attempt: The number of the attempt about to be made (2 for the first
            retry).
        delay: Seconds until that attempt starts.
        error: The previous attempt's error (a retried status as
            `HTTPStatusError`).
    """

    method: str
    url: str
    attempt: int
    delay: float
    error: BaseException


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestTimedOut:
    """
    A request was cancelled because its deadline passed (``REQUEST_TIMED_OUT``).

    Attributes:
        method: The request method.
        url: The full request URL.
        timeout: The deadline that passed, in seconds.
        phase: What the deadline covered (``"total"`` or ``"attempt"``).
    """

    method: str
    url: str
    timeout: float
    phase: str = "total"


Listener = Callable[[E], object]
"""
A listener: called with the event; may return ``None``, a Deferred, or a
coroutine (awaited before the next listener runs). Its return value is
otherwise ignored.
"""


@dataclass(frozen=True, slots=True, order=True)
class _Entry:
    """A registered listener; sorts by priority (highest first), then age."""

    sort_key: tuple[int, int]
    listener: Callable[[object], object] = field(compare=False)


def _as_deferred(result: object) -> Deferred[object] | None:
    """Turn a listener's return value into a Deferred, or ``None`` if synchronous."""
    if isinstance(result, Deferred):
        return cast("Deferred[object]", result)
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(
            cast("Coroutine[Deferred[object], object, object]", result)
        )
    if inspect.isawaitable(result):
        awaitable = cast("Awaitable[object]", result)

        async def wait() -> object:
            return await awaitable

        return Deferred.fromCoroutine(wait())
    return None


class EventDispatcher:
    """
    Calls listeners registered per event name, in priority order.

    Listeners with a higher ``priority`` run first; equal priorities run in
    the order they were added. Listeners run one at a time: if one returns a
    Deferred or is a coroutine function, the next waits for it. Adding or
    removing listeners while a dispatch runs affects later dispatches only.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[_Entry]] = {}
        self._added = 0

    def add_listener(
        self, name: str, listener: Callable[[E], object], priority: int = 0
    ) -> None:
        """
        Call ``listener`` with every event dispatched under ``name``.

        Args:
            name: The event name, for example ``FILTER_REQUEST``.
            listener: A function of the event; may return a Deferred or be a
                coroutine function.
            priority: Higher runs earlier; ties run in the order added.
        """
        self._added += 1
        entry = _Entry(
            (-priority, self._added),
            # Events of one name share one type; the name is what ties a
            # listener to its event type, which the type system cannot see.
            cast("Callable[[object], object]", listener),
        )
        insort(self._listeners.setdefault(name, []), entry)

    def remove_listener(self, name: str, listener: Callable[[E], object]) -> None:
        """
        Stop calling ``listener`` for ``name`` (every registration of it).

        Raises:
            ValueError: ``listener`` is not registered for ``name``.
        """
        entries = self._listeners.get(name, [])
        kept = [entry for entry in entries if entry.listener != listener]
        if len(kept) == len(entries):
            raise ValueError(f"listener {listener!r} is not registered for {name!r}")
        if kept:
            self._listeners[name] = kept
        else:
            del self._listeners[name]

    def has_listeners(self, name: str) -> bool:
        """``True`` if at least one listener is registered for ``name``."""
        return bool(self._listeners.get(name))

    def listeners(self, name: str) -> list[Callable[[object], object]]:
        """The listeners for ``name``, in the order they will be called."""
        return [entry.listener for entry in self._listeners.get(name, [])]

    def dispatch(self, name: str, event: E) -> Deferred[E]:
        """
        Call each listener for ``name`` with ``event``, one after another.

        Stops early, without error, once a `StoppableEvent` has its
        propagation stopped (also when it was stopped before this call).

        Returns:
            A Deferred firing with ``event`` once every listener finished,
            or failing with the first listener's exception (later listeners
            are then not called). Cancelling it cancels the listener being
            waited for.
        """
        return Deferred.fromCoroutine(self._run(name, event, swallow=False))

    def notify(self, name: str, event: E) -> Deferred[E]:
        """
        Like ``dispatch``, but a failing listener is logged and the rest still run.

        For notification events, whose listeners (logging, metrics) must
        never break the request they report on.

        Returns:
            A Deferred firing with ``event`` once every listener finished; it
            only fails if it is cancelled.
        """
        return Deferred.fromCoroutine(self._run(name, event, swallow=True))

    async def _run(self, name: str, event: E, *, swallow: bool) -> E:
        for entry in list(self._listeners.get(name, ())):
            if isinstance(event, StoppableEvent) and event.propagation_stopped:
                break
            try:
                waiting = _as_deferred(entry.listener(event))
                if waiting is not None:
                    await waiting
            except CancelledError:
                raise
            except Exception:
                if not swallow:
                    raise
                _log.failure(
                    "listener {listener!r} for event {name!r} failed",
                    listener=entry.listener,
                    name=name,
                )
        return event
