# -*- test-case-name: txhttp.test.test_client_pool -*-
"""
`HTTPConnectionPool`: persistent client connections with real limits.

The pool sits between `Agent` and `HTTP11ClientProtocol`. It thinks in keys
and connections, never in bytes. A key (`PoolKey`) names where a connection
goes: scheme, host, port, the TLS options and the proxy, so connections are
shared only between requests that would have built the same socket.

Unlike ``twisted.web.client.HTTPConnectionPool``, whose only limit is on idle
connections, every count here is bounded:

- at most `HTTPConnectionPool.max_connections` sockets in total and
  `HTTPConnectionPool.max_connections_per_host` per key, counting those being
  opened, in use, idle and being closed; past the cap a request waits in a
  queue instead of opening one more;
- at most `HTTPConnectionPool.max_queued` waiting requests, each for at most
  `HTTPConnectionPool.queue_timeout` seconds (`PoolQueueFull`,
  `PoolQueueTimeout`);
- at most `HTTPConnectionPool.max_idle_per_host` idle connections per key,
  each closed after `HTTPConnectionPool.idle_timeout` seconds.

A pooled connection the server closed while it sat idle is only noticed when
a request is written to it. The pool retries such a request once, on a new
connection, but only when that is safe: the request provably never reached
the server (`RequestNotSent`), or its method is idempotent (RFC 9110,
section 9.2.2) and it has no body producer that was already consumed.

The connections the pool builds read their sockets 64 KiB at a time, and up
to `HTTPConnectionPool.max_read_bytes` while a large body streams in; over
TCP on Linux they also raise the socket's receive low-water mark
(`HTTPConnectionPool.read_low_water`, see ``ReadLowWater``) so the kernel
wakes the reactor once per large piece. Both mean fewer reactor turns per MiB.

Time comes from the reactor given to the pool (an ``IReactorTime``), so tests
drive it with a ``Clock``. This module leaves out URLs, TLS and proxies (see
`Agent`) and everything about bytes (see `HTTP11ClientProtocol`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Protocol, cast

from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionAborted as TwistedConnectionAborted
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocol,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.python.failure import Failure

from txhttp._wire import Limits
from txhttp.client._errors import (
    ConnectTimeout,
    PoolQueueFull,
    PoolQueueTimeout,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseNeverReceived,
    TotalTimeout,
)
from txhttp.client._lowat import (
    DEFAULT_READ_LOW_WATER,
    DEFAULT_READ_LOW_WATER_DELAY,
    ReadLowWater,
    low_water_socket,
    prepare_allocator,
)
from txhttp.client._protocol import HTTP11ClientProtocol
from txhttp.client._request import ClientRequest
from txhttp.client._response import Response

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_HOST",
    "DEFAULT_MAX_IDLE_PER_HOST",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_MAX_READ_BYTES",
    "DEFAULT_QUEUE_TIMEOUT",
    "DEFAULT_READ_LOW_WATER",
    "DEFAULT_READ_LOW_WATER_DELAY",
    "IDEMPOTENT_METHODS",
    "HTTPConnectionPool",
    "HostStats",
    "PoolKey",
    "PoolStats",
    "PoolableConnection",
]

DEFAULT_MAX_CONNECTIONS: Final = 100
"""
Sockets the pool may hold at once, all keys together.

Matches aiohttp's and httpx's default; enough for a busy service, far below a
process's file descriptor limit.
"""

DEFAULT_MAX_CONNECTIONS_PER_HOST: Final = 10
"""
Sockets to one key at once. Browsers use 6; a little more suits service
clients, while one slow host still cannot take the whole pool.
"""

DEFAULT_MAX_IDLE_PER_HOST: Final = 10
"""Idle connections kept per key: all of them, up to the per-host cap."""

DEFAULT_MAX_READ_BYTES: Final = 1024 * 1024
"""
Most bytes taken from a connection's socket in one read (``recv``).

