# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
Writing one request body from an ``IBodyProducer`` to a transport.

`BodyWriter` is the consumer the producer writes to and the producer the
transport pauses (so a slow peer slows the body down). It frames the body
through the wire core: a known ``length`` is sent as is (the head carries
Content-Length), `UNKNOWN_LENGTH` as chunks ending with the last chunk. A
producer that writes more than it declared, finishes with fewer, or fails is
reported once as a failure (`WrongBodyLength` or its own), and nothing it
writes afterwards reaches the wire; the caller then closes the connection.

Bytes written while ``startProducing`` runs are gathered and sent with the
request head in one ``transport.write``: a small body costs one system call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IProducer, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from txhttp._wire import encode_chunk, encode_last_chunk
from txhttp.client._errors import WrongBodyLength

__all__ = ["DEFAULT_MAX_GATHERED_BYTES", "BodyWriter", "BytesBodyProducer"]

DEFAULT_MAX_GATHERED_BYTES: Final = 64 * 1024
"""
Body bytes gathered with the head before a write. One socket send buffer's
worth: beyond it there is no system call left to save.
"""

_log = Logger()


@implementer(IConsumer, IPushProducer)
class BodyWriter:
    """
    Sends one body from ``producer`` to ``transport``; reports the end once.

    Args:
        transport: Where the framed body goes; it must accept a streaming
            producer (``registerProducer``).
        producer: The body; its ``length`` decides the framing.
        on_done: Called once: with ``None`` when the whole body (and, for
            chunked, the last chunk) was written, or with a `Failure` when
            the producer failed or its length was wrong. Never called after
            `stop`.
    """

    __slots__ = (
        "_chunked",
        "_gathered",
        "_gathered_bytes",
        "_length",
        "_on_done",
        "_outcome",
        "_producer",
        "_registered",
        "_started",
        "_state",
        "_transport",
        "_transport_paused",
        "_written",
    )

    _IDLE: Final = 0
    _PRODUCING: Final = 1
    _FINISHED: Final = 2
    _STOPPED: Final = 3

    def __init__(
        self,
        transport: IConsumer,
        producer: IBodyProducer,
        on_done: Callable[[Failure | None], None],
    ) -> None:
        self._transport = transport
        self._producer = producer
        self._on_done = on_done
        length = producer.length
        self._chunked = length is UNKNOWN_LENGTH
        self._length: int = 0 if self._chunked else int(length)
        self._written = 0
        self._state = self._IDLE
        self._started = False
        self._registered = False
        self._transport_paused = False
        self._gathered: list[bytes] | None = None
        self._gathered_bytes = 0
        self._outcome: tuple[Failure | None] | None = None

    # -- the caller's side ------------------------------------------------------

    def is_started(self) -> bool:
        """Whether `start` was called (a body waiting for 100 Continue is not)."""
        return self._started

    def is_finished(self) -> bool:
        """Whether the whole body was written (``on_done(None)`` happened)."""
        return self._state == self._FINISHED and self._outcome == (None,)

    def is_complete_on_wire(self) -> bool:
        """
        Whether the peer has every byte it was promised, even if the producer
        has not said it is done: a Content-Length body fully written.
        """
        if self._state == self._FINISHED:
            return self._outcome == (None,)
        return (
            self._state == self._PRODUCING
            and not self._chunked
            and self._written == self._length
            and self._gathered is None
        )

    def start(self, prefix: bytes = b"") -> None:
        """
        Start the producer; ``prefix`` (the request head) goes out first.

        Writes made while ``startProducing`` runs are sent with ``prefix`` in
        one ``transport.write``.
        """
        if self._started:
            raise RuntimeError("bug: BodyWriter.start called twice")
        self._started = True
        self._state = self._PRODUCING
        self._gathered = [prefix] if prefix else []
        self._gathered_bytes = len(prefix)
        self._transport.registerProducer(self, True)
        self._registered = True
        try:
            result: Deferred[None] = self._producer.startProducing(self)
        except Exception:
            self._fail(Failure())
        else:
            result.addCallbacks(self._producer_finished, self._producer_failed)
        gathered = self._gathered
        self._gathered = None
        if self._state == self._STOPPED:
            return
        outcome = self._outcome
        if (outcome is None or outcome[0] is None) and gathered:
            self._transport.write(b"".join(gathered))
        if self._state == self._PRODUCING and self._transport_paused:
            self._producer.pauseProducing()
        if outcome is not None:
            self._report()

    def stop(self) -> None:
        """
        Give up on the body: stop the producer, ignore it from now on.

        Safe to call in any state, any number of times; ``on_done`` is not
        called afterwards.
        """
        state = self._state
        self._state = self._STOPPED
        self._unregister()
        if state == self._PRODUCING:
            self._stop_producer()

    # -- IConsumer: the producer's side -------------------------------------------

    def write(self, data: bytes) -> None:
        """Frame and send ``data`` from the producer (or refuse it)."""
        if self._state != self._PRODUCING or not data:
            return
        if not self._chunked:
            written = self._written + len(data)
            if written > self._length:
                self._stop_producer()
                self._fail(Failure(WrongBodyLength(self._length, written)))
                return
            self._written = written
        else:
            self._written += len(data)
            data = encode_chunk(data)
        gathered = self._gathered
        if gathered is None:
            self._transport.write(data)
            return
        gathered.append(data)
        self._gathered_bytes += len(data)
        if self._gathered_bytes >= DEFAULT_MAX_GATHERED_BYTES:
            self._transport.write(b"".join(gathered))
            gathered.clear()
            self._gathered_bytes = 0

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Ignored: the writer already registered the body producer."""

    def unregisterProducer(self) -> None:
        """Ignored: the producer's Deferred says when the body ends."""

    # -- IPushProducer: the transport's side ----------------------------------------

    def pauseProducing(self) -> None:
        """The transport's buffer is full: pause the body producer."""
        self._transport_paused = True
        if self._state == self._PRODUCING and self._gathered is None:
            self._producer.pauseProducing()

    def resumeProducing(self) -> None:
        """The transport drained: resume the body producer."""
        self._transport_paused = False
        if self._state == self._PRODUCING and self._gathered is None:
            self._producer.resumeProducing()

    def stopProducing(self) -> None:
        """The transport is going away: stop the body producer for good."""
        self.stop()

    # -- internals ----------------------------------------------------------------

    def _producer_finished(self, _: object) -> None:
        if self._state != self._PRODUCING:
            return
        if not self._chunked and self._written != self._length:
            self._fail(Failure(WrongBodyLength(self._length, self._written)))
            return
        if self._chunked:
            last = encode_last_chunk()
            if self._gathered is not None:
                self._gathered.append(last)
            else:
                self._transport.write(last)
        self._state = self._FINISHED
        self._unregister()
        self._outcome = (None,)
        if self._gathered is None:
            self._report()

    def _producer_failed(self, reason: Failure) -> None:
        if self._state == self._PRODUCING:
            self._fail(reason)
        elif self._state == self._FINISHED and self._outcome == (None,):
            _log.failure("body producer failed after it finished", reason)

    def _fail(self, reason: Failure) -> None:
        self._state = self._FINISHED
        self._unregister()
        self._outcome = (reason,)
        if self._gathered is None:
            self._report()

    def _report(self) -> None:
        outcome = self._outcome
        if outcome is None:
            raise RuntimeError("bug: BodyWriter reporting without an outcome")
        self._on_done(outcome[0])

    def _unregister(self) -> None:
        if self._registered:
            self._registered = False
            self._transport.unregisterProducer()

    def _stop_producer(self) -> None:
        try:
            self._producer.stopProducing()
        except Exception:
            _log.failure("body producer failed to stop", Failure())


@implementer(IBodyProducer)
class BytesBodyProducer:
    """
    A request body held in memory, written in one piece.

    It keeps no state between calls, so the same producer can be sent again
    (a retry, or a 307/308 redirect).
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Write the whole body at once; the Deferred has already fired."""
        if self._body:
            consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: everything was written at once."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""
