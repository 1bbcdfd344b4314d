# -*- test-case-name: txhttp.test.test_client_download -*-
"""
Tests for large downloads: the receive low-water mark of the pool's
connections (`ReadLowWater`, `HTTPConnectionPool.read_low_water`) and the
body-bytes count it is capped by (``body_bytes_to_receive``).

Unit tests are deterministic: a fake socket records the options set on it
and time is a `Clock`. One class of integration tests runs the real pool
over TCP on 127.0.0.1 against a small Twisted server, each test bounded by
``timeout`` and leaving the reactor clean.
"""

from __future__ import annotations

import socket
import sys
from typing import Any, cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import readBody
from twisted.web.http_headers import Headers

from txhttp._wire import ResponseParser
from txhttp.client import Agent, _pool
from txhttp.client._errors import BodyIdleTimeout, ResponseFailed
from txhttp.client._lowat import (
    DEFAULT_READ_LOW_WATER,
    DEFAULT_READ_LOW_WATER_DELAY,
    ReadLowWater,
    low_water_socket,
    prepare_allocator,
)
from txhttp.client._pool import HTTPConnectionPool, PoolKey
from txhttp.client._request import ClientRequest
from txhttp.client._response import Response
from txhttp.test.test_client_pool import FakeSocketTransport, SocketEndpoint

KEY = PoolKey("http", "a.example", 80)
LOWAT = (socket.SOL_SOCKET, getattr(socket, "SO_RCVLOWAT", 18))
RCVBUF = (socket.SOL_SOCKET, socket.SO_RCVBUF)
MIB = 1024 * 1024


class FakeSocket:
    """Records ``SO_RCVLOWAT`` settings; answers ``SO_RCVBUF`` from `rcvbuf`."""

    def __init__(self, rcvbuf: int = 8 * MIB) -> None:
        self.rcvbuf = rcvbuf
        self.marks: list[int] = []
        self.buffer_queries = 0
        self.refuse = False

    def setsockopt(self, level: int, option: int, value: int, /) -> None:
        """Record a low-water mark (the only option set)."""
        if self.refuse:
            raise OSError(9, "Bad file descriptor")
        assert (level, option) == LOWAT, (level, option)
        self.marks.append(value)

    def getsockopt(self, level: int, option: int, /) -> int:
        """Answer the receive buffer size (the only option read)."""
        if self.refuse:
            raise OSError(9, "Bad file descriptor")
        assert (level, option) == RCVBUF, (level, option)
        self.buffer_queries += 1
        return self.rcvbuf

    @property
    def mark(self) -> int:
        """The mark in effect (1 when none was set)."""
        return self.marks[-1] if self.marks else 1


