# -*- test-case-name: txhttp.test.test_client_streaming -*-
"""Tests for `HTTPClient.stream`, `BodyStream` backpressure and NDJSON lines."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client import HTTPClientError, HTTPConnectionError, StreamingResponse
from txhttp.client._exceptions import HTTPDecompressionError
from txhttp.test.test_client_http import make_client, run
from txhttp.testing import StubResponse


class StreamTests(SynchronousTestCase):
    def open(
        self, response: StubResponse
    ) -> tuple[StreamingResponse, StubResponse, list[object]]:
        """Enter a stream context and leave it open for the test."""
        client, agent, _ = make_client()
        agent.queue(response)
        context = client.stream("GET", "http://e.com/feed")
        entered = self.successResultOf(run(context.__aenter__()))
        return entered, response, [context]

    def test_chunks_with_backpressure(self) -> None:
        """The transport is paused while the consumer is busy and resumed after."""
        fake = StubResponse(200, body=[b"a", b"b", b"c"], complete=False)
        stream, _, _ = self.open(fake)
        self.assertEqual(200, stream.status)
        chunks = stream.aiter_bytes()
        first = self.successResultOf(Deferred.fromCoroutine(_next(chunks)))
        self.assertEqual(b"a", first)
        # "b" arrived while nobody waited: the transport was paused at once,
        # so "c" stays with the server.
        self.assertTrue(fake.paused)
        self.assertTrue(stream.is_paused)
        self.assertEqual(
            b"b", self.successResultOf(Deferred.fromCoroutine(_next(chunks)))
        )
        self.assertEqual(
            b"c", self.successResultOf(Deferred.fromCoroutine(_next(chunks)))
        )
        waiting = Deferred.fromCoroutine(_next(chunks))
        self.assertNoResult(waiting)
        self.assertFalse(fake.paused)
        fake.write(b"d")
        self.assertEqual(b"d", self.successResultOf(waiting))
        fake.finish()
        self.failureResultOf(Deferred.fromCoroutine(_next(chunks)), StopAsyncIteration)

    def test_whole_iteration(self) -> None:
        """async for over aiter_bytes yields every decoded chunk."""
        body = gzip.compress(b"x" * 1000)
        fake = StubResponse(200, {"Content-Encoding": "gzip"}, [body[:10], body[10:]])
        stream, _, _ = self.open(fake)
        collected = self.successResultOf(run(_collect(stream.aiter_bytes())))
        self.assertEqual(b"x" * 1000, b"".join(collected))

    def test_exit_aborts_unfinished_body(self) -> None:
        """Leaving the async with block stops an unfinished body."""
        client, agent, _ = make_client()
        fake = StubResponse(200, body=[b"1", b"2"], complete=False)
        agent.queue(fake)

        async def read_one() -> bytes:
            async with client.stream("GET", "http://e.com/") as response:
                async for chunk in response.aiter_bytes():
                    return chunk
            return b""

        self.assertEqual(b"1", self.successResultOf(run(read_one())))
        self.assertTrue(fake.stopped)

    def test_exit_without_reading_releases(self) -> None:
        """A stream that was never read is released on exit."""
        client, agent, _ = make_client()
        fake = StubResponse(200, body=[b"1"])
        agent.queue(fake)

        async def status_only() -> int:
            async with client.stream("GET", "http://e.com/") as response:
                return response.status

        self.assertEqual(200, self.successResultOf(run(status_only())))
        self.assertTrue(fake.delivered)

    def test_stop_closes_open_streams(self) -> None:
        """Closing a stream mid-body fails a pending read with HTTPConnectionError."""
        fake = StubResponse(200, complete=False)
        stream, _, _ = self.open(fake)
        chunks = stream.aiter_bytes()
        waiting = Deferred.fromCoroutine(_next(chunks))
        stream.aclose()
        self.failureResultOf(waiting, HTTPConnectionError)

    def test_decompression_error_surfaces(self) -> None:
        """A corrupt gzip stream fails the iteration."""
        fake = StubResponse(200, {"Content-Encoding": "gzip"}, [b"garbage!" * 4])
        stream, _, _ = self.open(fake)
        self.failureResultOf(
            run(_collect(stream.aiter_bytes())), HTTPDecompressionError
        )


class LineTests(SynchronousTestCase):
    def lines(self, chunks: list[bytes], limit: int | None = None) -> list[str]:
        fake = StubResponse(200, body=chunks)
        client, agent, _ = make_client()
        agent.queue(fake)

        async def go() -> list[str]:
            async with client.stream("GET", "http://e.com/") as response:
                return [line async for line in response.aiter_lines(limit)]

        return self.successResultOf(run(go()))

    def test_split_anywhere(self) -> None:
        """Lines split across chunks are joined; CR/LF stripped; last line kept."""
        self.assertEqual(
            ["one", "twö", "", "three"],
            self.lines([b"on", b"e\r", b"\ntw\xc3", b"\xb6\n\n", b"three"]),
        )

    def test_line_limit(self) -> None:
        """A line over the limit fails, even before its newline arrives."""
        fake_lines = [b"ok\n", b"x" * 50]
        fake = StubResponse(200, body=fake_lines, complete=False)
        client, agent, _ = make_client()
        agent.queue(fake)

        async def go() -> list[str]:
            async with client.stream("GET", "http://e.com/") as response:
                return [line async for line in response.aiter_lines(10)]

        failure = self.failureResultOf(run(go()), HTTPClientError)
        self.assertIn("over 10 bytes", str(failure.value))

    def test_invalid_utf8(self) -> None:
        """A line that is not UTF-8 fails with HTTPClientError."""
        fake = StubResponse(200, body=[b"\xff\xfe\n"])
        client, agent, _ = make_client()
        agent.queue(fake)

        async def go() -> list[str]:
            async with client.stream("GET", "http://e.com/") as response:
                return [line async for line in response.aiter_lines()]

        self.failureResultOf(run(go()), HTTPClientError)

    def test_ndjson(self) -> None:
        """aiter_ndjson parses each non-empty line as JSON."""
        fake = StubResponse(200, body=[b'{"a": 1}\n', b"\n[2", b"]\n"])
        client, agent, _ = make_client()
        agent.queue(fake)

        async def go() -> list[object]:
            async with client.stream("GET", "http://e.com/") as response:
                return [value async for value in response.aiter_ndjson()]

        self.assertEqual([{"a": 1}, [2]], self.successResultOf(run(go())))

    def test_ndjson_bad_line(self) -> None:
        """A line that is not JSON fails with its number."""
        fake = StubResponse(200, body=[b"1\n{\n"])
        client, agent, _ = make_client()
        agent.queue(fake)

        async def go() -> list[object]:
            async with client.stream("GET", "http://e.com/") as response:
                return [value async for value in response.aiter_ndjson()]

        failure = self.failureResultOf(run(go()), HTTPClientError)
        self.assertIn("line 2", str(failure.value))


async def _next(iterator: AsyncIterator[bytes]) -> bytes:
    return await iterator.__anext__()


async def _collect(iterator: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in iterator]
