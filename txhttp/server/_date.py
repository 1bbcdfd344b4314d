# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
The ``Date`` response field value, formatted once per second.

RFC 9110, section 6.6.1: an origin server with a clock sends ``Date`` in every
2xx, 3xx and 4xx response (we send it in all of them). Formatting an
IMF-fixdate costs a few microseconds, so ``DateCache`` keeps the value for the
current whole second of its injected clock. No I/O, no global time.
"""

from __future__ import annotations

from email.utils import formatdate

from twisted.internet.interfaces import IReactorTime


class DateCache:
    """
    The IMF-fixdate for the current second of ``clock``, as bytes.

    Args:
        clock: Where "now" comes from (a reactor, or a ``Clock`` in tests).
    """

    __slots__ = ("_clock", "_second", "_value")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        """Return the field value for now, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT``."""
        second = int(self._clock.seconds())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, usegmt=True).encode("ascii")
        return self._value
