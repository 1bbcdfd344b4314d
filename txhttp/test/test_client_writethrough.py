# -*- test-case-name: txhttp.test.test_client_writethrough -*-
"""
Tests for `txhttp.client._writethrough` and its use by
`HTTP11ClientProtocol`.

The unit tests drive a real `twisted.internet.tcp.Connection` over a
connected pair of sockets on 127.0.0.1 with a `MemoryReactorClock` (nothing
runs on its own: the test calls ``doWrite``); the loopback tests run the
`Agent` against a ``twisted.web`` server on the global reactor.
"""

from __future__ import annotations

import socket
from typing import cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import (
    IConsumer,
    IListeningPort,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.protocol import Protocol
from twisted.internet.tcp import Connection as TCPConnection
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from txhttp.client import (
    Agent,
    BytesBodyProducer,
    HTTPConnectionPool,
    ResponseNeverReceived,
    _writethrough,
)
from txhttp.client._pool import _ReadSizingProtocol
from txhttp.client._protocol import HTTP11ClientProtocol
from txhttp.client._writethrough import (
    BusyConnections,
    WriteThroughConsumer,
    busy_for,
    sends_now,
    write_through,
)
from txhttp.test.test_client_protocol import ManualProducer, make_request


class _ScriptedSends(TCPConnection):
    """A TCP transport whose next ``writeSomeData`` answers are scripted."""

    script: list[int | Exception]

    def writeSomeData(self, data: bytes) -> int | ConnectionLost:
        """Take ``script``'s next count of bytes, or return a lost connection."""
        script = getattr(self, "script", [])
        if script:
            answer = script.pop(0)
            if isinstance(answer, Exception):
                return ConnectionLost()
            return super().writeSomeData(data[:answer])
        return super().writeSomeData(data)


class _Sockets:
    """A connected pair of sockets on 127.0.0.1: ours and the peer's."""

    def __init__(self, case: SynchronousTestCase) -> None:
        listener = socket.socket()
        case.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.ours = socket.create_connection(listener.getsockname())
        case.addCleanup(self.ours.close)
        self.peer, _ = listener.accept()
        case.addCleanup(self.peer.close)
        self.peer.setblocking(False)

    def received(self) -> bytes:
        """Everything the peer can read now."""
        pieces = []
        while True:
            try:
                piece = self.peer.recv(1 << 20)
            except BlockingIOError:
                break
            if not piece:
                break
            pieces.append(piece)
        return b"".join(pieces)


def _transport(
    case: SynchronousTestCase,
    protocol: Protocol | None = None,
    kind: type[TCPConnection] = TCPConnection,
) -> tuple[TCPConnection, _Sockets, MemoryReactorClock]:
    """A connected Twisted TCP transport on a fresh socket pair."""
    sockets = _Sockets(case)
    reactor = MemoryReactorClock()
    transport = kind(sockets.ours, protocol or Protocol(), reactor)
    transport.connected = 1
    return transport, sockets, reactor


class _Bare:
    """A stand-in with only the public attributes of a TCP transport."""

    connected = 1
    disconnecting = False
    TLS = False


class SendsNowTests(SynchronousTestCase):
    """`sends_now` says yes only for an open, plain, idle TCP transport."""

    def test_idle_plain_open(self) -> None:
        """An open TCP transport with nothing buffered sends now."""
        transport, _, _ = _transport(self)
        self.assertTrue(sends_now(transport))

    def test_queued_writes(self) -> None:
        """Bytes queued by ``write`` rule it out."""
        transport, _, _ = _transport(self)
        transport.write(b"x")
        self.assertFalse(sends_now(transport))

    def test_partly_sent_buffer(self) -> None:
        """A buffer still being sent (``offset`` short of its end) rules it out."""
        transport, _, _ = _transport(self)
        transport.dataBuffer = b"abc"
        transport.offset = 1
        self.assertFalse(sends_now(transport))
        transport.offset = 3
        self.assertTrue(sends_now(transport))

    def test_tls(self) -> None:
        """A transport that started TLS is written the usual way."""
        transport, _, _ = _transport(self)
        transport.TLS = True
        self.assertFalse(sends_now(transport))

    def test_disconnecting(self) -> None:
        """A transport closing down is written the usual way."""
        transport, _, _ = _transport(self)
        transport.disconnecting = True
        self.assertFalse(sends_now(transport))

    def test_not_connected(self) -> None:
        """A transport not (or no longer) connected is written the usual way."""
        transport, _, _ = _transport(self)
        transport.connected = 0
        self.assertFalse(sends_now(transport))

    def test_write_side_shut(self) -> None:
        """A transport whose write side was shut is written the usual way."""
        transport, _, _ = _transport(self)
        transport._writeDisconnected = True
        self.assertFalse(sends_now(transport))

    def test_missing_private_attributes(self) -> None:
        """Without any one of Twisted's private attributes it says no."""
        complete = {
            "_tempDataLen": 0,
            "_writeDisconnected": False,
            "dataBuffer": b"",
            "offset": 0,
        }
        bare = _Bare()
        for name, value in complete.items():
            setattr(bare, name, value)
        self.assertTrue(sends_now(cast(TCPConnection, bare)))
        for missing in complete:
            bare = _Bare()
            for name, value in complete.items():
                if name != missing:
                    setattr(bare, name, value)
            self.assertFalse(sends_now(cast(TCPConnection, bare)), missing)


class WriteThroughTests(SynchronousTestCase):
    """`write_through` sends what it can now and buffers the rest in order."""

    def test_all_sent_at_once(self) -> None:
        """The kernel takes everything: nothing is buffered or scheduled."""
        transport, sockets, reactor = _transport(self)
        write_through(transport, b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(b"GET / HTTP/1.1\r\n\r\n", sockets.received())
        self.assertNotIn(transport, reactor.getWriters())
        self.assertEqual(0, transport._tempDataLen)

    def test_partial_send_rest_buffered(self) -> None:
        """What the kernel did not take is buffered and follows in order."""
        transport, sockets, reactor = _transport(self, kind=_ScriptedSends)
        cast(_ScriptedSends, transport).script = [4]
        write_through(transport, b"0123456789")
        self.assertEqual(b"0123", sockets.received())
        self.assertIn(transport, reactor.getWriters())
        write_through(transport, b"abc")  # queues behind the rest
        self.assertEqual(b"", sockets.received())
        transport.doWrite()
        self.assertEqual(b"456789abc", sockets.received())

    def test_error_result_takes_usual_path(self) -> None:
        """An error from ``writeSomeData`` is not raised; the bytes are buffered."""
        transport, sockets, reactor = _transport(self, kind=_ScriptedSends)
        cast(_ScriptedSends, transport).script = [ConnectionLost()]
        write_through(transport, b"head")
        self.assertEqual(b"", sockets.received())
        self.assertIn(transport, reactor.getWriters())
        transport.doWrite()
        self.assertEqual(b"head", sockets.received())

    def test_earlier_bytes_go_first(self) -> None:
        """With bytes already buffered, new ones queue behind them."""
        transport, sockets, _ = _transport(self)
        transport.write(b"earlier ")
        write_through(transport, b"later")
        self.assertEqual(b"", sockets.received())
        transport.doWrite()
        self.assertEqual(b"earlier later", sockets.received())


class WriteThroughConsumerTests(SynchronousTestCase):
    """`WriteThroughConsumer` writes through and leaves producers to the transport."""

    def test_write_goes_through(self) -> None:
        """A write reaches the socket at once."""
        transport, sockets, reactor = _transport(self)
        WriteThroughConsumer(transport).write(b"hello")
        self.assertEqual(b"hello", sockets.received())
        self.assertNotIn(transport, reactor.getWriters())

    def test_producer_registered_with_transport(self) -> None:
        """``registerProducer`` and ``unregisterProducer`` reach the transport."""
        transport, _, _ = _transport(self)
        consumer = WriteThroughConsumer(transport)
        producer = ManualProducer()
        consumer.registerProducer(producer, True)
        self.assertIs(producer, transport.producer)
        self.assertTrue(transport.streamingProducer)
        consumer.unregisterProducer()
        self.assertIsNone(transport.producer)

    def test_transport_flow_control_reaches_producer(self) -> None:
        """A producer registered through it is paused when the buffer fills."""
        transport, _, _ = _transport(self, kind=_ScriptedSends)
        cast(_ScriptedSends, transport).script = [0]
        transport.bufferSize = 4
        consumer = WriteThroughConsumer(transport)
        producer = ManualProducer()
        consumer.registerProducer(producer, True)
        consumer.write(b"more than four bytes")
        self.assertEqual(["pause"], producer.calls)


class ProtocolConsumerTests(SynchronousTestCase):
    """`HTTP11ClientProtocol` writes through only over a plain TCP transport."""

    def test_tcp_transport_wrapped(self) -> None:
        """Over a TCP transport the request goes to the socket inside request()."""
        protocol = HTTP11ClientProtocol(clock=MemoryReactorClock())
        transport, sockets, reactor = _transport(self, protocol)
        protocol.makeConnection(transport)
        self.assertIsInstance(protocol._write_through, WriteThroughConsumer)
        protocol.request(make_request())
        self.assertEqual(
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", sockets.received()
        )
        self.assertNotIn(transport, reactor.getWriters())

    def test_pool_protocol_wrapped(self) -> None:
        """The pool's read-sizing protocol also writes through."""
        protocol = _ReadSizingProtocol(
            lambda _: None,
            clock=MemoryReactorClock(),
            limits=None,
            max_read_bytes=1 << 20,
        )
        transport, sockets, _ = _transport(self, protocol)
        protocol.makeConnection(transport)
        self.assertIsInstance(protocol._write_through, WriteThroughConsumer)
        protocol.request(make_request())
        self.assertTrue(sockets.received().startswith(b"GET / HTTP/1.1\r\n"))

    def test_other_transport_kept(self) -> None:
        """Any other transport (here a StringTransport) is written to as it is."""
        protocol = HTTP11ClientProtocol(clock=MemoryReactorClock())
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertIsNone(protocol._write_through)
        protocol.request(make_request())
        self.assertTrue(transport.value().startswith(b"GET / HTTP/1.1\r\n"))

    def test_body_producer_reaches_transport(self) -> None:
        """A request body's writer is registered with the TCP transport itself."""
        protocol = HTTP11ClientProtocol(clock=MemoryReactorClock())
        transport, sockets, _ = _transport(self, protocol)
        protocol.makeConnection(transport)
        body = ManualProducer()
        protocol.request(make_request(b"POST", body=body))
        self.assertIsNotNone(transport.producer)
        body.write(b"abc")
        body.finish()
        self.assertIsNone(transport.producer)
        self.assertEqual(
            b"POST / HTTP/1.1\r\nHost: example.com\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            sockets.received(),
        )


class BusyGateTests(SynchronousTestCase):
    """With several busy protocols on one clock, requests take the usual path."""

    def connect(
        self, clock: MemoryReactorClock
    ) -> tuple[HTTP11ClientProtocol, _Sockets, MemoryReactorClock]:
        protocol = HTTP11ClientProtocol(clock=clock)
        transport, sockets, reactor = _transport(self, protocol)
        protocol.makeConnection(transport)
        return protocol, sockets, reactor

    def test_busy_for_shared_per_clock(self) -> None:
        """One count per clock; a clock without weak references gets its own."""
        clock = MemoryReactorClock()
        self.assertIs(busy_for(clock), busy_for(clock))
        self.assertIsNot(busy_for(clock), busy_for(MemoryReactorClock()))
        self.assertIsInstance(busy_for(1), BusyConnections)
        self.assertIsNot(busy_for(1), busy_for(1))

    def test_count_follows_the_exchange(self) -> None:
        """A protocol counts as busy from request() to the response's end."""
        clock = MemoryReactorClock()
        protocol, _, _ = self.connect(clock)
        self.assertEqual(0, busy_for(clock).count)
        protocol.request(make_request())
        self.assertEqual(1, busy_for(clock).count)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(0, busy_for(clock).count)
        lost = protocol.request(make_request())
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(0, busy_for(clock).count)
        self.failureResultOf(lost, ResponseNeverReceived)

    def test_second_busy_protocol_buffers(self) -> None:
        """While another protocol on the clock is busy, the request is buffered."""
        clock = MemoryReactorClock()
        first, first_sockets, _ = self.connect(clock)
        second, second_sockets, reactor = self.connect(clock)
        first.request(make_request())
        self.assertTrue(first_sockets.received().startswith(b"GET / "))
        second.request(make_request())
        self.assertEqual(b"", second_sockets.received())
        transport = second.transport
        self.assertIn(transport, reactor.getWriters())
        cast(TCPConnection, transport).doWrite()
        self.assertTrue(second_sockets.received().startswith(b"GET / "))


@implementer(IBodyProducer)
class _Streaming:
    """A chunked body written one piece per turn of ``clock``."""

    length = UNKNOWN_LENGTH

    def __init__(self, pieces: list[bytes], clock: IReactorTime):
        self._pieces = list(pieces)
        self._clock = clock
        self.consumer: IConsumer | None = None
        self._done: Deferred[None] = Deferred()

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Write to ``consumer``, one piece per turn."""
        self.consumer = consumer
        self._clock.callLater(0, self._next)
        return self._done

    def _next(self) -> None:
        if not self._pieces:
            self.finish()
            return
        assert self.consumer is not None
        self.consumer.write(self._pieces.pop(0))
        self._clock.callLater(0, self._next)

    def finish(self) -> None:
        """The body is complete."""
        self._done.callback(None)

    def pauseProducing(self) -> None:
        """Pieces are small; nothing to pause."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""


class _Echo(Resource):
    """Answers with the client port, the method and the request body."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        """Echo the request back."""
        content = request.content
        assert content is not None
        body = content.read()
        peer = request.getClientAddress()
        assert isinstance(peer, IPv4Address)
        return b"%d %s %s" % (peer.port, request.method, body)


class LoopbackTests(TestCase):
    """The Agent over real sockets: write-through keeps every byte in order."""

    timeout = 20

    def setUp(self) -> None:
        self.port: IListeningPort = cast(IReactorTCP, _global_reactor).listenTCP(
            0,
            Site(_Echo()),  # type: ignore[arg-type]  # Site is a ServerFactory
            interface="127.0.0.1",
        )
        self.addCleanup(self.port.stopListening)
        clock = cast(IReactorTime, _global_reactor)
        self.pool = HTTPConnectionPool(clock)
        self.addCleanup(self.pool.closeCachedConnections)
        self.agent = Agent(clock, pool=self.pool)
        number: int = self.port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
        self.url = b"http://127.0.0.1:%d/" % (number,)
        self.through: list[int] = []
        real = _writethrough.write_through

        def counting(transport: TCPConnection, data: bytes) -> None:
            self.through.append(len(data))
            real(transport, data)

        self.patch(_writethrough, "write_through", counting)

    async def fetch(self, method: bytes, body: IBodyProducer | None) -> bytes:
        """One request; the response body."""
        response = await self.agent.request(
            method, self.url, Headers({b"X-Test": [b"1"]}), body
        )
        self.assertEqual(200, response.code)
        return await readBody(response)

    async def test_keep_alive_requests_intact(self) -> None:
        """Requests with and without bodies, big and streamed, arrive intact."""
        big = bytes(range(256)) * 16384  # 4 MiB: the kernel takes only part
        pieces = [b"piece-%d;" % i for i in range(50)]
        streaming = _Streaming(pieces, cast(IReactorTime, _global_reactor))
        plan: list[tuple[bytes, IBodyProducer | None, bytes]] = [
            (b"GET", None, b""),
            (b"POST", BytesBodyProducer(b"small body"), b"small body"),
            (b"PUT", BytesBodyProducer(big), big),
            (b"POST", streaming, b"".join(pieces)),
            (b"GET", None, b""),
            (b"POST", BytesBodyProducer(b""), b""),
        ]
        ports = set()
        for method, body, expected in plan:
            answer = await self.fetch(method, body)
            port, got_method, got_body = answer.split(b" ", 2)
            self.assertEqual((method, expected), (got_method, got_body))
            ports.add(port)
        self.assertEqual(1, len(ports))  # one keep-alive connection throughout
        self.assertTrue(self.through)
        self.assertGreater(max(self.through), len(big))  # head + body, one write