class ReadLowWaterTests(SynchronousTestCase):
    """`ReadLowWater` raises, caps and drops the mark as documented."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.sock = FakeSocket()

    def make(self, most: int = MIB, delay: float = 0.01) -> ReadLowWater:
        """A `ReadLowWater` on the fake socket and clock."""
        return ReadLowWater(self.sock, self.clock, most=most, delay=delay)

    def test_defaults(self) -> None:
        """The defaults are 512 KiB and 10 ms."""
        self.assertEqual(DEFAULT_READ_LOW_WATER, 512 * 1024)
        self.assertEqual(DEFAULT_READ_LOW_WATER_DELAY, 0.01)

    def test_invalid(self) -> None:
        """A mark of 1 or less, or a delay that is not positive, is refused."""
        with self.assertRaises(ValueError):
            self.make(most=1)
        with self.assertRaises(ValueError):
            self.make(delay=0)

    def test_raised_to_most(self) -> None:
        """With plenty to come and a big buffer, the mark goes to ``most``."""
        low = self.make()
        low.after_read(100 * MIB, None)
        self.assertEqual(self.sock.marks, [MIB])
        self.assertEqual(low.mark, MIB)

    def test_capped_at_bytes_to_come(self) -> None:
        """The mark never exceeds the body bytes not received yet."""
        low = self.make()
        low.after_read(MIB + 5, None)
        low.after_read(300_000, None)
        low.after_read(2, None)
        self.assertEqual(self.sock.marks, [MIB, 300_000, 2])

    def test_least(self) -> None:
        """Fewer bytes to come than ``least``, or room for them, sets no mark."""
        low = ReadLowWater(self.sock, self.clock, most=MIB, least=1000, delay=0.01)
        low.after_read(999, None)
        self.assertEqual(self.sock.marks, [])
        low.after_read(MIB, None)
        low.after_read(999, None)
        self.assertEqual(self.sock.marks, [MIB, 1])
        self.sock.rcvbuf = 1998
        fresh = ReadLowWater(self.sock, self.clock, most=MIB, least=1000, delay=0.01)
        fresh.after_read(MIB, None)
        self.assertEqual(self.sock.marks, [MIB, 1])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        with self.assertRaises(ValueError):
            ReadLowWater(self.sock, self.clock, most=MIB, least=1, delay=0.01)

    def test_capped_at_half_the_buffer(self) -> None:
        """The mark stays within half of SO_RCVBUF, asked again as it grows."""
        self.sock.rcvbuf = 600_000
        low = self.make()
        low.after_read(100 * MIB, None)
        self.assertEqual(low.mark, 300_000)
        low.after_read(99 * MIB, None)
        self.assertEqual(self.sock.buffer_queries, 2)
        self.sock.rcvbuf = 4 * MIB
        low.after_read(98 * MIB, None)
        self.assertEqual(self.sock.marks, [300_000, MIB])
        low.after_read(97 * MIB, None)
        self.assertEqual(self.sock.buffer_queries, 3)

    def test_unchanged_mark_not_set_again(self) -> None:
        """Reads that keep the same mark make no system call."""
        low = self.make()
        for left in (90 * MIB, 80 * MIB, 70 * MIB):
            low.after_read(left, None)
        self.assertEqual(self.sock.marks, [MIB])
        self.assertEqual(self.sock.buffer_queries, 1)

    def test_dropped_when_nothing_known_to_come(self) -> None:
        """No known body bytes to come (or one) puts the mark back to 1."""
        for to_come in (None, 0, 1):
            low = self.make()
            low.after_read(10 * MIB, None)
            low.after_read(to_come, None)
            self.assertEqual(low.mark, 1)
            self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.sock.marks, [MIB, 1] * 3)

    def test_nothing_to_do_at_one(self) -> None:
        """At mark 1, a read with nothing to come sets nothing, arms nothing."""
        low = self.make()
        low.after_read(None, None)
        self.assertEqual(self.sock.marks, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_slow_sender(self) -> None:
        """No read for ``delay`` after the last one puts the mark back to 1."""
        low = self.make(delay=0.01)
        low.after_read(10 * MIB, None)
        self.clock.advance(0.006)
        low.after_read(9 * MIB, None)  # still streaming: waits from here
        self.clock.advance(0.006)
        self.assertEqual(low.mark, MIB)
        self.clock.advance(0.004)
        self.assertEqual(self.sock.marks, [MIB, 1])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        low.after_read(8 * MIB, None)  # streaming again
        self.assertEqual(self.sock.marks, [MIB, 1, MIB])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_idle_timeout_caps_the_wait(self) -> None:
        """The wait is at most half the body idle timeout."""
        low = self.make(delay=10.0)
        low.after_read(10 * MIB, 1.0)
        self.clock.advance(0.49)
        self.assertEqual(low.mark, MIB)
        self.clock.advance(0.01)
        self.assertEqual(low.mark, 1)

    def test_lower(self) -> None:
        """`lower` puts the mark back to 1 and cancels the timer."""
        low = self.make()
        low.after_read(10 * MIB, None)
        low.lower()
        self.assertEqual(self.sock.marks, [MIB, 1])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop(self) -> None:
        """`stop` cancels the timer and never touches the socket again."""
        low = self.make()
        low.after_read(10 * MIB, None)
        low.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        low.after_read(10 * MIB, None)
        self.assertEqual(self.sock.marks, [MIB])
        self.assertEqual(low.mark, 1)

    def test_refused_setsockopt(self) -> None:
        """A socket that refuses the option turns the mark off for good."""
        low = self.make()
        low.after_read(10 * MIB, None)
        self.sock.refuse = True
        low.after_read(100, None)
        self.assertEqual(low.mark, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.sock.refuse = False
        low.after_read(10 * MIB, None)
        self.assertEqual(self.sock.marks, [MIB])

    def test_refused_getsockopt(self) -> None:
        """A socket whose buffer size cannot be read never gets a mark."""
        self.sock.refuse = True
        low = self.make()
        low.after_read(10 * MIB, None)
        self.sock.refuse = False
        low.after_read(10 * MIB, None)
        self.assertEqual(self.sock.marks, [])
        self.assertEqual(low.mark, 1)


class _Holder:
    """A transport-like object with a ``socket`` attribute."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock


