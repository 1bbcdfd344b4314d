# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
Connection-level incremental parsers: `RequestParser` and `ResponseParser`.

Each one holds the bytes received on one connection and hands out events on
demand: a head, body data, the end of the message, the end of the stream.
The parser's place in the connection is an `Enum` state with one transition
table; heads are found and split by `txhttp._wire._head`, framing is decided
by `txhttp._wire._framing`, chunked bodies are decoded by
`txhttp._wire._chunked`. Sans-IO: standard library only, no notion of time.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import Final, NoReturn

from txhttp._wire._chunked import ChunkedDecoder
from txhttp._wire._errors import (
    BadStartLine,
    BodyTooLarge,
    IncompleteMessage,
    RemoteProtocolError,
    preview,
)
from txhttp._wire._framing import build_request_head, build_response_head
from txhttp._wire._head import (
    HeadScanner,
    fast_request_head,
    fast_response_head,
    split_request_head,
    split_response_head,
)
from txhttp._wire._limits import DEFAULT_LIMITS, Limits
from txhttp._wire._message import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    NO_BODY,
    BodyKind,
    ConnectionClosed,
    EndOfMessage,
    Framing,
    RequestHead,
    ResponseHead,
)

RequestEvent = RequestHead | bytes | EndOfMessage | ConnectionClosed | None
ResponseEvent = ResponseHead | bytes | EndOfMessage | ConnectionClosed | None

_CR: Final = 13
_LF: Final = 10
_LINE_END_BYTES: Final = (_CR, _LF)
_LENGTH: Final = BodyKind.LENGTH
_CHUNKED: Final = BodyKind.CHUNKED


def _assert_never(value: NoReturn) -> NoReturn:
    """`typing.assert_never` for Python 3.10: mypy proves the match complete."""
    raise RuntimeError(f"bug: unhandled state {value!r}")


def _head_scanner(limits: Limits, *, strict: bool) -> HeadScanner:
    return HeadScanner(
        strict=strict,
        has_start_line=True,
        first_line_limit=limits.max_line_bytes,
        field_line_limit=limits.max_field_line_bytes,
        section_limit=limits.max_header_section_bytes,
        count_limit=limits.max_header_count,
    )


def _skip_empty_lines(
    buf: bytearray, skipped: int, limits: Limits, *, strict: bool
) -> tuple[int, bool]:
    """
    Drop empty lines before a start line (RFC 9112, section 2.2).

    Returns:
        How many empty lines were dropped so far for this message, and
        whether the buffer now starts with something else than an empty
        line (False: empty, or ends inside a CRLF; more bytes needed).
    """
    while buf:
        first = buf[0]
        if first == _CR:
            if len(buf) < 2:
                return skipped, False
            if buf[1] != _LF:
                raise BadStartLine(
                    f"bare CR before the start line (RFC 9112, 2.2): {preview(buf)}"
                )
            del buf[:2]
        elif first == _LF:
            if strict:
                raise BadStartLine("bare LF before the request line (RFC 9112, 2.2)")
            del buf[:1]
        else:
            return skipped, True
        skipped += 1
        if skipped > limits.max_leading_empty_lines:
            raise BadStartLine(
                f"more than {limits.max_leading_empty_lines} empty lines before "
                "the start line (RFC 9112, 2.2)"
            )
    return skipped, False


def _spill(buf: bytearray, held: bytes, pos: int) -> None:
    """Append the unused bytes of ``held`` (from ``pos``) to ``buf``."""
    if pos:
        with memoryview(held) as view:
            buf += view[pos:]
    else:
        buf += held


def _take(buf: bytearray, count: int) -> bytes:
    """Remove and return the first ``count`` bytes of ``buf``."""
    if count >= len(buf):
        data = bytes(buf)
        buf.clear()
        return data
    data = bytes(buf[:count])
    del buf[:count]
    return data


