# -*- test-case-name: txhttp.test.test_client_http -*-
"""
A small, verified fake ``IAgent`` for testing `HTTPClient` without sockets.

`FakeAgent` records every request as a `FakeRequest`; a test answers it with
`FakeRequest.respond` (or queues answers with `FakeAgent.queue`), fails it
with `FakeRequest.fail`, or leaves it pending. Responses are `FakeResponse`
objects providing ``IResponse``; their bodies are delivered through
``deliverBody`` to the protocol, honouring pause/resume of a
`FakeBodyTransport` that records every call, so backpressure is observable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IPushProducer
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IBodyProducer, IResponse
from zope.interface import implementer


@implementer(IPushProducer)
class FakeBodyTransport:
    """The transport a body protocol sees: records pause, resume and stop."""

    def __init__(self, response: FakeResponse) -> None:
        self._response = response
        self.calls: list[str] = []
        self.paused = False
        self.stopped = False

    def pauseProducing(self) -> None:
        """Stop delivering body chunks until resumed."""
        self.calls.append("pause")
        self.paused = True

    def resumeProducing(self) -> None:
        """Deliver the chunks held back while paused."""
        self.calls.append("resume")
        self.paused = False
        self._response._pump()

    def stopProducing(self) -> None:
        """Abort the body: as a connection abort would."""
        self.calls.append("stop")
        self.stopped = True
        self._response._abort()


@implementer(IResponse)
class FakeResponse:
    """
    An ``IResponse`` whose body is a list of chunks.

    With ``finished=True`` (the default) the body ends after ``chunks``;
    otherwise the test adds more with `write` and ends it with `finish` or
    `lose`. Chunks are delivered only while the transport is not paused.
    """

    def __init__(
        self,
        code: int = 200,
        headers: Headers | dict[str, str] | None = None,
        chunks: Sequence[bytes] = (),
        *,
        finished: bool = True,
        phrase: bytes = b"OK",
        length: int | None = None,
    ) -> None:
        self.version = (b"HTTP", 1, 1)
        self.code = code
        self.phrase = phrase
        if isinstance(headers, Headers):
            self.headers = headers
        else:
            self.headers = Headers()
            for name, value in (headers or {}).items():
                self.headers.addRawHeader(name, value)
        self._pending: list[bytes] = list(chunks)
        self.length = (
            length
            if length is not None
            else (sum(map(len, chunks)) if finished else UNKNOWN_LENGTH)
        )
        self.request = None
        self.previousResponse: IResponse | None = None
        self._end: Failure | None = Failure(ResponseDone("done")) if finished else None
        self._protocol: Protocol | None = None
        self.transport: FakeBodyTransport | None = None
        self.delivered = False
        self._pumping = False

    def setPreviousResponse(self, response: IResponse) -> None:
        """Record the response this one follows (redirects)."""
        self.previousResponse = response

    def deliverBody(self, protocol: Protocol) -> None:
        """Connect ``protocol`` and deliver what is available."""
        if self.delivered:
            raise RuntimeError("deliverBody called twice")
        self.delivered = True
        self._protocol = protocol
        self.transport = FakeBodyTransport(self)
        protocol.makeConnection(self.transport)
        self._pump()

    def write(self, data: bytes) -> None:
        """Add a body chunk (delivered now unless paused)."""
        self._pending.append(data)
        self._pump()

    def finish(self) -> None:
        """End the body normally (``ResponseDone``)."""
        self._end = Failure(ResponseDone("done"))
        self._pump()

    def lose(self, reason: BaseException) -> None:
        """End the body with an error."""
        self._end = Failure(reason)
        self._pump()

    def _abort(self) -> None:
        """The consumer stopped the body: end it as a connection abort does."""
        self._pending.clear()
        if self._end is None or self._end.check(ResponseDone):
            from twisted.internet.error import ConnectionAborted

            self._end = Failure(ConnectionAborted("aborted by stopProducing"))
        self._pump()

    def _pump(self) -> None:
        """Deliver pending chunks while not paused, then the end if reached."""
        if self._pumping or self._protocol is None or self.transport is None:
            return
        self._pumping = True
        try:
            while self._pending and not self.transport.paused:
                self._protocol.dataReceived(self._pending.pop(0))
            if not self._pending and self._end is not None:
                end, self._end = self._end, None
                protocol, self._protocol = self._protocol, None
                protocol.connectionLost(end)
        finally:
            self._pumping = False


@implementer(IConsumer)
class _Collector:
    """Consumer that gathers what a body producer writes."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.producer: object = None

    def registerProducer(self, producer: object, streaming: bool) -> None:
        self.producer = producer

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        self.data.append(data)


@dataclass
class FakeRequest:
    """One request the fake agent received."""

    method: bytes
    uri: bytes
    headers: Headers
    body_producer: IBodyProducer | None
    deferred: Deferred[IResponse]
    cancelled: bool = False
    body_chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of a request header, decoded, or `None`."""
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def body(self) -> bytes:
        """The request body the producer wrote (produced on first call)."""
        if self.body_producer is None:
            return b""
        if not self.body_chunks:
            collector = _Collector()
            done = self.body_producer.startProducing(collector)
            results: list[object] = []
            done.addBoth(results.append)
            if not results:
                raise RuntimeError("body producer did not finish synchronously")
            if isinstance(results[0], Failure):
                results[0].raiseException()
            self.body_chunks = collector.data or [b""]
        return b"".join(self.body_chunks)

    def respond(self, response: FakeResponse | int = 200, body: bytes = b"") -> None:
        """Fire the request's Deferred with a response."""
        if isinstance(response, int):
            response = FakeResponse(response, chunks=[body] if body else [])
        self.deferred.callback(response)

    def fail(self, reason: BaseException) -> None:
        """Fail the request's Deferred."""
        self.deferred.errback(Failure(reason))


Responder = Callable[[FakeRequest], FakeResponse | BaseException | None]
"""Answers a request: a response, an exception to fail it, or `None` to wait."""


@implementer(IAgent)
class FakeAgent:
    """
    An ``IAgent`` that records requests and answers them as the test says.

    Attributes:
        requests: Every request received, in order.
        responder: Called for each new request, if set; its result answers
            the request at once (`None` leaves it pending).
    """

    def __init__(self, responder: Responder | None = None) -> None:
        self.requests: list[FakeRequest] = []
        self.responder = responder
        self._queue: list[FakeResponse | BaseException] = []

    def queue(self, *answers: FakeResponse | BaseException) -> None:
        """Answer the next requests, in order, with these."""
        self._queue.extend(answers)

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """Record the request and answer it from the queue or responder."""
        record: FakeRequest

        def cancel(d: Deferred[IResponse]) -> None:
            record.cancelled = True

        record = FakeRequest(
            method,
            uri,
            headers if headers is not None else Headers(),
            bodyProducer,
            Deferred(cancel),
        )
        self.requests.append(record)
        answer: FakeResponse | BaseException | None = None
        if self._queue:
            answer = self._queue.pop(0)
        elif self.responder is not None:
            answer = self.responder(record)
        if isinstance(answer, BaseException):
            record.fail(answer)
        elif answer is not None:
            record.respond(answer)
        return record.deferred


def ok(body: bytes = b"", headers: dict[str, str] | None = None) -> FakeResponse:
    """A finished 200 response with ``body``."""
    return FakeResponse(200, headers, [body] if body else [])


__all__ = [
    "FakeAgent",
    "FakeBodyTransport",
    "FakeRequest",
    "FakeResponse",
    "Responder",
    "ok",
    "succeed",
]
