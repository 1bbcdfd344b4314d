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
"""

from __future__ import annotations

from collections.abc import Iterable
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


def _check_fields(fields: Iterable[tuple[bytes, bytes]], out: list[bytes]) -> None:
    """
    Validate field lines into ``out``, and keep the framing fields consistent.

    Raises:
        LocalProtocolError: An invalid name or value, or inconsistent
            Content-Length / Transfer-Encoding fields.
    """
    length: bytes | None = None
    codings: list[bytes] | None = None
    token = TOKEN_RE.fullmatch
    value_ok = FIELD_VALUE_RE.fullmatch
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
    out = [version, b" %d " % status, reason, _CRLF]
    _check_fields(fields, out)
    out.append(_CRLF)
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
