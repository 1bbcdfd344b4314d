# -*- test-case-name: txhttp.test.test_client_pool -*-
"""
Tests for `txhttp.client.HTTPConnectionPool`: caps, queueing, timeouts, idle
expiry, stale-connection retries, statistics and closing.

Deterministic: connections are small verified fakes built through the pool's
``protocol_factory`` hook, endpoints are fakes the test completes by hand,
and time is a `Clock`.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp.client._errors import (
    ConnectTimeout,
    PoolQueueFull,
    PoolQueueTimeout,
    RequestNotSent,
    ResponseFailed,
    ResponseHeadTimeout,
    ResponseNeverReceived,
    TotalTimeout,
)
from txhttp.client._pool import (
    DEFAULT_MAX_READ_BYTES,
    HostStats,
    HTTPConnectionPool,
    PoolableConnection,
    PoolKey,
    QuiescentCallback,
    is_safe_to_retry,
)
from txhttp.client._request import ClientRequest
from txhttp.client._response import Response

KEY_A = PoolKey("http", "a.example", 80)
KEY_B = PoolKey("http", "b.example", 80)
KEY_C = PoolKey("http", "c.example", 80)


class FakeConnection(Protocol):
    """
    A connection the test drives by hand; provides what the pool needs.

    ``respond`` fires the pending request, ``finish`` ends the exchange (the
    quiescent callback), ``lose`` closes it. ``abort`` closes at once.
    """

    def __init__(self, quiescent: QuiescentCallback) -> None:
        self._quiescent = quiescent
        self.requests: list[ClientRequest] = []
        self.pending: Deferred[Response] | None = None
        self.closed = False
        self.aborted = False
        self.abort_reason: Exception | None = None
        self._closed_waiters: list[Deferred[None]] = []

    def request(self, request: ClientRequest) -> Deferred[Response]:
        self.requests.append(request)
        # Like HTTP11ClientProtocol, cancelling the request aborts.
        pending: Deferred[Response] = Deferred(lambda _: self.abort())
        self.pending = pending
        return pending

    def respond(self) -> Response:
        """Fire the pending request with a stand-in response."""
        response = cast(Response, object())
        assert self.pending is not None
        pending, self.pending = self.pending, None
        pending.callback(response)
        return response

    def fail_request(self, reason: Exception) -> None:
        assert self.pending is not None
        pending, self.pending = self.pending, None
        pending.errback(Failure(reason))

    def finish(self) -> None:
        """The exchange is over and the connection reusable."""
        self._quiescent(self)

    def is_reusable(self) -> bool:
        return not self.closed and self.pending is None

    def abort(self, reason: Exception | None = None) -> None:
        self.abort_reason = reason
        self.aborted = True
        self.lose()

    def lose(self) -> None:
        if self.closed:
            return
        self.closed = True
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def when_closed(self) -> Deferred[None]:
        if self.closed:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._closed_waiters.append(waiter)
        return waiter


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """Records connection attempts; the test completes or fails them."""

    def __init__(self) -> None:
        self.attempts: list[tuple[IProtocolFactory, Deferred[IProtocol]]] = []
        self.connections: list[FakeConnection] = []
        self.cancelled = 0

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        def cancel(_: Deferred[IProtocol]) -> None:
            self.cancelled += 1

        attempt: Deferred[IProtocol] = Deferred(cancel)
        self.attempts.append((protocolFactory, attempt))
        return attempt

    def succeed(self, index: int = -1) -> FakeConnection:
        """Complete attempt ``index``: build its protocol and connect it."""
        factory, attempt = self.attempts[index]
        # The pool's factory ignores the address and builds FakeConnection.
        built = factory.buildProtocol(None)  # type: ignore[arg-type]
        protocol = cast(FakeConnection, built)
        protocol.makeConnection(StringTransport())
        self.connections.append(protocol)
        attempt.callback(protocol)
        return protocol

    def fail(self, reason: Exception, index: int = -1) -> None:
        self.attempts[index][1].errback(Failure(reason))


def make_pool(clock: Clock, **kwargs: object) -> HTTPConnectionPool:
    """A pool building `FakeConnection`s, timed by ``clock``."""
    return HTTPConnectionPool(
        clock,
        protocol_factory=FakeConnection,
        **kwargs,  # type: ignore[arg-type]  # keyword limits under test
    )


def get(uri: bytes = b"/") -> ClientRequest:
    return ClientRequest(b"GET", uri, Headers(), persistent=True)


class _Producer:
    """A minimal body producer (never started by these tests)."""

    length = 3

    def startProducing(self, consumer: object) -> Deferred[None]:
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def post() -> ClientRequest:
    return ClientRequest(
        b"POST",
        b"/",
        Headers(),
        _Producer(),  # type: ignore[arg-type]  # provides IBodyProducer's methods
        persistent=True,
    )


class PoolSetup(SynchronousTestCase):
    """Shared fixtures: a clock, an endpoint and a submit helper."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.endpoint = FakeEndpoint()

    def submit(
        self,
        pool: HTTPConnectionPool,
        key: PoolKey = KEY_A,
        request: ClientRequest | None = None,
        **kwargs: float | None,
    ) -> Deferred[Response]:
        return pool.submit(
            key,
            lambda: self.endpoint,
            request if request is not None else get(),
            **kwargs,  # type: ignore[arg-type]  # timeouts under test
        )


