# -*- test-case-name: txhttp.test.test_wire_properties -*-
"""
Hypothesis strategies for HTTP/1.1 messages, and the drivers that feed them.

The wire tests share these: strategies that draw valid request and response
specifications (`RequestSpec`, `ResponseSpec`), renderers that turn a
specification into bytes by hand (independent of txhttp's serializers, so a
serializer bug cannot hide a parser bug), hostile bytes for the serializers,
and small drivers that feed a parser in pieces and collect its events in a
comparable form.

The hypothesis profile `PROFILE` is registered here (derandomized, no
deadline, no example database, modest example counts) and loaded by the test
modules through `load_profile`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Final, TypeAlias

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from txhttp._wire import (
    HTTP_1_0,
    HTTP_1_1,
    BodyKind,
    ConnectionClosed,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
)

PROFILE: Final = "txhttp"
"""Name of the hypothesis profile the wire tests load by default."""

THOROUGH_PROFILE: Final = "txhttp-thorough"
"""A long, randomized bug hunt: ``TXHTTP_HYPOTHESIS_PROFILE=txhttp-thorough``."""

settings.register_profile(
    PROFILE,
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    THOROUGH_PROFILE,
    deadline=None,
    database=None,
    max_examples=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def load_profile() -> None:
    """
    Load `PROFILE`, or the one named by ``TXHTTP_HYPOTHESIS_PROFILE``.

    Test modules call this at import time.
    """
    settings.load_profile(os.environ.get("TXHTTP_HYPOTHESIS_PROFILE", PROFILE))


TCHAR: Final = (
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
"""Bytes allowed in a token (RFC 9110, section 5.6.2)."""

VCHAR: Final = bytes(range(0x21, 0x7F))
"""Visible ASCII (RFC 5234, appendix B.1)."""

OBS_TEXT: Final = bytes(range(0x80, 0x100))
"""Bytes a field value may carry for historical reasons (RFC 9110, 5.5)."""

PCHAR_TEXT: Final = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@"
)
"""Characters of a path segment, percent-encoding left out (RFC 3986, 3.3)."""

RESERVED_NAMES: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"expect",
        b"content-type",
        b"te",
        b"trailer",
        b"upgrade",
        b"keep-alive",
        b"proxy-connection",
    }
)
"""Field names with a meaning for framing or the connection; drawn fields avoid
them so the expected head is easy to state. Tests add them explicitly."""

COMMON_METHODS: Final = (
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"PATCH",
    b"OPTIONS",
    b"HEAD",
    b"TRACE",
)

Field: TypeAlias = tuple[bytes, bytes]
RequestOutcome: TypeAlias = list[object]
"""Comparable events of one run, ending with the error raised if any."""


def _bytes_from(
    alphabet: bytes, *, min_size: int = 0, max_size: int
) -> st.SearchStrategy[bytes]:
    return st.lists(
        st.sampled_from(sorted(alphabet)), min_size=min_size, max_size=max_size
    ).map(bytes)


def tokens(max_size: int = 12) -> st.SearchStrategy[bytes]:
    """A non-empty token: a method or a field name (RFC 9110, section 5.6.2)."""
    return _bytes_from(TCHAR, min_size=1, max_size=max_size)


def methods() -> st.SearchStrategy[bytes]:
    """Request methods other than CONNECT: common ones and random tokens."""
    return st.one_of(st.sampled_from(COMMON_METHODS), tokens(10)).filter(
        lambda m: m != b"CONNECT"
    )


def origin_targets() -> st.SearchStrategy[bytes]:
    """Origin-form targets: ``/`` segments with an optional query (RFC 9112, 3.2.1)."""
    segment = st.text(alphabet=PCHAR_TEXT, max_size=8)
    path = st.lists(segment, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
    query = st.one_of(
        st.just(""), st.text(alphabet=PCHAR_TEXT + "/?", max_size=12).map("?".__add__)
    )
    return st.builds(lambda p, q: (p + q).encode("ascii"), path, query)


def hosts() -> st.SearchStrategy[bytes]:
    """Host values: a registered name with an optional port (RFC 9110, 7.2)."""
    label = st.text(
        alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8
    )
    name = st.lists(label, min_size=1, max_size=3).map(".".join)
    port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
    return st.builds(lambda n, p: (n + p).encode("ascii"), name, port)


def targets() -> st.SearchStrategy[bytes]:
    """Origin-form targets mostly, absolute-form now and then."""
    absolute = st.builds(lambda h, p: b"http://" + h + p, hosts(), origin_targets())
    return st.one_of(origin_targets(), origin_targets(), absolute)


def field_names() -> st.SearchStrategy[bytes]:
    """Field names that carry no framing or connection meaning."""
    return tokens(16).filter(lambda n: n.lower() not in RESERVED_NAMES)


def field_values(max_size: int = 24) -> st.SearchStrategy[bytes]:
    """
    Valid field values as a parser reports them: VCHAR and obs-text, with SP
    and HTAB only inside (RFC 9110, section 5.5). Possibly empty.
    """
    alphabet = VCHAR + OBS_TEXT[:8] + b"\xff \t"
    return _bytes_from(alphabet, max_size=max_size).map(lambda v: v.strip(b" \t"))


def fields(max_size: int = 6) -> st.SearchStrategy[list[Field]]:
    """Field lines without framing meaning, in order, duplicates allowed."""
    return st.lists(st.tuples(field_names(), field_values()), max_size=max_size)


def reasons() -> st.SearchStrategy[bytes]:
    """Reason phrases: HTAB, SP, VCHAR and obs-text (RFC 9112, section 4)."""
    return _bytes_from(VCHAR + b" \t\x80\xff", max_size=20)


@dataclass(frozen=True, slots=True)
class Body:
    """
    A body and how it is framed.

    Attributes:
        kind: `BodyKind.NONE`, `BodyKind.LENGTH`, `BodyKind.CHUNKED` or (for
            responses) `BodyKind.UNTIL_CLOSE`.
        chunks: The data; one element for LENGTH and UNTIL_CLOSE, the
            non-empty chunks for CHUNKED.
        extensions: For CHUNKED, one chunk extension (``b""`` or
            ``b";name=value"``) per chunk, then one for the last chunk.
        trailers: For CHUNKED, the trailer fields.
    """

    kind: BodyKind
    chunks: tuple[bytes, ...] = ()
    extensions: tuple[bytes, ...] = ()
    trailers: tuple[Field, ...] = ()

    @property
    def data(self) -> bytes:
        """The de-framed body."""
        return b"".join(self.chunks)


NO_BODY: Final = Body(BodyKind.NONE)


def chunk_extensions() -> st.SearchStrategy[bytes]:
    """Chunk extensions following RFC 9112, section 7.1.1 (no BWS)."""
    quoted = _bytes_from(b"abc \t!#xyz", max_size=6).map(lambda v: b'"' + v + b'"')
    value = st.one_of(
        st.just(b""), tokens(6).map(b"=".__add__), quoted.map(b"=".__add__)
    )
    one = st.builds(lambda n, v: b";" + n + v, tokens(6), value)
    return st.one_of(
        st.just(b""), one, st.lists(one, min_size=2, max_size=3).map(b"".join)
    )


@st.composite
def chunked_bodies(draw: st.DrawFn, *, with_trailers: bool = True) -> Body:
    """Chunked bodies: non-empty chunks, extensions, and maybe trailers."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=4))
    extensions = draw(
        st.lists(chunk_extensions(), min_size=len(chunks) + 1, max_size=len(chunks) + 1)
    )
    trailers = draw(fields(3)) if with_trailers else []
    return Body(BodyKind.CHUNKED, tuple(chunks), tuple(extensions), tuple(trailers))


