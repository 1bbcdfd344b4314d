# -*- test-case-name: txhttp.test.test_server_native -*-
"""
The native request/response API: lean objects for the fast path.

A handler is a callable ``handler(request, response)``; it may answer at
once, return a ``Deferred``, or be an ``async def`` coroutine function. It sees
a ``Request`` (method, target, path, query, headers, addresses, the body as a
stream with backpressure or read whole) and a ``Response`` (status, headers,
``write`` with automatic framing, trailers, ``finish``, ``when_done``), never
the channel. ``NativeExchange`` adapts one handler call to the channel's
``Exchange`` contract; framing and ordering are the slot's business.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from functools import partial
from typing import Any, Final, TypeAlias
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IAddress, IProducer
from twisted.logger import Logger
from twisted.python.failure import Failure

from txhttp._wire import Fields, RequestHead
from txhttp.server._exchange import ExchangeFactory, ResponseSlot
from txhttp.server._slot import REASONS, reason_for

_log = Logger()

BODY_HIGH_WATER_BYTES: Final = 64 * 1024
"""Request body bytes buffered for a handler before the socket is paused."""

HandlerResult: TypeAlias = (
    "bytes | Deferred[Any] | Coroutine[Any, Any, bytes | None] | None"
)
Handler: TypeAlias = Callable[["Request", "Response"], HandlerResult]
"""What a native handler is: called once per request with its two objects."""


class Headers:
    """
    A read-only view of received header fields.

    Iterating yields ``(name, value)`` pairs in received order, names as
    received; lookups ignore case (RFC 9110, section 5.1).
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Fields) -> None:
        self._fields = fields
        self._index: dict[bytes, list[bytes]] | None = None

    def _lookup(self) -> dict[bytes, list[bytes]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._fields:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """Return the first value of field ``name``, or ``default``."""
        values = self._lookup().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: bytes) -> list[bytes]:
        """Return every value of field ``name``, in received order."""
        return list(self._lookup().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, bytes) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"


