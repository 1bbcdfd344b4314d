# -*- test-case-name: txhttp.test.test_client_connection -*-
"""
Tests for `txhttp.client.HTTPClientConnection` and its lifecycle receiver.

Most tests are deterministic: a `MemoryReactorClock` plays the network (its
synchronous resolver, recorded TCP attempts) and a `StringTransport` the
socket. A few loopback tests on 127.0.0.1 cover a real TLS handshake (a good
and a wrong certificate) and keep-alive against a real server.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.interfaces import (
    IConsumer,
    IHostnameResolver,
    IHostResolution,
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReactorSSL,
    IReactorTCP,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.tcp import Connection as TCPConnection
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp._wire import (
    BadStartLine,
    IncompleteMessage,
    Limits,
    RemoteProtocolError,
    ResponseHead,
    ResponseParser,
)
from txhttp.client import (
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    BodyIdleTimeout,
    BytesBodyProducer,
    ClientRequest,
    ConnectionFailureReason,
    ConnectionState,
    HTTPClientConnection,
    HTTPClientLifecycleEventReceiver,
    HTTPTimeout,
    LifecycleResponse,
    RequestNotSent,
    ResponseHeadTimeout,
    TimerToken,
    TLSHandshakeFailed,
    TLSPolicy,
)
from txhttp.client._connection import _TRANSITIONS, ConnectionInput
from txhttp.client._keepalive import exchange_allows_reuse
from txhttp.client._lifecycle import response_for
from txhttp.test.test_client_tls import certificates, server_options

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
GET = HTTPClientConnection.build_request(b"GET", b"/")


class Recorder(HTTPClientLifecycleEventReceiver):
    """Records every callback as a tuple; ``hooks`` run after recording."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.hooks: dict[str, Callable[..., object]] = {}
        self.connection: HTTPClientConnection | None = None
        self.done: Deferred[None] = Deferred()

    def _hook(self, name: str, *args: object) -> None:
        hook = self.hooks.get(name)
        if hook is not None:
            hook(*args)

    def on_connected(self, connection: HTTPClientConnection) -> None:
        self.connection = connection
        self.events.append(("connected",))
        self._hook("connected", connection)

    def on_connection_failure(self, reason: ConnectionFailureReason) -> None:
        self.events.append(("failure", reason))
        self._hook("failure", reason)
        if not self.done.called:
            self.done.callback(None)

    def on_response(self, response: LifecycleResponse) -> None:
        self.events.append(("response", response.status))
        self._hook("response", response)

    def on_body_chunk(self, data: bytes) -> None:
        self.events.append(("chunk", data))
        self._hook("chunk", data)

    def on_response_complete(self) -> None:
        self.events.append(("complete",))
        self._hook("complete")

    def on_parse_error(self, error: RemoteProtocolError) -> None:
        self.events.append(("parse_error", type(error)))
        self._hook("parse_error", error)

    def on_closed(self) -> None:
        self.events.append(("closed",))
        self._hook("closed")
        if not self.done.called:
            self.done.callback(None)

    def on_throttled(self) -> None:
        self.events.append(("throttled",))
        self._hook("throttled")

    def on_unthrottled(self) -> None:
        self.events.append(("unthrottled",))
        self._hook("unthrottled")

    def on_timer(self, token: TimerToken) -> None:
        self.events.append(("timer", token))
        self._hook("timer", token)

    def names(self) -> list[object]:
        return [event[0] for event in self.events]


class _Client(IProtocol, IPushProducer):
    """What the connection registers with its transport (for typing)."""


class FillingTransport(StringTransport):
    """A transport whose send buffer holds ``capacity`` bytes, then pauses
    its producer; `drain` empties it and resumes the producer."""

    def __init__(self, capacity: int = 1 << 30) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 80))
        self.capacity = capacity
        self.paused_by_us = False

    @property
    def client(self) -> _Client:
        """The protocol, registered as this transport's producer."""
        producer = self.producer
        assert producer is not None
        return cast(_Client, producer)

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > self.capacity and not self.paused_by_us:
            self.paused_by_us = True
            self.client.pauseProducing()

    def drain(self) -> bytes:
        data: bytes = self.value()
        self.clear()
        if self.paused_by_us:
            self.paused_by_us = False
            self.client.resumeProducing()
        return data


@implementer(IHostnameResolver)
class NoAddressResolver:
    """A resolver for which no name exists."""

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[object]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        resolutionReceiver.resolutionComplete()
        return resolution


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        raise RuntimeError("already resolved")


def make(
    *,
    capacity: int = 1 << 30,
    connect: bool = True,
    **options: object,
) -> tuple[HTTPClientConnection, Recorder, MemoryReactorClock, FillingTransport]:
    """A connection through the default endpoint, connected to a transport."""
    reactor = MemoryReactorClock()
    recorder = Recorder()
    connection = HTTPClientConnection(
        reactor,
        "example.com",
        80,
        recorder,
        **options,  # type: ignore[arg-type]  # each test passes valid options
    )
    transport = FillingTransport(capacity)
    if connect:
        connection.connect()
        _, _, factory, _, _ = reactor.tcpClients[0]
        protocol = factory.buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(transport)
    return connection, recorder, reactor, transport


class ReceiverTests(SynchronousTestCase):
    """The receiver base class."""

    def test_every_callback_is_a_no_op(self) -> None:
        """Each callback of the base class accepts its arguments and does nothing."""
        receiver = HTTPClientLifecycleEventReceiver()
        connection, _, _, _ = make(connect=False)
        token = TimerToken(1, 0.0)
        response = LifecycleResponse(
            method=b"GET",
            version=b"HTTP/1.1",
            status=200,
            reason=b"OK",
            fields=[(b"A", b"1")],
            has_body=False,
            keeps_alive=True,
        )
        receiver.on_connected(connection)
        receiver.on_connection_failure(ConnectionFailureReason.DNS)
        receiver.on_response(response)
        receiver.on_body_chunk(b"x")
        receiver.on_response_complete()
        receiver.on_parse_error(BadStartLine("x"))
        receiver.on_closed()
        receiver.on_throttled()
        receiver.on_unthrottled()
        receiver.on_timer(token)
        self.assertEqual({}, vars(receiver))

    def test_response_header_lookup(self) -> None:
        """Header lookups ignore case and keep duplicates in order."""
        response = LifecycleResponse(
            method=b"GET",
            version=b"HTTP/1.1",
            status=200,
            reason=b"OK",
            fields=[(b"Set-Cookie", b"a"), (b"X", b"y"), (b"set-cookie", b"b")],
            has_body=True,
            keeps_alive=True,
        )
        self.assertEqual(b"a", response.header(b"SET-COOKIE"))
        self.assertIsNone(response.header(b"missing"))
        self.assertEqual([b"a", b"b"], response.header_values(b"set-cookie"))