class FakeConnectionTests(SynchronousTestCase):
    """The fake is a faithful stand-in."""

    def test_fake_is_poolable(self) -> None:
        """FakeConnection provides IProtocol and PoolableConnection's methods."""
        connection = FakeConnection(lambda c: None)
        self.assertTrue(verifyObject(IProtocol, connection))
        poolable: PoolableConnection = connection
        self.assertTrue(poolable.is_reusable())


class PoolReuseTests(PoolSetup):
    """Connections are kept and reused per key."""

    def test_reuses_idle_connection(self) -> None:
        """A finished connection serves the next request of its key."""
        pool = make_pool(self.clock)
        first = self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        self.successResultOf(first)
        connection.finish()
        self.assertEqual(1, pool.stats().idle)

        second = self.submit(pool)
        self.assertEqual(1, len(self.endpoint.attempts))
        connection.respond()
        self.successResultOf(second)
        self.assertEqual(2, len(connection.requests))

    def test_keys_do_not_share(self) -> None:
        """An idle connection of one key never serves another key."""
        pool = make_pool(self.clock)
        self.submit(pool, KEY_A)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        self.submit(pool, KEY_B)
        self.assertEqual(2, len(self.endpoint.attempts))

    def test_not_persistent_keeps_nothing_idle(self) -> None:
        """With persistent=False, a finished connection is closed, not kept."""
        pool = make_pool(self.clock, persistent=False)
        self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        self.assertTrue(connection.aborted)
        self.assertEqual(0, pool.stats().connections)

    def test_closed_idle_connection_forgotten(self) -> None:
        """An idle connection the server closes leaves the pool."""
        pool = make_pool(self.clock)
        self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        connection.lose()
        self.assertEqual(0, pool.stats().connections)
        self.assertEqual([], self.clock.getDelayedCalls())


