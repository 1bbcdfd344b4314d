# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
Tests for `txhttp.client.HTTP11ClientProtocol`, `ClientRequest`, the request
body writer and the client's typed errors.

Deterministic: a `StringTransport` stands for the socket and a `Clock` for
time; the tests call ``connectionLost`` themselves. The fakes defined first
(body producers, a body collector, ``connect``) are shared with
``test_client_states`` and ``test_client_response``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IConsumer, IProtocol, IPushProducer
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import _newclient as _tw
from twisted.web._newclient import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IClientRequest, IResponse
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp._wire import IncompleteMessage, LocalProtocolError, RemoteProtocolError
from txhttp.client import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    BodyIdleTimeout,
    ClientRequest,
    ClientState,
    ConnectionAborted,
    ConnectTimeout,
    HTTP11ClientProtocol,
    HTTPTimeout,
    PoolQueueTimeout,
    RequestGenerationFailed,
    RequestNotSent,
    RequestTransmissionFailed,
    Response,
    ResponseFailed,
    ResponseHeadTimeout,
    ResponseNeverReceived,
    TotalTimeout,
    WrongBodyLength,
)


@implementer(IBodyProducer)
class BytesProducer:
    """Writes its bytes at once and finishes synchronously."""

    def __init__(self, data: bytes, length: int | str | None = None) -> None:
        self.data = data
        self.length = len(data) if length is None else length
        self.started = 0
        self.stopped = 0

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Write everything, then report done."""
        self.started += 1
        if self.data:
            consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: everything was written."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Count the call."""
        self.stopped += 1


@implementer(IBodyProducer)
class ManualProducer:
    """A producer the test drives: it writes and finishes when told."""

    def __init__(self, length: int | str = UNKNOWN_LENGTH) -> None:
        self.length = length
        self.consumer: IConsumer | None = None
        self.finished: Deferred[None] | None = None
        self.calls: list[str] = []

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Remember the consumer; the test writes through `write`."""
        self.calls.append("start")
        self.consumer = consumer
        self.finished = Deferred()
        return self.finished

    def write(self, data: bytes) -> None:
        """Write ``data`` to the consumer, as a real producer would."""
        assert self.consumer is not None
        self.consumer.write(data)

    def finish(self) -> None:
        """Report the body complete."""
        assert self.finished is not None
        self.finished.callback(None)

    def fail(self, error: Exception) -> None:
        """Report that producing failed."""
        assert self.finished is not None
        self.finished.errback(Failure(error))

    def pauseProducing(self) -> None:
        """Record the call."""
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        """Record the call."""
        self.calls.append("resume")

    def stopProducing(self) -> None:
        """Record the call."""
        self.calls.append("stop")


class BodyCollector(Protocol):
    """A body protocol that keeps what it gets."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.reason: Failure | None = None
        self.made = 0

    def connectionMade(self) -> None:
        """Count the connection."""
        self.made += 1

    def dataReceived(self, data: bytes) -> None:
        """Keep body bytes."""
        self.data.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Keep the reason the body ended."""
        self.reason = reason

    @property
    def body(self) -> bytes:
        """Everything received so far."""
        return b"".join(self.data)


@dataclass
class Connection:
    """A protocol connected to a `StringTransport`, with a `Clock`."""

    protocol: HTTP11ClientProtocol
    transport: StringTransport
    clock: Clock
    quiescent: list[HTTP11ClientProtocol] = field(default_factory=list)

    def receive(self, data: bytes) -> None:
        """Deliver bytes from the server."""
        self.protocol.dataReceived(data)

    def sent(self) -> bytes:
        """Everything written so far, and forget it."""
        value = bytes(self.transport.value())
        self.transport.clear()
        return value


def connect(*, max_buffered_body_bytes: int | None = None) -> Connection:
    """Build a protocol on a `StringTransport` with a `Clock` and record quiescence."""
    clock = Clock()
    quiescent: list[HTTP11ClientProtocol] = []
    if max_buffered_body_bytes is None:
        protocol = HTTP11ClientProtocol(quiescent.append, clock=clock)
    else:
        protocol = HTTP11ClientProtocol(
            quiescent.append,
            clock=clock,
            max_buffered_body_bytes=max_buffered_body_bytes,
        )
    transport = StringTransport()
    protocol.makeConnection(transport)
    return Connection(protocol, transport, clock, quiescent)


def make_request(
    method: bytes = b"GET",
    uri: bytes = b"/",
    *,
    headers: dict[bytes, list[bytes]] | None = None,
    body: IBodyProducer | None = None,
    persistent: bool = True,
    response_head_timeout: float | None = 30.0,
    body_idle_timeout: float | None = 30.0,
    expect_continue_timeout: float = 1.0,
) -> ClientRequest:
    """A request to ``example.com`` with a Host field and the given parts."""
    fields = {b"Host": [b"example.com"]}
    fields.update(headers or {})
    return ClientRequest(
        method,
        uri,
        Headers(fields),
        body,
        persistent=persistent,
        response_head_timeout=response_head_timeout,
        body_idle_timeout=body_idle_timeout,
        expect_continue_timeout=expect_continue_timeout,
    )


def inner(failure: Failure | None) -> Failure:
    """The first reason wrapped in ``failure``'s exception (``reasons[0]``)."""
    assert failure is not None
    reasons = getattr(failure.value, "reasons", None)
    assert isinstance(reasons, list) and reasons
    first = reasons[0]
    assert isinstance(first, Failure)
    return first


