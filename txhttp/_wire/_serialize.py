# -*- test-case-name: txhttp.test.test_wire_serialize -*-
"""
Serializers for request heads, response heads and chunked bodies.

Each refuses, with `LocalProtocolError`, any method, target, reason, field
name or value that could inject a line or a field (CR, LF, NUL, other CTLs,
non-token names), and any head whose Content-Length and Transfer-Encoding
disagree (both present, several different Content-Lengths, a coding list that
does not end in chunked). What they accept is exactly what our parsers accept
(`txhttp._wire._grammar`), so our own output always parses. Each head is
built with one ``b"".join``. Sans-IO: standard library only.

The serializers also remember, in small bounded memos, the pieces they have
accepted: field names, field values and response status lines. A caller that
builds a head by joining pieces itself (the server's fast paths) may skip
validation only for pieces found there (`accepted_status_line`,
`is_accepted_field`, `ACCEPTED_NAMES`, `ACCEPTED_VALUES`). Only the
serializers add to the memos, so nothing unvalidated can get in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Final

from txhttp._wire._chunked import FORBIDDEN_TRAILERS
from txhttp._wire._errors import LocalProtocolError, preview
from txhttp._wire._grammar import (
    ABSOLUTE_FORM_RE,
    AUTHORITY_FORM_RE,
    CONTENT_LENGTH_RE,
    FIELD_VALUE_RE,
    TOKEN_RE,
)
from txhttp._wire._message import HTTP_1_0, HTTP_1_1

_VERSIONS: Final = (HTTP_1_1, HTTP_1_0)
_CRLF: Final = b"\r\n"
_COLON_SP: Final = b": "
_TARGET_CHARS: Final = frozenset(range(0x21, 0x7F))
_REASON_BAD: Final = frozenset(set(range(0x20)) - {9} | {0x7F})


MAX_ACCEPTED_MEMO_ENTRIES: Final = 1024
"""Entries kept in each memo of accepted pieces (names, values, status lines).

A full memo is emptied and starts over, so a server sending ever-new values
(ETags, cookies) costs at most this many entries each, while the few pieces
sent again and again are found after their first use."""

MAX_ACCEPTED_VALUE_BYTES: Final = 256
"""Longer field values are validated every time, never remembered: this bounds
the values memo to about ``MAX_ACCEPTED_MEMO_ENTRIES`` times this many bytes."""

_names: Final[set[bytes]] = set()
_values: Final[set[bytes]] = set()
_status_lines: Final[dict[tuple[int, bytes], bytes]] = {}

ACCEPTED_NAMES: Final[Set[bytes]] = _names
"""Field names the serializers accepted (each a token, RFC 9110, 5.1).

Read-only for callers. Validity of a name and of a value do not depend on each
other, so a field whose name is here and whose value is in `ACCEPTED_VALUES`
is valid, whichever fields they first came in."""

ACCEPTED_VALUES: Final[Set[bytes]] = _values
"""Field values the serializers accepted (no CR, LF, NUL or other CTL but
HTAB, no surrounding whitespace; RFC 9110, 5.5). Read-only for callers.