class LowWaterSocketTests(SynchronousTestCase):
    """`low_water_socket` finds TCP sockets on Linux and nothing else."""

    def test_tcp(self) -> None:
        """An IPv4 TCP socket under a transport is returned (on Linux)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            found = low_water_socket(_Holder(sock))
        if sys.platform.startswith("linux") and hasattr(socket, "SO_RCVLOWAT"):
            self.assertIs(found, sock)
        else:
            self.assertIsNone(found)

    def test_unix(self) -> None:
        """A UNIX socket (its readiness ignores the mark) is left alone."""
        left, right = socket.socketpair()
        self.addCleanup(left.close)
        self.addCleanup(right.close)
        self.assertIsNone(low_water_socket(_Holder(left)))

    def test_udp(self) -> None:
        """A datagram socket is left alone."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            self.assertIsNone(low_water_socket(_Holder(sock)))

    def test_no_socket(self) -> None:
        """A transport without a socket (TLS, in memory) is left alone."""
        self.assertIsNone(low_water_socket(StringTransport()))


class PrepareAllocatorTests(SynchronousTestCase):
    """`prepare_allocator` runs once per size and larger size."""

    def test_once_per_size(self) -> None:
        """A size no larger than one prepared before is not prepared again."""
        self.patch(_pool_lowat(), "_prepared_read_bytes", 0)
        prepare_allocator(MIB)
        self.assertEqual(_pool_lowat()._prepared_read_bytes, MIB)
        prepare_allocator(1000)
        self.assertEqual(_pool_lowat()._prepared_read_bytes, MIB)
        prepare_allocator(2 * MIB)
        self.assertEqual(_pool_lowat()._prepared_read_bytes, 2 * MIB)


def _pool_lowat() -> Any:
    """The `txhttp.client._lowat` module, for patching its state."""
    from txhttp.client import _lowat

    return _lowat


class BodyBytesToReceiveTests(SynchronousTestCase):
    """``body_bytes_to_receive`` counts a Content-Length body's missing bytes."""

    def test_length_body(self) -> None:
        """Fed bytes count as received, whether or not taken as events."""
        parser = ResponseParser()
        self.assertIsNone(parser.body_bytes_to_receive())
        parser.expect_response(b"GET")
        self.assertIsNone(parser.body_bytes_to_receive())
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        parser.next_event()
        self.assertEqual(parser.body_bytes_to_receive(), 7)
        self.assertEqual(parser.next_event(), b"abc")
        self.assertEqual(parser.body_bytes_to_receive(), 7)
        parser.feed(b"defghij")
        self.assertEqual(parser.next_event(), b"defghij")
        self.assertIsNone(parser.body_bytes_to_receive())

    def test_unknown_lengths(self) -> None:
        """Chunked and read-until-close bodies have no count."""
        for head in (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\n\r\nabc",
        ):
            parser = ResponseParser()
            parser.expect_response(b"GET")
            parser.feed(head)
            parser.next_event()
            parser.next_event()
            self.assertIsNone(parser.body_bytes_to_receive())


class _SocketTransport(FakeSocketTransport):
    """A `FakeSocketTransport` over a `FakeSocket`, that can be aborted."""

    def __init__(self, reactor: MemoryReactorClock, sock: FakeSocket) -> None:
        super().__init__(reactor)
        self.socket = sock
        self.aborted = False

    def abortConnection(self) -> None:
        """Note the abort; the test delivers ``connectionLost`` itself."""
        self.aborted = True


class _Body(Protocol):
    """A body protocol that keeps what it gets and how it ended."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason


def head(length: int) -> bytes:
    """A 200 response head with a Content-Length of ``length``."""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length


BASE = FileDescriptor.bufferSize
"""The socket transport's starting read size (64 KiB)."""

LW = DEFAULT_READ_LOW_WATER
"""The pool's default mark (the pools of these tests read up to 4 MiB)."""