class Request:
    """
    One received request, as a native handler sees it.

    Attributes:
        method: The method token as received, e.g. ``b"GET"``.
        target: The request-target as received.
        version: ``b"HTTP/1.1"`` or ``b"HTTP/1.0"``.
    """

    __slots__ = (
        "_body",
        "_discard",
        "_end",
        "_head",
        "_headers",
        "_path",
        "_query",
        "_slot",
        "method",
        "target",
        "version",
    )

    def __init__(self, head: RequestHead, slot: ResponseSlot) -> None:
        self.method = head.method
        self.target = head.target
        self.version = head.version
        self._head = head
        self._headers: Headers | None = None
        self._slot = slot
        self._path: bytes | None = None
        self._query: dict[bytes, list[bytes]] | None = None
        # Made on first use: most requests have no body to queue or wait for.
        self._body: _BodyQueue | None = None
        # The trailers, once the body is complete.
        self._end: Fields | None = None
        self._discard = False

    @property
    def headers(self) -> Headers:
        """The header fields, in received order (``Headers``)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers(self._head.fields)
        return headers

    @property
    def path(self) -> bytes:
        """The path of the target, without the query (``*`` for ``OPTIONS *``)."""
        path = self._path
        if path is None:
            target = self.target
            if target[:1] != b"/" and b"://" in target:
                # absolute-form (RFC 9112, section 3.2.2): drop scheme and authority.
                rest = target.split(b"://", 1)[1]
                slash = rest.find(b"/")
                target = rest[slash:] if slash >= 0 else b"/"
            path = self._path = target.split(b"?", 1)[0].split(b"#", 1)[0]
        return path

    @property
    def query(self) -> Mapping[bytes, list[bytes]]:
        """The query string parsed into lists of values (computed on first use)."""
        query = self._query
        if query is None:
            _, sep, raw = self.target.partition(b"?")
            query = self._query = parse_qs(raw, keep_blank_values=True) if sep else {}
        return query

    @property
    def host(self) -> bytes | None:
        """The Host field value (``None`` only for HTTP/1.0 without one)."""
        return self._head.host

    @property
    def peer(self) -> IAddress:
        """The client's address."""
        return self._slot.peer

    @property
    def local(self) -> IAddress:
        """
        The local address the request came in on.

        Read it while the connection is open: once closed, a TCP transport
        no longer knows it (``HTTPChannel.getHost`` raises
        ``twisted.internet.error.ConnectionDone``). A connection whose
        request asked for the close may be closed as soon as the handler
        returns.
        """
        return self._slot.host

    @property
    def is_secure(self) -> bool:
        """Whether the request came over TLS."""
        return self._slot.is_secure

    @property
    def trailers(self) -> Fields:
        """Trailer fields of a chunked body; empty until the body is complete."""
        end = self._end
        return end if end is not None else ()

    # -- body --------------------------------------------------------------

    def read_chunk(self) -> Deferred[bytes]:
        """
        Return the next piece of the body; ``b""`` once it is complete.

        The socket is paused while more than ``BODY_HIGH_WATER_BYTES`` wait
        here unread, so a slow reader slows the client down. Fails with the
        reason if the body is cut short (connection lost, or a malformed or
        oversized body: a ``txhttp._wire.RemoteProtocolError``).
        """
        self._slot.want_body()
        body = self._body
        if body is not None:
            chunks = body.chunks
            if chunks:
                data = chunks.popleft()
                body.buffered -= len(data)
                if body.paused and body.buffered <= BODY_HIGH_WATER_BYTES:
                    body.paused = False
                    self._slot.resume_body()
                return succeed(data)
            if body.failure is not None:
                return fail(body.failure)
        if self._end is not None:
            return succeed(b"")
        if body is None:
            body = self._body = _BodyQueue()
        waiter: Deferred[bytes] = Deferred()
        body.waiters.append(waiter)
        return waiter

    def read(self) -> Deferred[bytes]:
        """
        Return the whole body once it has arrived.

        The size is bounded by the channel's ``max_body_bytes`` (a larger
        body fails this Deferred and the client gets 413).
        """
        self._slot.want_body()
        parts: list[bytes] = []
        result: Deferred[bytes] = Deferred()

        def next_piece(data: bytes) -> None:
            if data:
                parts.append(data)
                self.read_chunk().addCallbacks(next_piece, result.errback)
            else:
                result.callback(b"".join(parts))

        self.read_chunk().addCallbacks(next_piece, result.errback)
        return result

    def iter_body(self) -> AsyncIterator[bytes]:
        """Iterate over the body: ``async for data in request.iter_body()``."""
        return _BodyIterator(self)

    def _body_received(self, data: bytes) -> None:
        if self._discard:
            return
        body = self._body
        if body is None:
            body = self._body = _BodyQueue()
        elif body.waiters:
            body.waiters.popleft().callback(data)
            return
        body.chunks.append(data)
        body.buffered += len(data)
        if not body.paused and body.buffered > BODY_HIGH_WATER_BYTES:
            body.paused = True
            self._slot.pause_body()

    def _body_complete(self, trailers: Fields) -> None:
        self._end = trailers
        body = self._body
        if body is not None:
            waiters = body.waiters
            while waiters:
                waiters.popleft().callback(b"")

    def _body_failed(self, reason: Failure) -> None:
        if self._end is not None:
            return
        body = self._body
        if body is None:
            body = self._body = _BodyQueue()
        if body.failure is None:  # (Told once, by the Exchange contract.)
            body.failure = reason
            waiters = body.waiters
            while waiters:
                waiters.popleft().errback(reason)

    def _stop_buffering(self, body: _BodyQueue) -> None:
        """The response is done without the body: drop what comes."""
        if not body.waiters:
            self._discard = True
            body.chunks.clear()
            body.buffered = 0
            if body.paused:
                body.paused = False
                self._slot.resume_body()

    def __repr__(self) -> str:
        return f"<Request {self.method!r} {self.target!r}>"


class _BodyQueue:
    """What a `Request` holds of its body while it is read (made on demand)."""

    __slots__ = ("buffered", "chunks", "failure", "paused", "waiters")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        """Received pieces nobody asked for yet."""
        self.buffered = 0
        """Bytes in ``chunks``."""
        self.paused = False
        """Whether the body was paused for ``chunks`` being over the mark."""
        self.waiters: deque[Deferred[bytes]] = deque()
        """``read_chunk`` Deferreds waiting for the next piece."""
        self.failure: Failure | None = None
        """Why the body was cut short, if it was."""


