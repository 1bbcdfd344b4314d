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
named default. Building URLs, the Host field and proxies belongs to `Agent`,
which builds its requests through `request_for_agent`: the same code
(`_fill`), minus the request-target check the agent has done already.

Construction is hand-written (``init=False``): the dataclass's generated
``__init__`` would store each field through ``object.__setattr__``; `_fill`
stores them as plain attribute stores on a `_Draft` of the same slots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn

from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IClientRequest
from zope.interface import implementer

from txhttp._wire import LocalProtocolError, preview
from txhttp._wire._serialize import (
    ACCEPTED_NAMES,
    ACCEPTED_VALUES,
    MAX_ACCEPTED_MEMO_ENTRIES,
)

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

_CANONICAL_SPECIAL: Final = {
    b"Content-Length": b"content-length",
    b"Transfer-Encoding": b"transfer-encoding",
    b"Connection": b"connection",
    b"Expect": b"expect",
}
"""The fields validation looks at, as Twisted's `Headers` name them."""

_SPECIAL_LOWER: Final = frozenset(_CANONICAL_SPECIAL.values())

_SPECIAL_NAMES: Final[dict[bytes, bytes]] = dict(_CANONICAL_SPECIAL)
"""
A memo: each field name seen -> its lower case if validation looks at it,
else ``b""``, so a name is lowered once; bounded by
`txhttp._wire._serialize.MAX_ACCEPTED_MEMO_ENTRIES`.
"""


def _special_name(name: bytes) -> bytes:
    """Whether ``name`` is a field validation looks at (memoised)."""
    lowered = name.lower()
    found = lowered if lowered in _SPECIAL_LOWER else b""
    if len(_SPECIAL_NAMES) >= MAX_ACCEPTED_MEMO_ENTRIES:
        _SPECIAL_NAMES.clear()
        _SPECIAL_NAMES.update(_CANONICAL_SPECIAL)
    _SPECIAL_NAMES[name] = found
    return found


def _check_token(kind: str, value: bytes) -> None:
    """Raise `LocalProtocolError` unless ``value`` is a non-empty token."""
    if not isinstance(value, bytes):
        raise TypeError(f"{kind} must be bytes, not {type(value).__name__}")
    if _TOKEN.match(value) is None:
        raise LocalProtocolError(f"{kind} is not a valid token: {preview(value)}")


def _check_field(name: bytes, value: bytes) -> None:
    """
    Raise `LocalProtocolError` unless ``name`` is a token and ``value`` holds
    no control character.

    The wire serializer checks every field again, strictly, and remembers what
    it accepted (`txhttp._wire._serialize.ACCEPTED_NAMES`, bounded by
    `txhttp._wire._serialize.MAX_ACCEPTED_MEMO_ENTRIES`); fields found there
    skip this check.
    """
    _check_token("header name", name)
    if not isinstance(value, bytes):
        raise TypeError(f"header value must be bytes, not {type(value).__name__}")
    if _FIELD_VALUE_BAD.search(value) is not None:
        raise LocalProtocolError(
            f"value of header {name.decode('ascii')} holds a control "
            f"character (CR, LF, NUL, ...): {preview(value)}"
        )


def _check_timeout(name: str, value: float | None, *, optional: bool) -> None:
    """Raise `ValueError` for a negative, NaN or (if required) missing wait."""
    if value is None:
        if not optional:
            raise ValueError(f"{name} must be a number of seconds, not None")
        return
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")


def _check_timeouts(
    response_head_timeout: float | None,
    body_idle_timeout: float | None,
    expect_continue_timeout: float,
) -> None:
    """
    Raise `ValueError` unless the three waits are valid.

    `_fill` calls this only when they are not all the defaults, which are.
    """
    _check_timeout("response_head_timeout", response_head_timeout, optional=True)
    _check_timeout("body_idle_timeout", body_idle_timeout, optional=True)
    _check_timeout("expect_continue_timeout", expect_continue_timeout, optional=False)