class StateTableTests(SynchronousTestCase):
    """The connection's state machine."""

    def test_every_pair_is_listed_or_refused(self) -> None:
        """Each (state, input) pair either has a row or is refused as a bug."""
        connection, _, _, _ = make(connect=False)
        for state in ConnectionState:
            for event in ConnectionInput:
                connection._state = state
                if (state, event) in _TRANSITIONS:
                    connection._advance(event)
                    self.assertEqual(_TRANSITIONS[state, event], connection.state)
                else:
                    self.assertRaises(RuntimeError, connection._advance, event)

    def test_final_states_have_no_exit(self) -> None:
        """CLOSED and FAILED are final: no row leaves them."""
        for state, _ in _TRANSITIONS:
            self.assertNotIn(state, (ConnectionState.CLOSED, ConnectionState.FAILED))


class ConnectTests(SynchronousTestCase):
    """Connecting: success and each failure reason."""

    def test_no_io_before_connect(self) -> None:
        """Building a connection starts nothing; connect() does."""
        connection, recorder, reactor, _ = make(connect=False)
        self.assertEqual([], reactor.tcpClients)
        self.assertEqual(ConnectionState.NEW, connection.state)
        connection.connect()
        self.assertEqual(ConnectionState.CONNECTING, connection.state)
        self.assertEqual(1, len(reactor.tcpClients))
        self.assertEqual([], recorder.events)
        self.assertRaises(ValueError, connection.connect)

    def test_connected(self) -> None:
        """on_connected gets the connection once TCP is up; it registers as producer."""
        connection, recorder, reactor, transport = make()
        self.assertEqual([("connected",)], recorder.events)
        self.assertIs(connection, recorder.connection)
        self.assertTrue(connection.is_connected())
        self.assertTrue(connection.is_idle())
        self.assertTrue(transport.streaming)
        self.assertTrue(verifyObject(IPushProducer, transport.producer))
        self.assertEqual(("127.0.0.1", 80), reactor.tcpClients[0][:2])

    def test_dns_failure(self) -> None:
        """A name that resolves to nothing fails with DNS; on_closed never comes."""
        connection, recorder, reactor, _ = make(connect=False)
        reactor.installNameResolver(NoAddressResolver())
        connection.connect()
        self.assertEqual([("failure", ConnectionFailureReason.DNS)], recorder.events)
        self.assertTrue(connection.is_closed())
        self.assertIsNotNone(connection.connect_failure)
        self.assertEqual([], reactor.getDelayedCalls())
        self.assertRaises(RequestNotSent, connection.send_request, GET)

    def test_refused(self) -> None:
        """A refused TCP connection fails with TCP."""
        connection, recorder, reactor, _ = make(connect=False)
        connection.connect()
        _, _, factory, _, _ = reactor.tcpClients[0]
        factory.clientConnectionFailed(
            reactor.connectors[0], Failure(ConnectionRefusedError())
        )
        reactor.advance(1)  # HostnameEndpoint notices no address is left
        self.assertEqual([("failure", ConnectionFailureReason.TCP)], recorder.events)
        failure = connection.connect_failure
        assert failure is not None
        self.assertIsInstance(failure.value, ConnectionRefusedError)

    def test_connect_timeout(self) -> None:
        """No connection within connect_timeout fails with TIMEOUT, not before."""
        connection, recorder, reactor, _ = make(connect=False, connect_timeout=5.0)
        connection.connect()
        reactor.advance(4.9)
        self.assertEqual([], recorder.events)
        reactor.advance(0.1)
        self.assertEqual(
            [("failure", ConnectionFailureReason.TIMEOUT)], recorder.events
        )
        self.assertEqual(ConnectionState.FAILED, connection.state)

    def test_tls_failure_through_endpoint(self) -> None:
        """A TLS handshake error from the endpoint fails with SSL."""
        d: Deferred[IProtocol] = Deferred()

        @implementer(IStreamClientEndpoint)
        class Later:
            def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
                return d

        reactor = MemoryReactorClock()
        recorder = Recorder()
        connection = HTTPClientConnection(
            reactor, "127.0.0.1", 443, recorder, endpoint=Later()
        )
        connection.connect()
        d.errback(TLSHandshakeFailed("127.0.0.1", 443, "bad record mac"))
        self.assertEqual([("failure", ConnectionFailureReason.SSL)], recorder.events)

    def test_close_while_connecting(self) -> None:
        """close() while connecting cancels the attempt and reports on_closed."""
        connection, recorder, reactor, _ = make(connect=False)
        connection.connect()
        connection.close()
        self.assertEqual([("closed",)], recorder.events)
        self.assertEqual(ConnectionState.CLOSED, connection.state)
        self.assertEqual([], reactor.getDelayedCalls())
        connection.close()
        self.assertEqual([("closed",)], recorder.events)

    def test_bad_arguments(self) -> None:
        """Non-positive timeouts and bad ports are refused at construction."""
        reactor = MemoryReactorClock()
        for kwargs in ({"connect_timeout": 0}, {"idle_timeout": -1.0}):
            self.assertRaises(
                ValueError,
                HTTPClientConnection,
                reactor,
                "h",
                80,
                Recorder(),
                **kwargs,
            )
        self.assertRaises(ValueError, HTTPClientConnection, reactor, "h", 0, Recorder())


