# -*- test-case-name: txhttp.test.test_server_echo -*-
"""
Access logging in the Combined Log Format, to a file or to the twistd log.

One line per finished response::

    127.0.0.1 - - [21/Nov/2026:01:02:03 +0000] "GET / HTTP/1.1" 200 512 "-" "curl/8.5"

Every field taken from the request is untrusted, so `escape_field` turns it
into printable ASCII (quotes and backslashes escaped, control and non-ASCII
bytes as ``\\xHH``): a client can neither forge a second line nor break the
quoting. `format_combined` builds a line; `web_log_formatter` does it for a
``twisted.web`` request (it fits ``Site(logFormatter=...)``); `AccessLog`
writes lines for txhttp's own exchanges. Time comes from an injected
``IReactorTime``. Log rotation is left to the operator (or to
``twisted.python.logfile`` when the twistd log is used).
"""

from __future__ import annotations

import time
from typing import IO, TYPE_CHECKING, Final

from twisted.logger import Logger

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress, IReactorTime
    from twisted.web.http import Request

_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

_access_logger: Final = Logger(namespace="txhttp.access")

_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\x{code:02x}" for code in range(0x20)},
    **{code: f"\\x{code:02x}" for code in range(0x7F, 0x100)},
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def escape_field(value: bytes | str | None) -> str:
    """
    Return ``value`` as printable ASCII safe inside a double-quoted log field.

    ``None`` and empty values become ``-``, as the format wants.
    """
    if not value:
        return "-"
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text.translate(_ESCAPES)


def log_timestamp(seconds: float) -> str:
    """Return ``[dd/Mon/yyyy:hh:mm:ss +0000]`` for a POSIX time, in UTC."""
    t = time.gmtime(seconds)
    return (
        f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000]"
    )


def _host_of(address: IAddress | None) -> str:
    host = getattr(address, "host", None)
    return escape_field(host) if isinstance(host, str | bytes) else "-"


def format_combined(
    *,
    peer: IAddress | None,
    timestamp: str,
    method: bytes,
    target: bytes,
    version: bytes,
    status: int,
    body_bytes: int,
    referer: bytes | None,
    user_agent: bytes | None,
) -> str:
    """
    Return one Combined Log Format line, without its line feed.

    Args:
        peer: The client's address; its ``host`` is logged (``-`` if none).
        timestamp: The bracketed time, as from `log_timestamp`.
        method: The request method, as received.
        target: The request-target, as received.
        version: The request's HTTP version.
        status: The response status code.
        body_bytes: Response body bytes sent (``-`` when zero).
        referer: The Referer field value, if any.
        user_agent: The User-Agent field value, if any.
    """
    request_line = " ".join(
        (escape_field(method), escape_field(target), escape_field(version))
    )
    size = str(body_bytes) if body_bytes else "-"
    return (
        f'{_host_of(peer)} - - {timestamp} "{request_line}" {status} {size} '
        f'"{escape_field(referer)}" "{escape_field(user_agent)}"'
    )


def web_log_formatter(timestamp: str, request: Request) -> str:
    """
    Format a ``twisted.web`` request: an ``IAccessLogFormatter``.

    Pass it as ``Site(resource, logFormatter=web_log_formatter)`` to get the
    same escaping and layout as txhttp's native access log.
    """
    return format_combined(
        peer=request.getClientAddress(),
        timestamp=timestamp,
        method=request.method,
        target=request.uri,
        version=request.clientproto,
        status=request.code,
        body_bytes=request.sentLength,
        referer=request.getHeader(b"referer"),
        user_agent=request.getHeader(b"user-agent"),
    )


class AccessLog:
    """
    Writes Combined Log Format lines to a file, or to the twistd log.

    With a path, the file is opened for appending, line-buffered, when the
    log is created, and closed by `close`. Without one, each line is emitted
    at info level in the ``txhttp.access`` namespace of ``twisted.logger``,
    which twistd routes to its own log.
    """

    def __init__(self, clock: IReactorTime, path: str | None = None) -> None:
        """
        Args:
            clock: Where the time of each line comes from.
            path: The file to append to, or ``None`` for the twistd log.
        """
        self._clock = clock
        self._file: IO[str] | None = None
        if path is not None:
            self._file = open(  # noqa: SIM115 (kept open until close())
                path, "a", buffering=1, encoding="ascii", newline="\n"
            )
        self._second = -1
        self._timestamp = ""

    def _now(self) -> str:
        seconds = int(self._clock.seconds())
        if seconds != self._second:
            self._second = seconds
            self._timestamp = log_timestamp(seconds)
        return self._timestamp

    def log(
        self,
        *,
        peer: IAddress | None,
        method: bytes,
        target: bytes,
        version: bytes,
        status: int,
        body_bytes: int,
        referer: bytes | None,
        user_agent: bytes | None,
    ) -> None:
        """Write the line for one finished response (see ``format_combined``)."""
        line = format_combined(
            peer=peer,
            timestamp=self._now(),
            method=method,
            target=target,
            version=version,
            status=status,
            body_bytes=body_bytes,
            referer=referer,
            user_agent=user_agent,
        )
        if self._file is not None:
            self._file.write(line + "\n")
        else:
            _access_logger.info("{line}", line=line)

    def close(self) -> None:
        """Close the file, if any; later lines go to the twistd log."""
        if self._file is not None:
            self._file.close()
            self._file = None