Twisted's reactor reads its transport's ``bufferSize`` (64 KiB) per
readiness event. A connection of the pool starts there and switches to this
size while reads come back full (a large body is streaming in), then back
at the first short read. With the receive low-water mark
(``DEFAULT_READ_LOW_WATER``) a 100 MiB loopback download then takes about one
read per MiB instead of four to nine (``bench/bench_client.py
--download-only --read-sizes 262144,1048576 --low-waters 0,1048576``; see
bench/README.md). Small reads stay at 64 KiB: a read allocates its whole
size first, and above glibc's ``mmap`` threshold (128 KiB until raised) each
read would cost an ``mmap``, an ``mremap`` and a ``munmap`` (about 12 us for
a 200-byte answer); the first switch to large reads raises that threshold
once per process (``prepare_allocator``), without which 1 MiB reads cost a
page fault per 4 KiB and were slower than 256 KiB ones.
"""

DEFAULT_IDLE_TIMEOUT: Final = 15.0
"""
Seconds an idle connection is kept. Shorter than most servers' keep-alive
(nginx 75 s, Node 5 s is the exception), which keeps the stale-connection
race rare; aiohttp uses the same 15 s.
"""

DEFAULT_MAX_QUEUED: Final = 1000
"""Requests waiting for a connection, all keys together; more fail at once."""

DEFAULT_QUEUE_TIMEOUT: Final = 30.0
"""Seconds a request waits for a connection before failing."""

DEFAULT_CONNECT_TIMEOUT: Final = 30.0
"""Seconds to open a connection (TCP, TLS handshake, proxy CONNECT)."""

IDEMPOTENT_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"}
)
"""Methods that may be repeated without changing the outcome (RFC 9110, 9.2.2)."""


@dataclass(frozen=True, slots=True)
class PoolKey:
    """
    Where a connection goes; connections are shared only within one key.

    Attributes:
        scheme: ``"http"``, ``"https"`` or ``"unix"``.
        host: The host name or address (the socket path for ``"unix"``).
        port: The TCP port (0 for ``"unix"``).
        tls: What identifies the TLS settings (``None`` for plain text), so
            two policies never share a connection.
        proxy: What identifies the proxy and how it is used (``None`` when
            connecting directly).
    """

    scheme: str
    host: str
    port: int
    tls: Hashable | None = None
    proxy: Hashable | None = None
    _hash: int = field(init=False, repr=False, compare=False, default=0)
    """The key's hash, computed once: keys are looked up on every request."""

    def __post_init__(self) -> None:
        """Compute the hash once."""
        object.__setattr__(
            self,
            "_hash",
            hash((self.scheme, self.host, self.port, self.tls, self.proxy)),
        )

    def __hash__(self) -> int:
        """The hash of the compared fields, computed when the key was built."""
        return self._hash

    def __str__(self) -> str:
        where = f"{self.scheme}://{self.host}:{self.port}"
        return f"{where} via {self.proxy}" if self.proxy is not None else where


@dataclass(frozen=True, slots=True)
class HostStats:
    """
    The pool's counts for one key, at one moment.

    Attributes:
        idle: Open connections waiting to be reused.
        active: Connections carrying a request (or being closed).
        connecting: Connections being opened.
        queued: Requests waiting for a free slot (those waiting for a
            connection being opened for them count as ``connecting``).
    """

    idle: int
    active: int
    connecting: int
    queued: int


@dataclass(frozen=True, slots=True)
class PoolStats:
    """
    A snapshot of `HTTPConnectionPool`: totals and the counts per key.

    Attributes:
        idle: Idle connections, all keys.
        active: Connections in use or being closed, all keys.
        connecting: Connections being opened, all keys.
        queued: Requests waiting for a connection, all keys.
        per_key: The counts of each key the pool currently knows.
    """

    idle: int
    active: int
    connecting: int
    queued: int
    per_key: Mapping[PoolKey, HostStats] = field(default_factory=dict)

    @property
    def connections(self) -> int:
        """Sockets held (idle, active and connecting)."""
        return self.idle + self.active + self.connecting


class PoolableConnection(Protocol):
    """
    What the pool needs from a connection (`HTTP11ClientProtocol` has it).

    The pool hands a connection to one request at a time; the connection
    gives itself back through the quiescent callback it was built with, or
    closes, which `when_closed` reports.
    """

    def request(self, request: ClientRequest) -> Deferred[Response]:
        """Send one request; see `HTTP11ClientProtocol.request`."""

    def abort(self, reason: Exception | None = None) -> object:
        """Close the connection at once; outstanding work fails with ``reason``."""

    def is_reusable(self) -> bool:
        """Whether the connection is open and between exchanges."""

    def when_closed(self) -> Deferred[None]:
        """A Deferred firing once the connection has closed."""


QuiescentCallback = Callable[[PoolableConnection], None]
ProtocolFactory = Callable[[QuiescentCallback], IProtocol]
"""Builds one connection's protocol, given the pool's quiescent callback."""


