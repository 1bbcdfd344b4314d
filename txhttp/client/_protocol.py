# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
`HTTP11ClientProtocol`: one HTTP/1.1 client connection, one request at a time.

The protocol owns a transport, writes each request through the wire core's
serializer, feeds what arrives to a `ResponseParser` and turns its events
into a `Response` (through the ``request()`` Deferred) and body data (pushed
to the response's `BodyStream`, no Deferred per chunk). It enforces the
per-request waits of `ClientRequest` with timers from an injected clock, and
hands itself back to its pool through the quiescent callback only when the
connection is truly reusable.

Its life is the `ClientState` machine: every legal move is a row of
`_TRANSITIONS` and `_advance` refuses the rest. ``connectionLost`` dispatches
to one handler per state (``_connectionLost_QUIESCENT``, ...).

Left out: connecting, pooling, TLS, proxies, the total deadline (see
`HTTPConnectionPool` and `Agent`) and all parsing (see `txhttp._wire`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum, auto
from typing import Final, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IConsumer,
    IDelayedCall,
    IProtocol,
    IPushProducer,
    IReactorTime,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
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
    ResponseParser,
    serialize_request_head,
)
from txhttp.client._errors import (
    BodyIdleTimeout,
    ConnectionAborted,
    RequestGenerationFailed,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseHeadTimeout,
    ResponseNeverReceived,
)
from txhttp.client._keepalive import exchange_allows_reuse
from txhttp.client._producers import BodyWriter
from txhttp.client._request import ClientRequest
from txhttp.client._response import (
    DEFAULT_MAX_BUFFERED_BODY_BYTES,
    BodyStream,
    Response,
)

__all__ = [
    "DEFAULT_CLIENT_LIMITS",
    "ClientInput",
    "ClientState",
    "HTTP11ClientProtocol",
]

DEFAULT_CLIENT_LIMITS: Final = Limits(max_body_bytes=None)
"""
The wire limits a client connection parses with: the wire defaults, except
that response bodies have no size cap. A client streams bodies to its body
protocol with backpressure and holds at most
`DEFAULT_MAX_BUFFERED_BODY_BYTES` itself, so a large download costs no
memory; callers that collect bodies in memory cap them where they collect.
"""


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
_BK_TUNNEL: Final = BodyKind.TUNNEL
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

_MAX_CACHED_HEADS: Final = 256
"""
Serialized request heads remembered, keyed by method, target and field lines:
a client sending the same request again and again (a poller, a benchmark, a
health check) has it serialized and checked once. Past this many distinct
heads the memory starts over, so it stays bounded.
"""

_MAX_CACHED_HEAD_BYTES: Final = 2048
"""Longest head remembered, so the memo holds at most about 512 KiB."""

_HEADS: Final[dict[tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...]], bytes]] = {}