class _Received:
    """
    The bytes one connection received and a parser has not used yet.

    Received ``bytes`` are kept as they are while nothing else is buffered
    and read in place from an offset (heads, body data, chunk framing), so a
    receive that is all body data is handed out as the same object. Only
    what must wait for more bytes, or goes the careful way, is copied into
    the ``bytearray`` buffer. Never both: while ``_held`` holds bytes,
    ``_buf`` is empty.
    """

    __slots__ = (
        "_buf",
        "_chunked",
        "_eof",
        "_error",
        "_held",
        "_held_pos",
        "_remaining",
        "_scanner",
    )

    def __init__(self, scanner: HeadScanner) -> None:
        self._buf = bytearray()
        self._held = b""
        self._held_pos = 0
        self._remaining = 0
        self._scanner = scanner
        self._chunked: ChunkedDecoder | None = None
        self._eof = False
        self._error: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> None:
        """
        Append bytes received from the peer.

        Raises:
            ValueError: `feed_eof` was called before.
        """
        if self._eof:
            raise ValueError("feed() after feed_eof()")
        if self._error is None:
            buf = self._buf
            if buf:
                buf += data  # bytes already wait there: join them
            elif self._held:
                _spill(buf, self._held, self._held_pos)
                self._held = b""
                buf += data
            elif type(data) is bytes:
                self._held = data  # immutable: kept, not copied
                self._held_pos = 0
            else:
                buf += data  # mutable: copied

    def feed_eof(self) -> None:
        """The peer closed its sending side; no more bytes will come."""
        self._eof = True

    def _spill_held(self) -> bytearray:
        """Move the held bytes into the buffer (for the careful path)."""
        buf = self._buf
        if self._held:
            _spill(buf, self._held, self._held_pos)
            self._held = b""
        return buf

    def _use_through(self, end: int) -> None:
        """
        Drop the bytes before offset ``end``: of the held bytes if any
        (``end`` counts from their start, not from ``_held_pos``), else of
        the buffer.
        """
        held = self._held
        if held:
            if end == len(held):
                self._held = b""
            else:
                self._held_pos = end
        elif end == len(self._buf):
            self._buf.clear()
        else:
            del self._buf[:end]

    def _drop_all(self) -> None:
        """Forget every byte received (after an error)."""
        self._buf = bytearray()
        self._held = b""

    def _take_held(self, count: int) -> bytes:
        """Up to ``count`` held bytes: the received object itself if it fits."""
        held = self._held
        pos = self._held_pos
        end = pos + count
        if end >= len(held):
            self._held = b""
            return held[pos:]
        self._held_pos = end
        return held[pos:end]

    def _length_data(self) -> bytes | None:
        """
        Up to ``_remaining`` bytes of a Content-Length body, or ``None``.

        Raises:
            IncompleteMessage: The stream ended inside the body.
        """
        if self._held:
            data = self._take_held(self._remaining)
        else:
            buf = self._buf
            if not buf:
                if self._eof:
                    raise IncompleteMessage(
                        f"connection closed with {self._remaining} body bytes "
                        "still to come"
                    )
                return None
            data = _take(buf, self._remaining)
        self._remaining -= len(data)
        return data

    def _chunk_event(self) -> bytes | EndOfMessage | None:
        """
        The chunked body's next event: from the held bytes in place, then
        from the buffer. The decoder is dropped at the `EndOfMessage`.

        Raises:
            IncompleteMessage: The stream ended inside the body.
        """
        decoder = self._chunked
        if decoder is None:
            raise RuntimeError("bug: chunked body without a decoder")
        held = self._held
        event: bytes | EndOfMessage | None
        if held:
            event, pos = decoder.step_from(held, self._held_pos)
            if event is not None:
                self._use_through(pos)
            else:
                self._held_pos = pos
                event = decoder.step(self._spill_held())
        elif self._buf:
            event = decoder.step(self._buf)
        else:
            event = None  # no input: no decoder state makes an event of none
        if event is None:
            if self._eof:
                raise IncompleteMessage("connection closed inside a chunked body")
        elif type(event) is not bytes:
            self._chunked = None
        return event

    def take_leftover(self) -> bytes:
        """Remove and return the bytes received but not parsed (for tunnels)."""
        buf = self._spill_held()
        data = bytes(buf)
        buf.clear()
        self._scanner.reset()
        return data

    @property
    def buffered_bytes(self) -> int:
        """How many received bytes are held, not yet returned as events."""
        if self._held:
            return len(self._held) - self._held_pos
        return len(self._buf)


