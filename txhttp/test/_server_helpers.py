# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
Fakes and helpers for the server channel tests.

`HalfCloseTransport` is a `StringTransport` that also supports closing its
write side (as TCP does); `RecordingExchange` records what the channel tells
it and lets a test answer through its slot; `RecordingProducer` records the
pause, resume and stop calls a response's producer gets; `parse_responses`
reads what the channel wrote with the wire core's `ResponseParser`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from txhttp._wire import (
    EndOfMessage,
    Fields,
    RequestHead,
    ResponseHead,
    ResponseParser,
)
from txhttp.server import HTTPChannel, HTTPServerFactory, Request, Response
from txhttp.server._exchange import ResponseSlot


@implementer(ITCPTransport)
class HalfCloseTransport(StringTransport):
    """A `StringTransport` that can close its write side, like TCP."""

    write_closed = False
    no_delay = False
    keep_alive = False

    def loseWriteConnection(self) -> None:
        """Record that the write side was closed."""
        self.write_closed = True

    def getTcpNoDelay(self) -> bool:
        """Return the recorded TCP_NODELAY flag."""
        return self.no_delay

    def setTcpNoDelay(self, enabled: bool) -> None:
        """Record TCP_NODELAY."""
        self.no_delay = enabled

    def getTcpKeepAlive(self) -> bool:
        """Return the recorded SO_KEEPALIVE flag."""
        return self.keep_alive

    def setTcpKeepAlive(self, enabled: bool) -> None:
        """Record SO_KEEPALIVE."""
        self.keep_alive = enabled


@implementer(IPushProducer)
class RecordingProducer:
    """A push producer recording the calls it gets, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        """Record a pause."""
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        """Record a resume."""
        self.calls.append("resume")

    def stopProducing(self) -> None:
        """Record a stop."""
        self.calls.append("stop")


class RecordingExchange:
    """An `Exchange` that records every call; tests answer through `slot`."""

    def __init__(
        self,
        head: RequestHead,
        slot: ResponseSlot,
        on_start: Callable[[RecordingExchange], None] | None,
    ) -> None:
        self.head = head
        self.slot = slot
        self.on_start = on_start
        self.events: list[str] = []
        self.body = b""
        self.trailers: Fields = ()
        self.lost: Failure | None = None

    def start(self) -> None:
        """Record, then run the test's start hook."""
        self.events.append("start")
        if self.on_start is not None:
            self.on_start(self)

    def body_received(self, data: bytes) -> None:
        """Record body bytes."""
        self.events.append("body")
        self.body += data

    def body_complete(self, trailers: Fields) -> None:
        """Record the end of the body."""
        self.events.append("complete")
        self.trailers = trailers

    def response_sent(self) -> None:
        """Record that the response went out."""
        self.events.append("sent")

    def connection_lost(self, reason: Failure) -> None:
        """Record the loss."""
        self.events.append("lost")
        self.lost = reason

    def respond(self, body: bytes = b"ok", status: int = 200) -> None:
        """Answer with a whole body."""
        self.slot.finish_with_body(status, b"OK", [], body)


class Recorder:
    """An exchange factory keeping every `RecordingExchange` it made."""

    def __init__(self, on_start: Callable[[RecordingExchange], None] | None = None):
        self.on_start = on_start
        self.exchanges: list[RecordingExchange] = []

    def __call__(
        self, channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
    ) -> RecordingExchange:
        exchange = RecordingExchange(head, slot, self.on_start)
        self.exchanges.append(exchange)
        return exchange

    @property
    def targets(self) -> list[bytes]:
        """The targets of the requests seen, in order."""
        return [exchange.head.target for exchange in self.exchanges]


def respond_at_once(exchange: RecordingExchange) -> None:
    """A start hook answering ``200`` with the target as the body."""
    exchange.respond(exchange.head.target)


def make_channel(
    exchange_factory: Recorder | None = None,
    *,
    transport: HalfCloseTransport | None = None,
    clock: Clock | None = None,
    **settings: object,
) -> tuple[HTTPChannel, HalfCloseTransport, Clock, Recorder]:
    """Return a connected channel, its transport, clock and recorder."""
    clock = clock if clock is not None else Clock()
    recorder = exchange_factory if exchange_factory is not None else Recorder()
    channel = HTTPChannel(clock=clock)
    channel.exchangeFactory = recorder
    for name, value in settings.items():
        if not hasattr(HTTPChannel, name):
            raise AttributeError(f"HTTPChannel has no setting {name}")
        setattr(channel, name, value)
    transport = transport if transport is not None else HalfCloseTransport()
    channel.makeConnection(transport)
    return channel, transport, clock, recorder


def make_native(
    handler: Callable[[Request, Response], object],
    *,
    transport: StringTransport | None = None,
    clock: Clock | None = None,
    **settings: object,
) -> tuple[HTTPChannel, StringTransport, Clock]:
    """Return a channel running a native ``handler``, connected."""
    clock = clock if clock is not None else Clock()
    factory = HTTPServerFactory(handler, clock=clock, **settings)  # type: ignore[arg-type]  # test settings are checked by the factory
    channel = factory.buildProtocol(None)
    transport = transport if transport is not None else HalfCloseTransport()
    channel.makeConnection(transport)
    return channel, transport, clock


@dataclass
class ParsedResponse:
    """One response read back from the wire."""

    status: int
    fields: Fields
    body: bytes = b""
    trailers: Fields = ()
    interim: list[int] = field(default_factory=list)

    def header(self, name: bytes) -> bytes | None:
        """Return the first value of field ``name`` (case-insensitive)."""
        for key, value in self.fields:
            if key.lower() == name.lower():
                return value
        return None


def parse_responses(
    data: bytes, methods: Sequence[bytes] = (), *, closed: bool = False
) -> list[ParsedResponse]:
    """
    Parse every complete response in ``data``.

    ``methods`` gives the request method of each response (``GET`` when not
    given); ``closed`` ends a read-until-close body at the end of ``data``.
    """
    parser = ResponseParser()
    parser.feed(data)
    if closed:
        parser.feed_eof()
    responses: list[ParsedResponse] = []
    index = 0
    interim: list[int] = []
    current: ParsedResponse | None = None
    parser.expect_response(methods[0] if methods else b"GET")
    while True:
        event = parser.next_event()
        if event is None:
            break
        if isinstance(event, ResponseHead):
            if event.status < 200:
                interim.append(event.status)
                continue
            current = ParsedResponse(event.status, event.fields, interim=interim)
            interim = []
        elif isinstance(event, bytes):
            assert current is not None
            current.body += event
        elif isinstance(event, EndOfMessage):
            assert current is not None
            current.trailers = event.trailers
            responses.append(current)
            current = None
            index += 1
            parser.expect_response(methods[index] if index < len(methods) else b"GET")
        else:
            break
    return responses


def is_closing(transport: StringTransport) -> bool:
    """Whether the channel closed (or began closing) the connection."""
    return bool(
        transport.disconnecting
        or transport.disconnected
        or getattr(transport, "write_closed", False)
    )
