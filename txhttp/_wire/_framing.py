# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
Message framing, decided once per head (RFC 9112, section 6.3).

`build_request_head` and `build_response_head` read the fields that shape a
message (Host, Content-Length, Transfer-Encoding, Connection, Expect,
Content-Type) in one pass and decide, here and nowhere else, how the body is
delimited. Every ambiguous combination is refused: this is where request
smuggling is stopped. Body decoding lives in the parser and
`txhttp._wire._chunked`. Sans-IO: standard library only.
"""

from __future__ import annotations

from typing import Final

from txhttp._wire._errors import (
    BadFraming,
    BadHost,
    BodyTooLarge,
    DuplicateField,
    UnsupportedTransferCoding,
    preview,
)
from txhttp._wire._grammar import CONTENT_LENGTH_RE, HOST_VALUE_RE, TOKEN_RE
from txhttp._wire._head import FieldList
from txhttp._wire._limits import Limits
from txhttp._wire._message import (
    CHUNKED,
    HTTP_1_0,
    HTTP_1_1,
    NO_BODY,
    TUNNEL,
    UNTIL_CLOSE,
    BodyKind,
    Framing,
    RequestHead,
    ResponseHead,
)

_HOST: Final = b"host"
_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"
_CONNECTION: Final = b"connection"
_EXPECT: Final = b"expect"
_CONTENT_TYPE: Final = b"content-type"
_REQUEST_FIELDS: Final = frozenset(
    (_HOST, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _EXPECT, _CONTENT_TYPE)
)
_REQUEST_LENGTHS: Final = frozenset(map(len, _REQUEST_FIELDS))
_COMMON_NAMES: Final[dict[bytes, bytes | None]] = {
    **dict.fromkeys(
        (
            b"User-Agent",
            b"Accept",
            b"Accept-Language",
            b"Accept-Encoding",
            b"Cache-Control",
            b"Upgrade-Insecure-Requests",
            b"Cookie",
            b"Referer",
            b"Origin",
            b"Pragma",
            b"Authorization",
            b"If-None-Match",
            b"If-Modified-Since",
            b"Sec-Fetch-Dest",
            b"Sec-Fetch-Mode",
            b"Sec-Fetch-Site",
            b"Sec-Fetch-User",
            b"DNT",
            b"TE",
            b"Priority",
        )
    ),
    **{spelling: key for key in _REQUEST_FIELDS for spelling in (key, key.title())},
}
"""Field names as browsers spell them, mapped to the lower-case name that
shapes a request, or ``None``: one dict lookup instead of ``lower()``."""

_CLOSE_VALUE: Final = 1
_KEEP_ALIVE_VALUE: Final = 2
_CONNECTION_VALUES: Final[dict[bytes, int]] = {
    **dict.fromkeys((b"close", b"Close", b"CLOSE"), _CLOSE_VALUE),
    **dict.fromkeys((b"keep-alive", b"Keep-Alive", b"Keep-alive"), _KEEP_ALIVE_VALUE),
}
"""Connection values as peers spell them: one lookup instead of tokenising."""
_CONNECTION_OPTIONS: Final[dict[bytes, bytes]] = {
    spelling: b"close" if code == _CLOSE_VALUE else b"keep-alive"
    for spelling, code in _CONNECTION_VALUES.items()
}
"""The same spellings, mapped to the option each one is, in lower case."""

_VALID_HOSTS: set[bytes | None] = set()
_VALID_HOSTS_SIZE: Final = 256
"""Host values already validated, kept (bounded) to skip the regex."""
_RESPONSE_FIELDS: Final = frozenset((_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION))
_RESPONSE_LENGTHS: Final = frozenset(map(len, _RESPONSE_FIELDS))
_RESPONSE_NAMES: Final[dict[bytes, bytes | None]] = {
    **dict.fromkeys(
        (
            b"Date",
            b"Server",
            b"Content-Type",
            b"Cache-Control",
            b"Last-Modified",
            b"ETag",
            b"Expires",
            b"Vary",
            b"Set-Cookie",
            b"Location",
            b"Content-Encoding",
            b"Accept-Ranges",
            b"Age",
            b"Keep-Alive",
            b"Strict-Transport-Security",
            b"X-Content-Type-Options",
            b"X-Frame-Options",
            b"Access-Control-Allow-Origin",
        )
    ),
    **{spelling: key for key in _RESPONSE_FIELDS for spelling in (key, key.title())},
}
"""Field names as servers spell them, mapped like ``_COMMON_NAMES``."""
_UNTIL_CLOSE_KIND: Final = BodyKind.UNTIL_CLOSE
_TUNNEL_KIND: Final = BodyKind.TUNNEL
_CHUNKED_CODING: Final = b"chunked"
_HEAD: Final = b"HEAD"
_CONNECT: Final = b"CONNECT"

_new_head: Final = object.__new__
"""Makes a `RequestHead` whose attributes `build_request_head` then sets."""

_LENGTH_CACHE: dict[int, Framing] = {}
_LENGTH_CACHE_SIZE: Final = 512
"""Framings built for Content-Length values, kept to allocate nothing per head."""


def _has_option(values: list[bytes], option: bytes) -> bool:
    """
    Whether the Connection values list ``option`` (lower case), in any case
    (RFC 9110, section 7.6.1). Splits a value only when it could match.
    """
    for value in values:
        known = _CONNECTION_OPTIONS.get(value)
        if known is not None:
            # A common spelling of one option: no case folding, no split.
            if known == option:
                return True
            continue
        lowered = value.lower()
        if lowered == option:
            return True
        if option in lowered and any(
            element.strip(b" \t") == option for element in lowered.split(b",")
        ):
            return True
    return False


def _length_framing(values: list[bytes], limits: Limits) -> Framing:
    """
    The framing of the one Content-Length the values agree on (RFC 9110,
    8.6; RFC 9112, 6.3), from a bounded cache so a head allocates nothing.

    Several values, in one field as a list or in several fields, are accepted
    only when all are the same decimal number (RFC 9112, 6.3, rule 5).
    """
    if len(values) == 1 and values[0].isdigit() and len(values[0]) <= 18:
        # One plain number (the usual case): what CONTENT_LENGTH_RE would
        # accept of a trimmed value without commas; bytes.isdigit is ASCII.
        length: int | None = int(values[0])
    else:
        length = _agreed_length(values)
    if length is None:
        raise RuntimeError("bug: _length_framing called without values")
    limit = limits.max_body_bytes
    if limit is not None and length > limit:
        raise BodyTooLarge(
            f"Content-Length {length} is over the {limit} byte body limit",
        )
    framing = _LENGTH_CACHE.get(length)
    if framing is None:
        if len(_LENGTH_CACHE) >= _LENGTH_CACHE_SIZE:
            _LENGTH_CACHE.clear()
        framing = _LENGTH_CACHE[length] = Framing(BodyKind.LENGTH, length)
    return framing


def _agreed_length(values: list[bytes]) -> int | None:
    """Each element of each value, checked; the number they all agree on."""
    length: int | None = None
    for value in values:
        for element in value.split(b","):
            digits = element.strip(b" \t")
            if CONTENT_LENGTH_RE.fullmatch(digits) is None:
                raise BadFraming(
                    f"Content-Length is not 1*DIGIT of at most 18 digits "
                    f"(RFC 9110, 8.6): {preview(value)}"
                )
            number = int(digits)
            if length is None:
                length = number
            elif number != length:
                raise BadFraming(
                    f"Content-Length values differ (RFC 9112, 6.3): {length} and "
                    f"{number}"
                )
    return length


def _transfer_codings(values: list[bytes]) -> list[bytes]:
    """
    All Transfer-Encoding fields combined, as lower-cased coding names.

    Stricter than the list syntax of RFC 9110, section 5.6.1: an empty
    element or one with parameters is refused (no peer needs to send one,
    and proxies disagree about them), so there is only one way to read it.
    """
    codings = []
    for value in values:
        for element in value.split(b","):
            coding = element.strip(b" \t")
            if TOKEN_RE.fullmatch(coding) is None:
                raise BadFraming(
                    f"Transfer-Encoding element is not a coding name "
                    f"(RFC 9112, 6.1): {preview(value)}"
                )
            codings.append(coding.lower())
    return codings


def _ends_in_chunked(codings: list[bytes]) -> bool:
    return codings[-1] == _CHUNKED_CODING and codings.count(_CHUNKED_CODING) == 1


def request_framing(
    version: bytes,
    content_lengths: list[bytes],
    transfer_encodings: list[bytes],
    limits: Limits,
) -> Framing:
    """
    Decide how a request body is delimited (RFC 9112, section 6.3).

    Raises:
        BadFraming: Transfer-Encoding with Content-Length or in HTTP/1.0,
            chunked missing, repeated or not last, or an invalid
            Content-Length.
        UnsupportedTransferCoding: A coding other than chunked (501).
        BodyTooLarge: Content-Length over `Limits.max_body_bytes` (413).
    """
    if transfer_encodings:
        if version == HTTP_1_0:
            # RFC 9112, section 6.1: an HTTP/1.0 message with
            # Transfer-Encoding must be treated as having faulty framing.
            raise BadFraming("Transfer-Encoding in an HTTP/1.0 request (RFC 9112, 6.1)")
        if content_lengths:
            # RFC 9112, section 6.3, rule 3: both present smells of
            # smuggling; a server may reject, and we always do.
            raise BadFraming(
                "both Transfer-Encoding and Content-Length (RFC 9112, 6.3)"
            )
        codings = _transfer_codings(transfer_encodings)
        if not _ends_in_chunked(codings):
            # RFC 9112, section 6.3, rule 4: chunked must be final (and,
            # RFC 9112 section 7, applied once only); else 400.
            raise BadFraming(
                f"Transfer-Encoding must end in chunked, once (RFC 9112, 6.3): "
                f"{preview(b', '.join(codings))}"
            )
        if len(codings) > 1:
            # RFC 9112, section 6.1: a coding we do not implement gets 501.
            raise UnsupportedTransferCoding(
                f"unsupported transfer coding (RFC 9112, 6.1): {preview(codings[0])}"
            )
        return CHUNKED
    if content_lengths:
        return _length_framing(content_lengths, limits)
    # RFC 9112, section 6.3, rule 7: no framing fields, no body.
    return NO_BODY


def response_framing(
    status: int,
    request_method: bytes,
    *,
    version: bytes,
    content_lengths: list[bytes],
    transfer_encodings: list[bytes],
    limits: Limits,
) -> Framing:
    """
    Decide how a response body is delimited (RFC 9112, section 6.3).

    Raises:
        BadFraming: Transfer-Encoding with Content-Length or in HTTP/1.0, or
            an invalid Content-Length.
        BodyTooLarge: Content-Length over `Limits.max_body_bytes`.
    """
    # After 101 the connection speaks another protocol (RFC 9110, 15.2.2).
    if status == 101:
        return TUNNEL
    # RFC 9112, section 6.3, rule 1: HEAD, 1xx, 204 and 304 have no body
    # whatever their fields say.
    if status < 200 or status in (204, 304) or request_method == _HEAD:
        return NO_BODY
    # Rule 2: a 2xx to CONNECT starts a tunnel.
    if request_method == _CONNECT and status < 300:
        return TUNNEL
    if transfer_encodings:
        if version == HTTP_1_0:
            raise BadFraming(
                "Transfer-Encoding in an HTTP/1.0 response (RFC 9112, 6.1)"
            )
        if content_lengths:
            # RFC 9112, section 6.3, rule 3: "ought to be handled as an
            # error"; we are strict about framing even as a client.
            raise BadFraming(
                "both Transfer-Encoding and Content-Length (RFC 9112, 6.3)"
            )
        codings = _transfer_codings(transfer_encodings)
        if _ends_in_chunked(codings) and len(codings) == 1:
            return CHUNKED
        if codings[-1] == _CHUNKED_CODING:
            # chunked twice, or under another coding we cannot undo.
            raise BadFraming(
                f"unsupported Transfer-Encoding in a response (RFC 9112, 6.1): "
                f"{preview(b', '.join(codings))}"
            )
        # Rule 4: chunked is not final: the body runs until the close.
        return UNTIL_CLOSE
    if content_lengths:
        return _length_framing(content_lengths, limits)
    # Rule 8: no framing fields: read until the server closes.
    return UNTIL_CLOSE


def build_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    fields: FieldList,
    limits: Limits,
) -> RequestHead:
    """
    Check the fields that shape a request and decide its framing.

    Raises:
        BadHost: An HTTP/1.1 request without exactly one Host, several Host
            fields, or an invalid Host value (RFC 9112, section 3.2).
        DuplicateField: Content-Type repeated with different values.
        BadFraming, UnsupportedTransferCoding, BodyTooLarge: see
            `request_framing`.
    """
    host: bytes | None = None
    hosts = 0
    content_lengths: list[bytes] | None = None
    transfer_encodings: list[bytes] | None = None
    # Connection: the common values are told apart with one dict lookup;
    # others are kept for `_has_option` (RFC 9110, section 7.6.1).
    close = keep_alive_option = False
    connection: list[bytes] | None = None
    expect_continue = False
    content_type: bytes | None = None
    key_of = _COMMON_NAMES.get  # a local: looked up once, not per field
    for name, value in fields:
        key = key_of(name, name)
        if key is None:
            continue  # a common name that does not shape the request
        if key is name:
            if len(name) not in _REQUEST_LENGTHS:
                continue  # cheaper than lower-casing every name
            key = name.lower()
            if key not in _REQUEST_FIELDS:
                continue
        if key == _HOST:
            hosts += 1
            host = value
        elif key == _CONNECTION:
            known = _CONNECTION_VALUES.get(value)
            if known == _CLOSE_VALUE:
                close = True
            elif known == _KEEP_ALIVE_VALUE:
                keep_alive_option = True
            elif connection is None:
                connection = [value]
            else:
                connection.append(value)
        elif key == _CONTENT_LENGTH:
            if content_lengths is None:
                content_lengths = [value]
            else:
                content_lengths.append(value)
        elif key == _TRANSFER_ENCODING:
            if transfer_encodings is None:
                transfer_encodings = [value]
            else:
                transfer_encodings.append(value)
        elif key == _EXPECT:
            # RFC 9110, section 10.1.1: 100-continue is the only expectation.
            expect_continue = expect_continue or value.lower() == b"100-continue"
        elif content_type is None:
            content_type = value
        elif value != content_type:
            # RFC 9110, section 8.3: Content-Type is a singleton field.
            raise DuplicateField(
                f"Content-Type repeated with another value: {preview(value)}"
            )
    if hosts != 1:
        # RFC 9112, section 3.2: 400 to an HTTP/1.1 request without Host,
        # and to any request with more than one Host field line.
        if hosts > 1:
            raise BadHost(f"{hosts} Host fields, exactly one is allowed")
        if version == HTTP_1_1:
            raise BadHost("HTTP/1.1 request without a Host field (RFC 9112, 3.2)")
    elif host not in _VALID_HOSTS:
        if HOST_VALUE_RE.fullmatch(host or b"") is None:
            raise BadHost(f"invalid Host value (RFC 9110, 7.2): {preview(host or b'')}")
        if len(_VALID_HOSTS) >= _VALID_HOSTS_SIZE:
            _VALID_HOSTS.clear()
        _VALID_HOSTS.add(host)
    if transfer_encodings is None:
        # RFC 9112, section 6.3: rule 7 (no framing fields, no body) or
        # rule 5 (Content-Length alone), as `request_framing` decides them.
        if content_lengths is None:
            framing = NO_BODY
        else:
            framing = _length_framing(content_lengths, limits)
    else:
        framing = request_framing(
            version, content_lengths or [], transfer_encodings, limits
        )
    if connection is not None:
        close = close or _has_option(connection, b"close")
    if version == HTTP_1_1:
        # RFC 9112, section 9.3: HTTP/1.1 persists unless "close" is sent.
        keep_alive = not close
    else:
        # HTTP/1.0 persists only with "keep-alive" (RFC 9112, 9.3, C.2.2).
        keep_alive = not close and (
            keep_alive_option
            or (connection is not None and _has_option(connection, b"keep-alive"))
        )
        expect_continue = False  # RFC 9110, 10.1.1: ignored in HTTP/1.0.
    # The same object as ``RequestHead(...)`` makes, without running the
    # dataclass ``__init__`` as a Python call: one head per request.
    head = _new_head(RequestHead)
    head.method = method
    head.target = target
    head.version = version
    head.fields = fields
    head.framing = framing
    head.keep_alive = keep_alive
    head.expect_continue = expect_continue
    head.host = host
    return head


def build_response_head(
    parts: tuple[bytes, int, bytes, FieldList],
    request_method: bytes,
    limits: Limits,
) -> ResponseHead:
    """
    Check the fields that shape a response and decide its framing.

    Raises:
        BadFraming, BodyTooLarge: see `response_framing`.
    """
    version, status, reason, fields = parts
    content_lengths: list[bytes] = []
    transfer_encodings: list[bytes] = []
    connection: list[bytes] = []
    key_of = _RESPONSE_NAMES.get  # a local: looked up once, not per field
    for name, value in fields:
        key = key_of(name, name)
        if key is None:
            continue  # a common name that does not shape the response
        if key is name:
            if len(name) not in _RESPONSE_LENGTHS:
                continue  # cheaper than lower-casing every name
            key = name.lower()
            if key not in _RESPONSE_FIELDS:
                continue
        if key == _CONTENT_LENGTH:
            content_lengths.append(value)
        elif key == _TRANSFER_ENCODING:
            transfer_encodings.append(value)
        else:
            connection.append(value)
    framing = response_framing(
        status,
        request_method,
        version=version,
        content_lengths=content_lengths,
        transfer_encodings=transfer_encodings,
        limits=limits,
    )
    kind = framing.kind
    if kind is _UNTIL_CLOSE_KIND or kind is _TUNNEL_KIND:
        keep_alive = False
    elif version == HTTP_1_1:
        keep_alive = not connection or not _has_option(connection, b"close")
    else:
        keep_alive = _has_option(connection, b"keep-alive") and not _has_option(
            connection, b"close"
        )
    return ResponseHead(version, status, reason, fields, framing, keep_alive)
