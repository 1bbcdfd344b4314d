# -*- test-case-name: txhttp.test.test_client_exchange -*-
"""
Tests for `txhttp.client._exchange`: the request/response exchange that both
client connections drive.

Deterministic: a `StringTransport` is the consumer the request is written to,
a `Clock` gives time, and a recording sink stands for the driver.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from txhttp._wire import (
    BadStartLine,
    EndOfMessage,
    IncompleteMessage,
    RemoteProtocolError,
    ResponseHead,
)
from txhttp.client import (
    BodyIdleTimeout,
    ClientRequest,
    HTTPTimeout,
    ResponseHeadTimeout,
    WrongBodyLength,
)
from txhttp.client._exchange import ClientExchange, serialize_head
from txhttp.test.test_client_protocol import OK_5 as OK
from txhttp.test.test_client_protocol import BytesProducer, ManualProducer
from txhttp.test.test_client_protocol import make_request as request


class Sink:
    """An `ExchangeSink` recording every event as a tuple."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.exchange: ClientExchange | None = None
        self.on_done: list[object] = []

    def _exchange_written(self) -> None:
        self.events.append(("written",))

    def _exchange_write_failed(self, reason: Failure) -> None:
        self.events.append(("write_failed", reason.value))

    def _exchange_head(self, head: ResponseHead, request: ClientRequest) -> None:
        self.events.append(("head", head.status, request.method))

    def _exchange_body(self, data: bytes) -> None:
        self.events.append(("body", data))

    def _exchange_done(self, end: EndOfMessage) -> None:
        self.events.append(("done", tuple(end.trailers)))
        for action in self.on_done:
            assert callable(action)
            action()

    def _exchange_tunnel(self, head: ResponseHead, request: ClientRequest) -> None:
        self.events.append(("tunnel", head.status))

    def _exchange_broken(self, error: RemoteProtocolError) -> None:
        self.events.append(("broken", type(error)))

    def _exchange_timed_out(self, error: HTTPTimeout) -> None:
        self.events.append(("timed_out", type(error), error.limit_seconds))

    def names(self) -> list[object]:
        return [event[0] for event in self.events]


