# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
``HTTPChannel``: one server connection, HTTP/1.1 over a Twisted transport.

The channel feeds received bytes to the wire core's ``RequestParser``, creates a
``ResponseSlot`` and an ``Exchange`` per request head, and runs everything that
needs time or a transport: pipelining in order, flow control both ways, the
idle and header timeouts, keep-alive decisions and the lingering close. It
parses nothing itself; framing and serialization live in ``txhttp._wire``, and
what a request means lives in the exchange (native handlers or the
twisted.web bridge).

The line-oriented hooks of ``twisted.web.http.HTTPChannel`` (``lineReceived``,
``rawDataReceived``, ``lineLengthExceeded``) have no counterpart here: the
wire core enforces the line limits, and its errors come back as statuses. A
request line over ``limits.max_line_bytes`` is answered ``414``; a field line
over ``limits.max_field_line_bytes``, or a header section over
``HTTPChannel.maxHeaderLength`` bytes or ``limits.max_header_count`` fields, is
answered ``431``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from enum import Enum, auto
from typing import Any, Final, cast
from typing import Protocol as Protocol_

from twisted.internet.error import (
    AlreadyCalled,
    AlreadyCancelled,
    ConnectionAborted,
    ConnectionDone,
    TimeoutError,
)
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IPushProducer,
    IReactorTime,
    ISSLTransport,
    ITCPTransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.tcp import Connection as TCPConnection
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from typing_extensions import assert_never
from zope.interface import implementer

from txhttp._twisted_io import close_now, turn_batch_for, write_through
from txhttp._wire import (
    DEFAULT_LIMITS,
    END_OF_MESSAGE,
    HTTP_1_1,
    ConnectionClosed,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    RequestHead,
    RequestParser,
)
from txhttp._wire._parser import parse_whole_request
from txhttp.server._date import DateCache
from txhttp.server._exchange import ExchangeFactory, RequestDropped
from txhttp.server._slot import AFTER_SEND, ChannelSlot, SlotState, error_response

DEFAULT_IDLE_TIMEOUT: Final = 60.0
"""Seconds a connection may wait on its peer without progress either way.

Also the slowest accepted download: a response that does not drain at least
one transport buffer (about 64 KiB) per period is cut."""

DEFAULT_MAX_PIPELINE: Final = 32
"""Requests in progress on one connection before input is paused."""

DEFAULT_MAX_HEADER_LENGTH: Final = DEFAULT_LIMITS.max_header_section_bytes
"""Bytes of request line and header section accepted; more gets 431."""

DEFAULT_HEADER_TIMEOUT: Final = 30.0
"""Seconds from the first byte of a request head to its end, however it
trickles in; a peer that takes longer gets 408 and a close."""

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
"""Largest request body accepted (de-framed); larger gets 413."""

DEFAULT_LINGER_TIMEOUT: Final = 20.0
"""Seconds to keep reading (and discarding) after closing our write side, so
the peer's unread bytes do not turn our last response into a reset."""

DEFAULT_MAX_LINGER_BYTES: Final = 1024 * 1024
"""Bytes discarded while lingering before the connection is closed anyway."""

DEFAULT_ABORT_TIMEOUT: Final = 15.0
"""Seconds a closing connection may take to flush before it is aborted."""

DEFAULT_MAX_BUFFERED_RESPONSE_BYTES: Final = 1024 * 1024
"""Output held for pipelined responses waiting for their turn; beyond it
their producers are paused."""

DEFAULT_WRITE_PIECE_BYTES: Final = 64 * 1024
"""Largest single write handed to the transport; bigger writes are fed in
pieces as it drains, so draining shows as progress to the idle timeout.

Also the bound of the cork: what a receive's responses write is held
until ``dataReceived`` returns, then sent in one write, unless it grows past
this many bytes, when it goes to the transport at once."""

DEFAULT_SERVER_HEADER: Final = b"txhttp"
"""The ``Server`` field value sent with every response (``None``: none)."""


class ChannelState(Enum):
    """The life of a connection, as far as the channel is concerned."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    UNCONNECTED = auto()
    """Built, no transport yet."""
    OPEN = auto()
    """Reading requests and writing responses."""
    DRAINING = auto()
    """No further request will be read; the responses owed are written."""
    LINGERING = auto()
    """All written, write side closing; input is read and discarded."""
    CLOSING = auto()
    """The transport was asked to close; waiting for ``connectionLost``."""
    CLOSED = auto()
    """The transport is gone."""


class ChannelInput(Enum):
    """What moves a channel from one ``ChannelState`` to another."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    CONNECT = auto()
    STOP_READING = auto()
    LINGER = auto()
    CLOSE = auto()
    LOST = auto()


_S = ChannelState
_I = ChannelInput

_TRANSITIONS: Final[dict[tuple[ChannelState, ChannelInput], ChannelState]] = {
    (_S.UNCONNECTED, _I.CONNECT): _S.OPEN,
    (_S.OPEN, _I.STOP_READING): _S.DRAINING,
    (_S.DRAINING, _I.STOP_READING): _S.DRAINING,
    (_S.LINGERING, _I.STOP_READING): _S.LINGERING,
    (_S.CLOSING, _I.STOP_READING): _S.CLOSING,
    (_S.CLOSED, _I.STOP_READING): _S.CLOSED,
    (_S.DRAINING, _I.LINGER): _S.LINGERING,
    (_S.OPEN, _I.CLOSE): _S.CLOSING,
    (_S.DRAINING, _I.CLOSE): _S.CLOSING,
    (_S.LINGERING, _I.CLOSE): _S.CLOSING,
    (_S.CLOSING, _I.CLOSE): _S.CLOSING,
    # Losing the transport is legal everywhere and always final.
    **{(state, _I.LOST): _S.CLOSED for state in ChannelState},
}
"""Every legal move of ``HTTPChannel``; anything else is a bug."""

# Moves whose outcome is fixed, read from the table once for the paths every
# connection takes, which then skip `HTTPChannel._advance`.
_AFTER_CONNECT: Final = _TRANSITIONS[_S.UNCONNECTED, _I.CONNECT]
_OPEN_STOP_READING: Final = _TRANSITIONS[_S.OPEN, _I.STOP_READING]
_DRAINING_CLOSE: Final = _TRANSITIONS[_S.DRAINING, _I.CLOSE]
_AFTER_LOST: Final = _TRANSITIONS[_S.OPEN, _I.LOST]
if any(_TRANSITIONS[state, _I.LOST] is not _AFTER_LOST for state in ChannelState):
    raise RuntimeError("bug: losing the transport must end in one state")


class _Transport(Protocol_):
    """What the channel uses of its transport (TCP, TLS, or a test fake)."""

    def write(self, data: bytes) -> None: ...
    def loseConnection(self) -> None: ...
    def abortConnection(self) -> None: ...
    def loseWriteConnection(self) -> None: ...
    def pauseProducing(self) -> None: ...
    def resumeProducing(self) -> None: ...
    def registerProducer(self, producer: object, streaming: bool) -> None: ...
    def getPeer(self) -> IAddress: ...
    def getHost(self) -> IAddress: ...