OK_5: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
"""A complete keep-alive response with a five-byte body."""


# -- tests ---------------------------------------------------------------------


class FakesTests(SynchronousTestCase):
    def test_fakes_provide_their_interfaces(self) -> None:
        """The fake producers provide IBodyProducer, the collector IProtocol."""
        self.assertTrue(verifyObject(IBodyProducer, BytesProducer(b"x")))
        self.assertTrue(verifyObject(IBodyProducer, ManualProducer()))
        self.assertTrue(verifyObject(IProtocol, BodyCollector()))


class ErrorTests(SynchronousTestCase):
    def test_wrapping_errors_subclass_twisted(self) -> None:
        """Each failure subclasses twisted.web's class of the same name."""
        reason = Failure(ValueError("boom"))
        pairs: list[tuple[Exception, type[Exception]]] = [
            (RequestGenerationFailed([reason]), _tw.RequestGenerationFailed),
            (RequestTransmissionFailed([reason]), _tw.RequestTransmissionFailed),
            (ResponseFailed([reason]), _tw.ResponseFailed),
            (ResponseNeverReceived([reason]), _tw.ResponseNeverReceived),
            (ResponseNeverReceived([reason]), ResponseFailed),
            (RequestNotSent(), _tw.RequestNotSent),
            (ConnectionAborted(), _tw.ConnectionAborted),
            (WrongBodyLength(3, 2), _tw.WrongBodyLength),
        ]
        for error, parent in pairs:
            self.assertIsInstance(error, parent)

    def test_reasons_are_kept_and_shown(self) -> None:
        """Wrapping errors carry ``reasons`` and name them in their message."""
        reason = Failure(ValueError("boom"))
        error = RequestGenerationFailed([reason])
        self.assertEqual([reason], error.reasons)
        self.assertEqual("request could not be generated: ValueError: boom", str(error))
        self.assertEqual([], RequestNotSent().reasons)

    def test_timeouts_say_which_limit_and_how_long(self) -> None:
        """Timeout errors share a base and name the limit and its length."""
        error = ResponseHeadTimeout(30)
        self.assertIsInstance(error, HTTPTimeout)
        self.assertEqual(30.0, error.limit_seconds)
        self.assertEqual("no response head within 30.0 s", str(error))
        self.assertEqual(
            "no response body data within 2.5 s", str(BodyIdleTimeout(2.5))
        )
        self.assertEqual(
            "no connection within 5.0 s (example.com:443)",
            str(ConnectTimeout(5, "example.com:443")),
        )
        for kind in (ConnectTimeout, TotalTimeout, PoolQueueTimeout):
            self.assertIsInstance(kind(1.0), HTTPTimeout)

    def test_wrong_body_length_message(self) -> None:
        """WrongBodyLength says what was declared and what was written."""
        self.assertIn("more than its declared length of 3", str(WrongBodyLength(3, 5)))
        self.assertIn("fewer than its declared length of 3", str(WrongBodyLength(3, 1)))


class ClientRequestTests(SynchronousTestCase):
    def test_provides_iclientrequest(self) -> None:
        """A ClientRequest provides IClientRequest."""
        request = make_request()
        self.assertTrue(verifyObject(IClientRequest, request))

    def test_method_must_be_a_token(self) -> None:
        """Methods with spaces, CR/LF or NUL are refused."""
        for method in (b"GE T", b"GET\r\n", b"G\x00T", b""):
            with self.assertRaises(LocalProtocolError):
                make_request(method)

    def test_target_must_have_no_space_or_control(self) -> None:
        """A request-target with SP, CR, LF or NUL is refused."""
        for uri in (b"/a b", b"/\r\nX-Evil: 1", b"/\x00", b""):
            with self.assertRaises(LocalProtocolError):
                make_request(uri=uri)

    def test_header_values_must_have_no_controls(self) -> None:
        """A header value with NUL or another control character is refused."""
        for value in (b"a\x00b", b"a\x01b", b"\x7f"):
            with self.assertRaises(LocalProtocolError) as caught:
                make_request(headers={b"X-A": [value]})
            self.assertIn("X-A", str(caught.exception))

    def test_header_names_must_be_tokens(self) -> None:
        """A header name that is not a token is refused."""
        headers = Headers()
        # Headers refuses bad names itself; a name smuggled in later is ours.
        headers.setRawHeaders(b"x-ok", [b"1"])
        headers._rawHeaders[b"Bad Name"] = [b"1"]
        with self.assertRaises(LocalProtocolError):
            ClientRequest(b"GET", b"/", headers)

    def test_types_are_checked(self) -> None:
        """Non-bytes methods and targets, non-Headers headers raise TypeError."""
        with self.assertRaises(TypeError):
            ClientRequest("GET", b"/", Headers())  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            ClientRequest(b"GET", "/", Headers())  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            ClientRequest(b"GET", b"/", {})  # type: ignore[arg-type]

    def test_framing_fields_belong_to_the_client(self) -> None:
        """Transfer-Encoding, or a Content-Length not matching the body, is refused."""
        with self.assertRaises(LocalProtocolError):
            make_request(b"POST", headers={b"Transfer-Encoding": [b"chunked"]})
        with self.assertRaises(LocalProtocolError):
            make_request(
                b"POST", headers={b"Content-Length": [b"4"]}, body=BytesProducer(b"abc")
            )
        with self.assertRaises(LocalProtocolError):
            make_request(
                b"POST",
                headers={b"Content-Length": [b"3"]},
                body=ManualProducer(UNKNOWN_LENGTH),
            )
        request = make_request(
            b"POST", headers={b"Content-Length": [b"3"]}, body=BytesProducer(b"abc")
        )
        self.assertIn((b"Content-Length", b"3"), request.field_lines())

    def test_producer_length_is_checked(self) -> None:
        """A negative or non-integer producer length is refused."""
        for length in (-1, "12", 1.5):
            with self.assertRaises(ValueError):
                make_request(b"POST", body=BytesProducer(b"", length=length))  # type: ignore[arg-type]

    def test_timeouts_must_not_be_negative(self) -> None:
        """Negative or NaN waits are refused; None turns a wait off."""
        with self.assertRaises(ValueError):
            make_request(response_head_timeout=-1)
        with self.assertRaises(ValueError):
            make_request(body_idle_timeout=float("nan"))
        with self.assertRaises(ValueError):
            make_request(expect_continue_timeout=-0.5)
        make_request(response_head_timeout=None, body_idle_timeout=None)

    def test_defaults_are_named(self) -> None:
        """The waits default to the documented constants."""
        request = ClientRequest(b"GET", b"/", Headers())
        self.assertEqual(DEFAULT_RESPONSE_HEAD_TIMEOUT, request.response_head_timeout)
        self.assertEqual(DEFAULT_BODY_IDLE_TIMEOUT, request.body_idle_timeout)
        self.assertEqual(
            DEFAULT_EXPECT_CONTINUE_TIMEOUT, request.expect_continue_timeout
        )
        self.assertFalse(request.persistent)

    def test_mutated_headers_fail_before_writing(self) -> None:
        """Headers made invalid after validation fail the request, unwritten."""
        c = connect()
        request = make_request()
        request.headers.setRawHeaders(b"X-Bad", [b"a\x00b"])
        failure = self.failureResultOf(c.protocol.request(request))
        self.assertIsInstance(failure.value, RequestGenerationFailed)
        self.assertEqual(b"", c.transport.value())
        self.assertTrue(c.transport.disconnecting)