class ExchangeTests(SynchronousTestCase):
    """Requests, responses and the order of callbacks."""

    def test_request_head_and_callback_order(self) -> None:
        """A GET is written with Host; the callbacks come in order."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        self.assertEqual(
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", transport.value()
        )
        self.assertEqual(ConnectionState.RECEIVING, connection.state)
        connection._data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
        connection._data_received(b"lo")
        self.assertEqual(
            [
                ("connected",),
                ("response", 200),
                ("chunk", b"hel"),
                ("chunk", b"lo"),
                ("complete",),
            ],
            recorder.events,
        )
        self.assertTrue(connection.is_idle())

    def test_chunked_body(self) -> None:
        """Chunked bodies arrive de-chunked, one callback per piece."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        transport.client.dataReceived(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        self.assertEqual(
            ["connected", "response", "chunk", "chunk", "complete"], recorder.names()
        )
        self.assertEqual(
            [b"abc", b"de"], [e[1] for e in recorder.events if e[0] == "chunk"]
        )

    def test_no_body_responses_complete_at_once(self) -> None:
        """HEAD, 204 and 304 go straight from on_response to on_response_complete."""
        cases = [
            (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"),
            (b"GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
            (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
        ]
        for method, reply in cases:
            connection, recorder, _, transport = make()
            responses: list[LifecycleResponse] = []
            recorder.hooks["response"] = responses.append
            connection.send_request(HTTPClientConnection.build_request(method, b"/"))
            transport.client.dataReceived(reply)
            self.assertEqual(["connected", "response", "complete"], recorder.names())
            self.assertFalse(responses[0].has_body)
            self.assertTrue(connection.is_idle())

    def test_interim_responses_are_consumed(self) -> None:
        """A 100 Continue is not reported; the final response is."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        transport.client.dataReceived(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        self.assertEqual(
            ["connected", "response", "chunk", "complete"], recorder.names()
        )

    def test_keep_alive_reuse_for_many_requests(self) -> None:
        """One connection carries many requests, each sent from on_response_complete."""
        connection, recorder, reactor, transport = make()
        sent = [0]

        def again() -> None:
            if sent[0] < 100:
                sent[0] += 1
                connection.send_request(GET)

        recorder.hooks["complete"] = again
        again()
        for _ in range(100):
            self.assertEqual(
                b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", transport.value()
            )
            transport.clear()
            transport.client.dataReceived(OK)
        self.assertEqual(100, recorder.names().count("complete"))
        self.assertEqual(1, len(reactor.tcpClients))
        self.assertTrue(connection.is_idle())
        self.assertFalse(transport.disconnecting)

    def test_second_request_refused(self) -> None:
        """A second request while one is in progress is refused, nothing written."""
        connection, _, _, transport = make()
        connection.send_request(GET)
        transport.clear()
        error = self.assertRaises(RequestNotSent, connection.send_request, GET)
        self.assertIn("only one request may be in progress", str(error))
        self.assertEqual(b"", transport.value())

    def test_bytes_body(self) -> None:
        """A bytes body is sent with Content-Length, in the same write as the head."""
        connection, _, _, transport = make()
        request = HTTPClientConnection.build_request(b"POST", b"/p", body=b"abc")
        connection.send_request(request)
        self.assertEqual(
            b"POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc",
            transport.value(),
        )
        self.assertEqual(ConnectionState.RECEIVING, connection.state)

    def test_host_field_kept_and_port_added(self) -> None:
        """A caller's Host is kept; the default Host carries a non-default port."""
        reactor = MemoryReactorClock()
        connection = HTTPClientConnection(reactor, "::1", 8080, Recorder())
        self.assertEqual(b"[::1]:8080", connection._host_field)
        connection, _, _, transport = make()
        request = HTTPClientConnection.build_request(
            b"GET", b"/", Headers({b"Host": [b"other"]})
        )
        connection.send_request(request)
        self.assertEqual(b"GET / HTTP/1.1\r\nHost: other\r\n\r\n", transport.value())

    def test_connection_close_response_closes(self) -> None:
        """A response with Connection: close completes, then the connection closes."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        transport.client.dataReceived(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(["connected", "response", "complete"], recorder.names())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(ConnectionState.CLOSING, connection.state)
        self.assertRaises(RequestNotSent, connection.send_request, GET)
        connection._connection_lost(Failure(ConnectionDone()))
        self.assertEqual(
            ["connected", "response", "complete", "closed"], recorder.names()
        )

    def test_body_until_close(self) -> None:
        """A body read until close completes when the connection closes."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        transport.client.dataReceived(b"HTTP/1.0 200 OK\r\n\r\nsome")
        connection._connection_lost(Failure(ConnectionDone()))
        self.assertEqual(
            ["connected", "response", "chunk", "complete", "closed"], recorder.names()
        )

    def test_remote_close_when_idle(self) -> None:
        """The server closing an idle connection gives on_closed only."""
        _, recorder, reactor, transport = make()
        transport.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(["connected", "closed"], recorder.names())
        self.assertEqual([], reactor.getDelayedCalls())

    def test_unsolicited_bytes_close(self) -> None:
        """Bytes arriving while no request is in progress close the connection."""
        connection, _, _, transport = make()
        transport.client.dataReceived(OK)
        self.assertTrue(transport.disconnected)
        self.assertEqual(ConnectionState.CLOSING, connection.state)

    def test_local_close(self) -> None:
        """close() loses the connection politely; on_closed follows the loss."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        connection.close()
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(transport.producer)
        self.assertEqual(["connected"], recorder.names())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(["connected", "closed"], recorder.names())
        self.assertTrue(connection.is_closed())


class ParseErrorTests(SynchronousTestCase):
    """Malformed and truncated responses."""

    def test_malformed_response(self) -> None:
        """A broken status line gives on_parse_error, an abort, then on_closed only."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        connection.send_request(GET)
        protocol.dataReceived(b"HTTP/1.1 abc nope\r\n\r\n" + OK)
        self.assertEqual(["connected", "parse_error"], recorder.names())
        self.assertTrue(issubclass(recorder.events[1][1], RemoteProtocolError))  # type: ignore[arg-type]
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["connected", "parse_error", "closed"], recorder.names())

    def test_truncated_body(self) -> None:
        """A close inside a body reports IncompleteMessage, then on_closed."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        connection.send_request(GET)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(
            [
                ("connected",),
                ("response", 200),
                ("chunk", b"abc"),
                ("parse_error", IncompleteMessage),
                ("closed",),
            ],
            recorder.events,
        )

    def test_close_before_any_response_byte(self) -> None:
        """A close before any response byte is not a parse error: on_closed only."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        connection.send_request(GET)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(["connected", "closed"], recorder.names())


class CallbackDisciplineTests(SynchronousTestCase):
    """Callbacks are never nested, and a raising callback closes the connection."""

    def test_events_raised_inside_a_callback_wait(self) -> None:
        """An event raised during a callback is delivered after it returns."""
        connection, recorder, _, transport = make(capacity=1000)
        protocol = transport.client
        inside: list[bool] = []

        def complete() -> None:
            # This write fills the buffer: on_throttled must wait for us.
            connection.send_request(GET)
            inside.append(recorder.names()[-1] == "complete")

        recorder.hooks["complete"] = complete
        connection.send_request(HTTPClientConnection.build_request(b"GET", b"/"))
        transport.clear()
        transport.capacity = 10
        protocol.dataReceived(OK)
        self.assertEqual([True], inside)
        self.assertEqual(
            ["connected", "response", "chunk", "complete", "throttled"],
            recorder.names(),
        )

    def test_close_inside_callback_then_loss(self) -> None:
        """A loss delivered while a callback runs waits until it returns."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        order: list[str] = []

        def chunk(data: bytes) -> None:
            protocol.connectionLost(Failure(ConnectionDone()))
            order.append("chunk returns")

        recorder.hooks["chunk"] = chunk
        recorder.hooks["closed"] = lambda: order.append("closed")
        connection.send_request(GET)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        self.assertEqual(["chunk returns", "closed"], order)

    def test_exception_is_logged_and_closes(self) -> None:
        """A raising callback is logged; the connection aborts; on_closed follows."""
        logged: list[dict[str, object]] = []
        observer = cast(ILogObserver, logged.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        connection, recorder, _, transport = make()
        protocol = transport.client

        def boom(response: LifecycleResponse) -> None:
            raise ZeroDivisionError("receiver bug")

        recorder.hooks["response"] = boom
        connection.send_request(GET)
        protocol.dataReceived(OK)
        self.assertEqual(["connected", "response"], recorder.names())
        self.assertTrue(transport.disconnected)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["connected", "response", "closed"], recorder.names())
        self.assertEqual(1, len(self.flushLoggedErrors(ZeroDivisionError)))
        self.assertTrue(any("log_failure" in event for event in logged))


class ThrottleTests(SynchronousTestCase):
    """The send buffer filling up and draining."""

    def test_throttled_and_unthrottled(self) -> None:
        """A full send buffer gives on_throttled, the drain on_unthrottled."""
        connection, recorder, _, transport = make(capacity=20)
        connection.send_request(GET)
        self.assertTrue(connection.is_throttled())
        self.assertEqual(["connected", "throttled"], recorder.names())
        transport.drain()
        self.assertFalse(connection.is_throttled())
        self.assertEqual(["connected", "throttled", "unthrottled"], recorder.names())

    def test_body_producer_paused_while_throttled(self) -> None:
        """A body producer is paused while the buffer is full, resumed after."""
        producer = SlowBody()
        connection, recorder, _, transport = make(capacity=100)
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        self.assertEqual(ConnectionState.SENDING, connection.state)
        producer.consumer.write(b"x" * 200)
        self.assertEqual(["pause"], producer.calls)
        self.assertIn("throttled", recorder.names())
        transport.drain()
        self.assertEqual(["pause", "resume"], producer.calls)
        producer.finish()
        self.assertEqual(ConnectionState.RECEIVING, connection.state)
        self.assertTrue(transport.value().endswith(b"0\r\n\r\n"))


@implementer(IBodyProducer)
class SlowBody:
    """A chunked body the test writes by hand."""

    length: int | str = UNKNOWN_LENGTH

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.finished: Deferred[None] = Deferred()
        self.consumer: IConsumer

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self.consumer = consumer
        return self.finished

    def finish(self) -> None:
        self.finished.callback(None)

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class ReadingTests(SynchronousTestCase):
    """pause_reading and resume_reading."""

    def test_pause_stops_chunks_until_resume(self) -> None:
        """After pause_reading in on_body_chunk no chunk comes until resume."""
        connection, recorder, _, transport = make()
        protocol = transport.client
        recorder.hooks["chunk"] = lambda data: connection.pause_reading()
        connection.send_request(GET)
        protocol.dataReceived(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
        )
        self.assertEqual(["connected", "response", "chunk"], recorder.names())
        self.assertEqual("paused", transport.producerState)
        self.assertTrue(connection.is_reading_paused())
        recorder.hooks.clear()
        connection.resume_reading()
        self.assertEqual("producing", transport.producerState)
        self.assertEqual(
            ["connected", "response", "chunk", "chunk", "complete"], recorder.names()
        )


class TimerTests(SynchronousTestCase):
    """One-shot timers and the idle timeout."""

    def test_timer_fires_with_its_token(self) -> None:
        """on_timer gets the token set_timer returned, once, after the delay."""
        connection, recorder, reactor, _ = make()
        token = connection.set_timer(2.0)
        reactor.advance(1.9)
        self.assertEqual(["connected"], recorder.names())
        reactor.advance(0.1)
        self.assertEqual([("connected",), ("timer", token)], recorder.events)
        reactor.advance(10)
        self.assertEqual(1, recorder.names().count("timer"))

    def test_rearm_inside_on_timer(self) -> None:
        """set_timer from inside on_timer arms a new timer (the old is consumed)."""
        connection, recorder, reactor, _ = make(idle_timeout=None)
        tokens = [connection.set_timer(1.0)]

        def rearm(token: TimerToken) -> None:
            self.assertFalse(connection.cancel_timer(token))
            if len(tokens) < 3:
                tokens.append(connection.set_timer(1.0))

        recorder.hooks["timer"] = rearm
        reactor.advance(1)
        reactor.advance(1)
        reactor.advance(1)
        self.assertEqual(tokens, [e[1] for e in recorder.events if e[0] == "timer"])
        self.assertEqual(3, len(set(tokens)))
        self.assertEqual([], reactor.getDelayedCalls())

    def test_cancel_timer(self) -> None:
        """A cancelled timer never fires; cancelling twice returns False."""
        connection, recorder, reactor, _ = make()
        token = connection.set_timer(1.0)
        self.assertTrue(connection.cancel_timer(token))
        self.assertFalse(connection.cancel_timer(token))
        reactor.advance(5)
        self.assertNotIn("timer", recorder.names())

    def test_timer_fires_despite_io(self) -> None:
        """A timer fires on time even while data keeps arriving."""
        connection, recorder, reactor, transport = make()
        connection.send_request(GET)
        connection.set_timer(3.0)
        transport.client.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
        for _ in range(3):
            reactor.advance(1)
            transport.client.dataReceived(b"abc")
        self.assertIn("timer", recorder.names())

    def test_timers_cancelled_on_close(self) -> None:
        """Pending timers are cancelled when the connection ends."""
        connection, _, reactor, transport = make()
        connection.set_timer(5.0)
        transport.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], reactor.getDelayedCalls())
        self.assertRaises(ValueError, connection.set_timer, 1.0)

    def test_negative_delay_refused(self) -> None:
        """set_timer refuses negative and NaN delays."""
        connection, _, _, _ = make()
        self.assertRaises(ValueError, connection.set_timer, -1.0)
        self.assertRaises(ValueError, connection.set_timer, float("nan"))

    def test_idle_timeout(self) -> None:
        """No I/O for idle_timeout closes the connection, not before."""
        _, recorder, reactor, transport = make(idle_timeout=10.0)
        reactor.advance(9.9)
        self.assertFalse(transport.disconnected)
        reactor.advance(0.1)
        self.assertTrue(transport.disconnected)
        transport.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["connected", "closed"], recorder.names())

    def test_idle_timeout_reset_by_io(self) -> None:
        """Each send or receive restarts the idle time."""
        connection, _, reactor, transport = make(idle_timeout=10.0)
        reactor.advance(6)
        connection.send_request(GET)
        reactor.advance(6)
        transport.client.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        reactor.advance(6)
        transport.client.dataReceived(b"o")
        reactor.advance(9.9)
        self.assertFalse(transport.disconnected)
        reactor.advance(0.1)
        self.assertTrue(transport.disconnected)


class _Canned(Protocol):
    """Server side: answers every request head with a fixed response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            assert self.transport is not None
            self.transport.write(self.response)


class LoopbackTests(TestCase):
    """Real sockets on 127.0.0.1: plain keep-alive, TLS success and failure."""

    timeout = 20

    def listen(self, tls: bool, pair_name: str = "good") -> int:
        factory = ServerFactory.forProtocol(lambda: _Canned(OK))
        port: IListeningPort
        if tls:
            ssl: IReactorSSL = _global_reactor  # type: ignore[assignment]  # it is
            pair = getattr(certificates(), pair_name)
            port = ssl.listenSSL(
                0,
                factory,  # type: ignore[arg-type]  # typed for _ProtoWithFactory
                server_options(pair),
                interface="127.0.0.1",
            )
        else:
            tcp: IReactorTCP = _global_reactor
            port = tcp.listenTCP(
                0,
                factory,  # type: ignore[arg-type]  # typed for _ProtoWithFactory
                interface="127.0.0.1",
            )
        self.addCleanup(port.stopListening)
        number: int = port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
        return number

    def run_requests(self, tls: TLSPolicy | None, count: int) -> Deferred[None]:
        port = self.listen(tls is not None)
        recorder = Recorder()
        connection = HTTPClientConnection(
            _global_reactor,
            "127.0.0.1",
            port,
            recorder,
            tls=tls,
        )
        sent = [0]

        def send(*_: object) -> None:
            if sent[0] < count:
                sent[0] += 1
                connection.send_request(GET)
            else:
                connection.close()

        recorder.hooks["connected"] = send
        recorder.hooks["complete"] = send
        connection.connect()

        def check(_: None) -> None:
            self.assertEqual(count, recorder.names().count("complete"))
            self.assertEqual(count, recorder.names().count("response"))
            self.assertEqual("connected", recorder.names()[0])
            self.assertEqual("closed", recorder.names()[-1])

        return recorder.done.addCallback(check)

    def test_plain_keep_alive(self) -> Deferred[None]:
        """Fifty requests go over one real connection, then it closes."""
        return self.run_requests(None, 50)

    def test_tls_connects_after_handshake(self) -> Deferred[None]:
        """With a trusted certificate, requests flow over verified TLS."""
        return self.run_requests(TLSPolicy(trust_root=certificates().trust_root()), 3)

    def test_tls_wrong_certificate(self) -> Deferred[None]:
        """A certificate for another name fails the attempt with SSL."""
        port = self.listen(True, "wrong_name")
        recorder = Recorder()
        connection = HTTPClientConnection(
            _global_reactor,
            "127.0.0.1",
            port,
            recorder,
            tls=TLSPolicy(trust_root=certificates().trust_root()),
        )
        connection.connect()

        def check(_: None) -> None:
            self.assertEqual(
                [("failure", ConnectionFailureReason.SSL)], recorder.events
            )

        return recorder.done.addCallback(check)


@implementer(IBodyProducer)
class FixedBody(SlowBody):
    """A body of declared length the test writes and finishes by hand."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length


class EarlyResponseTests(SynchronousTestCase):
    """Responses that arrive before the request body is finished."""

    def test_unfinished_body_closes(self) -> None:
        """A complete response while a chunked body is unfinished stops it, closes."""
        producer = SlowBody()
        connection, recorder, _, transport = make()
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        transport.client.dataReceived(OK)
        self.assertEqual(
            ["connected", "response", "chunk", "complete"], recorder.names()
        )
        self.assertEqual(["stop"], producer.calls)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(ConnectionState.CLOSING, connection.state)

    def test_body_complete_on_wire_is_reused(self) -> None:
        """A fully written Content-Length body lets the connection be reused."""
        producer = FixedBody(3)
        connection, recorder, _, transport = make()
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        producer.consumer.write(b"abc")
        transport.client.dataReceived(OK)
        self.assertEqual(ConnectionState.SENDING_AFTER_RESPONSE, connection.state)
        self.assertIn("complete", recorder.names())
        producer.finish()
        self.assertTrue(connection.is_idle())
        self.assertFalse(transport.disconnecting)

    def test_body_failure_closes(self) -> None:
        """A failing body producer is logged and the connection aborted."""
        producer = SlowBody()
        connection, recorder, _, transport = make()
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        producer.finished.errback(ValueError("disk gone"))
        self.assertTrue(transport.disconnected)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))
        transport.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["connected", "closed"], recorder.names())


class MoreCallbackTests(SynchronousTestCase):
    """Less common paths of the dispatcher and the exchange."""

    def test_raising_on_connected_closes(self) -> None:
        """An exception in on_connected aborts the new connection."""
        reactor = MemoryReactorClock()
        recorder = Recorder()

        def boom(connection: HTTPClientConnection) -> None:
            raise KeyError("receiver bug")

        recorder.hooks["connected"] = boom
        connection = HTTPClientConnection(reactor, "example.com", 80, recorder)
        connection.connect()
        transport = FillingTransport()
        protocol = reactor.tcpClients[0][2].buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(transport)
        self.assertTrue(transport.disconnected)
        self.assertEqual(1, len(self.flushLoggedErrors(KeyError)))
        transport.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["connected", "closed"], recorder.names())

    def test_event_queue_is_bounded(self) -> None:
        """Too many events raised inside one callback close the connection."""
        connection, recorder, reactor, transport = make(max_queued_events=2)
        client = transport.client

        def flood(token: TimerToken) -> None:
            client.pauseProducing()
            client.resumeProducing()
            client.pauseProducing()

        recorder.hooks["timer"] = flood
        connection.set_timer(0)
        reactor.advance(0)
        self.assertTrue(transport.disconnected)
        self.assertNotIn("throttled", recorder.names())

    def test_tunnel_response_ends_the_connection(self) -> None:
        """A 2xx to CONNECT completes at once; no tunnel is offered, so it closes."""
        connection, recorder, _, transport = make()
        connection.send_request(
            HTTPClientConnection.build_request(b"CONNECT", b"example.com:443")
        )
        transport.client.dataReceived(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.assertEqual(["connected", "response", "complete"], recorder.names())
        self.assertTrue(transport.disconnecting)

    def test_request_not_persistent_closes(self) -> None:
        """A request with persistent=False asks to close and is not reused."""
        connection, recorder, _, transport = make()
        request = HTTPClientConnection.build_request(b"GET", b"/", persistent=False)
        connection.send_request(request)
        self.assertIn(b"Connection: close\r\n", transport.value())
        transport.client.dataReceived(OK)
        self.assertTrue(transport.disconnecting)
        self.assertEqual("complete", recorder.names()[-1])

    def test_on_closed_only_once(self) -> None:
        """A second connectionLost reports nothing more."""
        _, recorder, _, transport = make()
        client = transport.client
        client.connectionLost(Failure(ConnectionDone()))
        client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(["connected", "closed"], recorder.names())


class KeepAliveRuleTests(SynchronousTestCase):
    """`exchange_allows_reuse`."""

    def test_rule(self) -> None:
        """Reuse needs a persistent request and a keep-alive, delimited response."""
        from txhttp._wire import ResponseParser

        def head(raw: bytes, method: bytes = b"GET") -> ResponseHead:
            parser = ResponseParser()
            parser.expect_response(method)
            parser.feed(raw)
            event = parser.next_event()
            assert isinstance(event, ResponseHead)
            return event

        keep = HTTPClientConnection.build_request(b"GET", b"/")
        close = HTTPClientConnection.build_request(b"GET", b"/", persistent=False)
        self.assertTrue(exchange_allows_reuse(keep, head(OK)))
        self.assertFalse(exchange_allows_reuse(close, head(OK)))
        self.assertFalse(
            exchange_allows_reuse(
                keep, head(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            )
        )
        self.assertFalse(exchange_allows_reuse(keep, head(b"HTTP/1.0 200 OK\r\n\r\n")))


class NestingTests(SynchronousTestCase):
    """Calls made from inside callbacks."""

    def test_resume_inside_a_callback_waits_for_it(self) -> None:
        """resume_reading inside on_timer delivers held chunks after it returns."""
        connection, recorder, reactor, transport = make()
        running: list[str] = []

        def chunk(data: bytes) -> None:
            self.assertEqual([], running)
            connection.pause_reading()

        def timer(token: TimerToken) -> None:
            running.append("timer")
            connection.resume_reading()
            self.assertEqual("timer", recorder.names()[-1])
            running.clear()

        recorder.hooks["chunk"] = chunk
        recorder.hooks["timer"] = timer
        connection.send_request(GET)
        transport.client.dataReceived(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n"
        )
        self.assertEqual(["connected", "response", "chunk"], recorder.names())
        connection.set_timer(1)
        reactor.advance(1)
        self.assertEqual(
            ["connected", "response", "chunk", "timer", "chunk"], recorder.names()
        )

    def test_close_before_connect(self) -> None:
        """close() on a new connection reports on_closed; connect() is then refused."""
        connection, recorder, reactor, _ = make(connect=False)
        connection.close()
        self.assertEqual(["closed"], recorder.names())
        self.assertRaises(ValueError, connection.connect)
        self.assertEqual([], reactor.tcpClients)


class TimeoutRecorder(Recorder):
    """A `Recorder` that also records ``on_response_timeout``."""

    def on_response_timeout(self, error: HTTPTimeout) -> None:
        self.events.append(("timeout", type(error), error.limit_seconds))
        self._hook("timeout", error)


def make_timed(
    **options: object,
) -> tuple[HTTPClientConnection, TimeoutRecorder, MemoryReactorClock, FillingTransport]:
    """Like `make`, with a `TimeoutRecorder` and no connection idle timeout."""
    reactor = MemoryReactorClock()
    recorder = TimeoutRecorder()
    connection = HTTPClientConnection(
        reactor,
        "example.com",
        80,
        recorder,
        idle_timeout=None,
        **options,  # type: ignore[arg-type]  # each test passes valid options
    )
    transport = FillingTransport()
    connection.connect()
    _, _, factory, _, _ = reactor.tcpClients[0]
    protocol = factory.buildProtocol(None)
    assert protocol is not None
    protocol.makeConnection(transport)
    return connection, recorder, reactor, transport


def expecting(producer: bytes | IBodyProducer, timeout: float = 2.0) -> ClientRequest:
    """A PUT with ``Expect: 100-continue``."""
    return ClientRequest(
        b"PUT",
        b"/upload",
        Headers({b"Expect": [b"100-continue"]}),
        BytesBodyProducer(producer) if isinstance(producer, bytes) else producer,
        persistent=True,
        expect_continue_timeout=timeout,
    )


def timed_get(
    response_head_timeout: float | None = 30.0,
    body_idle_timeout: float | None = 30.0,
) -> ClientRequest:
    """A GET with the given waits."""
    return ClientRequest(
        b"GET",
        b"/",
        Headers(),
        persistent=True,
        response_head_timeout=response_head_timeout,
        body_idle_timeout=body_idle_timeout,
    )


class ExpectContinueTests(SynchronousTestCase):
    """``Expect: 100-continue`` through send_request."""

    def test_body_waits_for_100(self) -> None:
        """The body is held until 100 Continue arrives, then sent."""
        connection, recorder, _, transport = make_timed()
        connection.send_request(expecting(b"payload"))
        self.assertTrue(transport.drain().endswith(b"\r\n\r\n"))
        self.assertEqual(ConnectionState.SENDING, connection.state)
        transport.client.dataReceived(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertEqual(b"payload", transport.drain())
        self.assertEqual(ConnectionState.RECEIVING, connection.state)
        transport.client.dataReceived(OK)
        self.assertEqual(
            ["connected", "response", "chunk", "complete"], recorder.names()
        )
        self.assertTrue(connection.is_idle())

    def test_body_sent_when_wait_ends(self) -> None:
        """Without 100 Continue the body goes once the wait ends, not before."""
        connection, _, reactor, transport = make_timed()
        connection.send_request(expecting(b"payload", timeout=2.0))
        transport.drain()
        reactor.advance(1.9)
        self.assertEqual(b"", transport.drain())
        reactor.advance(0.1)
        self.assertEqual(b"payload", transport.drain())
        self.assertEqual(ConnectionState.RECEIVING, connection.state)

    def test_final_status_instead_of_100_skips_body(self) -> None:
        """A final status instead of 100: the body is never sent; no reuse."""
        producer = FixedBody(7)
        connection, recorder, reactor, transport = make_timed()
        connection.send_request(expecting(producer))
        transport.drain()
        transport.client.dataReceived(
            b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(["connected", "response", "complete"], recorder.names())
        reactor.advance(10)
        self.assertFalse(hasattr(producer, "consumer"))
        self.assertEqual(b"", transport.drain())
        self.assertTrue(transport.disconnecting)
        self.assertEqual(ConnectionState.CLOSING, connection.state)


class RequestTimeoutTests(SynchronousTestCase):
    """The per-request waits of `ClientRequest`, applied by send_request."""

    def test_response_head_timeout(self) -> None:
        """No head within response_head_timeout: aborted, on_response_timeout."""
        connection, recorder, reactor, transport = make_timed()
        connection.send_request(timed_get(response_head_timeout=5))
        reactor.advance(4.9)
        self.assertFalse(transport.disconnected)
        reactor.advance(0.1)
        self.assertTrue(transport.disconnected)
        transport.client.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(
            [("connected",), ("timeout", ResponseHeadTimeout, 5.0), ("closed",)],
            recorder.events,
        )
        self.assertEqual([], reactor.getDelayedCalls())

    def test_body_idle_timeout(self) -> None:
        """A body silent for body_idle_timeout: aborted, on_response_timeout."""
        connection, recorder, reactor, transport = make_timed()
        connection.send_request(timed_get(body_idle_timeout=3))
        transport.client.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
        reactor.advance(2)
        transport.client.dataReceived(b"cd")
        reactor.advance(2.9)
        self.assertFalse(transport.disconnected)
        reactor.advance(0.1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(
            ("timeout", BodyIdleTimeout, 3.0), recorder.events[-1], recorder.events
        )

    def test_paused_reading_does_not_count(self) -> None:
        """Time with reading paused by the receiver is not the server's delay."""
        connection, recorder, reactor, transport = make_timed()
        connection.send_request(timed_get(body_idle_timeout=3))
        transport.client.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
        connection.pause_reading()
        transport.client.dataReceived(b"abcdefghi")
        reactor.advance(100)
        self.assertNotIn("timeout", recorder.names())
        connection.resume_reading()
        self.assertEqual("complete", recorder.names()[-1])

    def test_default_waits_apply(self) -> None:
        """build_request's default response_head_timeout is ClientRequest's."""
        connection, recorder, reactor, _ = make_timed()
        connection.send_request(GET)
        reactor.advance(DEFAULT_RESPONSE_HEAD_TIMEOUT)
        self.assertEqual(
            ("timeout", ResponseHeadTimeout, DEFAULT_RESPONSE_HEAD_TIMEOUT),
            recorder.events[-1],
        )

    def test_none_waits_forever(self) -> None:
        """With both waits None nothing times the request out."""
        connection, recorder, reactor, transport = make_timed()
        connection.send_request(
            HTTPClientConnection.build_request(
                b"GET", b"/", response_head_timeout=None, body_idle_timeout=None
            )
        )
        reactor.advance(10_000)
        self.assertEqual([], reactor.getDelayedCalls())
        self.assertFalse(transport.disconnected)
        self.assertNotIn("timeout", recorder.names())

    def test_keep_alive_loop_keeps_one_timer(self) -> None:
        """Many requests on one connection leave one pending timer, none after close."""
        connection, recorder, reactor, transport = make_timed()
        for _ in range(50):
            connection.send_request(GET)
            reactor.advance(0.1)
            transport.client.dataReceived(OK)
        self.assertEqual(50, recorder.names().count("complete"))
        self.assertEqual(1, len(reactor.getDelayedCalls()))
        client = transport.client
        connection.close()
        client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([], reactor.getDelayedCalls())


class SharedExchangeRuleTests(SynchronousTestCase):
    """Rules the callback connection now shares with HTTP11ClientProtocol."""

    def test_bytes_after_early_response_close(self) -> None:
        """Bytes after an early response forbid reuse once the body is written."""
        producer = FixedBody(3)
        connection, _, _, transport = make()
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        producer.consumer.write(b"abc")
        transport.client.dataReceived(OK)
        transport.client.dataReceived(b"HTTP/1.1 200")
        producer.finish()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(ConnectionState.CLOSING, connection.state)

    def test_unasked_101_is_a_parse_error(self) -> None:
        """A 101 to a request that asked no upgrade is a parse error."""
        connection, recorder, _, transport = make()
        connection.send_request(GET)
        transport.client.dataReceived(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"
        )
        self.assertEqual(["connected", "parse_error"], recorder.names())
        self.assertTrue(transport.disconnected)


class IdleWhileSendingTests(SynchronousTestCase):
    """The idle timeout counts request body writes as I/O."""

    def test_body_writes_keep_the_connection(self) -> None:
        """A slow upload writing now and then is not idle; silence after it is."""
        producer = SlowBody()
        connection, _, reactor, transport = make(idle_timeout=10.0)
        connection.send_request(
            ClientRequest(b"PUT", b"/", Headers(), producer, persistent=True)
        )
        for _ in range(3):
            reactor.advance(6)
            producer.consumer.write(b"piece")
        reactor.advance(9.9)
        self.assertFalse(transport.disconnected)
        reactor.advance(0.1)
        self.assertTrue(transport.disconnected)


class LifecycleResponseTests(SynchronousTestCase):
    """What on_response gets."""

    def test_built_from_head_as_by_keywords(self) -> None:
        """response_for builds the same response as the keyword constructor."""
        parser = ResponseParser(Limits())
        parser.expect_response(b"HEAD")
        parser.feed(b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\nX: y\r\n\r\n")
        head = parser.next_event()
        assert isinstance(head, ResponseHead)
        built = response_for(b"HEAD", head, False)
        expected = LifecycleResponse(
            method=b"HEAD",
            version=b"HTTP/1.0",
            status=404,
            reason=b"Not Found",
            fields=head.fields,
            has_body=False,
            keeps_alive=head.keep_alive,
        )
        for name in LifecycleResponse.__slots__:
            self.assertEqual(getattr(expected, name), getattr(built, name), name)
        self.assertIs(LifecycleResponse, type(built))


class _ShortWrites(TCPConnection):
    """A TCP transport whose next ``writeSomeData`` answers are scripted."""

    script: list[int | Exception]

    def writeSomeData(self, data: bytes) -> int | ConnectionLost:
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                return ConnectionLost()
            return super().writeSomeData(data[:answer])
        return super().writeSomeData(data)


class _SocketEndpoint:
    """Connects the protocol to a Twisted TCP transport over ``sock``."""

    def __init__(
        self,
        sock: socket.socket,
        reactor: MemoryReactorClock,
        kind: type[TCPConnection],
    ) -> None:
        self.sock = sock
        self.reactor = reactor
        self.kind = kind
        self.transport: TCPConnection | None = None

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        assert protocol is not None
        transport = self.kind(self.sock, protocol, self.reactor)
        transport.connected = 1
        self.transport = transport
        protocol.makeConnection(transport)
        return succeed(protocol)


class WriteThroughTests(SynchronousTestCase):
    """
    Over a plain Twisted TCP transport with nothing buffered, request bytes
    go to the socket at once; otherwise they queue behind what is there.
    """

    def setUp(self) -> None:
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        self.addCleanup(client.close)
        self.peer, _ = listener.accept()
        self.addCleanup(self.peer.close)
        self.peer.setblocking(False)
        self.client_socket = client
        connection, _, _, strings = make()
        connection.send_request(GET)
        self.head = strings.value()

    def connect(
        self, kind: type[TCPConnection] = TCPConnection
    ) -> tuple[HTTPClientConnection, TCPConnection, MemoryReactorClock]:
        reactor = MemoryReactorClock()
        endpoint = _SocketEndpoint(self.client_socket, reactor, kind)
        connection = HTTPClientConnection(
            reactor,
            "example.com",
            80,
            Recorder(),
            endpoint=cast(IStreamClientEndpoint, endpoint),
        )
        connection.connect()
        assert endpoint.transport is not None
        return connection, endpoint.transport, reactor

    def received(self) -> bytes:
        try:
            return self.peer.recv(65536)
        except BlockingIOError:
            return b""

    def test_head_sent_at_once(self) -> None:
        """The head reaches the socket inside send_request; no write is pending."""
        connection, transport, reactor = self.connect()
        connection.send_request(GET)
        self.assertEqual(self.head, self.received())
        self.assertNotIn(transport, reactor.getWriters())
        self.assertEqual(b"", transport.dataBuffer)

    def test_buffered_bytes_go_first(self) -> None:
        """With bytes waiting in the transport, the head queues behind them."""
        connection, transport, reactor = self.connect()
        transport.write(b"earlier")
        connection.send_request(GET)
        self.assertEqual(b"", self.received())
        self.assertIn(transport, reactor.getWriters())
        transport.doWrite()
        self.assertEqual(b"earlier" + self.head, self.received())

    def test_rest_of_short_write_buffered(self) -> None:
        """What the kernel did not take is buffered, in order, after it."""
        connection, transport, reactor = self.connect(_ShortWrites)
        cast(_ShortWrites, transport).script = [5]
        connection.send_request(GET)
        self.assertEqual(self.head[:5], self.received())
        self.assertIn(transport, reactor.getWriters())
        transport.doWrite()
        self.assertEqual(self.head[5:], self.received())

    def test_send_error_takes_usual_path(self) -> None:
        """A failed direct send leaves the bytes to the transport, unraised."""
        connection, transport, reactor = self.connect(_ShortWrites)
        cast(_ShortWrites, transport).script = [ConnectionLost()]
        connection.send_request(GET)
        self.assertEqual(b"", self.received())
        self.assertIn(transport, reactor.getWriters())
        self.assertEqual(ConnectionState.RECEIVING, connection.state)