class PoolCapTests(PoolSetup):
    """Hard caps: requests queue rather than open more connections."""

    def test_per_host_cap(self) -> None:
        """Past max_connections_per_host a request queues; no extra connect."""
        pool = make_pool(self.clock, max_connections_per_host=2, max_idle_per_host=2)
        results = [self.submit(pool) for _ in range(3)]
        self.assertEqual(2, len(self.endpoint.attempts))
        self.assertEqual(
            HostStats(idle=0, active=0, connecting=2, queued=1),
            pool.stats().per_key[KEY_A],
        )
        first = self.endpoint.succeed(0)
        self.endpoint.succeed(1)
        first.respond()
        first.finish()
        # The queued request got the finished connection.
        self.assertEqual(2, len(first.requests))
        self.assertEqual(2, len(self.endpoint.attempts))
        first.respond()
        self.successResultOf(results[2])

    def test_total_cap(self) -> None:
        """Past max_connections, other keys queue until a socket closes."""
        pool = make_pool(self.clock, max_connections=2)
        self.submit(pool, KEY_A)
        self.submit(pool, KEY_B)
        third = self.submit(pool, KEY_C)
        self.assertEqual(2, len(self.endpoint.attempts))
        self.assertEqual(1, pool.stats().queued)
        a = self.endpoint.succeed(0)
        a.respond()
        a.lose()
        self.assertEqual(3, len(self.endpoint.attempts))
        c = self.endpoint.succeed(2)
        c.respond()
        self.successResultOf(third)

    def test_total_cap_evicts_idle_of_other_key(self) -> None:
        """At the total cap, an idle connection of another key is closed."""
        pool = make_pool(self.clock, max_connections=1)
        self.submit(pool, KEY_A)
        a = self.endpoint.succeed()
        a.respond()
        a.finish()
        self.submit(pool, KEY_B)
        self.assertTrue(a.aborted)
        self.assertEqual(2, len(self.endpoint.attempts))

    def test_finished_connection_yields_to_waiting_key(self) -> None:
        """At the total cap, a finished connection closes for another key's waiter."""
        pool = make_pool(self.clock, max_connections=1)
        self.submit(pool, KEY_A)
        a = self.endpoint.succeed()
        self.submit(pool, KEY_B)
        self.assertEqual(1, len(self.endpoint.attempts))
        a.respond()
        a.finish()
        self.assertTrue(a.aborted)
        self.assertEqual(2, len(self.endpoint.attempts))

    def test_queue_full(self) -> None:
        """Past max_queued, a request fails at once with PoolQueueFull."""
        pool = make_pool(
            self.clock, max_connections_per_host=1, max_idle_per_host=1, max_queued=1
        )
        self.submit(pool)
        self.submit(pool)
        error = self.failureResultOf(self.submit(pool), PoolQueueFull).value
        self.assertEqual(1, error.max_queued)

    def test_queue_timeout(self) -> None:
        """A request waiting queue_timeout fails with PoolQueueTimeout, not before."""
        pool = make_pool(
            self.clock, max_connections_per_host=1, max_idle_per_host=1, queue_timeout=5
        )
        self.submit(pool)
        waiting = self.submit(pool)
        self.clock.advance(4.9)
        self.assertNoResult(waiting)
        self.clock.advance(0.1)
        error = self.failureResultOf(waiting, PoolQueueTimeout).value
        self.assertEqual(5.0, error.limit_seconds)
        self.assertEqual(0, pool.stats().queued)

    def test_cancel_queued(self) -> None:
        """Cancelling a queued request removes it from the queue."""
        pool = make_pool(self.clock, max_connections_per_host=1, max_idle_per_host=1)
        self.submit(pool)
        waiting = self.submit(pool)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(0, pool.stats().queued)
        self.assertEqual(1, len(self.clock.getDelayedCalls()))  # the connect timer


