# -*- test-case-name: txhttp.test.test_client_connection -*-
"""
What an `HTTPClientConnection` tells its owner: the lifecycle receiver.

`HTTPClientLifecycleEventReceiver` is a base class whose callbacks all do
nothing; subclass it and override the ones you need. The connection calls
them synchronously, one at a time and in a fixed order (see the callback
guide), so a receiver needs no locks and no Deferreds. This module also holds
the small values those callbacks receive: `ConnectionFailureReason`,
`TimerToken` and `LifecycleResponse`.

Left out: connecting, parsing and timers themselves (see
`HTTPClientConnection` and `txhttp._wire`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum, auto
from typing import TYPE_CHECKING, Final

from txhttp._wire import RemoteProtocolError, ResponseHead

if TYPE_CHECKING:
    from txhttp.client._connection import HTTPClientConnection
    from txhttp.client._errors import HTTPTimeout

__all__ = [
    "ConnectionFailureReason",
    "HTTPClientLifecycleEventReceiver",
    "LifecycleResponse",
    "TimerToken",
]


class ConnectionFailureReason(Enum):
    """Why a connection attempt failed; passed to ``on_connection_failure``."""

    DNS = auto()
    """The host name did not resolve to any address."""
    TCP = auto()
    """No TCP connection (refused, unreachable, reset, any other socket error)."""
    SSL = auto()
    """The TLS handshake failed or the server's certificate was refused."""
    TIMEOUT = auto()
    """The attempt (lookup, TCP and TLS together) took longer than allowed."""


class TimerToken:
    """
    Names one timer set with `HTTPClientConnection.set_timer`.

    The token passed to ``on_timer`` is the very object ``set_timer``
    returned, so receivers compare with ``is`` (or ``==``, which is the
    same) and may keep tokens in sets and dicts.

    Attributes:
        serial: A number unique among one connection's timers, for logs.
        seconds: The delay the timer was set with.
    """

    __slots__ = ("seconds", "serial")

    def __init__(self, serial: int, seconds: float) -> None:
        self.serial: Final = serial
        self.seconds: Final = seconds

    def __repr__(self) -> str:
        return f"<TimerToken #{self.serial} after {self.seconds} s>"


class LifecycleResponse:
    """
    A response's status line and header fields, as ``on_response`` gets them.

    Treat it as read-only. The body is not here: it follows through
    ``on_body_chunk``.

    Attributes:
        method: The method of the request this answers (``b"HEAD"``...).
        version: ``b"HTTP/1.1"`` or ``b"HTTP/1.0"``.
        status: The status code, 200 to 599 (interim 1xx responses are
            consumed by the connection and never reported).
        reason: The reason phrase, as received (may be empty).
        fields: The header fields in received order, duplicates kept:
            (name as received, value trimmed of spaces).
        has_body: Whether body data may follow (false for HEAD, 204, 304
            and ``Content-Length: 0``: ``on_response_complete`` comes next).
        keeps_alive: Whether the server lets the connection be reused.
    """

    __slots__ = (
        "fields",
        "has_body",
        "keeps_alive",
        "method",
        "reason",
        "status",
        "version",
    )

    def __init__(
        self,
        *,
        method: bytes,
        version: bytes,
        status: int,
        reason: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        has_body: bool,
        keeps_alive: bool,
    ) -> None:
        self.method = method
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields
        self.has_body = has_body
        self.keeps_alive = keeps_alive

    def header(self, name: bytes) -> bytes | None:
        """
        The first value of the header field ``name`` (any case), or ``None``.
        """
        wanted = name.lower()
        for field_name, value in self.fields:
            if field_name.lower() == wanted:
                return value
        return None

    def header_values(self, name: bytes) -> list[bytes]:
        """Every value of the header field ``name`` (any case), in order."""
        wanted = name.lower()
        return [
            value for field_name, value in self.fields if field_name.lower() == wanted
        ]

    def __repr__(self) -> str:
        return f"<LifecycleResponse {self.status} {self.reason!r} to {self.method!r}>"


