# -*- test-case-name: txhttp.test.test_client_download -*-
"""
A receive low-water mark (``SO_RCVLOWAT``) for large downloads over TCP.

A reactor reads a socket once per readiness event, and each event costs a
turn of Python (the poll, the transport, the protocol, the parser, the body
consumer). On loopback and fast links a large body arrives in pieces of about
100 KiB, so a 100 MiB download takes about a thousand turns. `ReadLowWater`
asks the kernel to report the socket readable only once a given number of
bytes waits (``SO_RCVLOWAT``, Linux): fewer, larger reads, a fraction of the
turns.

The mark is only a hint to the kernel, and it must never hold back bytes the
connection needs. So:

- it is never above the body bytes still to come (a Content-Length body's
  count, from the protocol), so the last bytes of a body always wake the
  reader, and it is back at 1 once the body is complete or its length is not
  known (heads, chunked bodies, bodies read until close);
- it is never above half the socket's receive buffer (``SO_RCVBUF``, which
  the kernel grows as the transfer goes): a mark that needs a bigger buffer
  makes Linux (``tcp_set_rcvlowat``) grow it and clamp the receive window to
  the mark, so the sender could only send what the reader waits for, then
  stop until it reads (stop-and-wait);
- a sender that slows down or stops mid-body gets its bytes read within
  ``delay`` seconds of the last read (`DEFAULT_READ_LOW_WATER_DELAY`): a
  timer on the connection's clock puts the mark back to 1 (the kernel then
  reports at once what waits), and within half the request's body idle
  timeout, so that timeout never fires while bytes sit unread in the socket.

The mark is raised only after a read of at least the connection's starting
read size (the sender is streaming), and kept while reads stay large.

Fewer, larger reads also mean larger ``bytes`` objects per read;
`prepare_allocator` keeps those on the heap (see there).

This module knows sockets and time, not HTTP: the pool's protocol says after
each read how many body bytes are still to come. TLS transports (which read
records through OpenSSL) and UNIX sockets (whose readiness ignores the mark)
are left alone, as is any platform but Linux.
"""

from __future__ import annotations

import socket as _socket
import sys
from typing import Final, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime

__all__ = [
    "DEFAULT_READ_LOW_WATER",
    "DEFAULT_READ_LOW_WATER_DELAY",
    "ReadLowWater",
    "SocketOptions",
    "low_water_socket",
    "prepare_allocator",
]

DEFAULT_READ_LOW_WATER: Final = 512 * 1024
"""
Most bytes the kernel waits for before it reports a connection's socket
readable while a large Content-Length body streams in (``SO_RCVLOWAT``).

Capped by the pool's ``max_read_bytes`` (a read takes at most that), by the
body bytes still to come and by half the socket's receive buffer. Half the
default 1 MiB read leaves the read room for what arrives meanwhile: on a
100 MiB loopback download against nginx, 256 KiB to 1 MiB all came to about
one read per MiB and the same CPU per MiB, and 1 MiB gave the lowest
median MB/s (``bench/bench_client.py --download-only --low-waters ...``;
see bench/README.md).
"""

DEFAULT_READ_LOW_WATER_DELAY: Final = 0.01
"""
Seconds after the last read at which a raised low-water mark is put back to
1, so bytes of a sender that slowed down or paused wait at most this long in
the socket. Also capped at half the request's body idle timeout. A fast
transfer reads far more often than this; the check costs one timer call per
interval while a large body streams.
"""

_SO_RCVLOWAT: Final = getattr(_socket, "SO_RCVLOWAT", None)
# The option's number where the platform names it; Linux's value otherwise,
# for the fake sockets of tests on other platforms (`low_water_socket` never
# returns a real socket there).
_SO_RCVLOWAT_VALUE: Final[int] = _SO_RCVLOWAT if _SO_RCVLOWAT is not None else 18
_TCP_FAMILIES: Final = frozenset({_socket.AF_INET, _socket.AF_INET6})


_prepared_read_bytes = 0


def prepare_allocator(read_bytes: int) -> None:
    """
    Let reads of up to ``read_bytes`` come from the heap, not fresh mappings.

    A read of ``n`` bytes allocates an ``n``-byte ``bytes`` object first.
    glibc's ``malloc`` serves a block above its ``mmap`` threshold (128 KiB
    at first) with a fresh ``mmap``: a system call, then a page fault per
    4 KiB touched, and a ``munmap`` when the block is freed. The threshold
    is dynamic (``mallopt(3)``, ``M_MMAP_THRESHOLD``): freeing a mapped
    block raises it to that block's size. Reads that come back short are
    shrunk before they are freed, so a stream of large reads may never
    raise it; allocating and freeing one untouched block a little larger
    than ``read_bytes`` does, once per process and size. Elsewhere than
    glibc this costs one short-lived allocation and nothing else.
    """
    global _prepared_read_bytes  # noqa: PLW0603 (once per process)
    if read_bytes <= _prepared_read_bytes:
        return
    _prepared_read_bytes = read_bytes
    block = bytes(read_bytes + 4096)  # zeroed by the kernel, never touched
    del block