class ReadPause(Enum):
    """Why the channel stopped reading from its transport."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    BODY = auto()
    """The exchange reading a request body asked for a pause."""
    PIPELINE = auto()
    """``HTTPChannel.maxPipeline`` requests are in progress."""
    WRITE_BLOCKED = auto()
    """The client is not reading our responses; take no new requests."""
    ABORTED = auto()
    """An exchange failed and the connection is being aborted: read no more."""


# Enum members as plain globals: reading one through its class costs about
# ten times as much on Python 3.11, and the hot paths read many.
_IN_CLOSE: Final = ChannelInput.CLOSE
_IN_CONNECT: Final = ChannelInput.CONNECT
_IN_LINGER: Final = ChannelInput.LINGER
_IN_LOST: Final = ChannelInput.LOST
_IN_STOP_READING: Final = ChannelInput.STOP_READING
_ST_CLOSED: Final = ChannelState.CLOSED
_ST_CLOSING: Final = ChannelState.CLOSING
_ST_DRAINING: Final = ChannelState.DRAINING
_ST_LINGERING: Final = ChannelState.LINGERING
_ST_OPEN: Final = ChannelState.OPEN
_ST_UNCONNECTED: Final = ChannelState.UNCONNECTED
_PAUSE_BODY: Final = ReadPause.BODY
_PAUSE_PIPELINE: Final = ReadPause.PIPELINE
_PAUSE_WRITE_BLOCKED: Final = ReadPause.WRITE_BLOCKED
_PAUSE_ABORTED: Final = ReadPause.ABORTED
_SLOT_DONE: Final = SlotState.DONE
_NO_PAUSES: Final[frozenset[ReadPause]] = frozenset()


MAX_LIMITS_CACHE: Final = 64
"""Distinct channel configurations whose parser ``Limits`` are remembered."""

_limits_cache: dict[tuple[int, int, int], tuple[Limits, Limits]] = {}


def _effective_limits(base: Limits, max_header: int, max_body: int) -> Limits:
    """``base`` with the channel's header and body caps, made once per config."""
    # Keyed by identity: hashing a Limits (a dataclass) field by field cost
    # more than the rest of the lookup, once per connection. The entry keeps
    # ``base`` alive, so its id cannot be reused while the entry exists.
    key = (id(base), max_header, max_body)
    entry = _limits_cache.get(key)
    if entry is not None and entry[0] is base:
        return entry[1]
    if len(_limits_cache) >= MAX_LIMITS_CACHE:
        _limits_cache.clear()
    limits = dataclasses.replace(
        base, max_header_section_bytes=max_header, max_body_bytes=max_body
    )
    _limits_cache[key] = (base, limits)
    return limits