def check_target(uri: bytes) -> None:
    """
    Refuse a request-target that could inject: ``ClientRequest``'s check.

    Raises:
        TypeError: ``uri`` is not ``bytes``.
        txhttp._wire.LocalProtocolError: ``uri`` is empty or holds a space
            or a control character.
    """
    if not isinstance(uri, bytes):
        raise TypeError(f"uri must be bytes, not {type(uri).__name__}")
    if _TARGET.match(uri) is None:
        raise LocalProtocolError(
            "request-target must be non-empty and hold no space or control "
            f"character: {preview(uri)}"
        )


def _refuse_headers_type(headers: object) -> NoReturn:
    """Raise the `TypeError` for ``headers`` that are not ``Headers``."""
    raise TypeError(
        f"headers must be twisted.web.http_headers.Headers, not "
        f"{type(headers).__name__}"
    )


def _special_flags(
    special: Mapping[bytes, Sequence[bytes]],
    producer: IBodyProducer | None,
    persistent: bool,
) -> tuple[bool, bool]:
    """
    Check the framing fields, then read the flags from the special fields.

    Args:
        special: The values of each field `_special_name` picked out, by its
            lower-case name; not empty.

    Returns:
        ``ClientRequest._flags``: (asks to close, expects 100 Continue).
    """
    _check_framing(special, producer)
    close = not persistent or any(
        token.strip().lower() == b"close"
        for value in special.get(b"connection", ())
        for token in value.split(b",")
    )
    expect = producer is not None and any(
        v.strip().lower() == b"100-continue" for v in special.get(b"expect", ())
    )
    return (close, expect)


def _check_body_length(producer: IBodyProducer) -> None:
    """Refuse a body producer whose ``length`` is neither known nor unknown."""
    length = producer.length
    if length is not UNKNOWN_LENGTH and (
        not isinstance(length, int) or isinstance(length, bool) or length < 0
    ):
        raise ValueError(
            f"bodyProducer.length must be UNKNOWN_LENGTH or an int >= 0, got {length!r}"
        )


def _check_framing(
    special: Mapping[bytes, Sequence[bytes]], producer: IBodyProducer | None
) -> None:
    """Refuse framing fields that disagree with the body producer."""
    if b"transfer-encoding" in special:
        raise LocalProtocolError(
            "Transfer-Encoding is set by the client from the body producer "
            "(UNKNOWN_LENGTH means chunked); do not set it in headers"
        )
    given = special.get(b"content-length")
    if given is None:
        return
    declared = 0 if producer is None else producer.length
    if declared is UNKNOWN_LENGTH or any(
        value.strip() != str(declared).encode("ascii") for value in given
    ):
        raise LocalProtocolError(
            f"Content-Length in headers {preview(b', '.join(given))} "
            f"disagrees with the body producer's length "
            f"({'unknown' if declared is UNKNOWN_LENGTH else declared})"
        )