class PoolLowWaterTests(SynchronousTestCase):
    """The pool's connections set the mark from the response's framing."""

    def timers(self) -> list[object]:
        """The low-water timers pending on the reactor (not the pool's)."""
        return [
            call
            for call in self.reactor.getDelayedCalls()
            if type(getattr(cast(Any, call).func, "__self__", None)) is ReadLowWater
        ]

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.sock = FakeSocket()
        # The fake socket is no socket.socket: hand it over as a TCP one.
        self.patch(_pool, "low_water_socket", lambda transport: transport.socket)

    def connect(
        self,
        *,
        transport: FakeSocketTransport | StringTransport | None = None,
        body_idle_timeout: float | None = None,
        **kwargs: Any,
    ) -> IProtocol:
        """Send a GET through a pool; return the connection's protocol."""
        kwargs.setdefault("max_read_bytes", 4 * MIB)
        self.pool = HTTPConnectionPool(self.reactor, **kwargs)
        if transport is None:
            transport = _SocketTransport(self.reactor, self.sock)
        self.transport = transport
        endpoint = SocketEndpoint(transport)
        request = ClientRequest(
            b"GET",
            b"/",
            Headers({b"host": [b"a.example"]}),
            persistent=True,
            body_idle_timeout=body_idle_timeout,
        )
        self.response = self.pool.submit(KEY, lambda: endpoint, request)
        [protocol] = endpoint.protocols
        return protocol

    def body(self, head: bytes, protocol: IProtocol) -> _Body:
        """Feed ``head``; deliver the response's body to a new `_Body`."""
        protocol.dataReceived(head)
        response: Response = self.successResultOf(self.response)
        body = _Body()
        response.deliverBody(body)
        return body

    def test_pool_options(self) -> None:
        """The pool's options default as documented and are checked."""
        pool = HTTPConnectionPool(self.reactor)
        self.assertEqual(
            pool.read_low_water, min(DEFAULT_READ_LOW_WATER, pool.max_read_bytes)
        )
        self.assertEqual(pool.read_low_water_delay, DEFAULT_READ_LOW_WATER_DELAY)
        capped = HTTPConnectionPool(self.reactor, max_read_bytes=65536)
        self.assertEqual(capped.read_low_water, 65536)
        with self.assertRaises(ValueError):
            HTTPConnectionPool(self.reactor, read_low_water=-1)
        with self.assertRaises(ValueError):
            HTTPConnectionPool(self.reactor, read_low_water_delay=0)

    def test_length_body(self) -> None:
        """Raised after a large read, capped at what is to come, 1 at the end."""
        size = 3 * LW
        protocol = self.connect()
        body = self.body(head(size), protocol)
        self.assertEqual(self.sock.marks, [])
        protocol.dataReceived(b"x" * 1000)  # a small read: no mark
        self.assertEqual(self.sock.marks, [])
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.marks, [LW])
        protocol.dataReceived(b"x" * LW)
        protocol.dataReceived(b"x" * LW)
        left = size - 2 * LW - BASE - 1000
        self.assertEqual(self.sock.marks, [LW, left])
        protocol.dataReceived(b"x" * left)
        self.assertEqual(self.sock.marks, [LW, left, 1])
        self.assertEqual(len(body.data), size)
        assert body.reason is not None
        self.assertEqual(type(body.reason.value).__name__, "ResponseDone")
        self.assertEqual(self.timers(), [])

    def test_default_mark_capped_by_read_size(self) -> None:
        """The mark is never above what one read takes."""
        protocol = self.connect(max_read_bytes=256 * 1024)
        self.body(head(8 * MIB), protocol)
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.marks, [256 * 1024])

    def test_off(self) -> None:
        """``read_low_water=0`` sets nothing."""
        protocol = self.connect(read_low_water=0)
        self.body(head(8 * MIB), protocol)
        protocol.dataReceived(b"x" * MIB)
        self.assertEqual(self.sock.marks, [])

    def test_chunked_and_until_close(self) -> None:
        """Bodies of unknown length never raise the mark, and arrive whole."""
        chunk = b"x" * MIB
        for head, data in (
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"%x\r\n%s\r\n" % (len(chunk), chunk),
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", chunk),
        ):
            self.sock.marks.clear()
            protocol = self.connect()
            body = self.body(head, protocol)
            protocol.dataReceived(data)
            protocol.dataReceived(data)
            self.assertEqual(self.sock.marks, [])
            self.assertEqual(len(body.data), 2 * MIB)
            protocol.connectionLost(Failure(ConnectionError()))

    def test_slow_sender(self) -> None:
        """A sender that stops mid-body: the mark drops after the delay."""
        protocol = self.connect()
        self.body(head(8 * MIB), protocol)
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.mark, LW)
        self.reactor.advance(DEFAULT_READ_LOW_WATER_DELAY)
        self.assertEqual(self.sock.marks, [LW, 1])
        protocol.dataReceived(b"x" * 100)  # the bytes that waited
        self.assertEqual(self.sock.marks, [LW, 1])
        protocol.dataReceived(b"x" * BASE)  # streaming again
        self.assertEqual(self.sock.marks, [LW, 1, LW])

    def test_idle_timeout_never_fires_first(self) -> None:
        """The mark drops at half the body idle timeout, before the timeout."""
        protocol = self.connect(body_idle_timeout=0.004)
        body = self.body(head(8 * MIB), protocol)
        protocol.dataReceived(b"x" * BASE)
        self.reactor.advance(0.002)
        self.assertEqual(self.sock.marks, [LW, 1])
        self.assertIsNone(body.reason)
        self.reactor.advance(0.002)
        assert body.reason is not None
        self.assertIsInstance(body.reason.value, ResponseFailed)
        [reason] = cast(ResponseFailed, body.reason.value).reasons
        self.assertIsInstance(reason.value, BodyIdleTimeout)

    def test_paused_consumer(self) -> None:
        """A paused body (backpressure) drops the mark; resuming finishes it."""
        protocol = self.connect()
        protocol.dataReceived(head(2 * MIB))
        response: Response = self.successResultOf(self.response)
        body = _Body()
        response.deliverBody(body)
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.mark, LW)
        body_transport = cast(Any, body.transport)
        body_transport.pauseProducing()
        self.assertNotIn(self.transport, self.reactor.getReaders())
        self.reactor.advance(DEFAULT_READ_LOW_WATER_DELAY)
        self.assertEqual(self.sock.mark, 1)
        body_transport.resumeProducing()
        protocol.dataReceived(b"x" * (2 * MIB - BASE))
        self.assertEqual(len(body.data), 2 * MIB)
        self.assertEqual(self.timers(), [])

    def test_abort_mid_body(self) -> None:
        """An abort mid-body stops the timer and leaves the socket alone."""
        protocol = self.connect()
        body = self.body(head(8 * MIB), protocol)
        protocol.dataReceived(b"x" * BASE)
        cast(Any, body.transport).abortConnection()
        protocol.connectionLost(Failure(ConnectionError("aborted")))
        self.assertEqual(self.timers(), [])
        self.assertEqual(self.sock.marks, [LW])
        assert body.reason is not None
        self.assertIsInstance(body.reason.value, ResponseFailed)

    def test_keep_alive(self) -> None:
        """The mark is back at 1 when a connection goes back to the pool."""
        protocol = self.connect()
        self.body(head(2 * BASE), protocol)
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.marks, [BASE])
        protocol.dataReceived(b"x" * BASE)
        self.assertEqual(self.sock.marks, [BASE, 1])
        self.assertEqual(self.pool.stats().idle, 1)

    def test_not_a_socket(self) -> None:
        """A transport that is no socket (TLS, in memory) gets no mark."""
        transport = StringTransport()
        protocol = self.connect(transport=transport)
        body = self.body(head(2 * MIB), protocol)
        protocol.dataReceived(b"x" * (2 * MIB))
        self.assertEqual(len(body.data), 2 * MIB)
        self.assertEqual(self.sock.marks, [])