class PoolIdleTests(PoolSetup):
    """Idle connections: how many, and for how long."""

    def test_idle_expiry(self) -> None:
        """An idle connection is closed after idle_timeout, not before."""
        pool = make_pool(self.clock, idle_timeout=10)
        self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        self.clock.advance(9.9)
        self.assertFalse(connection.aborted)
        self.clock.advance(0.1)
        self.assertTrue(connection.aborted)
        self.assertEqual(0, pool.stats().connections)
        self.assertEqual([], self.clock.getDelayedCalls())

    def test_max_idle_per_host(self) -> None:
        """Beyond max_idle_per_host, a finished connection is closed."""
        pool = make_pool(self.clock, max_idle_per_host=1)
        self.submit(pool)
        self.submit(pool)
        first, second = self.endpoint.succeed(0), self.endpoint.succeed(1)
        for connection in (first, second):
            connection.respond()
            connection.finish()
        self.assertFalse(first.aborted)
        self.assertTrue(second.aborted)
        self.assertEqual(1, pool.stats().idle)

    def test_reuse_cancels_idle_timer(self) -> None:
        """Reusing an idle connection stops its expiry."""
        pool = make_pool(self.clock, idle_timeout=10)
        self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        self.submit(pool)
        self.clock.advance(20)
        self.assertFalse(connection.aborted)


class PoolConnectTests(PoolSetup):
    """Opening connections: timeouts and failures."""

    def test_connect_timeout(self) -> None:
        """A connection not made in connect_timeout fails with ConnectTimeout."""
        pool = make_pool(self.clock)
        result = self.submit(pool, connect_timeout=3)
        self.clock.advance(3)
        self.assertEqual(1, self.endpoint.cancelled)
        error = self.failureResultOf(result, ConnectTimeout).value
        self.assertEqual(3.0, error.limit_seconds)
        self.assertEqual(0, pool.stats().connections)

    def test_connect_failure(self) -> None:
        """A failed connection fails its request and frees its slot."""
        pool = make_pool(self.clock, max_connections_per_host=1, max_idle_per_host=1)
        first = self.submit(pool)
        second = self.submit(pool)
        self.endpoint.fail(ConnectionRefusedError())
        self.failureResultOf(first, ConnectionRefusedError)
        # The freed slot opened a connection for the queued request.
        self.assertEqual(2, len(self.endpoint.attempts))
        self.endpoint.succeed().respond()
        self.successResultOf(second)


