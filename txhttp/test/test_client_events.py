"""
Tests for `txhttp.client._events`: dispatch order, filter events, notifications.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client._events import (
    FILTER_REQUEST,
    FILTER_RESPONSE,
    NOTIFICATION_EVENTS,
    REQUEST_COMPLETED,
    REQUEST_DISPATCHED,
    REQUEST_RETRYING,
    REQUEST_TIMED_OUT,
    RESPONSE_RECEIVED,
    RETRIES_EXHAUSTED,
    EventDispatcher,
    FilterEvent,
    RequestCompleted,
    RequestDispatched,
    RequestTimedOut,
    ResponseReceived,
    RetriesExhausted,
)


class EventDispatcherTests(SynchronousTestCase):
    """Listener order and kinds."""

    def test_priority_then_insertion_order(self) -> None:
        """Higher priorities run first; ties run in the order added."""
        log: list[str] = []
        dispatcher = EventDispatcher()
        dispatcher.add_listener("e", lambda e: log.append("a0"))
        dispatcher.add_listener("e", lambda e: log.append("b10"), priority=10)
        dispatcher.add_listener("e", lambda e: log.append("c0"))
        dispatcher.add_listener("e", lambda e: log.append("d-5"), priority=-5)
        dispatcher.add_listener("other", lambda e: log.append("never"))
        self.assertEqual("x", self.successResultOf(dispatcher.dispatch("e", "x")))
        self.assertEqual(["b10", "a0", "c0", "d-5"], log)

    def test_no_listeners(self) -> None:
        """Dispatching with no listener fires with the event."""
        dispatcher = EventDispatcher()
        self.assertFalse(dispatcher.has_listeners("e"))
        self.assertEqual(1, self.successResultOf(dispatcher.dispatch("e", 1)))

    def test_deferred_listener_waited_for(self) -> None:
        """A listener's Deferred holds the next listener until it fires."""
        log: list[str] = []
        gate: Deferred[None] = Deferred()
        dispatcher = EventDispatcher()

        def slow(event: str) -> Deferred[None]:
            log.append("slow")
            return gate

        dispatcher.add_listener("e", slow)
        dispatcher.add_listener("e", lambda e: log.append("next"))
        result = dispatcher.dispatch("e", "x")
        self.assertNoResult(result)
        self.assertEqual(["slow"], log)
        gate.callback(None)
        self.successResultOf(result)
        self.assertEqual(["slow", "next"], log)

    def test_coroutine_listener(self) -> None:
        """A coroutine-function listener is awaited."""
        log: list[str] = []
        dispatcher = EventDispatcher()

        async def listener(event: str) -> None:
            await succeed(None)
            log.append(event)

        dispatcher.add_listener("e", listener)
        self.successResultOf(dispatcher.dispatch("e", "x"))
        self.assertEqual(["x"], log)

    def test_remove_listener(self) -> None:
        """A removed listener is not called; removing an unknown one fails."""
        log: list[str] = []

        def listener(event: str) -> None:
            log.append(event)

        dispatcher = EventDispatcher()
        dispatcher.add_listener("e", listener)
        self.assertEqual([listener], dispatcher.listeners("e"))
        dispatcher.remove_listener("e", listener)
        self.successResultOf(dispatcher.dispatch("e", "x"))
        self.assertEqual([], log)
        self.assertRaises(ValueError, dispatcher.remove_listener, "e", listener)

    def test_dispatch_fails_on_listener_error(self) -> None:
        """dispatch fails with a listener's error and skips later listeners."""
        log: list[str] = []

        def broken(event: str) -> None:
            raise KeyError("broken")

        dispatcher = EventDispatcher()
        dispatcher.add_listener("e", broken)
        dispatcher.add_listener("e", lambda e: log.append("later"))
        self.failureResultOf(dispatcher.dispatch("e", "x"), KeyError)
        self.assertEqual([], log)

    def test_notify_logs_and_continues(self) -> None:
        """notify logs a listener's error and still calls the others."""
        log: list[str] = []

        def broken(event: str) -> None:
            raise KeyError("broken")

        dispatcher = EventDispatcher()
        dispatcher.add_listener("e", broken)
        dispatcher.add_listener("e", lambda e: log.append("later"))
        self.assertEqual("x", self.successResultOf(dispatcher.notify("e", "x")))
        self.assertEqual(["later"], log)
        self.assertEqual(1, len(self.flushLoggedErrors(KeyError)))

    def test_cancel(self) -> None:
        """Cancelling a dispatch cancels the listener being waited for."""
        cancelled: list[bool] = []
        dispatcher = EventDispatcher()
        dispatcher.add_listener(
            "e", lambda e: Deferred(lambda _: cancelled.append(True))
        )
        result = dispatcher.dispatch("e", "x")
        result.cancel()
        self.failureResultOf(result, CancelledError)
        self.assertEqual([True], cancelled)

    def test_changes_during_dispatch_apply_later(self) -> None:
        """A listener added during a dispatch is called from the next one."""
        log: list[str] = []
        dispatcher = EventDispatcher()

        def adder(event: str) -> None:
            log.append("adder")
            dispatcher.add_listener("e", lambda e: log.append("added"))

        dispatcher.add_listener("e", adder)
        self.successResultOf(dispatcher.dispatch("e", "x"))
        self.assertEqual(["adder"], log)
        dispatcher.remove_listener("e", adder)
        self.successResultOf(dispatcher.dispatch("e", "x"))
        self.assertEqual(["adder", "added"], log)