def length_bodies() -> st.SearchStrategy[Body]:
    """Content-Length bodies of at least one byte."""
    return st.binary(min_size=1, max_size=80).map(lambda b: Body(BodyKind.LENGTH, (b,)))


def framing_fields(body: Body) -> list[Field]:
    """The framing field a head needs for ``body`` (none for NONE, UNTIL_CLOSE)."""
    if body.kind is BodyKind.LENGTH:
        return [(b"Content-Length", b"%d" % len(body.data))]
    if body.kind is BodyKind.CHUNKED:
        return [(b"Transfer-Encoding", b"chunked")]
    return []


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """
    A valid request: its head as it should be parsed, and its body.

    ``fields`` holds every field line sent, Host and the framing field
    included, in order.
    """

    method: bytes
    target: bytes
    version: bytes
    fields: tuple[Field, ...]
    body: Body = NO_BODY

    @property
    def host(self) -> bytes | None:
        """The Host value sent, if any."""
        for name, value in self.fields:
            if name.lower() == b"host":
                return value
        return None


def _insert(draw: st.DrawFn, lines: list[Field], extra: Iterable[Field]) -> list[Field]:
    out = list(lines)
    for item in extra:
        out.insert(draw(st.integers(0, len(out))), item)
    return out


@st.composite
def requests(draw: st.DrawFn, *, version: bytes | None = None) -> RequestSpec:
    """
    Valid requests: random method, target, fields, Host and body framing.

    HTTP/1.0 requests may leave Host out and never use chunked (RFC 9112, 6.1).
    """
    if version is None:
        version = draw(st.sampled_from([HTTP_1_1, HTTP_1_1, HTTP_1_0]))
    method = draw(methods())
    target = b"*" if method == b"OPTIONS" and draw(st.booleans()) else draw(targets())
    if version == HTTP_1_1:
        body = draw(st.one_of(st.just(NO_BODY), length_bodies(), chunked_bodies()))
    else:
        body = draw(st.one_of(st.just(NO_BODY), length_bodies()))
    extra = framing_fields(body)
    if version == HTTP_1_1 or draw(st.booleans()):
        extra.append(
            (draw(st.sampled_from([b"Host", b"host", b"HOST"])), draw(hosts()))
        )
    lines = _insert(draw, draw(fields()), extra)
    return RequestSpec(method, target, version, tuple(lines), body)


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """
    A valid response to a request with ``request_method``.

    ``interim`` lists 1xx responses (status, reason, fields) sent before it.
    """

    request_method: bytes
    status: int
    reason: bytes
    version: bytes
    fields: tuple[Field, ...]
    body: Body = NO_BODY
    interim: tuple[tuple[int, bytes, tuple[Field, ...]], ...] = field(default=())


