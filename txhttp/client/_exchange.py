# -*- test-case-name: txhttp.test.test_client_exchange -*-
"""
One request/response exchange on a client connection, written once.

Both client connections, `HTTP11ClientProtocol` (Deferreds) and
`HTTPClientConnection` (lifecycle callbacks), drive a `ClientExchange`: it
writes the request head and body (through `BodyWriter`), holds the body back
for ``Expect: 100-continue``, feeds received bytes to the `ResponseParser`,
consumes interim (1xx) responses, checks tunnels (a 2xx to CONNECT, a 101),
applies the early-response rule (a final response before the request body
was finished), runs the request's response-head and body-idle waits, and
gives the keep-alive verdict (`exchange_allows_reuse`, plus leftover bytes
and an unfinished body). It reports each step to its driver through the
small `ExchangeSink` interface.

What stays with each driver: its own state machine, turning the events into
a `Response` or receiver callbacks, pausing and resuming the transport,
closing it, pooling. This module parses nothing itself (see `txhttp._wire`)
and never touches a transport except through the ``IConsumer`` it writes
the request to.
"""

from __future__ import annotations

from typing import Final, Protocol

from twisted.internet.interfaces import IConsumer, IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from txhttp._wire import (
    BodyKind,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    ResponseHead,
    ResponseParser,
    serialize_request_head,
)
from txhttp.client._errors import BodyIdleTimeout, HTTPTimeout, ResponseHeadTimeout
from txhttp.client._keepalive import exchange_allows_reuse
from txhttp.client._producers import BodyWriter
from txhttp.client._request import ClientRequest

__all__ = [
    "DEFAULT_CLIENT_LIMITS",
    "ClientExchange",
    "ExchangeSink",
    "serialize_head",
]

DEFAULT_CLIENT_LIMITS: Final = Limits(max_body_bytes=None)
"""
The wire limits a client connection parses with: the wire defaults, except
that response bodies have no size cap. A client streams bodies to its body
protocol (or receiver) with backpressure, so a large download costs no
memory; callers that collect bodies in memory cap them where they collect.
"""

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

# Members and classes as module names: the hot paths read them per event.
_BK_NONE: Final = BodyKind.NONE
_BK_TUNNEL: Final = BodyKind.TUNNEL
_HEAD_WAIT: Final = ResponseHeadTimeout
_BODY_WAIT: Final = BodyIdleTimeout


def serialize_head(request: ClientRequest, host: bytes | None = None) -> bytes:
    """
    The request head of ``request``, from the wire serializer (memoised).

    Args:
        request: The request to write.
        host: A ``Host`` field value to put first when the request's headers
            have none (the callback connection's host and port); ``None``
            writes the headers as they are (`Agent` adds ``Host`` itself).

    Raises:
        LocalProtocolError: A header mutated since validation could inject.
    """
    lines = request.field_lines()
    if host is not None and not request.headers.hasHeader(b"host"):
        lines.insert(0, (b"Host", host))
    key = (request.method, request.uri, tuple(lines))
    head = _HEADS.get(key)
    if head is None:
        head = serialize_request_head(key[0], key[1], key[2])
        if len(head) <= _MAX_CACHED_HEAD_BYTES:
            if len(_HEADS) >= _MAX_CACHED_HEADS:
                _HEADS.clear()
            _HEADS[key] = head
    return head


class ExchangeSink(Protocol):
    """
    What a `ClientExchange` tells the connection driving it.

    Both drivers implement it themselves. Its members are underscored on
    purpose: they are the driver's internals, called by its own exchange
    only, and stay out of the driver's public API.

    Each method is called synchronously from inside the exchange, at most
    once per exchange unless said otherwise; the driver may end the
    exchange (`ClientExchange.abandon`) or, once it is over, begin the next
    one from inside any of them.
    """

    def _exchange_written(self) -> None:
        """
        The request is complete on the wire (or, after a final response that
        came instead of ``100 Continue``, will never have its body sent).
        """

    def _exchange_write_failed(self, reason: Failure, /) -> None:
        """The body producer failed or lied about its length; nothing more is sent."""

    def _exchange_head(self, head: ResponseHead, request: ClientRequest, /) -> None:
        """The final response head to ``request`` (never a 1xx, never a tunnel)."""

    def _exchange_body(self, data: bytes, /) -> None:
        """A piece of the de-framed body (never empty); called per piece."""

    def _exchange_done(self, end: EndOfMessage, /) -> None:
        """
        The response is complete. `ClientExchange.allows_reuse` holds the
        verdict so far; `ClientExchange.is_sending` says whether the request
        body is still being written (an early response that may yet be
        reused once `_exchange_written` follows).
        """

    def _exchange_tunnel(self, head: ResponseHead, request: ClientRequest, /) -> None:
        """
        An expected 2xx to CONNECT, or a 101 to a request asking for an
        upgrade: HTTP ends here. Later bytes may be kept with
        `ClientExchange.hold` and taken with `ClientExchange.take_leftover`.
        """

    def _exchange_broken(self, error: RemoteProtocolError, /) -> None:
        """The response broke HTTP/1.1 or was cut short; the parser is dead."""

    def _exchange_timed_out(self, error: HTTPTimeout, /) -> None:
        """
        The request's response-head or body-idle wait ran out
        (`ResponseHeadTimeout` or `BodyIdleTimeout`).
        """