@implementer(IClientRequest)
@dataclass(frozen=True, slots=True, eq=False, init=False)
class ClientRequest:
    """
    One request to send over an `HTTP11ClientProtocol`, validated on creation.

    The protocol writes ``headers`` as given (Host included: the agent adds
    it), then the framing it derives from ``bodyProducer``: ``Content-Length``
    for a known length, ``Transfer-Encoding: chunked`` for ``UNKNOWN_LENGTH``,
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
        absoluteURI: The full URL, for ``IClientRequest`` users (redirects,
            cookies), or ``None`` if unknown.
        response_head_timeout: Seconds from the end of the request to the
            final response head (`ResponseHeadTimeout`); ``None`` waits
            forever, which only a caller with its own deadline should ask.
        body_idle_timeout: Seconds without a body byte while reading the
            response body (`BodyIdleTimeout`); ``None`` as above.
        expect_continue_timeout: Seconds to wait for ``100 Continue`` before
            sending the body anyway; used only with ``Expect: 100-continue``.

    Raises:
        txhttp._wire.LocalProtocolError: (a `ValueError`) when the method, target, a
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
    _flags: tuple[bool, bool] = field(
        init=False, repr=False, compare=False, default=(False, False)
    )
    """(asks to close, expects 100 Continue), found while validating."""

    def __init__(  # noqa: PLR0917 (the dataclass's own signature)
        self,
        method: bytes,
        uri: bytes,
        headers: Headers,
        bodyProducer: IBodyProducer | None = None,
        persistent: bool = False,
        absoluteURI: bytes | None = None,
        response_head_timeout: float | None = DEFAULT_RESPONSE_HEAD_TIMEOUT,
        body_idle_timeout: float | None = DEFAULT_BODY_IDLE_TIMEOUT,
        expect_continue_timeout: float = DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    ) -> None:
        # Written by hand (the dataclass's own __init__ stores each field
        # through object.__setattr__): `_fill` checks, then stores cheaply.
        _fill(
            self,
            method,
            uri,
            headers,
            bodyProducer,
            persistent,
            absoluteURI,
            response_head_timeout,
            body_idle_timeout,
            expect_continue_timeout,
            True,
        )

    def __post_init__(self) -> None:
        """
        Check an instance of a dataclass subclass, which its generated
        ``__init__`` filled without calling ours.
        """
        parts = [getattr(self, name) for name in ClientRequest.__match_args__]
        ClientRequest.__init__(self, *parts)

    def field_lines(self) -> list[tuple[bytes, bytes]]:
        """
        The header fields to write, caller's fields first, framing last.

        Returns:
            The ``(name, value)`` pairs, in order. First ``headers`` without
            any Content-Length (it is re-added from the producer), then
            ``Content-Length`` or ``Transfer-Encoding: chunked`` as the body
            needs, then ``Connection: close`` unless ``persistent``.
        """
        # Read now, not at validation: headers mutated since are written as
        # they are now, and the wire serializer refuses them if invalid.
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
        return self._flags[1]

    def asks_to_close(self) -> bool:
        """Whether the request itself rules out reuse (``Connection: close``)."""
        return self._flags[0]


_STANDARD_METHODS: Final = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE"}
    | {b"PATCH"}
)
"""Methods known to be tokens (RFC 9110, 9.3; RFC 5789): no check needed."""

_METHODS_WITH_CONTENT: Final = frozenset({b"POST", b"PUT", b"PATCH"})
"""Methods defining a meaning for content: an empty body gets Content-Length: 0
(RFC 9110, section 8.6)."""


class _Draft:
    """
    A ``ClientRequest`` being filled by `_fill`: the same slots, but plain
    attribute stores instead of the frozen dataclass's ``object.__setattr__``
    per field. Once full it becomes a ``ClientRequest`` by ``__class__``
    assignment, which Python allows between classes with identical slots (a
    test checks it).
    """

    __slots__ = ClientRequest.__slots__

    method: bytes
    uri: bytes
    headers: Headers
    bodyProducer: IBodyProducer | None
    persistent: bool
    absoluteURI: bytes | None
    response_head_timeout: float | None
    body_idle_timeout: float | None
    expect_continue_timeout: float
    _flags: tuple[bool, bool]


_store: Final = object.__setattr__
"""Stores past the frozen ``ClientRequest.__setattr__``."""


def _fill(  # noqa: PLR0917 (positional: the cheapest call)
    request: object,
    method: bytes,
    uri: bytes,
    headers: Headers,
    bodyProducer: IBodyProducer | None,
    persistent: bool,
    absoluteURI: bytes | None,
    response_head_timeout: float | None,
    body_idle_timeout: float | None,
    expect_continue_timeout: float,
    check_uri: bool,
) -> None:
    """
    Check a request's parts, then store them into ``request``: the one body
    of ``ClientRequest(...)`` and `request_for_agent`.

    The checks run in this order, the first failing one raising: method,
    request-target (only if ``check_uri``), the type of ``headers``, each
    header field, the body producer's length, the framing fields, the waits.
    Nothing is stored unless all pass.

    Args:
        request: A `_Draft`, or a ``ClientRequest`` (or a subclass's
            instance) being initialised. Either way it is a
            ``ClientRequest`` on return.
        check_uri: False if ``uri`` has passed `check_target` already.

    Raises:
        txhttp._wire.LocalProtocolError: As ``ClientRequest``.
        TypeError: As ``ClientRequest``.
        ValueError: As ``ClientRequest``.
    """
    if method not in _STANDARD_METHODS:
        _check_token("method", method)
    if check_uri:
        check_target(uri)
    if not isinstance(headers, Headers):
        _refuse_headers_type(headers)
    # Each field whose name is in ACCEPTED_NAMES and value in ACCEPTED_VALUES
    # passed the wire serializer's stricter check; any other gets ours.
    names = ACCEPTED_NAMES
    values_seen = ACCEPTED_VALUES
    special_names = _SPECIAL_NAMES
    special: dict[bytes, Sequence[bytes]] | None = None  # made when needed
    for name, values in headers.getAllRawHeaders():
        for value in values:
            if name not in names or value not in values_seen:
                _check_field(name, value)
        lowered = special_names.get(name)
        if lowered is None:
            lowered = _special_name(name)
        if lowered:
            if special is None:
                special = {}
            special[lowered] = values
    if bodyProducer is not None:
        _check_body_length(bodyProducer)
    if special is None:
        flags = (not persistent, False)
    else:
        flags = _special_flags(special, bodyProducer, persistent)
    if not (  # the defaults are valid
        response_head_timeout == DEFAULT_RESPONSE_HEAD_TIMEOUT
        and body_idle_timeout == DEFAULT_BODY_IDLE_TIMEOUT
        and expect_continue_timeout == DEFAULT_EXPECT_CONTINUE_TIMEOUT
    ):
        _check_timeouts(
            response_head_timeout, body_idle_timeout, expect_continue_timeout
        )
    kind = type(request)
    if kind is ClientRequest:
        _store(request, "__class__", _Draft)
        kind = _Draft
    # A subclass's layout (a __dict__ at least) is not _Draft's: fill a
    # draft, then copy it over.
    draft: _Draft = request if kind is _Draft else _Draft()  # type: ignore[assignment]
    draft.method = method
    draft.uri = uri
    draft.headers = headers
    draft.bodyProducer = bodyProducer
    draft.persistent = persistent
    draft.absoluteURI = absoluteURI
    draft.response_head_timeout = response_head_timeout
    draft.body_idle_timeout = body_idle_timeout
    draft.expect_continue_timeout = expect_continue_timeout
    draft._flags = flags
    draft.__class__ = ClientRequest  # type: ignore[assignment]  # same slots
    if draft is not request:
        for slot in ClientRequest.__slots__:
            _store(request, slot, getattr(draft, slot))


def request_for_agent(
    method: bytes,
    uri: bytes,
    headers: Headers,
    bodyProducer: IBodyProducer | None,
    *,
    persistent: bool,
    absoluteURI: bytes,
    response_head_timeout: float | None,
    body_idle_timeout: float | None,
) -> ClientRequest:
    """
    ``ClientRequest(...)`` as `Agent` builds it.

    Every check of the public constructor runs, in the same order (the same
    code: `_fill`), except the request-target's: ``uri`` must have passed
    `check_target` already (the agent checks each URL's target once, when it
    first routes it). ``expect_continue_timeout`` is the default.

    Raises:
        txhttp._wire.LocalProtocolError: As ``ClientRequest``.
        TypeError: As ``ClientRequest``.
        ValueError: As ``ClientRequest``.
    """
    draft = _Draft()
    _fill(
        draft,
        method,
        uri,
        headers,
        bodyProducer,
        persistent,
        absoluteURI,
        response_head_timeout,
        body_idle_timeout,
        DEFAULT_EXPECT_CONTINUE_TIMEOUT,
        False,
    )
    return draft  # type: ignore[return-value]  # now a ClientRequest