class SocketOptions(Protocol):
    """The two socket methods `ReadLowWater` uses (a ``socket.socket``)."""

    def setsockopt(self, level: int, option: int, value: int, /) -> None:
        """Set an integer socket option."""

    def getsockopt(self, level: int, option: int, /) -> int:
        """Read an integer socket option."""


def low_water_socket(transport: object) -> SocketOptions | None:
    """
    The TCP socket under ``transport`` when a low-water mark applies to it.

    Returns:
        The transport's socket for a Twisted TCP transport (``socket`` an
        ``AF_INET`` or ``AF_INET6`` stream socket) on Linux; ``None`` for any
        other transport or platform.
    """
    if _SO_RCVLOWAT is None or not sys.platform.startswith("linux"):
        return None
    sock: object = getattr(transport, "socket", None)
    if not isinstance(sock, _socket.socket):
        return None
    if sock.family not in _TCP_FAMILIES or sock.type != _socket.SOCK_STREAM:
        return None
    return sock


class ReadLowWater:
    """
    The ``SO_RCVLOWAT`` mark of one connection's socket (see the module).

    The protocol calls `after_read` after handling a read of at least its
    starting read size, or any read while `mark` is above 1, and `stop` when
    the connection is lost.

    Args:
        sock: The socket (`low_water_socket`).
        clock: Where the slow-sender timer comes from.
        most: The highest mark, in bytes (above 1).
        least: The lowest mark worth setting, in bytes: with fewer body
            bytes to come than this, the mark stays at (or goes back to) 1,
            since a wait for them would save no read.
        delay: Seconds after the last read at which a raised mark goes back
            to 1 (`DEFAULT_READ_LOW_WATER_DELAY`).
    """

    __slots__ = (
        "_clock",
        "_delay",
        "_last_read",
        "_least",
        "_mark",
        "_most",
        "_room",
        "_sock",
        "_timer",
        "_wait",
    )

    def __init__(
        self,
        sock: SocketOptions,
        clock: IReactorTime,
        *,
        most: int,
        least: int = 2,
        delay: float,
    ) -> None:
        if most <= 1:
            raise ValueError(f"most must be above 1, not {most!r}")
        if least < 2:
            raise ValueError(f"least must be at least 2, not {least!r}")
        if delay <= 0:
            raise ValueError(f"delay must be positive, not {delay!r}")
        self._sock: SocketOptions | None = sock
        self._clock = clock
        self._most = most
        self._least = least
        self._delay = delay
        self._wait = delay
        self._mark = 1
        self._room = 0
        self._last_read = 0.0
        self._timer: IDelayedCall | None = None

    @property
    def mark(self) -> int:
        """The mark now in effect on the socket, in bytes (1: none)."""
        return self._mark

    def after_read(self, to_come: int | None, idle_timeout: float | None) -> None:
        """
        Set the mark for the next read.

        Args:
            to_come: The body bytes not received yet (``None``: no
                Content-Length body is being read).
            idle_timeout: The body idle timeout of the request in progress,
                in seconds (``None``: none).
        """
        if to_come is None or to_come < self._least:
            if self._mark != 1:
                self.lower()
            return
        want = min(self._most, to_come)
        if want > self._room:
            # The kernel grows the buffer as the transfer goes: look again.
            sock = self._sock
            if sock is None:
                return
            try:
                buffer = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF)
            except OSError:
                self._disable()
                return
            self._room = buffer // 2
            want = min(want, self._room)
            if want < self._least:
                want = 1
        if want != self._mark:
            self._set(want)
        if self._mark == 1:
            return
        wait = self._delay
        if idle_timeout is not None and idle_timeout / 2 < wait:
            wait = idle_timeout / 2
        self._wait = wait
        self._last_read = self._clock.seconds()
        if self._timer is None:
            self._timer = self._clock.callLater(wait, self._check)

    def lower(self) -> None:
        """Put the mark back to 1 (the kernel reports any byte at once)."""
        self._cancel()
        if self._mark != 1:
            self._set(1)

    def stop(self) -> None:
        """The connection is gone: cancel the timer, leave the socket be."""
        self._cancel()
        self._sock = None
        self._mark = 1

    def _check(self) -> None:
        """The timer: lower the mark if no read came for the wait."""
        self._timer = None
        if self._mark == 1:
            return
        late = self._last_read + self._wait - self._clock.seconds()
        if late > 0:
            self._timer = self._clock.callLater(late, self._check)
        else:
            self._set(1)

    def _set(self, mark: int) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _SO_RCVLOWAT_VALUE, mark)
        except OSError:
            self._disable()
            return
        self._mark = mark

    def _cancel(self) -> None:
        timer = self._timer
        self._timer = None
        if timer is not None and timer.active():
            timer.cancel()

    def _disable(self) -> None:
        """The socket refused an option (closing, or unsupported): give up."""
        self._cancel()
        self._sock = None
        self._mark = 1