def response_for(
    method: bytes, head: ResponseHead, has_body: bool
) -> LifecycleResponse:
    """
    The `LifecycleResponse` for ``head``, answering a ``method`` request.

    What the connection calls once per response: the same object the
    keyword constructor builds, without its per-call cost of seven keyword
    arguments (about half of it).
    """
    response: LifecycleResponse = object.__new__(LifecycleResponse)
    response.method = method
    response.version = head.version
    response.status = head.status
    response.reason = head.reason
    response.fields = head.fields
    response.has_body = has_body
    response.keeps_alive = head.keep_alive
    return response


class HTTPClientLifecycleEventReceiver:
    """
    Receives the events of one `HTTPClientConnection`; every method is a no-op.

    Subclass it and override what you need. The connection calls these
    methods on the reactor thread, synchronously, one at a time: a method
    never runs while another one of the same connection is running (events
    raised meanwhile, say ``on_throttled`` during a ``send_request`` made
    inside ``on_response_complete``, are queued and delivered right after it
    returns). An exception raised by a method is logged with
    ``twisted.logger`` and closes the connection (``on_closed`` follows);
    it never reaches the reactor.

    Order, per connection: ``on_connected`` or ``on_connection_failure``
    (final); then per request ``on_response``, ``on_body_chunk`` any number
    of times, ``on_response_complete`` (or ``on_parse_error`` or
    ``on_response_timeout``); finally
    ``on_closed`` exactly once. ``on_throttled`` / ``on_unthrottled`` (in
    alternation) and ``on_timer`` may come between any two of these while
    the connection is open.
    """

    def on_connected(self, connection: HTTPClientConnection) -> None:
        """
        The connection is ready for application data: TCP is up and, for
        TLS, the handshake and certificate checks passed. Calling
        ``connection.send_request`` from here is safe.
        """

    def on_connection_failure(self, reason: ConnectionFailureReason) -> None:
        """
        The attempt failed; the connection is unusable and ``on_closed``
        will not be called. ``connection.connect_failure`` holds the error.
        """

    def on_response(self, response: LifecycleResponse) -> None:
        """The status line and every header field of the final response arrived."""

    def on_body_chunk(self, data: bytes) -> None:
        """
        A piece of the response body (de-chunked, never empty) arrived.

        Nothing is accumulated for you: keep what you need. Call
        ``pause_reading`` to stop further chunks until ``resume_reading``.
        """

    def on_response_complete(self) -> None:
        """
        The response ended (directly after ``on_response`` for HEAD, 204,
        304 and empty bodies). If the connection is reusable
        (``connection.is_idle()``), ``send_request`` may be called from here;
        otherwise it is closing and ``on_closed`` follows.
        """

    def on_parse_error(self, error: RemoteProtocolError) -> None:
        """
        The response broke HTTP/1.1, or the connection closed inside it
        (``IncompleteMessage``). The connection closes; only ``on_closed``
        follows.
        """

    def on_response_timeout(self, error: HTTPTimeout) -> None:
        """
        A wait of the request ran out: no final response head within its
        ``response_head_timeout`` after it was sent (`ResponseHeadTimeout`),
        or no body byte for its ``body_idle_timeout`` (`BodyIdleTimeout`).
        The connection was aborted; only ``on_closed`` follows.
        """

    def on_closed(self) -> None:
        """
        The connection is closed: by the server, by ``close()``, by the idle
        timeout, after an error, or because the exchange forbade reuse.
        Called exactly once for a connection that connected, or that was
        closed with ``close()`` before it connected. Timers are cancelled.
        """

    def on_throttled(self) -> None:
        """
        The transport's send buffer is full: stop sending requests and body
        data until ``on_unthrottled``. (A body producer passed with the
        request is paused for you.)
        """

    def on_unthrottled(self) -> None:
        """The send buffer drained after ``on_throttled``: sending may resume."""

    def on_timer(self, token: TimerToken) -> None:
        """
        The one-shot timer ``token`` (from ``set_timer``) fired. It is
        already consumed, so calling ``set_timer`` again from here re-arms.
        """
