# -*- test-case-name: txhttp.test.test_client_http -*-
"""
`ClientResponse`: what `HTTPClient` requests fire with.

It wraps the ``IResponse`` an ``IAgent`` produced (or a forged one, see
`ClientResponse.forged`) and reads its body on demand: whole and bounded
(`ClientResponse.content`, `~ClientResponse.text`, `~ClientResponse.json`), or
chunk by chunk with backpressure (`ClientResponse.iter_body`, used by
streaming, NDJSON and SSE). Content codings are undone on the way
(`ContentDecoder`, with its size and ratio caps).

The body can be consumed once; `content()` caches its result, so it (and
`text()` / `json()`) may be called again. A response may carry a `Deadline`
(`HTTPClient` gives each response its request's ``timeout``): reading the
whole body then fails with `HTTPTimeoutError` once it passes. Nothing here
sends requests.
"""

from __future__ import annotations

import codecs
import json as _json
import typing
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Final, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone, ResponseFailed
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface import implementer

from txhttp.client._decompress import ContentDecoder
from txhttp.client._exceptions import (
    DEFAULT_STATUS_EXCERPT_BYTES,
    HTTPClientError,
    HTTPConnectionError,
    HTTPDecompressionError,
    HTTPResponseTooLargeError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from txhttp.client._url_helpers import extract_json_type

if TYPE_CHECKING:
    from txhttp.client._config import HTTPClientConfig

__all__ = ["ClientResponse", "Deadline", "JSONValue"]

JSONValue = dict[str, "JSONValue"] | list["JSONValue"] | str | int | float | bool | None
"""A decoded JSON document."""

DEFAULT_DRAIN_BYTES: Final = 64 * 1024
"""
Body bytes `ClientResponse.release` reads and drops to keep a connection.

A longer unread body is cheaper to abort than to drain.
"""

_DEFAULT_CHARSET: Final = "utf-8"


def _body_producer(protocol: Protocol) -> IPushProducer | None:
    """
    The producer controlling a body protocol's delivery, if any.

    ``IResponse.deliverBody`` connects the protocol to a transport that
    provides (or at least behaves as) ``IPushProducer``.
    """
    transport = protocol.transport
    if transport is None:
        return None
    # Declared as ITransport by Protocol, but every deliverBody in Twisted
    # and txhttp connects a push producer (the connection's proxy).
    return cast(IPushProducer, transport)


def _stop_transport(protocol: Protocol) -> None:
    """Abort a response body."""
    producer = _body_producer(protocol)
    if producer is not None:
        producer.stopProducing()


class _BodySink(typing.Protocol):
    """Where `_BodyProtocol` hands decoded chunks; one per body read."""

    def chunk(self, data: bytes) -> None:
        """Take one decoded chunk."""

    def done(self) -> None:
        """The body ended normally."""

    def failed(self, error: Exception) -> None:
        """The body ended with ``error``."""


class _BodyProtocol(Protocol):
    """
    Receives a response body from the agent, decodes it and enforces caps.

    Turns agent-level endings into ours: ``ResponseDone`` (and
    ``PotentialDataLoss``, how a close-delimited body ends, RFC 9112,
    section 6.3) is a normal end, anything else an `HTTPConnectionError`.
    """

    def __init__(
        self,
        decoder: ContentDecoder,
        sink: _BodySink,
        *,
        method: str,
        url: str,
    ) -> None:
        self._decoder = decoder
        self._sink = sink
        self._method = method
        self._url = url
        self._finished = False

    def dataReceived(self, data: bytes) -> None:
        if self._finished:
            return
        try:
            chunks = self._decoder.feed(data)
        except HTTPClientError as error:
            self._give_up(error)
            return
        for chunk in chunks:
            # A sink may stop the body (size cap, closed stream) mid-way.
            if self._stopped():
                return
            self._sink.chunk(chunk)

    def _stopped(self) -> bool:
        return self._finished

    def _give_up(self, error: HTTPClientError) -> None:
        """Stop reading (aborting the connection) and fail the sink."""
        error.method, error.url = self._method, self._url
        self._finished = True
        _stop_transport(self)
        self._sink.failed(error)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        if self._finished:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            try:
                for chunk in self._decoder.finish():
                    self._sink.chunk(chunk)
            except HTTPDecompressionError as bad:
                self._finished = True
                bad.method, bad.url = self._method, self._url
                self._sink.failed(bad)
                return
            self._finished = True
            self._sink.done()
            return
        self._finished = True
        detail = reason.getErrorMessage()
        if reason.check(ResponseFailed):
            reasons = getattr(reason.value, "reasons", None) or []
            detail = "; ".join(r.getErrorMessage() for r in reasons) or detail
        lost = HTTPConnectionError(
            f"response body cut short: {detail}",
            method=self._method,
            url=self._url,
        )
        lost.__cause__ = reason.value
        self._sink.failed(lost)

    def stop(self) -> None:
        """The consumer lost interest: abort the body."""
        if not self._finished:
            self._finished = True
            _stop_transport(self)


class _Collector:
    """Gathers a whole body, bounded by ``limit`` bytes."""

    def __init__(self, protocol_stop: list[_BodyProtocol], limit: int) -> None:
        self.deferred: Deferred[bytes] = Deferred()
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = limit
        self._protocol = protocol_stop

    def chunk(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            self._protocol[0].stop()
            self.failed(
                HTTPResponseTooLargeError(
                    f"response body is over {self._limit} bytes", limit=self._limit
                )
            )
            return
        self._parts.append(data)

    def done(self) -> None:
        if not self.deferred.called:
            self.deferred.callback(b"".join(self._parts))

    def failed(self, error: Exception) -> None:
        if not self.deferred.called:
            self._parts.clear()
            self.deferred.errback(Failure(error))


class BodyStream:
    """
    A response body as an async iterator of chunks, with backpressure.

    When a chunk arrives and nobody is waiting for one, the response
    transport is paused; it is resumed when the consumer has taken every
    buffered chunk. So at most what the transport delivered in one read is
    held in memory, however slow the consumer is. Iterate it with
    ``async for chunk in stream`` from a coroutine run by
    ``Deferred.fromCoroutine``, or call `next_chunk`.
    """

    def __init__(self) -> None:
        self._buffer: deque[bytes] = deque()
        self._waiter: Deferred[bytes | None] | None = None
        self._ended = False
        self._error: Exception | None = None
        self._protocol: _BodyProtocol | None = None
        self._paused = False

    def _attach(self, protocol: _BodyProtocol) -> None:
        self._protocol = protocol

    def _producer(self) -> IPushProducer | None:
        if self._protocol is None:
            return None
        return _body_producer(self._protocol)

    @property
    def is_paused(self) -> bool:
        """``True`` while the body transport is paused for a busy consumer."""
        return self._paused

    @property
    def is_finished(self) -> bool:
        """``True`` once the body ended (normally or not)."""
        return self._ended or self._error is not None

    def chunk(self, data: bytes) -> None:
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.callback(data)
            return
        self._buffer.append(data)
        producer = self._producer()
        if not self._paused and producer is not None:
            self._paused = True
            producer.pauseProducing()

    def done(self) -> None:
        self._ended = True
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.callback(None)

    def failed(self, error: Exception) -> None:
        self._error = error
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.errback(Failure(error))

    def next_chunk(self) -> Deferred[bytes | None]:
        """
        The next body chunk, or `None` at the end of the body.

        Returns:
            A Deferred firing with the chunk, or failing with the error that
            ended the body (`HTTPConnectionError`,
            `HTTPDecompressionError`...).
        """
        if self._waiter is not None:
            raise RuntimeError("next_chunk called while a read is pending")
        if self._buffer:
            data = self._buffer.popleft()
            if not self._buffer:
                self._resume()
            return succeed(data)
        if self._error is not None:
            return fail(self._error)
        if self._ended:
            return succeed(None)
        self._waiter = Deferred(lambda _: self.close())
        self._resume()
        return self._waiter

    def _resume(self) -> None:
        producer = self._producer()
        if self._paused and producer is not None:
            self._paused = False
            producer.resumeProducing()

    def close(self) -> None:
        """Stop reading: abort the body if it has not ended (idempotent)."""
        self._buffer.clear()
        if not self.is_finished:
            self._error = HTTPConnectionError("response body stream was closed")
            if self._protocol is not None:
                self._protocol.stop()
            if self._waiter is not None:
                waiter, self._waiter = self._waiter, None
                waiter.errback(Failure(self._error))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.next_chunk()
            if data is None:
                return
            yield data


@implementer(IResponse)
class _MemoryResponse:
    """An ``IResponse`` with a body in memory: for forged responses."""

    def __init__(self, code: int, headers: Headers, body: bytes) -> None:
        self.version = (b"HTTP", 1, 1)
        self.code = code
        self.phrase = b""
        self.headers = headers
        self.length = len(body)
        self.request = None
        self.previousResponse = None
        self._body = body

    def deliverBody(self, protocol: Protocol) -> None:
        """Deliver the whole body at once, then ``ResponseDone``."""
        protocol.makeConnection(_NullTransport())
        if self._body:
            protocol.dataReceived(self._body)
        protocol.connectionLost(Failure(ResponseDone("forged response done")))

    def setPreviousResponse(self, response: IResponse) -> None:
        """Record the response this one follows."""
        self.previousResponse = response  # type: ignore[assignment]


@implementer(IPushProducer)
class _NullTransport:
    """The body transport of a forged response: nothing to pause."""

    def pauseProducing(self) -> None:
        """Nothing to pause."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""


def _content_type_charset(headers: Headers) -> str | None:
    """The ``charset`` parameter of ``Content-Type``, if valid."""
    values = headers.getRawHeaders("content-type")
    if not values:
        return None
    message = Message()
    message["content-type"] = values[0]
    charset = message.get_param("charset")
    if not isinstance(charset, str):
        return None
    try:
        return codecs.lookup(charset.strip()).name
    except LookupError:
        return None


@dataclass(frozen=True, slots=True)
class Deadline:
    """
    When a request's time is up, as a point on a clock.

    Attributes:
        clock: The time source.
        at: The clock time (``clock.seconds()``) at which time is up.
        timeout: The request's timeout in seconds, for error messages.
    """

    clock: IReactorTime
    at: float
    timeout: float

    def remaining(self) -> float:
        """Seconds left (zero or less once passed)."""
        return self.at - self.clock.seconds()

    def error(self, method: str, url: str) -> HTTPTimeoutError:
        """The error of a request whose deadline passed."""
        return HTTPTimeoutError(
            f"total timeout of {self.timeout:g} s expired while reading the body",
            timeout=self.timeout,
            phase="total",
            method=method,
            url=url,
        )


class ClientResponse:
    """
    The response to a request made with `HTTPClient`.

    Attributes:
        method: The method of the request that got this response.
        url: The URL this response came from (after redirects).
        history: The responses of earlier redirects, oldest first.
        raw: The underlying ``IResponse``.
        deadline: When reading the whole body must have finished (`content`,
            `text`, `json`, `raise_for_status`), or ``None``.
    """

    def __init__(
        self,
        raw: IResponse,
        *,
        method: str,
        url: str,
        config: HTTPClientConfig,
        history: Sequence[ClientResponse] = (),
        decompress: bool = True,
        deadline: Deadline | None = None,
    ) -> None:
        self.raw = raw
        self.deadline = deadline
        self.method = method
        self.url = url
        self.history: Sequence[ClientResponse] = tuple(history)
        self._config = config
        self._decompress = decompress
        self._body: bytes | Failure | None = None
        self._waiters: list[Deferred[bytes]] | None = None
        self._consumed = False

    @classmethod
    def forged(
        cls,
        status: int = 200,
        body: bytes = b"",
        headers: Mapping[str, str] | Headers | None = None,
        *,
        method: str = "GET",
        url: str = "http://forged.invalid/",
        config: HTTPClientConfig | None = None,
    ) -> ClientResponse:
        """
        A response made in memory, for filter listeners and tests.

        Args:
            status: The status code.
            body: The whole body.
            headers: Response headers.
            method: The request method it answers.
            url: The URL it pretends to come from.
            config: Limits to apply when reading it; defaults otherwise.
        """
        from txhttp.client._config import HTTPClientConfig  # noqa: PLC0415 (cycle)

        if isinstance(headers, Headers):
            header_obj = headers
        else:
            header_obj = Headers()
            for name, value in (headers or {}).items():
                header_obj.addRawHeader(name, value)
        return cls(
            _MemoryResponse(status, header_obj, body),
            method=method,
            url=url,
            config=config or HTTPClientConfig(),
        )

    # -- the head ----------------------------------------------------------

    @property
    def status(self) -> int:
        """The status code."""
        return int(self.raw.code)

    @property
    def code(self) -> int:
        """The status code (twisted.web's name for it)."""
        return self.status

    @property
    def reason(self) -> str:
        """The reason phrase, decoded as latin-1 (may be empty)."""
        return bytes(self.raw.phrase or b"").decode("latin-1")

    @property
    def headers(self) -> Headers:
        """The response headers."""
        headers: Headers = self.raw.headers
        return headers

    @property
    def ok(self) -> bool:
        """``True`` for a status below 400."""
        return self.status < 400

    @property
    def content_length(self) -> int | None:
        """The announced body length, or `None` when unknown."""
        length = self.raw.length
        return None if length is UNKNOWN_LENGTH else int(length)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, decoded, or ``default``."""
        values = self.headers.getRawHeaders(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` header, if any."""
        return self.header("content-type")

    @property
    def charset(self) -> str | None:
        """The charset named by ``Content-Type``, normalised, or `None`."""
        return _content_type_charset(self.headers)

    # -- the body ------------------------------------------------------------

    def _decoder(self, max_bytes: int) -> ContentDecoder:
        codings: list[str] = []
        if self._decompress:
            for value in self.headers.getRawHeaders("content-encoding", []):
                codings.extend(value.split(","))
        return ContentDecoder(
            codings,
            max_bytes=max_bytes,
            max_ratio=self._config.max_decompression_ratio,
            grace_bytes=self._config.decompression_ratio_grace_bytes,
        )

    def _claim(self) -> None:
        if self._consumed:
            raise RuntimeError(
                "the response body was already consumed (content() caches it; "
                "streams can be read once)"
            )
        self._consumed = True

    def content(self, max_bytes: int | None = None) -> Deferred[bytes]:
        """
        The whole body, decoded, read at most once (then cached).

        Args:
            max_bytes: The size cap; the client's
                ``max_response_body_bytes`` by default.

        Returns:
            A Deferred firing with the body, or failing with
            `HTTPResponseTooLargeError` (over the cap: announced by
            ``Content-Length`` or counted while reading, the connection is
            then aborted), `HTTPDecompressionError`,
            `HTTPConnectionError` or, once the response's ``deadline``
            passes, `HTTPTimeoutError` (``phase="total"``; the connection is
            aborted).
        """
        if self._body is None and self._waiters is None:
            limit = max_bytes or self._config.max_response_body_bytes
            self._claim()
            self._waiters = []
            self._collect(limit).addBoth(self._body_read)
        if self._body is not None:
            body = self._body
            return fail(body) if isinstance(body, Failure) else succeed(body)
        waiter: Deferred[bytes] = Deferred()
        assert self._waiters is not None
        self._waiters.append(waiter)
        return waiter

    def _body_read(self, result: bytes | Failure) -> None:
        """Keep the body (or its failure) and hand it to every waiter."""
        if isinstance(result, Failure) and isinstance(result.value, HTTPClientError):
            result.value.method = result.value.method or self.method
            result.value.url = result.value.url or self.url
        self._body = result
        waiters, self._waiters = self._waiters or [], []
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    def _collect(self, limit: int) -> Deferred[bytes]:
        length = self.content_length
        if length is not None and length > limit and not self._has_codings():
            self._abort_unread()
            return fail(
                HTTPResponseTooLargeError(
                    f"response Content-Length {length} is over {limit} bytes",
                    limit=limit,
                    method=self.method,
                    url=self.url,
                )
            )
        deadline = self.deadline
        if deadline is not None and deadline.remaining() <= 0:
            self._abort_unread()
            return fail(deadline.error(self.method, self.url))
        holder: list[_BodyProtocol] = []
        collector = _Collector(holder, limit)
        protocol = _BodyProtocol(
            self._decoder(limit), collector, method=self.method, url=self.url
        )
        holder.append(protocol)
        self.raw.deliverBody(protocol)
        if deadline is not None and not collector.deferred.called:
            self._bound(collector, protocol, deadline)
        return collector.deferred

    def _bound(
        self, collector: _Collector, protocol: _BodyProtocol, deadline: Deadline
    ) -> None:
        """Abort the body read if it has not ended by ``deadline``."""

        def expire() -> None:
            protocol.stop()
            collector.failed(deadline.error(self.method, self.url))

        timer = deadline.clock.callLater(deadline.remaining(), expire)

        def finished(result: bytes | Failure) -> bytes | Failure:
            if timer.active():
                timer.cancel()
            return result

        collector.deferred.addBoth(finished)

    def _has_codings(self) -> bool:
        return self._decompress and bool(self.headers.getRawHeaders("content-encoding"))

    def _abort_unread(self) -> None:
        """Deliver the body to a protocol that aborts it at once."""
        self.raw.deliverBody(_Aborter())

    def text(self, encoding: str | None = None) -> Deferred[str]:
        """
        The body as text.

        The charset comes from ``encoding``, else ``Content-Type``'s
        ``charset`` parameter, else UTF-8 (RFC 8259 for JSON, and the modern
        default for text); undecodable bytes are replaced, never raised.

        Returns:
            A Deferred firing with the text; fails as `content` does.
        """
        charset = encoding or self.charset or _DEFAULT_CHARSET

        def decode(body: bytes) -> str:
            return body.decode(charset, errors="replace")

        return self.content().addCallback(decode)

    def json(self) -> Deferred[JSONValue]:
        """
        The body parsed as JSON (UTF-8, or the ``Content-Type`` charset).

        Returns:
            A Deferred firing with the document, or failing with
            `HTTPClientError` if it is not valid JSON (the decoder's error is
            the cause), or as `content` does.
        """

        def parse(body: bytes) -> JSONValue:
            charset = self.charset or _DEFAULT_CHARSET
            try:
                value: JSONValue = _json.loads(body.decode(charset))
            except (ValueError, UnicodeDecodeError) as e:
                raise HTTPClientError(
                    f"response body is not valid JSON: {e}",
                    method=self.method,
                    url=self.url,
                ) from e
            return value

        return self.content().addCallback(parse)

    @property
    def is_json(self) -> bool:
        """``True`` if ``Content-Type`` says JSON (``application/json``, ``+json``)."""
        return extract_json_type(self.content_type)

    def raise_for_status(self) -> Deferred[ClientResponse]:
        """
        Fail on an error status (400 and above).

        For an error status the body is read (bounded as by `content`) to
        keep an excerpt of at most ``DEFAULT_STATUS_EXCERPT_BYTES`` bytes in
        the error; `content` still works afterwards.

        Returns:
            A Deferred firing with this response when the status is below
            400, else failing with `HTTPStatusError`.
        """
        if self.ok:
            return succeed(self)

        def error(body: bytes | Failure) -> ClientResponse:
            excerpt = body if isinstance(body, bytes) else b""
            raise HTTPStatusError(
                f"HTTP {self.status} {self.reason}".rstrip(),
                status=self.status,
                headers=self.headers,
                body=excerpt,
                method=self.method,
                url=self.url,
                max_excerpt_bytes=DEFAULT_STATUS_EXCERPT_BYTES,
            )

        return self.content().addBoth(error)

    def iter_body(self) -> BodyStream:
        """
        The body as a `BodyStream` of decoded chunks, with backpressure.

        No total size cap applies (the consumer handles chunks as they come,
        and the transport is paused while it is busy); the decompression
        ratio cap does, and so does the agent's body idle timeout, but not
        the response's ``deadline`` (a stream may last as long as it keeps
        moving). Can be called once, instead of `content`.
        """
        self._claim()
        stream = BodyStream()
        # Streams have no total cap: bound the decoder by what Python can count.
        protocol = _BodyProtocol(
            self._decoder(_STREAM_NO_TOTAL_CAP),
            stream,
            method=self.method,
            url=self.url,
        )
        stream._attach(protocol)
        self.raw.deliverBody(protocol)
        return stream

    def release(self) -> None:
        """
        Discard the body without keeping it.

        A short body is read and dropped, so the connection can be reused;
        past ``DEFAULT_DRAIN_BYTES`` the connection is aborted instead. Safe
        to call more than once, and after the body was read.
        """
        if self._consumed:
            return
        self._consumed = True
        self.raw.deliverBody(_Drainer(DEFAULT_DRAIN_BYTES))

    def __repr__(self) -> str:
        return f"<ClientResponse {self.status} {self.method} {self.url}>"


_STREAM_NO_TOTAL_CAP: Final = 2**62
"""Decoder size cap for streams, which are bounded by backpressure instead."""


class _Drainer(Protocol):
    """Reads and drops a body; aborts once more than ``limit`` bytes came."""

    def __init__(self, limit: int) -> None:
        self._left = limit

    def dataReceived(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left < 0:
            _stop_transport(self)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        """The body ended; nothing to report to anyone."""


class _Aborter(Protocol):
    """Aborts a body as soon as it is connected."""

    def connectionMade(self) -> None:
        _stop_transport(self)

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:  # noqa: B008
        """The body ended; nothing to report to anyone."""