@st.composite
def responses(draw: st.DrawFn, *, allow_until_close: bool = True) -> ResponseSpec:
    """
    Valid responses to GET or HEAD, with 1xx interim responses now and then.

    Framing follows RFC 9112, section 6.3: 204, 304 and answers to HEAD have
    no body; otherwise chunked, Content-Length or (if allowed) read until close.
    """
    request_method = draw(st.sampled_from([b"GET", b"GET", b"HEAD"]))
    version = draw(st.sampled_from([HTTP_1_1, HTTP_1_1, HTTP_1_0]))
    status = draw(
        st.one_of(st.sampled_from([200, 204, 304, 404]), st.integers(200, 599))
    )
    bodyless = status in (204, 304) or request_method == b"HEAD"
    kinds: list[st.SearchStrategy[Body]] = [length_bodies()]
    if version == HTTP_1_1:
        kinds.append(chunked_bodies())
    if allow_until_close:
        kinds.append(
            st.binary(max_size=60).map(lambda b: Body(BodyKind.UNTIL_CLOSE, (b,)))
        )
    body = NO_BODY if bodyless else draw(st.one_of(kinds))
    lines = _insert(draw, draw(fields()), framing_fields(body))
    interim = draw(
        st.lists(
            st.tuples(
                st.sampled_from([100, 102, 103]), reasons(), fields(3).map(tuple)
            ),
            max_size=2,
        )
    )
    return ResponseSpec(
        request_method,
        status,
        draw(reasons()),
        version,
        tuple(lines),
        body,
        tuple(interim),
    )


def render_fields(lines: Iterable[Field]) -> bytes:
    """Field lines and the empty line that ends the section."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in lines) + b"\r\n"


def render_body(body: Body) -> bytes:
    """Frame ``body`` by hand, extensions and trailers included."""
    if body.kind is not BodyKind.CHUNKED:
        return body.data
    exts = body.extensions or (b"",) * (len(body.chunks) + 1)
    out = [
        b"%x%s\r\n%s\r\n" % (len(c), e, c)
        for c, e in zip(body.chunks, exts[:-1], strict=True)
    ]
    out.append(b"0" + exts[-1] + b"\r\n" + render_fields(body.trailers))
    return b"".join(out)


def render_request(spec: RequestSpec) -> bytes:
    """Render a request by hand, without txhttp's serializer."""
    line = b" ".join((spec.method, spec.target, spec.version)) + b"\r\n"
    return line + render_fields(spec.fields) + render_body(spec.body)


