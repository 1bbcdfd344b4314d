# -*- test-case-name: txhttp.test.test_server_hotpath -*-
"""
Tests for the shortcuts `HTTPChannel` takes on every connection: the idle
timer handled inline (``TimeoutMixin``'s fields, without its wrappers) only
while ``setTimeout`` and ``resetTimeout`` are ``TimeoutMixin``'s own, the
timer restarted once the received bytes were handled, and the fixed state
moves that skip the transition table's lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport as Transport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from txhttp._wire import LocalProtocolError
from txhttp.server import ChannelState, HTTPChannel, Request, Response
from txhttp.server._channel import DEFAULT_ABORT_TIMEOUT
from txhttp.server._native import BODY_HIGH_WATER_BYTES
from txhttp.test._server_helpers import (
    HalfCloseTransport,
    Recorder,
    make_channel,
    make_native,
    parse_responses,
    respond_at_once,
)

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


@implementer(IDelayedCall)
class CountingCall:
    """An ``IDelayedCall`` recording the periods it is reset to."""

    def __init__(self, resets: list[float], call: IDelayedCall) -> None:
        self._resets = resets
        self._call = call

    def reset(self, secondsFromNow: float) -> None:
        """Record, then reset the wrapped call."""
        self._resets.append(secondsFromNow)
        self._call.reset(secondsFromNow)

    def __getattr__(self, name: str) -> Any:
        # The rest of IDelayedCall, as the wrapped call has it.
        return getattr(self._call, name)


class RecordingTimeouts(HTTPChannel):
    """An `HTTPChannel` whose subclass records every timeout call."""

    __slots__ = ()

    calls: list[object]

    def resetTimeout(self) -> None:
        """Record the call, then reset as `TimeoutMixin` does."""
        self.calls.append("reset")
        super().resetTimeout()

    def setTimeout(self, period: float | None) -> float | None:
        """Record the period, then set it as `TimeoutMixin` does."""
        self.calls.append(period)
        previous: float | None = super().setTimeout(period)
        return previous


def connect_recording(clock: Clock) -> tuple[RecordingTimeouts, HalfCloseTransport]:
    """Return a connected `RecordingTimeouts` answering every request at once."""
    channel = RecordingTimeouts(clock=clock)
    channel.calls = []
    channel.exchangeFactory = Recorder(respond_at_once)
    channel.timeOut = 10.0
    transport = HalfCloseTransport()
    channel.makeConnection(transport)
    return channel, transport


class OverriddenTimeoutTests(SynchronousTestCase):
    """A subclass overriding the timeout methods sees every call."""

    def test_reset_timeout_called_per_receive(self) -> None:
        """An overridden resetTimeout is called for every receive."""
        clock = Clock()
        channel, transport = connect_recording(clock)
        clock.advance(4)
        channel.dataReceived(GET)
        channel.dataReceived(GET)
        self.assertEqual([10.0, "reset", "reset"], channel.calls)
        self.assertEqual(
            [200, 200], [r.status for r in parse_responses(transport.value())]
        )
        # The reset (TimeoutMixin's own) moved the deadline.
        clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_set_timeout_called_on_connect_close_and_loss(self) -> None:
        """An overridden setTimeout sees the idle, abort and final periods."""
        clock = Clock()
        channel, transport = connect_recording(clock)
        channel.abort_timeout = 3.0
        channel.dataReceived(GET_CLOSE)
        self.assertTrue(transport.disconnecting)
        channel.connectionLost(Failure(ConnectionError("done")))
        # Reset first (the receive), then the abort timer, then none.
        self.assertEqual([10.0, "reset", None, 3.0, None], channel.calls)
        self.assertEqual([], clock.getDelayedCalls())


def counted_channel(
    abort_timeout: float = DEFAULT_ABORT_TIMEOUT,
) -> tuple[HTTPChannel, HalfCloseTransport, Clock, list[float]]:
    """
    A connected channel answering at once, idle after 10 s, and the periods
    its timers were reset to.
    """
    clock = Clock()
    resets: list[float] = []

    def call_later(
        delay: float, func: Callable[..., object], *args: object, **kw: object
    ) -> IDelayedCall:
        return CountingCall(resets, clock.callLater(delay, func, *args, **kw))

    channel = HTTPChannel(clock=clock)
    # An instance's own callLater, as twisted.web's Site sets it.
    channel.callLater = call_later  # type: ignore[method-assign,assignment]  # a plain function on the instance, no self
    channel.exchangeFactory = Recorder(respond_at_once)
    channel.timeOut = 10.0
    channel.abort_timeout = abort_timeout
    transport = HalfCloseTransport()
    channel.makeConnection(transport)
    return channel, transport, clock, resets


class IdleTimerTests(SynchronousTestCase):
    """How often the idle timer is touched."""

    def test_timer_set_before_connecting_is_kept(self) -> None:
        """A timer set before the connection is reused, not doubled."""
        clock = Clock()
        channel = HTTPChannel(clock=clock)
        channel.exchangeFactory = Recorder(respond_at_once)
        channel.setTimeout(5.0)
        channel.makeConnection(HalfCloseTransport())
        self.assertEqual([5.0], [c.getTime() for c in clock.getDelayedCalls()])
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual([], clock.getDelayedCalls())

    def test_close_after_response_does_not_reset_first(self) -> None:
        """A request answered and closed at once never restarts the idle timer."""
        channel, transport, clock, resets = counted_channel(abort_timeout=3.0)
        clock.advance(1)
        channel.dataReceived(GET_CLOSE)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([], resets)
        self.assertEqual([4.0], [c.getTime() for c in clock.getDelayedCalls()])
        channel.connectionLost(Failure(ConnectionError("done")))
        self.assertEqual([], clock.getDelayedCalls())

    def test_keep_alive_receive_restarts_once(self) -> None:
        """A request answered on a kept connection restarts the timer once."""
        channel, transport, clock, resets = counted_channel()
        clock.advance(2)
        channel.dataReceived(GET)
        self.assertEqual([10.0], resets)
        self.assertEqual([12.0], [c.getTime() for c in clock.getDelayedCalls()])
        self.assertFalse(transport.disconnecting)

    def test_receive_while_closing_leaves_abort_timer(self) -> None:
        """Bytes received after the close do not move the abort deadline."""
        channel, transport, clock, resets = counted_channel(abort_timeout=3.0)
        channel.dataReceived(GET_CLOSE)
        self.assertIs(ChannelState.CLOSING, channel.state)
        clock.advance(2)
        channel.dataReceived(GET)
        self.assertEqual([], resets)
        self.assertEqual([3.0], [c.getTime() for c in clock.getDelayedCalls()])
        clock.advance(1)
        self.assertTrue(transport.disconnected)


class FixedMoveTests(SynchronousTestCase):
    """The fixed state moves still refuse what the table refuses."""

    def test_connecting_twice_is_a_bug(self) -> None:
        """A second connectionMade raises instead of reopening."""
        channel, _transport, _clock, _rec = make_channel()
        self.assertRaises(RuntimeError, channel.connectionMade)
        self.assertIs(ChannelState.OPEN, channel.state)


def post(body: bytes) -> bytes:
    """A POST request carrying ``body`` with a Content-Length."""
    return b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class RequestBodyTests(SynchronousTestCase):
    """The request body, queued only once a piece or a reader needs it."""

    def kept(self) -> tuple[list[tuple[Request, Response]], HTTPChannel, Transport]:
        """A native channel whose handler keeps its requests, unanswered."""
        seen: list[tuple[Request, Response]] = []

        def handler(request: Request, response: Response) -> None:
            seen.append((request, response))

        channel, transport, _clock = make_native(handler)
        return seen, channel, transport

    def test_read_after_end_is_empty(self) -> None:
        """Reading a body that was complete before anyone read gives b''."""
        seen, channel, _transport = self.kept()
        channel.dataReceived(post(b"abc"))
        [(request, _response)] = seen
        self.assertEqual(b"abc", self.successResultOf(request.read_chunk()))
        self.assertEqual(b"", self.successResultOf(request.read_chunk()))
        self.assertEqual(b"", self.successResultOf(request.read_chunk()))

    def test_bodiless_read_is_empty(self) -> None:
        """A request without a body reads as b'' once its end was told."""
        seen, channel, _transport = self.kept()
        channel.dataReceived(GET)
        [(request, _response)] = seen
        self.assertEqual(b"", self.successResultOf(request.read()))
        self.assertEqual((), request.trailers)

    def half_read(self) -> tuple[Request, Response, HTTPChannel, Deferred[bytes]]:
        """A request whose first half was read, and a read waiting for more."""
        seen, channel, _transport = self.kept()
        channel.dataReceived(post(b"abcdef")[:-3])
        [(request, response)] = seen
        self.assertEqual(b"abc", self.successResultOf(request.read_chunk()))
        waiting = request.read_chunk()
        self.assertNoResult(waiting)
        return request, response, channel, waiting

    def test_waiting_reader_fails_on_loss(self) -> None:
        """A reader waiting for body bytes fails when the connection goes."""
        request, _response, channel, waiting = self.half_read()
        channel.connectionLost(Failure(ConnectionError("gone")))
        self.failureResultOf(waiting, ConnectionError)
        # Later reads fail the same way, once the queued bytes are read.
        self.failureResultOf(request.read_chunk(), ConnectionError)

    def test_unread_reader_fails_on_loss(self) -> None:
        """A body cut short before anyone read fails the first read."""
        seen, channel, _transport = self.kept()
        channel.dataReceived(post(b"abcdef")[:-6])
        [(request, _response)] = seen
        channel.connectionLost(Failure(ConnectionError("gone")))
        self.failureResultOf(request.read_chunk(), ConnectionError)

    def test_finish_resumes_paused_body(self) -> None:
        """Answering without reading a paused body resumes the socket."""
        seen, channel, transport = self.kept()
        channel.dataReceived(post(b"x" * (BODY_HIGH_WATER_BYTES + 2))[:-1])
        self.assertEqual("paused", transport.producerState)
        [(_request, response)] = seen
        response.finish(b"no thanks")
        self.assertEqual("producing", transport.producerState)
        channel.dataReceived(b"x")  # The rest is read and dropped.
        [answer] = parse_responses(transport.value())
        self.assertEqual((200, b"no thanks"), (answer.status, answer.body))

    def test_finish_while_reading_keeps_waiter(self) -> None:
        """Answering while a read waits leaves the read to be completed."""
        request, response, channel, waiting = self.half_read()
        response.finish(b"early")
        channel.dataReceived(b"def")
        self.assertEqual(b"def", self.successResultOf(waiting))
        self.assertEqual(b"", self.successResultOf(request.read_chunk()))


class WholeResponseTests(SynchronousTestCase):
    """``Response.finish(body)``, written whole in one step."""

    def test_body_must_match_content_length(self) -> None:
        """A whole body other than its Content-Length is refused, unwritten."""
        errors: list[LocalProtocolError] = []

        def handler(request: Request, response: Response) -> None:
            response.set_header(b"Content-Length", b"5")
            try:
                response.finish(b"ab")
            except LocalProtocolError as error:
                errors.append(error)

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        [error] = errors
        self.assertIn("body of 2 bytes", str(error))
        self.assertEqual(b"", transport.value())

    def test_body_matching_content_length_is_sent(self) -> None:
        """A whole body of its Content-Length goes out with that length."""

        def handler(request: Request, response: Response) -> None:
            response.set_header(b"Content-Length", b"2")
            response.finish(b"ab")

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        [answer] = parse_responses(transport.value())
        self.assertEqual((b"2", b"ab"), (answer.header(b"Content-Length"), answer.body))