class FilterEventTests(SynchronousTestCase):
    """The filter-request / filter-response protocol."""

    def test_forged_response(self) -> None:
        """A filter-request listener may set a response (skip the network)."""
        dispatcher = EventDispatcher()

        def forge(event: FilterEvent[str, str]) -> None:
            event.response = "cached"

        dispatcher.add_listener(FILTER_REQUEST, forge)
        event: FilterEvent[str, str] = FilterEvent("GET /")
        self.assertFalse(event.has_response)
        result = self.successResultOf(dispatcher.dispatch(FILTER_REQUEST, event))
        self.assertIs(event, result)
        self.assertTrue(result.has_response)
        self.assertEqual("cached", result.response)

    def test_same_instance_for_response(self) -> None:
        """The same event is seen in both phases; the response may be replaced."""
        seen: list[FilterEvent[str, str]] = []
        dispatcher = EventDispatcher()
        dispatcher.add_listener(FILTER_REQUEST, seen.append)

        def replace(event: FilterEvent[str, str]) -> None:
            seen.append(event)
            event.response = f"filtered {event.response}"

        dispatcher.add_listener(FILTER_RESPONSE, replace)
        event: FilterEvent[str, str] = FilterEvent("GET /")
        self.successResultOf(dispatcher.dispatch(FILTER_REQUEST, event))
        event.response = "real"
        self.successResultOf(dispatcher.dispatch(FILTER_RESPONSE, event))
        self.assertEqual("filtered real", event.response)
        self.assertEqual(2, len(seen))
        self.assertIs(seen[0], seen[1])

    def test_stop_propagation_stops_both_phases(self) -> None:
        """Stopping in filter-request skips the rest, and all of filter-response."""
        log: list[str] = []
        dispatcher = EventDispatcher()

        def stopper(event: FilterEvent[str, str]) -> None:
            log.append("stopper")
            event.stop_propagation()

        dispatcher.add_listener(FILTER_REQUEST, stopper, priority=1)
        dispatcher.add_listener(FILTER_REQUEST, lambda e: log.append("request"))
        dispatcher.add_listener(FILTER_RESPONSE, lambda e: log.append("response"))
        event: FilterEvent[str, str] = FilterEvent("GET /")
        self.successResultOf(dispatcher.dispatch(FILTER_REQUEST, event))
        self.successResultOf(dispatcher.dispatch(FILTER_RESPONSE, event))
        self.assertTrue(event.propagation_stopped)
        self.assertEqual(["stopper"], log)

    def test_stop_in_response_phase(self) -> None:
        """Stopping in filter-response skips the later response listeners."""
        log: list[str] = []
        dispatcher = EventDispatcher()

        def first(event: FilterEvent[str, str]) -> None:
            log.append("first")
            event.stop_propagation()

        dispatcher.add_listener(FILTER_RESPONSE, first)
        dispatcher.add_listener(FILTER_RESPONSE, lambda e: log.append("second"))
        event: FilterEvent[str, str] = FilterEvent("GET /", "resp")
        self.successResultOf(dispatcher.dispatch(FILTER_RESPONSE, event))
        self.assertEqual(["first"], log)

    def test_async_forging_listener(self) -> None:
        """A coroutine listener may forge the response."""
        dispatcher = EventDispatcher()

        async def forge(event: FilterEvent[str, str]) -> None:
            event.response = await succeed("from cache")

        dispatcher.add_listener(FILTER_REQUEST, forge)
        event: FilterEvent[str, str] = FilterEvent("GET /")
        self.successResultOf(dispatcher.dispatch(FILTER_REQUEST, event))
        self.assertEqual("from cache", event.response)