class PoolRetryTests(PoolSetup):
    """A reused connection found closed: retried once, only when safe."""

    def idle_connection(self, pool: HTTPConnectionPool) -> FakeConnection:
        self.submit(pool)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        return connection

    @staticmethod
    def stale() -> ResponseNeverReceived:
        return ResponseNeverReceived([Failure(ConnectionDone())])

    def test_idempotent_retried_on_new_connection(self) -> None:
        """A GET failing on a reused connection is sent again on a new one."""
        pool = make_pool(self.clock)
        old = self.idle_connection(pool)
        result = self.submit(pool)
        old.fail_request(self.stale())
        old.lose()
        self.assertEqual(2, len(self.endpoint.attempts))
        new = self.endpoint.succeed()
        new.respond()
        self.successResultOf(result)
        self.assertEqual(1, len(new.requests))

    def test_retry_uses_fresh_connection(self) -> None:
        """The retry never takes another idle (possibly stale) connection."""
        pool = make_pool(self.clock)
        self.submit(pool)
        self.submit(pool)
        first, second = self.endpoint.succeed(0), self.endpoint.succeed(1)
        for connection in (first, second):
            connection.respond()
            connection.finish()
        result = self.submit(pool)
        second.fail_request(self.stale())
        self.assertEqual(1, len(first.requests))
        self.assertEqual(3, len(self.endpoint.attempts))
        second.lose()
        self.endpoint.succeed().respond()
        self.successResultOf(result)

    def test_post_with_body_not_retried(self) -> None:
        """A POST with a body that may have reached the server is not retried."""
        pool = make_pool(self.clock)
        old = self.idle_connection(pool)
        result = self.submit(pool, request=post())
        old.fail_request(self.stale())
        self.failureResultOf(result, ResponseNeverReceived)
        self.assertEqual(1, len(self.endpoint.attempts))

    def test_not_sent_always_retried(self) -> None:
        """A request that provably never left (RequestNotSent) is retried, POST too."""
        pool = make_pool(self.clock)
        old = self.idle_connection(pool)
        result = self.submit(pool, request=post())
        old.fail_request(RequestNotSent())
        old.lose()
        self.endpoint.succeed().respond()
        self.successResultOf(result)

    def test_fresh_connection_not_retried(self) -> None:
        """A failure on a brand-new connection is not retried."""
        pool = make_pool(self.clock)
        result = self.submit(pool)
        self.endpoint.succeed().fail_request(self.stale())
        self.failureResultOf(result, ResponseNeverReceived)
        self.assertEqual(1, len(self.endpoint.attempts))

    def test_retried_only_once(self) -> None:
        """If the retry fails too, its failure is the result."""
        pool = make_pool(self.clock)
        old = self.idle_connection(pool)
        result = self.submit(pool)
        old.fail_request(self.stale())
        old.lose()
        self.endpoint.succeed().fail_request(self.stale())
        self.failureResultOf(result, ResponseNeverReceived)
        self.assertEqual(2, len(self.endpoint.attempts))

    def test_timeout_not_retried(self) -> None:
        """A response-head timeout on a reused connection is not retried."""
        pool = make_pool(self.clock)
        old = self.idle_connection(pool)
        result = self.submit(pool)
        old.fail_request(ResponseHeadTimeout(30))
        self.failureResultOf(result, ResponseHeadTimeout)
        self.assertEqual(1, len(self.endpoint.attempts))

    def test_retry_disabled(self) -> None:
        """retry_automatically=False never retries."""
        pool = make_pool(self.clock, retry_automatically=False)
        old = self.idle_connection(pool)
        result = self.submit(pool)
        old.fail_request(self.stale())
        self.failureResultOf(result, ResponseNeverReceived)

    def test_is_safe_to_retry(self) -> None:
        """The retry rule: not sent, or idempotent, bodiless and cut off."""
        stale = Failure(self.stale())
        self.assertTrue(is_safe_to_retry(get(), stale))
        self.assertTrue(is_safe_to_retry(post(), Failure(RequestNotSent())))
        self.assertFalse(is_safe_to_retry(post(), stale))
        self.assertFalse(
            is_safe_to_retry(ClientRequest(b"POST", b"/", Headers()), stale)
        )
        self.assertFalse(
            is_safe_to_retry(
                get(), Failure(ResponseFailed([Failure(ConnectionDone())]))
            )
        )
        self.assertFalse(
            is_safe_to_retry(
                get(), Failure(ResponseNeverReceived([Failure(ValueError())]))
            )
        )


class PoolTotalTimeoutTests(PoolSetup):
    """The total deadline covers queueing, the head and the body."""

    def test_before_head(self) -> None:
        """With no head by the deadline, the request fails with TotalTimeout."""
        pool = make_pool(self.clock)
        result = self.submit(pool, total_timeout=7)
        connection = self.endpoint.succeed()
        self.clock.advance(7)
        error = self.failureResultOf(result, TotalTimeout).value
        self.assertEqual(7.0, error.limit_seconds)
        self.assertTrue(connection.aborted)

    def test_during_body(self) -> None:
        """After the head, the deadline aborts the connection."""
        pool = make_pool(self.clock)
        result = self.submit(pool, total_timeout=7)
        connection = self.endpoint.succeed()
        connection.respond()
        self.successResultOf(result)
        self.clock.advance(7)
        self.assertTrue(connection.aborted)
        self.assertIsInstance(connection.abort_reason, TotalTimeout)

    def test_released_in_time(self) -> None:
        """An exchange finished before the deadline leaves no timer behind."""
        pool = make_pool(self.clock, idle_timeout=60)
        self.submit(pool, total_timeout=7)
        connection = self.endpoint.succeed()
        connection.respond()
        connection.finish()
        self.clock.advance(7)
        self.assertFalse(connection.aborted)

    def test_while_queued(self) -> None:
        """A queued request hits its total deadline and leaves the queue."""
        pool = make_pool(self.clock, max_connections_per_host=1, max_idle_per_host=1)
        self.submit(pool)
        waiting = self.submit(pool, total_timeout=2)
        self.clock.advance(2)
        self.failureResultOf(waiting, TotalTimeout)
        self.assertEqual(0, pool.stats().queued)