@dataclass(slots=True, eq=False)
class _Lease:
    """A connection handed to one request, and whether it served others."""

    connection: PoolableConnection
    reused: bool


@dataclass(slots=True, eq=False)
class _Waiter:
    """A request waiting for a connection of ``key``."""

    key: PoolKey
    connect: Callable[[], IStreamClientEndpoint]
    connect_timeout: float
    fresh: bool
    deferred: Deferred[_Lease]
    timer: IDelayedCall | None = None


@dataclass(slots=True, eq=False)
class _Host:
    """The pool's bookkeeping for one key."""

    idle: dict[PoolableConnection, float] = field(default_factory=dict)
    """Idle connections, oldest first, with the time each became idle."""
    active: set[PoolableConnection] = field(default_factory=set)
    connecting: int = 0
    waiters: deque[_Waiter] = field(default_factory=deque)

    @property
    def count(self) -> int:
        """Sockets of this key, counted against the per-host cap."""
        return len(self.idle) + len(self.active) + self.connecting

    def is_empty(self) -> bool:
        """Nothing is left to track for this key."""
        return self.count == 0 and not self.waiters


class _PoolProtocolFactory(Factory):
    """The factory given to endpoints: builds one protocol per connection."""

    def __init__(self, build: Callable[[], IProtocol]) -> None:
        self._build = build

    def buildProtocol(self, addr: object) -> IProtocol:  # type: ignore[override]
        """Build the connection's protocol; ``addr`` is not needed."""
        return self._build()


def is_safe_to_retry(request: ClientRequest, reason: Failure) -> bool:
    """
    Whether a request that failed on a reused connection may be sent again.

    A request that never reached the server (`RequestNotSent`) always may.
    Otherwise the method must be idempotent (RFC 9110, section 9.2.2), there
    must be no body producer (it was consumed), and the failure must be the
    connection closing under the request, not a timeout or a bad response.
    """
    if reason.check(RequestNotSent) is not None:
        return True
    if request.method not in IDEMPOTENT_METHODS or request.bodyProducer is not None:
        return False
    if reason.check(ResponseNeverReceived, RequestTransmissionFailed) is None:
        return False
    reasons = getattr(reason.value, "reasons", None) or []
    return all(
        isinstance(r, Failure)
        and r.check(ConnectionDone, ConnectionLost, TwistedConnectionAborted)
        is not None
        for r in reasons
    )


