# -*- test-case-name: txhttp.test.test_server_writethrough,txhttp.test.test_client_writethrough,txhttp.test.test_twisted_io -*-  # noqa: E501
"""
Write-through: bytes go to an idle plain TCP socket at once.

Twisted's TCP transport buffers every ``write`` and sends it on the
reactor's next turn: a writable event, two epoll changes and a ``doWrite``
for bytes the kernel would have taken at once. When the transport is a plain
`twisted.internet.tcp.Connection` (no ``startTLS``), open, and holds nothing
unsent, `write_through` hands the bytes to its ``writeSomeData`` now;
whatever the kernel did not take (or an error result) goes through
``transport.write`` as usual, after the bytes already sent, so the order on
the wire never changes.

`sends_now` reads private attributes of Twisted's
`twisted.internet.abstract.FileDescriptor`: ``dataBuffer`` and ``offset``
(the bytes being sent and how far), ``_tempDataLen`` (the size of the writes
queued behind them) and ``_writeDisconnected`` (the write side was shut;
`close_now` also reads ``_writeDisconnecting``, a shut still to come),
and of `twisted.internet.tcp.Connection`: ``_aborting`` (``abortConnection``
was called). Each one it cannot find counts as "something may be buffered"
or "closed", so a Twisted release that renames them just turns write-through
off: every write takes the usual path.

`close_now` goes one step further for a connection that ends with those
bytes: when the kernel takes all of them, the socket is closed at once,
as Twisted's own ``loseConnection`` does for a connection whose write side
is already shut, instead of on a writable event of the reactor's next turn
(two epoll changes, a wake-up and a ``doWrite`` with nothing to write).

`TurnBatch` holds writes of many connections until the end of the
reactor's turn, then lets each write in turn: they leave back to back, as
Twisted's buffered writes do, but without the epoll changes and the
writable event per connection.

Used by the client (``txhttp.client._writethrough``, which re-exports
`sends_now`, `write_through` and `TurnBatch`) and by the server's
``HTTPChannel``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar
from weakref import WeakKeyDictionary

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.tcp import Connection as TCPConnection
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = [
    "TurnBatch",
    "close_now",
    "per_clock",
    "sends_now",
    "turn_batch_for",
    "write_through",
]

_log = Logger()
_Shared = TypeVar("_Shared")


def sends_now(socket: TCPConnection) -> bool:
    """
    Whether bytes may go straight to ``socket``'s ``writeSomeData``.

    Args:
        socket: A plain TCP transport.

    Returns:
        True when it is not TLS, open for writing, not aborted
        (``_aborting``) and nothing written earlier waits in its buffer (so
        nothing could be overtaken); False otherwise, including when
        Twisted's private attributes are missing.
    """
    # Plain attribute reads, a missing one caught: about a quarter cheaper
    # than ``getattr`` with defaults, and this runs once per write.
    try:
        pending: object = socket.dataBuffer
        return (
            socket._tempDataLen == 0
            and type(pending) is bytes
            and socket.offset == len(pending)
            and bool(socket.connected)
            and not socket.disconnecting
            and not socket._writeDisconnected
            and not socket._aborting
            and not socket.TLS
        )
    except AttributeError:
        return False


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


def _half_close_pending(transport: TCPConnection) -> bool:
    """
    Whether ``loseWriteConnection`` waits for the transport's write turn.

    Until that turn runs, the transport is registered for writing: the
    reactor may call its ``doWrite`` right after the ``doRead`` running now,
    which must not find the socket closed under it. Unknown counts as yes.
    """
    try:
        return bool(transport._writeDisconnecting)
    except AttributeError:
        return True


class _Done(Failure):
    """
    A clean close (`ConnectionDone`) whose `check` tests classes with
    ``isinstance``.

    ``Failure.check`` builds the dotted name of each class it is given
    (0.5 us a call); Twisted's TCP transport asks it once per close. For
    exception classes the answer is the same; names (strings) go to
    ``Failure.check`` itself.
    """

    def check(self, *errorTypes: type[BaseException] | str) -> object:
        """The first of ``errorTypes`` this failure is an instance of, or None."""
        value = self.value
        for kind in errorTypes:
            if isinstance(kind, type) and issubclass(kind, Exception):
                if isinstance(value, kind):
                    return kind
            elif super().check(kind) is not None:
                return kind
        return None


_CONNECTION_DONE: Final = _Done(ConnectionDone())
"""The reason `close_now` gives (shared, as ``connectionDone`` is)."""


def close_now(transport: TCPConnection, data: bytes) -> bool:
    """
    Send ``data`` last and close ``transport`` at once if the kernel took it.

    When `sends_now` allows it and ``writeSomeData`` takes all of ``data``
    (or there is none), the transport's ``connectionLost`` is called now
    with a clean-close `ConnectionDone` failure: what the reactor would
    call on the turn after a ``loseConnection``, once the empty buffer was
    "written". It stops
    reading, stops the registered producer (``stopProducing``), shuts and
    closes the socket, then calls the protocol's ``connectionLost``, all
    before this returns. Otherwise whatever of ``data`` the kernel did not
    take goes to ``transport.write`` (as in `write_through`), nothing is
    closed, and the caller closes as usual (``loseConnection``). Nothing is
    closed either while a ``loseWriteConnection`` waits for the transport's
    write turn: the transport is then registered for writing, and the
    reactor may call its ``doWrite`` right after the ``doRead`` running now.

    The caller must be ready for its protocol's ``connectionLost`` to run
    inside this call; Twisted's ``loseConnection`` does the same when the
    write side is already shut.

    Args:
        transport: The plain TCP transport.
        data: The last bytes to send on it (may be empty).

    Returns:
        True when the connection is closed, False when the caller must
        close it.
    """
    if not sends_now(transport) or _half_close_pending(transport):
        if data:
            transport.write(data)
        return False
    if data:
        sent = transport.writeSomeData(data)
        if type(sent) is not int:
            transport.write(data)  # The error is reported on its own turn.
            return False
        if sent != len(data):
            transport.write(data[sent:])
            return False
    transport.connectionLost(_CONNECTION_DONE)
    return True


class TurnBatch:
    """
    Writes held until the end of one reactor turn, then made in order.

    The first `add` (or `begin`) of a turn schedules one ``callLater(0)``;
    when it runs (after the reactor has handled every event of its poll,
    before the next poll) each release added meanwhile is called, in the
    order added. A release that raises is logged; the others still run.
    """

    __slots__ = ("__weakref__", "_call", "_held")

    def __init__(self) -> None:
        self._held: list[Callable[[], object]] = []
        self._call: IDelayedCall | None = None

    def begin(self, clock: IReactorTime) -> bool:
        """
        Open this turn's batch on ``clock`` unless it is open already.

        Returns:
            True if this call opened it: the caller is the turn's first
            writer (and may write at once); False if others came first.
        """
        call = self._call
        if call is None or not call.active():
            # (Not active: cancelled from outside, say by a test's clean-up
            # of the reactor's calls. A new one runs what it was to run.)
            self._call = clock.callLater(0, self._release)
            return True
        return False

    def add(self, release: Callable[[], object], clock: IReactorTime) -> None:
        """Call ``release`` at the end of this turn of ``clock``."""
        self._held.append(release)
        call = self._call
        if call is None or not call.active():
            self._call = clock.callLater(0, self._release)

    def _release(self) -> None:
        """The turn is over: every held release runs."""
        self._call = None
        held, self._held = self._held, []
        for release in held:
            try:
                release()
            except Exception:
                # One connection's failure must not keep the others' bytes.
                _log.failure("writing held bytes: {release!r}", release=release)


_TURN_BATCHES: Final[WeakKeyDictionary[object, TurnBatch]] = WeakKeyDictionary()


def per_clock(
    registry: WeakKeyDictionary[object, _Shared],
    clock: object,
    make: Callable[[], _Shared],
) -> _Shared:
    """
    The object ``registry`` keeps for ``clock``, made by ``make`` if none.

    A clock that cannot be weakly referenced gets a fresh object each time
    (nothing is then shared, nothing goes wrong).
    """
    try:
        shared = registry.get(clock)
        if shared is None:
            shared = registry[clock] = make()
    except TypeError:
        return make()
    return shared


def turn_batch_for(clock: object) -> TurnBatch:
    """The `TurnBatch` shared by everything writing on ``clock`` (a reactor)."""
    return per_clock(_TURN_BATCHES, clock, TurnBatch)
