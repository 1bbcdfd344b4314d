# -*- test-case-name: txhttp.test.test_client_writethrough -*-
"""
Tests for `txhttp.client._writethrough` and its use by
`HTTP11ClientProtocol`.

The unit tests drive a real `twisted.internet.tcp.Connection` over a
connected pair of sockets on 127.0.0.1 with a `MemoryReactorClock` (nothing
runs on its own: the test calls ``doWrite``, or advances the clock to end a
turn); the loopback tests run the `Agent` against a ``twisted.web`` server on
the global reactor.
"""

from __future__ import annotations

import socket
from typing import cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults
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
from txhttp.client._request import ClientRequest
from txhttp.client._response import Response
from txhttp.client._writethrough import (
    BusyConnections,
    TurnBatch,
    TurnEndConsumer,
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


def _untimed(
    method: bytes = b"GET", uri: bytes = b"/", body: IBodyProducer | None = None
) -> ClientRequest:
    """`make_request` without response timers (only turn ends on the clock)."""
    return make_request(
        method, uri, body=body, response_head_timeout=None, body_idle_timeout=None
    )


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

    def test_aborted(self) -> None:
        """A transport being aborted sends nothing more."""
        transport, _, _ = _transport(self)
        transport.abortConnection()
        self.assertFalse(sends_now(transport))

    def test_missing_private_attributes(self) -> None:
        """Without any one of Twisted's private attributes it says no."""
        complete = {
            "_aborting": False,
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

    def test_second_busy_protocol_sends_at_turn_end(self) -> None:
        """
        While another protocol on the clock is busy, a request without a body
        is held until the clock's turn ends, then written through.
        """
        clock = MemoryReactorClock()
        first, first_sockets, _ = self.connect(clock)
        second, second_sockets, reactor = self.connect(clock)
        first.request(_untimed())
        self.assertTrue(first_sockets.received().startswith(b"GET / "))
        self.assertEqual([], clock.getDelayedCalls())
        second.request(_untimed())
        self.assertEqual(b"", second_sockets.received())
        transport = second.transport
        self.assertNotIn(transport, reactor.getWriters())
        (turn_end,) = clock.getDelayedCalls()
        self.assertEqual(0, turn_end.getTime() - clock.seconds())
        clock.advance(0)
        self.assertEqual(
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", second_sockets.received()
        )
        self.assertNotIn(transport, reactor.getWriters())

    def test_busy_protocols_share_one_turn_end(self) -> None:
        """Heads held by several protocols in one turn go out in one call."""
        clock = MemoryReactorClock()
        first, _, _ = self.connect(clock)
        first.request(_untimed())
        others = [self.connect(clock) for _ in range(3)]
        for protocol, _, _ in others:
            protocol.request(_untimed(uri=b"/%d" % (id(protocol),)))
        self.assertEqual(1, len(clock.getDelayedCalls()))
        self.assertEqual([b""] * 3, [sockets.received() for _, sockets, _ in others])
        clock.advance(0)
        for protocol, sockets, _ in others:
            self.assertTrue(
                sockets.received().startswith(b"GET /%d HTTP/1.1\r\n" % (id(protocol),))
            )
        self.assertEqual([], clock.getDelayedCalls())

    def test_busy_protocol_with_body_buffers(self) -> None:
        """A request with a body, while others are busy, takes the usual path."""
        clock = MemoryReactorClock()
        first, _, _ = self.connect(clock)
        second, second_sockets, reactor = self.connect(clock)
        first.request(_untimed())
        body = ManualProducer(length=3)
        second.request(_untimed(b"POST", body=body))
        transport = cast(TCPConnection, second.transport)
        self.assertIn(transport, reactor.getWriters())
        self.assertEqual([], clock.getDelayedCalls())
        body.write(b"abc")
        body.finish()
        transport.doWrite()
        self.assertEqual(
            b"POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc",
            second_sockets.received(),
        )

    def held_request(
        self,
    ) -> tuple[HTTP11ClientProtocol, _Sockets, Deferred[Response], MemoryReactorClock]:
        """A second protocol's request, held while a first one is busy."""
        clock = MemoryReactorClock()
        first, _, _ = self.connect(clock)
        second, second_sockets, _ = self.connect(clock)
        first.request(_untimed())
        return second, second_sockets, second.request(_untimed()), clock

    def test_aborted_protocol_sends_nothing_held(self) -> None:
        """Aborting a protocol drops the head it held for the turn's end."""
        second, second_sockets, requested, clock = self.held_request()
        turn_end = second._turn_end
        assert turn_end is not None
        self.assertTrue(turn_end.holds())
        second.abort()
        self.assertFalse(turn_end.holds())
        clock.advance(0)
        self.assertEqual(b"", second_sockets.received())
        self.failureResultOf(requested)

    def test_lost_protocol_held_head_ignored(self) -> None:
        """A connection lost before its turn ends takes its held head quietly."""
        second, second_sockets, requested, clock = self.held_request()
        transport = cast(TCPConnection, second.transport)
        transport.connected = 0
        second.connectionLost(Failure(ConnectionLost()))
        clock.advance(0)
        self.assertEqual(b"", second_sockets.received())
        self.failureResultOf(requested, ResponseNeverReceived)


class _Failing(TurnEndConsumer):
    """A consumer whose flush fails."""

    def flush(self) -> None:
        """Fail."""
        raise ValueError("flush failed")


class TurnEndTests(SynchronousTestCase):
    """`TurnEndConsumer` holds writes for its `TurnBatch`'s end of turn."""

    def consumer(
        self, clock: MemoryReactorClock | None = None, batch: TurnBatch | None = None
    ) -> tuple[TurnEndConsumer, TCPConnection, _Sockets, MemoryReactorClock]:
        transport, sockets, _ = _transport(self)
        clock = clock or MemoryReactorClock()
        return (
            TurnEndConsumer(transport, clock, batch or TurnBatch()),
            transport,
            sockets,
            clock,
        )

    def test_writes_held_then_joined(self) -> None:
        """Writes in one turn are held, then sent in order in one write."""
        consumer, transport, sockets, clock = self.consumer()
        consumer.write(b"GET / ")
        consumer.write(b"HTTP/1.1\r\n\r\n")
        self.assertTrue(consumer.holds())
        self.assertEqual(b"", sockets.received())
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertFalse(consumer.holds())
        self.assertEqual(b"GET / HTTP/1.1\r\n\r\n", sockets.received())
        self.assertEqual(0, transport._tempDataLen)

    def test_behind_buffered_bytes(self) -> None:
        """At the turn's end, held bytes queue behind what the transport holds."""
        consumer, transport, sockets, clock = self.consumer()
        consumer.write(b"later")
        transport.write(b"earlier ")
        clock.advance(0)
        self.assertEqual(b"", sockets.received())
        transport.doWrite()
        self.assertEqual(b"earlier later", sockets.received())

    def test_discard(self) -> None:
        """Discarded bytes are never sent; the turn's end does nothing."""
        consumer, _, sockets, clock = self.consumer()
        consumer.write(b"x")
        consumer.discard()
        self.assertFalse(consumer.holds())
        clock.advance(0)
        self.assertEqual(b"", sockets.received())

    def test_next_turn_holds_again(self) -> None:
        """After a turn's end, the next write starts holding for the next one."""
        consumer, _, sockets, clock = self.consumer()
        consumer.write(b"a")
        clock.advance(0)
        consumer.write(b"b")
        self.assertEqual(b"a", sockets.received())
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertEqual(b"b", sockets.received())

    def test_producer_flushes_then_goes_through(self) -> None:
        """
        Registering a producer writes what is held first; its writes go through
        at once (the transport's flow control sees them); unregistering it
        brings holding back.
        """
        consumer, transport, sockets, clock = self.consumer()
        consumer.write(b"head;")
        producer = ManualProducer()
        consumer.registerProducer(producer, True)
        self.assertIs(producer, transport.producer)
        self.assertEqual(b"head;", sockets.received())
        consumer.write(b"body;")
        self.assertEqual(b"body;", sockets.received())
        consumer.unregisterProducer()
        self.assertIsNone(transport.producer)
        consumer.write(b"next;")
        self.assertEqual(b"", sockets.received())
        clock.advance(0)
        self.assertEqual(b"next;", sockets.received())

    def test_one_call_per_turn_for_a_batch(self) -> None:
        """Consumers sharing a batch share its one call, in the order they held."""
        clock = MemoryReactorClock()
        batch = TurnBatch()
        first, _, first_sockets, _ = self.consumer(clock, batch)
        second, _, second_sockets, _ = self.consumer(clock, batch)
        second.write(b"2")
        first.write(b"1")
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertEqual(
            (b"1", b"2"), (first_sockets.received(), second_sockets.received())
        )

    def test_failing_consumer_does_not_stop_others(self) -> None:
        """One consumer failing at the turn's end is logged; the others write."""
        clock = MemoryReactorClock()
        batch = TurnBatch()
        transport, _, _ = _transport(self)
        failing = _Failing(transport, clock, batch)
        other, _, other_sockets, _ = self.consumer(clock, batch)
        failing.write(b"x")
        other.write(b"y")
        clock.advance(0)
        self.assertEqual(b"y", other_sockets.received())
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_busy_count_carries_the_batch(self) -> None:
        """The protocols on one clock share one batch."""
        clock = MemoryReactorClock()
        self.assertIsInstance(busy_for(clock).batch, TurnBatch)
        self.assertIs(busy_for(clock).batch, busy_for(clock).batch)


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

    async def test_concurrent_requests_intact(self) -> None:
        """Many requests in flight at once (heads held for the turn's end) all
        get their own answers."""
        held: list[int] = []
        real = TurnEndConsumer.write

        def counting(consumer: TurnEndConsumer, data: bytes) -> None:
            held.append(len(data))
            real(consumer, data)

        self.patch(TurnEndConsumer, "write", counting)
        methods = [b"GET", b"DELETE", b"GET", b"HEAD", b"GET", b"OPTIONS"] * 3

        async def one(method: bytes) -> tuple[bytes, bytes]:
            response = await self.agent.request(method, self.url)
            body = await readBody(response)
            return method, body

        for _ in range(2):  # the second round reuses the pooled connections
            answers = await gatherResults(
                [Deferred.fromCoroutine(one(method)) for method in methods]
            )
            for method, body in answers:
                if method == b"HEAD":
                    self.assertEqual(b"", body)
                else:
                    self.assertEqual(method, body.split(b" ")[1])
        self.assertTrue(held)