class PoolCloseTests(PoolSetup):
    """closeCachedConnections: the reactor ends clean."""

    def test_empty_pool(self) -> None:
        """An empty pool closes at once."""
        pool = make_pool(self.clock)
        self.successResultOf(pool.closeCachedConnections())

    def test_closes_idle_and_waits_for_active(self) -> None:
        """Idle sockets close now; the Deferred fires when the last one closed."""
        pool = make_pool(self.clock)
        self.submit(pool)
        self.submit(pool)
        idle, active = self.endpoint.succeed(0), self.endpoint.succeed(1)
        idle.respond()
        idle.finish()
        active.respond()
        closed = pool.closeCachedConnections()
        self.assertTrue(idle.aborted)
        self.assertNoResult(closed)
        active.finish()
        self.assertTrue(active.aborted)
        self.successResultOf(closed)
        self.assertEqual([], self.clock.getDelayedCalls())

    def test_waits_for_connecting(self) -> None:
        """A connection still being opened is closed once made."""
        pool = make_pool(self.clock)
        result = self.submit(pool)
        result.cancel()
        self.failureResultOf(result, CancelledError)
        closed = pool.closeCachedConnections()
        self.assertNoResult(closed)
        connection = self.endpoint.succeed()
        self.assertTrue(connection.aborted)
        self.successResultOf(closed)


class PoolStatsTests(PoolSetup):
    """Statistics are readable, per key and in total."""

    def test_stats(self) -> None:
        """stats() counts idle, active, connecting and queued per key."""
        pool = make_pool(self.clock, max_connections_per_host=2, max_idle_per_host=2)
        self.submit(pool, KEY_A)
        self.submit(pool, KEY_A)
        self.submit(pool, KEY_A)
        self.submit(pool, KEY_B)
        a = self.endpoint.succeed(0)
        a.respond()
        b = self.endpoint.succeed(2)
        b.respond()
        b.finish()
        stats = pool.stats()
        self.assertEqual(
            HostStats(idle=0, active=1, connecting=1, queued=1), stats.per_key[KEY_A]
        )
        self.assertEqual(
            HostStats(idle=1, active=0, connecting=0, queued=0), stats.per_key[KEY_B]
        )
        self.assertEqual(
            (1, 1, 1, 1, 3),
            (
                stats.idle,
                stats.active,
                stats.connecting,
                stats.queued,
                stats.connections,
            ),
        )

    def test_stats_frozen(self) -> None:
        """A snapshot cannot be changed."""
        stats = make_pool(self.clock).stats()
        with self.assertRaises(AttributeError):
            stats.idle = 3  # type: ignore[misc]  # the point of the test

    def test_invalid_limits(self) -> None:
        """Non-positive caps and idle beyond the per-host cap are refused."""
        for kwargs in (
            {"max_connections": 0},
            {"max_connections_per_host": 0},
            {"idle_timeout": 0},
            {"queue_timeout": -1},
            {"max_queued": -1},
            {"max_read_bytes": 0},
            {"max_connections_per_host": 2, "max_idle_per_host": 3},
        ):
            with self.assertRaises(ValueError):
                make_pool(self.clock, **kwargs)


class FakeSocketTransport(FileDescriptor):
    """A socket transport without a socket: what it writes is kept."""

    def __init__(self, reactor: MemoryReactorClock) -> None:
        super().__init__(reactor)
        self.written = bytearray()

    def writeSomeData(self, data: bytes) -> int:
        self.written += data
        return len(data)