Framing is not covered: a Content-Length or Transfer-Encoding field made of
accepted pieces may still contradict another one; check those yourself or
let `serialize_response_head` / `serialize_request_head` judge."""

ACCEPTED_STATUS_LINES: Final[Mapping[tuple[int, bytes], bytes]] = _status_lines
"""``HTTP/1.1`` status lines (with their CRLF) that `serialize_response_head`
wrote, by status code and reason phrase."""


def is_accepted_field(name: bytes, value: bytes) -> bool:
    """
    Whether ``name`` and ``value`` were each accepted by a serializer before.

    ``True`` means the field line ``name: value`` is valid as it stands (not
    that it agrees with the framing fields around it). ``False`` only means
    "not known": validate it (serialize it) to find out.
    """
    try:
        return name in _names and value in _values
    except TypeError:  # unhashable (bytearray): never remembered
        return False


def accepted_status_line(status: int, reason: bytes) -> bytes | None:
    """
    The ``HTTP/1.1`` status line written before for ``status`` and ``reason``.

    Returns:
        ``b"HTTP/1.1 <status> <reason>\r\n"`` exactly as
        `serialize_response_head` produced it, or ``None`` if it did not yet.
    """
    try:
        return _status_lines.get((status, reason))
    except TypeError:  # unhashable reason: never remembered
        return None


def _remember_name(name: bytes) -> None:
    if len(_names) >= MAX_ACCEPTED_MEMO_ENTRIES:
        _names.clear()
    _names.add(name)


def _remember_value(value: bytes) -> None:
    if len(_values) >= MAX_ACCEPTED_MEMO_ENTRIES:
        _values.clear()
    _values.add(value)


def _remember_status_line(status: int, reason: bytes, line: bytes) -> None:
    if len(_status_lines) >= MAX_ACCEPTED_MEMO_ENTRIES:
        _status_lines.clear()
    _status_lines[status, reason] = line


def _check_fields(fields: Iterable[tuple[bytes, bytes]], out: list[bytes]) -> None:
    """
    Validate field lines into ``out``, and keep the framing fields consistent.

    Each name and value found valid is remembered (exact ``bytes`` only:
    anything mutable could change after the check).

    Raises:
        LocalProtocolError: An invalid name or value, or inconsistent
            Content-Length / Transfer-Encoding fields.
    """
    length: bytes | None = None
    codings: list[bytes] | None = None
    token = TOKEN_RE.fullmatch
    value_ok = FIELD_VALUE_RE.fullmatch
    names = _names
    values = _values
    for name, value in fields:
        if token(name) is None:
            # RFC 9110, section 5.1: field-name = token.
            raise LocalProtocolError(
                f"field name is not a token (RFC 9110, 5.1): {preview(name)}"
            )
        if value_ok(value) is None:
            # RFC 9110, section 5.5: no CR, LF, NUL or other CTL but HTAB,
            # and no leading or trailing whitespace.
            raise LocalProtocolError(
                f"invalid value for field {preview(name)} (RFC 9110, 5.5: no "
                f"CR, LF, NUL, CTL or surrounding whitespace): {preview(value)}"
            )
        if type(name) is bytes and name not in names:
            _remember_name(name)
        if (
            type(value) is bytes
            and len(value) <= MAX_ACCEPTED_VALUE_BYTES
            and value not in values
        ):
            _remember_value(value)
        out += (name, _COLON_SP, value, _CRLF)
        if len(name) in (14, 17):
            key = name.lower()
            if key == b"content-length":
                if CONTENT_LENGTH_RE.fullmatch(value) is None:
                    raise LocalProtocolError(
                        f"Content-Length is not 1*DIGIT (RFC 9110, 8.6): "
                        f"{preview(value)}"
                    )
                if length is not None and int(value) != int(length):
                    raise LocalProtocolError(
                        f"several different Content-Length values: {preview(length)}"
                        f" and {preview(value)}"
                    )
                length = value
            elif key == b"transfer-encoding":
                if codings is None:
                    codings = []
                codings += (c.strip(b" \t").lower() for c in value.split(b","))
    if codings is not None:
        if length is not None:
            # RFC 9112, section 6.2: a sender MUST NOT send Content-Length
            # in a message that contains Transfer-Encoding.
            raise LocalProtocolError(
                "both Content-Length and Transfer-Encoding (RFC 9112, 6.2)"
            )
        if codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
            # RFC 9112, section 6.1: chunked is last, and applied once.
            raise LocalProtocolError(
                f"Transfer-Encoding must end in chunked, once (RFC 9112, 6.1): "
                f"{preview(b', '.join(codings))}"
            )


def serialize_request_head(
    method: bytes,
    target: bytes,
    fields: Iterable[tuple[bytes, bytes]],
    version: bytes = HTTP_1_1,
) -> bytes:
    """
    Return ``method SP target SP version CRLF *(field CRLF) CRLF``.

    Raises:
        LocalProtocolError: The method is not a token, the target is empty
            or has a control, space or non-ASCII byte, or is not a valid
            form for the method, the version is not HTTP/1.0 or HTTP/1.1,
            or a field is invalid or the framing fields disagree.
    """
    if TOKEN_RE.fullmatch(method) is None:
        # RFC 9110, section 9.1: method = token.
        raise LocalProtocolError(
            f"method is not a token (RFC 9110, 9.1): {preview(method)}"
        )
    if not target or not _TARGET_CHARS.issuperset(target):
        # RFC 9112, section 3.2: no CTL, SP or non-ASCII byte in a target.
        raise LocalProtocolError(
            f"request-target must be non-empty visible ASCII (RFC 9112, 3.2): "
            f"{preview(target)}"
        )
    if not _target_fits_method(method, target):
        raise LocalProtocolError(
            f"request-target {preview(target)} is not a valid form for method "
            f"{preview(method)} (RFC 9112, 3.2)"
        )
    if version not in _VERSIONS:
        raise LocalProtocolError(f"unsupported HTTP version: {preview(version)}")
    out = [method, b" ", target, b" ", version, _CRLF]
    _check_fields(fields, out)
    out.append(_CRLF)
    return b"".join(out)


def _target_fits_method(method: bytes, target: bytes) -> bool:
    # RFC 9112, section 3.2: the same four forms the parser accepts.
    if method == b"CONNECT":
        return AUTHORITY_FORM_RE.fullmatch(target) is not None
    if target[0] == 47:  # "/": origin-form
        return True
    if target == b"*":
        return method == b"OPTIONS"
    return ABSOLUTE_FORM_RE.match(target) is not None


def serialize_response_head(
    status: int,
    reason: bytes,
    fields: Iterable[tuple[bytes, bytes]],
    version: bytes = HTTP_1_1,
) -> bytes:
    """
    Return ``version SP status SP reason CRLF *(field CRLF) CRLF``.

    Raises:
        LocalProtocolError: The status is not an int from 100 to 999, the
            reason has CR, LF or another control but HTAB, the version is
            not HTTP/1.0 or HTTP/1.1, or a field is invalid or the framing
            fields disagree.
    """
    if type(status) is not int or not 100 <= status <= 999:
        # RFC 9110, section 15: status-code = 3DIGIT, first digit 1 to 9.
        raise LocalProtocolError(f"status must be an int from 100 to 999: {status!r}")
    if not _REASON_BAD.isdisjoint(reason):
        # RFC 9112, section 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
        raise LocalProtocolError(
            f"reason phrase has CR, LF or another control (RFC 9112, 4): "
            f"{preview(reason)}"
        )
    if version not in _VERSIONS:
        raise LocalProtocolError(f"unsupported HTTP version: {preview(version)}")
    line = b"%s %d %s\r\n" % (version, status, reason)
    out = [line]
    _check_fields(fields, out)
    out.append(_CRLF)
    if (
        version == HTTP_1_1
        and type(reason) is bytes
        and (status, reason) not in _status_lines
    ):
        _remember_status_line(status, reason, line)
    return b"".join(out)


def encode_chunk(data: bytes) -> bytes:
    """
    Frame ``data`` as one chunk; empty data gives ``b""`` (not the last chunk).

    The size is lower-case hex without extensions (RFC 9112, section 7.1).
    """
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def encode_last_chunk(trailers: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
    """
    Return the last chunk, the trailer fields and the final CRLF.

    Raises:
        LocalProtocolError: A trailer name or value is invalid, or the
            trailer is one our parser refuses (Content-Length,
            Transfer-Encoding, Host, Trailer; RFC 9110, section 6.5.1).
    """
    out = [b"0\r\n"]
    trailers = list(trailers)
    _check_fields(trailers, out)
    for name, _ in trailers:
        if name.lower() in FORBIDDEN_TRAILERS:
            raise LocalProtocolError(
                f"{preview(name)} is not allowed in a trailer section (RFC 9110, 6.5.1)"
            )
    out.append(_CRLF)
    return b"".join(out)