class CountingClock(Clock):
    """A `Clock` counting ``callLater`` calls."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> IDelayedCall:
        self.scheduled += 1
        return super().callLater(delay, callable, *args, **kw)


class Setup:
    """An exchange with its sink, consumer and clock."""

    def __init__(self, *, keep_timer: bool = False) -> None:
        self.sink = Sink()
        self.clock = CountingClock()
        self.transport = StringTransport()
        self.exchange = ClientExchange(self.sink, self.clock, keep_timer=keep_timer)
        self.sink.exchange = self.exchange

    def start(self, req: ClientRequest) -> None:
        """Begin and send ``req``."""
        self.exchange.begin(req)
        self.exchange.send(serialize_head(req), self.transport)

    def receive(self, data: bytes) -> None:
        """Bytes from the server."""
        self.exchange.feed(data)
        self.exchange.process()

    def sent(self) -> bytes:
        """What was written so far, then forget it."""
        value = bytes(self.transport.value())
        self.transport.clear()
        return value


class SerializeHeadTests(SynchronousTestCase):
    def test_host_added_first_when_missing(self) -> None:
        """A host given to serialize_head comes first unless the headers have one."""
        req = ClientRequest(b"GET", b"/x", Headers({b"Accept": [b"*/*"]}))
        head = serialize_head(req, b"example.com:8080")
        self.assertTrue(
            head.startswith(b"GET /x HTTP/1.1\r\nHost: example.com:8080\r\nAccept:")
        )
        with_host = request()
        self.assertEqual(1, serialize_head(with_host, b"other").count(b"Host:"))

    def test_memoised_head_is_the_same(self) -> None:
        """The same request serialized twice gives equal heads."""
        self.assertEqual(serialize_head(request()), serialize_head(request()))


class ResponseTests(SynchronousTestCase):
    def test_simple_exchange(self) -> None:
        """A request is written, its response reported head, body, done; reusable."""
        s = Setup()
        s.start(request())
        self.assertTrue(s.sent().startswith(b"GET / HTTP/1.1\r\n"))
        s.receive(OK)
        self.assertEqual(
            [("written",), ("head", 200, b"GET"), ("body", b"hello"), ("done", ())],
            s.sink.events,
        )
        self.assertTrue(s.exchange.allows_reuse())
        self.assertFalse(s.exchange.is_sending())

    def test_split_input(self) -> None:
        """A response fed byte by byte gives the same events."""
        s = Setup()
        s.start(request())
        for i in range(len(OK)):
            s.receive(OK[i : i + 1])
        self.assertEqual(["written", "head"] + ["body"] * 5 + ["done"], s.sink.names())

    def test_interim_responses_are_consumed(self) -> None:
        """100 and 103 are consumed; only the final head is reported."""
        s = Setup()
        s.start(request())
        s.receive(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK
        )
        self.assertEqual(
            [("written",), ("head", 200, b"GET"), ("body", b"hello"), ("done", ())],
            s.sink.events,
        )

    def test_responses_without_body(self) -> None:
        """HEAD, 204 and 304 end right after the head, whatever they announce."""
        cases = [
            (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
            (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"),
        ]
        for method, response in cases:
            s = Setup()
            s.start(request(method))
            s.receive(response)
            self.assertEqual(["written", "head", "done"], s.sink.names(), method)
            self.assertTrue(s.exchange.allows_reuse())

    def test_trailers_reported(self) -> None:
        """A chunked body's trailers come with the end."""
        s = Setup()
        s.start(request())
        s.receive(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n"
        )
        self.assertEqual(("done", ((b"X-Sum", b"1"),)), s.sink.events[-1])

    def test_malformed_response_is_broken(self) -> None:
        """A response that is not HTTP/1.1 is reported broken, once."""
        s = Setup()
        s.start(request())
        s.receive(b"NOT HTTP\r\n\r\n")
        self.assertEqual([("written",), ("broken", BadStartLine)], s.sink.events)
        s.receive(b"more")
        self.assertEqual(2, len(s.sink.events))
        self.assertFalse(s.exchange.allows_reuse())

    def test_process_is_not_reentrant(self) -> None:
        """process() called from inside an event does nothing; the loop goes on."""
        s = Setup()
        s.start(request())
        s.sink.on_done.append(s.exchange.process)
        s.receive(OK)
        self.assertEqual(["written", "head", "body", "done"], s.sink.names())

    def test_next_exchange_from_inside_done(self) -> None:
        """A new exchange may begin from inside the end of the last one."""
        s = Setup()
        s.start(request())
        s.sink.on_done.append(lambda: s.start(request()))
        s.receive(OK)
        s.sink.on_done.clear()
        s.receive(OK)
        self.assertEqual(
            ["written", "head", "body", "done", "written", "head", "body", "done"],
            s.sink.names(),
        )