@implementer(IHalfCloseableProtocol, IPushProducer)
class HTTPChannel(Protocol, TimeoutMixin):
    """
    A server-side HTTP/1.1 connection.

    Settings are class attributes with documented defaults; override them on
    a subclass, on an instance before it connects, or through
    ``txhttp.server.HTTPServerFactory``. Requests are handed to
    ``exchangeFactory``.

    Args:
        clock: Source of time for every timeout and the ``Date`` field. When
            ``None``, the global reactor is used (looked up when the first
            timer is set), which is what ``twisted.web.server.Site`` expects.
    """

    # TimeoutMixin annotates timeOut as int, but any number of seconds works.
    timeOut: float | None = DEFAULT_IDLE_TIMEOUT  # type: ignore[assignment]
    """Idle seconds (see ``DEFAULT_IDLE_TIMEOUT``); ``None`` turns it off."""
    maxPipeline: int = DEFAULT_MAX_PIPELINE
    """See ``DEFAULT_MAX_PIPELINE``."""
    maxHeaderLength: int = DEFAULT_MAX_HEADER_LENGTH
    """See ``DEFAULT_MAX_HEADER_LENGTH``."""
    header_timeout: float | None = DEFAULT_HEADER_TIMEOUT
    """See ``DEFAULT_HEADER_TIMEOUT``."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """See ``DEFAULT_MAX_BODY_BYTES``."""
    linger_timeout: float = DEFAULT_LINGER_TIMEOUT
    """See ``DEFAULT_LINGER_TIMEOUT``."""
    max_linger_bytes: int = DEFAULT_MAX_LINGER_BYTES
    """See ``DEFAULT_MAX_LINGER_BYTES``."""
    abort_timeout: float = DEFAULT_ABORT_TIMEOUT
    """See ``DEFAULT_ABORT_TIMEOUT``."""
    max_buffered_response_bytes: int = DEFAULT_MAX_BUFFERED_RESPONSE_BYTES
    """See ``DEFAULT_MAX_BUFFERED_RESPONSE_BYTES``."""
    write_piece_bytes: int = DEFAULT_WRITE_PIECE_BYTES
    """See ``DEFAULT_WRITE_PIECE_BYTES``."""
    server_header: bytes | None = DEFAULT_SERVER_HEADER
    """See ``DEFAULT_SERVER_HEADER``."""
    write_through: bool = True
    """Whether, over a plain TCP transport, responses go straight to the
    socket when nothing is buffered (``txhttp._twisted_io.write_through``)
    instead of on the reactor's next turn, and a connection closed while a
    receive is handled is closed at the end of that receive when the kernel
    took its last response whole (``txhttp._twisted_io.close_now``; its
    ``connectionLost`` then runs before ``dataReceived`` returns); decided at
    ``connectionMade``."""
    batch_writes: bool = False
    """Whether, with write-through, bytes written after another connection
    of the same reactor already wrote in this reactor turn wait for the end
    of the turn (``txhttp._twisted_io.TurnBatch``), to leave back to back
    with the others instead of one by one. Each send to a client that went
    to sleep meanwhile pays for waking it; when requests are slow (a
    twisted.web Site), that wake-up per response costs more than the
    ``callLater(0)`` per turn this costs, so Site channels turn it on."""
    limits: Limits = DEFAULT_LIMITS
    """Other wire limits (line lengths, field count, chunk lines, trailers)."""
    exchangeFactory: ExchangeFactory | None = None
    """Builds the ``Exchange`` for each request; set per instance (a function
    stored on a subclass must be a ``staticmethod``). ``None`` answers 500."""
    date_cache: DateCache | None = None
    """Shared ``Date`` cache; one is made from the clock when ``None``."""
    timers_reset_sooner_cheaply: bool = False
    """Whether the calls `callLater` returns move sooner cheaply (those of
    ``HTTPServerFactory``'s shared timers do; a reactor's ``DelayedCall``
    searches the reactor's heap, so a new call is made instead)."""

    _log: Final = Logger()

    # TimeoutMixin's own fields (its double-underscore names, mangled), which
    # the hot paths below read and write directly: typed here for mypy only.
    _TimeoutMixin__timeoutCall: IDelayedCall | None
    _TimeoutMixin__timedOut: Callable[[], None]

    _open_state: Final = ChannelState.OPEN
    """``ChannelState.OPEN``, for ``ChannelSlot`` (which cannot import it)."""

    _plain_timeouts: bool = True
    """Whether ``setTimeout`` and ``resetTimeout`` are ``TimeoutMixin``'s own
    (set per subclass): only then do the hot paths do their work inline,
    so a subclass overriding either still sees every call."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain_timeouts = (
            cls.setTimeout is TimeoutMixin.setTimeout
            and cls.resetTimeout is TimeoutMixin.resetTimeout
        )

    # Per-connection state lives in slots: an idle connection costs its
    # fields and nothing else (no per-instance dict entries, no empty
    # containers). The instance still has a ``__dict__`` (Twisted's base
    # classes have none of their own slots), which holds only what Twisted
    # sets (``transport``, ``connected``, ``factory``, the TimeoutMixin timer)
    # and any setting overridden per instance.
    __slots__ = (
        "_backlog",
        "_body_paused_by",
        "_buffered_total",
        "_client_closing",
        "_close_at_end",
        "_close_when_drained",
        "_close_write_when_drained",
        "_cork",
        "_cork_bytes",
        "_error_status",
        "_header_call",
        "_held",
        "_idle_on",
        "_idle_timeout",
        "_linger_call",
        "_lingered_bytes",
        "_no_delay_set",
        "_parser",
        "_peer_closed",
        "_processing",
        "_read_pauses",
        "_reading",
        "_registered",
        "_slots",
        "_state",
        "_t",
        "_through",
        "_transport_paused",
        "_wire_limits",
        "clock",
    )

    def __init__(self, *, clock: IReactorTime | None = None) -> None:
        self.clock = clock
        self._state = _ST_UNCONNECTED
        # Made when the first bytes arrive: a connection that never sends
        # any costs no parser.
        self._parser: RequestParser | None = None
        # The pipeline, oldest first. A list: it holds at most maxPipeline
        # slots, and an empty list is an eighth of an empty deque.
        self._slots: list[ChannelSlot] = []
        self._reading: ChannelSlot | None = None
        self._body_paused_by: ChannelSlot | None = None
        # Immutable and shared while empty (the usual case); replaced on change.
        self._read_pauses: frozenset[ReadPause] = _NO_PAUSES
        self._processing = False
        self._transport_paused = False
        # Output waiting for the transport; made only when a write must wait.
        self._backlog: deque[bytes] | None = None
        self._buffered_total = 0
        self._idle_on = False
        self._idle_timeout: float | None = None
        self._header_call: IDelayedCall | None = None
        self._linger_call: IDelayedCall | None = None
        self._peer_closed = False
        self._client_closing = False
        self._close_when_drained = False
        self._close_write_when_drained = False
        # `_close` was called in a receive: the socket closes at its end.
        self._close_at_end = False
        self._error_status: int | None = None
        self._lingered_bytes = 0
        self._no_delay_set = False
        self._t: _Transport | None = None
        # The cork: while ``dataReceived`` runs, what the responses write
        # (in order, nothing in the backlog) waits here, and goes out in one
        # write when it returns (``None``: not in a receive).
        self._cork: list[bytes] | None = None
        self._cork_bytes = 0
        # With batch_writes: bytes waiting for the end of the reactor's turn
        # (`_release_held`), ahead of anything written after them.
        self._held: bytearray | None = None
        # Whether the transport is a plain TCP connection, whose writes may
        # go straight to the socket (``write_through``).
        self._through = False
        # Whether the channel is the transport's producer yet (see
        # `_register`).
        self._registered = False
        # The parser's limits, made with the parser or the first request.
        self._wire_limits: Limits | None = None

    # -- time ---------------------------------------------------------------

    def _clock(self) -> IReactorTime:
        clock = self.clock
        if clock is None:
            # Lazy: importing the reactor installs the default one.
            from twisted.internet import reactor  # noqa: PLC0415

            clock = self.clock = reactor
        assert clock is not None
        return clock

    def callLater(
        self, period: float, func: Callable[..., object], *args: object, **kw: object
    ) -> IDelayedCall:
        """Schedule ``func`` on the injected clock (used by ``TimeoutMixin`` too)."""
        clock = self.clock
        if clock is None:
            clock = self._clock()
        return clock.callLater(period, func, *args, **kw)

    def date_value(self) -> bytes:
        """The ``Date`` field value for now, cached per second."""
        cache = self.date_cache
        if cache is None:
            cache = self.date_cache = DateCache(self._clock())
        return cache.value()

    def _advance(self, event: ChannelInput) -> ChannelState:
        previous = self._state
        try:
            self._state = _TRANSITIONS[previous, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {previous.name}"
            ) from None
        return previous

    @property
    def state(self) -> ChannelState:
        """Where the connection is in its life (read-only)."""
        return self._state

    # -- Twisted's protocol interface ---------------------------------------

    def connectionMade(self) -> None:
        """
        Start reading requests; arm the idle timeout.

        Nothing else is set up yet: the parser is made when bytes arrive, and
        TCP_NODELAY is set by the first request that keeps the connection
        open, or the first response written in several pieces (one answered
        in a single write and closed gains nothing from it: closing pushes
        out what Nagle's algorithm would hold back). The channel registers as
        the transport's producer here, except over write-through, where it
        does so before its first write (``_register``).
        """
        if self._state is _ST_UNCONNECTED:
            self._state = _AFTER_CONNECT
        else:
            self._advance(_IN_CONNECT)  # Raises.
        # Transports implement IConsumer without always declaring it (typed
        # Any rather than cast: no call, once per connection).
        transport: Any = self.transport
        assert transport is not None
        self._t = transport
        through = self._through = self.write_through and isinstance(
            transport, TCPConnection
        )
        if not through:
            self._register()
        period = self._idle_timeout = self.timeOut
        self._idle_on = True
        if self._plain_timeouts and self._TimeoutMixin__timeoutCall is None:
            # setTimeout(period), inline: no timer yet, and timeOut is
            # already ``period``.
            if period is not None:
                self._TimeoutMixin__timeoutCall = self.callLater(
                    period, self._TimeoutMixin__timedOut
                )
        else:
            self.setTimeout(period)

    def dataReceived(self, data: bytes) -> None:
        """
        Feed the parser and hand out what it finds.

        Receiving is progress: the idle timer restarts, as
        ``TimeoutMixin.resetTimeout`` does, unless the connection is closing.
        With ``TimeoutMixin``'s own ``resetTimeout`` that is done once the
        bytes were handled (a full period from then), so that a connection
        closed meanwhile, whose timer then becomes the abort deadline, moves
        it once rather than twice.

        What the responses write meanwhile waits in the cork and goes out
        when the receive ends; a close decided meanwhile happens then too,
        at once when the kernel takes the last bytes
        (``_close_after_receive``), so ``connectionLost`` may run before this
        returns.
        """
        state = self._state
        plain = self._plain_timeouts
        if not plain and state is not _ST_CLOSING:
            self.resetTimeout()
        corked = self._cork is None  # Else an outer receive owns the cork.
        if corked:
            self._cork = []
        try:
            if state is _ST_OPEN or (
                state is _ST_DRAINING and self._reading is not None
            ):
                parser = self._parser
                taken = False
                if (
                    state is _ST_OPEN
                    and not self._slots
                    and not self._processing
                    and not self._read_pauses
                    and not self._transport_paused
                    and type(data) is bytes
                    and (parser is None or parser.is_idle())
                ):
                    # The usual receive of an idle connection: one whole request
                    # without a body. The parser's own checks are applied to it
                    # without feeding it (``parse_whole_request``).
                    limits = self._wire_limits
                    if limits is None:
                        limits = self._wire_limits = self._new_limits()
                    head = parse_whole_request(data, limits)
                    if head is not None:
                        # What `_process` does with the same request from the
                        # parser, with the same exchange calls: the head, then
                        # its end (unless reading was paused meanwhile:
                        # `_end_waits`).
                        self._processing = True
                        try:
                            slot = self._head_received(head)
                            if self._reading is slot:
                                if not self._read_pauses:
                                    # requestReadFinished(END_OF_MESSAGE),
                                    # inline: with no pause, no body pause.
                                    self._reading = None
                                    slot._body_finished(END_OF_MESSAGE.trailers)
                                    if self._slots or not self._idle_on:
                                        self._update_idle_timer()
                                else:
                                    self._end_waits(head, data)
                        finally:
                            self._processing = False
                        parser = self._parser
                        if parser is None or (
                            parser.is_idle() and not self._peer_closed
                        ):
                            if (
                                self._state is _ST_OPEN
                                and (self._slots or self._transport_paused)
                                and self._reading is None
                                and not self._read_pauses
                            ):
                                # Unanswered, or the client is not reading:
                                # read no more, as `_process` would.
                                self._wait_for_room()
                            return
                        # The end waits, or bytes or the peer's close came while
                        # the handler ran: the general path takes it from here.
                        taken = True
                if parser is None:
                    parser = self._parser = self._new_parser()
                if not taken:
                    parser.feed(data)
                self._process()
                if (
                    self._header_call is None
                    and self._reading is None
                    and self._state is _ST_OPEN
                    and not self._read_pauses
                    and parser.buffered_bytes
                    and self.header_timeout is not None
                ):
                    self._header_call = self.callLater(
                        self.header_timeout, self._header_timed_out
                    )
            elif state is _ST_LINGERING:
                self._lingered_bytes += len(data)
                if self._lingered_bytes > self.max_linger_bytes:
                    self._close()
        finally:
            if corked:
                cork = self._cork
                self._cork = None
                if self._close_at_end:
                    self._close_at_end = False
                    assert cork is not None
                    self._close_after_receive(cork)
                elif cork:
                    self._cork_bytes = 0
                    self._write(cork[0] if len(cork) == 1 else b"".join(cork))
            if plain:
                state = self._state
                if state is not _ST_CLOSING and state is not _ST_CLOSED:
                    # resetTimeout(), inline: once per receive.
                    call = self._TimeoutMixin__timeoutCall
                    if call is not None:
                        period = self.timeOut
                        if period is not None:
                            call.reset(period)

    def _new_limits(self) -> Limits:
        return _effective_limits(self.limits, self.maxHeaderLength, self.max_body_bytes)

    def _new_parser(self) -> RequestParser:
        limits = self._wire_limits
        if limits is None:
            limits = self._wire_limits = self._new_limits()
        return RequestParser(limits)

    def _end_waits(self, head: RequestHead, data: bytes) -> None:
        """
        Reading was paused while a whole request's exchange started.

        ``data`` held all of that request (``parse_whole_request`` took it
        without the parser): the parser is fed it again and moved past its
        head, so that its end waits there, before any bytes received while
        the exchange ran, as if the parser had read it in the first place.
        """
        if _PAUSE_ABORTED in self._read_pauses:
            return  # Nothing more is read: connectionLost tells the exchange.
        parser = self._parser
        later = parser.take_leftover() if parser is not None else b""
        parser = self._parser = self._new_parser()
        parser.feed(data)
        if parser.next_event() != head:
            raise RuntimeError("bug: the parser disagrees on a request")
        parser.feed(later)
        if self._peer_closed:  # Told meanwhile (readConnectionLost).
            parser.feed_eof()

    def readConnectionLost(self) -> None:
        """The peer closed its sending side."""
        state = self._state
        match state:
            case ChannelState.OPEN | ChannelState.DRAINING:
                self._peer_closed = True
                if state is _ST_OPEN or self._reading is not None:
                    parser = self._parser
                    if parser is None:
                        parser = self._parser = self._new_parser()
                    parser.feed_eof()
                    self._process()
                if self._state is _ST_DRAINING:
                    self._maybe_finish()
            case ChannelState.LINGERING:
                self._close()
            case ChannelState.UNCONNECTED | ChannelState.CLOSING | ChannelState.CLOSED:
                pass
            case _:
                assert_never(state)

    def writeConnectionLost(self) -> None:
        """Our write side is closed: linger until the peer closes, or the wait."""
        if self._state is _ST_LINGERING and self._linger_call is None:
            self.setTimeout(None)
            self._idle_on = False
            self._linger_call = self.callLater(self.linger_timeout, self._linger_done)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Tell every exchange still waiting, and cancel every timer."""
        previous = self._state
        self._state = _AFTER_LOST  # Whatever the state (see _TRANSITIONS).
        if self._plain_timeouts:
            # setTimeout(None), inline: once per connection.
            self.timeOut = None
            call = self._TimeoutMixin__timeoutCall
            if call is not None:
                self._TimeoutMixin__timeoutCall = None
                try:  # noqa: SIM105 (no context manager on this path)
                    call.cancel()
                except (AlreadyCancelled, AlreadyCalled):
                    pass
        else:
            self.setTimeout(None)
        self._idle_on = False
        if self._cork:
            self._take_cork()  # Dropped: gone with the transport.
        self._held = None  # The same.
        if (
            previous is _ST_CLOSING
            and self._header_call is None
            and self._linger_call is None
            and self._backlog is None
            and not self._slots
            and self._reading is None
        ):
            # The usual end (we closed after the last response): no other
            # timer, no output and no exchange left to tell.
            return
        for call in (self._header_call, self._linger_call):
            if call is not None and call.active():
                call.cancel()
        self._header_call = self._linger_call = None
        self._drop_backlog()
        match previous:
            case ChannelState.CLOSED | ChannelState.UNCONNECTED:
                return
            case (
                ChannelState.OPEN
                | ChannelState.DRAINING
                | ChannelState.LINGERING
                | ChannelState.CLOSING
            ):
                pass
            case _:
                assert_never(previous)
        self._lose_all(reason)

    def _lose_all(self, reason: Failure) -> None:
        """Lose every request in progress: each exchange is told ``reason``."""
        # Emptied in place: a loop over the pipeline further up the stack
        # (requestWriteFinished) must see it empty, not carry on.
        slots = self._slots.copy()
        self._slots.clear()
        reading = self._reading
        self._reading = None
        for slot in slots:
            slot._lose(reason)
        if reading is not None and reading not in slots:
            reading._lose(reason)

    # -- the transport as our consumer (IPushProducer) ---------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: stop the response's producer."""
        if self._transport_paused:
            return
        self._transport_paused = True
        if self._slots:
            self._slots[0]._sync_producer()
        self._update_idle_timer()

    def resumeProducing(self) -> None:
        """The transport drained: that is progress; send more."""
        if not self._transport_paused:
            return
        self._transport_paused = False
        if self._state is not _ST_CLOSING:
            self.resetTimeout()
        self._drain_backlog()
        if self._transport_paused:
            return
        if self._slots:
            self._slots[0]._sync_producer()
        self._update_idle_timer()
        if _PAUSE_WRITE_BLOCKED in self._read_pauses:
            self._resume_reading(_PAUSE_WRITE_BLOCKED)

    def stopProducing(self) -> None:
        """
        The transport is going away; its ``connectionLost`` follows.

        Nothing is done here: `connectionLost` stops each response's
        producer as it loses the response's slot (``ChannelSlot._lose``),
        after marking the slot lost. Stopped here first, while the
        connection still looked open, a producer could finish its response
        from its ``stopProducing`` (and the exchange be told it was sent on
        a dead connection) or fail there (and the abort that follows leave
        the exchange untold), depending on whether the channel had
        registered with its transport yet (``_register``).
        """

    # -- addresses ---------------------------------------------------------

    def getPeer(self) -> IAddress:
        """The address of the client."""
        transport = self._t
        assert transport is not None
        return transport.getPeer()

    def getHost(self) -> IAddress:
        """
        The local address of this connection.

        Raises:
            twisted.internet.error.ConnectionDone: The connection is closed
                and its transport no longer knows (Twisted's TCP transport
                asks its socket, which it drops when closed; a connection
                closed at the end of a receive is closed before
                ``dataReceived`` returns).
        """
        transport = self._t
        assert transport is not None
        try:
            return transport.getHost()
        except AttributeError:
            if self._state is not _ST_CLOSED:
                raise
            raise ConnectionDone(
                "the connection is closed: its local address is no longer known"
            ) from None

    def isSecure(self) -> bool:
        """Whether the connection is TLS."""
        return ISSLTransport.providedBy(self.transport)

    # -- reading -------------------------------------------------------------

    def _wait_for_room(self) -> bool:
        """
        Before the next request head: pause reading if ``maxPipeline``
        requests are in progress, or the client is not reading our
        responses (the transport paused us). True if reading was paused.
        """
        if len(self._slots) >= self.maxPipeline:
            self._pause_reading(_PAUSE_PIPELINE)
            return True
        if self._transport_paused:
            self._pause_reading(_PAUSE_WRITE_BLOCKED)
            return True
        return False

    def _process(self) -> None:
        """Hand out parser events until none is ready or reading must wait."""
        if self._processing:
            return
        parser = self._parser
        if parser is None:
            return
        self._processing = True
        next_event = parser.next_event
        slots = self._slots  # Never replaced, only changed in place.
        max_pipeline = self.maxPipeline
        try:
            while not self._read_pauses:
                if self._reading is None:
                    if self._state is not _ST_OPEN:
                        break
                    if (
                        len(slots) >= max_pipeline or self._transport_paused
                    ) and self._wait_for_room():
                        break
                try:
                    event = next_event()
                except RemoteProtocolError as error:
                    self._wire_error(error)
                    break
                if event is None:
                    break
                # Most frequent first; isinstance is a C fast path here.
                if isinstance(event, RequestHead):
                    slot = self._head_received(event)
                    if (
                        slot._body_done
                        and self._reading is slot
                        and not self._read_pauses
                    ):
                        # A bodiless head's next event is its end, which
                        # cannot fail: take it without another loop.
                        end = next_event()
                        if not isinstance(end, EndOfMessage):
                            raise RuntimeError(f"bug: {end!r} after a bodiless head")
                        self.requestReadFinished(end)
                elif isinstance(event, EndOfMessage):
                    self.requestReadFinished(event)
                elif isinstance(event, bytes):
                    reading = self._reading
                    assert reading is not None
                    exchange = reading.exchange
                    if exchange is not None and not reading._lost_notified:
                        self._call_exchange(exchange.body_received, event)
                else:
                    assert isinstance(event, ConnectionClosed)
                    self._peer_closed = True
                    self.setReadPersistent(False)
                    self._maybe_finish()
        finally:
            self._processing = False

    def _head_received(self, head: RequestHead) -> ChannelSlot:
        """Start the exchange of a new request at the end of the pipeline."""
        call = self._header_call
        if call is not None:
            self._header_call = None
            call.cancel()
        slots = self._slots
        slot = ChannelSlot(self, head, not slots)
        slots.append(slot)
        self._reading = slot
        if not head.keep_alive:
            # The client asked for the close (or spoke HTTP/1.0 without
            # keep-alive): it sends nothing after this request (RFC 9112,
            # section 9.6).
            self._client_closing = True
            if self._state is _ST_OPEN:  # _stop_reading(), inline
                self._state = _OPEN_STOP_READING
            else:
                self._stop_reading()
        elif head.method == b"CONNECT":
            # We do not tunnel: nothing after a CONNECT is read as HTTP.
            self.setReadPersistent(False)
        elif not self._no_delay_set:
            self._set_no_delay()
        factory = self.exchangeFactory
        try:
            exchange = (
                factory(self, head, slot) if factory is not None else _NoHandler(slot)
            )
        except Exception:
            self._log.failure("exchange factory failed")
            exchange = _NoHandler(slot)
        slot.exchange = exchange
        try:
            exchange.start()
        except Exception:
            self._exchange_failed(exchange.start)
        return slot

    def _set_no_delay(self) -> None:
        """The connection is kept open: send small responses without delay."""
        self._no_delay_set = True
        transport = self.transport
        if ITCPTransport.providedBy(transport):
            transport.setTcpNoDelay(True)

    def requestReadFinished(self, end: EndOfMessage) -> None:
        """The request being read is complete: tell its exchange."""
        slot = self._reading
        assert slot is not None
        self._reading = None
        if self._body_paused_by is slot:
            self._body_paused_by = None
            self._read_pauses = self._read_pauses - {_PAUSE_BODY}
        slot._body_finished(end.trailers)
        if self._slots or not self._idle_on:  # Else it would change nothing.
            self._update_idle_timer()

    def setReadPersistent(self, persistent: bool) -> None:
        """
        Whether to read another request after the current one.

        Only ``False`` has an effect (a connection never becomes persistent
        again): no further request head is parsed, and the connection closes
        once the responses owed are written.
        """
        if not persistent:
            self._stop_reading()

    def _stop_reading(self) -> None:
        """Read no further request head (``setReadPersistent(False)``)."""
        state = self._state
        if state is _ST_OPEN:
            self._state = _OPEN_STOP_READING
        elif state is not _ST_DRAINING:
            self._advance(_IN_STOP_READING)

    def isLastRequest(self, slot: ChannelSlot) -> bool:
        """Whether no request will follow ``slot``'s on this connection."""
        return self._state is not _ST_OPEN and (
            not self._slots or self._slots[-1] is slot
        )

    def dropQueuedRequests(self, slot: ChannelSlot) -> None:
        """
        ``slot``'s response closes the connection: drop the requests after it.

        Their exchanges get ``Exchange.connection_lost`` with ``RequestDropped``,
        and no further request is read.
        """
        state = self._state
        if state is _ST_OPEN:  # setReadPersistent(False), inline
            self._state = _OPEN_STOP_READING
        elif state is not _ST_DRAINING:
            self._advance(_IN_STOP_READING)
        slots = self._slots
        if not slots or slots[-1] is slot:
            return
        dropped: list[ChannelSlot] = []
        while slots and slots[-1] is not slot:
            dropped.append(slots.pop())
        if self._reading in dropped:
            self._reading = None
        if self._body_paused_by in dropped:
            self._body_paused_by = None
            self._read_pauses = self._read_pauses - {_PAUSE_BODY}
        reason = Failure(RequestDropped("an earlier response closed the connection"))
        for later in reversed(dropped):
            later._lose(reason)

    def _wire_error(self, error: RemoteProtocolError) -> None:
        """The peer broke HTTP/1.1: answer its status, never resynchronise."""
        self._log.info(
            "rejected request from {peer}: {error}",
            peer=self._t.getPeer() if self._t is not None else None,
            error=error,
        )
        call = self._header_call
        if call is not None:
            self._header_call = None
            call.cancel()
        self.setReadPersistent(False)
        slot = self._reading
        if slot is None:
            self._error_status = error.status
        else:
            self._reading = None
            if _PAUSE_BODY in self._read_pauses:
                self._read_pauses = self._read_pauses - {_PAUSE_BODY}
            self._body_paused_by = None
            fresh = slot.is_fresh()
            slot._lose_body(Failure(error))
            if fresh and slot in self._slots:
                slot.write_error(error.status)
            else:
                slot.abort()
        self._maybe_finish()

    def _header_timed_out(self) -> None:
        self._header_call = None
        if self._state is not _ST_OPEN or self._reading is not None:
            return
        self._log.info("request head too slow from {peer}", peer=self.getPeer())
        self.setReadPersistent(False)
        self._error_status = 408
        self._maybe_finish()

    # -- read flow control ---------------------------------------------------

    def _transport_open(self) -> _Transport | None:
        """The transport, unless it was asked to close (or is gone)."""
        state = self._state
        if state is _ST_CLOSING or state is _ST_CLOSED:
            return None
        return self._t

    def _pause_reading(self, reason: ReadPause) -> None:
        pauses = self._read_pauses
        if not pauses:
            transport = self._transport_open()
            if transport is not None:
                transport.pauseProducing()
        self._read_pauses = pauses | {reason}

    def _resume_reading(self, reason: ReadPause) -> None:
        pauses = self._read_pauses
        if reason not in pauses:
            return
        pauses = self._read_pauses = pauses - {reason}
        if not pauses:
            transport = self._transport_open()
            if transport is not None:
                transport.resumeProducing()
            self._process()

    def _pause_body(self, slot: ChannelSlot) -> None:
        if self._reading is slot and self._body_paused_by is None:
            self._body_paused_by = slot
            self._pause_reading(_PAUSE_BODY)
            self._update_idle_timer()

    def _resume_body(self, slot: ChannelSlot) -> None:
        if self._body_paused_by is slot:
            self._body_paused_by = None
            self._resume_reading(_PAUSE_BODY)
            self._update_idle_timer()

    # -- writing ---------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Write ``data`` in pipeline order, in pieces the transport can drain."""
        backlog = self._backlog
        if backlog or self._transport_paused:
            self._uncork()
            if backlog is None:
                backlog = self._backlog = deque()
            backlog.append(data)
        elif len(data) > self.write_piece_bytes:
            self._uncork()
            self._backlog = deque((data,))
            self._drain_backlog()
        else:
            self._out(data)

    def _out(self, data: bytes) -> None:
        """
        Write ``data``, next in order, with no backlog and within a piece.

        During a receive, while the connection is open or drains toward a
        close, it joins the cork (sent when ``dataReceived`` returns, or at
        once past ``write_piece_bytes``; a close in the receive sends it last,
        see `_close_after_receive`); otherwise it is written now (see
        `_write`), after what the cork holds.
        """
        cork = self._cork
        state = self._state
        if cork is None or (state is not _ST_OPEN and state is not _ST_DRAINING):
            if cork:
                self._uncork()
            self._write(data)
            return
        cork.append(data)
        size = self._cork_bytes = self._cork_bytes + len(data)
        if size > self.write_piece_bytes:
            self._uncork()

    def _register(self) -> None:
        """
        Register as the transport's (streaming) producer.

        Over write-through this waits for the first write that can leave
        bytes in the transport's buffer (`_write`, whose bytes the turn
        batch may hold, and `_drain_backlog`): until then the transport has
        nothing to pause us for and nothing to resume us after, and a
        response sent whole as the connection closes (`close_now`) never
        needs it. That saves about a third of a microsecond per connection:
        the registration, and the transport's ``stopProducing`` at the
        close. Bytes left unsent by a close, or handed over before an abort
        (`_cork_to_buffer`), need no flow control: nothing is written after
        them. The responses' own producers are stopped as their slots are
        lost (``ChannelSlot._lose``), registered or not.
        """
        self._registered = True
        transport = self._t
        if transport is not None:
            transport.registerProducer(self, True)

    def _write(self, data: bytes) -> None:
        """
        Hand ``data`` to the transport: through to a plain TCP socket.

        Only while the connection is open (and, with ``batch_writes``, only
        the first write of the reactor's turn: later ones wait for its end,
        see `_write_in_turn`): once it drains toward a close, the close
        costs the transport's write turn anyway (Twisted's
        ``loseConnection`` waits for it, and that turn sends even an empty
        buffer), so the bytes are buffered for it, after anything held, one
        send instead of two. (A close during a receive sends them itself:
        `_close_after_receive`.)
        """
        if not self._registered:
            self._register()
        transport = self._t
        assert transport is not None
        if self._through and self._state is _ST_OPEN:
            if self.batch_writes:
                self._write_in_turn(cast(TCPConnection, transport), data)
            else:
                write_through(cast(TCPConnection, transport), data)
        else:
            if self._held is not None:
                self._release_held()
            transport.write(data)

    def _write_in_turn(self, transport: TCPConnection, data: bytes) -> None:
        """
        ``batch_writes``: through now if first in this reactor turn, else held.

        Held bytes go out at the end of the turn (`_release_held`, called by
        the reactor's `TurnBatch`), or before any other transport call of
        this channel, or as soon as they pass ``write_piece_bytes``.
        """
        held = self._held
        if held is not None:
            held += data
            if len(held) > self.write_piece_bytes:
                self._release_held()
            return
        # A TCP transport's reactor is an IReactorTime too (typed as FDSet).
        reactor = cast(IReactorTime, transport.reactor)
        batch = turn_batch_for(reactor)
        if batch.begin(reactor) or len(data) > self.write_piece_bytes:
            # The turn's first write, or past the bound on what is held
            # already (a cork of several responses): now.
            write_through(transport, data)
        else:
            self._held = bytearray(data)
            batch.add(self._release_held, reactor)

    def _release_held(self) -> None:
        """Write what waits for the end of the turn, now (see `_write_in_turn`)."""
        held = self._held
        if held is None:
            return
        self._held = None
        transport = self._t
        if not held or transport is None:
            return
        data = bytes(held)
        if self._state is _ST_OPEN:
            write_through(cast(TCPConnection, transport), data)
        else:
            transport.write(data)

    def _take_cork(self) -> bytes:
        """Empty the cork; what it held, joined (empty if nothing)."""
        cork = self._cork
        if not cork:
            return b""
        data = cork[0] if len(cork) == 1 else b"".join(cork)
        cork.clear()
        self._cork_bytes = 0
        return data

    def _uncork(self) -> None:
        """Write what the cork holds now (before any other transport call)."""
        if self._cork:
            self._write(self._take_cork())

    def _cork_to_buffer(self) -> None:
        """
        Before an abort: hand what the cork holds to ``transport.write``.

        Never written through: as before the cork, those bytes sit in the
        transport's buffer, which the abort throws away (a test transport
        keeps them).
        """
        if self._held is not None:
            self._release_held()
        data = self._take_cork()
        transport = self._t
        if data and transport is not None:
            transport.write(data)

    def _drain_backlog(self) -> None:
        if self._held is not None:
            self._release_held()
        backlog = self._backlog
        if backlog:
            if not self._registered:
                self._register()
            piece = self.write_piece_bytes
            transport = self._t
            assert transport is not None
            while backlog and not self._transport_paused:
                data = backlog[0]
                if len(data) > piece:
                    backlog[0] = data[piece:]
                    data = data[:piece]
                else:
                    backlog.popleft()
                transport.write(data)
            if backlog:
                return
        self._backlog = None
        if self._close_write_when_drained:
            self._close_write_when_drained = False
            self._close_write()
        elif self._close_when_drained:
            self._close_when_drained = False
            self._close()

    def _drop_backlog(self) -> None:
        backlog = self._backlog
        if backlog is not None:
            backlog.clear()  # In place: a drain loop may be holding it.
            self._backlog = None

    def _is_output_blocked(self) -> bool:
        return self._transport_paused or bool(self._backlog)

    def _is_over_buffer(self) -> bool:
        return self._buffered_total > self.max_buffered_response_bytes

    def _buffer_grew(self, count: int) -> None:
        was_over = self._is_over_buffer()
        self._buffered_total += count
        if not was_over and self._is_over_buffer():
            for slot in self._slots:
                if not slot._at_front:
                    slot._sync_producer()

    def _buffer_shrank(self, count: int) -> None:
        was_over = self._is_over_buffer()
        self._buffered_total -= count
        if was_over and not self._is_over_buffer():
            for slot in list(self._slots):
                if not slot._at_front:
                    slot._sync_producer()

    def requestWriteFinished(self, slot: ChannelSlot) -> None:
        """
        The response at the head of the pipeline is complete: move on.

        Later responses already complete go out at once, in order; when a
        response forced a close, the connection closes after it.
        """
        slots = self._slots
        if not slots or slots[0] is not slot:
            raise RuntimeError("bug: only the head of the pipeline can finish")
        while slots and slots[0]._state is _SLOT_DONE:
            front = slots.pop(0)
            front._state = AFTER_SEND  # The fixed move DONE -> SENT.
            exchange = front.exchange
            # After connection_lost nothing else is called (the Exchange
            # contract): a response cut by a wire error mid-body is not "sent".
            if exchange is not None and not front._lost_notified:
                try:
                    exchange.response_sent()
                except Exception:
                    self._exchange_failed(exchange.response_sent)
                if front._body_done and self._reading is not front:
                    # Done with it (see ChannelSlot._release), unless its end
                    # is still to be told: a bodiless request answered
                    # before its end was read.
                    front.exchange = None
            if not front._persistent:
                # (Dropped already when it stopped being persistent, unless
                # requests came since or reading goes on.)
                if slots or self._state is _ST_OPEN:
                    self.dropQueuedRequests(front)
                break
            if slots:
                slots[0]._promote()
        pauses = self._read_pauses
        if pauses and _PAUSE_PIPELINE in pauses and len(slots) < self.maxPipeline:
            self._resume_reading(_PAUSE_PIPELINE)
        if slots or not self._idle_on:  # Else it would change nothing.
            self._update_idle_timer()
        if self._state is _ST_DRAINING:
            self._maybe_finish()

    def _maybe_finish(self) -> None:
        """Close once no request will be read and no response is owed."""
        if self._state is not _ST_DRAINING or self._slots or self._close_when_drained:
            return
        reading = self._reading
        if reading is not None:
            self._reading = None
            if reading._state is not AFTER_SEND or not reading._body_done:
                # (Not ChannelSlot.is_settled: a call less per close.)
                reading._lose(Failure(ConnectionDone("closing after the response")))
            elif reading.exchange is not None:
                # Answered and sent before its end was read, which is all
                # there is of a bodiless request: tell that end now.
                reading._body_finished(())
            if self.state is not _ST_DRAINING:  # (Read anew: it may move.)
                return  # The exchange failed: the connection was aborted.
        status = self._error_status
        if status is not None:
            self._error_status = None
            self._send(
                error_response(status, self.date_value(), self.server_header, HTTP_1_1)
            )
        if self._peer_closed or (
            # The client announced the close, its last request was read to
            # the end and nothing else arrived: no unread input can turn the
            # close into a reset, so lingering would only cost a round trip
            # (RFC 9112, section 9.6).
            status is None
            and self._client_closing
            and (reading is None or reading._body_done)
            # (No parser: every request came whole, see dataReceived.)
            and (self._parser is None or not self._parser.buffered_bytes)
        ):
            if self._backlog:
                # Close once the response is written, never cut it short.
                self._close_when_drained = True
            else:
                self._close()
        else:
            self.lingeringClose()

    def lingeringClose(self) -> None:
        """
        Close gently: finish writing, close our write side, discard input.

        The connection closes when the peer closes its side, after
        ``linger_timeout``, or once ``max_linger_bytes`` were discarded. Over TLS
        or a transport without half-close, it simply closes after writing.
        """
        self._advance(_IN_LINGER)
        # Discarding input needs reading on, whatever paused it: a pause
        # dropped along with its request (dropQueuedRequests) may have left
        # the transport paused with no reason recorded.
        self._read_pauses = _NO_PAUSES
        transport = self._t
        if transport is not None:
            transport.resumeProducing()
        if self._backlog:
            self._close_write_when_drained = True
        else:
            self._close_write()

    def _close_write(self) -> None:
        if self._state is not _ST_LINGERING:
            return
        self._uncork()
        if self._held is not None:
            self._release_held()
        transport = self.transport
        if ITCPTransport.providedBy(transport) and not ISSLTransport.providedBy(
            transport
        ):
            # Only plain TCP closes one direction: TLS has no half-close.
            transport.loseWriteConnection()
        else:
            self._close()

    def _linger_done(self) -> None:
        self._linger_call = None
        self._close()

    def _close(self) -> None:
        """Close the transport once its buffer is written (abort if stuck)."""
        previous = self._state
        if previous is _ST_DRAINING:
            self._state = _DRAINING_CLOSE
        elif previous is _ST_CLOSED:
            return
        else:
            self._advance(_IN_CLOSE)
            if previous is _ST_CLOSING:
                return
        transport = self._t
        assert transport is not None
        if self._backlog:
            self._drop_backlog()
            self._abort()
            return
        if self._cork is not None and self._through and not self.batch_writes:
            # In a receive: the cork goes out last, when the receive ends,
            # and the socket closes then if the kernel takes it all
            # (`_close_after_receive`). Not with batch_writes: sent and
            # closed one by one, each close wakes its client (measured 12%
            # more CPU per connection for a Site); the reactor's write turn
            # sends and closes them back to back.
            self._close_at_end = True
            return
        self._uncork()
        if self._held is not None:
            self._release_held()
        transport.loseConnection()
        self._arm_abort_timer()

    def _close_after_receive(self, cork: list[bytes]) -> None:
        """
        End of the receive in which `_close` was called: send, then close.

        What the responses wrote (``cork``) goes to the socket; when the
        kernel takes all of it, the socket is closed at once
        (``close_now``: ``connectionLost`` runs before this returns, the last
        thing the receive does). Else the transport closes once it has
        written the rest (``loseConnection``).
        """
        data = cork[0] if len(cork) == 1 else b"".join(cork)
        self._cork_bytes = 0
        # (Nothing is held: a batching channel never closes this way.)
        transport = self._t
        assert transport is not None
        if self._state is not _ST_CLOSING:
            # Lost meanwhile: what is left goes nowhere, as any late write.
            if data:
                transport.write(data)
            return
        # (A TCPConnection: only write-through channels close here. Not a
        # cast: no call, once per connection.)
        if close_now(transport, data):  # type: ignore[arg-type]
            return
        transport.loseConnection()
        self._arm_abort_timer()

    def _arm_abort_timer(self) -> None:
        """After ``loseConnection``: the idle timer becomes the abort timer."""
        if self._state is _ST_CLOSING:
            # The idle timer becomes the abort timer (no progress resets it
            # from now on). A new call, not a reset, unless the timers move
            # sooner cheaply: moving a reactor's timer sooner searches its
            # whole heap.
            self._idle_on = True
            abort = self.abort_timeout
            call = self._TimeoutMixin__timeoutCall
            if (
                call is not None
                and self.timers_reset_sooner_cheaply
                and self._plain_timeouts
            ):
                # setTimeout(abort), inline: once per connection we close.
                self.timeOut = abort
                call.reset(abort)
                return
            if not self.timers_reset_sooner_cheaply:
                self.setTimeout(None)
            self.setTimeout(abort)

    # -- timeouts --------------------------------------------------------------

    def _update_idle_timer(self) -> None:
        """
        Run the idle timer only while waiting on the peer, not on a handler.

        While a handler holds the connection, the timer is left running and
        `timeoutConnection` re-arms it instead of closing; once the peer is
        waited on again, it is pushed a whole period ahead. Cancelling and
        re-creating it around every slow request would cost two reactor timer
        operations each time; pushing a timer later costs nothing.
        """
        state = self._state
        if state is not _ST_OPEN and state is not _ST_DRAINING:
            return
        want = (
            not self._slots
            or self._transport_paused
            or bool(self._backlog)
            or (self._reading is not None and self._body_paused_by is None)
        )
        if want is not self._idle_on:
            self._idle_on = want
            if want:
                # Resets the running timer (or starts one): a full period.
                self.setTimeout(self._idle_timeout)

    def timeoutConnection(self) -> None:
        """
        The peer made no progress for ``timeOut`` seconds: close.

        A client that stopped reading a response is aborted; one that stopped
        sending a request has its exchange told, then is closed. While a
        handler holds the connection, nothing happens but the timer restarting
        (see ``_update_idle_timer``).
        """
        state = self._state
        if not self._idle_on and (state is _ST_OPEN or state is _ST_DRAINING):
            self.setTimeout(self._idle_timeout)
            return
        self._idle_on = False
        self._log.info("timing out {peer}", peer=self.getPeer())
        match state:
            case ChannelState.OPEN | ChannelState.DRAINING:
                if self._is_output_blocked():
                    self._advance(_IN_CLOSE)
                    self._abort()
                    return
                self._lose_all(Failure(TimeoutError("no progress from the client")))
                self._close()
            case ChannelState.LINGERING | ChannelState.CLOSING:
                self._close_at_end = False
                self._abort()
            case ChannelState.UNCONNECTED | ChannelState.CLOSED:
                pass
            case _:
                assert_never(state)

    # -- helpers ---------------------------------------------------------------

    def _call_exchange(self, method: Callable[..., object], *args: Any) -> None:
        """Call into an exchange or producer; a failure there closes us."""
        try:
            method(*args)
        except Exception:
            self._exchange_failed(method)

    def _exchange_failed(self, method: Callable[..., object]) -> None:
        """
        Log the exception being handled, raised by ``method``; abort, and
        tell every exchange in progress (the failed one too) the loss.
        """
        self._log.failure("exchange failed: {method!r}", method=method)
        # Stop the read loop here: the failed exchange (and any other) must
        # not be handed more body or its end.
        self._read_pauses = self._read_pauses | {_PAUSE_ABORTED}
        if self._t is not None and self._state is not _ST_CLOSED:
            if self._state is not _ST_CLOSING:
                self._advance(_IN_CLOSE)
            self._close_at_end = False
            self._abort()
            # Told now, not by the connectionLost the abort brings (a turn
            # later over TCP): until then a response finished by another
            # exchange would be taken for sent.
            self._lose_all(Failure(ConnectionAborted("an exchange failed")))

    def _abort(self) -> None:
        """
        Abort the transport, once the state says the connection is closing.

        What waits in the cork or for the end of the reactor's turn
        (``batch_writes``) goes to the transport's buffer first
        (`_cork_to_buffer`), which the abort throws away: nothing is left to
        be written to the aborted transport later.
        """
        self._cork_to_buffer()
        transport = self._t
        if transport is not None:
            transport.abortConnection()


class _NoHandler:
    """The exchange used when no factory is set: answers 500."""

    def __init__(self, slot: ChannelSlot) -> None:
        self._slot = slot

    def start(self) -> None:
        HTTPChannel._log.error("HTTPChannel has no exchangeFactory")
        self._slot.write_error(500)

    def body_received(self, data: bytes) -> None:
        pass

    def body_complete(self, trailers: object) -> None:
        pass

    def response_sent(self) -> None:
        pass

    def connection_lost(self, reason: Failure) -> None:
        pass
