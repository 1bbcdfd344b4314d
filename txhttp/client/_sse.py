# -*- test-case-name: txhttp.test.test_client_sse -*-
"""
Server-Sent Events: the ``text/event-stream`` parser and a reconnecting reader.

`SSEParser` follows the WHATWG HTML "event stream interpretation" rules: the
stream is UTF-8 (invalid bytes replaced), one leading BOM is dropped, lines end
with CRLF, LF or CR (a CR at the end of a chunk waits to see if an LF
follows), lines starting with ``:`` are comments, ``data`` lines accumulate
with LF between them, ``event`` names the type, ``id`` sets the last event ID
(unless it contains NUL) which persists across events, ``retry`` (digits only)
sets the reconnection time, and a blank line dispatches. An unterminated event
at the end of the stream is discarded. Lines and events are bounded.

`EventSource` reads events from `HTTPClient.sse`: it sends ``Accept:
text/event-stream`` and, when reconnecting, ``Last-Event-ID``; it waits the
server's ``retry`` (or its default) on the injected clock before reconnecting,
stops for good on a 204, and gives up after ``max_reconnects`` attempts in a
row without an event.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from txhttp.client._exceptions import (
    HTTPClientError,
    HTTPConnectionError,
    HTTPStatusError,
    HTTPTimeoutError,
)

if TYPE_CHECKING:
    from txhttp.client._client_response import BodyStream, ClientResponse

__all__ = [
    "DEFAULT_MAX_RECONNECTS",
    "DEFAULT_RECONNECT_DELAY",
    "EventSource",
    "SSEParser",
    "ServerSentEvent",
]

_log = Logger()

DEFAULT_RECONNECT_DELAY: Final = 3.0
"""Seconds before reconnecting when the server sent no ``retry`` (as browsers)."""

DEFAULT_MAX_RECONNECTS: Final = 10
"""Reconnection attempts in a row without receiving an event before giving up."""

MAX_RETRY_DELAY: Final = 300.0
"""Longest wait a server's ``retry`` field may impose, in seconds."""

