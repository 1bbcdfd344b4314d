# -*- test-case-name: txhttp.test.test_client_streaming -*-
"""
Streaming responses: raw chunks with backpressure, and NDJSON lines.

`HTTPClient.stream` returns a `StreamContext`; entering it (``async with``)
sends the request and yields a `StreamingResponse` whose body is read
incrementally: `StreamingResponse.aiter_bytes` gives chunks as they arrive
(the response transport is paused while the consumer is busy, see
`BodyStream`), `StreamingResponse.aiter_lines` splits them into lines for
NDJSON and similar formats (decoded as UTF-8, CR/LF stripped, each line at most
``max_line_bytes``), and `StreamingResponse.aiter_ndjson` parses each line.
Leaving the block aborts an unfinished body, so a stream never leaks its
connection. Parsing of Server-Sent Events lives in `txhttp.client._sse`.
"""

from __future__ import annotations

import json as _json
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.web.http_headers import Headers

from txhttp.client._exceptions import HTTPClientError

if TYPE_CHECKING:
    from txhttp.client._client_response import (
        BodyStream,
        ClientResponse,
        JSONValue,
    )

__all__ = ["StreamContext", "StreamingResponse", "iter_lines"]


async def iter_lines(
    chunks: AsyncIterator[bytes],
    *,
    max_line_bytes: int,
    what: str = "line",
) -> AsyncIterator[str]:
    """
    Split a chunk stream into lines: LF-terminated, a trailing CR removed.

    A final line without a newline is yielded too. Lines are decoded as
    UTF-8.

    Raises:
        HTTPClientError: A line is longer than ``max_line_bytes`` (the
            stream is not read further), or is not valid UTF-8.
    """
    pending = b""
    number = 0
    async for chunk in chunks:
        pending += chunk
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            number += 1
            yield _decode_line(pending[start:end], number, max_line_bytes, what)
            start = end + 1
        pending = pending[start:]
        if len(pending) > max_line_bytes:
            raise HTTPClientError(
                f"{what} {number + 1} is over {max_line_bytes} bytes without a newline"
            )
    if pending:
        yield _decode_line(pending, number + 1, max_line_bytes, what)


def _decode_line(raw: bytes, number: int, limit: int, what: str) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if len(raw) > limit:
        raise HTTPClientError(f"{what} {number} is over {limit} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HTTPClientError(f"{what} {number} is not valid UTF-8: {e}") from e


class StreamingResponse:
    """
    A response whose body is read as it arrives.

    Attributes:
        response: The underlying `ClientResponse` (head only; its body is
            consumed through this object).
    """

    def __init__(self, response: ClientResponse, *, max_line_bytes: int) -> None:
        self.response = response
        self._max_line_bytes = max_line_bytes
        self._stream: BodyStream | None = None

    @property
    def status(self) -> int:
        """The status code."""
        return self.response.status

    @property
    def code(self) -> int:
        """The status code (twisted.web's name)."""
        return self.response.status

    @property
    def headers(self) -> Headers:
        """The response headers."""
        return self.response.headers

    @property
    def ok(self) -> bool:
        """``True`` for a status below 400."""
        return self.response.ok

    @property
    def url(self) -> str:
        """The URL the response came from."""
        return self.response.url

    def _body(self) -> BodyStream:
        if self._stream is None:
            self._stream = self.response.iter_body()
        return self._stream

    @property
    def is_paused(self) -> bool:
        """``True`` while the body transport is paused for a busy consumer."""
        return self._stream is not None and self._stream.is_paused

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """
        The body's chunks, decoded from any content coding, as they arrive.

        The transport is paused while the consumer works on a chunk. May be
        iterated once.
        """
        return aiter(self._body())

    def aiter_lines(self, max_line_bytes: int | None = None) -> AsyncIterator[str]:
        """
        The body's lines (UTF-8, CR/LF stripped), for NDJSON and the like.

        Args:
            max_line_bytes: Longest line accepted; the client's
                ``max_line_bytes`` by default.

        Raises:
            HTTPClientError: (from the iteration) a line is too long or not
                UTF-8.
        """
        return iter_lines(
            aiter(self._body()), max_line_bytes=max_line_bytes or self._max_line_bytes
        )

    async def aiter_ndjson(self) -> AsyncIterator[JSONValue]:
        """
        One JSON value per non-empty line (NDJSON / JSON Lines).

        Raises:
            HTTPClientError: (from the iteration) a line is not valid JSON,
                or as `aiter_lines`.
        """
        number = 0
        async for line in self.aiter_lines():
            number += 1
            if not line.strip():
                continue
            try:
                value: JSONValue = _json.loads(line)
            except ValueError as e:
                raise HTTPClientError(f"NDJSON line {number} is not JSON: {e}") from e
            yield value

    def close(self) -> None:
        """Stop reading; an unfinished body is aborted (idempotent)."""
        if self._stream is None:
            self.response.release()
        else:
            self._stream.close()

    def aclose(self) -> None:
        """Same as `close` (the name async iterators use)."""
        self.close()


class StreamContext:
    """
    ``async with client.stream(...) as response`` support.

    Entering sends the request and waits for the response head; leaving
    closes the body (aborting it if unfinished).
    """

    def __init__(
        self,
        send: Callable[[], Deferred[ClientResponse]],
        *,
        max_line_bytes: int,
        open_streams: set[StreamingResponse] | None = None,
    ) -> None:
        self._send = send
        self._max_line_bytes = max_line_bytes
        self._response: StreamingResponse | None = None
        # The client's registry, so that stopping it closes open streams.
        self._open_streams = open_streams if open_streams is not None else set()

    async def __aenter__(self) -> StreamingResponse:
        response = await self._send()
        self._response = StreamingResponse(
            response, max_line_bytes=self._max_line_bytes
        )
        self._open_streams.add(self._response)
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            self._open_streams.discard(self._response)
            self._response.close()