# -- over real TCP -----------------------------------------------------------

PATTERN = bytes(range(251)) * 4
"""Body bytes whose position shows: any loss or reordering changes them."""

BIG = 8 * MIB + 17
"""A body far above the low-water mark, not a multiple of any read size."""


def body_of(length: int) -> bytes:
    """The first ``length`` bytes of the repeated `PATTERN`."""
    return (PATTERN * (length // len(PATTERN) + 1))[:length]


class _Server(Protocol):
    """
    Answers ``GET /big`` with `BIG` bytes, ``GET /small`` with 5 bytes,
    ``GET /cut`` with a head promising `BIG` bytes, a quarter of them, then
    a close, and ``GET /pause`` with half of `BIG`, then the rest once the
    test fires `_Server.resume`. Keep-alive between requests.
    """

    def __init__(self, factory: _ServerFactory) -> None:
        self.factory = factory
        self.buffer = b""
        self.closed: Deferred[None] = Deferred()
        factory.closed.append(self.closed)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        transport: Any = self.transport
        while b"\r\n\r\n" in self.buffer:
            request, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            path = request.split(b" ")[1]
            if path == b"/small":
                transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall")
                continue
            body = body_of(BIG)
            transport.write(head(BIG))
            if path == b"/cut":
                transport.write(body[: BIG // 4])
                transport.loseConnection()
                return
            if path == b"/pause":
                transport.write(body[: BIG // 2])
                self.factory.resume.addCallback(self._send, body[BIG // 2 :])
                continue
            transport.write(body)

    def _send(self, _: object, data: bytes) -> None:
        cast(Any, self.transport).write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed.callback(None)


class _ServerFactory(ServerFactory):
    """Builds `_Server`s that report their closing to one list."""

    def __init__(self) -> None:
        self.closed: list[Deferred[None]] = []
        self.resume: Deferred[None] = Deferred()

    def buildProtocol(self, addr: IAddress | None) -> _Server:
        return _Server(self)


class _Watcher(Protocol):
    """Collects a body; fires `half` once half of `BIG` has arrived."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.half: Deferred[None] = Deferred()
        self.done: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        if len(self.data) >= BIG // 2 and not self.half.called:
            self.half.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(None)


class DownloadTests(TestCase):
    """A big body over real TCP arrives whole, in order, and never stalls."""

    timeout = 30

    def setUp(self) -> None:
        self.factory = _ServerFactory()
        tcp: IReactorTCP = cast(IReactorTCP, _global_reactor)
        self.port = tcp.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    def agent(self, body_idle_timeout: float | None = None, **kwargs: Any) -> Agent:
        """An Agent on a fresh pool made with ``kwargs``."""
        clock = cast(IReactorTime, _global_reactor)
        self.pool = HTTPConnectionPool(clock, **kwargs)
        return Agent(
            _global_reactor, pool=self.pool, body_idle_timeout=body_idle_timeout
        )

    def url(self, path: str) -> bytes:
        """The server's URL for ``path``."""
        return b"http://127.0.0.1:%d%s" % (
            self.port.getHost().port,  # type: ignore[attr-defined]
            path.encode(),
        )

    async def close(self) -> None:
        """Close the pool's connections and wait for the server's side."""
        await self.pool.closeCachedConnections()
        await gatherResults(self.factory.closed)

    async def test_whole_and_in_order(self) -> None:
        """Big bodies and a small one on one connection arrive intact."""
        # No help from the slow-sender timer: only the cap at the bytes
        # still to come keeps the reads from waiting for bytes never sent.
        agent = self.agent(read_low_water_delay=3600)
        for path in ("/big", "/big", "/small"):
            response = await agent.request(b"GET", self.url(path))
            body = await readBody(response)
            expected = b"small" if path == "/small" else body_of(BIG)
            self.assertEqual(len(body), len(expected))
            self.assertTrue(body == expected, f"{path}: body bytes differ")
        self.assertEqual(len(self.factory.closed), 1)
        await self.close()

    async def test_sender_pauses(self) -> None:
        """Bytes sent before a pause arrive during the pause."""
        agent = self.agent()
        response = await agent.request(b"GET", self.url("/pause"))
        watcher = _Watcher()
        response.deliverBody(watcher)
        await watcher.half  # the server sends no more until this fires
        self.factory.resume.callback(None)
        await watcher.done
        self.assertTrue(bytes(watcher.data) == body_of(BIG), "body bytes differ")
        await self.close()

    async def test_idle_timeout_waits_for_unread_bytes(self) -> None:
        """The body idle timeout bounds the mark's wait, and does not fire."""
        agent = self.agent(body_idle_timeout=2.0, read_low_water_delay=3600)
        response = await agent.request(b"GET", self.url("/pause"))
        watcher = _Watcher()
        response.deliverBody(watcher)
        await watcher.half
        self.factory.resume.callback(None)
        await watcher.done
        self.assertEqual(len(watcher.data), BIG)
        await self.close()

    async def test_server_closes_mid_body(self) -> None:
        """A body cut short by a close fails the response instead of stalling."""
        agent = self.agent(read_low_water_delay=3600)
        response = await agent.request(b"GET", self.url("/cut"))
        with self.assertRaises(ResponseFailed):
            await readBody(response)
        await self.close()