@implementer(IStreamClientEndpoint)
class SocketEndpoint:
    """Connects the pool's real protocol to a `FakeSocketTransport` (or another)."""

    def __init__(self, transport: StringTransport | FakeSocketTransport) -> None:
        self.transport = transport
        self.protocols: list[IProtocol] = []

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = protocolFactory.buildProtocol(None)  # type: ignore[arg-type]
        assert protocol is not None
        protocol.makeConnection(self.transport)
        self.protocols.append(protocol)
        return succeed(protocol)


class _Count(Protocol):
    """A body protocol counting the bytes it gets."""

    total = 0

    def dataReceived(self, data: bytes) -> None:
        self.total += len(data)


class PoolReadSizeTests(SynchronousTestCase):
    """``max_read_bytes``: socket reads grow while a big body streams in."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def connect(
        self, transport: StringTransport | FakeSocketTransport, **kwargs: int
    ) -> IProtocol:
        """Send a GET through a default pool; return the connection's protocol."""
        pool = HTTPConnectionPool(self.reactor, **kwargs)  # type: ignore[arg-type]
        endpoint = SocketEndpoint(transport)
        request = ClientRequest(
            b"GET", b"/", Headers({b"host": [b"a.example"]}), persistent=True
        )
        self.response = pool.submit(KEY_A, lambda: endpoint, request)
        [protocol] = endpoint.protocols
        return protocol

    def test_default(self) -> None:
        """The default is DEFAULT_MAX_READ_BYTES, 1 MiB, above Twisted's."""
        pool = HTTPConnectionPool(self.reactor)
        self.assertEqual(pool.max_read_bytes, DEFAULT_MAX_READ_BYTES)
        self.assertEqual(DEFAULT_MAX_READ_BYTES, 1024 * 1024)
        self.assertGreater(DEFAULT_MAX_READ_BYTES, FileDescriptor.bufferSize)

    def test_full_reads_grow_short_reads_shrink(self) -> None:
        """A full read switches to max_read_bytes; a small one switches back."""
        socket = FakeSocketTransport(self.reactor)
        base = socket.bufferSize
        protocol = self.connect(socket, max_read_bytes=4 * base)
        self.assertEqual(socket.bufferSize, base)
        protocol.dataReceived(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (10 * base)
        )
        self.assertEqual(socket.bufferSize, base)
        response = self.successResultOf(self.response)
        body = _Count()
        response.deliverBody(body)
        protocol.dataReceived(b"x" * base)
        self.assertEqual(socket.bufferSize, 4 * base)
        protocol.dataReceived(b"x" * (3 * base))
        self.assertEqual(socket.bufferSize, 4 * base)
        protocol.dataReceived(b"x" * (4 * base))
        self.assertEqual(socket.bufferSize, 4 * base)
        protocol.dataReceived(b"x" * (base - 1))
        self.assertEqual(socket.bufferSize, base)
        protocol.dataReceived(b"x" * base)
        self.assertEqual(socket.bufferSize, 4 * base)
        protocol.dataReceived(b"x")
        self.assertEqual(socket.bufferSize, base)
        self.assertEqual(body.total, 10 * base)

    def test_smaller_than_the_reactor(self) -> None:
        """A max below the transport's own read size caps it; it never grows."""
        socket = FakeSocketTransport(self.reactor)
        protocol = self.connect(socket, max_read_bytes=1024)
        self.assertEqual(socket.bufferSize, 1024)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        protocol.dataReceived(b"x" * 1024)
        self.assertEqual(socket.bufferSize, 1024)

    def test_not_a_socket(self) -> None:
        """A transport that is no socket (TLS, in memory) is left alone."""
        transport = StringTransport()
        protocol = self.connect(transport, max_read_bytes=1024)
        protocol.dataReceived(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        protocol.dataReceived(b"x" * 5000)
        self.assertFalse(hasattr(transport, "bufferSize"))
        self.assertEqual(self.successResultOf(self.response).code, 200)