class HTTPConnectionPool:
    """
    Persistent HTTP/1.1 connections, shared by key, with hard limits.

    Every limit is a keyword argument with a named default (see the module's
    ``DEFAULT_*`` constants); all counts and waits are bounded.

    Args:
        reactor: Provides ``IReactorTime``: timers for idle expiry, queue and
            connect timeouts. Connections themselves are opened by the
            endpoint each request comes with.
        persistent: Keep connections open between requests. ``False`` sends
            ``Connection: close`` and never keeps an idle connection.
        max_connections: Sockets held at once, all keys together.
        max_connections_per_host: Sockets to one key at once.
        max_idle_per_host: Idle connections kept per key.
        idle_timeout: Seconds before an idle connection is closed.
        max_queued: Requests waiting for a connection, all keys together.
        queue_timeout: Seconds a request may wait for a connection.
        retry_automatically: Retry a request once on a new connection when a
            reused one turns out to be closed, if that is safe.
        max_read_bytes: Most bytes read from a connection's socket at once,
            used while reads come back full (see `DEFAULT_MAX_READ_BYTES`).
            Applies to TCP and UNIX sockets carrying plain HTTP with the
            default protocol; TLS decrypts in records and is left alone.
        read_low_water: Most bytes the kernel may gather before it wakes
            the reactor while a large Content-Length body streams in
            (``SO_RCVLOWAT``; see ``DEFAULT_READ_LOW_WATER``), at most
            ``max_read_bytes``; 0 or 1 turns it off. Plain TCP on Linux
            with the default protocol only.
        read_low_water_delay: Seconds after the last read at which a
            raised low-water mark is dropped, so a sender that slows down
            waits at most this long (``DEFAULT_READ_LOW_WATER_DELAY``).
        limits: Parser limits for each connection's responses.
        protocol_factory: Builds each connection's protocol from the pool's
            quiescent callback; the default builds `HTTP11ClientProtocol`.
            Tests and custom protocols replace it.

    Raises:
        ValueError: A limit is not positive, or idle connections are allowed
            beyond the per-host cap.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        persistent: bool = True,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_connections_per_host: int = DEFAULT_MAX_CONNECTIONS_PER_HOST,
        max_idle_per_host: int = DEFAULT_MAX_IDLE_PER_HOST,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        queue_timeout: float = DEFAULT_QUEUE_TIMEOUT,
        retry_automatically: bool = True,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        read_low_water: int = DEFAULT_READ_LOW_WATER,
        read_low_water_delay: float = DEFAULT_READ_LOW_WATER_DELAY,
        limits: Limits | None = None,
        protocol_factory: ProtocolFactory | None = None,
    ) -> None:
        for name, value in (
            ("max_connections", max_connections),
            ("max_connections_per_host", max_connections_per_host),
            ("idle_timeout", idle_timeout),
            ("queue_timeout", queue_timeout),
            ("max_read_bytes", max_read_bytes),
            ("read_low_water_delay", read_low_water_delay),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        for name, value in (
            ("max_idle_per_host", max_idle_per_host),
            ("max_queued", max_queued),
            ("read_low_water", read_low_water),
        ):
            if value < 0:
                raise ValueError(f"{name} must not be negative, not {value!r}")
        if max_idle_per_host > max_connections_per_host:
            raise ValueError(
                f"max_idle_per_host ({max_idle_per_host}) is over "
                f"max_connections_per_host ({max_connections_per_host})"
            )
        self._clock = reactor
        self.persistent: Final = persistent
        self.max_connections: Final = max_connections
        self.max_connections_per_host: Final = max_connections_per_host
        self.max_idle_per_host: Final = max_idle_per_host if persistent else 0
        self.idle_timeout: Final = idle_timeout
        self.max_queued: Final = max_queued
        self.queue_timeout: Final = queue_timeout
        self.retry_automatically: Final = retry_automatically
        self.max_read_bytes: Final = max_read_bytes
        self.read_low_water: Final = min(read_low_water, max_read_bytes)
        self.read_low_water_delay: Final = read_low_water_delay
        self._limits = limits
        self._protocol_factory = protocol_factory or self._default_protocol
        self._hosts: dict[PoolKey, _Host] = {}
        self._total = 0
        self._queued = 0
        self._connecting = 0
        self._closing: set[PoolableConnection] = set()
        self._dispatching = False
        self._dispatch_again = False
        self._close_waiters: list[Deferred[None]] = []
        self._deadlines: dict[PoolableConnection, IDelayedCall] = {}
        self._sweeper: IDelayedCall | None = None

    # -- public API ---------------------------------------------------------

    def submit(
        self,
        key: PoolKey,
        connect: Callable[[], IStreamClientEndpoint],
        request: ClientRequest,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        total_timeout: float | None = None,
    ) -> Deferred[Response]:
        """
        Send ``request`` on a connection of ``key``, opening one if allowed.

        Args:
            key: Which connections may carry the request.
            connect: Returns the endpoint that opens a new connection for
                ``key``; called only when one is opened.
            request: The request; its ``persistent`` flag should match the
                pool's (`Agent` sees to it).
            connect_timeout: Seconds allowed to open a connection.
            total_timeout: Seconds for the whole exchange, from this call to
                the end of the response body, or ``None``. Before the head
                arrives, the request fails with `TotalTimeout`; after, the
                connection is aborted and the body ends with `ResponseFailed`
                wrapping `TotalTimeout`.

        Returns:
            A Deferred firing with the `Response`, or failing with
            `PoolQueueFull`, `PoolQueueTimeout`, `ConnectTimeout`,
            `TotalTimeout`, the endpoint's connection error, or whatever
            `HTTP11ClientProtocol.request` fails with. Cancelling it removes
            a queued request from the queue, or cancels the request (which
            aborts its connection).
        """
        if total_timeout is None:
            # The common case, kept free of closures and extra Deferreds: an
            # idle connection is at hand and no deadline must be watched, so
            # the caller gets the connection's own Deferred (cancelling it
            # aborts the request), with a retry chained only on failure.
            host = self._hosts.get(key)
            if host is not None and host.idle:
                connection = self._take_idle_connection(host)
                if connection is not None:
                    sent = connection.request(request)
                    if self.retry_automatically:
                        sent.addErrback(
                            self._retry_on_fresh, key, connect, request, connect_timeout
                        )
                    return sent
        return self._submit(
            key, connect, request, connect_timeout, total_timeout, fresh=False
        )

    def _retry_on_fresh(
        self,
        reason: Failure,
        key: PoolKey,
        connect: Callable[[], IStreamClientEndpoint],
        request: ClientRequest,
        connect_timeout: float,
    ) -> Failure | Deferred[Response]:
        """A request failed on a reused connection: retry it once if safe."""
        if is_safe_to_retry(request, reason):
            return self._submit(
                key, connect, request, connect_timeout, None, fresh=True
            )
        return reason

    def _submit(
        self,
        key: PoolKey,
        connect: Callable[[], IStreamClientEndpoint],
        request: ClientRequest,
        connect_timeout: float,
        total_timeout: float | None,
        *,
        fresh: bool,
    ) -> Deferred[Response]:
        """`submit`, the general way: queueing, deadline and retry."""
        current: list[Deferred[Any]] = []
        leases: list[_Lease] = []
        timers: list[IDelayedCall] = []

        def cancel(_: Deferred[Response]) -> None:
            if current:
                current[-1].cancel()

        result: Deferred[Response] = Deferred(cancel)

        def attempt(fresh: bool) -> None:
            acquired = self._acquire(key, connect, connect_timeout, fresh=fresh)
            current.append(acquired)
            acquired.addCallbacks(send, settle_failed)

        def send(lease: _Lease) -> None:
            leases.append(lease)
            if result.called:
                # Timed out or cancelled while the connection was handed
                # over: give it back untouched.
                self._on_quiescent(key, lease.connection)
                return
            sent = lease.connection.request(request)
            current.append(sent)
            if lease.reused and self.retry_automatically:
                sent.addCallbacks(settle_ok, retry_or_fail)
            else:
                sent.addCallbacks(settle_ok, settle_failed)

        def retry_or_fail(reason: Failure) -> None:
            if not result.called and is_safe_to_retry(request, reason):
                attempt(fresh=True)
            else:
                settle_failed(reason)

        def settle_ok(response: Response) -> None:
            if result.called:
                return
            if timers:
                # The deadline also covers the body: it ends when the
                # connection is released (quiescent or closed).
                self._deadlines[leases[-1].connection] = timers[0]
            result.callback(response)

        def settle_failed(reason: Failure) -> None:
            if timers and timers[0].active():
                timers[0].cancel()
            if not result.called:
                result.errback(reason)

        def expire() -> None:
            if not result.called:
                result.errback(Failure(TotalTimeout(limit, str(key))))
                if current:
                    current[-1].cancel()
            elif leases:
                connection = leases[-1].connection
                if self._deadlines.pop(connection, None) is not None:
                    connection.abort(TotalTimeout(limit, str(key)))

        if total_timeout is not None:
            limit = total_timeout
            timers.append(self._clock.callLater(total_timeout, expire))
        attempt(fresh=fresh)
        return result

    def stats(self) -> PoolStats:
        """Return a snapshot of idle, active, connecting and queued counts."""
        per_key = {
            key: HostStats(
                idle=len(host.idle),
                active=len(host.active),
                connecting=host.connecting,
                queued=max(0, len(host.waiters) - host.connecting),
            )
            for key, host in self._hosts.items()
        }
        return PoolStats(
            idle=sum(s.idle for s in per_key.values()),
            active=sum(s.active for s in per_key.values()),
            connecting=sum(s.connecting for s in per_key.values()),
            queued=sum(s.queued for s in per_key.values()),
            per_key=per_key,
        )

    def closeCachedConnections(self) -> Deferred[None]:
        """
        Close every idle connection, and the others as soon as they are idle.

        Requests already queued are still served, but while the returned
        Deferred is pending no connection is kept idle. The pool stays usable.

        Returns:
            A Deferred firing once the pool holds no socket at all (idle,
            active, connecting or closing), so a trial test that waits for it
            ends with a clean reactor.
        """
        for host in list(self._hosts.values()):
            while host.idle:
                self._abort(host, host.idle.popitem()[0])
        if self._total == 0:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._close_waiters.append(done)
        return done

    # -- acquiring ------------------------------------------------------------

    def _acquire(
        self,
        key: PoolKey,
        connect: Callable[[], IStreamClientEndpoint],
        connect_timeout: float,
        *,
        fresh: bool,
    ) -> Deferred[_Lease]:
        """Queue a waiter for ``key`` and serve what can be served now."""
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        if not fresh:
            lease = self._take_idle(key, host)
            if lease is not None:
                return succeed(lease)

        def cancel(_: Deferred[_Lease]) -> None:
            self._drop_waiter(waiter)

        waiter = _Waiter(
            key=key,
            connect=connect,
            connect_timeout=connect_timeout,
            fresh=fresh,
            deferred=Deferred(cancel),
        )
        # A retry goes first: it already waited its turn once.
        if fresh:
            host.waiters.appendleft(waiter)
        else:
            host.waiters.append(waiter)
        self._queued += 1
        deferred = waiter.deferred
        waiter.timer = self._clock.callLater(
            self.queue_timeout, self._queue_timed_out, waiter
        )
        self._dispatch()
        if not deferred.called and self._queued - self._connecting > self.max_queued:
            self._drop_waiter(waiter)
            return fail(PoolQueueFull(self.max_queued, str(key)))
        return deferred

    def _take_idle(self, key: PoolKey, host: _Host) -> _Lease | None:
        """Lease the most recently used idle connection still reusable."""
        connection = self._take_idle_connection(host)
        return None if connection is None else _Lease(connection, reused=True)

    def _take_idle_connection(self, host: _Host) -> PoolableConnection | None:
        """Pop the most recently used idle connection still reusable."""
        idle = host.idle
        while idle:
            connection = idle.popitem()[0]
            if connection.is_reusable():
                host.active.add(connection)
                return connection
            # It closed under us; count it as closing until it reports so.
            self._abort(host, connection)
        return None

    def _drop_waiter(self, waiter: _Waiter) -> None:
        """Forget a waiter that was cancelled or timed out."""
        host = self._hosts.get(waiter.key)
        if host is not None and waiter in host.waiters:
            host.waiters.remove(waiter)
            self._queued -= 1
            self._cancel_timer(waiter)
            self._forget_if_empty(waiter.key, host)

    def _queue_timed_out(self, waiter: _Waiter) -> None:
        """Fail a request that waited ``queue_timeout`` for a connection."""
        waiter.timer = None
        self._drop_waiter(waiter)
        waiter.deferred.errback(
            Failure(PoolQueueTimeout(self.queue_timeout, str(waiter.key)))
        )

    @staticmethod
    def _cancel_timer(waiter: _Waiter) -> None:
        if waiter.timer is not None:
            if waiter.timer.active():
                waiter.timer.cancel()
            waiter.timer = None

    def _pop_waiter(self, host: _Host, *, accept_fresh: bool) -> _Waiter | None:
        """Take the first waiter of ``host`` (skipping retries unless allowed)."""
        for waiter in host.waiters:
            if accept_fresh or not waiter.fresh:
                host.waiters.remove(waiter)
                self._queued -= 1
                self._cancel_timer(waiter)
                return waiter
        return None

    # -- dispatching ----------------------------------------------------------

    def _dispatch(self) -> None:
        """Serve queued requests as far as the limits allow."""
        # Serving a waiter runs its callbacks, which may close connections
        # and so come back here: loop instead of nesting.
        if self._dispatching:
            self._dispatch_again = True
            return
        self._dispatching = True
        try:
            self._dispatch_again = True
            while self._dispatch_again:
                self._dispatch_again = False
                self._dispatch_once()
        finally:
            self._dispatching = False

    def _dispatch_once(self) -> None:
        """One pass over the keys with waiters."""
        if not self._queued:
            return
        blocked_by_total = 0
        for key, host in list(self._hosts.items()):
            while True:
                if host.idle and any(not w.fresh for w in host.waiters):
                    lease = self._take_idle(key, host)
                    if lease is not None:
                        waiter = self._pop_waiter(host, accept_fresh=False)
                        assert waiter is not None
                        waiter.deferred.callback(lease)
                        continue
                unserved = len(host.waiters) - host.connecting
                if unserved <= 0 or host.count >= self.max_connections_per_host:
                    break
                if self._total >= self.max_connections:
                    blocked_by_total += unserved
                    break
                self._open(key, host)
        while blocked_by_total > len(self._closing) and self._evict_one_idle():
            pass

    def _evict_one_idle(self) -> bool:
        """Close one idle connection of a key nobody waits for, if any."""
        for host in self._hosts.values():
            if host.idle and not host.waiters:
                oldest = next(iter(host.idle))
                del host.idle[oldest]
                self._abort(host, oldest)
                return True
        return False

    def _open(self, key: PoolKey, host: _Host) -> None:
        """Open one connection for the waiters of ``key``."""
        first = host.waiters[host.connecting]
        # From now on the connect timeout bounds this waiter's wait.
        self._cancel_timer(first)
        host.connecting += 1
        self._connecting += 1
        self._total += 1

        def build() -> IProtocol:
            return self._protocol_factory(partial(self._on_quiescent, key))

        try:
            connecting = first.connect().connect(_PoolProtocolFactory(build))
        except Exception:  # a broken endpoint factory must not wedge the slot
            connecting = fail(Failure())
        timed_out: list[bool] = []

        def time_out() -> None:
            timed_out.append(True)
            connecting.cancel()

        timer = self._clock.callLater(first.connect_timeout, time_out)
        limit = first.connect_timeout

        def connected(protocol: IProtocol) -> None:
            if timer.active():
                timer.cancel()
            connection = cast(PoolableConnection, protocol)
            host.connecting -= 1
            self._connecting -= 1
            host.active.add(connection)
            connection.when_closed().addBoth(lambda _: self._on_closed(key, connection))
            waiter = self._pop_waiter(host, accept_fresh=True)
            if waiter is not None:
                waiter.deferred.callback(_Lease(connection, reused=False))
            else:
                self._on_quiescent(key, connection)

        def failed(reason: Failure) -> None:
            if timer.active():
                timer.cancel()
            host.connecting -= 1
            self._connecting -= 1
            self._total -= 1
            if timed_out:
                reason = Failure(ConnectTimeout(limit, str(key)))
            waiter = self._pop_waiter(host, accept_fresh=True)
            self._forget_if_empty(key, host)
            if waiter is not None:
                waiter.deferred.errback(reason)
            self._after_close()

        connecting.addCallbacks(connected, failed)

    # -- connections coming back ----------------------------------------------

    def _on_quiescent(self, key: PoolKey, connection: PoolableConnection) -> None:
        """A connection finished an exchange and can carry another request."""
        if self._deadlines:
            self._end_deadline(connection)
        host = self._hosts.get(key)
        if host is None or connection not in host.active:
            return
        if host.waiters:
            waiter = self._pop_waiter(host, accept_fresh=False)
            if waiter is not None:
                waiter.deferred.callback(_Lease(connection, reused=True))
                return
        host.active.discard(connection)
        if (
            self._close_waiters
            or len(host.idle) >= self.max_idle_per_host
            or (self._total >= self.max_connections and self._someone_needs_a_slot(key))
        ):
            self._abort(host, connection)
            return
        host.idle[connection] = self._clock.seconds()
        if self._sweeper is None:
            self._sweeper = self._clock.callLater(self.idle_timeout, self._sweep)

    def _someone_needs_a_slot(self, other_than: PoolKey) -> bool:
        """Whether another key waits only because the total cap is reached."""
        if self._total < self.max_connections:
            return False
        return any(
            host.waiters and host.count < self.max_connections_per_host
            for key, host in self._hosts.items()
            if key != other_than
        )

    def _sweep(self) -> None:
        """
        Close connections idle for ``idle_timeout``; plan the next sweep.

        One timer serves the whole pool, so a connection going idle and
        being reused again costs no timer of its own.
        """
        self._sweeper = None
        now = self._clock.seconds()
        next_expiry: float | None = None
        for host in list(self._hosts.values()):
            for connection, since in list(host.idle.items()):
                if now - since >= self.idle_timeout:
                    del host.idle[connection]
                    self._abort(host, connection)
                else:
                    expiry = since + self.idle_timeout
                    if next_expiry is None or expiry < next_expiry:
                        next_expiry = expiry
                    break  # the rest of this key went idle later
        if next_expiry is not None and self._sweeper is None:
            self._sweeper = self._clock.callLater(next_expiry - now, self._sweep)

    def _abort(self, host: _Host, connection: PoolableConnection) -> None:
        """Close a connection; it counts against the caps until it has closed."""
        host.active.add(connection)
        self._closing.add(connection)
        connection.abort()

    def _on_closed(self, key: PoolKey, connection: PoolableConnection) -> None:
        """A connection of ``key`` closed: free its slot."""
        self._end_deadline(connection)
        host = self._hosts.get(key)
        if host is None:
            return
        if connection in host.idle:
            del host.idle[connection]
        elif connection in host.active:
            host.active.discard(connection)
        else:
            return
        self._total -= 1
        self._closing.discard(connection)
        self._forget_if_empty(key, host)
        self._after_close()

    def _end_deadline(self, connection: PoolableConnection) -> None:
        """The exchange on ``connection`` is over: stop its total deadline."""
        timer = self._deadlines.pop(connection, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _after_close(self) -> None:
        """Serve waiters with the freed slot; report a fully closed pool."""
        self._dispatch()
        if self._total == 0 and self._sweeper is not None:
            if self._sweeper.active():
                self._sweeper.cancel()
            self._sweeper = None
        if self._total == 0 and self._close_waiters:
            waiters, self._close_waiters = self._close_waiters, []
            for done in waiters:
                done.callback(None)

    def _forget_if_empty(self, key: PoolKey, host: _Host) -> None:
        if host.is_empty() and self._hosts.get(key) is host:
            del self._hosts[key]

    def _default_protocol(self, quiescent: QuiescentCallback) -> IProtocol:
        """Build an `HTTP11ClientProtocol` that reports back to this pool."""
        return _ReadSizingProtocol(
            quiescent,
            clock=self._clock,
            limits=self._limits,
            max_read_bytes=self.max_read_bytes,
            read_low_water=self.read_low_water,
            read_low_water_delay=self.read_low_water_delay,
        )


class _ReadSizingProtocol(HTTP11ClientProtocol):
    """
    `HTTP11ClientProtocol` whose socket reads grow while a big body streams.

    Reads start at the socket transport's own ``bufferSize`` (capped at
    ``max_read_bytes``); a read that fills it switches the socket to
    ``max_read_bytes`` and a read no larger than the starting size switches
    it back (see `DEFAULT_MAX_READ_BYTES` for why not always read big).
    Twisted also uses ``bufferSize`` as the write buffer size past which a
    request body producer is paused; that bound moves with it, within
    ``max_read_bytes``.

    Over TCP on Linux, a read of at least the starting size also sets the
    socket's low-water mark for the next one (`ReadLowWater`, up to
    ``read_low_water``), from the body bytes still to come.
    """

    def __init__(
        self,
        quiescent: QuiescentCallback,
        *,
        clock: IReactorTime,
        limits: Limits | None,
        max_read_bytes: int,
        read_low_water: int = 0,
        read_low_water_delay: float = DEFAULT_READ_LOW_WATER_DELAY,
    ) -> None:
        super().__init__(quiescent, clock=clock, limits=limits)
        self._max_read_bytes = max_read_bytes
        self._base_read_bytes = max_read_bytes
        self._socket: FileDescriptor | None = None
        self._read_low_water = read_low_water
        self._read_low_water_delay = read_low_water_delay
        self._low_water: ReadLowWater | None = None
        self._body_idle_timeout: float | None = None

    def connectionMade(self) -> None:
        """Find the socket transport (not there under TLS) and its read size."""
        super().connectionMade()
        transport: object = self.transport
        if isinstance(transport, FileDescriptor):
            base = min(transport.bufferSize, self._max_read_bytes)
            transport.bufferSize = self._base_read_bytes = base
            if base < self._max_read_bytes:
                self._socket = transport
            if self._read_low_water > 1:
                sock = low_water_socket(transport)
                if sock is not None:
                    self._low_water = ReadLowWater(
                        sock,
                        self._clock,
                        most=self._read_low_water,
                        least=max(2, base),
                        delay=self._read_low_water_delay,
                    )

    def request(self, request: ClientRequest) -> Deferred[Response]:
        """Note the request's body idle timeout (it bounds the mark's wait)."""
        self._body_idle_timeout = request.body_idle_timeout
        return HTTP11ClientProtocol.request(self, request)

    def dataReceived(self, data: bytes) -> None:
        """Adjust the next read's size to this one's, then handle ``data``."""
        size = len(data)
        socket = self._socket
        if socket is not None:
            if size >= socket.bufferSize:
                prepare_allocator(self._max_read_bytes)
                socket.bufferSize = self._max_read_bytes
            elif size <= self._base_read_bytes:
                socket.bufferSize = self._base_read_bytes
        HTTP11ClientProtocol.dataReceived(self, data)
        low_water = self._low_water
        if low_water is not None and (
            size >= self._base_read_bytes or low_water.mark != 1
        ):
            low_water.after_read(self.body_bytes_to_receive(), self._body_idle_timeout)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Stop the low-water mark's timer, then end as the protocol does."""
        low_water = self._low_water
        if low_water is not None:
            self._low_water = None
            low_water.stop()
        HTTP11ClientProtocol.connectionLost(self, reason)
