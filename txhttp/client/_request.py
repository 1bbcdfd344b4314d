# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
`ClientRequest`: one request, as `HTTP11ClientProtocol` sends it.

A frozen value object checked when it is built: the method must be a token,
the request-target and every header name and value free of CR, LF, NUL and
other control characters, so nothing that could inject a line or a field
ever reaches the wire (RFC 9110, sections 5.1, 5.5 and 9.1). Framing fields
(Content-Length, Transfer-Encoding) are the protocol's job; a caller may
only repeat the Content-Length the body producer declares.

It also carries the per-request waits the protocol enforces, each with a
named default. Building URLs, the Host field and proxies belongs to `Agent`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IClientRequest
from zope.interface import implementer

from txhttp._wire import LocalProtocolError, preview

__all__ = [
    "DEFAULT_BODY_IDLE_TIMEOUT",
    "DEFAULT_EXPECT_CONTINUE_TIMEOUT",
    "DEFAULT_RESPONSE_HEAD_TIMEOUT",
    "ClientRequest",
]

DEFAULT_RESPONSE_HEAD_TIMEOUT: Final = 30.0
"""
Seconds from the end of the request to the final response head.

Long enough for a slow handler behind a proxy; a server that says nothing
for longer is usually stuck. Interim (1xx) responses restart the wait.
"""

DEFAULT_BODY_IDLE_TIMEOUT: Final = 30.0
"""
Seconds the response body may go without a byte while it is being read.

Time the body consumer spends paused does not count: that wait is ours.
"""

DEFAULT_EXPECT_CONTINUE_TIMEOUT: Final = 1.0
"""
Seconds a request with ``Expect: 100-continue`` waits before sending its body.

curl waits 1 s too: servers that ignore the expectation cost only that
second, and servers that honour it answer in one round trip.
"""

_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
"""RFC 9110, section 5.6.2: the tchar set, at least one."""

_TARGET: Final = re.compile(rb"[\x21-\x7e\x80-\xff]+\Z")
"""A request-target: visible characters only, no SP, no CTL (RFC 9112, 3.2)."""

_FIELD_VALUE_BAD: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
"""Control characters a field value must not hold; HTAB is allowed (RFC 9110, 5.5)."""

_FRAMING_FIELDS: Final = frozenset({b"content-length", b"transfer-encoding"})


def _check_token(kind: str, value: bytes) -> None:
    """Raise `LocalProtocolError` unless ``value`` is a non-empty token."""
    if not isinstance(value, bytes):
        raise TypeError(f"{kind} must be bytes, not {type(value).__name__}")
    if _TOKEN.match(value) is None:
        raise LocalProtocolError(f"{kind} is not a valid token: {preview(value)}")


def _check_timeout(name: str, value: float | None, *, optional: bool) -> None:
    """Raise `ValueError` for a negative, NaN or (if required) missing wait."""
    if value is None:
        if not optional:
            raise ValueError(f"{name} must be a number of seconds, not None")
        return
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")