_LINE_END: Final = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """
    One dispatched event.

    Attributes:
        event: The event type (``"message"`` unless the server named one).
        data: The data lines joined with LF (no trailing LF).
        id: The last event ID at dispatch time (persists across events;
            ``""`` if none was ever set).
        retry: The reconnection time in milliseconds set by a ``retry`` field
            in this event's block, or `None`.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEParser:
    """
    Incremental ``text/event-stream`` parser (WHATWG HTML, section 9.2.6).

    Args:
        last_event_id: The last event ID to start with (a reconnection
            continues from the previous connection's).
        max_line_bytes: Longest line accepted, in characters.
        max_event_bytes: Largest data buffer of one event, in characters.

    Attributes:
        last_event_id: The last event ID buffer.
        retry: The latest reconnection time in milliseconds, or `None`.
    """

    def __init__(
        self,
        *,
        last_event_id: str = "",
        max_line_bytes: int = 1024 * 1024,
        max_event_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._first = True
        self._data: list[str] = []
        self._data_size = 0
        self._event_type = ""
        self._block_retry: int | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """
        Parse a chunk of the stream.

        Returns:
            The events completed by this chunk, in order.

        Raises:
            HTTPClientError: A line or an event is over its limit.
        """
        text = self._decoder.decode(data)
        if self._first and text:
            self._first = False
            if text.startswith("\ufeff"):
                text = text[1:]
        return self._lines(self._pending + text, final=False)

    def close(self) -> list[ServerSentEvent]:
        """
        End of stream: a last unterminated line is processed, but the
        pending event is discarded as the rules require.
        """
        text = self._pending + self._decoder.decode(b"", final=True)
        events = self._lines(text, final=True)
        self._data, self._data_size, self._event_type = [], 0, ""
        return events

    def _lines(self, text: str, *, final: bool) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            if match.group() == "\r" and match.end() == len(text) and not final:
                break  # an LF may follow in the next chunk
            event = self._line(text[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        rest = text[start:]
        if final and rest:
            self._line(rest)
            rest = ""
        if len(rest) > self._max_line:
            raise HTTPClientError(
                f"SSE line is over {self._max_line} characters without an end"
            )
        self._pending = rest
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if len(line) > self._max_line:
            raise HTTPClientError(f"SSE line is over {self._max_line} characters")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event_type = value
        elif name == "data":
            self._data.append(value)
            self._data_size += len(value) + 1
            if self._data_size > self._max_event:
                raise HTTPClientError(
                    f"SSE event data is over {self._max_event} characters"
                )
        elif name == "id":
            if "\x00" not in value:
                self.last_event_id = value
        elif name == "retry" and value and value.isascii() and value.isdigit():
            self.retry = self._block_retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, self._data, self._data_size = self._data, [], 0
        event_type, self._event_type = self._event_type, ""
        retry, self._block_retry = self._block_retry, None
        if not data:
            return None
        return ServerSentEvent(
            event=event_type or "message",
            data="\n".join(data),
            id=self.last_event_id,
            retry=retry,
        )


Opener = Callable[[Mapping[str, str]], Deferred["ClientResponse"]]
"""Sends the SSE request with these extra headers; fires with the response."""


class EventSource:
    """
    Events from an SSE endpoint, with optional automatic reconnection.

    Use as ``async with client.sse(url) as events: async for event in
    events: ...``; or iterate it directly and call `close` when done.

    Args:
        open: Sends the request (with the given extra headers).
        clock: Time source for reconnection delays.
        reconnect: Reconnect when the stream ends or breaks.
        reconnect_delay: Seconds to wait when the server set no ``retry``.
        max_reconnects: Reconnections in a row without an event before
            failing with `HTTPConnectionError`.
        last_event_id: Sent as ``Last-Event-ID`` from the first request.
        max_line_bytes: Longest line.
        max_event_bytes: Largest event.
    """

    def __init__(
        self,
        open: Opener,
        *,
        clock: IReactorTime,
        reconnect: bool = False,
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        last_event_id: str = "",
        max_line_bytes: int = 1024 * 1024,
        max_event_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._open = open
        self._clock = clock
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.max_reconnects = max_reconnects
        self.last_event_id = last_event_id
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._stream: BodyStream | None = None
        self._sleeping: Deferred[None] | None = None
        self._closed = False
        self.connections = 0
        """How many connections were opened so far."""

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def is_closed(self) -> bool:
        """``True`` once `close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop: abort the current stream and any pending reconnection."""
        self._closed = True
        if self._stream is not None:
            self._stream.close()
        if self._sleeping is not None:
            self._sleeping.cancel()

    def __aiter__(self) -> AsyncIterator[ServerSentEvent]:
        return self._events()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    async def _connect(self) -> ClientResponse | None:
        """Open one stream; `None` means the server said stop (204)."""
        response = await self._open(self._headers())
        self.connections += 1
        if response.status == 204:
            response.release()
            return None
        content_type = (response.content_type or "").split(";")[0].strip().lower()
        if response.status != 200 or content_type != "text/event-stream":
            # Not an event stream: failing (not reconnecting) as browsers do.
            await response.raise_for_status()
            response.release()
            raise HTTPStatusError(
                f"SSE endpoint answered {response.status} with Content-Type "
                f"{content_type or 'none'!r}, not text/event-stream",
                status=response.status,
                headers=response.headers,
                method=response.method,
                url=response.url,
            )
        return response

    async def _events(self) -> AsyncIterator[ServerSentEvent]:
        failures = 0
        delay_ms: int | None = None
        while not self.is_closed():
            error: HTTPClientError | None = None
            try:
                response = await self._connect()
            except (HTTPConnectionError, HTTPTimeoutError) as e:
                response, error = None, e
            else:
                if response is None:
                    return
            if response is not None:
                parser = SSEParser(
                    last_event_id=self.last_event_id,
                    max_line_bytes=self._max_line,
                    max_event_bytes=self._max_event,
                )
                self._stream = stream = response.iter_body()
                try:
                    async for chunk in stream:
                        for event in parser.feed(chunk):
                            self.last_event_id = parser.last_event_id
                            failures = 0
                            yield event
                        self.last_event_id = parser.last_event_id
                        delay_ms = (
                            parser.retry if parser.retry is not None else delay_ms
                        )
                    parser.close()
                except (HTTPConnectionError, HTTPTimeoutError) as e:
                    error = e
                finally:
                    stream.close()
                    self._stream = None
                self.last_event_id = parser.last_event_id
                delay_ms = parser.retry if parser.retry is not None else delay_ms
            if self.is_closed():
                return
            if not self.reconnect:
                if error is not None:
                    raise error
                return
            failures += 1
            if failures > self.max_reconnects:
                raise HTTPConnectionError(
                    f"SSE stream gave up after {self.max_reconnects} "
                    f"reconnections without an event"
                ) from error
            delay = (
                min(delay_ms / 1000, MAX_RETRY_DELAY)
                if delay_ms is not None
                else self.reconnect_delay
            )
            _log.info(
                "SSE stream ended ({error}); reconnecting in {delay}s",
                error=error,
                delay=delay,
            )
            self._sleeping = deferLater(self._clock, delay)
            try:
                await self._sleeping
            except CancelledError:
                if self.is_closed():
                    return
                raise
            finally:
                self._sleeping = None
