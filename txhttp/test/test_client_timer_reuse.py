# -*- test-case-name: txhttp.test.test_client_timer_reuse -*-
"""
Tests for the wait timer `HTTP11ClientProtocol` keeps from one exchange to
the next: a request started on the connection while the previous response
ends (a keep-alive loop) reuses the timer, and no timer outlives an exchange
that no other follows at once. Driven over a `StringTransport` with a
`Clock`, and `ClientExchange.release_timer` directly.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client import ResponseHeadTimeout
from txhttp.client._response import Response
from txhttp.test.test_client_exchange import Setup
from txhttp.test.test_client_protocol import (
    BodyCollector,
    Connection,
    ManualProducer,
    connect,
    make_request,
)

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class _NextOnEnd(BodyCollector):
    """A body protocol that sends the next request when its body ends."""

    def __init__(self, connection: Connection, timeout: float = 30.0) -> None:
        super().__init__()
        self._connection = connection
        self._timeout = timeout
        self.next: Deferred[Response] | None = None

    def connectionLost(self, reason: Failure | None = None) -> None:
        """Keep the reason, then start the next request on the connection."""
        assert reason is not None
        super().connectionLost(reason)
        self.next = self._connection.protocol.request(
            make_request(response_head_timeout=self._timeout)
        )


class TimerReuseTests(SynchronousTestCase):
    """Back-to-back exchanges on one connection share one wait timer."""

    def test_next_request_reuses_timer(self) -> None:
        """A request sent as the previous body ends schedules no new timer."""
        c = connect()
        first = c.protocol.request(make_request())
        (timer,) = c.clock.getDelayedCalls()
        body = _NextOnEnd(c)
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        self.successResultOf(first).deliverBody(body)
        c.receive(b"ok")
        self.assertEqual(b"ok", body.body)
        self.assertIsNotNone(body.next)
        self.assertEqual([timer], c.clock.getDelayedCalls())
        self.assertTrue(timer.active())

    def test_reused_timer_times_from_the_new_request(self) -> None:
        """The kept timer times the next request's head from when it was sent."""
        c = connect()
        first = c.protocol.request(make_request(response_head_timeout=30.0))
        c.clock.advance(20)
        body = _NextOnEnd(c, timeout=30.0)
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        self.successResultOf(first).deliverBody(body)
        c.receive(b"ok")
        second = body.next
        assert second is not None
        c.clock.advance(29.9)  # 49.9 s in: the kept timer fired at 30 and re-armed
        self.assertNoResult(second)
        c.clock.advance(0.1)
        self.failureResultOf(second, ResponseHeadTimeout)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_released_when_no_request_follows(self) -> None:
        """An exchange that no other follows at once leaves no timer behind."""
        c = connect()
        done = c.protocol.request(make_request())
        c.receive(_OK)
        self.successResultOf(done)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_released_after_early_response(self) -> None:
        """A response before the body was done, then the body: no timer left."""
        c = connect()
        producer = ManualProducer(3)
        done = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        c.receive(_OK)
        self.successResultOf(done).deliverBody(BodyCollector())
        self.assertEqual([], c.clock.getDelayedCalls())
        producer.finish()
        self.assertEqual([c.protocol], c.quiescent)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_released_after_tunnel(self) -> None:
        """A tunnel response leaves no timer behind."""
        c = connect()
        done = c.protocol.request(make_request(b"CONNECT", b"example.com:443"))
        c.receive(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.assertEqual(200, self.successResultOf(done).code)
        self.assertEqual([], c.clock.getDelayedCalls())


class ReleaseTimerTests(SynchronousTestCase):
    """`ClientExchange.release_timer` cancels a kept timer nothing waits on."""

    def test_kept_then_released(self) -> None:
        """After a response the timer is kept; release_timer cancels it."""
        setup = Setup(keep_timer=True)
        setup.start(make_request())
        setup.receive(_OK)
        self.assertEqual(["written", "head", "body", "done"], setup.sink.names())
        (timer,) = setup.clock.getDelayedCalls()
        setup.exchange.release_timer()
        self.assertFalse(timer.active())
        self.assertEqual([], setup.clock.getDelayedCalls())

    def test_waiting_keeps_timer(self) -> None:
        """While a response head is awaited, release_timer leaves the timer."""
        setup = Setup(keep_timer=True)
        setup.start(make_request())
        (timer,) = setup.clock.getDelayedCalls()
        setup.exchange.release_timer()
        self.assertEqual([timer], setup.clock.getDelayedCalls())
        self.assertTrue(timer.active())

    def test_nothing_to_release(self) -> None:
        """Without a timer, release_timer does nothing."""
        setup = Setup(keep_timer=True)
        setup.exchange.release_timer()
        self.assertEqual([], setup.clock.getDelayedCalls())
