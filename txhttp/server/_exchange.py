# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
The per-request contract between ``HTTPChannel`` and whatever answers requests.

For every request head it parses, the channel creates a ``ResponseSlot`` (the
request's place in the response pipeline, fixed at creation) and asks its
``exchangeFactory`` for an ``Exchange``. The channel then feeds the exchange
the request body and tells it when the connection goes away; the exchange
answers through the slot. Two kinds of exchange exist: the native one
(``txhttp.server.Request`` / ``txhttp.server.Response``) and the bridge that lets
a ``twisted.web.http.Request`` run on the channel.

Everything here is a ``typing.Protocol``, so tests and other modules can supply
small fakes. The channel side is implemented by ``txhttp.server._slot``. No
bytes are parsed or framed here.

Order of calls on an ``Exchange``, per request: ``Exchange.start`` once, right
after the factory returned it; then ``Exchange.body_received`` zero or more
times and ``Exchange.body_complete`` once (or ``Exchange.connection_lost``
instead, if the body is cut short); ``Exchange.response_sent`` once the slot's
whole response was handed to the transport, or ``Exchange.connection_lost`` if
the connection went away (or the request was dropped) before that. After
``Exchange.connection_lost`` nothing else is called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

from twisted.internet.interfaces import IAddress, IProducer
from twisted.python.failure import Failure

from txhttp._wire import Fields, RequestHead

if TYPE_CHECKING:
    from txhttp.server._channel import HTTPChannel


class Exchange(Protocol):
    """
    The receiving side of one request: what the channel tells it.

    Implementations must not raise from these methods; the channel logs an
    exception raised here and closes the connection.
    """

    def start(self) -> None:
        """
        The head was parsed and the slot is ready: start handling.

        Called once, right after the exchange factory returned. The exchange
        may answer at once (through its slot), before any body arrives.
        """

    def body_received(self, data: bytes) -> None:
        """
        Receive a piece of the de-framed request body (never empty).

        Bytes keep arriving until ``ResponseSlot.pause_body`` is called; an
        exchange that already answered may simply drop them.
        """

    def body_complete(self, trailers: Fields) -> None:
        """
        The request body is complete; ``trailers`` is empty unless chunked.
        """

    def response_sent(self) -> None:
        """
        The slot's whole response was handed to the transport, in order.
        """

    def connection_lost(self, reason: Failure) -> None:
        """
        The request can no longer be answered, or its body was cut short.

        ``reason`` wraps ``ConnectionDone``/``ConnectionLost`` when the
        transport went away, ``TimeoutError`` when the client made no progress
        for the idle timeout, ``ConnectionAborted`` when an exchange of the
        connection (this one or another) raised and the connection was
        aborted, ``RequestDropped`` when an earlier response forced the
        connection closed before this request's turn, or the wire error (a
        ``txhttp._wire.RemoteProtocolError``) that broke this request's body.
        Writes to the slot are ignored from now on.
        """


class ResponseSlot(Protocol):
    """
    The sending side of one request: its place in the response pipeline.

    Output written through a slot reaches the wire strictly in request order:
    a slot that is not at the head of the pipeline buffers (within the
    channel's ``max_buffered_response_bytes``; beyond that, its registered
    producer is paused).

    Two ways to write, never mixed on one slot:

    - raw: ``write`` / ``writeSequence`` of bytes that already carry the status
      line, header section and body framing (``twisted.web.http.Request``
      frames its own body), ended with ``finish_raw``;
    - framed: ``write_head``, then ``write_body``, then ``finish``; the slot adds
      ``Date``, ``Server`` and ``Connection`` and chooses the framing
      (Content-Length when given, chunked on HTTP/1.1 otherwise,
      close-delimited on HTTP/1.0; no body at all for HEAD, 1xx, 204, 304).

    Every write after the connection is gone (or the request was dropped) is
    a silent no-op; ask ``is_connected`` to find out.
    """

    head: RequestHead
    """The parsed request head."""

    @property
    def peer(self) -> IAddress:
        """The address of the client."""

    @property
    def host(self) -> IAddress:
        """The local address the request came in on."""

    @property
    def is_secure(self) -> bool:
        """Whether the connection is TLS."""

    def is_connected(self) -> bool:
        """Whether writes can still reach the client."""

    def is_last_request(self) -> bool:
        """Whether the connection closes after this response (so far)."""

    def is_fresh(self) -> bool:
        """Whether nothing was written for this response yet."""

    # -- raw output --------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write raw bytes (head and framed body) for this response."""

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Write several raw byte strings for this response."""

    def finish_raw(self, persistent: bool) -> None:
        """
        End a raw response.

        Args:
            persistent: Whether the bytes written allow the connection to be
                reused (the response was delimited and did not say
                ``Connection: close``). The channel closes anyway when the
                request did not allow keep-alive.
        """

    # -- framed output -----------------------------------------------------

    def write_head(
        self, status: int, reason: bytes, fields: Sequence[tuple[bytes, bytes]]
    ) -> None:
        """
        Write the status line and header fields (framing chosen here).

        ``fields`` must not contain ``Transfer-Encoding``, ``Date``,
        ``Server`` or ``Connection: keep-alive``; ``Connection: close`` makes
        the connection close after this response; ``Content-Length``, when
        present, is enforced. A status below 200 other than 101 is refused
        (interim responses are the channel's business).

        Raises:
            txhttp._wire.LocalProtocolError: A name or value could inject a
                line or field, or framing fields are contradictory; nothing
                was written.
            RuntimeError: The head was already written.
        """

    def write_body(self, data: bytes) -> None:
        """
        Write body bytes, framed as the head decided (dropped for HEAD etc.).

        Raises:
            txhttp._wire.LocalProtocolError: More bytes than the
                Content-Length announced.
        """

    def finish(self, trailers: Fields = ()) -> None:
        """
        End a framed response; ``trailers`` go out only when chunked.

        A body shorter than its Content-Length makes the channel close the
        connection after what was written (the client sees a truncation).
        """

    def finish_with_body(
        self,
        status: int,
        reason: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        """
        Write a whole response with a Content-Length in one transport write.

        The fast path for small responses: same rules as ``write_head``,
        ``write_body``, ``finish``.
        """

    # -- request body flow control ----------------------------------------

    def want_body(self) -> None:
        """
        Say the body will be read: sends ``100 Continue`` if it was expected.

        Without this call, a request with ``Expect: 100-continue`` gets no
        ``100 Continue``; if it is answered without wanting its body, the
        connection closes after the response (its body is never read).
        """

    def pause_body(self) -> None:
        """Stop delivering body bytes (and reading the socket) for now."""

    def resume_body(self) -> None:
        """Deliver body bytes again after ``pause_body``."""

    # -- response flow control --------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register the producer of this response's body (IConsumer semantics).

        A push producer (``streaming=True``) is paused while the client is
        slow or while this slot's buffered output is over the bound; a pull
        producer is asked for data whenever the slot can take more.

        Raises:
            RuntimeError: A producer is already registered.
        """

    def unregisterProducer(self) -> None:
        """Forget the registered producer, if any."""

    def write_error(self, status: int) -> None:
        """
        Answer with a short plain-text error (``status`` and its reason).

        The response closes the connection. Only valid while ``is_fresh``.

        Raises:
            RuntimeError: Something was already written.
        """

    def abort(self) -> None:
        """Give up on this response: close the connection once it is its turn."""


ExchangeFactory: TypeAlias = Callable[
    ["HTTPChannel", RequestHead, ResponseSlot], Exchange
]
"""What ``HTTPChannel.exchangeFactory`` is: builds the ``Exchange`` for one request."""


class RequestDropped(Exception):
    """
    This request was never answered: an earlier response closed the connection.

    The reason given to ``Exchange.connection_lost`` for requests that were
    queued behind a response that forced the connection closed.
    """