# --- the request side ------------------------------------------------------


class RequestState(Enum):
    """Where a `RequestParser` is in its connection."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    HEAD = auto()
    """Between requests or inside a request head."""
    LENGTH_BODY = auto()
    """Reading a Content-Length body."""
    CHUNKED_BODY = auto()
    """Reading a chunked body."""
    BODY_DONE = auto()
    """The body is complete; `EndOfMessage` is next."""
    CLOSED = auto()
    """The stream ended cleanly between requests."""
    FAILED = auto()
    """A protocol error was raised; the parser is dead."""


class RequestInput(Enum):
    """What a `RequestParser` just read."""

    __hash__ = object.__hash__

    HEAD_WITHOUT_BODY = auto()
    HEAD_WITH_LENGTH = auto()
    HEAD_CHUNKED = auto()
    BODY_READ = auto()
    MESSAGE_END = auto()
    CLEAN_EOF = auto()
    ERROR = auto()


_REQUEST_TRANSITIONS: Final[
    Mapping[tuple[RequestState, RequestInput], RequestState]
] = {
    (RequestState.HEAD, RequestInput.HEAD_WITHOUT_BODY): RequestState.BODY_DONE,
    (RequestState.HEAD, RequestInput.HEAD_WITH_LENGTH): RequestState.LENGTH_BODY,
    (RequestState.HEAD, RequestInput.HEAD_CHUNKED): RequestState.CHUNKED_BODY,
    (RequestState.HEAD, RequestInput.CLEAN_EOF): RequestState.CLOSED,
    (RequestState.LENGTH_BODY, RequestInput.BODY_READ): RequestState.BODY_DONE,
    (RequestState.CHUNKED_BODY, RequestInput.MESSAGE_END): RequestState.HEAD,
    (RequestState.BODY_DONE, RequestInput.MESSAGE_END): RequestState.HEAD,
    # An error is legal everywhere and always final.
    **{(state, RequestInput.ERROR): RequestState.FAILED for state in RequestState},
}

_R_HEAD: Final = RequestState.HEAD
_R_BODY_DONE: Final = RequestState.BODY_DONE
_R_CHUNKED_BODY: Final = RequestState.CHUNKED_BODY
_R_HEAD_WITHOUT_BODY: Final = RequestInput.HEAD_WITHOUT_BODY
_R_MESSAGE_END: Final = RequestInput.MESSAGE_END
# The two hot moves, looked up once from the table (which stays the only
# definition of what is legal): a head without a body, then its end.
_R_AFTER_HEAD_WITHOUT_BODY: Final = _REQUEST_TRANSITIONS[_R_HEAD, _R_HEAD_WITHOUT_BODY]
_R_AFTER_MESSAGE_END: Final = _REQUEST_TRANSITIONS[_R_BODY_DONE, _R_MESSAGE_END]
# And those of a Content-Length body.
_R_AFTER_LENGTH_HEAD: Final = _REQUEST_TRANSITIONS[
    _R_HEAD, RequestInput.HEAD_WITH_LENGTH
]
_R_AFTER_BODY_READ: Final = _REQUEST_TRANSITIONS[
    RequestState.LENGTH_BODY, RequestInput.BODY_READ
]


def parse_whole_request(data: bytes, limits: Limits) -> RequestHead | None:
    """
    Parse ``data`` if it is exactly one whole request without a body.

    The head is split and checked by the same functions as
    `RequestParser.next_event`'s fast path, with the same limits; ``None``
    means anything else (more or fewer bytes than one head, a body, empty
    lines first, any doubt, any error): feed ``data`` to a `RequestParser`,
    which decides (and raises what is wrong).
    """
    size = len(data)
    # Exactly one head: it ends the data, and `fast_request_head` finds no
    # other end before (an empty line, or a request line, is no field line:
    # it returns None), nor an empty line first (no request line at 0).
    if size > limits.max_header_section_bytes or not data.endswith(b"\r\n\r\n"):
        return None
    parts = fast_request_head(data, limits, 0, size)
    if parts is None:
        return None
    method, target, version, fields = parts
    try:
        head = build_request_head(method, target, version, fields, limits)
    except RemoteProtocolError:
        return None  # The parser raises it again, as it would have anyway.
    if head.framing is not NO_BODY:
        return None
    return head


class RequestParser(_Received):
    """
    Turns the bytes of one connection into request events (server side).

    Call ``feed`` with whatever arrived, then `next_event` until it returns
    ``None`` (more data needed). Events come in this order for each request:
    one `RequestHead`, zero or more non-empty `bytes` of de-framed body, one
    `EndOfMessage` (with trailers, for chunked bodies); then the next request.
    After ``feed_eof``, `next_event` returns ``CONNECTION_CLOSED`` once the stream
    ended cleanly between requests, or raises `IncompleteMessage` if it ended
    inside one. Any error raised is a `RemoteProtocolError`; after one the
    parser is dead and raises the same error again. The caller controls pace:
    nothing is parsed beyond what `next_event` returns, so a server that stops
    asking (pipeline full) leaves later requests as unparsed bytes. A receive
    that is all body data is handed out as the same object.
    """

    __slots__ = (
        "_empty_lines",
        "_fast_limit",
        "_state",
        "limits",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(_head_scanner(limits, strict=True))
        self.limits = limits
        self._state = RequestState.HEAD
        self._fast_limit = limits.max_header_section_bytes - 4
        self._empty_lines = 0

    @property
    def state(self) -> RequestState:
        """Where the parser is (for tests and diagnostics)."""
        return self._state

    def _advance(self, event: RequestInput) -> None:
        try:
            self._state = _REQUEST_TRANSITIONS[self._state, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    def next_event(self) -> RequestEvent:
        """
        Return the next event, or ``None`` if more bytes are needed.

        Raises:
            RemoteProtocolError: The peer broke HTTP/1.1; the subclass says
                how and its ``status`` is what to answer. Raised again by
                every later call.
        """
        # The hottest steps (a whole head buffered; its EndOfMessage; chunked
        # body data) are handled here, in one call: see issue #2,
        # "Performance". Everything else goes through `_next_event`.
        state = self._state
        try:
            if state is _R_HEAD:
                held = self._held
                data: bytes | bytearray
                if held:
                    data = held
                    pos = self._held_pos
                    # A head scanned in pieces keeps its bytes in _buf, so
                    # with bytes held no scan is under way.
                    fresh = True
                else:
                    data = self._buf
                    pos = 0
                    if not data:
                        if self._eof:
                            return self._eof_in_head()
                        return None
                    fresh = self._scanner.is_fresh()
                if not fresh:
                    slow = self._scan_head()  # a head arriving in pieces
                elif data[pos] in _LINE_END_BYTES:
                    if held:
                        self._spill_held()
                    slow = self._next_head()  # empty lines first
                else:
                    # Fast path: the whole head is here; one find, one regex
                    # per kind of line, read in place. Anything doubtful goes
                    # the careful, precise way (`_scan_head`).
                    end = data.find(b"\r\n\r\n", pos)
                    if pos < end <= pos + self._fast_limit:
                        end += 4
                        limits = self.limits
                        parts = fast_request_head(data, limits, pos, end)
                        if parts is not None:
                            method, target, version, fields = parts
                            head = build_request_head(
                                method, target, version, fields, limits
                            )
                            self._use_through(end)
                            self._empty_lines = 0
                            framing = head.framing
                            if framing is NO_BODY:
                                self._state = _R_AFTER_HEAD_WITHOUT_BODY
                                return head
                            return self._start_body(head, framing)
                    if held:
                        self._spill_held()
                    slow = self._scan_head()
                if slow is None:
                    if self._eof:
                        return self._eof_in_head()
                    return None
                return self._start_body(slow, slow.framing)
            if state is _R_BODY_DONE:
                self._state = _R_AFTER_MESSAGE_END
                return END_OF_MESSAGE
            if state is _R_CHUNKED_BODY:
                event = self._chunk_event()
                if event is not None and type(event) is not bytes:
                    self._advance(_R_MESSAGE_END)
                return event
            return self._next_event(state)
        except RemoteProtocolError as error:
            if self._error is None:
                self._error = error
                self._advance(RequestInput.ERROR)
                self._drop_all()
            raise

    def _start_body(self, head: RequestHead, framing: Framing) -> RequestHead:
        """Move past ``head`` to its body (or its end); return it."""
        if framing.kind is _LENGTH and framing.length:
            self._remaining = framing.length
            self._state = _R_AFTER_LENGTH_HEAD  # called in HEAD only
        elif framing.kind is _CHUNKED:
            self._chunked = ChunkedDecoder(self.limits)
            self._advance(RequestInput.HEAD_CHUNKED)
        else:
            self._advance(_R_HEAD_WITHOUT_BODY)
        return head

    def _next_event(self, state: RequestState) -> RequestEvent:
        match state:
            case RequestState.LENGTH_BODY:
                data = self._length_data()
                if data is not None and not self._remaining:
                    self._state = _R_AFTER_BODY_READ
                return data
            case RequestState.CLOSED:
                return CONNECTION_CLOSED
            case RequestState.FAILED:
                if self._error is None:
                    raise RuntimeError("bug: failed parser without an error")
                raise self._error
            case RequestState.HEAD | RequestState.BODY_DONE | RequestState.CHUNKED_BODY:
                raise RuntimeError("bug: state handled in next_event")
            case _:
                _assert_never(state)

    def _next_head(self) -> RequestHead | None:
        """A new head that starts with empty lines: drop them, then parse."""
        buf = self._buf
        limits = self.limits
        self._empty_lines, ready = _skip_empty_lines(
            buf, self._empty_lines, limits, strict=True
        )
        if not ready:
            return None
        # The fast path, after the empty lines.
        end = buf.find(b"\r\n\r\n")
        if 0 < end <= self._fast_limit:
            size = end + 4
            parts = fast_request_head(buf, limits, 0, size)
            if parts is not None:
                del buf[:size]
                self._empty_lines = 0
                return build_request_head(*parts, limits)
        return self._scan_head()

    def _scan_head(self) -> RequestHead | None:
        """The slow, precise way: a head arriving in pieces, or a doubtful one."""
        buf = self._buf
        scanner = self._scanner
        end = scanner.find_end(buf)
        if end < 0:
            return None
        head = _take(buf, end)
        scanner.reset()
        self._empty_lines = 0
        limits = self.limits
        return build_request_head(*split_request_head(head, limits), limits)

    def _eof_in_head(self) -> RequestEvent:
        if self._buf:
            raise IncompleteMessage(
                f"connection closed inside a request head: {preview(self._buf)}"
            )
        self._advance(RequestInput.CLEAN_EOF)
        return CONNECTION_CLOSED

    def is_between_messages(self) -> bool:
        """True when the last event was an `EndOfMessage` (or none yet)."""
        return self._state is _R_HEAD or self._state is RequestState.CLOSED

    def is_idle(self) -> bool:
        """
        True between requests with no byte held and no empty line counted:
        the next bytes fed start a new request head, so a caller may hand
        them to ``parse_whole_request`` instead (this parser is then still
        ready for the request after). Empty lines before a request
        (RFC 9112, section 2.2) keep it busy: only the parser counts them
        against ``max_leading_empty_lines`` and resets the count with the
        head that follows.
        """
        return (
            self._state is _R_HEAD
            and not self._held
            and not self._buf
            and not self._empty_lines
        )


# --- the response side -----------------------------------------------------


class ResponseState(Enum):
    """Where a `ResponseParser` is in its connection."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    IDLE = auto()
    """No response is expected (call `ResponseParser.expect_response`)."""
    HEAD = auto()
    """Expecting or reading a response head (interim heads included)."""
    LENGTH_BODY = auto()
    """Reading a Content-Length body."""
    CHUNKED_BODY = auto()
    """Reading a chunked body."""
    UNTIL_CLOSE_BODY = auto()
    """Reading a body that ends when the connection closes."""
    BODY_DONE = auto()
    """The body is complete; `EndOfMessage` is next."""
    TUNNEL = auto()
    """The connection is no longer HTTP (101, or 2xx to CONNECT)."""
    CLOSED = auto()
    """The stream ended cleanly between responses."""
    FAILED = auto()
    """A protocol error was raised; the parser is dead."""


