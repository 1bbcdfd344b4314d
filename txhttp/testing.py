# -*- test-case-name: txhttp.test.test_testing -*-
"""
Helpers for testing code that uses txhttp: no sockets, no real time.

`MemoryHTTPServer` serves a native handler, a ``twisted.web`` Resource or Site
on txhttp's real `txhttp.server.HTTPChannel`, and connects txhttp's real
client (`txhttp.client.Agent`, its pool, `txhttp.client.HTTPClient`) to it
through in-memory transports. Nothing moves until the test calls
`MemoryHTTPServer.flush`, so every step is deterministic::

    server = MemoryHTTPServer(handler)
    d = server.agent().request(b"GET", b"http://example.test/")
    server.flush()
    response = self.successResultOf(d)
    self.assertEqual(b"hello", read_body(response))

For code that consumes responses or sends requests through an ``IAgent``,
`make_response` builds a `StubResponse` and `RecordingAgent` answers requests
with canned responses while recording them as `RecordedRequest` objects.

This module may import anything in txhttp; nothing in txhttp imports it.
Left out: TLS (the server speaks plain ``http`` only) and real time (time
moves only when the test advances the server's ``Clock``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final, TypeAlias, cast

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import (
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.interfaces import (
    IConsumer,
    IHalfCloseableProtocol,
    IProducer,
    IProtocol,
    IProtocolFactory,
    IPullProducer,
    IPushProducer,
    IStreamClientEndpoint,
    ITCPTransport,
    ITransport,
)
from twisted.internet.protocol import Protocol, ServerFactory, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IBodyProducer, IResponse
from twisted.web.resource import IResource
from twisted.web.server import Site
from zope.interface import implementer

from txhttp.client import (
    Agent,
    ConnectTarget,
    HTTPClient,
    HTTPClientConfig,
    HTTPConnectionPool,
)
from txhttp.server import Handler, HTTPServerFactory, use_txhttp

__all__ = [
    "MAX_FLUSH_ROUNDS",
    "MemoryHTTPServer",
    "RecordedRequest",
    "RecordingAgent",
    "Responder",
    "StubResponse",
    "make_response",
    "read_body",
]

MAX_FLUSH_ROUNDS: Final = 10_000
"""
Rounds `MemoryHTTPServer.flush` runs before giving up. Each round moves every
buffered byte, so only a pair of peers that never stop talking reach it.
"""

App: TypeAlias = "Handler | Site | IResource | ServerFactory"
"""What `MemoryHTTPServer` serves: a handler, a Resource, a Site or a factory."""

_HeaderValues: TypeAlias = "str | bytes | Sequence[str] | Sequence[bytes]"
# Three mappings, not one: a ``dict[str, str]`` is not a
# ``Mapping[str | bytes, ...]`` (mapping keys are invariant).
_HeaderFields: TypeAlias = (
    "Headers | Mapping[str, _HeaderValues] | Mapping[bytes, _HeaderValues]"
    " | Mapping[str | bytes, _HeaderValues]"
)


# -- in-memory transports -------------------------------------------------------


@implementer(ITCPTransport, IPushProducer, IConsumer)
class _MemoryTransport:
    """One end of an in-memory connection: buffers what its protocol writes."""

    def __init__(self, host: IPv4Address, peer: IPv4Address) -> None:
        self.protocol: IProtocol | None = None
        self.outgoing: list[bytes] = []
        self.disconnecting = False
        self.write_closed = False
        self.eof_sent = False
        self.aborted = False
        self.reading_paused = False
        self.producer: IProducer | None = None
        self.streaming = False
        self._host = host
        self._peer = peer

    # ITransport / ITCPTransport
    def write(self, data: bytes) -> None:
        if data and not (self.disconnecting or self.write_closed or self.aborted):
            self.outgoing.append(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.outgoing.clear()

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def getPeer(self) -> IPv4Address:
        return self._peer

    def getHost(self) -> IPv4Address:
        return self._host

    def getTcpNoDelay(self) -> bool:
        return True

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def getTcpKeepAlive(self) -> bool:
        return False

    def setTcpKeepAlive(self, enabled: bool) -> None:
        pass

    # IPushProducer: the protocol pausing its own reading
    def pauseProducing(self) -> None:
        self.reading_paused = True

    def resumeProducing(self) -> None:
        self.reading_paused = False

    def stopProducing(self) -> None:
        self.abortConnection()

    # IConsumer
    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self) -> None:
        self.producer = None


class _MemoryConnection:
    """A client transport and a server transport joined back to back."""

    def __init__(
        self,
        client: IProtocol,
        server: IProtocol,
        client_addr: IPv4Address,
        server_addr: IPv4Address,
    ) -> None:
        self.client = _MemoryTransport(client_addr, server_addr)
        self.server = _MemoryTransport(server_addr, client_addr)
        self.client.protocol = client
        self.server.protocol = server
        self.closed = False

    def start(self) -> None:
        """Connect both protocols: the server first, as when accepting."""
        assert self.server.protocol is not None and self.client.protocol is not None
        self.server.protocol.makeConnection(self.server)
        self.client.protocol.makeConnection(self.client)

    def step(self) -> bool:
        """Move buffered bytes and closes one hop each way; whether anything moved."""
        moved = False
        for source, sink in ((self.client, self.server), (self.server, self.client)):
            if self.closed:
                return moved
            producer = source.producer
            if producer is not None and not source.streaming:
                # registerProducer(..., streaming=False) promised a pull producer.
                cast(IPullProducer, producer).resumeProducing()
            if source.outgoing and not sink.reading_paused:
                data = b"".join(source.outgoing)
                source.outgoing.clear()
                assert sink.protocol is not None
                sink.protocol.dataReceived(data)
                moved = True
        if self.closed:
            return moved
        for side in (self.server, self.client):
            if side.aborted:
                self.close(side)
                return True
        for side in (self.server, self.client):
            if side.disconnecting and not side.outgoing:
                self.close(None)
                return True
        for side, peer in ((self.server, self.client), (self.client, self.server)):
            if side.write_closed and not side.outgoing and not side.eof_sent:
                side.eof_sent = True
                reader = IHalfCloseableProtocol(peer.protocol, None)
                if peer.eof_sent or reader is None:
                    self.close(None)
                    return True
                reader.readConnectionLost()
                writer = IHalfCloseableProtocol(side.protocol, None)
                if writer is not None:
                    writer.writeConnectionLost()
                return True
        return moved

    def close(self, aborter: _MemoryTransport | None) -> None:
        """Tell both protocols the connection is gone (once)."""
        if self.closed:
            return
        self.closed = True
        for side in (self.server, self.client):
            reason: Failure
            if aborter is None:
                reason = Failure(ConnectionDone("connection closed cleanly"))
            elif side is aborter:
                reason = Failure(ConnectionAborted("aborted"))
            else:
                reason = Failure(ConnectionLost("connection reset by peer"))
            side.outgoing.clear()
            side.producer = None
            assert side.protocol is not None
            side.protocol.connectionLost(reason)


@implementer(IStreamClientEndpoint)
class _MemoryEndpoint:
    """Connects to a `MemoryHTTPServer` whatever host the target names."""

    def __init__(self, server: MemoryHTTPServer, target: ConnectTarget) -> None:
        self._server = server
        self._target = target

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return self._server._connect(protocolFactory, self._target)


# -- the server ------------------------------------------------------------------


def _clock_of(app: object) -> object:
    if isinstance(app, Site):
        return app.reactor
    return getattr(app, "clock", None)


class MemoryHTTPServer:
    """
    txhttp's server and client joined in memory, pumped by the test.

    Every connection the client opens, to any ``http://`` host and port,
    reaches this server. Bytes move, and connections close, only inside
    `flush` (and `advance`), so a test decides when the other side runs.

    Args:
        app: What answers requests: a native handler (see
            ``txhttp.server.Handler``), a ``twisted.web`` Resource (served by
            a new ``Site`` on ``clock``), a ``Site`` (switched to txhttp's
            channel with `txhttp.server.use_txhttp`; its ``reactor`` must be
            a ``Clock``), or a ready server factory such as
            `txhttp.server.HTTPServerFactory` built with a ``Clock``.
        clock: The time source of both ends; by default the Site's or the
            factory's clock when ``app`` brings one, else a new ``Clock``.

    Attributes:
        clock: The ``Clock`` both ends schedule on; `advance` moves it.
        factory: The server factory building each connection's protocol.
        connections_made: Connections the server accepted so far.

    Raises:
        TypeError: ``app`` is none of the above, or brings a time source that
            is not ``clock`` or is not a ``Clock``.
    """

    def __init__(self, app: App, *, clock: Clock | None = None) -> None:
        own = _clock_of(app) if isinstance(app, (Site, ServerFactory)) else None
        if own is not None:
            if not isinstance(own, Clock):
                raise TypeError(
                    f"{type(app).__name__}'s clock is {own!r}, not a Clock; build "
                    "it with a Clock (Site(root, reactor=clock) or "
                    "HTTPServerFactory(handler, clock=clock))"
                )
            if clock is not None and clock is not own:
                raise TypeError(f"clock {clock!r} is not the clock {app!r} uses")
            clock = own
        self.clock: Final[Clock] = clock if clock is not None else Clock()
        self.factory: Final[IProtocolFactory] = self._factory_for(app)
        self.connections_made = 0
        self._connections: list[_MemoryConnection] = []
        self._refusing = False
        self._agent: Agent | None = None

    def _factory_for(self, app: App) -> IProtocolFactory:
        if isinstance(app, Site):
            return use_txhttp(app)
        if isinstance(app, ServerFactory):
            return app
        if IResource.providedBy(app):
            return use_txhttp(Site(app, reactor=self.clock))
        if callable(app):
            return HTTPServerFactory(app, clock=self.clock)
        raise TypeError(f"cannot serve {app!r}: not a handler, Resource or Site")

    # -- connecting ------------------------------------------------------------

    def endpoint_factory(self, target: ConnectTarget) -> IStreamClientEndpoint:
        """
        An endpoint factory for a `txhttp.client.Agent` of your own.

        Pass it as ``Agent(clock, endpoint_factory=server.endpoint_factory)``:
        every ``http`` target, whatever its host and port, connects here.

        Raises:
            ValueError: ``target`` asks for TLS, which this server does not speak.
        """
        if target.scheme == "https":
            raise ValueError(
                f"MemoryHTTPServer speaks plain http only, not https to {target.host}"
            )
        return _MemoryEndpoint(self, target)

    def _connect(
        self, factory: IProtocolFactory, target: ConnectTarget
    ) -> Deferred[IProtocol]:
        if self._refusing:
            return fail(ConnectionRefusedError(target.host))
        self.connections_made += 1
        server_addr = IPv4Address("TCP", "127.0.0.1", target.port or 80)
        client_addr = IPv4Address("TCP", "127.0.0.1", 40000 + self.connections_made)
        client = factory.buildProtocol(server_addr)
        server = self.factory.buildProtocol(client_addr)
        if client is None or server is None:
            return fail(ConnectionRefusedError("a factory built no protocol"))
        connection = _MemoryConnection(client, server, client_addr, server_addr)
        self._connections.append(connection)
        connection.start()
        return succeed(client)

    def refuse_connections(self, refuse: bool = True) -> None:
        """Make new connections fail with ``ConnectionRefusedError`` (or stop)."""
        self._refusing = refuse

    @property
    def open_connections(self) -> int:
        """Connections not yet closed at the last `flush`."""
        return sum(not c.closed for c in self._connections)

    def drop_connections(self) -> None:
        """
        Cut every open connection at once, as a crashing server would.

        Bytes not yet delivered are lost; the server's protocols see
        ``ConnectionAborted``, the client's ``ConnectionLost``.
        """
        for connection in list(self._connections):
            connection.close(connection.server)
        self._connections.clear()

    # -- pumping -----------------------------------------------------------------

    def flush(self) -> bool:
        """
        Run both ends until neither has anything left to do.

        Delivers every buffered byte and close, and runs calls scheduled on
        `clock` for the current time, round after round, until a round
        changes nothing. Time does not advance (see `advance`).

        Returns:
            Whether anything moved.

        Raises:
            RuntimeError: Still busy after `MAX_FLUSH_ROUNDS` rounds.
        """
        anything = False
        for _ in range(MAX_FLUSH_ROUNDS):
            due = [
                c
                for c in self.clock.getDelayedCalls()
                if c.getTime() <= self.clock.seconds()
            ]
            self.clock.advance(0)
            moved = bool(due)
            for connection in list(self._connections):
                if connection.step():
                    moved = True
                if connection.closed:
                    self._connections.remove(connection)
            if not moved:
                return anything
            anything = True
        raise RuntimeError(f"still busy after {MAX_FLUSH_ROUNDS} rounds of flush()")

    def advance(self, seconds: float) -> None:
        """`flush`, move `clock` on by ``seconds``, and `flush` again."""
        self.flush()
        self.clock.advance(seconds)
        self.flush()

    # -- clients -------------------------------------------------------------------

    def agent(self, pool: HTTPConnectionPool | None = None) -> Agent:
        """
        txhttp's `txhttp.client.Agent` connected to this server.

        Args:
            pool: The pool to use; by default one shared by every call
                without a pool, so connections are reused between them.

        Returns:
            With no ``pool``, the same agent on every call; otherwise a new
            agent over ``pool``. Both run on `clock`.
        """
        if pool is not None:
            return Agent(self.clock, pool=pool, endpoint_factory=self.endpoint_factory)
        if self._agent is None:
            self._agent = Agent(
                self.clock,
                pool=HTTPConnectionPool(self.clock),
                endpoint_factory=self.endpoint_factory,
            )
        return self._agent

    def client(
        self,
        config: HTTPClientConfig | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> HTTPClient:
        """
        An `txhttp.client.HTTPClient` sending through `agent` with `clock` injected.

        Args:
            config: The client's settings (pool settings in it are unused:
                the agent brings its pool).
            headers: Default headers sent with every request.
        """
        return HTTPClient(config, agent=self.agent(), clock=self.clock, headers=headers)


# -- canned responses and a recording agent ---------------------------------------


@implementer(IPushProducer)
class _StubBodyTransport:
    """What a `StubResponse` body protocol is connected to."""

    def __init__(self, response: StubResponse) -> None:
        self._response = response
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._response._deliver()

    def stopProducing(self) -> None:
        self.stopped = True
        self._response._stop()

    def abortConnection(self) -> None:
        self.stopProducing()

    def loseConnection(self) -> None:
        self.stopProducing()


@implementer(IResponse)
class StubResponse:
    """
    An ``IResponse`` with a canned head and body, for code that reads responses.

    The body is delivered to the protocol given to `deliverBody` at once,
    one ``dataReceived`` call per chunk, honouring ``pauseProducing`` /
    ``resumeProducing`` of its transport (a reader may pause or resume from
    inside ``dataReceived``: chunks still arrive one at a time, in order).
    With ``complete=False`` more is added with `write`, and the body ends
    with `finish` or `fail`. `delivered`, `paused` and `stopped` tell a test
    what the reader did with the body.

    Args:
        code: The status code.
        headers: The header fields: ``Headers``, or a mapping of names to one
            value or a list of values (``str`` or ``bytes``).
        body: The body so far: bytes, or a sequence of chunks, each
            delivered by its own ``dataReceived`` call (empty chunks are
            skipped).
        phrase: The reason phrase; by default the standard one for ``code``.
        complete: Whether ``body`` is all of it.
        length: The body length the response announces, when it should
            differ from the default (to test a reader's checks).

    Attributes:
        version: Always ``(b"HTTP", 1, 1)``.
        code: The status code.
        phrase: The reason phrase.
        headers: The header fields (``Headers``).
        length: ``length`` if given; else the body's length if ``complete``,
            else ``UNKNOWN_LENGTH``.
        request: Always ``None``.
        previousResponse: What `setPreviousResponse` recorded.
    """

    def __init__(
        self,
        code: int = 200,
        headers: _HeaderFields | None = None,
        body: bytes | Sequence[bytes] = b"",
        *,
        phrase: bytes | None = None,
        complete: bool = True,
        length: int | None = None,
    ) -> None:
        self.version = (b"HTTP", 1, 1)
        self.code = code
        if phrase is None:
            try:
                phrase = HTTPStatus(code).phrase.encode("ascii")
            except ValueError:
                phrase = b"Unknown"
        self.phrase = phrase
        self.headers = _to_headers(headers)
        chunks = [body] if isinstance(body, bytes) else list(body)
        self.length: int | object = (
            length
            if length is not None
            else (sum(map(len, chunks)) if complete else UNKNOWN_LENGTH)
        )
        self.request = None
        self.previousResponse: IResponse | None = None
        self._chunks: list[bytes] = [chunk for chunk in chunks if chunk]
        self._end: Failure | None = (
            Failure(ResponseDone("response complete")) if complete else None
        )
        self._protocol: IProtocol | None = None
        self._transport: _StubBodyTransport | None = None
        self._delivered = False
        self._delivering = False

    @property
    def delivered(self) -> bool:
        """Whether `deliverBody` was called."""
        return self._delivered

    @property
    def paused(self) -> bool:
        """Whether the reader paused the body and has not resumed it."""
        return self._transport is not None and self._transport.paused

    @property
    def stopped(self) -> bool:
        """Whether the reader called ``stopProducing`` (as aborting does)."""
        return self._transport is not None and self._transport.stopped

    def setPreviousResponse(self, response: IResponse) -> None:
        """Record the response this one follows (redirects)."""
        self.previousResponse = response

    def deliverBody(self, protocol: IProtocol) -> None:
        """
        Connect ``protocol`` and deliver the body, then ``connectionLost``.

        Raises:
            RuntimeError: Called a second time.
        """
        if self._delivered:
            raise RuntimeError("deliverBody called twice")
        self._delivered = True
        self._protocol = protocol
        self._transport = _StubBodyTransport(self)
        # Body transports are push producers, not full ITransports (as in
        # twisted.web's own responses).
        protocol.makeConnection(cast(ITransport, self._transport))
        self._deliver()

    def write(self, data: bytes) -> None:
        """Add body bytes (delivered now unless the reader paused)."""
        if self._end is not None:
            raise RuntimeError("write after the body ended")
        self._chunks.append(data)
        self._deliver()

    def finish(self) -> None:
        """
        End the body normally (``ResponseDone``).

        Raises:
            RuntimeError: The body already ended.
        """
        self._end_with(Failure(ResponseDone("response complete")))

    def fail(self, reason: BaseException) -> None:
        """
        End the body with ``reason`` (for example a ``ResponseFailed``).

        Raises:
            RuntimeError: The body already ended.
        """
        self._end_with(Failure(reason))

    def _end_with(self, reason: Failure) -> None:
        if self._end is not None:
            raise RuntimeError("the body already ended")
        self._end = reason
        self._deliver()

    def _stop(self) -> None:
        """The reader stopped the body: drop the rest, end it as an abort."""
        self._chunks.clear()
        if self._protocol is not None:
            self._end = Failure(ConnectionAborted("body stopped by its reader"))
            self._deliver()

    def _deliver(self) -> None:
        protocol, transport = self._protocol, self._transport
        if protocol is None or transport is None or self._delivering:
            # A resume from inside dataReceived: the running loop goes on.
            return
        self._delivering = True
        try:
            while self._chunks and not transport.paused:
                protocol.dataReceived(self._chunks.pop(0))
        finally:
            self._delivering = False
        if not self._chunks and self._end is not None and self._protocol is not None:
            self._protocol = None
            protocol.connectionLost(self._end)


def _to_headers(
    headers: _HeaderFields | None,
) -> Headers:
    if isinstance(headers, Headers):
        return headers
    result = Headers()
    for name, value in (headers or {}).items():
        raw_name = name.encode("latin-1") if isinstance(name, str) else name
        values: list[str | bytes] = (
            [value] if isinstance(value, (str, bytes)) else list(value)
        )
        result.setRawHeaders(
            raw_name, [v.encode("latin-1") if isinstance(v, str) else v for v in values]
        )
    return result


def make_response(
    code: int = 200,
    headers: _HeaderFields | None = None,
    body: bytes | Sequence[bytes] = b"",
) -> StubResponse:
    """
    A complete `StubResponse`, e.g. ``make_response(404, {"a": "b"}, b"no")``.

    Args:
        code: The status code (its reason phrase is the standard one).
        headers: The header fields, as for `StubResponse`.
        body: The whole body (bytes, or chunks as for `StubResponse`).
    """
    return StubResponse(code, headers, body)


@implementer(IConsumer)
class _Gatherer:
    """Consumer that keeps what a body producer writes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


@dataclass
class RecordedRequest:
    """
    One request a `RecordingAgent` received.

    Attributes:
        method: The method, e.g. ``b"GET"``.
        uri: The absolute URL.
        headers: The headers given (an empty ``Headers`` if none).
        body: The request body, produced when the request was made (``b""``
            without a body producer).
        deferred: What ``request`` returned; `respond` and `fail` fire it.
        cancelled: Whether the caller cancelled ``deferred``.
        body_producer: The ``IBodyProducer`` given (already run to the end),
            or ``None``: for checks of the producer itself, such as the
            ``length`` it announced.
    """

    method: bytes
    uri: bytes
    headers: Headers
    body: bytes
    deferred: Deferred[IResponse]
    cancelled: bool = False
    body_producer: IBodyProducer | None = None

    def header(self, name: str | bytes) -> bytes | None:
        """The first value of header ``name``, or ``None``."""
        raw = name.encode("latin-1") if isinstance(name, str) else name
        values = self.headers.getRawHeaders(raw)
        return values[0] if values else None

    def respond(self, response: IResponse) -> None:
        """Answer the request with ``response``."""
        self.deferred.callback(response)

    def fail(self, reason: BaseException) -> None:
        """Fail the request with ``reason``."""
        self.deferred.errback(Failure(reason))


Responder: TypeAlias = Callable[[RecordedRequest], "IResponse | BaseException | None"]
"""Answers a `RecordedRequest`: a response, an error, or ``None`` (pending)."""


@implementer(IAgent)
class RecordingAgent:
    """
    A fake ``IAgent``: records requests, answers with canned responses.

    Each request is appended to `requests` and answered by the first
    response queued with `queue`, else by ``responder``, else left pending
    for the test to answer with `RecordedRequest.respond`. Body producers are
    run to the end at once, so their bytes are in `RecordedRequest.body`.

    Args:
        responder: Called for each request when nothing is queued.

    Attributes:
        requests: Every request received, in order.
        responder: The ``responder`` given; a test may replace it (or set it
            to ``None``) at any time.
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[RecordedRequest] = []
        self.responder: Responder | None = responder
        self._queued: list[IResponse | BaseException] = []

    def queue(self, *answers: IResponse | BaseException) -> None:
        """Answer the next requests, in order, with these responses or errors."""
        self._queued.extend(answers)

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """Record the request and answer it (see the class docstring)."""
        body = b""
        if bodyProducer is not None:
            gatherer = _Gatherer()
            outcome: list[object] = []
            bodyProducer.startProducing(gatherer).addBoth(outcome.append)
            if not outcome:
                return fail(RuntimeError("body producer did not finish at once"))
            if isinstance(outcome[0], Failure):
                return fail(outcome[0])
            body = b"".join(gatherer.chunks)
        record: RecordedRequest

        def cancel(_: Deferred[IResponse]) -> None:
            record.cancelled = True

        record = RecordedRequest(
            method,
            uri,
            headers if headers is not None else Headers(),
            body,
            Deferred(cancel),
            body_producer=bodyProducer,
        )
        self.requests.append(record)
        answer: IResponse | BaseException | None = None
        if self._queued:
            answer = self._queued.pop(0)
        elif self.responder is not None:
            answer = self.responder(record)
        if isinstance(answer, BaseException):
            record.fail(answer)
        elif answer is not None:
            record.respond(answer)
        return record.deferred


# -- reading bodies ------------------------------------------------------------------


class _BodyCollector(Protocol):
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason


def read_body(response: IResponse, *, server: MemoryHTTPServer | None = None) -> bytes:
    """
    Read a whole response body synchronously.

    For responses whose body is already in memory: a `StubResponse`, or a
    response from a `MemoryHTTPServer` (pass it as ``server`` to flush it
    after asking for the body, in case the body is bigger than what the
    client buffers).

    Returns:
        The body bytes.

    Raises:
        RuntimeError: The body has not ended (``deliverBody`` did not finish).
        Exception: Whatever the body ended with if not ``ResponseDone`` or
            ``PotentialDataLoss``, for example `txhttp.client.ResponseFailed`.
    """
    collector = _BodyCollector()
    response.deliverBody(collector)
    if server is not None:
        server.flush()
    reason = collector.reason
    if reason is None:
        raise RuntimeError(
            f"the body of {response!r} has not ended; flush() the server first"
        )
    if not reason.check(ResponseDone, PotentialDataLoss):
        reason.raiseException()
    return b"".join(collector.chunks)