def _serialize_head(request: ClientRequest) -> bytes:
    """The request head of ``request``, from the wire serializer (memoised)."""
    key = (request.method, request.uri, tuple(request.field_lines()))
    head = _HEADS.get(key)
    if head is None:
        head = serialize_request_head(key[0], key[1], key[2])
        if len(head) <= _MAX_CACHED_HEAD_BYTES:
            if len(_HEADS) >= _MAX_CACHED_HEADS:
                _HEADS.clear()
            _HEADS[key] = head
    return head


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
        self._parser = ResponseParser(
            limits if limits is not None else DEFAULT_CLIENT_LIMITS
        )
        self._max_buffered_body_bytes = max_buffered_body_bytes
        self._control = _BodyControl(self)
        self._state = _ST_QUIESCENT
        self._request: ClientRequest | None = None
        self._deferred: Deferred[Response] | None = None
        self._stream: BodyStream | None = None
        self._body_kind = _BK_NONE
        self._writer: BodyWriter | None = None
        self._head_timer: IDelayedCall | None = None
        self._idle_timer: IDelayedCall | None = None
        self._continue_timer: IDelayedCall | None = None
        self._last_activity = 0.0
        self._reading_paused = False
        self._processing = False
        self._received_any = False
        self._reusable = True
        self._lost_reason: Failure | None = None
        self._closed_waiters: list[Deferred[None]] = []
        self._tunnel_pending = False
        self._tunnel: IProtocol | None = None

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
            head = _serialize_head(request)
        except LocalProtocolError:
            # Nothing was written, but the pool expects this connection back
            # through the quiescent callback or closed: close it, as for any
            # request that could not be generated.
            invalid: Failure | None = Failure()
        else:
            invalid = None
        self._advance(_IN_ISSUE)
        self._request = request
        self._reusable = not request.asks_to_close()
        self._received_any = False
        self._body_kind = _BK_NONE
        self._parser.expect_response(request.method)
        deferred: Deferred[Response] = Deferred(self._cancel_request)
        self._deferred = deferred
        if invalid is not None:
            self._generation_failed(invalid)
            return deferred
        transport = self.transport
        assert transport is not None  # is_reusable() checked it
        producer = request.bodyProducer
        if producer is None:
            transport.write(head)
            self._request_written()
            return deferred
        # Stream transports accept producers; ITransport does not say so.
        consumer = cast(IConsumer, transport)
        writer = self._writer = BodyWriter(consumer, producer, self._body_finished)
        if request.expects_continue() and producer.length != 0:
            transport.write(head)
            self._continue_timer = self._clock.callLater(
                request.expect_continue_timeout, self._continue_expired
            )
        else:
            writer.start(head)
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
        leftover = self._parser.take_leftover()
        transport = self.transport
        assert transport is not None  # a tunnel response arrived on it
        protocol.makeConnection(transport)
        if leftover:
            protocol.dataReceived(leftover)

    # -- Twisted's IProtocol --------------------------------------------------

    def connectionMade(self) -> None:
        """Turn Nagle off: a request head must not wait for an ACK."""
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        """Feed the response parser and act on its events."""
        tunnel = self._tunnel
        if tunnel is not None:
            tunnel.dataReceived(data)
            return
        state = self._state
        if not data:
            return
        if state is _ST_TRANSMITTING or state is _ST_WAITING:
            self._received_any = True
            if self._idle_timer is not None:
                self._last_activity = self._clock.seconds()
            self._parser.feed(data)
            self._process()
        elif state is _ST_QUIESCENT:
            if self._tunnel_pending:
                self._parser.feed(data)
            else:
                # Bytes nobody asked for: the server is confused or closing.
                self._close()
        elif state is _ST_TRANSMITTING_AFTER_RECEIVING_RESPONSE:
            self._reusable = False
        # GENERATION_FAILED, ABORTING, CONNECTION_LOST: the bytes are moot.

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Fail what is outstanding as the state requires, then report closure."""
        self._lost_reason = reason
        if self._state in (_ST_TRANSMITTING, _ST_WAITING) and (self._received_any):
            # Let the parser end a body read until close, or report truncation.
            # Held body data goes to the stream, which buffers it if paused.
            self._reading_paused = False
            self._parser.feed_eof()
            self._process()
        previous = self._state
        self._advance(_IN_LOST)
        self._cancel_timers()
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
        error = ResponseFailed if self._received_any else ResponseNeverReceived
        self._teardown(Failure(error([reason])), Failure(ResponseFailed([reason])))

    def _connectionLost_ABORTING(self, reason: Failure) -> None:
        """We ended the connection; what was outstanding already failed."""
        aborted = Failure(ConnectionAborted("the connection was aborted", [reason]))
        self._teardown(aborted, Failure(ResponseFailed([aborted])))

    def _connectionLost_CONNECTION_LOST(self, reason: Failure) -> None:
        """A second ``connectionLost``: nothing is left to do."""

    # -- the state machine ----------------------------------------------------

    def _advance(self, event: ClientInput) -> None:
        """Apply ``event`` to the state, or refuse it as a bug."""
        try:
            self._state = _FAST_TRANSITIONS[id(self._state), id(event)]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    # -- writing --------------------------------------------------------------

    def _body_finished(self, failure: Failure | None) -> None:
        """The `BodyWriter` reports the end of the request body."""
        if failure is None:
            self._request_written()
        else:
            self._writer = None
            self._generation_failed(failure)

    def _request_written(self) -> None:
        """The whole request is on the wire."""
        previous = self._state
        self._advance(_IN_WRITTEN)
        if previous is _ST_TRANSMITTING:
            request = self._request
            assert request is not None
            timeout = request.response_head_timeout
            if self._deferred is not None and timeout is not None:
                self._head_timer = self._clock.callLater(timeout, self._timer_fired)
        else:
            self._writer = None
            self._exchange_finished()

    def _generation_failed(self, failure: Failure) -> None:
        """The request could not be produced: fail it, abort the connection."""
        self._reusable = False
        self._advance(_IN_WRITE_FAILED)
        self._teardown(
            Failure(RequestGenerationFailed([failure])),
            Failure(ResponseFailed([failure])),
        )
        self._abort_transport()

    def _continue_expired(self) -> None:
        """No 100 Continue in time: send the body anyway (RFC 9110, 10.1.1)."""
        self._continue_timer = None
        self._start_body()

    def _start_body(self) -> None:
        writer = self._writer
        if writer is not None and not writer.is_started():
            writer.start()

    # -- reading --------------------------------------------------------------

    def _process(self) -> None:
        """Act on parser events until it needs bytes, reading pauses or ends."""
        if self._processing:
            return
        self._processing = True
        parser = self._parser
        try:
            while not self._reading_paused:
                state = self._state
                if state is not _ST_WAITING and (state is not _ST_TRANSMITTING):
                    break
                try:
                    event = parser.next_event()
                except RemoteProtocolError:
                    self._response_broken(Failure())
                    break
                if event is None:
                    break
                if type(event) is bytes:
                    stream = self._stream
                    if stream is not None:
                        stream.data_received(event)
                elif isinstance(event, ResponseHead):
                    if event.status < 200 and event.status != 101:
                        self._interim_received(event)
                    else:
                        self._head_received(event)
                elif isinstance(event, EndOfMessage):
                    self._message_done(event)
                else:
                    # CONNECTION_CLOSED: the peer closed before any response.
                    break
        finally:
            self._processing = False

    def _interim_received(self, head: ResponseHead) -> None:
        """A 1xx other than 101: consume it; 100 releases a waiting body."""
        if head.status == 100 and self._continue_timer is not None:
            self._continue_timer = self._cancel_timer(self._continue_timer)
            self._start_body()
        timer = self._head_timer
        if timer is not None and timer.active():
            request = self._request
            assert request is not None
            if request.response_head_timeout is not None:
                timer.reset(request.response_head_timeout)

    def _head_received(self, head: ResponseHead) -> None:
        """The final response head: build the `Response`, fire ``request()``."""
        request = self._request
        assert request is not None
        # The head timer becomes the body idle timer if the body needs one
        # (one reset instead of a cancel and a new timer per response).
        timer = self._head_timer
        self._head_timer = None
        if self._continue_timer is not None:
            # A final answer instead of 100 Continue: the body is never sent,
            # and the server may be waiting for it, so no reuse.
            self._continue_timer = self._cancel_timer(self._continue_timer)
            self._writer = None
            self._reusable = False
            self._advance(_IN_WRITTEN)
        kind = head.framing.kind
        if not exchange_allows_reuse(request, head):
            self._reusable = False
        if kind is _BK_TUNNEL:
            self._cancel_timer(timer)
            self._tunnel_received(head, request)
            return
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
        if kind is not _BK_NONE:
            self._start_idle_timer(timer)
        else:
            self._cancel_timer(timer)
        deferred = self._deferred
        self._deferred = None
        if deferred is not None:
            deferred.callback(response)

    def _tunnel_received(self, head: ResponseHead, request: ClientRequest) -> None:
        """A 2xx to CONNECT or a 101: HTTP ends here; `switch_protocol` follows."""
        status = head.status
        expected = (request.method == b"CONNECT" and 200 <= status < 300) or (
            status == 101 and request.headers.hasHeader(b"upgrade")
        )
        if not expected or self._state is not _ST_WAITING:
            self._response_broken(
                Failure(
                    RemoteProtocolError(
                        f"unexpected {status} response switching protocols "
                        f"(request {request.method!r}, state {self._state.name})"
                    )
                )
            )
            return
        self._reusable = False
        self._tunnel_pending = True
        stream = BodyStream(self._control, self._max_buffered_body_bytes)
        response = Response(
            version=_VERSIONS.get(head.version, (b"HTTP", 1, 1)),
            code=status,
            phrase=head.reason,
            fields=head.fields,
            length=0,
            request=request,
            body=stream,
        )
        self._advance(_IN_RESPONSE_DONE)
        self._request = None
        stream.finish(Failure(ResponseDone("tunnel established")), ())
        deferred = self._deferred
        self._deferred = None
        if deferred is not None:
            deferred.callback(response)

    def _message_done(self, end: EndOfMessage) -> None:
        """The response is complete: end its body, then reuse or close."""
        stream = self._stream
        self._stream = None
        self._idle_timer = self._cancel_timer(self._idle_timer)
        if self._parser.buffered_bytes:
            self._reusable = False
        if self._reading_paused:
            self._reading_paused = False
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
            self._exchange_finished()
        else:
            # The server answered before our body was done. Reuse only if it
            # already has every byte we promised; else stop and close.
            writer = self._writer
            if writer is None or not writer.is_complete_on_wire():
                self._reusable = False
                self._writer = None
                if writer is not None:
                    writer.stop()
                self._close()
        if stream is not None:
            stream.finish(reason, end.trailers)

    def _exchange_finished(self) -> None:
        """Request written and response read: give back to the pool, or close."""
        self._request = None
        self._writer = None
        if self._lost_reason is not None:
            return
        if self._reusable:
            callback = self._quiescent_callback
            if callback is not None:
                callback(self)
        else:
            self._close()

    def _response_broken(self, error: Failure) -> None:
        """The response is not valid HTTP/1.1 (or was cut short): fail, close."""
        reasons = [error]
        lost = self._lost_reason
        if lost is not None:
            reasons.append(lost)
        if self._deferred is not None:
            failure_type = (
                ResponseFailed if self._received_any else ResponseNeverReceived
            )
            request_error = Failure(failure_type(reasons))
        else:
            request_error = Failure(ResponseFailed(reasons))
        body_error = Failure(ResponseFailed(reasons))
        self._reusable = False
        if lost is not None:
            self._teardown(request_error, body_error)
        else:
            self._advance(_IN_ABORT)
            self._teardown(request_error, body_error)
            self._abort_transport()

    # -- flow control, called by BodyStream through _BodyControl --------------

    def _pause_body(self, stream: BodyStream) -> None:
        if stream is not self._stream or self._reading_paused:
            return
        self._reading_paused = True
        self._idle_timer = self._cancel_timer(self._idle_timer)
        if self._lost_reason is None:
            self._producer_transport().pauseProducing()

    def _resume_body(self, stream: BodyStream) -> None:
        if stream is not self._stream or not self._reading_paused:
            return
        self._reading_paused = False
        if self._lost_reason is not None:
            return
        self._producer_transport().resumeProducing()
        self._start_idle_timer()
        self._process()

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

    # -- timers ---------------------------------------------------------------

    def _start_idle_timer(self, reuse: IDelayedCall | None = None) -> None:
        """Start the body idle timer, re-arming ``reuse`` if it is pending."""
        request = self._request
        if request is None or request.body_idle_timeout is None:
            self._cancel_timer(reuse)
            return
        self._idle_timer = self._cancel_timer(self._idle_timer)
        self._last_activity = self._clock.seconds()
        if reuse is not None and reuse.active():
            reuse.reset(request.body_idle_timeout)
            self._idle_timer = reuse
        else:
            self._idle_timer = self._clock.callLater(
                request.body_idle_timeout, self._timer_fired
            )

    def _timer_fired(self) -> None:
        """The head or body idle timer fired (one timer serves both in turn)."""
        if self._head_timer is not None:
            self._head_timed_out()
        elif self._idle_timer is not None:
            self._idle_check()

    def _idle_check(self) -> None:
        """The body idle timer fired: time out, or wait out the remainder."""
        self._idle_timer = None
        request = self._request
        assert request is not None and request.body_idle_timeout is not None
        limit = request.body_idle_timeout
        elapsed = self._clock.seconds() - self._last_activity
        if elapsed < limit:
            self._idle_timer = self._clock.callLater(limit - elapsed, self._timer_fired)
            return
        timeout = Failure(BodyIdleTimeout(limit))
        self._abort_with(timeout, timeout)

    def _head_timed_out(self) -> None:
        """No final response head within the request's limit."""
        self._head_timer = None
        request = self._request
        assert request is not None and request.response_head_timeout is not None
        self._abort_with(
            Failure(ResponseHeadTimeout(request.response_head_timeout)), None
        )

    @staticmethod
    def _cancel_timer(timer: IDelayedCall | None) -> IDelayedCall | None:
        """Cancel ``timer`` if it is pending; returns ``None`` to clear the slot."""
        if timer is not None and timer.active():
            timer.cancel()
        return None

    def _cancel_timers(self) -> None:
        self._head_timer = self._cancel_timer(self._head_timer)
        self._idle_timer = self._cancel_timer(self._idle_timer)
        self._continue_timer = self._cancel_timer(self._continue_timer)

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
        self._reusable = False
        self._advance(_IN_ABORT)
        body_error = Failure(
            ResponseFailed([body_reason if body_reason is not None else request_error])
        )
        self._teardown(request_error, body_error)
        self._abort_transport()

    def _close(self) -> None:
        """End the connection politely (nothing is outstanding)."""
        self._reusable = False
        self._advance(_IN_ABORT)
        self._cancel_timers()
        transport = self.transport
        if transport is not None:
            transport.loseConnection()

    def _teardown(self, request_error: Failure, body_error: Failure) -> None:
        """Cancel timers, stop the body producer, fail what is outstanding."""
        self._cancel_timers()
        self._reading_paused = False
        writer = self._writer
        self._writer = None
        if writer is not None:
            writer.stop()
        deferred = self._deferred
        self._deferred = None
        stream = self._stream
        self._stream = None
        if deferred is not None:
            deferred.errback(request_error)
        if stream is not None:
            stream.finish(body_error)

    def _abort_transport(self) -> None:
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
