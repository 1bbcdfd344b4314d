# -*- test-case-name: txhttp.test.test_client_writethrough -*-
"""
Write-through: request bytes go to a plain TCP socket at once.

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
queued behind them) and ``_writeDisconnected`` (the write side was shut).
Each one it cannot find counts as "something may be buffered" or "closed",
so a Twisted release that renames them just turns write-through off: every
write takes the usual path.

Used by `HTTPClientConnection` (its ``_write``, always) and by
`HTTP11ClientProtocol` (through `WriteThroughConsumer`, given to
`ClientExchange.send`) while at most `WRITE_THROUGH_MAX_BUSY` of the
protocols sharing its clock (the reactor) have an exchange under way
(`busy_for`): with many requests in flight the reactor's turn is shared by
all of them, and sending each at once measured slower (more, smaller polls).
"""

from __future__ import annotations

from typing import Final
from weakref import WeakKeyDictionary

from twisted.internet.interfaces import IConsumer, IProducer
from twisted.internet.tcp import Connection as TCPConnection
from zope.interface import implementer

WRITE_THROUGH_MAX_BUSY: Final = 1
"""`HTTP11ClientProtocol` writes a request through only while at most this
many protocols on its clock (itself included) have an exchange under way."""


class BusyConnections:
    """How many `HTTP11ClientProtocol` on one clock have an exchange under way."""

    __slots__ = ("__weakref__", "count")

    def __init__(self) -> None:
        self.count = 0


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
    try:
        busy = _BUSY.get(clock)
        if busy is None:
            busy = _BUSY[clock] = BusyConnections()
    except TypeError:
        return BusyConnections()
    return busy


def sends_now(socket: TCPConnection) -> bool:
    """
    Whether bytes may go straight to ``socket``'s ``writeSomeData``.

    Args:
        socket: A plain TCP transport.

    Returns:
        True when it is not TLS, open for writing and nothing written
        earlier waits in its buffer (so nothing could be overtaken); False
        otherwise, including when Twisted's private attributes are missing.
    """
    buffered: object = getattr(socket, "_tempDataLen", 1)
    pending: object = getattr(socket, "dataBuffer", None)
    return (
        buffered == 0
        and isinstance(pending, bytes)
        and getattr(socket, "offset", -1) == len(pending)
        and bool(socket.connected)
        and not socket.disconnecting
        and not getattr(socket, "_writeDisconnected", True)
        and not socket.TLS
    )


def write_through(transport: TCPConnection, data: bytes) -> None:
    """
    Write ``data`` to ``transport``, straight to the kernel when safe.

    When `sends_now` allows it, ``data`` goes to ``writeSomeData``; the part
    the kernel did not take, or all of it after an error result (Twisted
    returns the exception rather than raising), goes to ``transport.write``,
    which buffers it behind nothing and reports the error on its own turn.
    Otherwise all of ``data`` goes to ``transport.write``.

    Args:
        transport: The plain TCP transport.
        data: The bytes to send.
    """
    if sends_now(transport):
        sent = transport.writeSomeData(data)
        if type(sent) is int:
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)


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
