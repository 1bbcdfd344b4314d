# -*- test-case-name: txhttp.test.test_client_response -*-
"""
`Response` (provides ``IResponse``) and the stream carrying its body.

`HTTP11ClientProtocol` builds a `Response` when a final head arrives and pushes
the de-framed body into the response's `BodyStream`. The stream holds body
bytes that arrive before ``deliverBody`` (bounded: past its limit it asks the
connection to stop reading, so nothing is lost and memory stays bounded), then
hands them to the body protocol, which sees the stream as its transport:
``pauseProducing`` there reaches the socket. The body protocol's
``connectionLost`` gets `ResponseDone`, `PotentialDataLoss` (a body read until
the connection closed) or `ResponseFailed`, as Twisted users expect.

This module parses nothing and knows no sockets: the connection is reached
only through the small `BodyControl` interface.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final, Protocol, cast

from twisted.internet.interfaces import IProtocol, IPushProducer, ITransport
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IClientRequest, IResponse
from zope.interface import implementer

__all__ = [
    "DEFAULT_MAX_BUFFERED_BODY_BYTES",
    "BodyControl",
    "BodyStream",
    "Response",
]

DEFAULT_MAX_BUFFERED_BODY_BYTES: Final = 1024 * 1024
"""
Body bytes held for a response whose ``deliverBody`` was not called yet.

