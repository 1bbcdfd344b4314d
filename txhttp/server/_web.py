# -*- test-case-name: txhttp.test.test_server_web -*-
"""
twisted.web compatibility: a ``twisted.web.server.Site`` on txhttp's channel.

`use_txhttp` is the one call: it makes a Site build `HTTPChannel` connections
instead of twisted.web's own, and changes nothing else about the Site (its
resources, request factory, sessions, access log and ``timeOut`` all work as
before)::

    from twisted.web.server import Site
    from txhttp.server import use_txhttp

    site = use_txhttp(Site(root))
    reactor.listenTCP(8080, site)

For each request the channel parses, `WebExchange` builds the Site's
``requestFactory`` product (a ``twisted.web.http.Request``), copies in the
head, feeds it the body, and calls ``requestReceived`` once the body is
complete, as twisted.web's channel does. The object handed to that request as
its ``channel`` is the exchange itself: a per-request handle that writes only
through the request's `ResponseSlot`, so responses leave in request order
even when a client pipelines and handlers finish out of order.

The request frames its own body (it chunks when it has no length), so the
handle uses the slot's raw output; what the handle adds is the persistence
decision (``Connection`` header, HTTP/1.0 keep-alive) and a strict check of
the head: a header name or value that could inject a line is not sent, the
client gets a 500 and the connection closes. A head made only of pieces the
wire serializer accepted before (its memo, `txhttp._wire._serialize`) is
joined from remembered field lines; anything new goes through
``serialize_response_head``. A Site with twisted.web's default
``requestFactory`` gets `txhttp.server._web_request.WebRequest`, which does
the same with less work. Left out: the websocket upgrade
(``twisted.web.websocket`` reaches into twisted.web's private channel API)
and HTTP/2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum, auto
from functools import partial
from typing import TYPE_CHECKING, Final, NamedTuple, TypeAlias, cast

from twisted.internet.interfaces import IAddress, IProducer, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from txhttp._wire import (
    HTTP_1_0,
    HTTP_1_1,
    BodyKind,
    Fields,
    LocalProtocolError,
    RequestHead,
    serialize_response_head,
)
from txhttp._wire._serialize import (
    ACCEPTED_NAMES,
    ACCEPTED_VALUES,
    accepted_status_line,
)
from txhttp.server._channel import HTTPChannel

if TYPE_CHECKING:
    from twisted.web.http import Request
    from twisted.web.server import Site

    from txhttp.server._exchange import ExchangeFactory, ResponseSlot

_log: Final = Logger(namespace="txhttp.server.web")


class WebState(Enum):
    """Where a `WebExchange` is in its request's life."""

    RECEIVING = auto()
    """The request is built; its body is arriving."""
    PROCESSING = auto()
    """``requestReceived`` was called; the response may be under way."""
    FINISHED = auto()
    """The slot's response is complete (or was replaced by an error)."""
    LOST = auto()
    """The connection went away before the response was complete."""


class WebInput(Enum):
    """What moves a `WebExchange` between `WebState` members."""

    BODY_COMPLETE = auto()
    FINISH = auto()
    LOST = auto()


_TRANSITIONS: Final[Mapping[tuple[WebState, WebInput], WebState]] = {
    (WebState.RECEIVING, WebInput.BODY_COMPLETE): WebState.PROCESSING,
    (WebState.RECEIVING, WebInput.FINISH): WebState.FINISHED,
    (WebState.PROCESSING, WebInput.FINISH): WebState.FINISHED,
    (WebState.RECEIVING, WebInput.LOST): WebState.LOST,
    (WebState.PROCESSING, WebInput.LOST): WebState.LOST,
    # Once the response is complete, losing the connection changes nothing.
    (WebState.FINISHED, WebInput.LOST): WebState.FINISHED,
}