class RequestWritingTests(SynchronousTestCase):
    def test_get_is_one_write(self) -> None:
        """A body-less request is written whole, in one transport.write."""
        c = connect()
        writes: list[bytes] = []
        c.transport.write = writes.append  # type: ignore[method-assign]
        c.protocol.request(make_request())
        self.assertEqual([b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"], writes)

    def test_post_without_body_says_length_zero(self) -> None:
        """POST, PUT and PATCH without a body send Content-Length: 0."""
        c = connect()
        c.protocol.request(make_request(b"POST"))
        self.assertIn(b"\r\nContent-Length: 0\r\n", c.sent())

    def test_not_persistent_says_close(self) -> None:
        """A non-persistent request sends Connection: close."""
        c = connect()
        c.protocol.request(make_request(persistent=False))
        self.assertIn(b"\r\nConnection: close\r\n", c.sent())

    def test_known_length_body_with_head_in_one_write(self) -> None:
        """A synchronous known-length body goes with the head in one write."""
        c = connect()
        writes: list[bytes] = []
        c.transport.write = writes.append  # type: ignore[method-assign]
        c.protocol.request(make_request(b"POST", body=BytesProducer(b"abc")))
        self.assertEqual(1, len(writes))
        self.assertTrue(writes[0].endswith(b"\r\nContent-Length: 3\r\n\r\nabc"))
        self.assertIs(ClientState.WAITING, c.protocol.state)

    def test_unknown_length_body_is_chunked(self) -> None:
        """An UNKNOWN_LENGTH body is sent chunked, ending with the last chunk."""
        c = connect()
        producer = ManualProducer(UNKNOWN_LENGTH)
        c.protocol.request(make_request(b"POST", body=producer))
        head = c.sent()
        self.assertIn(b"\r\nTransfer-Encoding: chunked\r\n", head)
        producer.write(b"hello")
        producer.write(b"")
        producer.write(b"!")
        self.assertEqual(b"5\r\nhello\r\n1\r\n!\r\n", c.sent())
        self.assertIs(ClientState.TRANSMITTING, c.protocol.state)
        producer.finish()
        self.assertEqual(b"0\r\n\r\n", c.sent())
        self.assertIs(ClientState.WAITING, c.protocol.state)

    def test_transport_backpressure_reaches_the_producer(self) -> None:
        """The transport pausing and resuming reaches the body producer."""
        c = connect()
        producer = ManualProducer(10)
        c.protocol.request(make_request(b"POST", body=producer))
        registered = c.transport.producer
        assert registered is not None
        self.assertTrue(c.transport.streaming)
        registered.pauseProducing()
        registered.resumeProducing()
        self.assertEqual(["start", "pause", "resume"], producer.calls)

    def test_producer_unregistered_when_done(self) -> None:
        """The body producer is unregistered from the transport once done."""
        c = connect()
        producer = ManualProducer(3)
        c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        producer.finish()
        self.assertIsNone(c.transport.producer)
        self.assertTrue(c.sent().endswith(b"\r\n\r\nabc"))

    def test_producer_writing_too_much_fails_generation(self) -> None:
        """A producer writing past its length fails; excess unsent; aborted."""
        c = connect()
        producer = ManualProducer(3)
        d = c.protocol.request(make_request(b"POST", body=producer))
        c.sent()
        producer.write(b"ab")
        producer.write(b"cd")
        failure = self.failureResultOf(d, RequestGenerationFailed)
        self.assertTrue(inner(failure).check(WrongBodyLength))
        self.assertIn("more than its declared length of 3", str(failure.value))
        self.assertEqual(b"ab", c.sent())
        self.assertIn("stop", producer.calls)
        self.assertTrue(c.transport.disconnected)
        self.assertIs(ClientState.GENERATION_FAILED, c.protocol.state)
        self.assertEqual([], c.quiescent)

    def test_producer_writing_too_little_fails_generation(self) -> None:
        """A producer finishing short of its length fails; never reused."""
        c = connect()
        producer = ManualProducer(3)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"ab")
        producer.finish()
        failure = self.failureResultOf(d, RequestGenerationFailed)
        self.assertIn("finished after 2 bytes", str(failure.value))
        self.assertTrue(c.transport.disconnected)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], c.quiescent)
        self.assertFalse(c.protocol.is_reusable())

    def test_failing_producer_fails_generation(self) -> None:
        """A producer whose Deferred fails fails the request with its reason."""
        c = connect()
        producer = ManualProducer(UNKNOWN_LENGTH)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"a")
        producer.fail(OSError("disk gone"))
        failure = self.failureResultOf(d, RequestGenerationFailed)
        self.assertTrue(inner(failure).check(OSError))
        self.assertIn("disk gone", str(failure.value))
        self.assertTrue(c.transport.disconnected)
        self.assertNotIn(b"0\r\n\r\n", c.sent())

    def test_synchronous_overwrite_sends_nothing(self) -> None:
        """A producer over its length during startProducing leaves nothing sent."""
        c = connect()
        d = c.protocol.request(
            make_request(b"POST", body=BytesProducer(b"abcdef", length=3))
        )
        self.failureResultOf(d, RequestGenerationFailed)
        self.assertEqual(b"", c.transport.value())

    def test_network_failure_while_sending(self) -> None:
        """Losing the connection while writing fails with RequestTransmissionFailed."""
        c = connect()
        producer = ManualProducer(10)
        d = c.protocol.request(make_request(b"POST", body=producer))
        c.protocol.connectionLost(Failure(ConnectionLost()))
        failure = self.failureResultOf(d, RequestTransmissionFailed)
        self.assertTrue(inner(failure).check(ConnectionLost))
        self.assertIn("stop", producer.calls)
        producer.write(b"late")
        self.assertNotIn(b"late", c.transport.value())