class ReuseVerdictTests(SynchronousTestCase):
    def _verdict(self, req: ClientRequest, response: bytes) -> bool:
        s = Setup()
        s.start(req)
        s.receive(response)
        self.assertEqual("done", s.sink.names()[-1])
        return s.exchange.allows_reuse()

    def test_keep_alive(self) -> None:
        """A complete HTTP/1.1 exchange allows reuse."""
        self.assertTrue(self._verdict(request(), OK))

    def test_server_says_close(self) -> None:
        """Connection: close from the server forbids reuse."""
        self.assertFalse(
            self._verdict(
                request(),
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            )
        )

    def test_request_says_close(self) -> None:
        """A request that is not persistent forbids reuse."""
        self.assertFalse(self._verdict(request(persistent=False), OK))

    def test_http_1_0(self) -> None:
        """HTTP/1.0 forbids reuse unless it says keep-alive."""
        self.assertFalse(
            self._verdict(request(), b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        )
        self.assertTrue(
            self._verdict(
                request(),
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                b"Content-Length: 0\r\n\r\n",
            )
        )

    def test_leftover_bytes(self) -> None:
        """Bytes beyond the response forbid reuse."""
        self.assertFalse(self._verdict(request(), OK + b"HTTP/1.1"))

    def test_read_until_close(self) -> None:
        """A body read until the connection closes forbids reuse."""
        s = Setup()
        s.start(request())
        s.receive(b"HTTP/1.1 200 OK\r\n\r\nsome")
        s.exchange.connection_lost()
        self.assertEqual(["written", "head", "body", "done"], s.sink.names())
        self.assertFalse(s.exchange.allows_reuse())


class EarlyResponseTests(SynchronousTestCase):
    def test_body_incomplete_is_stopped(self) -> None:
        """A complete response before the body is on the wire stops the body."""
        s = Setup()
        producer = ManualProducer(10)
        s.start(request(b"POST", body=producer))
        producer.write(b"abc")
        s.receive(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(["head", "done"], s.sink.names())
        self.assertIn("stop", producer.calls)
        self.assertFalse(s.exchange.is_sending())
        self.assertFalse(s.exchange.allows_reuse())

    def test_body_complete_on_wire_waits_then_reuses(self) -> None:
        """All promised bytes sent: the exchange waits for the producer, reuses."""
        s = Setup()
        producer = ManualProducer(3)
        s.start(request(b"POST", body=producer))
        producer.write(b"abc")
        s.receive(OK)
        self.assertTrue(s.exchange.is_sending())
        self.assertEqual(["head", "body", "done"], s.sink.names())
        producer.finish()
        self.assertEqual("written", s.sink.names()[-1])
        self.assertTrue(s.exchange.allows_reuse())

    def test_bytes_after_response_forbid_reuse(self) -> None:
        """Bytes after the response, while the body is still sent, forbid reuse."""
        s = Setup()
        producer = ManualProducer(3)
        s.start(request(b"POST", body=producer))
        producer.write(b"abc")
        s.receive(OK)
        s.receive(b"junk")
        producer.finish()
        self.assertFalse(s.exchange.allows_reuse())
        self.assertEqual(["head", "body", "done", "written"], s.sink.names())

    def test_write_failure_reported(self) -> None:
        """A producer writing too little is reported as a write failure."""
        s = Setup()
        producer = ManualProducer(5)
        s.start(request(b"POST", body=producer))
        producer.write(b"ab")
        producer.finish()
        self.assertEqual("write_failed", s.sink.names()[-1])
        self.assertIsInstance(s.sink.events[-1][1], WrongBodyLength)


class ExpectContinueTests(SynchronousTestCase):
    def _start(self) -> tuple[Setup, BytesProducer]:
        s = Setup()
        producer = BytesProducer(b"payload")
        s.start(
            request(
                b"PUT",
                headers={b"Expect": [b"100-continue"]},
                body=producer,
                expect_continue_timeout=2.0,
            )
        )
        self.assertTrue(s.sent().endswith(b"\r\n\r\n"))
        return s, producer

    def test_body_waits_for_100(self) -> None:
        """The body is held until 100 Continue, then sent; the exchange goes on."""
        s, producer = self._start()
        self.assertEqual(0, producer.started)
        self.assertEqual([], s.sink.names())
        s.receive(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertEqual(b"payload", s.sent())
        self.assertEqual(["written"], s.sink.names())
        s.receive(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(["written", "head", "done"], s.sink.names())
        self.assertTrue(s.exchange.allows_reuse())

    def test_body_sent_when_wait_ends(self) -> None:
        """Without 100 Continue the body goes once the wait ends, not before."""
        s, producer = self._start()
        s.clock.advance(1.9)
        self.assertEqual(0, producer.started)
        s.clock.advance(0.1)
        self.assertEqual(b"payload", s.sent())
        self.assertEqual(["written"], s.sink.names())

    def test_final_status_instead_of_100(self) -> None:
        """A final status instead of 100: body never sent, written, no reuse."""
        s, producer = self._start()
        s.receive(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(["written", "head", "done"], s.sink.names())
        s.clock.advance(10)
        self.assertEqual(0, producer.started)
        self.assertEqual(b"", s.sent())
        self.assertFalse(s.exchange.allows_reuse())
        self.assertEqual([], s.clock.getDelayedCalls())


class TunnelTests(SynchronousTestCase):
    def test_connect_tunnel(self) -> None:
        """A 2xx to CONNECT is a tunnel; the bytes after it are kept."""
        s = Setup()
        s.start(request(b"CONNECT", b"example.com:443"))
        s.receive(b"HTTP/1.1 200 Connection Established\r\n\r\nhello")
        self.assertEqual([("written",), ("tunnel", 200)], s.sink.events)
        s.exchange.hold(b" world")
        self.assertEqual(b"hello world", s.exchange.take_leftover())
        self.assertFalse(s.exchange.allows_reuse())
        self.assertEqual([], s.clock.getDelayedCalls())

    def test_unasked_101_is_broken(self) -> None:
        """A 101 to a request that asked no upgrade is a broken response."""
        s = Setup()
        s.start(request())
        s.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
        self.assertEqual([("written",), ("broken", RemoteProtocolError)], s.sink.events)

    def test_tunnel_before_the_body_is_sent_is_broken(self) -> None:
        """A tunnel response while the request is still being written is broken."""
        s = Setup()
        producer = ManualProducer(10)
        s.start(request(b"CONNECT", b"example.com:443", body=producer))
        s.receive(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertEqual([("broken", RemoteProtocolError)], s.sink.events)


class ConnectionLostTests(SynchronousTestCase):
    def test_cut_short(self) -> None:
        """A sized body cut by the connection's end is broken (IncompleteMessage)."""
        s = Setup()
        s.start(request())
        s.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        s.exchange.connection_lost()
        self.assertEqual(("broken", IncompleteMessage), s.sink.events[-1])

    def test_nothing_received(self) -> None:
        """A loss before any response byte reports nothing (the driver says why)."""
        s = Setup()
        s.start(request())
        s.exchange.connection_lost()
        self.assertEqual(["written"], s.sink.names())

    def test_abandon_stops_body_and_timers(self) -> None:
        """abandon() stops the body producer and cancels every timer."""
        s = Setup()
        producer = ManualProducer(10)
        s.start(
            request(
                b"POST",
                headers={b"Expect": [b"100-continue"]},
                body=producer,
            )
        )
        self.assertEqual(1, len(s.clock.getDelayedCalls()))
        s.exchange.abandon()
        self.assertEqual([], s.clock.getDelayedCalls())
        s.clock.advance(5)
        self.assertEqual([], producer.calls)
        s.receive(OK)
        self.assertEqual([], s.sink.names())


class WaitTests(SynchronousTestCase):
    def test_head_timeout(self) -> None:
        """No final head within response_head_timeout of the write: timed out."""
        s = Setup()
        s.start(request(response_head_timeout=5.0))
        s.clock.advance(4.9)
        self.assertEqual(["written"], s.sink.names())
        s.clock.advance(0.1)
        self.assertEqual(("timed_out", ResponseHeadTimeout, 5.0), s.sink.events[-1])

    def test_head_wait_starts_after_the_body(self) -> None:
        """The head wait starts only once the whole request is written."""
        s = Setup()
        producer = ManualProducer(3)
        s.start(request(b"POST", body=producer, response_head_timeout=5.0))
        s.clock.advance(10)
        self.assertEqual([], s.sink.names())
        producer.write(b"abc")
        producer.finish()
        s.clock.advance(5)
        self.assertEqual("timed_out", s.sink.names()[-1])

    def test_interim_restarts_head_wait(self) -> None:
        """An interim response starts the head wait over."""
        s = Setup()
        s.start(request(response_head_timeout=5.0))
        s.clock.advance(4)
        s.receive(b"HTTP/1.1 102 Processing\r\n\r\n")
        s.clock.advance(4)
        self.assertNotIn("timed_out", s.sink.names())
        s.clock.advance(1)
        self.assertEqual("timed_out", s.sink.names()[-1])

    def test_body_idle_timeout(self) -> None:
        """A body silent for body_idle_timeout times out; each byte restarts it."""
        s = Setup()
        s.start(request(body_idle_timeout=3.0))
        s.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        s.clock.advance(2)
        s.receive(b"cd")
        s.clock.advance(2.9)
        self.assertNotIn("timed_out", s.sink.names())
        s.clock.advance(0.1)
        self.assertEqual(("timed_out", BodyIdleTimeout, 3.0), s.sink.events[-1])
        self.assertEqual([], s.clock.getDelayedCalls())

    def test_paused_time_does_not_count(self) -> None:
        """Time with reading paused is not idle time; resuming starts it over."""
        s = Setup()
        s.start(request(body_idle_timeout=3.0))
        s.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        s.exchange.pause_reading()
        s.clock.advance(100)
        self.assertNotIn("timed_out", s.sink.names())
        s.exchange.resume_reading()
        s.clock.advance(2.9)
        self.assertNotIn("timed_out", s.sink.names())
        s.clock.advance(0.1)
        self.assertEqual("timed_out", s.sink.names()[-1])

    def test_paused_before_the_head(self) -> None:
        """A head held by our own pause does not time out; resuming delivers it."""
        s = Setup()
        s.start(request(response_head_timeout=5.0))
        s.exchange.pause_reading()
        s.receive(OK)
        s.clock.advance(60)
        self.assertEqual(["written"], s.sink.names())
        s.exchange.resume_reading()
        s.exchange.process()
        self.assertEqual(["written", "head", "body", "done"], s.sink.names())

    def test_no_limits_no_timer(self) -> None:
        """Without limits no timer is scheduled."""
        s = Setup()
        s.start(request(response_head_timeout=None, body_idle_timeout=None))
        s.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        self.assertEqual([], s.clock.getDelayedCalls())

    def test_no_timer_outlives_an_exchange(self) -> None:
        """Without keep_timer the wait timer is cancelled when the response ends."""
        s = Setup()
        s.start(request())
        self.assertEqual(1, len(s.clock.getDelayedCalls()))
        s.receive(OK)
        self.assertEqual([], s.clock.getDelayedCalls())

    def test_kept_timer_serves_many_exchanges(self) -> None:
        """With keep_timer one timer serves a keep-alive loop; abandon cancels it."""
        s = Setup(keep_timer=True)
        for _ in range(100):
            s.start(request())
            s.clock.advance(0.1)
            s.receive(OK)
        self.assertEqual(1, len(s.clock.getDelayedCalls()))
        self.assertLessEqual(s.clock.scheduled, 2)
        self.assertNotIn("timed_out", s.sink.names())
        s.exchange.abandon()
        self.assertEqual([], s.clock.getDelayedCalls())

    def test_kept_timer_still_times_out(self) -> None:
        """A kept timer scheduled for a later deadline still times a request out."""
        s = Setup(keep_timer=True)
        s.start(request(response_head_timeout=30.0))
        s.receive(OK)
        s.start(request(response_head_timeout=2.0))
        s.clock.advance(1.9)
        self.assertNotIn("timed_out", s.sink.names())
        s.clock.advance(0.1)
        self.assertEqual(("timed_out", ResponseHeadTimeout, 2.0), s.sink.events[-1])