class _BodyIterator:
    __slots__ = ("_request",)

    def __init__(self, request: Request) -> None:
        self._request = request

    def __aiter__(self) -> _BodyIterator:
        return self

    async def __anext__(self) -> bytes:
        data = await self._request.read_chunk()
        if not data:
            raise StopAsyncIteration
        return data


class Response:
    """
    The response to one request, as a native handler writes it.

    Set ``status``, ``reason`` and ``headers``, then call ``write`` any number of
    times and ``finish`` once, or just ``finish(body)``: a body given whole
    goes out with a Content-Length in a single write. Without a
    Content-Length the body is chunked on HTTP/1.1 and ended by the close on
    HTTP/1.0. ``Date``, ``Server`` and ``Connection`` are added for you.
    After the client went away, writing is a no-op (logged once).
    """

    __slots__ = (
        "_done_waiters",
        "_finished",
        "_outcome",
        "_request",
        "_slot",
        "_started",
        "_warned",
        "headers",
        "reason",
        "status",
    )

    def __init__(self, slot: ResponseSlot, request: Request) -> None:
        self.status = 200
        """The status code; change it before the first write."""
        self.reason: bytes | None = None
        """The reason phrase; ``None`` means the standard one for ``status``."""
        self.headers: list[tuple[bytes, bytes]] = []
        """Header fields to send, in order (names and values as bytes)."""
        self._slot = slot
        self._request = request
        self._started = False
        self._finished = False
        self._outcome: bool | None = None
        self._done_waiters: list[Deferred[bool]] | None = None
        self._warned = False

    def set_header(self, name: bytes, value: bytes) -> None:
        """Set field ``name`` to ``value``, replacing any earlier value."""
        lowered = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lowered]
        self.headers.append((name, value))

    def add_header(self, name: bytes, value: bytes) -> None:
        """Add a field line, keeping any earlier one of the same name."""
        self.headers.append((name, value))

    @property
    def started(self) -> bool:
        """Whether the head was written (status and headers are fixed)."""
        return self._started

    @property
    def finished(self) -> bool:
        """Whether ``finish`` was called (or the response was abandoned)."""
        return self._finished

    def is_connected(self) -> bool:
        """Whether writes can still reach the client."""
        return self._slot.is_connected()

    def _gone(self) -> bool:
        if self._slot.is_connected():
            return False
        if not self._warned:
            self._warned = True
            _log.info(
                "response to {request!r} written after the client went away; ignored",
                request=self._request,
            )
        return True

    def _reason(self) -> bytes:
        reason = self.reason
        return reason if reason is not None else reason_for(self.status)

    def write(self, data: bytes) -> None:
        """
        Write body bytes; the first call sends the head.

        Raises:
            RuntimeError: The response is already finished.
            txhttp._wire.LocalProtocolError: A header could inject a line, or
                more bytes than the Content-Length set.
        """
        if self._finished:
            raise RuntimeError("write after finish")
        if self._gone():
            return
        if not self._started:
            self._slot.write_head(self.status, self._reason(), self.headers)
            self._started = True
        self._slot.write_body(data)

    def finish(self, data: bytes = b"", trailers: Fields = ()) -> None:
        """
        Write ``data`` (if any) and end the response.

        ``trailers`` are sent only with a chunked body; asking for trailers
        before anything was written makes the body chunked (on HTTP/1.1).

        Raises:
            RuntimeError: ``finish`` was already called.
        """
        if self._finished:
            raise RuntimeError("finish called twice")
        slot = self._slot
        # Told by `NativeExchange.connection_lost` once the slot is not
        # connected (`is_connected`), the only way to an outcome before finish.
        if self._outcome is not None:
            self._gone()
            self._finished = True
            return
        if not self._started and not trailers:
            self._started = True
            self._finished = True
            status = self.status
            reason = self.reason
            if reason is None:
                reason = REASONS.get(status, b"")
            slot.finish_with_body(status, reason, self.headers, data)
        else:
            if not self._started:
                slot.write_head(self.status, self._reason(), self.headers)
                self._started = True
            if data:
                slot.write_body(data)
            self._finished = True
            slot.finish(trailers)
        request = self._request
        body = request._body
        if body is None:
            request._discard = True  # Nothing queued, nobody waiting.
        else:
            request._stop_buffering(body)

    def when_done(self) -> Deferred[bool]:
        """
        Return a Deferred firing once the response is settled.

        It fires with ``True`` once the whole response was handed to the
        transport, or ``False`` if the client went away first. It never fails.
        """
        outcome = self._outcome
        if outcome is not None:
            return succeed(outcome)
        waiter: Deferred[bool] = Deferred()
        if self._done_waiters is None:
            self._done_waiters = [waiter]
        else:
            self._done_waiters.append(waiter)
        return waiter

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Register a producer of the body; it is paused while the client is slow."""
        self._slot.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """Forget the registered producer."""
        self._slot.unregisterProducer()

    def _settle(self, outcome: bool) -> None:
        if self._outcome is not None:
            return
        self._outcome = outcome
        waiters, self._done_waiters = self._done_waiters, None
        if waiters is not None:
            for waiter in waiters:
                waiter.callback(outcome)

    def _fail(self, failure: Failure) -> None:
        """The handler failed: answer 500 if possible, else cut the response."""
        slot = self._slot
        self._finished = True
        if not slot.is_connected():
            return
        if slot.is_fresh():
            slot.write_error(500)
        else:
            slot.abort()


class NativeExchange:
    """
    Runs one native handler for one request (the ``Exchange`` of native code).

    Args:
        handler: The handler to call.
        channel: The connection (unused: handlers never see it).
        head: The request head.
        slot: Where the response goes.
    """

    __slots__ = ("_handler", "request", "response")

    def __init__(
        self, handler: Handler, channel: object, head: RequestHead, slot: ResponseSlot
    ) -> None:
        self._handler = handler
        request = self.request = Request(head, slot)
        self.response = Response(slot, request)

    def start(self) -> None:
        """Call the handler; adapt what it returns."""
        request = self.request
        response = self.response
        try:
            result = self._handler(request, response)
        except Exception:
            self._failed(Failure())
            return
        if result is None:
            return
        if isinstance(result, bytes):
            self._completed(result)
            return
        if isinstance(result, Deferred):
            waiting: Deferred[Any] = result
        elif inspect.iscoroutine(result):
            waiting = Deferred.fromCoroutine(result)
        else:
            self._failed(
                Failure(TypeError(f"handler returned {type(result).__name__}"))
            )
            return
        waiting.addCallbacks(self._completed, self._failed)

    def _completed(self, result: object) -> None:
        response = self.response
        if isinstance(result, bytes):
            if response.finished:
                self._failed(Failure(RuntimeError("bytes returned after finish")))
            else:
                response.finish(result)
        elif result is not None:
            self._failed(
                Failure(TypeError(f"handler returned {type(result).__name__}"))
            )
        elif not response.finished:
            response.finish()

    def _failed(self, failure: Failure) -> None:
        _log.failure("handler failed for {request!r}", failure, request=self.request)
        self.response._fail(failure)

    def body_received(self, data: bytes) -> None:
        """Queue body bytes for the handler."""
        self.request._body_received(data)

    def body_complete(self, trailers: Fields) -> None:
        """The body is complete."""
        request = self.request
        if request._body is None:
            # Nobody is waiting (the common case): just record it.
            request._end = trailers
        else:
            request._body_complete(trailers)

    def response_sent(self) -> None:
        """Fire ``Response.when_done`` with ``True``."""
        response = self.response
        if response._done_waiters is None and response._outcome is None:
            # Nobody is waiting (the common case): just record it.
            response._outcome = True
        else:
            response._settle(True)

    def connection_lost(self, reason: Failure) -> None:
        """Fail pending body reads; fire ``Response.when_done`` with ``False``."""
        self.request._body_failed(reason)
        self.response._settle(False)


def native_exchange_factory(handler: Handler) -> ExchangeFactory:
    """Return an exchange factory that runs ``handler`` for every request."""
    # A partial, not a closure: one Python frame less per request.
    return partial(NativeExchange, handler)