class RequestNotSentTests(SynchronousTestCase):
    def test_busy_connection_refuses(self) -> None:
        """A second request while one is in flight fails with RequestNotSent."""
        c = connect()
        c.protocol.request(make_request())
        c.sent()
        failure = self.failureResultOf(c.protocol.request(make_request()))
        self.assertIsInstance(failure.value, RequestNotSent)
        self.assertIn("WAITING", str(failure.value))
        self.assertEqual(b"", c.transport.value())

    def test_closed_connection_refuses(self) -> None:
        """A request on a lost connection fails with RequestNotSent."""
        c = connect()
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(c.protocol.request(make_request()), RequestNotSent)

    def test_unconnected_protocol_refuses(self) -> None:
        """A request before the connection is made fails with RequestNotSent."""
        protocol = HTTP11ClientProtocol(clock=Clock())
        failure = self.failureResultOf(protocol.request(make_request()))
        self.assertIsInstance(failure.value, RequestNotSent)
        self.assertIn("not connected", str(failure.value))


class ResponseDeliveryTests(SynchronousTestCase):
    def test_response_provides_iresponse(self) -> None:
        """The Deferred fires with a Response providing IResponse."""
        c = connect()
        request = make_request()
        d = c.protocol.request(request)
        c.receive(
            b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\n"
        )
        response = self.successResultOf(d)
        self.assertTrue(verifyObject(IResponse, response))
        self.assertEqual((b"HTTP", 1, 1), response.version)
        self.assertEqual(201, response.code)
        self.assertEqual(b"Created", response.phrase)
        self.assertEqual([b"1", b"2"], response.headers.getRawHeaders(b"x-a"))
        self.assertEqual(5, response.length)
        self.assertIs(request, response.request)
        self.assertIsNone(response.previousResponse)

    def test_body_delivered_then_response_done(self) -> None:
        """The body protocol gets the bytes, then ResponseDone."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhe")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        self.assertEqual(b"he", body.body)
        self.assertIsNone(body.reason)
        c.receive(b"llo")
        self.assertEqual(b"hello", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseDone))

    def test_close_delimited_body_ends_with_potential_data_loss(self) -> None:
        """A body read until close ends with PotentialDataLoss; no reuse."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\n\r\nsome")
        response = self.successResultOf(d)
        self.assertEqual(UNKNOWN_LENGTH, response.length)
        body = BodyCollector()
        response.deliverBody(body)
        c.receive(b" data")
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(b"some data", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(PotentialDataLoss))
        self.assertEqual([], c.quiescent)

    def test_truncated_body_fails(self) -> None:
        """A Content-Length body cut short ends with ResponseFailed."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        c.protocol.connectionLost(Failure(ConnectionLost()))
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        self.assertTrue(inner(body.reason).check(IncompleteMessage))

    def test_trailers_exposed_when_body_done(self) -> None:
        """Chunked trailers appear on the response once the body is complete."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        response = self.successResultOf(d)
        body = BodyCollector()
        response.deliverBody(body)
        self.assertIsNone(response.trailers)
        c.receive(b"0\r\nX-Checksum: 42\r\n\r\n")
        self.assertEqual(b"abc", body.body)
        trailers = response.trailers
        assert trailers is not None
        self.assertEqual([b"42"], trailers.getRawHeaders(b"x-checksum"))
        self.assertEqual([c.protocol], c.quiescent)

    def test_body_before_deliver_body_is_buffered(self) -> None:
        """Body bytes arriving before deliverBody are kept and delivered later."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(OK_5)
        response = self.successResultOf(d)
        self.assertEqual([c.protocol], c.quiescent)
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(b"hello", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseDone))

    def test_undelivered_buffer_is_bounded(self) -> None:
        """Past the buffer limit reading pauses until deliverBody; nothing is lost."""
        c = connect(max_buffered_body_bytes=4)
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        response = self.successResultOf(d)
        c.receive(b"abcde")
        self.assertEqual("paused", c.transport.producerState)
        c.receive(b"fghij")
        self.assertEqual([], c.quiescent)
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual("producing", c.transport.producerState)
        self.assertEqual(b"abcdefghij", body.body)
        self.assertEqual([c.protocol], c.quiescent)

    def test_pause_reaches_the_socket(self) -> None:
        """The body transport's pauseProducing pauses the real transport."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        body_transport = body.transport
        assert body_transport is not None
        self.assertTrue(verifyObject(IPushProducer, body_transport))
        body_transport.pauseProducing()  # type: ignore[attr-defined]
        self.assertEqual("paused", c.transport.producerState)
        c.receive(b"cd")
        self.assertEqual(b"ab", body.body)
        body_transport.resumeProducing()  # type: ignore[attr-defined]
        self.assertEqual("producing", c.transport.producerState)
        self.assertEqual(b"abcd", body.body)
        c.receive(b"ef")
        self.assertEqual(b"abcdef", body.body)

    def test_pause_holds_the_end_of_the_body(self) -> None:
        """A paused body protocol gets neither data nor the end until it resumes."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        assert body.transport is not None
        body.transport.pauseProducing()  # type: ignore[attr-defined]
        c.receive(b"cd")
        self.assertIsNone(body.reason)
        self.assertEqual([], c.quiescent)
        body.transport.resumeProducing()  # type: ignore[attr-defined]
        self.assertEqual(b"abcd", body.body)
        self.assertIsNotNone(body.reason)
        self.assertEqual([c.protocol], c.quiescent)

    def test_stop_producing_closes_and_fails_body(self) -> None:
        """stopProducing on the body aborts the connection; body gets ResponseFailed."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        assert body.transport is not None
        body.transport.stopProducing()  # type: ignore[attr-defined]
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        self.assertTrue(inner(body.reason).check(ConnectionAborted))
        self.assertTrue(c.transport.disconnected)
        self.assertIs(ClientState.ABORTING, c.protocol.state)

    def test_abort_connection_from_body_transport(self) -> None:
        """abortConnection on the body transport aborts the connection."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        assert body.transport is not None
        body.transport.abortConnection()  # type: ignore[attr-defined]
        self.assertTrue(c.transport.disconnected)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))

    def test_http_1_0_version(self) -> None:
        """An HTTP/1.0 response has version (b"HTTP", 1, 0)."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual((b"HTTP", 1, 0), self.successResultOf(d).version)

    def test_malformed_response_fails_and_aborts(self) -> None:
        """A response that is not HTTP fails with ResponseFailed and aborts."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"SMTP ready\r\n\r\n")
        failure = self.failureResultOf(d, ResponseFailed)
        self.assertTrue(inner(failure).check(RemoteProtocolError))
        self.assertTrue(c.transport.disconnected)

    def test_bad_chunk_fails_body(self) -> None:
        """A malformed chunk fails the body with ResponseFailed."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        c.receive(b"zz\r\n")
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        self.assertTrue(c.transport.disconnected)