@implementer(IClientRequest)
@dataclass(frozen=True, slots=True, eq=False)
class ClientRequest:
    """
    One request to send over an `HTTP11ClientProtocol`, validated on creation.

    The protocol writes ``headers`` as given (Host included: the agent adds
    it), then the framing it derives from ``bodyProducer``: ``Content-Length``
    for a known length, ``Transfer-Encoding: chunked`` for `UNKNOWN_LENGTH`,
    ``Content-Length: 0`` for a body-less POST, PUT or PATCH; and
    ``Connection: close`` when ``persistent`` is false. ``Expect:
    100-continue`` in ``headers`` makes the body wait for the server's go.

    Attributes:
        method: The method token, e.g. ``b"GET"`` (case-sensitive).
        uri: The request-target written on the request line: origin-form
            (``/path?query``), or absolute-form for a proxy.
        headers: Header fields to send; the caller must not mutate them
            after building the request.
        bodyProducer: The body, or ``None`` for none.
        persistent: Whether the connection may be reused afterwards.
        absoluteURI: The full URL, for `IClientRequest` users (redirects,
            cookies), or ``None`` if unknown.
        response_head_timeout: Seconds from the end of the request to the
            final response head (`ResponseHeadTimeout`); ``None`` waits
            forever, which only a caller with its own deadline should ask.
        body_idle_timeout: Seconds without a body byte while reading the
            response body (`BodyIdleTimeout`); ``None`` as above.
        expect_continue_timeout: Seconds to wait for ``100 Continue`` before
            sending the body anyway; used only with ``Expect: 100-continue``.

    Raises:
        LocalProtocolError: (a `ValueError`) when the method, target, a
            header name or value could inject a line or a field, or a
            framing field disagrees with the body producer.
        TypeError: When a field has the wrong type.
        ValueError: When a timeout is negative.
    """

    method: bytes
    uri: bytes
    headers: Headers
    bodyProducer: IBodyProducer | None = None
    persistent: bool = False
    absoluteURI: bytes | None = None
    response_head_timeout: float | None = DEFAULT_RESPONSE_HEAD_TIMEOUT
    body_idle_timeout: float | None = DEFAULT_BODY_IDLE_TIMEOUT
    expect_continue_timeout: float = DEFAULT_EXPECT_CONTINUE_TIMEOUT

    def __post_init__(self) -> None:
        _check_token("method", self.method)
        if not isinstance(self.uri, bytes):
            raise TypeError(f"uri must be bytes, not {type(self.uri).__name__}")
        if _TARGET.match(self.uri) is None:
            raise LocalProtocolError(
                "request-target must be non-empty and hold no space or control "
                f"character: {preview(self.uri)}"
            )
        if not isinstance(self.headers, Headers):
            raise TypeError(
                f"headers must be twisted.web.http_headers.Headers, not "
                f"{type(self.headers).__name__}"
            )
        for name, values in self.headers.getAllRawHeaders():
            _check_token("header name", name)
            for value in values:
                if _FIELD_VALUE_BAD.search(value) is not None:
                    raise LocalProtocolError(
                        f"value of header {name.decode('ascii')} holds a control "
                        f"character (CR, LF, NUL, ...): {preview(value)}"
                    )
        producer = self.bodyProducer
        if producer is not None:
            length = producer.length
            if length is not UNKNOWN_LENGTH and (
                not isinstance(length, int) or isinstance(length, bool) or length < 0
            ):
                raise ValueError(
                    "bodyProducer.length must be UNKNOWN_LENGTH or an int >= 0, "
                    f"got {length!r}"
                )
        self._check_framing()
        _check_timeout(
            "response_head_timeout", self.response_head_timeout, optional=True
        )
        _check_timeout("body_idle_timeout", self.body_idle_timeout, optional=True)
        _check_timeout(
            "expect_continue_timeout", self.expect_continue_timeout, optional=False
        )

    def _check_framing(self) -> None:
        """Refuse framing fields that disagree with the body producer."""
        if self.headers.hasHeader(b"transfer-encoding"):
            raise LocalProtocolError(
                "Transfer-Encoding is set by the client from the body producer "
                "(UNKNOWN_LENGTH means chunked); do not set it in headers"
            )
        given = self.headers.getRawHeaders(b"content-length")
        if given is None:
            return
        producer = self.bodyProducer
        declared = 0 if producer is None else producer.length
        if declared is UNKNOWN_LENGTH or any(
            value.strip() != str(declared).encode("ascii") for value in given
        ):
            raise LocalProtocolError(
                f"Content-Length in headers {preview(b', '.join(given))} "
                f"disagrees with the body producer's length "
                f"({'unknown' if declared is UNKNOWN_LENGTH else declared})"
            )

    def field_lines(self) -> list[tuple[bytes, bytes]]:
        """
        The header fields to write, caller's fields first, framing last.

        Returns:
            (name, value) pairs: ``headers`` without any Content-Length (it
            is re-added from the producer), then ``Content-Length`` or
            ``Transfer-Encoding: chunked`` as the body needs, then
            ``Connection: close`` unless ``persistent``.
        """
        lines = [
            (name, value)
            for name, values in self.headers.getAllRawHeaders()
            if name.lower() not in _FRAMING_FIELDS
            for value in values
        ]
        producer = self.bodyProducer
        if producer is None:
            if self.method in _METHODS_WITH_CONTENT:
                lines.append((b"Content-Length", b"0"))
        elif producer.length is UNKNOWN_LENGTH:
            lines.append((b"Transfer-Encoding", b"chunked"))
        else:
            lines.append((b"Content-Length", b"%d" % (producer.length,)))
        if not self.persistent:
            lines.append((b"Connection", b"close"))
        return lines

    def expects_continue(self) -> bool:
        """Whether the headers ask the server for ``100 Continue`` first."""
        values = self.headers.getRawHeaders(b"expect")
        if not values or self.bodyProducer is None:
            return False
        return any(v.strip().lower() == b"100-continue" for v in values)

    def asks_to_close(self) -> bool:
        """Whether the request itself rules out reuse (``Connection: close``)."""
        if not self.persistent:
            return True
        values = self.headers.getRawHeaders(b"connection")
        if not values:
            return False
        return any(
            token.strip().lower() == b"close"
            for value in values
            for token in value.split(b",")
        )


_METHODS_WITH_CONTENT: Final = frozenset({b"POST", b"PUT", b"PATCH"})
"""Methods defining a meaning for content: an empty body gets Content-Length: 0
(RFC 9110, section 8.6)."""