Past this the connection stops reading (the peer is slowed down by TCP)
until a body protocol is attached; nothing is dropped. 1 MiB lets most
responses finish, and the connection return to its pool, before the caller
gets round to reading them.
"""


class BodyControl(Protocol):
    """What a `BodyStream` asks of the connection that feeds it."""

    def pause_body(self, stream: BodyStream) -> None:
        """Stop reading from the socket for ``stream`` (backpressure)."""

    def resume_body(self, stream: BodyStream) -> None:
        """Read again for ``stream``, delivering what was held back."""

    def stop_body(self, stream: BodyStream) -> None:
        """The consumer wants no more of ``stream``: end the connection."""

    def abort_body(self, stream: BodyStream) -> None:
        """The consumer asked for ``abortConnection``: abort at once."""


@implementer(IPushProducer)
class BodyStream:
    """
    One response body on its way to a body protocol; that protocol's transport.

    The connection calls `data_received` and, once, `finish`; the body
    protocol calls `pauseProducing`, `resumeProducing`, `stopProducing` and
    `abortConnection`. Nothing here fires a Deferred per chunk.

    Args:
        control: The connection feeding this stream.
        max_buffered_bytes: How much to hold before ``deliverBody``.
    """

    __slots__ = (
        "_attached",
        "_buffer",
        "_buffered",
        "_consumer_paused",
        "_control",
        "_end",
        "_end_delivered",
        "_max_buffered",
        "_protocol",
        "_told_paused",
        "trailer_fields",
    )

    def __init__(
        self,
        control: BodyControl,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BODY_BYTES,
    ) -> None:
        self._control = control
        self._max_buffered = max_buffered_bytes
        self._protocol: IProtocol | None = None
        self._attached = False
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._end: Failure | None = None
        self._end_delivered = False
        self._consumer_paused = False
        self._told_paused = False
        self.trailer_fields: Sequence[tuple[bytes, bytes]] | None = None
        """The trailer field lines once the body is complete, else ``None``."""

    # -- fed by the connection --------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Deliver (or hold, bounded) a piece of the de-framed body."""
        if self._end is not None:
            return
        protocol = self._protocol
        if protocol is not None and not self._consumer_paused and not self._buffer:
            protocol.dataReceived(data)
            return
        self._buffer.append(data)
        self._buffered += len(data)
        # Holding more can only start a pause (see _sync_pause): skip the
        # call unless this crossed the limit.
        if not self._told_paused and self._buffered >= self._max_buffered:
            self._sync_pause()

    def finish(
        self, reason: Failure, trailers: Sequence[tuple[bytes, bytes]] | None = None
    ) -> None:
        """
        End the body, once; later calls are ignored.

        Args:
            reason: For the body protocol's ``connectionLost``: `ResponseDone`,
                `PotentialDataLoss` or `ResponseFailed`.
            trailers: The trailer field lines, for a body that completed.
        """
        if self._end is not None:
            return
        self._end = reason
        if trailers is not None:
            self.trailer_fields = trailers
        self._told_paused = False
        self._drain()

    def is_finished(self) -> bool:
        """Whether `finish` was called (the body protocol may still be owed data)."""
        return self._end is not None

    def is_paused(self) -> bool:
        """Whether this stream wants the connection to hold off reading."""
        return self._told_paused

    # -- used by Response.deliverBody ----------------------------------------------

    def attach(self, protocol: IProtocol) -> None:
        """
        Connect the body protocol and give it what was held.

        Raises:
            RuntimeError: If a body protocol was already attached.
        """
        if self._attached:
            held = self._protocol
            raise RuntimeError(
                "the response body is already delivered"
                + ("" if held is None else f" to {held!r}")
                + "; deliverBody may be called once"
            )
        self._attached = True
        self._protocol = protocol
        # As in twisted.web, the body protocol's transport is a push producer,
        # not a full ITransport.
        protocol.makeConnection(cast(ITransport, self))
        self._drain()
        if self._end is None:
            self._sync_pause()

    # -- the body protocol's transport (IPushProducer) ------------------------------

    def pauseProducing(self) -> None:
        """Stop delivering body data; the connection stops reading its socket."""
        self._consumer_paused = True
        self._sync_pause()

    def resumeProducing(self) -> None:
        """Deliver body data again, what was held first."""
        if not self._consumer_paused:
            return
        self._consumer_paused = False
        self._drain()
        self._sync_pause()

    def stopProducing(self) -> None:
        """
        Want no more of this body.

        The connection is closed (unread bytes would corrupt its next
        exchange) and the body protocol gets ``connectionLost`` with
        `ResponseFailed` wrapping `ConnectionAborted`.
        """
        if self._end is None:
            self._control.stop_body(self)

    def abortConnection(self) -> None:
        """Abort the connection this body arrives on, at once."""
        if self._end is None:
            self._control.abort_body(self)

    # -- internals ------------------------------------------------------------------

    def _drain(self) -> None:
        """Hand held data, then the end, to the body protocol while it listens."""
        protocol = self._protocol
        if protocol is None:
            return
        buffer = self._buffer
        while buffer and not self._consumer_paused:
            data = buffer.popleft()
            self._buffered -= len(data)
            protocol.dataReceived(data)
        if (
            not buffer
            and self._end is not None
            and not self._end_delivered
            and not self._consumer_paused
        ):
            self._end_delivered = True
            # The body protocol's transport is this stream: drop our half of
            # that cycle, so the pair is freed by reference counting rather
            # than left for the cyclic garbage collector (a collection per
            # few hundred responses otherwise).
            self._protocol = None
            protocol.connectionLost(self._end)

    def _sync_pause(self) -> None:
        """Tell the connection whether to read, when that changes."""
        if self._end is not None:
            return
        want = self._consumer_paused or self._buffered >= self._max_buffered
        if want == self._told_paused:
            return
        self._told_paused = want
        if want:
            self._control.pause_body(self)
        else:
            self._control.resume_body(self)


_MAX_CANONICAL_NAMES: Final = 1024
"""Field names whose ``Headers`` spelling `headers_from_fields` remembers."""

_canonical_names: dict[bytes, bytes] = {}


def _learn_name(name: bytes) -> bytes:
    """
    The spelling ``Headers`` stores ``name`` under, from ``Headers`` itself
    (which also refuses an invalid name, as ``addRawHeader`` would); remembered.
    """
    probe = Headers()
    probe.addRawHeader(name, b"")
    ((canonical, _),) = probe.getAllRawHeaders()
    if len(_canonical_names) >= _MAX_CANONICAL_NAMES:
        _canonical_names.clear()
    _canonical_names[name] = canonical
    return canonical