# Members as plain globals: reading one through its class costs about ten
# times as much on Python 3.11, and every request reads several.
_RECEIVING: Final = WebState.RECEIVING
_PROCESSING: Final = WebState.PROCESSING
_FINISHED: Final = WebState.FINISHED
_BODY_LENGTH: Final = BodyKind.LENGTH
_BODY_CHUNKED: Final = BodyKind.CHUNKED

_FRAMING_NAME_LENGTHS: Final = frozenset(
    {len(b"connection"), len(b"content-length"), len(b"transfer-encoding")}
)
"""Lengths of the field names `WebExchange` looks at, to skip others quickly."""

_KEEP_ALIVE: Final = (b"Connection", b"keep-alive")
_CLOSE: Final = (b"Connection", b"close")

MAX_FIELD_LINES: Final = 1024
"""Field lines remembered by (name, value); a full table is emptied."""

# What a remembered field line means for the framing of the response.
_PLAIN: Final = 0
_CLOSE_ASKED: Final = 1
"""A ``Connection`` field that lists ``close``."""
_LENGTH: Final = 2
"""A ``Content-Length`` of plain digits (at most `_MAX_LENGTH_DIGITS`)."""
_CHUNKED: Final = 3
"""``Transfer-Encoding: chunked`` exactly."""

_FIELD_LINES: dict[tuple[bytes, bytes], tuple[bytes, int]] = {}
"""``name: value\\r\\n`` of fields the wire core accepted, and their role."""


def _learn_field_lines(fields: Iterable[tuple[bytes, bytes]]) -> None:
    """
    Remember the lines of ``fields`` whose name and value the wire core accepted.

    Only called after ``serialize_response_head`` took a head with them, so
    each name and value is in the wire serializer's memo; framing fields
    other than the plain forms `WebExchange._join_known` can judge (a
    Content-Length of digits, ``Transfer-Encoding: chunked``) are not
    remembered, so a head holding one always goes through the wire core.
    """
    lines = _FIELD_LINES
    for name, value in fields:
        if (
            type(name) is not bytes
            or type(value) is not bytes
            or name not in ACCEPTED_NAMES
            or value not in ACCEPTED_VALUES
            or (name, value) in lines
        ):
            continue
        role = _PLAIN
        if len(name) in _FRAMING_NAME_LENGTHS:
            lowered = name.lower()
            if lowered == b"connection":
                role = _CLOSE_ASKED if _has_token(value, b"close") else _PLAIN
            elif lowered == b"content-length":
                if not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
                    continue
                role = _LENGTH
            elif lowered == b"transfer-encoding":
                if value != b"chunked":
                    continue
                role = _CHUNKED
        if len(lines) >= MAX_FIELD_LINES:
            lines.clear()
        lines[name, value] = (b"%s: %s\r\n" % (name, value), role)


MAX_CODE_LINES: Final = 256
"""Status lines remembered by (status bytes, reason), as twisted.web passes
them; a full table is emptied."""
_CODE_LINES: dict[tuple[bytes, bytes], tuple[int, bytes]] = {}

_MAX_LENGTH_DIGITS: Final = 18
"""Digits the wire core allows in a Content-Length (it stays below 2**63)."""