class NoBodyResponseTests(SynchronousTestCase):
    def _exchange(self, method: bytes, response: bytes) -> tuple[Connection, Response]:
        c = connect()
        d = c.protocol.request(make_request(method))
        c.receive(response)
        return c, self.successResultOf(d)

    def _assert_empty_and_reused(self, c: Connection, response: Response) -> None:
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(b"", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseDone))
        self.assertEqual([c.protocol], c.quiescent)
        self.assertTrue(c.protocol.is_reusable())

    def test_head_has_no_body(self) -> None:
        """A HEAD response has length 0 despite its Content-Length."""
        c, response = self._exchange(
            b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
        )
        self.assertEqual(0, response.length)
        self.assertEqual([b"1234"], response.headers.getRawHeaders(b"content-length"))
        self._assert_empty_and_reused(c, response)

    def test_204_has_no_body(self) -> None:
        """A 204 response has no body and leaves the connection reusable."""
        c, response = self._exchange(b"GET", b"HTTP/1.1 204 No Content\r\n\r\n")
        self.assertEqual(0, response.length)
        self._assert_empty_and_reused(c, response)

    def test_304_has_no_body(self) -> None:
        """A 304 response has no body even with a Content-Length."""
        c, response = self._exchange(
            b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
        )
        self.assertEqual(0, response.length)
        self._assert_empty_and_reused(c, response)

    def test_interim_responses_are_consumed(self) -> None:
        """100 and 103 before the final response are consumed, not returned."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 100 Continue\r\n\r\n")
        c.receive(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        self.assertNoResult(d)
        c.receive(OK_5)
        response = self.successResultOf(d)
        self.assertEqual(200, response.code)
        self.assertIsNone(response.headers.getRawHeaders(b"link"))
        self._assert_empty_or_body(response, b"hello")

    def _assert_empty_or_body(self, response: Response, expected: bytes) -> None:
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(expected, body.body)

    def test_unexpected_101_fails(self) -> None:
        """A 101 to a request that asked no upgrade fails the request."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
        self.failureResultOf(d, ResponseFailed)
        self.assertTrue(c.transport.disconnected)