def _stores_as_assumed() -> bool:
    """Whether this Twisted's ``Headers`` keeps fields as `headers_from_fields`
    fills them: ``_rawHeaders``, canonical name to values in order."""
    probe = Headers()
    probe.addRawHeader(b"x-probe", b"1")
    probe.addRawHeader(b"X-PROBE", b"2")
    raw: object = getattr(probe, "_rawHeaders", None)
    return raw == {b"X-Probe": [b"1", b"2"]} and probe.getRawHeaders(b"x-probe") == [
        b"1",
        b"2",
    ]


_FILL_RAW: Final = _stores_as_assumed()


def headers_from_fields(fields: Sequence[tuple[bytes, bytes]]) -> Headers:
    """
    Build `Headers` from received field lines, keeping order and repeats.

    The result is what ``addRawHeader`` per field gives. When the installed
    Twisted keeps fields as this assumes (checked once, at import), byte
    string names already seen and values without CR or LF (all that the
    wire parser hands on) are stored directly, skipping ``addRawHeader``'s
    per-call conversions; everything else goes through ``addRawHeader``.
    """
    headers = Headers()
    if not _FILL_RAW:
        add = headers.addRawHeader
        for name, value in fields:
            add(name, value)
        return headers
    raw = headers._rawHeaders
    known = _canonical_names
    for name, value in fields:
        key = known.get(name)
        if key is None:
            if type(name) is not bytes:
                headers.addRawHeader(name, value)
                continue
            key = _learn_name(name)
        if type(value) is not bytes or 13 in value or 10 in value:
            headers.addRawHeader(name, value)
            continue
        values = raw.get(key)
        if values is None:
            raw[key] = [value]
        else:
            values.append(value)
    return headers


@implementer(IResponse)
class Response:
    """
    A response's status, headers and body; provides ``IResponse``.

    Built by `HTTP11ClientProtocol` when the final head arrives; the
    ``request()`` Deferred fires with it. Headers are turned into ``Headers``
    on first use.

    Attributes:
        version: ``(b"HTTP", major, minor)``.
        code: The status code.
        phrase: The reason phrase, as received (bytes, as twisted.web has it).
        length: The body length in bytes when known (``Content-Length``; 0
            for HEAD, 1xx, 204, 304), else ``UNKNOWN_LENGTH``.
        request: The ``IClientRequest`` this answers.
        previousResponse: The response this one followed (redirects), or
            ``None``.
    """

    __slots__ = (
        "_body",
        "_fields",
        "_headers",
        "_trailers",
        "code",
        "length",
        "phrase",
        "previousResponse",
        "request",
        "version",
    )

    def __init__(
        self,
        *,
        version: tuple[bytes, int, int],
        code: int,
        phrase: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        length: int | str,
        request: IClientRequest,
        body: BodyStream,
    ) -> None:
        self.version = version
        self.code = code
        self.phrase = phrase
        self.length = length
        self.request = request
        self.previousResponse: IResponse | None = None
        self._fields = fields
        self._headers: Headers | None = None
        self._trailers: Headers | None = None
        self._body = body

    def __repr__(self) -> str:
        return f"<Response {self.code} {self.phrase!r} length={self.length!r}>"

    @property
    def headers(self) -> Headers:
        """The response header fields, as ``Headers`` (repeats kept in order)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = headers_from_fields(self._fields)
        return headers

    @property
    def trailers(self) -> Headers | None:
        """
        The trailer fields of a chunked body, once the body is complete.

        ``None`` until then (and for a body that failed); an empty ``Headers``
        for a complete body without trailers.
        """
        trailers = self._trailers
        if trailers is None:
            fields = self._body.trailer_fields
            if fields is None:
                return None
            trailers = self._trailers = headers_from_fields(fields)
        return trailers

    def deliverBody(self, protocol: IProtocol) -> None:
        """
        Send the body to ``protocol``, then ``connectionLost`` with the outcome.

        ``protocol`` is connected to a transport providing ``IPushProducer``
        (and ``abortConnection``); pausing it stops reading from the socket.
        Body bytes that arrived before this call are delivered first.

        Raises:
            RuntimeError: If called a second time.
        """
        self._body.attach(protocol)

    def setPreviousResponse(self, response: IResponse) -> None:
        """Record the response this one followed (used for redirects)."""
        self.previousResponse = response