def _has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated field value lists ``token`` (any case)."""
    return any(part.strip().lower() == token for part in value.split(b","))


class ConnectionAddresses:
    """
    A connection's peer and host addresses, learnt from its first request.

    They do not change while a connection lasts, so `use_txhttp` gives every
    connection one of these, shared by the exchanges of its requests.

    Attributes:
        peer: The client's address, once asked for.
        host: The local address, once asked for.
    """

    __slots__ = ("host", "peer")

    def __init__(self) -> None:
        self.peer: IAddress | None = None
        self.host: IAddress | None = None

    def learn(self, slot: ResponseSlot) -> LearntAddresses:
        """Ask ``slot`` for both addresses; return them."""
        peer = self.peer = slot.peer
        host = self.host = slot.host
        return LearntAddresses(peer, host)


class LearntAddresses(NamedTuple):
    """Both addresses of a connection (what `ConnectionAddresses.learn` says)."""

    peer: IAddress
    host: IAddress


class WebExchange:
    """
    Runs one ``twisted.web.http.Request`` on txhttp's channel.

    It is two things at once, to keep the per-request cost to one object:
    the channel's `Exchange` for this request, and the ``channel`` the
    request sees (``write``, ``writeSequence``, ``writeHeaders``,
    ``requestDone``, ``getPeer``, ``getHost``, ``isSecure``,
    ``registerProducer``, ``unregisterProducer``, ``loseConnection``, and the
    ``site``, ``factory``, ``requestFactory`` and ``transport``
    attributes). Everything it writes goes through its `ResponseSlot`.

    Attributes:
        site: The Site this request belongs to.
        factory: The same Site (``Request.finish`` logs through it).
        requestFactory: The Site's request factory.
        transport: The connection's transport, for code that reads
            ``request.transport`` (writing to it directly bypasses ordering).
        request: The request, once `start` has built it.
    """

    def __init__(
        self,
        site: Site,
        channel: HTTPChannel,
        head: RequestHead,
        slot: ResponseSlot,
        *,
        addresses: ConnectionAddresses | None = None,
    ) -> None:
        """
        Args:
            site: The Site whose ``requestFactory`` builds the request.
            channel: The connection the request came in on.
            head: The parsed request head.
            slot: Where this request's response goes.
            addresses: Where the connection's addresses are remembered
                between its requests (``None``: asked of the slot each time).
        """
        self._addresses = addresses
        self.site = site
        self.factory = site
        # twisted.web types the factory as taking its own HTTPChannel; this
        # object provides every part of that channel a Request uses.
        factory: Callable[[WebExchange], Request] = site.requestFactory
        self.requestFactory = factory
        stock = _stock_factories or _load_stock_factories()
        # The stock factory is replaced by its cheaper twin, WebRequest.
        self._build = stock[1] if factory is stock[0] else factory
        self.transport: ITransport | None = channel.transport
        self.request: Request | None = None
        self._head = head
        self._slot = slot
        self._state = _RECEIVING
        self._pending_head: bytes | None = None
        self._persistent = False

    @property
    def state(self) -> WebState:
        """Where this exchange is in its request's life."""
        return self._state

    def _advance(self, event: WebInput) -> None:
        try:
            self._state = _TRANSITIONS[self._state, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    # -- Exchange ------------------------------------------------------------

    def start(self) -> None:
        """Build the request, copy the head in, and ask for the body."""
        head = self._head
        try:
            request = self._build(self)
        except Exception:
            _log.failure("the Site's requestFactory failed")
            self._answer_and_close(500)
            return
        self.request = request
        add = request.requestHeaders.addRawHeader
        cookies = False
        for name, value in head.fields:
            add(name, value)
            if len(name) == 6:
                cookies = cookies or name.lower() == b"cookie"
        # WebRequest.parseCookies reads the Cookie field only: without one
        # it has nothing to do. Other request classes are always told.
        stock = _stock_factories
        if cookies or stock is None or type(request) is not stock[1]:
            request.parseCookies()
        framing = head.framing
        kind = framing.kind
        if kind is _BODY_LENGTH:
            request.gotLength(framing.length)
        elif kind is _BODY_CHUNKED:
            request.gotLength(None)
        else:
            # No body: nothing to ask the slot for (no 100 Continue either).
            request.gotLength(0)
            return
        self._slot.want_body()

    def body_received(self, data: bytes) -> None:
        """Store a piece of the body in the request's content file."""
        if self._state is _RECEIVING and self.request is not None:
            self.request.handleContentChunk(data)

    def body_complete(self, trailers: Fields) -> None:
        """Hand the request to the Site (trailers are not part of twisted.web)."""
        request = self.request
        if self._state is not _RECEIVING or request is None:
            return
        # The one move from RECEIVING on BODY_COMPLETE (see _TRANSITIONS).
        self._state = _PROCESSING
        head = self._head
        try:
            request.requestReceived(head.method, head.target, head.version)
        except Exception:
            _log.failure("request processing failed")
            self._answer_and_close(500)

    def response_sent(self) -> None:
        """Nothing to do: the request learnt it was done at ``finish``."""

    def connection_lost(self, reason: Failure) -> None:
        """Tell an unfinished request that its client went away."""
        if self._state is _FINISHED or self._state is WebState.LOST:
            return
        self._advance(WebInput.LOST)
        if self.request is not None:
            self.request.connectionLost(reason)

    # -- the channel interface twisted.web.http.Request uses ----------------

    def getPeer(self) -> IAddress:
        """The client's address."""
        addresses = self._addresses
        if addresses is None:
            return self._slot.peer
        return addresses.peer or addresses.learn(self._slot).peer

    def getHost(self) -> IAddress:
        """The local address the request came in on."""
        addresses = self._addresses
        if addresses is None:
            return self._slot.host
        return addresses.host or addresses.learn(self._slot).host

    def isSecure(self) -> bool:
        """Whether the connection is TLS."""
        return self._slot.is_secure

    def writeHeaders(
        self,
        version: bytes,
        code: bytes,
        reason: bytes,
        headers: Headers | Iterable[tuple[bytes, bytes]],
    ) -> None:
        """
        Serialize the response head; it leaves with the first body bytes.

        The status line always says HTTP/1.1 (RFC 9110, section 2.5); the
        request's version decides keep-alive. A head that could inject a
        line or field, or whose framing fields contradict each other, is
        replaced by a 500 and the connection closes after it.
        """
        if self._state is not _PROCESSING:
            return
        if isinstance(headers, Headers):
            try:
                known = self._join_known(code, reason, headers)
            except TypeError:  # Unhashable pieces: the slow path judges them.
                known = None
            if known is not None:
                self._pending_head = known
                return
            fields = [
                (name, value)
                for name, values in headers.getAllRawHeaders()
                for value in values
            ]
        else:
            fields = list(headers)
        try:
            status = int(code)
            self._pending_head = self._serialize_head(status, reason, fields)
        except (LocalProtocolError, ValueError) as e:
            _log.error(
                "refused response head for {method!r} {target!r}: {error}",
                method=self._head.method,
                target=self._head.target,
                error=e,
            )
            self._pending_head = None
            self._answer_and_close(500)
            return
        line = accepted_status_line(status, reason)
        if line is not None and type(code) is bytes:
            if len(_CODE_LINES) >= MAX_CODE_LINES:
                _CODE_LINES.clear()
            _CODE_LINES[code, reason] = (status, line)
        _learn_field_lines(fields)

    def _join_known(self, code: bytes, reason: bytes, headers: Headers) -> bytes | None:
        """
        Join a head made only of pieces the wire core already accepted.

        Returns ``None`` (nothing decided) when the status line, a field
        name or a field value is new, or when the framing fields are not
        plainly consistent (one all-digit Content-Length, or one
        ``Transfer-Encoding: chunked``): `_serialize_head` judges those.
        """
        known_line = _CODE_LINES.get((code, reason))
        if known_line is None:
            return None
        status, line = known_line
        lines = _FIELD_LINES
        parts = [line]
        close_asked = has_length = chunked = False
        for name, field_values in headers.getAllRawHeaders():
            for value in field_values:
                known = lines.get((name, value))
                if known is None:
                    return None
                parts.append(known[0])
                role = known[1]
                if role != _PLAIN:
                    if role == _CLOSE_ASKED:
                        close_asked = True
                    elif has_length or chunked:
                        return None  # Two framing fields: the wire core judges.
                    elif role == _LENGTH:
                        has_length = True
                    else:
                        chunked = True
        ending, _ = self._head_ending(status, close_asked, has_length, chunked)
        parts.append(ending)
        return b"".join(parts)

    def _head_ending(
        self, status: int, close_asked: bool, has_length: bool, chunked: bool
    ) -> tuple[bytes, tuple[bytes, bytes] | None]:
        """
        Decide keep-alive for a response with these framing facts.

        Returns:
            The bytes that end the head (our own ``Connection`` field, if
            one is needed, and the blank line) and that field, or ``None``.
        """
        head = self._head
        no_body = head.method == b"HEAD" or status < 200 or status in (204, 304)
        delimited = no_body or has_length or (chunked and head.version == HTTP_1_1)
        persistent = head.keep_alive and delimited and not close_asked
        self._persistent = persistent
        # Our own Connection fields are valid by construction.
        if persistent:
            if head.version == HTTP_1_0:
                return b"Connection: keep-alive\r\n\r\n", _KEEP_ALIVE
            return b"\r\n", None
        if not close_asked:
            return b"Connection: close\r\n\r\n", _CLOSE
        return b"\r\n", None

    def _serialize_head(
        self, status: int, reason: bytes, fields: list[tuple[bytes, bytes]]
    ) -> bytes:
        """
        Decide keep-alive, add ``Connection`` if needed, and serialize.

        A head whose status line, field names and field values the wire core
        already accepted (its memo of accepted pieces) is joined without a
        second look, as long as its framing fields are plainly consistent (one
        all-digit Content-Length, or one ``Transfer-Encoding: chunked``);
        anything else goes through ``serialize_response_head``.
        """
        close_asked = False
        has_length = False
        chunked = False
        line = accepted_status_line(status, reason) if type(reason) is bytes else None
        known = line is not None
        names = ACCEPTED_NAMES
        values = ACCEPTED_VALUES
        parts: list[bytes] = [] if line is None else [line]
        for name, value in fields:
            if known:
                try:
                    known = name in names and value in values
                except TypeError:  # Unhashable (bytearray): the slow path.
                    known = False
                parts += (name, b": ", value, b"\r\n")
            if len(name) in _FRAMING_NAME_LENGTHS:
                lowered = name.lower()
                if lowered == b"connection":
                    close_asked = close_asked or _has_token(value, b"close")
                elif lowered == b"content-length":
                    if (
                        has_length
                        or chunked
                        or type(value) is not bytes
                        or not value.isdigit()
                        or len(value) > _MAX_LENGTH_DIGITS
                    ):
                        known = False  # Let the wire core judge it.
                    has_length = True
                elif lowered == b"transfer-encoding":
                    if has_length or chunked or value != b"chunked":
                        known = False
                    chunked = _has_token(value, b"chunked")
        ending, connection = self._head_ending(status, close_asked, has_length, chunked)
        if connection is not None:
            fields.append(connection)
        if known:
            parts.append(ending)
            return b"".join(parts)
        # The serializer remembers what it accepts (the memos read above).
        return serialize_response_head(status, reason, fields)

    def write(self, data: bytes) -> None:
        """Write response bytes (already framed by the request)."""
        if self._state is not _PROCESSING:
            return
        pending = self._pending_head
        if pending is not None:
            self._pending_head = None
            self._slot.write(pending + data)
        else:
            self._slot.write(data)

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        """Write several byte strings of the response."""
        if self._state is not _PROCESSING:
            return
        pending = self._pending_head
        if pending is not None:
            self._pending_head = None
            self._slot.writeSequence([pending, *iovec])
        else:
            self._slot.writeSequence(iovec)

    def requestDone(self, request: Request) -> None:
        """The request finished: end this slot's response."""
        if self._state is not _PROCESSING:
            return
        # Inline `_advance`: PROCESSING was checked just above.
        self._state = _FINISHED  # The one move from PROCESSING on FINISH.
        pending = self._pending_head
        if pending is not None:
            self._pending_head = None
            self._slot.write(pending)
        self._slot.finish_raw(self._persistent)

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Register the response body's producer with the slot."""
        self._slot.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """Forget the response body's producer."""
        self._slot.unregisterProducer()

    def loseConnection(self) -> None:
        """Close the connection once this response's turn comes."""
        self._slot.abort()

    def _respondToBadRequestAndDisconnect(self) -> None:
        """Answer 400 and close (``requestReceived`` calls this on bad forms)."""
        self._answer_and_close(400)

    def _answer_and_close(self, status: int) -> None:
        """
        End this response with an error and close; the request is over.

        If part of a response already went out, the connection is cut after
        it instead (the client sees a truncated response, never a mix).
        """
        if self._state not in (WebState.RECEIVING, WebState.PROCESSING):
            return
        self._advance(WebInput.FINISH)
        self._pending_head = None
        if self._slot.is_fresh():
            self._slot.write_error(status)
        else:
            self._slot.abort()


_StockPair: TypeAlias = "tuple[object, Callable[[WebExchange], Request]]"
_stock_factories: _StockPair | None = None
"""twisted.web's ``Request`` and `WebRequest`, once loaded."""


def _load_stock_factories() -> _StockPair:
    """
    Import twisted.web's stock ``Request`` and its replacement `WebRequest`.

    Lazy: ``twisted.web.server`` is only needed once a Site runs here.
    """
    global _stock_factories  # noqa: PLW0603 (imported on first use)
    from twisted.web.server import Request as StockRequest  # noqa: PLC0415

    from txhttp.server._web_request import WebRequest  # noqa: PLC0415

    stock = _stock_factories = (
        StockRequest,
        cast("Callable[[WebExchange], Request]", WebRequest),
    )
    return stock


def site_exchange_factory(site: Site) -> ExchangeFactory:
    """
    Return the ``exchangeFactory`` that runs ``site``'s requests on a channel.

    `use_txhttp` installs it; it is public for code that builds its own
    `HTTPChannel` (for example to wrap the exchanges it returns).
    """
    return partial(WebExchange, site)


def use_txhttp(site: Site) -> Site:
    """
    Make ``site`` serve its connections with txhttp's `HTTPChannel`.

    The one call that moves a ``twisted.web.server.Site`` (or a subclass,
    such as the one Klein's ``app.resource()`` is served with) onto txhttp:
    it replaces the Site's ``protocol`` and nothing else. Resources, the
    request factory, sessions, ``displayTracebacks``, the access log
    (``logPath``, ``logFormatter``) and the idle timeout (``timeOut``) keep
    working as they do on twisted.web's channel; the Site's ``reactor`` is
    the channel's clock. Responses are written in request order even when a
    client pipelines, and every request is parsed by txhttp's strict wire
    core.

    Args:
        site: The Site to change (in place).

    Returns:
        ``site`` itself, so that ``reactor.listenTCP(8080,
        use_txhttp(Site(root)))`` reads as one line.
    """
    clock = site.reactor

    def build() -> HTTPChannel:
        channel = HTTPChannel(clock=clock)
        channel.exchangeFactory = partial(
            WebExchange, site, addresses=ConnectionAddresses()
        )
        # Write-through alone measured as costly as Twisted's buffered
        # write, or up to 8% more, for a Site under wrk -c50: a Site takes
        # long enough per request that the client sleeps between two
        # responses sent one by one, and each send pays for waking it (wrk:
        # 0.9 context switches per request, 0.15 when the reactor's writable
        # turn sends them back to back). Holding all but the turn's first
        # write for the end of the turn sends them back to back without
        # Twisted's epoll changes (bench/README.md).
        channel.batch_writes = True
        return channel

    # Site.buildProtocol calls this, then sets the channel's factory, site,
    # requestFactory, timeOut and callLater (the Site's reactor) as it does
    # for twisted.web's own channel.
    site.protocol = build  # type: ignore[assignment]
    return site
