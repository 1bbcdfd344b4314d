# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
`HTTP11ClientProtocol`: one HTTP/1.1 client connection, one request at a time.

The protocol owns a transport and drives a `ClientExchange` per request: the
exchange writes the request, parses the response, holds a body for ``100
Continue``, runs the per-request waits of `ClientRequest` and gives the
keep-alive verdict; the protocol turns what it reports into a `Response`
(through the ``request()`` Deferred) and body data (pushed to the response's
`BodyStream`, no Deferred per chunk), and hands itself back to its pool
through the quiescent callback only when the connection is truly reusable.
Over a plain TCP transport with nothing buffered, a request goes to the
socket at once instead of on the reactor's next turn, unless other
connections on the same clock (reactor) are busy: then a request without a
body goes to the socket at the end of the reactor's turn, with theirs
(``_writethrough``).

Its life is the `ClientState` machine: every legal move is a row of
`_TRANSITIONS` and `_advance` refuses the rest. ``connectionLost`` dispatches
to one handler per state (``_connectionLost_QUIESCENT``, ...).

Left out: connecting, pooling, TLS, proxies, the total deadline (see
`HTTPConnectionPool` and `Agent`), all parsing (see `txhttp._wire`) and the
exchange rules shared with `HTTPClientConnection` (see `ClientExchange`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum, auto
from typing import Final, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IConsumer,
    IProtocol,
    IPushProducer,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.tcp import Connection as TCPConnection
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH
from typing_extensions import assert_never

from txhttp._wire import (
    HTTP_1_0,
    HTTP_1_1,
    BodyKind,
    EndOfMessage,
    Limits,
    LocalProtocolError,
    RemoteProtocolError,
    ResponseHead,
)
from txhttp.client._errors import (
    ConnectionAborted,
    HTTPTimeout,
    RequestGenerationFailed,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
)
from txhttp.client._exchange import (
    DEFAULT_CLIENT_LIMITS,
    ClientExchange,
    serialize_head,
)
from txhttp.client._request import ClientRequest
from txhttp.client._response import (
    DEFAULT_MAX_BUFFERED_BODY_BYTES,
    BodyStream,
    Response,
)
from txhttp.client._writethrough import (
    WRITE_THROUGH_MAX_BUSY,
    TurnEndConsumer,
    WriteThroughConsumer,
    busy_for,
)

__all__ = [
    "DEFAULT_CLIENT_LIMITS",
    "ClientInput",
    "ClientState",
    "HTTP11ClientProtocol",
]


class ClientState(Enum):
    """Where a connection is in its life; see ``_TRANSITIONS``."""

    QUIESCENT = auto()
    """Idle (no request in flight); ``request()`` is accepted."""
    TRANSMITTING = auto()
    """The request is being written (or its body waits for 100 Continue)."""
    TRANSMITTING_AFTER_RECEIVING_RESPONSE = auto()
    """The whole response arrived before the request body was finished."""
    GENERATION_FAILED = auto()
    """The request could not be produced; the connection is being aborted."""
    WAITING = auto()
    """The request is written; the response is awaited or being read."""
    ABORTING = auto()
    """We are ending the connection (abort, timeout, no reuse); awaiting loss."""
    CONNECTION_LOST = auto()
    """The transport is gone. Final."""


class ClientInput(Enum):
    """What can happen to a connection; the columns of ``_TRANSITIONS``."""

    ISSUE = auto()
    """``request()`` was called and its head serialized."""
    WRITTEN = auto()
    """The whole request (head and body) was written."""
    WRITE_FAILED = auto()
    """The body producer failed or its length was wrong."""
    RESPONSE_DONE = auto()
    """The final response, body included, was received."""
    ABORT = auto()
    """We end the connection (``abort()``, cancellation, a timeout, a broken
    response, or an exchange that forbids reuse)."""
    LOST = auto()
    """The transport called ``connectionLost``."""


_S = ClientState
_I = ClientInput

_TRANSITIONS: Final[Mapping[tuple[ClientState, ClientInput], ClientState]] = {
    (_S.QUIESCENT, _I.ISSUE): _S.TRANSMITTING,
    (_S.QUIESCENT, _I.ABORT): _S.ABORTING,
    (_S.TRANSMITTING, _I.WRITTEN): _S.WAITING,
    (_S.TRANSMITTING, _I.WRITE_FAILED): _S.GENERATION_FAILED,
    (_S.TRANSMITTING, _I.RESPONSE_DONE): _S.TRANSMITTING_AFTER_RECEIVING_RESPONSE,
    (_S.TRANSMITTING, _I.ABORT): _S.ABORTING,
    (_S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, _I.WRITTEN): _S.QUIESCENT,
    (_S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, _I.WRITE_FAILED): (_S.GENERATION_FAILED),
    (_S.TRANSMITTING_AFTER_RECEIVING_RESPONSE, _I.ABORT): _S.ABORTING,
    (_S.WAITING, _I.RESPONSE_DONE): _S.QUIESCENT,
    (_S.WAITING, _I.ABORT): _S.ABORTING,
    (_S.GENERATION_FAILED, _I.ABORT): _S.ABORTING,
    (_S.ABORTING, _I.ABORT): _S.ABORTING,
    # Losing the transport is legal everywhere and always final.
    **{(state, _I.LOST): _S.CONNECTION_LOST for state in ClientState},
}
"""Every legal move of a connection, written once: (state, input) -> state."""

# Members as module names: reading ``ClientState.X`` costs an Enum lookup
# (about 70 ns on CPython 3.11), and the hot paths read a dozen per request.
_ST_CONNECTION_LOST: Final = ClientState.CONNECTION_LOST
_ST_QUIESCENT: Final = ClientState.QUIESCENT
_ST_TRANSMITTING: Final = ClientState.TRANSMITTING
_ST_TRANSMITTING_AFTER_RECEIVING_RESPONSE: Final = (
    ClientState.TRANSMITTING_AFTER_RECEIVING_RESPONSE
)
_ST_WAITING: Final = ClientState.WAITING
_BK_LENGTH: Final = BodyKind.LENGTH
_BK_NONE: Final = BodyKind.NONE
_BK_UNTIL_CLOSE: Final = BodyKind.UNTIL_CLOSE
_IN_ABORT: Final = ClientInput.ABORT
_IN_ISSUE: Final = ClientInput.ISSUE
_IN_LOST: Final = ClientInput.LOST
_IN_RESPONSE_DONE: Final = ClientInput.RESPONSE_DONE
_IN_WRITE_FAILED: Final = ClientInput.WRITE_FAILED
_IN_WRITTEN: Final = ClientInput.WRITTEN

_FAST_TRANSITIONS: Final[Mapping[tuple[int, int], ClientState]] = {
    (id(state), id(event)): after for (state, event), after in _TRANSITIONS.items()
}
"""`_TRANSITIONS` keyed by the members' ids: Enum members hash in Python code,
ints do not, and the state advances three times per request."""

_VERSIONS: Final[Mapping[bytes, tuple[bytes, int, int]]] = {
    HTTP_1_1: (b"HTTP", 1, 1),
    HTTP_1_0: (b"HTTP", 1, 0),
}


_RESPONSE_DONE_PARENTS: Final[list[str]] = Failure(ResponseDone()).parents
"""What ``Failure.parents`` is for `ResponseDone`: the same for every response."""


class _BodyControl:
    """The face a `BodyStream` sees of its connection (`BodyControl`)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: HTTP11ClientProtocol) -> None:
        self._protocol = protocol

    def pause_body(self, stream: BodyStream) -> None:
        """Forward to the protocol: stop reading for ``stream``."""
        self._protocol._pause_body(stream)

    def resume_body(self, stream: BodyStream) -> None:
        """Forward to the protocol: read again for ``stream``."""
        self._protocol._resume_body(stream)

    def stop_body(self, stream: BodyStream) -> None:
        """Forward to the protocol: the consumer stopped ``stream``."""
        self._protocol._stop_body(stream)

    def abort_body(self, stream: BodyStream) -> None:
        """Forward to the protocol: the consumer aborted the connection."""
        self._protocol._abort_body(stream)


class HTTP11ClientProtocol(Protocol):
    """
    One client connection: sends requests one at a time, reads responses.

    Args:
        quiescentCallback: Called with this protocol each time an exchange
            ends and the connection is truly reusable: the response is
            complete, the request was fully sent, neither side said
            ``Connection: close``, the response was not HTTP/1.0 without
            keep-alive or read until close, and no byte arrived beyond it.
            Otherwise the protocol closes the connection instead.
        clock: Where the protocol's timers come from; the global reactor
            when ``None``.
        limits: The wire limits for parsing responses
            (``DEFAULT_CLIENT_LIMITS`` when ``None``).
        max_buffered_body_bytes: Body bytes held for a response whose
            ``deliverBody`` was not called yet, before reading pauses.
    """

    def __init__(
        self,
        quiescentCallback: Callable[[HTTP11ClientProtocol], object] | None = None,
        *,
        clock: IReactorTime | None = None,
        limits: Limits | None = None,
        max_buffered_body_bytes: int = DEFAULT_MAX_BUFFERED_BODY_BYTES,
    ) -> None:
        if clock is None:
            # Imported late: importing the reactor installs the default one.
            from twisted.internet import reactor  # noqa: PLC0415

            clock = cast(IReactorTime, reactor)
        self._clock = clock
        self._quiescent_callback = quiescentCallback
        # The wait timer is kept from one exchange to the next when the next
        # begins at once (a keep-alive loop: no timer call per request) and
        # released otherwise (ClientExchange.release_timer).
        self._exchange = ClientExchange(self, clock, limits, keep_timer=True)
        self._max_buffered_body_bytes = max_buffered_body_bytes
        self._control = _BodyControl(self)
        self._state = _ST_QUIESCENT
        self._deferred: Deferred[Response] | None = None
        self._stream: BodyStream | None = None
        self._body_kind = _BK_NONE
        self._lost_reason: Failure | None = None
        self._closed_waiters: list[Deferred[None]] = []
        self._tunnel_pending = False
        self._tunnel: IProtocol | None = None
        # Set when connected over plain TCP (see connectionMade).
        self._write_through: WriteThroughConsumer | None = None
        self._turn_end: TurnEndConsumer | None = None
        self._busy = busy_for(clock)

    # -- public API -----------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The connection's current `ClientState` (read-only)."""
        return self._state

    def is_reusable(self) -> bool:
        """Whether the connection is open, idle and may take a request now."""
        return (
            self._state is _ST_QUIESCENT
            and self.transport is not None
            and self._lost_reason is None
            and not self._tunnel_pending
            and self._tunnel is None
        )

    def body_bytes_to_receive(self) -> int | None:
        """
        Bytes of the response body being read that have not arrived yet,
        when its Content-Length says; ``None`` otherwise (no response under
        way, a chunked body, a body read until close).
        """
        return self._exchange.body_bytes_to_receive()

    def when_closed(self) -> Deferred[None]:
        """
        A Deferred firing (with ``None``) once the connection has closed.

        It fires after ``connectionLost`` has failed whatever was
        outstanding; it never fails. Each call returns a new Deferred.
        """
        if self._state is _ST_CONNECTION_LOST:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._closed_waiters.append(waiter)
        return waiter

    def request(self, request: ClientRequest) -> Deferred[Response]:
        """
        Send one request; only one may be in flight per connection.

        Args:
            request: The request, already validated by `ClientRequest`.

        Returns:
            A Deferred firing with the `Response` once its final head is
            parsed (the body follows through ``deliverBody``), or failing
            with `RequestNotSent` (busy or closed: nothing was written),
            `RequestGenerationFailed` (the body producer failed or lied about
            its length), `RequestTransmissionFailed` (the connection broke
            while writing), `ResponseNeverReceived` / `ResponseFailed` (no
            or a partial response), `ResponseHeadTimeout`, or
            `ConnectionAborted` (``abort()``). Cancelling it aborts the
            connection and fails it with ``CancelledError``.
        """
        if not self.is_reusable():
            return fail(
                RequestNotSent(
                    f"the connection cannot take a request: it is "
                    f"{self._describe_unavailable()}"
                )
            )
        try:
            head = serialize_head(request)
        except LocalProtocolError:
            # Nothing was written, but the pool expects this connection back
            # through the quiescent callback or closed: close it, as for any
            # request that could not be generated.
            invalid: Failure | None = Failure()
        else:
            invalid = None
        self._advance(_IN_ISSUE)
        self._body_kind = _BK_NONE
        exchange = self._exchange
        exchange.begin(request)
        deferred: Deferred[Response] = Deferred(self._cancel_request)
        self._deferred = deferred
        if invalid is not None:
            self._generation_failed(invalid)
            return deferred
        consumer = self._write_through
        if consumer is not None and self._busy.count <= WRITE_THROUGH_MAX_BUSY:
            exchange.send(head, consumer)
        elif self._turn_end is not None and request.bodyProducer is None:
            # Busy with others: the head leaves with theirs, at the turn's end.
            exchange.send(head, self._turn_end)
        else:
            # Stream transports accept producers; ITransport does not say so.
            exchange.send(head, cast(IConsumer, self.transport))
        return deferred

    def abort(self, reason: Exception | None = None) -> Deferred[None]:
        """
        End the connection now with ``abortConnection`` (no polite close).

        Whatever is outstanding fails at once: the ``request()`` Deferred
        with `ConnectionAborted` (or ``reason``), a body being delivered with
        `ResponseFailed` wrapping it; a body producer is stopped.

        Args:
            reason: Why, when the caller knows better than "aborted" (the
                pool passes `TotalTimeout` when a deadline ends a body).
                Added by the agent/pool helper; optional, so compatible.

        Returns:
            A Deferred firing once the connection is lost.
        """
        if self._state is _ST_CONNECTION_LOST:
            return succeed(None)
        closed = self.when_closed()
        why = Failure(
            reason
            if reason is not None
            else ConnectionAborted("the connection was aborted by abort()")
        )
        self._abort_with(why, why)
        return closed

    def switch_protocol(self, protocol: IProtocol) -> None:
        """
        Hand the connection to ``protocol`` after a tunnel was established.

        Valid once the ``request()`` Deferred of a ``CONNECT`` fired with a
        2xx response (or of an upgrade request with 101): ``protocol`` is
        connected to the transport, gets the bytes that followed the
        response head, then everything received and the connection loss.
        Until then such a connection reads nothing further and takes no
        request; call `abort` if the tunnel is not wanted.

        Raises:
            RuntimeError: When no tunnel response was received.
        """
        if not self._tunnel_pending or self._state is not _ST_QUIESCENT:
            raise RuntimeError(
                "switch_protocol needs a 2xx response to CONNECT (or a 101) "
                f"on an open connection; state is {self._state.name}"
            )
        self._tunnel_pending = False
        self._tunnel = protocol
        leftover = self._exchange.take_leftover()
        transport = self.transport
        assert transport is not None  # a tunnel response arrived on it
        protocol.makeConnection(transport)
        if leftover:
            protocol.dataReceived(leftover)

    # -- Twisted's IProtocol --------------------------------------------------

    def connectionMade(self) -> None:
        """
        Turn Nagle off (a request head must not wait for an ACK); over a
        plain TCP transport, prepare to write requests through to the socket
        (see ``WriteThroughConsumer`` and ``TurnEndConsumer``).
        """
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)
        transport_object: object = transport
        if isinstance(transport_object, TCPConnection):
            self._write_through = WriteThroughConsumer(transport_object)
            self._turn_end = TurnEndConsumer(
                transport_object, self._clock, self._busy.batch
            )

    def dataReceived(self, data: bytes) -> None:
        """Feed the exchange and act on what it reports."""
        tunnel = self._tunnel
        if tunnel is not None:
            tunnel.dataReceived(data)
            return
        state = self._state
        if not data:
            return
        if state is _ST_TRANSMITTING or state is _ST_WAITING:
            exchange = self._exchange
            exchange.feed(data)
            exchange.process()
        elif state is _ST_QUIESCENT:
            if self._tunnel_pending:
                self._exchange.hold(data)
            else:
                # Bytes nobody asked for: the server is confused or closing.
                self._close()
        elif state is _ST_TRANSMITTING_AFTER_RECEIVING_RESPONSE:
            self._exchange.feed(data)  # beyond the response: no reuse
        # GENERATION_FAILED, ABORTING, CONNECTION_LOST: the bytes are moot.

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail what is outstanding as the state requires, then report closure."""
        self._lost_reason = reason
        if self._state is _ST_TRANSMITTING or self._state is _ST_WAITING:
            # Let the parser end a body read until close, or report truncation.
            # Held body data goes to the stream, which buffers it if paused.
            self._exchange.connection_lost()
        previous = self._state
        self._advance(_IN_LOST)
        self._exchange.abandon()
        match previous:
            case ClientState.QUIESCENT:
                self._connectionLost_QUIESCENT(reason)
            case ClientState.TRANSMITTING:
                self._connectionLost_TRANSMITTING(reason)
            case ClientState.TRANSMITTING_AFTER_RECEIVING_RESPONSE:
                self._connectionLost_TRANSMITTING_AFTER_RECEIVING_RESPONSE(reason)
            case ClientState.GENERATION_FAILED:
                self._connectionLost_GENERATION_FAILED(reason)
            case ClientState.WAITING:
                self._connectionLost_WAITING(reason)
            case ClientState.ABORTING:
                self._connectionLost_ABORTING(reason)
            case ClientState.CONNECTION_LOST:
                self._connectionLost_CONNECTION_LOST(reason)
            case _:
                assert_never(previous)
        waiters, self._closed_waiters = self._closed_waiters, []
        for waiter in waiters:
            waiter.callback(None)
        tunnel = self._tunnel
        if tunnel is not None:
            tunnel.connectionLost(reason)

    # -- connectionLost, one handler per state --------------------------------

    def _connectionLost_QUIESCENT(self, reason: Failure) -> None:
        """An idle connection closed (often the server's idle timeout): no loss."""

    def _connectionLost_TRANSMITTING(self, reason: Failure) -> None:
        """The network failed while the request was being written."""
        self._teardown(
            Failure(RequestTransmissionFailed([reason])),
            Failure(ResponseFailed([reason])),
        )

    def _connectionLost_TRANSMITTING_AFTER_RECEIVING_RESPONSE(
        self, reason: Failure
    ) -> None:
        """The response is complete; only the body producer must stop."""
        self._teardown(Failure(RequestTransmissionFailed([reason])), reason)

    def _connectionLost_GENERATION_FAILED(self, reason: Failure) -> None:
        """The request already failed; close out anything left."""
        self._teardown(
            Failure(RequestTransmissionFailed([reason])),
            Failure(ResponseFailed([reason])),
        )

    def _connectionLost_WAITING(self, reason: Failure) -> None:
        """The request was sent; the response never came, or was cut short."""
        error = (
            ResponseFailed
            if self._exchange.has_received_bytes()
            else ResponseNeverReceived
        )
        self._teardown(Failure(error([reason])), Failure(ResponseFailed([reason])))

    def _connectionLost_ABORTING(self, reason: Failure) -> None:
        """We ended the connection; what was outstanding already failed."""
        aborted = Failure(ConnectionAborted("the connection was aborted", [reason]))
        self._teardown(aborted, Failure(ResponseFailed([aborted])))

    def _connectionLost_CONNECTION_LOST(self, reason: Failure) -> None:
        """A second ``connectionLost``: nothing is left to do."""

    # -- the state machine ----------------------------------------------------

    def _advance(self, event: ClientInput) -> None:
        """
        Apply ``event`` to the state, or refuse it as a bug; count this
        connection as busy on its clock (``busy_for``) while it is neither
        idle nor lost.
        """
        before = self._state
        try:
            after = self._state = _FAST_TRANSITIONS[id(before), id(event)]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {before.name}"
            ) from None
        was_busy = before is not _ST_QUIESCENT and before is not _ST_CONNECTION_LOST
        if was_busy is (after is _ST_QUIESCENT or after is _ST_CONNECTION_LOST):
            self._busy.count += -1 if was_busy else 1

    # -- ExchangeSink: what the exchange reports ---------------------------------

    def _exchange_written(self) -> None:
        """The whole request is on the wire (or its body will never be sent)."""
        self._advance(_IN_WRITTEN)
        if self._state is _ST_QUIESCENT:
            # The response came first and is complete: the exchange is over.
            self._give_back_or_close()

    def _generation_failed(self, failure: Failure) -> None:
        """The request could not be produced: fail it, abort the connection."""
        self._advance(_IN_WRITE_FAILED)
        self._teardown(
            Failure(RequestGenerationFailed([failure])),
            Failure(ResponseFailed([failure])),
        )
        self._abort_transport()

    _exchange_write_failed = _generation_failed

    def _exchange_head(self, head: ResponseHead, request: ClientRequest) -> None:
        """The final response head: build the `Response`, fire ``request()``."""
        kind = head.framing.kind
        if kind is _BK_LENGTH:
            length: int | str = head.framing.length or 0
        elif kind is _BK_NONE:
            length = 0
        else:
            length = UNKNOWN_LENGTH
        stream = self._stream = BodyStream(self._control, self._max_buffered_body_bytes)
        self._body_kind = kind
        response = Response(
            version=_VERSIONS.get(head.version, (b"HTTP", 1, 1)),
            code=head.status,
            phrase=head.reason,
            fields=head.fields,
            length=length,
            request=request,
            body=stream,
        )
        deferred = self._deferred
        self._deferred = None
        if deferred is not None:
            deferred.callback(response)

    def _exchange_body(self, data: bytes) -> None:
        stream = self._stream
        if stream is not None:
            stream.data_received(data)

    def _exchange_tunnel(self, head: ResponseHead, request: ClientRequest) -> None:
        """A 2xx to CONNECT or a 101: HTTP ends here; `switch_protocol` follows."""
        self._tunnel_pending = True
        stream = BodyStream(self._control, self._max_buffered_body_bytes)
        response = Response(
            version=_VERSIONS.get(head.version, (b"HTTP", 1, 1)),
            code=head.status,
            phrase=head.reason,
            fields=head.fields,
            length=0,
            request=request,
            body=stream,
        )
        self._advance(_IN_RESPONSE_DONE)
        self._exchange.release_timer()
        stream.finish(Failure(ResponseDone("tunnel established")), ())
        deferred = self._deferred
        self._deferred = None
        if deferred is not None:
            deferred.callback(response)

    def _exchange_done(self, end: EndOfMessage) -> None:
        """The response is complete: end its body, then reuse or close."""
        stream = self._stream
        self._stream = None
        exchange = self._exchange
        if exchange.is_reading_paused():
            exchange.resume_reading()
            if self._lost_reason is None:
                self._producer_transport().resumeProducing()
        if self._body_kind is _BK_UNTIL_CLOSE:
            reason = Failure(PotentialDataLoss("body ended when the connection closed"))
        else:
            reason = Failure(ResponseDone("response body fully received"))
            # Every body protocol asks ``reason.check(ResponseDone)``; give
            # the Failure the class names that costs, computed once.
            reason.parents = list(_RESPONSE_DONE_PARENTS)
        self._advance(_IN_RESPONSE_DONE)
        if self._state is _ST_QUIESCENT:
            self._give_back_or_close()
        elif not exchange.is_sending():
            # The server answered before our body was done and the exchange
            # stopped the body (the server lacks bytes we promised): close.
            self._close()
        # Else every promised byte is on the wire: wait for the producer.
        if stream is not None:
            # The body protocol may start the next request on this
            # connection from here, reusing the kept wait timer.
            stream.finish(reason, end.trailers)
        exchange.release_timer()

    def _give_back_or_close(self) -> None:
        """Request written and response read: give back to the pool, or close."""
        if self._lost_reason is not None:
            return
        if self._exchange.allows_reuse():
            callback = self._quiescent_callback
            if callback is not None:
                callback(self)
        else:
            self._close()

    def _exchange_broken(self, error: RemoteProtocolError) -> None:
        """The response is not valid HTTP/1.1 (or was cut short)."""
        self._response_broken(Failure(error))

    def _exchange_timed_out(self, error: HTTPTimeout) -> None:
        """A response wait of the request ran out: abort with it."""
        reason = Failure(error)
        self._abort_with(reason, reason)

    def _response_broken(self, error: Failure) -> None:
        """The response is not valid HTTP/1.1 (or was cut short): fail, close."""
        reasons = [error]
        lost = self._lost_reason
        if lost is not None:
            reasons.append(lost)
        if self._deferred is not None:
            failure_type = (
                ResponseFailed
                if self._exchange.has_received_bytes()
                else ResponseNeverReceived
            )
            request_error = Failure(failure_type(reasons))
        else:
            request_error = Failure(ResponseFailed(reasons))
        body_error = Failure(ResponseFailed(reasons))
        if lost is not None:
            self._teardown(request_error, body_error)
        else:
            self._advance(_IN_ABORT)
            self._teardown(request_error, body_error)
            self._abort_transport()

    # -- flow control, called by BodyStream through _BodyControl --------------

    def _pause_body(self, stream: BodyStream) -> None:
        exchange = self._exchange
        if stream is not self._stream or exchange.is_reading_paused():
            return
        exchange.pause_reading()
        if self._lost_reason is None:
            self._producer_transport().pauseProducing()

    def _resume_body(self, stream: BodyStream) -> None:
        exchange = self._exchange
        if stream is not self._stream or not exchange.is_reading_paused():
            return
        exchange.resume_reading()
        if self._lost_reason is not None:
            return
        self._producer_transport().resumeProducing()
        exchange.process()

    def _stop_body(self, stream: BodyStream) -> None:
        if stream is not self._stream:
            return
        reason = Failure(
            ConnectionAborted("the response body was stopped by its consumer")
        )
        self._abort_with(reason, reason)

    def _abort_body(self, stream: BodyStream) -> None:
        if stream is self._stream:
            self.abort()

    # -- ending ---------------------------------------------------------------

    def _cancel_request(self, deferred: Deferred[Response]) -> None:
        """The ``request()`` Deferred was cancelled: abort the connection."""
        if deferred is not self._deferred:
            return
        # Deferred.cancel fails it with CancelledError once we return.
        self._deferred = None
        reason = Failure(ConnectionAborted("the request was cancelled"))
        self._abort_with(reason, reason)

    def _abort_with(self, request_error: Failure, body_reason: Failure | None) -> None:
        """
        Abort: fail the request with ``request_error`` and a body being read
        with `ResponseFailed` wrapping ``body_reason`` (or ``request_error``).
        """
        if self._state is _ST_CONNECTION_LOST:
            return
        self._advance(_IN_ABORT)
        body_error = Failure(
            ResponseFailed([body_reason if body_reason is not None else request_error])
        )
        self._teardown(request_error, body_error)
        self._abort_transport()

    def _close(self) -> None:
        """End the connection politely (nothing is outstanding)."""
        self._advance(_IN_ABORT)
        self._exchange.abandon()
        transport = self.transport
        if transport is not None:
            transport.loseConnection()

    def _teardown(self, request_error: Failure, body_error: Failure) -> None:
        """Cancel timers, stop the body producer, fail what is outstanding."""
        self._exchange.abandon()
        deferred = self._deferred
        self._deferred = None
        stream = self._stream
        self._stream = None
        if deferred is not None:
            deferred.errback(request_error)
        if stream is not None:
            stream.finish(body_error)

    def _abort_transport(self) -> None:
        turn_end = self._turn_end
        if turn_end is not None:
            turn_end.discard()  # an aborted request's head must not go out
        transport = self.transport
        if transport is not None:
            # abortConnection is on ITCPTransport and TLS transports, not ITransport.
            cast(ITCPTransport, transport).abortConnection()

    def _producer_transport(self) -> IPushProducer:
        # Stream transports are push producers; ITransport does not say so.
        return cast(IPushProducer, self.transport)

    def _describe_unavailable(self) -> str:
        if self.transport is None and self._state is _ST_QUIESCENT:
            return "not connected"
        if self._tunnel_pending or self._tunnel is not None:
            return "a tunnel"
        return self._state.name