class ResponseInput(Enum):
    """What a `ResponseParser` was told or just read."""

    __hash__ = object.__hash__

    EXPECT = auto()
    INTERIM_HEAD = auto()
    HEAD_WITHOUT_BODY = auto()
    HEAD_WITH_LENGTH = auto()
    HEAD_CHUNKED = auto()
    HEAD_UNTIL_CLOSE = auto()
    HEAD_TUNNEL = auto()
    BODY_READ = auto()
    MESSAGE_END = auto()
    CLEAN_EOF = auto()
    ERROR = auto()


_RESPONSE_TRANSITIONS: Final[
    Mapping[tuple[ResponseState, ResponseInput], ResponseState]
] = {
    (ResponseState.IDLE, ResponseInput.EXPECT): ResponseState.HEAD,
    (ResponseState.IDLE, ResponseInput.CLEAN_EOF): ResponseState.CLOSED,
    (ResponseState.HEAD, ResponseInput.INTERIM_HEAD): ResponseState.HEAD,
    (ResponseState.HEAD, ResponseInput.HEAD_WITHOUT_BODY): ResponseState.BODY_DONE,
    (ResponseState.HEAD, ResponseInput.HEAD_WITH_LENGTH): ResponseState.LENGTH_BODY,
    (ResponseState.HEAD, ResponseInput.HEAD_CHUNKED): ResponseState.CHUNKED_BODY,
    (
        ResponseState.HEAD,
        ResponseInput.HEAD_UNTIL_CLOSE,
    ): ResponseState.UNTIL_CLOSE_BODY,
    (ResponseState.HEAD, ResponseInput.HEAD_TUNNEL): ResponseState.TUNNEL,
    (ResponseState.LENGTH_BODY, ResponseInput.BODY_READ): ResponseState.BODY_DONE,
    (ResponseState.UNTIL_CLOSE_BODY, ResponseInput.BODY_READ): ResponseState.BODY_DONE,
    (ResponseState.CHUNKED_BODY, ResponseInput.MESSAGE_END): ResponseState.IDLE,
    (ResponseState.BODY_DONE, ResponseInput.MESSAGE_END): ResponseState.IDLE,
    # An error is legal everywhere and always final.
    **{(state, ResponseInput.ERROR): ResponseState.FAILED for state in ResponseState},
}


