# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
``ChannelSlot``: the channel's implementation of ``ResponseSlot``.

A slot is one request's place in a connection's response pipeline. It holds
that response's output until the responses before it are written, chooses the
framing of native responses (RFC 9112, section 6), sends ``100 Continue`` when
the body is wanted, and relays flow control between the channel and the
response's producer. The slot and ``HTTPChannel`` are one unit split in two
modules: the slot calls the channel's underscore methods, and nothing else
may. Serialization goes through ``txhttp._wire``: a response head is joined
directly only when its status line, field names and field values were each
already produced or accepted by the wire core's serializer (its bounded memo,
`txhttp._wire._serialize.ACCEPTED_NAMES` and friends), so nothing unvalidated
reaches the wire; a head joined that way is remembered (less its ``Date``) for
the next identical response. A whole response at the head of the pipeline is
written in one step, taking the fixed moves of the one transition table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum, auto
from functools import cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Final, TypeAlias, cast

from twisted.internet.interfaces import (
    IAddress,
    IProducer,
    IPullProducer,
    IPushProducer,
    ISSLTransport,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from txhttp._wire import (
    HTTP_1_0,
    BodyKind,
    Fields,
    LocalProtocolError,
    RequestHead,
    encode_chunk,
    encode_last_chunk,
    serialize_response_head,
)
from txhttp._wire._serialize import (
    ACCEPTED_NAMES,
    ACCEPTED_STATUS_LINES,
    ACCEPTED_VALUES,
)
from txhttp.server._exchange import Exchange

if TYPE_CHECKING:
    from txhttp.server._channel import HTTPChannel

_log = Logger()

REASONS: Final[dict[int, bytes]] = {
    status.value: status.phrase.encode("ascii") for status in HTTPStatus
}
"""Reason phrases of the registered status codes (RFC 9110, section 15)."""


def reason_for(status: int) -> bytes:
    """Return the standard reason phrase for ``status`` (``b""`` if unknown)."""
    return REASONS.get(status, b"")


@cache
def continue_head() -> bytes:
    """The interim ``100 Continue`` response (RFC 9110, section 15.2.1)."""
    return serialize_response_head(100, b"Continue", ())


def error_response(
    status: int, date: bytes, server: bytes | None, version: bytes
) -> bytes:
    """
    Return a whole plain-text error response that closes the connection.

    The body is the status code and reason phrase only: it never echoes any
    part of the request.
    """
    reason = reason_for(status)
    body = b"%d %s\n" % (status, reason)
    fields = [
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", b"%d" % len(body)),
        (b"Connection", b"close"),
        (b"Date", date),
    ]
    if server is not None:
        fields.append((b"Server", server))
    return serialize_response_head(status, reason, fields, version) + body


class SlotState(Enum):
    """Where one response is in its life."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    FRESH = auto()
    """Nothing written yet."""
    RAW = auto()
    """Raw bytes (a self-framed response) are being written."""
    STREAMING = auto()
    """A framed head was written; body bytes follow."""
    DONE = auto()
    """The response is complete (possibly still buffered behind others)."""
    SENT = auto()
    """Every byte was handed to the channel's output, in order."""
    LOST = auto()
    """The connection went away (or the request was dropped) before that."""


class SlotInput(Enum):
    """What happens to a slot."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    WRITE_RAW = auto()
    WRITE_HEAD = auto()
    FINISH = auto()
    ABORT = auto()
    SEND = auto()
    LOSE = auto()


# Enum members as plain globals: reading one through its class costs about
# ten times as much on Python 3.11, and the hot paths read many.
_BODY_NONE: Final = BodyKind.NONE
_IN_ABORT: Final = SlotInput.ABORT
_IN_FINISH: Final = SlotInput.FINISH
_IN_LOSE: Final = SlotInput.LOSE
_IN_SEND: Final = SlotInput.SEND
_IN_WRITE_HEAD: Final = SlotInput.WRITE_HEAD
_IN_WRITE_RAW: Final = SlotInput.WRITE_RAW
_ST_DONE: Final = SlotState.DONE
_ST_FRESH: Final = SlotState.FRESH
_ST_LOST: Final = SlotState.LOST
_ST_RAW: Final = SlotState.RAW
_ST_SENT: Final = SlotState.SENT
_ST_STREAMING: Final = SlotState.STREAMING


_TRANSITIONS: Final[dict[tuple[SlotState, SlotInput], SlotState]] = {
    (_ST_FRESH, _IN_WRITE_RAW): _ST_RAW,
    (_ST_RAW, _IN_WRITE_RAW): _ST_RAW,
    (_ST_FRESH, _IN_WRITE_HEAD): _ST_STREAMING,
    (_ST_FRESH, _IN_FINISH): _ST_DONE,
    (_ST_RAW, _IN_FINISH): _ST_DONE,
    (_ST_STREAMING, _IN_FINISH): _ST_DONE,
    (_ST_FRESH, _IN_ABORT): _ST_DONE,
    (_ST_RAW, _IN_ABORT): _ST_DONE,
    (_ST_STREAMING, _IN_ABORT): _ST_DONE,
    (_ST_DONE, _IN_ABORT): _ST_DONE,
    (_ST_DONE, _IN_SEND): _ST_SENT,
    # Losing the connection is final, and harmless once everything is sent.
    **{(state, _IN_LOSE): _ST_LOST for state in SlotState if state is not _ST_SENT},
    (_ST_SENT, _IN_LOSE): _ST_SENT,
}
"""The legal moves of a slot; anything else is a bug in the caller."""

# Moves whose outcome is fixed, read from the table once for the hot paths
# (a response written whole and then sent), which then skip `_advance`.
_AFTER_WRITE_HEAD: Final = _TRANSITIONS[_ST_FRESH, _IN_WRITE_HEAD]
_AFTER_FINISH: Final = _TRANSITIONS[_AFTER_WRITE_HEAD, _IN_FINISH]
AFTER_SEND: Final = _TRANSITIONS[_ST_DONE, _IN_SEND]
"""Where a complete response goes once sent (``HTTPChannel`` moves it)."""

_NO_CONTENT_STATUSES: Final = frozenset({204, 304})
"""Statuses whose responses never have a body (RFC 9110, 15.3.5 and 15.4.5)."""


class ChannelSlot:
    """
    One request's response, in its fixed place in the pipeline.

    Implements ``txhttp.server._exchange.ResponseSlot``; see there for the
    contract. Created by ``HTTPChannel`` for every request head.
    """

    __slots__ = (
        "_at_front",
        "_body_done",
        "_body_wanted",
        "_buffer",
        "_buffered_bytes",
        "_channel",
        "_chunked",
        "_lost_notified",
        "_no_body",
        "_persistent",
        "_producer",
        "_producer_paused",
        "_pull_again",
        "_pulling",
        "_remaining",
        "_state",
        "_streaming",
        "exchange",
        "head",
        "status",
    )

    def __init__(
        self, channel: HTTPChannel, head: RequestHead, at_front: bool = False
    ) -> None:
        self.head = head
        self.exchange: Exchange | None = None
        self.status: int | None = None
        """The status of the response once its head is written (framed only)."""
        self._channel = channel
        self._state = _ST_FRESH
        self._at_front = at_front
        # Output held until this slot reaches the head of the pipeline; made
        # only then (a response at the head is written straight through).
        self._buffer: list[bytes] | None = None
        self._buffered_bytes = 0
        self._persistent = head.keep_alive
        self._chunked = False
        self._no_body = False
        self._remaining: int | None = None
        self._producer: IProducer | None = None
        # _streaming and _producer_paused are set by registerProducer and
        # read only while a producer is registered.
        self._pulling = False
        self._pull_again = False
        self._body_wanted = False
        self._body_done = head.framing.kind is _BODY_NONE
        self._lost_notified = False

    def _advance(self, event: SlotInput) -> SlotState:
        previous = self._state
        try:
            self._state = _TRANSITIONS[previous, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid for a response in state "
                f"{previous.name}"
            ) from None
        return previous

    # -- addresses ---------------------------------------------------------

    @property
    def peer(self) -> IAddress:
        """The address of the client."""
        return self._channel.getPeer()

    @property
    def host(self) -> IAddress:
        """The local address the request came in on."""
        return self._channel.getHost()

    @property
    def is_secure(self) -> bool:
        """Whether the connection is TLS."""
        return ISSLTransport.providedBy(self._channel.transport)

    def is_connected(self) -> bool:
        """Whether writes can still reach the client."""
        return not self._lost_notified and self._state is not _ST_LOST

    def is_fresh(self) -> bool:
        """Whether nothing was written for this response yet."""
        return self._state is _ST_FRESH and not self._lost_notified

    def is_last_request(self) -> bool:
        """Whether the connection closes after this response (so far)."""
        return not self._persistent or self._channel.isLastRequest(self)

    def is_settled(self) -> bool:
        """Whether the whole response was sent and the whole body read."""
        return self._state is _ST_SENT and self._body_done

    def is_done(self) -> bool:
        """Whether the response is complete (written or not)."""
        return self._state is _ST_DONE

    # -- raw output --------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write raw bytes (head and framed body) for this response."""
        state = self._state
        if state is _ST_LOST or self._lost_notified:
            return
        if state is not _ST_RAW:
            self._advance(_IN_WRITE_RAW)
        elif not self._channel._no_delay_set:
            # A response in several writes: do not let Nagle's algorithm
            # hold the later ones back.
            self._channel._set_no_delay()
        if data:
            self._output(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Write several raw byte strings for this response."""
        self.write(b"".join(data))

    def finish_raw(self, persistent: bool) -> None:
        """End a raw response; ``persistent`` says whether it was delimited."""
        if self._state is _ST_LOST or self._lost_notified:
            return
        if not persistent:
            self._persistent = False
        self._complete()

    # -- framed output -----------------------------------------------------

    def _head(
        self,
        status: int,
        reason: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        length: int | None,
        tail: bytes = b"",
    ) -> bytes:
        """
        Decide the framing of a native response; return its serialized head.

        ``length`` is the whole body's size when it is known up front; ``tail``
        (the body, if small) is returned joined after the head. When the
        status line and every field name and value were already accepted by
        the wire core's serializer (`txhttp._wire._serialize.ACCEPTED_NAMES`
        and friends), the head is joined here without a second check;
        anything new, and any Content-Length set by the handler, goes through
        ``serialize_response_head``. A head joined that way from plain fields
        (none the slot looks at) is remembered, less its ``Date``, with the
        framing it chose (see `MAX_REMEMBERED_HEADS`): the same response to
        the same kind of request is then made from the memo.
        """
        if type(fields) is not tuple:
            fields = tuple(fields)  # For the key, and read twice below.
        channel = self._channel
        head = self.head
        # Everything the head depends on, the date aside; isLastRequest only
        # reads, so asking it first changes nothing.
        key: _HeadKey | None
        try:
            key = (
                status,
                reason,
                fields,
                length,
                head.method,
                head.version,
                # not isLastRequest(self), without a call while reading on.
                self._persistent
                and (
                    channel._state is channel._open_state
                    or not channel.isLastRequest(self)
                ),
                channel.server_header,
            )
            made = _remembered_heads.get(key)
        except TypeError:  # Unhashable (a bytearray, a list): no memo.
            key = made = None
        if made is not None:
            start, end, no_body, chunked, persistent = made
            if no_body:
                self._no_body = True
            elif chunked:
                self._chunked = True
            elif length is not None:
                self._remaining = length
            if not persistent:
                self._persistent = False
                channel.dropQueuedRequests(self)
            self.status = status
            cache = channel.date_cache
            now = cache.value() if cache is not None else channel.date_value()
            if tail and not no_body:
                return b"".join((start, now, end, tail))
            return b"".join((start, now, end))
        # (Never remembered, so never found above.)
        if status < 200:
            raise ValueError(f"interim status {status} cannot be a final response")
        line = (
            ACCEPTED_STATUS_LINES.get((status, reason))
            if type(status) is int and type(reason) is bytes
            else None
        )
        known = line is not None
        parts: list[bytes] = [line] if line is not None else []
        names = ACCEPTED_NAMES
        values = ACCEPTED_VALUES
        has_date = has_server = False
        plain = True
        declared: int | None = None
        for name, value in fields:
            if known:
                try:
                    known = name in names and value in values
                except TypeError:  # Unhashable (bytearray): the slow path.
                    known = False
                parts += (name, b": ", value, b"\r\n")
            if len(name) in _SPECIAL_NAME_LENGTHS:
                lowered = name.lower()
                if lowered in _SPECIAL_NAMES:
                    plain = False
                if lowered == b"content-length":
                    known = False  # Consistency is checked by the wire core.
                    try:
                        declared = int(value)
                    except ValueError:
                        raise LocalProtocolError(
                            f"Content-Length is not a number: {value!r}"
                        ) from None
                elif lowered == b"connection":
                    if b"close" in value.lower():
                        self._persistent = False
                elif lowered == b"transfer-encoding":
                    raise LocalProtocolError(
                        "Transfer-Encoding is chosen by the server, not the handler"
                    )
                elif lowered == b"date":
                    has_date = True
                elif lowered == b"server":
                    has_server = True
        version = head.version
        # Fields of our own. Date, Content-Length and Connection values are
        # valid by construction; the Server value is checked like a handler's.
        date: bytes | None = None
        if not has_date:
            cache = channel.date_cache
            date = cache.value() if cache is not None else channel.date_value()
        server = None if has_server else channel.server_header
        if server is not None and known and server not in values:
            known = False
        added_length: bytes | None = None
        if head.method == b"HEAD" or status in _NO_CONTENT_STATUSES:
            self._no_body = True
            if declared is None and length is not None and status == 200:
                added_length = b"%d" % length
        elif declared is not None:
            if length is not None and declared != length:
                raise LocalProtocolError(
                    f"body of {length} bytes does not match its Content-Length "
                    f"{declared}"
                )
            self._remaining = declared
        elif length is not None:
            added_length = b"%d" % length
            self._remaining = length
        elif version == HTTP_1_0:
            # No length and no chunked coding in HTTP/1.0: the close ends it.
            self._persistent = False
        else:
            self._chunked = True
        if self._persistent and channel.isLastRequest(self):
            self._persistent = False
        connection: bytes | None = None
        if not self._persistent:
            connection = b"close"
            channel.dropQueuedRequests(self)
        elif version == HTTP_1_0:
            connection = b"keep-alive"
        self.status = status
        if known:
            # Joined in two halves around the Date value, for the memo.
            after: list[bytes] = []
            if date is not None:
                parts.append(b"Date: ")
                after.append(b"\r\n")
            if server is not None:
                after += (b"Server: ", server, b"\r\n")
            if added_length is not None:
                after += (b"Content-Length: ", added_length, b"\r\n")
            elif self._chunked:
                after.append(b"Transfer-Encoding: chunked\r\n")
            if connection is not None:
                after += (b"Connection: ", connection, b"\r\n")
            after.append(b"\r\n")
            before_bytes = b"".join(parts)
            after_bytes = b"".join(after)
            if (
                plain
                and key is not None
                and date is not None
                and len(fields) <= MAX_REMEMBERED_HEAD_FIELDS
            ):
                if len(_remembered_heads) >= MAX_REMEMBERED_HEADS:
                    _remembered_heads.clear()
                _remembered_heads[key] = (
                    before_bytes,
                    after_bytes,
                    self._no_body,
                    self._chunked,
                    self._persistent,
                )
            body = tail if tail and not self._no_body else b""
            return b"".join((before_bytes, date or b"", after_bytes, body))
        framed = list(fields)
        if date is not None:
            framed.append((b"Date", date))
        if server is not None:
            framed.append((b"Server", server))
        if added_length is not None:
            framed.append((b"Content-Length", added_length))
        elif self._chunked:
            framed.append((b"Transfer-Encoding", b"chunked"))
        if connection is not None:
            framed.append((b"Connection", connection))
        data = serialize_response_head(status, reason, framed)
        return data + tail if tail and not self._no_body else data

    def write_head(
        self, status: int, reason: bytes, fields: Sequence[tuple[bytes, bytes]]
    ) -> None:
        """Write the status line and header fields (framing chosen here)."""
        state = self._state
        if state is _ST_LOST or self._lost_notified:
            return
        if state is not _ST_FRESH:
            raise RuntimeError(f"response head already written (state {state.name})")
        data = self._head(status, reason, fields, None)
        self._advance(_IN_WRITE_HEAD)
        channel = self._channel
        if not channel._no_delay_set:
            # The body follows in later writes (streaming): see write().
            channel._set_no_delay()
        self._output(data)

    def write_body(self, data: bytes) -> None:
        """Write body bytes, framed as the head decided."""
        state = self._state
        if state is _ST_LOST or self._lost_notified or not data or self._no_body:
            return
        if state is not _ST_STREAMING:
            raise RuntimeError(f"write_body before write_head (state {state.name})")
        remaining = self._remaining
        if remaining is not None:
            if len(data) > remaining:
                raise LocalProtocolError(
                    f"body longer than its Content-Length: {len(data)} bytes "
                    f"written with {remaining} left"
                )
            self._remaining = remaining - len(data)
        elif self._chunked:
            data = encode_chunk(data)
        self._output(data)

    def finish(self, trailers: Fields = ()) -> None:
        """End a framed response; ``trailers`` go out only when chunked."""
        state = self._state
        if state is _ST_LOST or self._lost_notified:
            return
        if state is not _ST_STREAMING:
            raise RuntimeError(f"finish before write_head (state {state.name})")
        if self._chunked:
            self._output(encode_last_chunk(trailers))
        elif self._remaining and not self._no_body:
            _log.warn(
                "response body cut short: {missing} bytes of its Content-Length "
                "missing; closing the connection",
                missing=self._remaining,
            )
            self._persistent = False
        self._complete()

    def finish_with_body(
        self,
        status: int,
        reason: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        """Write a whole response with a Content-Length in one transport write."""
        state = self._state
        if state is _ST_LOST or self._lost_notified:
            return
        if state is not _ST_FRESH:
            raise RuntimeError(f"response head already written (state {state.name})")
        size = len(body)
        joined = size <= _JOIN_BODY_BYTES
        # (A Content-Length that is not ``size`` is refused there.)
        data = self._head(status, reason, fields, size, body if joined else b"")
        if self._state is _ST_FRESH:
            self._state = _AFTER_WRITE_HEAD
        else:
            self._advance(_IN_WRITE_HEAD)  # Raises.
        channel = self._channel
        transport = channel._t
        if (
            joined
            and self._at_front
            and self._producer is None
            and transport is not None
            and not channel._transport_paused
            and not channel._backlog
            and len(data) <= channel.write_piece_bytes
        ):
            # The common case: one write straight to the transport (through
            # the channel's cork), and the fixed move STREAMING -> DONE of
            # `_complete` taken at once.
            channel._out(data)
            self._remaining = 0
            if self._state is _AFTER_WRITE_HEAD:
                # (A response that closes dropped the requests queued
                # behind it in `_head` already.)
                if (
                    not self._body_done
                    and self._persistent
                    and self._unasked_body_waits()
                ):
                    self._persistent = False
                    channel.dropQueuedRequests(self)
                self._state = _AFTER_FINISH
                if self._at_front:
                    channel.requestWriteFinished(self)
                return
        else:
            self._output(data)
            if not joined and not self._no_body:
                self._output(body)
        self._remaining = 0
        self._complete()

    def write_error(self, status: int) -> None:
        """Answer with a plain-text error that closes the connection."""
        if self._state is not _ST_FRESH:
            raise RuntimeError(f"bug: error response in state {self._state.name}")
        channel = self._channel
        self._persistent = False
        channel.dropQueuedRequests(self)
        self.status = status
        self._advance(_IN_WRITE_RAW)
        self._output(
            error_response(
                status, channel.date_value(), channel.server_header, self.head.version
            )
        )
        self._complete()

    def abort(self) -> None:
        """Give up on this response: close the connection once it is its turn."""
        state = self._state
        if state is _ST_LOST or state is _ST_SENT:
            return
        self._persistent = False
        self._complete(_IN_ABORT)

    # -- internals shared with the channel ---------------------------------

    def _output(self, data: bytes) -> None:
        if self._at_front:
            channel = self._channel
            transport = channel._t
            if (
                transport is not None
                and not channel._transport_paused
                and not channel._backlog
                and len(data) <= channel.write_piece_bytes
            ):
                channel._out(data)
            else:
                channel._send(data)
        else:
            buffer = self._buffer
            if buffer is None:
                self._buffer = [data]
            else:
                buffer.append(data)
            self._buffered_bytes += len(data)
            self._channel._buffer_grew(len(data))
        if self._producer is not None and not self._streaming:
            self._pull()

    def _unasked_body_waits(self) -> bool:
        """
        Whether the client is still waiting to send a body nobody asked for.

        With ``Expect: 100-continue`` (RFC 9110, section 10.1.1) its bytes
        may come later and would be taken for the next request, so a
        connection where this holds at the end of the response cannot be
        reused. Asked only while the body is not done.
        """
        head = self.head
        return (
            not self._body_wanted and head.expect_continue and head.framing.length != 0
        )

    def _complete(self, event: SlotInput = _IN_FINISH) -> None:
        if not self._body_done and self._unasked_body_waits():
            self._persistent = False
        previous = self._advance(event)
        if not self._persistent:
            self._channel.dropQueuedRequests(self)
        if self._at_front and previous is not _ST_DONE:
            self._channel.requestWriteFinished(self)

    def _promote(self) -> None:
        """This slot is now the head of the pipeline: flush what it holds."""
        self._at_front = True
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer = None
            self._channel._buffer_shrank(self._buffered_bytes)
            self._buffered_bytes = 0
            self._channel._send(data)
        self._sync_producer()

    def is_persistent(self) -> bool:
        """Whether the connection may carry another request after this one."""
        return self._persistent

    def _body_finished(self, trailers: Fields) -> None:
        self._body_done = True
        exchange = self.exchange
        if exchange is not None and not self._lost_notified:
            try:
                exchange.body_complete(trailers)
            except Exception:
                self._channel._exchange_failed(exchange.body_complete)
            if self._state is _ST_SENT:
                self.exchange = None  # Done with it: see `_release`.

    def _lose_body(self, reason: Failure) -> None:
        """The body broke: tell the exchange; the channel answers for it."""
        if self._lost_notified:
            return
        self._lost_notified = True
        exchange = self.exchange
        if exchange is not None:
            self._release()
            self._channel._call_exchange(exchange.connection_lost, reason)

    def _release(self) -> None:
        """
        Nothing more will be said to the exchange: let go of it.

        The exchange's request and response objects point back at this slot,
        so holding on would make every request a reference cycle, left for
        the cyclic garbage collector instead of freed as soon as it is done.
        """
        self.exchange = None

    def _lose(self, reason: Failure) -> None:
        """The connection went away, or this request was dropped or broken."""
        self._advance(_IN_LOSE)
        producer = self._producer
        if producer is not None and self._state is _ST_LOST:
            self._producer = None
            self._channel._call_exchange(producer.stopProducing)
        if self._buffer:
            self._channel._buffer_shrank(self._buffered_bytes)
            self._buffer = None
            self._buffered_bytes = 0
        if self._lost_notified:
            return
        if self._state is _ST_SENT and self._body_done:
            self._release()  # Settled; only a bodiless end was left untold.
            return
        self._lost_notified = True
        exchange = self.exchange
        if exchange is not None:
            self._release()
            self._channel._call_exchange(exchange.connection_lost, reason)

    # -- request body flow control ----------------------------------------

    def want_body(self) -> None:
        """Say the body will be read: sends ``100 Continue`` if it was expected."""
        if self._body_wanted:
            return
        self._body_wanted = True
        if (
            self.head.expect_continue
            and not self._body_done
            and self._state is _ST_FRESH
        ):
            self._output(continue_head())

    def pause_body(self) -> None:
        """Stop delivering body bytes (and reading the socket) for now."""
        self._channel._pause_body(self)

    def resume_body(self) -> None:
        """Deliver body bytes again after ``pause_body``."""
        self._channel._resume_body(self)

    # -- response flow control --------------------------------------------

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Register the producer of this response's body."""
        if self._producer is not None:
            raise RuntimeError(
                f"cannot register {producer!r}: {self._producer!r} is still registered"
            )
        if self._state is _ST_LOST:
            producer.stopProducing()
            return
        self._producer = producer
        self._streaming = streaming
        self._producer_paused = False
        self._sync_producer()

    def unregisterProducer(self) -> None:
        """Forget the registered producer, if any."""
        self._producer = None
        self._producer_paused = False

    def _is_blocked(self) -> bool:
        channel = self._channel
        if self._at_front:
            return channel._is_output_blocked()
        return channel._is_over_buffer()

    def _sync_producer(self) -> None:
        """Pause or resume the producer to match the room there is."""
        producer = self._producer
        if producer is None:
            return
        blocked = self._is_blocked()
        if self._streaming:
            # Producers often do not declare the interface they implement.
            push = cast(IPushProducer, producer)
            if blocked and not self._producer_paused:
                self._producer_paused = True
                push.pauseProducing()
            elif not blocked and self._producer_paused:
                self._producer_paused = False
                push.resumeProducing()
        elif not blocked:
            self._pull()

    def _pull(self) -> None:
        """Ask a pull producer for data for as long as there is room."""
        if self._pulling:
            self._pull_again = True
            return
        self._pulling = True
        try:
            while True:
                producer = self._producer
                if (
                    producer is None
                    or self._streaming
                    or self._is_blocked()
                    or self._state is _ST_LOST
                    or self._state is _ST_DONE
                ):
                    break
                self._pull_again = False
                cast(IPullProducer, producer).resumeProducing()
                if not self._pull_again:
                    break
        finally:
            self._pulling = False


_SPECIAL_NAMES: Final = frozenset(
    (b"content-length", b"connection", b"transfer-encoding", b"date", b"server")
)
"""The field names (lowercase) the slot looks at; other fields are plain."""

_SPECIAL_NAME_LENGTHS: Final = frozenset(len(name) for name in _SPECIAL_NAMES)
"""Lengths of the field names the slot looks at, to skip the others quickly."""


MAX_REMEMBERED_HEADS: Final = 256
"""Distinct response heads remembered (forgotten all at once when full)."""

MAX_REMEMBERED_HEAD_FIELDS: Final = 16
"""Heads with more fields than this are not remembered. With the wire core's
cap on remembered values (256 bytes each), it bounds the memo to a few MiB."""

_HeadKey: TypeAlias = tuple[
    int,
    bytes,
    tuple[tuple[bytes, bytes], ...],
    "int | None",
    bytes,
    bytes,
    bool,
    "bytes | None",
]
_remembered_heads: dict[_HeadKey, tuple[bytes, bytes, bool, bool, bool]] = {}
"""Heads joined from plain, accepted fields: the bytes before and after the
Date value, and whether there is no body, the body is chunked, and the
connection stays open. Each depends on nothing but its key (the Date aside)."""

_JOIN_BODY_BYTES: Final = 16 * 1024
"""Bodies up to this size are joined to their head for a single write."""
