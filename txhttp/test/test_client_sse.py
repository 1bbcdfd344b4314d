# -*- test-case-name: txhttp.test.test_client_sse -*-
"""Tests for `SSEParser` and `EventSource` (`HTTPClient.sse`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseFailed

from txhttp.client import (
    EventSource,
    HTTPClientError,
    HTTPConnectionError,
    HTTPStatusError,
    ServerSentEvent,
    SSEParser,
)
from txhttp.test.test_client_http import make_client
from txhttp.testing import StubResponse

SSE = {"Content-Type": "text/event-stream; charset=utf-8"}


def parse_all(data: bytes, splits: int = 0) -> list[ServerSentEvent]:
    """Parse ``data`` whole (splits=0) or in pieces of ``splits`` bytes."""
    parser = SSEParser()
    events: list[ServerSentEvent] = []
    size = splits or len(data) or 1
    for start in range(0, len(data), size):
        events.extend(parser.feed(data[start : start + size]))
    events.extend(parser.close())
    return events


class ParserTests(SynchronousTestCase):
    def check(self, data: bytes, expected: list[ServerSentEvent]) -> None:
        """Same events whole and split at every byte."""
        self.assertEqual(expected, parse_all(data))
        self.assertEqual(expected, parse_all(data, 1))

    def test_simple_and_multiline(self) -> None:
        """data lines join with LF; one space after the colon is dropped."""
        self.check(
            b"data: one\ndata:  two\ndata\n\nevent: tick\ndata:x\n\n",
            [
                ServerSentEvent("message", "one\n two\n"),
                ServerSentEvent("tick", "x"),
            ],
        )

    def test_line_endings_and_bom(self) -> None:
        """CRLF, LF and CR all end lines; a leading BOM is ignored."""
        self.check(
            b"\xef\xbb\xbfdata: a\r\n\r\ndata: b\r\rdata: c\n\n",
            [
                ServerSentEvent(data="a"),
                ServerSentEvent(data="b"),
                ServerSentEvent(data="c"),
            ],
        )

    def test_cr_at_chunk_end_then_lf(self) -> None:
        """A CR ending one chunk and an LF starting the next are one line end."""
        parser = SSEParser()
        self.assertEqual([], parser.feed(b"data: a\r"))
        self.assertEqual([], parser.feed(b"\n"))
        self.assertEqual([ServerSentEvent(data="a")], parser.feed(b"\r\n"))

    def test_comments_and_unknown_fields(self) -> None:
        """Comment lines and unknown fields are ignored; no data, no event."""
        self.check(b": ping\nfoo: bar\n\nevent: empty\n\n", [])

    def test_id_persists_and_nul_ignored(self) -> None:
        """The last event ID carries over; an id with NUL is ignored."""
        self.check(
            b"id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\nid\ndata: d\n\n",
            [
                ServerSentEvent(data="a", id="1"),
                ServerSentEvent(data="b", id="1"),
                ServerSentEvent(data="c", id="1"),
                ServerSentEvent(data="d", id=""),
            ],
        )

    def test_retry(self) -> None:
        """retry with digits only sets the reconnection time."""
        parser = SSEParser()
        events = parser.feed(b"retry: 1500\ndata: a\n\nretry: 1x\ndata: b\n\n")
        self.assertEqual([1500, None], [e.retry for e in events])
        self.assertEqual(1500, parser.retry)

    def test_unterminated_event_discarded(self) -> None:
        """An event without its blank line at the end of stream is dropped."""
        self.check(b"data: a\n\ndata: b", [ServerSentEvent(data="a")])

    def test_invalid_utf8_replaced(self) -> None:
        """Invalid UTF-8 becomes U+FFFD, split or not."""
        self.check(b"data: \xff\xc3\xa9\n\n", [ServerSentEvent(data="\ufffd\u00e9")])

    def test_limits(self) -> None:
        """Overlong lines and events fail with HTTPClientError."""
        parser = SSEParser(max_line_bytes=10)
        self.assertRaises(HTTPClientError, parser.feed, b"data: " + b"x" * 20)
        events = SSEParser(max_event_bytes=10)
        self.assertRaises(HTTPClientError, events.feed, b"data: 123456\ndata: 123456\n")


async def take(source: EventSource, count: int) -> list[ServerSentEvent]:
    events: list[ServerSentEvent] = []
    iterator: AsyncIterator[ServerSentEvent] = aiter(source)
    while len(events) < count:
        events.append(await iterator.__anext__())
    return events


class EventSourceTests(SynchronousTestCase):
    def test_reads_events(self) -> None:
        """client.sse sends Accept: text/event-stream and yields events."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(200, SSE, [b"data: 1\n\n", b"data: 2\n\n"]))
        source = client.sse("http://e.com/events")
        events = self.successResultOf(Deferred.fromCoroutine(take(source, 2)))
        self.assertEqual(["1", "2"], [e.data for e in events])
        self.assertEqual(b"text/event-stream", agent.requests[0].header("accept"))
        self.assertIsNone(agent.requests[0].header("last-event-id"))

    def test_reconnects_with_last_event_id_and_retry(self) -> None:
        """After the stream ends, it waits retry ms and resumes from the last ID."""
        client, agent, clock = make_client()
        agent.queue(
            StubResponse(200, SSE, [b"retry: 2000\nid: 7\ndata: a\n\n"]),
            StubResponse(200, SSE, [b"id: 8\ndata: b\n\n"], complete=False),
        )
        source = client.sse("http://e.com/events", reconnect=True)
        reading = Deferred.fromCoroutine(take(source, 2))
        self.assertEqual(1, len(agent.requests))
        clock.advance(1.9)
        self.assertEqual(1, len(agent.requests))
        clock.advance(0.1)
        events = self.successResultOf(reading)
        self.assertEqual([("a", "7"), ("b", "8")], [(e.data, e.id) for e in events])
        self.assertEqual(b"7", agent.requests[1].header("last-event-id"))
        self.assertEqual("8", source.last_event_id)
        source.close()
        self.assertEqual([], clock.getDelayedCalls())

    def test_reconnects_after_connection_error(self) -> None:
        """A broken stream or refused connection is retried with the default delay."""
        client, agent, clock = make_client()
        broken = StubResponse(200, SSE, [b"data: a\n\n"], complete=False)
        agent.queue(
            broken, ConnectionRefusedError(), StubResponse(200, SSE, [b"data: b\n\n"])
        )
        source = client.sse("http://e.com/", reconnect=True, reconnect_delay=1.0)
        reading = Deferred.fromCoroutine(take(source, 2))
        broken.fail(ResponseFailed([Failure(ConnectionRefusedError())]))
        clock.advance(1.0)
        self.assertEqual(2, len(agent.requests))
        clock.advance(1.0)
        self.assertEqual(["a", "b"], [e.data for e in self.successResultOf(reading)])

    def test_gives_up_after_max_reconnects(self) -> None:
        """Reconnections without any event are bounded."""
        client, agent, clock = make_client()
        agent.responder = lambda request: ConnectionRefusedError()
        source = client.sse("http://e.com/", reconnect=True, max_reconnects=2)
        reading = Deferred.fromCoroutine(take(source, 1))
        clock.advance(3)
        clock.advance(3)
        failure = self.failureResultOf(reading, HTTPConnectionError)
        self.assertIn("gave up", str(failure.value))
        self.assertEqual(3, len(agent.requests))

    def test_no_reconnect_by_default(self) -> None:
        """Without reconnect the iteration ends with the stream."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(200, SSE, [b"data: a\n\n"]))

        async def all_events() -> list[str]:
            async with client.sse("http://e.com/") as source:
                return [event.data async for event in source]

        self.assertEqual(
            ["a"], self.successResultOf(Deferred.fromCoroutine(all_events()))
        )
        self.assertEqual(1, len(agent.requests))

    def test_204_stops(self) -> None:
        """A 204 answer ends the stream for good, even with reconnect."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(204))
        source = client.sse("http://e.com/", reconnect=True, last_event_id="3")
        reading = Deferred.fromCoroutine(take(source, 1))
        self.failureResultOf(reading, StopAsyncIteration)
        self.assertEqual(b"3", agent.requests[0].header("last-event-id"))

    def test_wrong_content_type_fails(self) -> None:
        """A non-event-stream answer fails without reconnecting."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(200, {"Content-Type": "text/html"}, [b"<p>"]))
        source = client.sse("http://e.com/", reconnect=True)
        self.failureResultOf(Deferred.fromCoroutine(take(source, 1)), HTTPStatusError)
        agent.queue(StubResponse(503, SSE))
        source = client.sse("http://e.com/", reconnect=True)
        failure = self.failureResultOf(
            Deferred.fromCoroutine(take(source, 1)), HTTPStatusError
        )
        self.assertEqual(503, failure.value.status)
        self.assertEqual(2, len(agent.requests))

    def test_client_stop_closes_source(self) -> None:
        """Stopping the client ends an event source waiting to reconnect."""
        client, agent, clock = make_client()
        agent.queue(StubResponse(200, SSE, [b"data: a\n\n"]))
        source = client.sse("http://e.com/", reconnect=True)
        reading = Deferred.fromCoroutine(take(source, 2))
        self.assertEqual(1, len(clock.getDelayedCalls()))
        self.successResultOf(client.stop())
        self.failureResultOf(reading, StopAsyncIteration)
        self.assertEqual([], clock.getDelayedCalls())