def render_response(spec: ResponseSpec) -> bytes:
    """Render the interim and final responses by hand."""
    out = []
    for status, reason, lines in spec.interim:
        out.append(
            b"%s %d %s\r\n" % (spec.version, status, reason) + render_fields(lines)
        )
    out.append(b"%s %d %s\r\n" % (spec.version, spec.status, spec.reason))
    out.append(render_fields(spec.fields))
    if spec.request_method != b"HEAD" and spec.status not in (204, 304):
        out.append(render_body(spec.body))
    return b"".join(out)


# Hostile inputs for the serializers.

INJECTION_BYTES: Final = b"\r\n\x00\x01\x0b\x0c\x1f\x7f"
"""Bytes that must never reach the wire inside a value, target or reason."""

NAME_BREAKERS: Final = INJECTION_BYTES + b' \t:()<>@,;\\"/[]?={}\x80\xff'
"""Bytes that are not tchar: none may appear in a method or a field name."""


@st.composite
def with_byte_inserted(
    draw: st.DrawFn, base: st.SearchStrategy[bytes], alphabet: bytes
) -> bytes:
    """``base`` with one byte of ``alphabet`` inserted at a random place."""
    value = draw(base)
    where = draw(st.integers(0, len(value)))
    bad = draw(st.sampled_from(sorted(alphabet)))
    return value[:where] + bytes([bad]) + value[where:]


def bad_names() -> st.SearchStrategy[bytes]:
    """Field names or methods that are not tokens (and could inject)."""
    return st.one_of(st.just(b""), with_byte_inserted(tokens(), NAME_BREAKERS))


def bad_values() -> st.SearchStrategy[bytes]:
    """Field values holding CR, LF, NUL or another CTL other than HTAB."""
    return with_byte_inserted(field_values(), INJECTION_BYTES)


# Mutations of valid bytes, for the "only our own errors" properties.

INTERESTING_BYTES: Final = b'\r\n\x00 \t:;,="0159aAfFxX-+\x0b\x0c\x7f\x80\xff'


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with a few bytes inserted, deleted, replaced or duplicated."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        byte = draw(
            st.one_of(st.sampled_from(sorted(INTERESTING_BYTES)), st.integers(0, 255))
        )
        match draw(st.sampled_from(["insert", "delete", "replace", "repeat"])):
            case "insert":
                data[where:where] = bytes([byte])
            case "delete":
                del data[where : where + draw(st.integers(1, 3))]
            case "replace":
                data[where : where + 1] = bytes([byte])
            case _:
                data[where:where] = data[where : where + draw(st.integers(1, 8))]
    return bytes(data)


# Drivers.


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo its length, deduplicated)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)] or [b""]


def one_byte_pieces(data: bytes) -> list[bytes]:
    """``data`` one byte at a time."""
    return [data[i : i + 1] for i in range(len(data))]


def comparable(event: object) -> object:
    """
    An event turned into plain tuples, so runs compare with ``==``.

    Heads become tuples of their attributes (fields as a tuple of pairs),
    `EndOfMessage` a tagged tuple of its trailers.
    """
    if isinstance(event, RequestHead):
        return (
            "request",
            event.method,
            event.target,
            event.version,
            tuple(event.fields),
            event.framing,
            event.keep_alive,
            event.expect_continue,
            event.host,
        )
    if isinstance(event, ResponseHead):
        return (
            "response",
            event.version,
            event.status,
            event.reason,
            tuple(event.fields),
            event.framing,
            event.keep_alive,
        )
    if isinstance(event, EndOfMessage):
        return ("end", tuple(event.trailers))
    if isinstance(event, ConnectionClosed):
        return "closed"
    return event