_S_HEAD: Final = ResponseState.HEAD
_S_BODY_DONE: Final = ResponseState.BODY_DONE
_S_CHUNKED_BODY: Final = ResponseState.CHUNKED_BODY
# A hot move, looked up once from the table (the only definition of what is
# legal): the end of a response whose body is done.
_S_AFTER_MESSAGE_END: Final = _RESPONSE_TRANSITIONS[
    _S_BODY_DONE, ResponseInput.MESSAGE_END
]
# And those of each response with a Content-Length body.
_S_IDLE: Final = ResponseState.IDLE
_S_AFTER_EXPECT: Final = _RESPONSE_TRANSITIONS[_S_IDLE, ResponseInput.EXPECT]
_S_AFTER_LENGTH_HEAD: Final = _RESPONSE_TRANSITIONS[
    _S_HEAD, ResponseInput.HEAD_WITH_LENGTH
]
_S_AFTER_BODY_READ: Final = _RESPONSE_TRANSITIONS[
    ResponseState.LENGTH_BODY, ResponseInput.BODY_READ
]


class ResponseParser(_Received):
    """
    Turns the bytes of one connection into response events (client side).

    Before each response, call `expect_response` with the request's method,
    which decides framing for HEAD and CONNECT. Events per response: zero or
    more interim `ResponseHead` (status 1xx, other than 101; no body events
    follow them), the final `ResponseHead`, body `bytes`, `EndOfMessage`.
    A body read until close ends with `EndOfMessage` after ``feed_eof`` (the
    head's framing says `BodyKind.UNTIL_CLOSE`, so callers can tell it from a
    Content-Length body cut short, which raises `IncompleteMessage`).
    After a `BodyKind.TUNNEL` head (101, or 2xx to CONNECT) `next_event` returns
    ``None`` and ``take_leftover`` yields the tunnel's first bytes. Lenient only
    where RFC 9112 lets a recipient be (bare LF line endings in the head,
    obs-fold replaced by SP); strict about framing and control characters.
    Bytes that arrive while no response is expected are held, not parsed.
    A receive that is all body data is handed out as the same object.
    """

    __slots__ = (
        "_body_bytes",
        "_empty_lines",
        "_fast_limit",
        "_method",
        "_state",
        "limits",
    )

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(_head_scanner(limits, strict=False))
        self.limits = limits
        self._state = ResponseState.IDLE
        self._fast_limit = limits.max_header_section_bytes - 4
        self._empty_lines = 0
        self._body_bytes = 0
        self._method = b""

    @property
    def state(self) -> ResponseState:
        """Where the parser is (for tests and diagnostics)."""
        return self._state

    def _advance(self, event: ResponseInput) -> None:
        try:
            self._state = _RESPONSE_TRANSITIONS[self._state, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    def expect_response(self, method: bytes) -> None:
        """
        Get ready to parse the response to a request with ``method``.

        Raises:
            ValueError: A response is already expected or in progress, or
                the parser is closed or failed.
        """
        if self._state is not _S_IDLE:
            raise ValueError(
                f"expect_response() in state {self._state.name}; only when idle"
            )
        self._method = method
        self._state = _S_AFTER_EXPECT

    def next_event(self) -> ResponseEvent:
        """
        Return the next event, or ``None`` if more bytes are needed.

        Raises:
            RemoteProtocolError: The server broke HTTP/1.1 (the subclass says
                how), or `IncompleteMessage` when the stream ended inside a
                response. Raised again by every later call.
        """
        state = self._state
        try:
            # The two hottest steps first, without the match statement.
            if state is _S_HEAD:
                return self._head_event()
            if state is _S_BODY_DONE:
                self._state = _S_AFTER_MESSAGE_END
                return END_OF_MESSAGE
            if state is _S_CHUNKED_BODY:
                event = self._chunk_event()
                if event is not None and type(event) is not bytes:
                    self._advance(ResponseInput.MESSAGE_END)
                return event
            return self._next_event(state)
        except RemoteProtocolError as error:
            if self._error is None:
                self._error = error
                self._advance(ResponseInput.ERROR)
                self._drop_all()
            raise

    def _next_event(self, state: ResponseState) -> ResponseEvent:
        match state:
            case ResponseState.HEAD:
                return self._head_event()
            case ResponseState.LENGTH_BODY:
                data = self._length_data()
                if data is not None and not self._remaining:
                    self._state = _S_AFTER_BODY_READ
                return data
            case ResponseState.IDLE:
                if self._eof:
                    self._advance(ResponseInput.CLEAN_EOF)
                    return CONNECTION_CLOSED
                return None
            case ResponseState.CHUNKED_BODY:
                raise RuntimeError("bug: state handled in next_event")
            case ResponseState.UNTIL_CLOSE_BODY:
                buf = self._buf
                if buf or self._held:
                    if self._held:
                        data = self._take_held(len(self._held))
                    else:
                        data = _take(buf, len(buf))
                    self._body_bytes += len(data)
                    limit = self.limits.max_body_bytes
                    if limit is not None and self._body_bytes > limit:
                        raise BodyTooLarge(
                            f"body read until close is over {limit} bytes"
                        )
                    return data
                if self._eof:
                    # RFC 9112, section 6.3, rule 8: the close ends the body.
                    self._advance(ResponseInput.BODY_READ)
                    self._advance(ResponseInput.MESSAGE_END)
                    return END_OF_MESSAGE
                return None
            case ResponseState.BODY_DONE:
                self._advance(ResponseInput.MESSAGE_END)
                return END_OF_MESSAGE
            case ResponseState.TUNNEL:
                return None
            case ResponseState.CLOSED:
                return CONNECTION_CLOSED
            case ResponseState.FAILED:
                if self._error is None:
                    raise RuntimeError("bug: failed parser without an error")
                raise self._error
            case _:
                _assert_never(state)

    def _head_event(self) -> ResponseHead | None:
        head = self._next_head()
        if head is None:
            if self._eof:
                if self._buf:
                    raise IncompleteMessage(
                        f"connection closed inside a response head: "
                        f"{preview(self._buf)}"
                    )
                raise IncompleteMessage("connection closed before a response head")
            return None
        kind = head.framing.kind
        if head.status < 200 and head.status != 101:
            self._advance(ResponseInput.INTERIM_HEAD)
        elif kind is _LENGTH and head.framing.length:
            self._remaining = head.framing.length
            self._state = _S_AFTER_LENGTH_HEAD  # called in HEAD only
        elif kind is _CHUNKED:
            self._chunked = ChunkedDecoder(self.limits)
            self._advance(ResponseInput.HEAD_CHUNKED)
        elif kind is BodyKind.UNTIL_CLOSE:
            self._body_bytes = 0
            self._advance(ResponseInput.HEAD_UNTIL_CLOSE)
        elif kind is BodyKind.TUNNEL:
            self._advance(ResponseInput.HEAD_TUNNEL)
        else:
            self._advance(ResponseInput.HEAD_WITHOUT_BODY)
        return head

    def _next_head(self) -> ResponseHead | None:
        held = self._held
        data: bytes | bytearray
        if held:
            data = held
            pos = self._held_pos
        else:
            data = self._buf
            pos = 0
            if not data:
                return None
        limits = self.limits
        scanner = self._scanner
        if scanner.is_fresh():
            first = data[pos]
            if first in _LINE_END_BYTES:
                data = self._spill_held()
                pos = 0
                self._empty_lines, ready = _skip_empty_lines(
                    data, self._empty_lines, limits, strict=False
                )
                if not ready:
                    return None
            # The fast path, read in place.
            end = data.find(b"\r\n\r\n", pos)
            if pos < end <= pos + self._fast_limit:
                end += 4
                parts = fast_response_head(data, limits, pos, end)
                if parts is not None:
                    self._use_through(end)
                    self._empty_lines = 0
                    return build_response_head(parts, self._method, limits)
        buf = self._spill_held() if self._held else self._buf
        end = scanner.find_end(buf)
        if end < 0:
            return None
        head = _take(buf, end)
        scanner.reset()
        self._empty_lines = 0
        return build_response_head(
            split_response_head(head, limits), self._method, limits
        )

    def is_between_messages(self) -> bool:
        """True when no response is expected or in progress."""
        return self._state is ResponseState.IDLE or self._state is ResponseState.CLOSED

    def body_bytes_to_receive(self) -> int | None:
        """
        Bytes of the current Content-Length body not fed yet, else ``None``.

        Bytes fed but not yet returned as events do not count: they were
        received. ``None`` when no Content-Length body is being read
        (between responses, in a head, a chunked body, a body read until
        close): the count is not known then.
        """
        if self._state is not ResponseState.LENGTH_BODY:
            return None
        return self._remaining - self.buffered_bytes