class ClientExchange:
    """
    Runs one request/response exchange at a time for a connection.

    The driver calls `begin` then `send` for each request, `feed` then
    `process` for received bytes, and `abandon` whenever the connection ends
    or gives up on the exchange; everything else is reported to ``sink``.
    Reading can be paused (`pause_reading`): events wait in the parser and
    the response waits are suspended meanwhile.

    Args:
        sink: The driver; see `ExchangeSink`.
        clock: Where the waits' timers come from.
        limits: The wire limits for parsing responses.
        keep_timer: Leave the wait timer scheduled when an exchange ends,
            for the next one to reuse (it is cancelled by `abandon`): a
            keep-alive loop then costs no timer call per request. When
            false, no timer outlives an exchange (a pooled connection may
            sit idle for long).
    """

    __slots__ = (
        "_clock",
        "_continue_timer",
        "_head_seen",
        "_keep_timer",
        "_parser",
        "_paused",
        "_processing",
        "_reading",
        "_received_any",
        "_request",
        "_reusable",
        "_sink",
        "_timer",
        "_wait",
        "_wait_limit",
        "_wait_since",
        "_writer",
        "_written",
    )

    def __init__(
        self,
        sink: ExchangeSink,
        clock: IReactorTime,
        limits: Limits | None = None,
        *,
        keep_timer: bool = False,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._parser = ResponseParser(
            limits if limits is not None else DEFAULT_CLIENT_LIMITS
        )
        self._keep_timer = keep_timer
        self._request: ClientRequest | None = None
        self._writer: BodyWriter | None = None
        self._continue_timer: IDelayedCall | None = None
        self._timer: IDelayedCall | None = None
        self._wait: type[HTTPTimeout] | None = None
        self._wait_limit = 0.0
        self._wait_since = 0.0
        self._reading = False
        self._written = False
        self._head_seen = False
        self._reusable = False
        self._received_any = False
        self._paused = False
        self._processing = False

    # -- queries ----------------------------------------------------------------

    def allows_reuse(self) -> bool:
        """
        The keep-alive verdict of the current (or last) exchange so far.

        False when the request or the response ruled reuse out
        (`exchange_allows_reuse`), bytes arrived beyond the response, the
        body was abandoned for an early response, or a final status came
        instead of ``100 Continue``.
        """
        return self._reusable

    def is_sending(self) -> bool:
        """Whether the request body is still being written (or held back)."""
        return self._writer is not None

    def has_received_bytes(self) -> bool:
        """Whether any byte of the response to the current request arrived."""
        return self._received_any

    def is_reading_paused(self) -> bool:
        """Whether `pause_reading` is in effect."""
        return self._paused

    def body_bytes_to_receive(self) -> int | None:
        """
        Bytes of the response's Content-Length body not received yet
        (`ResponseParser.body_bytes_to_receive`); ``None`` when no response
        is being read or its body's length is not known.
        """
        if not self._reading:
            return None
        return self._parser.body_bytes_to_receive()

    # -- the driver's calls -------------------------------------------------------

    def begin(self, request: ClientRequest) -> None:
        """
        Start an exchange: expect the response to ``request``.

        Raises:
            ValueError: The previous response is not over (the driver's bug).
        """
        self._parser.expect_response(request.method)
        self._request = request
        self._reusable = not request.asks_to_close()
        self._received_any = False
        self._head_seen = False
        self._written = False
        self._reading = True

    def send(self, head: bytes, consumer: IConsumer) -> None:
        """
        Write the request head, then its body: at once, or after ``100
        Continue`` (or the request's ``expect_continue_timeout``) when it
        asked for one (RFC 9110, section 10.1.1).

        Args:
            head: The serialized head (`serialize_head`).
            consumer: Where the request goes; it must accept a streaming
                producer while a body is written.
        """
        request = self._request
        if request is None:
            raise RuntimeError("bug: ClientExchange.send without begin")
        producer = request.bodyProducer
        if producer is None:
            consumer.write(head)
            self._request_written()
            return
        writer = self._writer = BodyWriter(consumer, producer, self._body_finished)
        if request.expects_continue() and producer.length != 0:
            consumer.write(head)
            self._continue_timer = self._clock.callLater(
                request.expect_continue_timeout, self._continue_expired
            )
        else:
            writer.start(head)

    def feed(self, data: bytes) -> None:
        """
        Take bytes received while an exchange is under way (call `process`
        next). Bytes after a complete response whose request is still being
        written are not parsed: they rule out reuse.
        """
        if not self._reading:
            self._reusable = False
            return
        self._received_any = True
        if self._wait is _BODY_WAIT:
            self._wait_since = self._clock.seconds()
        self._parser.feed(data)

    def hold(self, data: bytes) -> None:
        """Keep bytes that arrived after a tunnel response, for `take_leftover`."""
        self._parser.feed(data)

    def take_leftover(self) -> bytes:
        """Remove and return the bytes received but not parsed (a tunnel's first)."""
        return self._parser.take_leftover()

    def process(self) -> None:
        """
        Act on parser events until it needs bytes, reading pauses, or the
        response ends; does nothing when called from inside itself.
        """
        if self._processing:
            return
        self._processing = True
        parser = self._parser
        deliver = self._sink._exchange_body
        try:
            while self._reading and not self._paused:
                try:
                    event = parser.next_event()
                except RemoteProtocolError as error:
                    self._broken(error)
                    break
                if event is None:
                    break
                if type(event) is bytes:
                    deliver(event)
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

    def pause_reading(self) -> None:
        """
        Stop acting on events. The response waits are suspended meanwhile:
        time spent paused by our own side is not the server's delay.
        """
        self._paused = True
        if self._wait is not None:
            self._stop_waiting()

    def resume_reading(self) -> None:
        """
        Undo `pause_reading`; the wait in progress (head, or body idle)
        starts afresh. The driver calls `process` when it may deliver
        events again.
        """
        self._paused = False
        request = self._request
        if not self._reading or request is None:
            return
        if self._head_seen:
            limit = request.body_idle_timeout
            kind: type[HTTPTimeout] = _BODY_WAIT
        elif self._written:
            limit = request.response_head_timeout
            kind = _HEAD_WAIT
        else:
            return
        if limit is not None:
            self._start_waiting(kind, limit)

    def connection_lost(self) -> None:
        """
        The transport is gone: let the parser end a body read until close,
        or report the response cut short (through `process`), if any of it
        arrived.
        """
        if self._reading and self._received_any:
            self._paused = False
            self._parser.feed_eof()
            self.process()

    def abandon(self) -> None:
        """
        Give up on the exchange (abort, close, connection lost): stop the
        body producer, cancel every timer. Safe to call at any time.
        """
        self._reading = False
        self._request = None
        self._cancel_continue()
        timer = self._timer
        self._timer = None
        self._wait = None
        if timer is not None and timer.active():
            timer.cancel()
        self.stop_body()

    def release_timer(self) -> None:
        """
        Cancel the wait timer kept for a next exchange (``keep_timer``) when
        nothing waits on it now: the driver calls this once an exchange is
        over and no next one began at once, so no timer outlives it.
        """
        timer = self._timer
        if timer is not None and self._wait is None:
            self._timer = None
            if timer.active():
                timer.cancel()

    def stop_body(self) -> None:
        """Stop writing the request body (the transport is going away)."""
        writer = self._writer
        self._writer = None
        if writer is not None:
            writer.stop()

    # -- writing ------------------------------------------------------------------

    def _continue_expired(self) -> None:
        """No 100 Continue in time: send the body anyway (RFC 9110, 10.1.1)."""
        self._continue_timer = None
        self._start_body()

    def _cancel_continue(self) -> None:
        timer = self._continue_timer
        self._continue_timer = None
        if timer is not None and timer.active():
            timer.cancel()

    def _start_body(self) -> None:
        writer = self._writer
        if writer is not None and not writer.is_started():
            writer.start()

    def _body_finished(self, failure: Failure | None) -> None:
        """The `BodyWriter` reports the end of the request body."""
        self._writer = None
        if failure is not None:
            self._sink._exchange_write_failed(failure)
        else:
            self._request_written()

    def _request_written(self) -> None:
        """The whole request is on the wire: wait for the head, or finish."""
        self._written = True
        self._writer = None
        if self._reading:
            request = self._request
            if not self._head_seen and request is not None:
                timeout = request.response_head_timeout
                if timeout is not None:
                    self._start_waiting(_HEAD_WAIT, timeout)
        else:
            self._request = None  # the response came first: all done
        self._sink._exchange_written()

    # -- reading ------------------------------------------------------------------

    def _interim_received(self, head: ResponseHead) -> None:
        """A 1xx other than 101: consume it; 100 releases a held body."""
        if head.status == 100 and self._continue_timer is not None:
            self._cancel_continue()
            self._start_body()
        if self._wait is _HEAD_WAIT:
            self._wait_since = self._clock.seconds()  # the wait starts over

    def _head_received(self, head: ResponseHead) -> None:
        """The final response head: settle the body, the verdict, the waits."""
        request = self._request
        if request is None:
            raise RuntimeError("bug: a response head without a request")
        self._head_seen = True
        if self._continue_timer is not None:
            # A final answer instead of 100 Continue: the body is never sent,
            # and the server may be waiting for it, so no reuse.
            self._cancel_continue()
            self._writer = None
            self._reusable = False
            self._written = True
            self._sink._exchange_written()
            if self._request is not request:
                return  # the driver gave up meanwhile
        if not exchange_allows_reuse(request, head):
            self._reusable = False
        kind = head.framing.kind
        if kind is _BK_TUNNEL:
            self._tunnel_received(head, request)
            return
        timeout = request.body_idle_timeout
        if kind is not _BK_NONE and timeout is not None:
            self._start_waiting(_BODY_WAIT, timeout)
        else:
            self._stop_waiting()
        self._sink._exchange_head(head, request)

    def _tunnel_received(self, head: ResponseHead, request: ClientRequest) -> None:
        """A 2xx to CONNECT or a 101: valid only if asked for, after the request."""
        status = head.status
        expected = (request.method == b"CONNECT" and 200 <= status < 300) or (
            status == 101 and request.headers.hasHeader(b"upgrade")
        )
        if not expected or not self._written:
            self._broken(
                RemoteProtocolError(
                    f"unexpected {status} response switching protocols "
                    f"(request {request.method!r}, request "
                    f"{'sent' if self._written else 'still being sent'})"
                )
            )
            return
        self._reusable = False
        self._reading = False
        self._request = None
        self._stop_waiting()
        self._sink._exchange_tunnel(head, request)

    def _message_done(self, end: EndOfMessage) -> None:
        """The response is complete: the verdict, then the early-response rule."""
        self._reading = False
        self._stop_waiting()
        reusable = self._reusable and not self._parser.buffered_bytes
        if self._written:
            self._request = None
        else:
            # The server answered before our body was done. Reuse only if it
            # already has every byte we promised; else stop the body.
            writer = self._writer
            if writer is None or not writer.is_complete_on_wire():
                reusable = False
                self._writer = None
                self._request = None
                if writer is not None:
                    writer.stop()
        self._reusable = reusable
        self._sink._exchange_done(end)

    def _broken(self, error: RemoteProtocolError) -> None:
        self._reading = False
        self._reusable = False
        self._stop_waiting()
        self._sink._exchange_broken(error)

    # -- the response waits -------------------------------------------------------

    def _start_waiting(self, kind: type[HTTPTimeout], limit: float) -> None:
        """Wait ``limit`` seconds (from now, or the last activity) for ``kind``."""
        now = self._clock.seconds()
        self._wait = kind
        self._wait_limit = limit
        self._wait_since = now
        timer = self._timer
        if timer is None:
            self._timer = self._clock.callLater(limit, self._timer_fired)
        elif timer.getTime() > now + limit:
            timer.reset(limit)
        # else: it fires earlier, finds time left and re-arms for the rest.

    def _stop_waiting(self) -> None:
        self._wait = None
        if not self._keep_timer:
            timer = self._timer
            if timer is not None:
                self._timer = None
                if timer.active():
                    timer.cancel()

    def _timer_fired(self) -> None:
        """The wait timer fired: time out, wait out the rest, or do nothing."""
        self._timer = None
        kind = self._wait
        if kind is None:
            return  # a kept timer with nothing to wait for
        limit = self._wait_limit
        remaining = self._wait_since + limit - self._clock.seconds()
        if remaining > 0:
            self._timer = self._clock.callLater(remaining, self._timer_fired)
            return
        self._wait = None
        self._sink._exchange_timed_out(kind(limit))
