# -*- test-case-name: txhttp.test.test_client_connection -*-
"""
`HTTPClientConnection`: one HTTP/1.1 client connection driven by callbacks.

For code that wants plain callbacks rather than a Deferred per request or per
chunk (proxies, crawlers, load generators, streaming gateways). The
connection connects (TCP through an endpoint, TLS through `TLSEndpoint`),
runs each request through a `ClientExchange` and reports every step to an
`HTTPClientLifecycleEventReceiver`. It also offers one-shot
timers, receive-side pause and resume, and an idle timeout, all on an
injected clock.

Its life is the `ConnectionState` machine: every legal move is a row of
`_TRANSITIONS` and `_advance` refuses the rest. Receiver callbacks go through
one dispatcher that never nests them: an event raised while a callback runs
waits in a bounded queue until it returns.

Over a plain TCP transport with nothing in its write buffer, request bytes
go to the socket at once (``writeSomeData``, see ``write_through``) instead of
waiting for the reactor's next turn; anything else is written the usual way,
in order.

The exchange itself (writing the request, ``Expect: 100-continue``,
parsing, interim responses, the early-response rule, the per-request waits
of `ClientRequest` and the keep-alive verdict) is `ClientExchange`, shared
with `HTTP11ClientProtocol`; this module turns what it reports into receiver
callbacks.

Left out: pooling, retries, redirects, proxies and protocol switching (a 101
or a 2xx to CONNECT ends the connection after ``on_response_complete``).
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Callable, Mapping
from enum import Enum, auto
from typing import Final, cast

import idna
from OpenSSL import SSL
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import DNSLookupError, TCPTimedOutError
from twisted.internet.error import TimeoutError as ConnectTimedOut
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProducer,
    IProtocol,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.tcp import Connection as TCPConnection
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from txhttp._wire import (
    END_OF_MESSAGE,
    BodyKind,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    ResponseHead,
)
from txhttp.client._errors import HTTPTimeout, RequestNotSent, TLSHandshakeFailed
from txhttp.client._exchange import (
    DEFAULT_CLIENT_LIMITS,
    ClientExchange,
    serialize_head,
)
from txhttp.client._lifecycle import (
    ConnectionFailureReason,
    HTTPClientLifecycleEventReceiver,
    TimerToken,
    response_for,
)
from txhttp.client._producers import BytesBodyProducer
from txhttp.client._request import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    ClientRequest,
)
from txhttp.client._tls import TLSEndpoint
from txhttp.client._writethrough import write_through

__all__ = [
    "DEFAULT_CALLBACK_CONNECT_TIMEOUT",
    "DEFAULT_CALLBACK_IDLE_TIMEOUT",
    "DEFAULT_MAX_QUEUED_EVENTS",
    "ConnectionInput",
    "ConnectionState",
    "HTTPClientConnection",
]

DEFAULT_CALLBACK_CONNECT_TIMEOUT: Final = 30.0
"""Seconds for name lookup, TCP connect and TLS handshake together (as the
pool's ``DEFAULT_CONNECT_TIMEOUT``)."""

DEFAULT_CALLBACK_IDLE_TIMEOUT: Final = 60.0
"""
Seconds without a byte sent or received before the connection is closed.

Servers commonly drop idle keep-alive connections after 5 to 75 s; a minute
notices a dead peer without cutting a slow but live response short. Time
spent with reading paused by the receiver does not count.
"""

DEFAULT_MAX_QUEUED_EVENTS: Final = 1024
"""
Events held while a receiver callback runs. Only a callback that loops on
the connection (e.g. sets thousands of zero-second timers that fire inside
it) can fill it; past it the connection is closed as broken.
"""

_log = Logger()


class ConnectionState(Enum):
    """Where an `HTTPClientConnection` is in its life; see ``_TRANSITIONS``."""

    # Members are singletons compared by identity, so the identity hash is
    # consistent with equality; Enum's own hashes the name in Python, and
    # ``_advance`` hashes a state and an input a few times per request.
    __hash__ = object.__hash__

    NEW = auto()
    """Built; ``connect()`` not called yet."""
    CONNECTING = auto()
    """Looking up, connecting, handshaking."""
    IDLE = auto()
    """Connected and no request in progress, so ``send_request`` is accepted."""
    SENDING = auto()
    """A request body is being written; its response may be arriving."""
    RECEIVING = auto()
    """The request is written; its response is awaited or being read."""
    SENDING_AFTER_RESPONSE = auto()
    """The response is complete but the request body is still being written."""
    CLOSING = auto()
    """We are ending the connection; ``on_closed`` follows its loss."""
    CLOSED = auto()
    """Closed after connecting (or closed while connecting). Final."""
    FAILED = auto()
    """The connection attempt failed. Final."""


class ConnectionInput(Enum):
    """What can happen to an `HTTPClientConnection`; columns of ``_TRANSITIONS``."""

    __hash__ = object.__hash__  # as ConnectionState's

    CONNECT = auto()
    """``connect()`` was called."""
    CONNECTED = auto()
    """The endpoint connected (after TLS verification, for TLS)."""
    CONNECT_FAILED = auto()
    """The endpoint failed, or the connect timeout fired."""
    SEND = auto()
    """``send_request`` wrote a request head."""
    WRITTEN = auto()
    """The whole request (head and body) was written."""
    RESPONSE_DONE = auto()
    """The final response, body included, was received."""
    CLOSE = auto()
    """We end the connection (``close()``, an error, a timeout, no reuse)."""
    LOST = auto()
    """The transport called ``connectionLost``."""


_S = ConnectionState
_I = ConnectionInput
_OPEN: Final = (_S.IDLE, _S.SENDING, _S.RECEIVING, _S.SENDING_AFTER_RESPONSE)
_ST_IDLE: Final = ConnectionState.IDLE
_ST_SENDING: Final = ConnectionState.SENDING
_ST_RECEIVING: Final = ConnectionState.RECEIVING
_ST_SENDING_AFTER_RESPONSE: Final = ConnectionState.SENDING_AFTER_RESPONSE
_IN_SEND: Final = ConnectionInput.SEND
_IN_WRITTEN: Final = ConnectionInput.WRITTEN
_IN_RESPONSE_DONE: Final = ConnectionInput.RESPONSE_DONE
_BK_NONE: Final = BodyKind.NONE
_BK_TUNNEL: Final = BodyKind.TUNNEL

_TRANSITIONS: Final[
    Mapping[tuple[ConnectionState, ConnectionInput], ConnectionState]
] = {
    (_S.NEW, _I.CONNECT): _S.CONNECTING,
    (_S.NEW, _I.CLOSE): _S.CLOSED,
    (_S.CONNECTING, _I.CONNECTED): _S.IDLE,
    (_S.CONNECTING, _I.CONNECT_FAILED): _S.FAILED,
    (_S.CONNECTING, _I.CLOSE): _S.CLOSED,
    (_S.IDLE, _I.SEND): _S.SENDING,
    (_S.SENDING, _I.WRITTEN): _S.RECEIVING,
    (_S.SENDING, _I.RESPONSE_DONE): _S.SENDING_AFTER_RESPONSE,
    (_S.RECEIVING, _I.RESPONSE_DONE): _S.IDLE,
    (_S.SENDING_AFTER_RESPONSE, _I.WRITTEN): _S.IDLE,
    # Closing is legal from every open state and from CLOSING itself.
    **{(state, _I.CLOSE): _S.CLOSING for state in (*_OPEN, _S.CLOSING)},
    # Losing the transport is legal once connected, and final.
    **{(state, _I.LOST): _S.CLOSED for state in (*_OPEN, _S.CLOSING)},
}
"""Every legal move of a connection, written once: (state, input) -> state."""


def _classify(reason: Failure, timed_out: bool) -> ConnectionFailureReason:
    """Which `ConnectionFailureReason` a failed connection attempt gets."""
    if timed_out:
        return ConnectionFailureReason.TIMEOUT
    error = reason.value
    if isinstance(error, DNSLookupError):
        return ConnectionFailureReason.DNS
    if isinstance(error, (TLSHandshakeFailed, SSL.Error)):
        return ConnectionFailureReason.SSL
    if isinstance(error, (ConnectTimedOut, TCPTimedOutError, TimeoutError)):
        return ConnectionFailureReason.TIMEOUT
    return ConnectionFailureReason.TCP


def _host_field(host: str, port: int, default_port: int) -> bytes:
    """The ``Host`` field value for ``host:port`` (RFC 9110, section 7.2)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = idna.encode(host, uts46=True) if not host.isascii() else host.encode()
    else:
        name = f"[{host}]".encode() if address.version == 6 else host.encode()
    return name if port == default_port else b"%s:%d" % (name, port)


@implementer(IPushProducer)
class _TransportProtocol(Protocol):
    """The Twisted side of a connection: forwards to its `HTTPClientConnection`.

    It is also the transport's (push) producer, so a full send buffer reaches
    the connection as ``pauseProducing``.
    """

    def __init__(self, connection: HTTPClientConnection) -> None:
        self._connection = connection

    def connectionMade(self) -> None:
        """Hand the transport to the connection."""
        transport = self.transport
        assert transport is not None
        self._connection._transport_made(transport, self)

    def dataReceived(self, data: bytes) -> None:
        """Forward received bytes."""
        self._connection._data_received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Forward the loss."""
        self._connection._connection_lost(reason)

    def pauseProducing(self) -> None:
        """The transport's send buffer is full."""
        self._connection._throttle()

    def resumeProducing(self) -> None:
        """The transport's send buffer drained."""
        self._connection._unthrottle()

    def stopProducing(self) -> None:
        """The transport is going away: stop any body being written."""
        self._connection._stop_body()


class _OneProtocolFactory(Factory):
    """Builds the connection's protocol, once."""

    def __init__(self, protocol: _TransportProtocol) -> None:
        self._protocol: _TransportProtocol | None = protocol

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        """Return the protocol the first time, ``None`` afterwards."""
        protocol, self._protocol = self._protocol, None
        return protocol


@implementer(IConsumer)
class _BodyConsumer:
    """What a `BodyWriter` writes to: the transport, with our flow control."""

    __slots__ = ("_connection",)

    def __init__(self, connection: HTTPClientConnection) -> None:
        self._connection = connection

    def write(self, data: bytes) -> None:
        """Send body bytes (already framed by the writer)."""
        self._connection._write(data)

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """The writer starts: it will be paused while the transport is full."""
        self._connection._body_producer_registered(cast(IPushProducer, producer))

    def unregisterProducer(self) -> None:
        """The writer is done."""
        self._connection._body_producer_registered(None)


class HTTPClientConnection:
    """
    One HTTP/1.1 client connection reporting to a lifecycle receiver.

    Building it does no I/O: call `connect` to start. One request may be in
    progress at a time; after ``on_response_complete`` the same connection
    takes the next one (keep-alive), unless the exchange forbade reuse.

    Args:
        reactor: Provides ``IReactorTime`` (timers, timeouts) and, unless
            ``endpoint`` is given, ``IReactorTCP`` and a name resolver.
        host: The server's host name or IP address; also the ``Host``
            field and, with TLS, the name the certificate must match.
        port: The server's port.
        receiver: Gets the events; see `HTTPClientLifecycleEventReceiver`.
        tls: Secure the connection with this policy (a `TLSPolicy` gives
            verification, SNI, ALPN and clear errors); ``None`` for plain
            HTTP.
        connect_timeout: Seconds for lookup, connect and TLS handshake.
        idle_timeout: Seconds without I/O before the connection is closed;
            ``None`` only if the caller enforces its own limit.
        limits: Wire limits for parsing responses (``DEFAULT_CLIENT_LIMITS``
            by default: bodies are streamed, so their size is not capped).
        endpoint: How to reach the server, instead of ``HostnameEndpoint``
            (a UNIX socket, a test double); TLS is layered on top of it.
        max_queued_events: Bound of the queue of events held while a
            callback runs (``DEFAULT_MAX_QUEUED_EVENTS``).

    Raises:
        ValueError: A timeout is not positive, or the port is out of range.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        host: str,
        port: int,
        receiver: HTTPClientLifecycleEventReceiver,
        *,
        tls: IPolicyForHTTPS | None = None,
        connect_timeout: float = DEFAULT_CALLBACK_CONNECT_TIMEOUT,
        idle_timeout: float | None = DEFAULT_CALLBACK_IDLE_TIMEOUT,
        limits: Limits | None = None,
        endpoint: IStreamClientEndpoint | None = None,
        max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(
                f"connect_timeout must be > 0 seconds, got {connect_timeout!r}"
            )
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(
                f"idle_timeout must be > 0 seconds or None, got {idle_timeout!r}"
            )
        if not 0 < port < 65536:
            raise ValueError(f"port must be 1 to 65535, got {port!r}")
        if max_queued_events < 1:
            raise ValueError(
                f"max_queued_events must be >= 1, got {max_queued_events!r}"
            )
        self._reactor = reactor
        self._clock = reactor
        self.host: Final = host
        self.port: Final = port
        self._receiver = receiver
        self._tls = tls
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._endpoint = endpoint
        self._max_queued = max_queued_events
        self._host_field = _host_field(host, port, 80 if tls is None else 443)
        # The exchange's timer stays scheduled between requests (one timer
        # call per connection, not per request); it is cancelled on close.
        self._exchange = ClientExchange(
            self,
            reactor,
            limits if limits is not None else DEFAULT_CLIENT_LIMITS,
            keep_timer=True,
        )
        self._consumer = _BodyConsumer(self)
        self._state = ConnectionState.NEW
        self._transport: ITransport | None = None
        self._socket: TCPConnection | None = None
        self._attempt: Deferred[IProtocol] | None = None
        self._connect_timer: IDelayedCall | None = None
        self._timed_out = False
        self._connect_failure: Failure | None = None
        self._idle_timer: IDelayedCall | None = None
        self._last_activity = 0.0
        self._timers: dict[TimerToken, IDelayedCall] = {}
        self._timer_serial = 0
        self._cached_request: ClientRequest | None = None
        self._cached_head = b""
        self._body_producer: IPushProducer | None = None
        self._lost = False
        self._throttled = False
        self._throttle_reported = False
        self._in_callback = False
        self._draining = False
        self._process_queued = False
        self._pending: deque[tuple[Callable[..., object], tuple[object, ...], bool]] = (
            deque()
        )

    # -- state queries --------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """The current `ConnectionState` (read-only)."""
        return self._state

    @property
    def connect_failure(self) -> Failure | None:
        """Why the attempt failed, once ``on_connection_failure`` was called."""
        return self._connect_failure

    def is_connected(self) -> bool:
        """Whether the connection is up and not closing."""
        return self._state in _OPEN

    def is_idle(self) -> bool:
        """Whether `send_request` would accept a request now."""
        return self._state is ConnectionState.IDLE

    def is_closed(self) -> bool:
        """Whether the connection ended (closed, or the attempt failed)."""
        return (
            self._state is ConnectionState.CLOSED
            or self._state is ConnectionState.FAILED
        )

    def is_throttled(self) -> bool:
        """Whether the send buffer is full (between throttle callbacks)."""
        return self._throttled

    def is_reading_paused(self) -> bool:
        """Whether `pause_reading` is in effect."""
        return self._exchange.is_reading_paused()

    # -- connecting and closing -----------------------------------------------

    def connect(self) -> None:
        """
        Start connecting; ``on_connected`` or ``on_connection_failure``
        follows (possibly before this returns, e.g. for a failed lookup).

        Raises:
            ValueError: ``connect()`` was called before or after `close`.
        """
        if self._state is not ConnectionState.NEW:
            raise ValueError(
                "connect() may be called once, on a new connection; "
                f"state is {self._state.name}"
            )
        self._advance(ConnectionInput.CONNECT)
        protocol = _TransportProtocol(self)
        endpoint = self._build_endpoint()
        self._connect_timer = self._clock.callLater(
            self._connect_timeout, self._connect_timed_out
        )
        try:
            attempt = endpoint.connect(_OneProtocolFactory(protocol))
        except Exception:
            self._connect_failed(Failure())
            return
        self._attempt = attempt
        attempt.addCallbacks(self._connected, self._connect_failed)

    def close(self) -> None:
        """
        Close the connection politely (written data is flushed first).

        A request in progress is abandoned. ``on_closed`` follows once the
        transport is gone; closing while connecting cancels the attempt and
        calls ``on_closed`` at once. Closing a closed connection does nothing.
        """
        state = self._state
        if state is ConnectionState.NEW or state is ConnectionState.CONNECTING:
            self._advance(ConnectionInput.CLOSE)
            self._cancel_connect_timer()
            attempt, self._attempt = self._attempt, None
            if attempt is not None:
                attempt.addErrback(lambda _: None)
                attempt.cancel()
            self._finish()
            return
        if state in _OPEN:
            self._shut(abort=False)

    # -- requests ---------------------------------------------------------------

    @staticmethod
    def build_request(
        method: bytes,
        target: bytes,
        headers: Headers | None = None,
        body: bytes | IBodyProducer | None = None,
        *,
        persistent: bool = True,
        response_head_timeout: float | None = DEFAULT_RESPONSE_HEAD_TIMEOUT,
        body_idle_timeout: float | None = DEFAULT_BODY_IDLE_TIMEOUT,
        expect_continue_timeout: float = DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    ) -> ClientRequest:
        """
        Build a validated `ClientRequest` for `send_request`.

        A request built from ``bytes`` (or no body) may be sent any number of
        times, on any connection; reusing one saves validating and
        serializing it again.

        Args:
            method: The method token, e.g. ``b"GET"``.
            target: The request-target, e.g. ``b"/path?q=1"``.
            headers: Header fields; ``Host`` is added by the connection if
                absent.
            body: The body: ``bytes`` (sent with ``Content-Length``), a
                producer (its ``length`` decides the framing), or ``None``.
            persistent: False adds ``Connection: close``.
            response_head_timeout: Seconds from the end of the request to
                the final response head (``None``: no limit); see
                `ClientRequest`.
            body_idle_timeout: Seconds the response body may go without a
                byte (``None``: no limit).
            expect_continue_timeout: Seconds a body sent with ``Expect:
                100-continue`` waits for ``100 Continue`` before going anyway.

        Raises:
            LocalProtocolError: A method, target or field could inject.
            ValueError: A timeout is negative.
        """
        producer = BytesBodyProducer(body) if isinstance(body, bytes) else body
        return ClientRequest(
            method,
            target,
            headers if headers is not None else Headers(),
            producer,
            persistent=persistent,
            response_head_timeout=response_head_timeout,
            body_idle_timeout=body_idle_timeout,
            expect_continue_timeout=expect_continue_timeout,
        )

    def send_request(self, request: ClientRequest) -> None:
        """
        Send one request; its response comes through the receiver.

        The head is written at once with ``Host`` added if missing; a body
        follows through its producer (paused while the transport is full),
        after ``100 Continue`` (or ``expect_continue_timeout``) if the
        request has ``Expect: 100-continue``; a final status instead of
        ``100 Continue`` means the body is never sent. The request's
        ``response_head_timeout`` and ``body_idle_timeout`` apply: when one
        runs out the connection is aborted, ``on_response_timeout`` and then
        ``on_closed`` follow. ``persistent=False`` requests, and responses
        that forbid reuse, close the connection after
        ``on_response_complete``.

        Raises:
            RequestNotSent: The connection is not idle: a request is in
                progress, or it is connecting, closing or closed. Nothing
                was written.
            LocalProtocolError: The head cannot be serialized.
        """
        if self._state is not _ST_IDLE:
            raise RequestNotSent(
                f"send_request refused: the connection is {self._state.name}"
                + (
                    "; only one request may be in progress: "
                    "wait for on_response_complete"
                    if self._state in _OPEN
                    else ""
                )
            )
        if request is self._cached_request:
            head = self._cached_head
        else:
            head = serialize_head(request, self._host_field)
            self._cached_request = request
            self._cached_head = head
        self._advance(_IN_SEND)
        exchange = self._exchange
        exchange.begin(request)
        exchange.send(head, self._consumer)

    # -- timers -----------------------------------------------------------------

    def set_timer(self, seconds: float) -> TimerToken:
        """
        Arm a one-shot timer: ``on_timer(token)`` after ``seconds``.

        It fires whatever the I/O (unlike the idle timeout) and is consumed
        before ``on_timer`` runs. Pending timers are cancelled when the
        connection ends.

        Raises:
            ValueError: ``seconds`` is negative or NaN, or the connection
                has ended.
        """
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        if self.is_closed():
            raise ValueError(f"set_timer on an ended connection ({self._state.name})")
        self._timer_serial += 1
        token = TimerToken(self._timer_serial, seconds)
        self._timers[token] = self._clock.callLater(seconds, self._timer_fired, token)
        return token

    def cancel_timer(self, token: TimerToken) -> bool:
        """
        Cancel a pending timer.

        Returns:
            True if it was pending; False if it already fired, was cancelled
            or belongs to another connection.
        """
        call = self._timers.pop(token, None)
        if call is None:
            return False
        call.cancel()
        return True

    # -- receive-side flow control --------------------------------------------

    def pause_reading(self) -> None:
        """
        Stop reading: no more ``on_body_chunk`` (or other response events)
        until `resume_reading`. Takes effect as soon as the current callback
        returns; the transport stops reading, so the server slows down.
        """
        exchange = self._exchange
        if exchange.is_reading_paused():
            return
        exchange.pause_reading()
        if self._transport is not None and self._state in _OPEN:
            cast(IPushProducer, self._transport).pauseProducing()

    def resume_reading(self) -> None:
        """Undo `pause_reading`: deliver held events, then read again."""
        exchange = self._exchange
        if not exchange.is_reading_paused():
            return
        exchange.resume_reading()
        self._last_activity = self._clock.seconds()
        if self._transport is not None and self._state in _OPEN:
            cast(IPushProducer, self._transport).resumeProducing()
            self._process()

    # -- the transport's side (via _TransportProtocol) -------------------------

    def _transport_made(
        self, transport: ITransport, protocol: _TransportProtocol
    ) -> None:
        self._transport = transport
        self._socket = transport if isinstance(transport, TCPConnection) else None
        if ITCPTransport.providedBy(transport):
            # A request head must not wait for an ACK (Nagle).
            transport.setTcpNoDelay(True)
        cast(IConsumer, transport).registerProducer(protocol, True)

    def _data_received(self, data: bytes) -> None:
        state = self._state
        if state is _ST_SENDING or state is _ST_RECEIVING:
            self._last_activity = self._clock.seconds()
            exchange = self._exchange
            exchange.feed(data)
            if self._in_callback:
                self._process()
            else:
                exchange.process()
        elif state is _ST_IDLE:
            # Bytes nobody asked for: the server is confused or closing.
            self._shut(abort=True)
        elif state is _ST_SENDING_AFTER_RESPONSE:
            self._exchange.feed(data)  # beyond the response: no reuse
        # CLOSING: the bytes are moot.

    def _connection_lost(self, reason: Failure) -> None:
        if self._in_callback:
            self._defer(self._connection_lost, reason)
            return
        state = self._state
        if state not in _OPEN and state is not ConnectionState.CLOSING:
            # Lost before the endpoint reported success (its Deferred says
            # why), or after the end: nothing to tell the receiver here.
            self._lost = True
            return
        self._lost = True
        if state is _ST_SENDING or state is _ST_RECEIVING:
            # Let the parser end a body read until close, or report truncation.
            self._exchange.connection_lost()
        self._exchange.abandon()
        self._body_producer = None
        self._advance(ConnectionInput.LOST)
        self._finish()

    def _throttle(self) -> None:
        if self._throttled:
            return
        self._throttled = True
        producer = self._body_producer
        if producer is not None:
            producer.pauseProducing()
        if self._state in _OPEN:
            self._throttle_reported = True
            self._emit(self._receiver.on_throttled)

    def _unthrottle(self) -> None:
        if not self._throttled:
            return
        self._throttled = False
        producer = self._body_producer
        if producer is not None:
            producer.resumeProducing()
        if self._throttle_reported:
            # Only after an on_throttled: the pair always alternates.
            self._throttle_reported = False
            if self._state in _OPEN:
                self._emit(self._receiver.on_unthrottled)

    # -- connecting -------------------------------------------------------------

    def _build_endpoint(self) -> IStreamClientEndpoint:
        endpoint = self._endpoint
        if endpoint is None:
            # HostnameEndpoint's own timeout backs ours up; ours fires first.
            endpoint = HostnameEndpoint(
                self._reactor,
                idna.encode(self.host, uts46=True)
                if not self.host.isascii()
                else self.host.encode(),
                self.port,
                timeout=math.ceil(self._connect_timeout) + 1,
            )
        tls = self._tls
        if tls is None:
            return endpoint
        try:
            ipaddress.ip_address(self.host)
            server_name = self.host.encode("ascii")
        except ValueError:
            server_name = idna.encode(self.host, uts46=True)
        creator = tls.creatorForNetloc(server_name, self.port)
        return TLSEndpoint(creator, endpoint, self.host, self.port)

    def _connect_timed_out(self) -> None:
        self._connect_timer = None
        self._timed_out = True
        attempt = self._attempt
        if attempt is not None:
            attempt.cancel()

    def _cancel_connect_timer(self) -> None:
        timer, self._connect_timer = self._connect_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _connected(self, protocol: IProtocol) -> None:
        self._attempt = None
        self._cancel_connect_timer()
        transport = self._transport
        if self._state is not ConnectionState.CONNECTING:
            # Closed by the caller meanwhile: drop what was connected.
            if transport is not None:
                cast(ITCPTransport, transport).abortConnection()
            return
        if transport is None:
            self._connect_failed(
                Failure(RuntimeError("bug: the endpoint connected no transport"))
            )
            return
        self._advance(ConnectionInput.CONNECTED)
        self._last_activity = self._clock.seconds()
        if self._idle_timeout is not None:
            self._idle_timer = self._clock.callLater(
                self._idle_timeout, self._idle_check
            )
        self._emit(self._receiver.on_connected, self)

    def _connect_failed(self, reason: Failure) -> None:
        self._attempt = None
        self._cancel_connect_timer()
        if self._state is not ConnectionState.CONNECTING:
            return  # closed by the caller meanwhile
        self._connect_failure = reason
        self._advance(ConnectionInput.CONNECT_FAILED)
        self._cancel_all_timers()
        self._emit(
            self._receiver.on_connection_failure, _classify(reason, self._timed_out)
        )

    # -- writing ----------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or self._lost:
            return
        self._last_activity = self._clock.seconds()  # sending is I/O too
        socket = self._socket
        if socket is not None:
            # A request head (or body piece) goes to the kernel now when
            # nothing is buffered, instead of on the reactor's next turn.
            write_through(socket, data)
            return
        transport.write(data)

    def _body_producer_registered(self, producer: IPushProducer | None) -> None:
        self._body_producer = producer
        if producer is not None and self._throttled:
            producer.pauseProducing()

    def _stop_body(self) -> None:
        self._exchange.stop_body()
        self._body_producer = None

    # -- ExchangeSink: what the exchange reports -------------------------------

    def _process(self) -> None:
        """Let the exchange act on received bytes, never inside a callback."""
        if self._in_callback:
            # Continue once the running callback returns, never inside it.
            if not self._process_queued:
                self._process_queued = True
                self._defer(self._process_later)
            return
        self._exchange.process()

    def _process_later(self) -> None:
        self._process_queued = False
        self._process()

    def _exchange_written(self) -> None:
        """The whole request is on the wire (or its body will never be sent)."""
        self._advance(_IN_WRITTEN)
        if self._state is _ST_IDLE and not self._exchange.allows_reuse():
            # The response came first, then bytes beyond it: no reuse.
            self._shut(abort=False)

    def _exchange_write_failed(self, failure: Failure) -> None:
        """The body producer failed or lied about its length."""
        _log.failure(
            "request body to {host}:{port} failed; closing the connection",
            failure,
            host=self.host,
            port=self.port,
        )
        self._shut(abort=True)

    def _exchange_head(self, head: ResponseHead, request: ClientRequest) -> None:
        kind = head.framing.kind
        response = response_for(
            request.method, head, kind is not _BK_NONE and kind is not _BK_TUNNEL
        )
        self._emit(self._receiver.on_response, response)

    def _exchange_body(self, data: bytes) -> None:
        self._emit(self._receiver.on_body_chunk, data)

    def _exchange_done(self, end: EndOfMessage) -> None:
        self._advance(_IN_RESPONSE_DONE)
        if not self._exchange.allows_reuse():
            # Includes an early response whose body the exchange stopped.
            self._shut(abort=False)
        self._emit(self._receiver.on_response_complete)

    def _exchange_tunnel(self, head: ResponseHead, request: ClientRequest) -> None:
        self._exchange_head(head, request)
        if self._state in _OPEN:
            # No protocol switching here: the exchange ends, so does HTTP.
            self._exchange_done(END_OF_MESSAGE)

    def _exchange_broken(self, error: RemoteProtocolError) -> None:
        self._shut(abort=True)
        self._emit(self._receiver.on_parse_error, error)

    def _exchange_timed_out(self, error: HTTPTimeout) -> None:
        _log.info(
            "aborting connection to {host}:{port}: {error}",
            host=self.host,
            port=self.port,
            error=str(error),
        )
        self._shut(abort=True)
        self._emit(self._receiver.on_response_timeout, error)

    # -- timers -----------------------------------------------------------------

    def _timer_fired(self, token: TimerToken) -> None:
        if self._timers.pop(token, None) is not None:
            self._emit(self._receiver.on_timer, token)

    def _idle_check(self) -> None:
        self._idle_timer = None
        limit = self._idle_timeout
        assert limit is not None
        if self._state not in _OPEN:
            return
        now = self._clock.seconds()
        if self._exchange.is_reading_paused():
            self._last_activity = now  # our own pause is not the peer's idleness
        remaining = self._last_activity + limit - now
        if remaining > 0:
            self._idle_timer = self._clock.callLater(remaining, self._idle_check)
            return
        _log.info(
            "closing connection to {host}:{port}: no I/O for {limit} s",
            host=self.host,
            port=self.port,
            limit=limit,
        )
        self._shut(abort=True)

    def _cancel_all_timers(self) -> None:
        self._cancel_connect_timer()
        self._exchange.abandon()
        idle, self._idle_timer = self._idle_timer, None
        if idle is not None and idle.active():
            idle.cancel()
        timers = list(self._timers.values())
        self._timers.clear()
        for call in timers:
            call.cancel()

    # -- ending -----------------------------------------------------------------

    def _shut(self, *, abort: bool) -> None:
        """End an open connection: stop the body, close the transport."""
        if self._state is ConnectionState.CLOSING:
            if abort and self._transport is not None and not self._lost:
                cast(ITCPTransport, self._transport).abortConnection()
            return
        self._advance(ConnectionInput.CLOSE)
        self._exchange.abandon()
        self._body_producer = None
        transport = self._transport
        if transport is None or self._lost:
            return
        if abort:
            # abortConnection is on ITCPTransport and TLS transports.
            cast(ITCPTransport, transport).abortConnection()
        else:
            # A registered producer would keep a paused transport open.
            cast(IConsumer, transport).unregisterProducer()
            transport.loseConnection()

    def _finish(self) -> None:
        """The connection ended after connecting (or was closed connecting)."""
        self._cancel_all_timers()
        self._emit(self._receiver.on_closed)

    # -- the state machine ------------------------------------------------------

    def _advance(self, event: ConnectionInput) -> None:
        """Apply ``event`` to the state, or refuse it as a bug."""
        try:
            self._state = _TRANSITIONS[self._state, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    # -- calling the receiver ---------------------------------------------------

    def _emit(self, callback: Callable[..., object], *args: object) -> None:
        """Call a receiver method now, or after the one running returns."""
        if self._in_callback:
            self._enqueue(callback, args, True)
            return
        self._in_callback = True
        try:
            callback(*args)
        except Exception:
            self._in_callback = False
            self._callback_failed(callback, Failure())
        else:
            self._in_callback = False
        if self._pending and not self._draining:
            self._drain()

    def _defer(self, action: Callable[..., object], *args: object) -> None:
        """Run our own ``action`` once the running callback returns."""
        self._enqueue(action, args, False)

    def _enqueue(
        self, action: Callable[..., object], args: tuple[object, ...], is_callback: bool
    ) -> None:
        if len(self._pending) >= self._max_queued:
            self._pending.clear()
            _log.error(
                "connection to {host}:{port}: over {limit} events queued while a "
                "callback ran; closing it",
                host=self.host,
                port=self.port,
                limit=self._max_queued,
            )
            if self._state in _OPEN:
                self._shut(abort=True)
            return
        self._pending.append((action, args, is_callback))

    def _drain(self) -> None:
        self._draining = True
        try:
            pending = self._pending
            while pending:
                action, args, is_callback = pending.popleft()
                if is_callback:
                    self._emit(action, *args)  # not nested: runs it now
                else:
                    action(*args)
        finally:
            self._draining = False

    def _callback_failed(
        self, callback: Callable[..., object], failure: Failure
    ) -> None:
        """A receiver method raised: log it; close the connection if open."""
        name = getattr(callback, "__name__", repr(callback))
        _log.failure(
            "receiver {callback} of connection to {host}:{port} raised; "
            "closing the connection",
            failure,
            callback=name,
            host=self.host,
            port=self.port,
        )
        # Drop queued callbacks (our own continuations stay): after a broken
        # callback only on_closed is owed.
        kept = [entry for entry in self._pending if not entry[2]]
        self._pending.clear()
        self._pending.extend(kept)
        state = self._state
        if state in _OPEN or state is ConnectionState.CLOSING:
            self._shut(abort=True)
        elif state is ConnectionState.CONNECTING or state is ConnectionState.NEW:
            self.close()

    def __repr__(self) -> str:
        return f"<HTTPClientConnection {self.host}:{self.port} {self._state.name}>"