class NotificationEventTests(SynchronousTestCase):
    """The notification event types and names."""

    def test_names(self) -> None:
        """The notification names are distinct and documented."""
        self.assertEqual(
            {
                "request-dispatched",
                "response-received",
                "request-completed",
                "request-retrying",
                "retries-exhausted",
                "request-timed-out",
            },
            set(NOTIFICATION_EVENTS),
        )
        self.assertEqual(
            NOTIFICATION_EVENTS,
            {
                REQUEST_DISPATCHED,
                RESPONSE_RECEIVED,
                REQUEST_COMPLETED,
                REQUEST_RETRYING,
                RETRIES_EXHAUSTED,
                REQUEST_TIMED_OUT,
            },
        )
        self.assertEqual(
            ("filter-request", "filter-response"),
            (
                FILTER_REQUEST,
                FILTER_RESPONSE,
            ),
        )

    def test_frozen_values(self) -> None:
        """Notification events are frozen dataclasses with their fields."""
        events: list[object] = [
            RequestDispatched(method="GET", url="u"),
            ResponseReceived(method="GET", url="u", status=200),
            RequestCompleted(method="GET", url="u", status=200, duration=0.5),
            RetriesExhausted(method="GET", url="u", attempts=3),
            RequestTimedOut(method="GET", url="u", timeout=5.0),
        ]
        for event in events:
            with self.assertRaises(dataclasses.FrozenInstanceError):
                event.method = "POST"  # type: ignore[attr-defined]  # asserting frozen

    def test_completed_success(self) -> None:
        """RequestCompleted.succeeded reflects status and error."""
        self.assertTrue(
            RequestCompleted(method="GET", url="u", status=200, duration=0).succeeded
        )
        self.assertFalse(
            RequestCompleted(method="GET", url="u", status=503, duration=0).succeeded
        )
        self.assertFalse(
            RequestCompleted(
                method="GET", url="u", status=None, duration=0, error=KeyError()
            ).succeeded
        )

    def test_notification_order(self) -> None:
        """Events notified in sequence reach a listener in that sequence."""
        seen: list[str] = []
        dispatcher = EventDispatcher()

        def recorder(name: str) -> Callable[[object], None]:
            return lambda event: seen.append(name)

        for name in sorted(NOTIFICATION_EVENTS):
            dispatcher.add_listener(name, recorder(name))
        dispatcher.notify(REQUEST_DISPATCHED, RequestDispatched(method="GET", url="u"))
        dispatcher.notify(
            RESPONSE_RECEIVED, ResponseReceived(method="GET", url="u", status=200)
        )
        dispatcher.notify(
            REQUEST_COMPLETED,
            RequestCompleted(method="GET", url="u", status=200, duration=0.1),
        )
        self.assertEqual(
            [REQUEST_DISPATCHED, RESPONSE_RECEIVED, REQUEST_COMPLETED], seen
        )
