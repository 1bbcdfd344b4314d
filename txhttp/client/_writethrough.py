# -*- test-case-name: txhttp.test.test_client_writethrough -*-
"""
Write-through: request bytes go to a plain TCP socket at once.

`sends_now`, `write_through` and `TurnBatch` live in ``txhttp._twisted_io``
(the server uses them too) and are re-exported here.

Twisted's TCP transport buffers every ``write`` and sends it on the
reactor's next turn. For a client with one request in flight that turn costs
a poll and two epoll changes per request, for bytes the kernel would have
taken at once. When the transport is a plain `twisted.internet.tcp.Connection`
(no ``startTLS``), open, and holds nothing unsent, `write_through` hands the
bytes to its ``writeSomeData`` now; whatever the kernel did not take (or an
error result) goes through ``transport.write`` as usual, after the bytes
already sent, so the order on the wire never changes.

`sends_now` reads private attributes of Twisted's
`twisted.internet.abstract.FileDescriptor`: ``dataBuffer`` and ``offset``
(the bytes being sent and how far), ``_tempDataLen`` (the size of the writes
queued behind them) and ``_writeDisconnected`` (the write side was shut),
and of `twisted.internet.tcp.Connection`: ``_aborting`` (``abortConnection``
was called).
Each one it cannot find counts as "something may be buffered" or "closed",
so a Twisted release that renames them just turns write-through off: every
write takes the usual path.

Used by `HTTPClientConnection` (its ``_write``, always) and by
`HTTP11ClientProtocol` (through `WriteThroughConsumer`, given to
`ClientExchange.send`) while at most `WRITE_THROUGH_MAX_BUSY` of the
protocols sharing its clock (the reactor) have an exchange under way
(`busy_for`): with many requests in flight the reactor's turn is shared by
all of them, and sending each at once measured slower (more, smaller polls,
and a wake-up of the server per request). Past that, a request without a
body goes through `TurnEndConsumer`: its head is held until the end of the
reactor's turn (one ``callLater(0)`` per turn for every connection on the
clock, `TurnBatch`) and then written through, all connections' heads one
after the other. The server still gets them in one burst, as with Twisted's
own buffering, but without the two epoll changes and the write event per
request that buffering costs.
"""

from __future__ import annotations

from typing import Final
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IConsumer, IProducer, IReactorTime
from twisted.internet.tcp import Connection as TCPConnection
from twisted.logger import Logger
from zope.interface import implementer

# Shared with the server; re-exported here for this module's importers.
from txhttp._twisted_io import TurnBatch, per_clock, sends_now, write_through

__all__ = [
    "WRITE_THROUGH_MAX_BUSY",
    "BusyConnections",
    "TurnBatch",
    "TurnEndConsumer",
    "WriteThroughConsumer",
    "busy_for",
    "sends_now",
    "write_through",
]

_log = Logger()

WRITE_THROUGH_MAX_BUSY: Final = 1
"""`HTTP11ClientProtocol` writes a request through only while at most this
many protocols on its clock (itself included) have an exchange under way."""


class BusyConnections:
    """
    How many `HTTP11ClientProtocol` on one clock have an exchange under way,
    and the `TurnBatch` they share.
    """

    __slots__ = ("__weakref__", "batch", "count")

    def __init__(self) -> None:
        self.count = 0
        self.batch = TurnBatch()


_BUSY: Final[WeakKeyDictionary[object, BusyConnections]] = WeakKeyDictionary()


def busy_for(clock: object) -> BusyConnections:
    """
    The count shared by the protocols running on ``clock``.

    Args:
        clock: The protocol's clock (in production, the reactor).

    Returns:
        The same object for the same clock; a fresh one, counting only its
        own protocol, for a clock that cannot be weakly referenced.
    """
    return per_clock(_BUSY, clock, BusyConnections)


@implementer(IConsumer)
class WriteThroughConsumer:
    """
    A plain TCP transport as an `IConsumer` whose writes go through.

    Producers are registered with the transport itself, so its flow
    control (pausing a producer while its buffer is full) is unchanged.

    Args:
        transport: The plain TCP transport.
    """

    __slots__ = ("_transport",)

    def __init__(self, transport: TCPConnection) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        """Send ``data`` (see `write_through`)."""
        write_through(self._transport, data)

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Register ``producer`` with the transport."""
        self._transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """Unregister the transport's producer."""
        self._transport.unregisterProducer()


@implementer(IConsumer)
class TurnEndConsumer:
    """
    A plain TCP transport as an `IConsumer` whose writes wait for the end
    of the reactor's turn, then go through (see `TurnBatch`).

    Only writes made while no producer is registered are held; a producer is
    registered with the transport itself, after what is held was written,
    and writes made while it is registered go through at once, so the
    transport's flow control sees them. `discard` drops what is held (the
    connection was aborted: its bytes must not be sent).

    Args:
        transport: The plain TCP transport.
        clock: The reactor whose turn the writes wait for.
        batch: The clock's `TurnBatch`.
    """

    __slots__ = ("_batch", "_clock", "_held", "_producing", "_transport")

    def __init__(
        self, transport: TCPConnection, clock: IReactorTime, batch: TurnBatch
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._batch = batch
        self._held: list[bytes] = []
        self._producing = False

    def holds(self) -> bool:
        """Whether bytes wait for the end of the turn."""
        return bool(self._held)

    def write(self, data: bytes) -> None:
        """Hold ``data`` for the end of the turn (through at once while producing)."""
        if self._producing:
            write_through(self._transport, data)
            return
        held = self._held
        if not held:
            self._batch.add(self.flush, self._clock)
        held.append(data)

    def flush(self) -> None:
        """Write what is held now (see `write_through`)."""
        held = self._held
        if held:
            data = held[0] if len(held) == 1 else b"".join(held)
            held.clear()
            write_through(self._transport, data)

    def discard(self) -> None:
        """Drop what is held, unsent."""
        self._held.clear()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Write what is held, then register ``producer`` with the transport."""
        self.flush()
        self._producing = True
        self._transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """Unregister the transport's producer."""
        self._producing = False
        self._transport.unregisterProducer()