def _append(out: list[object], event: object) -> None:
    """Append, merging adjacent body data (splits may cut body data anywhere)."""
    if isinstance(event, bytes) and out and isinstance(out[-1], bytes):
        out[-1] = out[-1] + event
    else:
        out.append(comparable(event))


SMALL_LIMITS: Final = Limits(
    max_line_bytes=40,
    max_field_line_bytes=30,
    max_header_section_bytes=160,
    max_header_count=4,
    max_chunk_line_bytes=12,
    max_trailer_section_bytes=60,
    max_body_bytes=50,
    max_leading_empty_lines=2,
)
"""Limits small enough that drawn messages cross each of them often."""

MAX_EVENTS_PER_BYTE: Final = 4
"""A parser that returns more events than this per input byte (plus a few) is
assumed to loop forever; the drivers fail instead of hanging."""


class Runaway(AssertionError):
    """A parser produced events without end."""


def _drain(
    next_event: Callable[[], object], out: list[object], budget: list[int]
) -> None:
    while True:
        event = next_event()
        if event is None:
            return
        if isinstance(event, bytes) and not event:
            raise AssertionError("parser returned an empty bytes event")
        budget[0] -= 1
        if budget[0] < 0:
            raise Runaway(f"parser keeps producing events; last {event!r}")
        _append(out, event)
        if isinstance(event, ConnectionClosed):
            return


def run_requests(
    pieces: Sequence[bytes],
    *,
    eof: bool = True,
    parser: RequestParser | None = None,
    limits: Limits | None = None,
) -> RequestOutcome:
    """
    Feed ``pieces`` to a `RequestParser`, draining events after each piece.

    Returns:
        The comparable events, then the `RemoteProtocolError` raised (if any)
        as a final ``("error", class, status)`` item. Any other exception
        propagates. ``limits`` applies when no ``parser`` is given.
    """
    if parser is None:
        parser = RequestParser(limits) if limits is not None else RequestParser()
    out: list[object] = []
    budget = [MAX_EVENTS_PER_BYTE * sum(map(len, pieces)) + 8]
    try:
        for piece in pieces:
            parser.feed(piece)
            _drain(parser.next_event, out, budget)
        if eof:
            parser.feed_eof()
            _drain(parser.next_event, out, budget)
    except RemoteProtocolError as e:
        out.append(("error", type(e), e.status))
    return out


def run_responses(
    pieces: Sequence[bytes], methods: Sequence[bytes], *, eof: bool = True
) -> RequestOutcome:
    """
    Feed ``pieces`` to a `ResponseParser` that expects responses to ``methods``.

    `ResponseParser.expect_response` is called before the first response and
    after each final response's `EndOfMessage`, while methods remain.

    Returns:
        As `run_requests`.
    """
    parser = ResponseParser()
    pending = list(methods)
    out: list[object] = []
    budget = [MAX_EVENTS_PER_BYTE * sum(map(len, pieces)) + 8]

    def next_event() -> object:
        event = parser.next_event()
        if isinstance(event, EndOfMessage) and pending:
            parser.expect_response(pending.pop(0))
        return event

    try:
        if pending:
            parser.expect_response(pending.pop(0))
        for piece in pieces:
            parser.feed(piece)
            _drain(next_event, out, budget)
        if eof:
            parser.feed_eof()
            _drain(next_event, out, budget)
    except RemoteProtocolError as e:
        out.append(("error", type(e), e.status))
    return out


def expected_request_events(spec: RequestSpec) -> list[object]:
    """The comparable events a parser must produce for ``spec``."""
    out: list[object] = [
        (
            spec.method,
            spec.target,
            spec.version,
            spec.fields,
            spec.body.kind,
            spec.host,
        )
    ]
    if spec.body.data:
        out.append(spec.body.data)
    out.append(("end", spec.body.trailers))
    return out


def summarize_request_events(events: Sequence[object]) -> list[object]:
    """Project `run_requests` output onto the shape of `expected_request_events`."""
    out: list[object] = []
    for event in events:
        if isinstance(event, tuple) and event and event[0] == "request":
            _, method, target, version, lines, framing, _, _, host = event
            out.append((method, target, version, lines, framing.kind, host))
        else:
            out.append(event)
    return out