class ReuseTests(SynchronousTestCase):
    def _exchange_once(self, response: bytes, **request_args: object) -> Connection:
        c = connect()
        d = c.protocol.request(make_request(**request_args))  # type: ignore[arg-type]
        c.receive(response)
        self.successResultOf(d).deliverBody(BodyCollector())
        return c

    def test_keep_alive_is_reused(self) -> None:
        """An HTTP/1.1 exchange without close calls the quiescent callback once."""
        c = self._exchange_once(OK_5)
        self.assertEqual([c.protocol], c.quiescent)
        self.assertTrue(c.protocol.is_reusable())
        self.assertFalse(c.transport.disconnecting)
        self.assertIs(ClientState.QUIESCENT, c.protocol.state)

    def test_second_request_on_reused_connection(self) -> None:
        """A reused connection carries a second request and response."""
        c = self._exchange_once(OK_5)
        c.sent()
        d = c.protocol.request(make_request(uri=b"/2"))
        self.assertTrue(c.sent().startswith(b"GET /2 HTTP/1.1\r\n"))
        c.receive(OK_5)
        self.assertEqual(200, self.successResultOf(d).code)
        self.assertEqual(2, len(c.quiescent))

    def test_server_close_is_not_reused(self) -> None:
        """A response with Connection: close closes the connection instead."""
        c = self._exchange_once(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual([], c.quiescent)
        self.assertTrue(c.transport.disconnecting)
        self.assertFalse(c.protocol.is_reusable())

    def test_http_1_0_without_keep_alive_is_not_reused(self) -> None:
        """An HTTP/1.0 response without keep-alive is not reused."""
        c = self._exchange_once(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual([], c.quiescent)
        self.assertTrue(c.transport.disconnecting)

    def test_http_1_0_with_keep_alive_is_reused(self) -> None:
        """An HTTP/1.0 response with Connection: keep-alive is reused."""
        c = self._exchange_once(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual([c.protocol], c.quiescent)

    def test_non_persistent_request_is_not_reused(self) -> None:
        """A request sent with persistent=False is never reused."""
        c = self._exchange_once(OK_5, persistent=False)
        self.assertEqual([], c.quiescent)
        self.assertTrue(c.transport.disconnecting)

    def test_request_connection_close_is_not_reused(self) -> None:
        """A request carrying Connection: close is never reused."""
        c = self._exchange_once(OK_5, headers={b"Connection": [b"close"]})
        self.assertEqual([], c.quiescent)

    def test_leftover_bytes_are_not_reused(self) -> None:
        """Bytes after the response make the connection unusable."""
        c = self._exchange_once(OK_5 + b"HTTP/1.1 200 OK\r\n")
        self.assertEqual([], c.quiescent)
        self.assertTrue(c.transport.disconnecting)

    def test_unsolicited_bytes_close_an_idle_connection(self) -> None:
        """Bytes arriving on an idle connection close it."""
        c = self._exchange_once(OK_5)
        c.receive(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        self.assertTrue(c.transport.disconnecting)
        self.assertFalse(c.protocol.is_reusable())

    def test_idle_close_fires_when_closed(self) -> None:
        """when_closed fires when the server closes an idle connection."""
        c = self._exchange_once(OK_5)
        closed = c.protocol.when_closed()
        self.assertNoResult(closed)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(closed))
        self.assertIsNone(self.successResultOf(c.protocol.when_closed()))
        self.assertFalse(c.protocol.is_reusable())


class EarlyResponseTests(SynchronousTestCase):
    def test_response_while_body_is_sent(self) -> None:
        """A response head arriving mid-body fires the Deferred at once."""
        c = connect()
        producer = ManualProducer(10)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok")
        response = self.successResultOf(d)
        self.assertIs(ClientState.TRANSMITTING, c.protocol.state)
        body = BodyCollector()
        response.deliverBody(body)
        producer.write(b"def")
        c.receive(b"!!")
        self.assertEqual(b"ok!!", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseDone))

    def test_complete_response_before_body_done_closes(self) -> None:
        """A whole response before the body is done stops the producer and closes."""
        c = connect()
        producer = ManualProducer(10)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        c.receive(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(413, self.successResultOf(d).code)
        self.assertIn("stop", producer.calls)
        self.assertTrue(c.transport.disconnecting)
        self.assertIs(ClientState.ABORTING, c.protocol.state)
        self.assertEqual([], c.quiescent)
        c.transport.clear()
        producer.write(b"xyz")
        self.assertEqual(b"", c.transport.value())
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_response_before_producer_reports_done_is_reused(self) -> None:
        """A response after every promised byte waits for the producer, then reuses."""
        c = connect()
        producer = ManualProducer(3)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        c.receive(OK_5)
        self.successResultOf(d).deliverBody(BodyCollector())
        self.assertIs(
            ClientState.TRANSMITTING_AFTER_RECEIVING_RESPONSE, c.protocol.state
        )
        self.assertEqual([], c.quiescent)
        producer.finish()
        self.assertIs(ClientState.QUIESCENT, c.protocol.state)
        self.assertEqual([c.protocol], c.quiescent)

    def test_producer_failing_after_response_closes(self) -> None:
        """A producer failing after the response arrived aborts the connection."""
        c = connect()
        producer = ManualProducer(3)
        d = c.protocol.request(make_request(b"POST", body=producer))
        producer.write(b"abc")
        c.receive(OK_5)
        self.successResultOf(d)
        producer.fail(OSError("late"))
        self.assertIs(ClientState.GENERATION_FAILED, c.protocol.state)
        self.assertTrue(c.transport.disconnected)
        self.assertEqual([], c.quiescent)


class ExpectContinueTests(SynchronousTestCase):
    def _start(self) -> tuple[Connection, BytesProducer, Deferred[Response]]:
        c = connect()
        producer = BytesProducer(b"payload")
        d = c.protocol.request(
            make_request(
                b"PUT",
                headers={b"Expect": [b"100-continue"]},
                body=producer,
                expect_continue_timeout=2.0,
            )
        )
        return c, producer, d

    def test_body_waits_for_100(self) -> None:
        """The body is held until 100 Continue arrives, then sent."""
        c, producer, d = self._start()
        self.assertTrue(c.sent().endswith(b"\r\n\r\n"))
        self.assertEqual(0, producer.started)
        c.receive(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertEqual(b"payload", c.sent())
        self.assertIs(ClientState.WAITING, c.protocol.state)
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(200, self.successResultOf(d).code)
        self.assertEqual([c.protocol], c.quiescent)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_body_sent_when_wait_ends(self) -> None:
        """Without 100 Continue the body is sent once the wait ends, not before."""
        c, producer, d = self._start()
        c.sent()
        c.clock.advance(1.9)
        self.assertEqual(0, producer.started)
        c.clock.advance(0.1)
        self.assertEqual(b"payload", c.sent())
        c.receive(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        self.assertEqual(204, self.successResultOf(d).code)
        self.assertEqual([c.protocol], c.quiescent)

    def test_final_status_instead_of_100_skips_body(self) -> None:
        """A final status instead of 100 means the body is never sent; no reuse."""
        c, producer, d = self._start()
        c.sent()
        c.receive(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(417, self.successResultOf(d).code)
        self.assertEqual(0, producer.started)
        self.assertEqual(b"", c.sent())
        self.assertEqual([], c.quiescent)
        self.assertTrue(c.transport.disconnecting)
        c.clock.advance(10)
        self.assertEqual(0, producer.started)
        self.assertEqual([], c.clock.getDelayedCalls())


class AbortTests(SynchronousTestCase):
    def test_abort_fails_request(self) -> None:
        """abort() aborts the transport and fails the request with ConnectionAborted."""
        c = connect()
        d = c.protocol.request(make_request())
        closed = c.protocol.abort()
        self.failureResultOf(d, ConnectionAborted)
        self.assertTrue(c.transport.disconnected)
        self.assertNoResult(closed)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(closed))
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_abort_fails_body(self) -> None:
        """abort() ends a body being read with ResponseFailed(ConnectionAborted)."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        c.protocol.abort()
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        self.assertTrue(inner(body.reason).check(ConnectionAborted))

    def test_abort_stops_producer(self) -> None:
        """abort() stops a body producer that is still writing."""
        c = connect()
        producer = ManualProducer(9)
        d = c.protocol.request(make_request(b"POST", body=producer))
        c.protocol.abort()
        self.failureResultOf(d, ConnectionAborted)
        self.assertIn("stop", producer.calls)
        self.assertIsNone(c.transport.producer)

    def test_abort_after_loss_is_immediate(self) -> None:
        """abort() on a lost connection returns a fired Deferred."""
        c = connect()
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(c.protocol.abort()))

    def test_cancel_aborts(self) -> None:
        """Cancelling the request Deferred aborts the connection."""
        c = connect()
        d = c.protocol.request(make_request())
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(c.transport.disconnected)
        self.assertIs(ClientState.ABORTING, c.protocol.state)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_cancel_after_response_does_nothing(self) -> None:
        """Cancelling after the response arrived leaves the connection alone."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(OK_5)
        d.cancel()
        self.assertEqual(200, self.successResultOf(d).code)
        self.assertFalse(c.transport.disconnecting)


class ConnectionLostTests(SynchronousTestCase):
    def test_lost_before_any_response_byte(self) -> None:
        """Losing the connection before any response byte: ResponseNeverReceived."""
        c = connect()
        d = c.protocol.request(make_request())
        c.protocol.connectionLost(Failure(ConnectionDone()))
        failure = self.failureResultOf(d, ResponseNeverReceived)
        self.assertTrue(inner(failure).check(ConnectionDone))

    def test_lost_inside_the_head(self) -> None:
        """Losing the connection inside the head: ResponseFailed, not never-received."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\n")
        c.protocol.connectionLost(Failure(ConnectionLost()))
        failure = self.failureResultOf(d, ResponseFailed)
        self.assertNotIsInstance(failure.value, ResponseNeverReceived)

    def test_paused_body_still_ends(self) -> None:
        """A paused body gets held data and its end after the connection is lost."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        assert body.transport is not None
        body.transport.pauseProducing()  # type: ignore[attr-defined]
        c.receive(b"cd")
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(body.reason)
        body.transport.resumeProducing()  # type: ignore[attr-defined]
        self.assertEqual(b"abcd", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(PotentialDataLoss))


class TimeoutTests(SynchronousTestCase):
    def test_response_head_timeout(self) -> None:
        """No head within the limit fails with ResponseHeadTimeout and aborts."""
        c = connect()
        d = c.protocol.request(make_request(response_head_timeout=5.0))
        c.clock.advance(4.9)
        self.assertNoResult(d)
        c.clock.advance(0.1)
        failure = self.failureResultOf(d, ResponseHeadTimeout)
        self.assertEqual(5.0, failure.value.limit_seconds)
        self.assertTrue(c.transport.disconnected)
        c.protocol.connectionLost(Failure(ConnectionAborted()))
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_head_timeout_starts_after_the_body(self) -> None:
        """The head wait starts once the request is fully written."""
        c = connect()
        producer = ManualProducer(3)
        d = c.protocol.request(
            make_request(b"POST", body=producer, response_head_timeout=5)
        )
        c.clock.advance(10)
        self.assertNoResult(d)
        producer.write(b"abc")
        producer.finish()
        c.clock.advance(5)
        self.failureResultOf(d, ResponseHeadTimeout)

    def test_interim_response_restarts_head_wait(self) -> None:
        """An interim response restarts the head wait."""
        c = connect()
        d = c.protocol.request(make_request(response_head_timeout=5.0))
        c.clock.advance(4)
        c.receive(b"HTTP/1.1 102 Processing\r\n\r\n")
        c.clock.advance(4)
        self.assertNoResult(d)
        c.clock.advance(1)
        self.failureResultOf(d, ResponseHeadTimeout)

    def test_head_timeout_none_waits_forever(self) -> None:
        """With no head timeout no timer is scheduled."""
        c = connect()
        c.protocol.request(make_request(response_head_timeout=None))
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_body_idle_timeout(self) -> None:
        """A body silent for the limit fails with BodyIdleTimeout; data resets it."""
        c = connect()
        d = c.protocol.request(make_request(body_idle_timeout=3.0))
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        c.clock.advance(2)
        c.receive(b"cd")
        c.clock.advance(2)
        self.assertIsNone(body.reason)
        c.clock.advance(1)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        timeout = inner(body.reason)
        self.assertTrue(timeout.check(BodyIdleTimeout))
        self.assertEqual("no response body data within 3.0 s", str(timeout.value))
        self.assertTrue(c.transport.disconnected)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_paused_time_does_not_count(self) -> None:
        """Time spent paused by the body consumer is not idle time."""
        c = connect()
        d = c.protocol.request(make_request(body_idle_timeout=3.0))
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        body = BodyCollector()
        self.successResultOf(d).deliverBody(body)
        assert body.transport is not None
        body.transport.pauseProducing()  # type: ignore[attr-defined]
        c.clock.advance(100)
        self.assertIsNone(body.reason)
        body.transport.resumeProducing()  # type: ignore[attr-defined]
        c.clock.advance(2.9)
        self.assertIsNone(body.reason)
        c.clock.advance(0.1)
        self.assertIsNotNone(body.reason)

    def test_timers_cancelled_when_done(self) -> None:
        """No timer outlives a completed exchange."""
        c = connect()
        d = c.protocol.request(make_request())
        c.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
        self.assertEqual(1, len(c.clock.getDelayedCalls()))
        c.receive(b"cde")
        self.successResultOf(d)
        self.assertEqual([], c.clock.getDelayedCalls())

    def test_timers_cancelled_when_lost(self) -> None:
        """No timer outlives a lost connection, in any phase."""
        for response in (b"", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"):
            c = connect()
            d = c.protocol.request(make_request())
            c.receive(response)
            self.assertEqual(1, len(c.clock.getDelayedCalls()))
            c.protocol.connectionLost(Failure(ConnectionLost()))
            self.assertEqual([], c.clock.getDelayedCalls())
            if not response:
                self.failureResultOf(d, ResponseNeverReceived)


class TunnelTests(SynchronousTestCase):
    def test_connect_tunnel_switches_protocol(self) -> None:
        """After a 2xx to CONNECT the connection is handed to another protocol."""
        c = connect()
        d = c.protocol.request(make_request(b"CONNECT", b"example.com:443"))
        c.receive(b"HTTP/1.1 200 Connection Established\r\n\r\nTLS-hello")
        response = self.successResultOf(d)
        self.assertEqual(200, response.code)
        self.assertFalse(c.protocol.is_reusable())
        self.assertEqual([], c.quiescent)
        c.receive(b"-more")
        inner = BodyCollector()
        c.protocol.switch_protocol(inner)
        self.assertIs(c.transport, inner.transport)
        c.receive(b"!")
        self.assertEqual(b"TLS-hello-more!", inner.body)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(inner.reason)

    def test_switch_protocol_needs_a_tunnel(self) -> None:
        """switch_protocol without a tunnel response raises RuntimeError."""
        c = connect()
        with self.assertRaises(RuntimeError):
            c.protocol.switch_protocol(BodyCollector())
