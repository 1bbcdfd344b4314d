# -*- test-case-name: txhttp.test.test_server_wholerequest -*-
"""
Tests for the whole-request lane: ``parse_whole_request`` and its use.

An idle connection that receives exactly one whole request without a body
hands it to ``txhttp._wire._parser.parse_whole_request`` instead of feeding
its parser (``HTTPChannel.dataReceived``). Every test here holds that lane
to the general one: the same head as the parser's, the same bytes written,
the same close, the same calls on the exchange, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import Limits, RemoteProtocolError, RequestHead, RequestParser
from txhttp._wire._parser import RequestState, parse_whole_request
from txhttp.server import HTTPChannel, Request, Response
from txhttp.test._server_helpers import (
    Recorder,
    RecordingExchange,
    is_closing,
    make_channel,
    make_native,
)

GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"

BODILESS = [
    GET,
    b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET /z HTTP/1.0\r\n\r\n",
    b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://h/abs?q=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    b"DELETE /d HTTP/1.1\r\nHost: h\r\nConnection: close, te\r\n\r\n",
]
"""Requests the lane takes: one whole head each, no body."""

OTHERS = [
    b"",
    b"GET /a HTTP/1.1\r\nHost: h\r\n",  # incomplete
    GET + GET,  # two requests
    GET[:-2] + b"Content-Length: 3\r\n\r\nabc",  # a body
    GET[:-2] + b"Content-Length: 3\r\n\r\n",  # a body still to come
    GET[:-2] + b"Transfer-Encoding: chunked\r\n\r\n",
    GET[:-2] + b"Content-Length: 0\r\n\r\n",  # framed, if empty
    b"\r\n" + GET,  # an empty line first
    b"GET /a HTTP/1.1\r\n\r\n",  # no Host: 400
    b"GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",  # two Hosts: 400
    b"GET /a HTTP/2.0\r\nHost: h\r\n\r\n",  # 505
    b"GET /a HTTP/1.1\r\nHost : h\r\n\r\n",  # space before the colon
    b"GET /a HTTP/1.1\r\nHost: h\r\n\n",  # bare LF
]
"""Inputs the lane leaves to the parser (which accepts or rejects them)."""


_LINES = [
    b"GET / HTTP/1.1",
    b"HEAD /x HTTP/1.0",
    b"OPTIONS * HTTP/1.1",
    b"OPTIONS * HTTP/1.0",
    b"GET * HTTP/1.1",
    b"GET http://a/b HTTP/1.1",
    b"CONNECT a:1 HTTP/1.1",
    b"GET  / HTTP/1.1",
    b"GET / HTTP/1.2",
    b"\r\nGET / HTTP/1.1",
]
_FIELDS = [
    b"Host: h",
    b"Host: a:80",
    b"Host: bad host",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: x, close",
    b"Expect: 100-continue",
    b"Content-Length: 0",
    b"Content-Length: 2",
    b"Transfer-Encoding: chunked",
    b"X: y ",
    b"X : y",
    b"X:\ty",
    b"X: a\rb",
    b"Content-Type: a",
    b"Content-Type: b",
]
_ENDS = [b"\r\n\r\n", b"\r\n", b"\r\n\r\nab", b"\n\n", b"\r\n\r\n\r\n", b"\r\n\n"]


def _parser_head(data: bytes, limits: Limits) -> RequestHead | None:
    """The head a fresh parser finds first in ``data`` (None if it raises)."""
    parser = RequestParser(limits)
    parser.feed(data)
    try:
        event = parser.next_event()
    except RemoteProtocolError:
        return None
    return event if isinstance(event, RequestHead) else None


class ParseWholeRequestTests(SynchronousTestCase):
    """``parse_whole_request`` accepts exactly what the parser would, alike."""

    def test_same_head_as_the_parser(self) -> None:
        """For a whole bodiless request, the head equals the parser's."""
        limits = Limits()
        for data in BODILESS:
            expected = _parser_head(data, limits)
            self.assertIsNotNone(expected, data)
            self.assertEqual(parse_whole_request(data, limits), expected, data)

    def test_parser_not_idle_after_an_empty_line(self) -> None:
        """
        A parser that counted an empty line before a request is not idle:
        the request after it must reach the parser, which resets the count.
        """
        parser = RequestParser()
        self.assertTrue(parser.is_idle())
        parser.feed(b"\r\n")
        self.assertIsNone(parser.next_event())
        self.assertFalse(parser.is_idle())
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertIsInstance(parser.next_event(), RequestHead)
        self.assertIsNotNone(parser.next_event())  # Its end.
        self.assertTrue(parser.is_idle())

    def test_anything_else_is_left_to_the_parser(self) -> None:
        """More, less, a body, empty lines or an error: ``None``."""
        for data in OTHERS:
            self.assertIsNone(parse_whole_request(data, Limits()), data)

    def test_checked_against_the_given_limits(self) -> None:
        """A request over the given limits is not accepted (the parser decides)."""
        self.assertIsNotNone(parse_whole_request(GET, Limits()))
        strict = Limits(max_header_count=0)
        self.assertIsNone(parse_whole_request(GET, strict))
        self.assertIsNone(_parser_head(GET, strict))

    @settings(max_examples=300, deadline=None)
    @given(
        line=st.sampled_from(_LINES),
        fields=st.lists(st.sampled_from(_FIELDS), max_size=5),
        end=st.sampled_from(_ENDS),
    )
    def test_agrees_with_the_parser_on_any_mix(
        self, line: bytes, fields: list[bytes], end: bytes
    ) -> None:
        """Accepted: the parser's head, all input used; else the parser decides."""
        data = b"\r\n".join([line, *fields]) + end
        limits = Limits()
        head = parse_whole_request(data, limits)
        if head is None:
            return
        parser = RequestParser(limits)
        parser.feed(data)
        self.assertEqual(parser.next_event(), head)
        self.assertIs(parser.state, RequestState.BODY_DONE)
        self.assertEqual(parser.buffered_bytes, 0)

    def test_parser_is_idle_between_requests_only(self) -> None:
        """``is_idle``: nothing held and no request under way."""
        parser = RequestParser()
        self.assertTrue(parser.is_idle())
        parser.feed(GET[:5])
        self.assertFalse(parser.is_idle())
        parser.feed(GET[5:])
        self.assertIsInstance(parser.next_event(), RequestHead)
        self.assertFalse(parser.is_idle())  # Its end is still to come.
        parser.next_event()
        self.assertTrue(parser.is_idle())


NativeHandler = Callable[[Request, Response], object]


def _hello(request: Request, response: Response) -> None:
    response.headers.append((b"Content-Type", b"text/plain"))
    response.finish(request.target)


def _run(data: bytes, *, split: bool) -> tuple[bytes, bool, bool]:
    """
    Send ``data`` to a native channel whole (the lane) or a byte at a time
    (the parser). Returns the bytes written, the close, and whether the
    channel made a parser.
    """
    clock = Clock()
    clock.advance(1_700_000_000)
    channel, transport, _clock = make_native(_hello, clock=clock)
    if split:
        for offset in range(len(data)):
            channel.dataReceived(data[offset : offset + 1])
    else:
        channel.dataReceived(data)
    return transport.value(), is_closing(transport), channel._parser is not None


class WholeRequestLaneTests(SynchronousTestCase):
    """The channel's lane writes what the general path writes."""

    def test_lane_agrees_with_the_parser(self) -> None:
        """Each request answered whole and split: the same bytes, the same close."""
        for data in BODILESS + OTHERS[1:]:
            written, closed, parsed = _run(data, split=False)
            self.assertEqual(
                (written, closed), _run(data, split=True)[:2], data.decode("latin-1")
            )
            self.assertIs(parsed, data not in BODILESS, data)

    def test_requests_after_the_lane(self) -> None:
        """A keep-alive connection takes request after request in the lane."""
        channel, transport, _clock = make_native(_hello, clock=Clock())
        for index in range(3):
            channel.dataReceived(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % index)
        self.assertIsNone(channel._parser)
        channel.dataReceived(GET[:7])
        channel.dataReceived(GET[7:])  # The parser's now; then the lane again.
        channel.dataReceived(GET)
        value = transport.value()
        self.assertEqual(value.count(b"HTTP/1.1 200 OK"), 5)
        for target in (b"/0", b"/1", b"/2"):
            self.assertIn(target, value)
        self.assertTrue(value.endswith(b"/a"))
        self.assertFalse(is_closing(transport))

    def test_full_pipeline_pauses_reading(self) -> None:
        """
        A whole request left unanswered fills a pipeline of one: reading is
        paused at once, as the parser's path does, and resumed by the answer.
        """
        recorder = Recorder()
        channel, transport, _clock, _ = make_channel(recorder, maxPipeline=1)
        channel.dataReceived(GET)
        self.assertIsNone(channel._parser)  # The lane took it.
        self.assertEqual("paused", transport.producerState)
        recorder.exchanges[0].respond(b"late")
        self.assertEqual("producing", transport.producerState)

    def test_end_waits_while_reading_is_paused(self) -> None:
        """An exchange pausing the body in ``start`` gets the end on resume."""

        def pause(exchange: RecordingExchange) -> None:
            exchange.slot.pause_body()

        for split in (False, True):
            channel, _transport, _clock, recorder = make_channel(Recorder(pause))
            step = 1 if split else len(GET)
            for offset in range(0, len(GET), step):
                channel.dataReceived(GET[offset : offset + step])
            # The end waits in the parser, both ways.
            self.assertIsNotNone(channel._parser)
            (exchange,) = recorder.exchanges
            self.assertEqual(exchange.events, ["start"])
            exchange.slot.resume_body()
            self.assertEqual(exchange.events, ["start", "complete"])
            exchange.respond()
            self.assertEqual(exchange.events, ["start", "complete", "sent"])
            channel.dataReceived(GET)
            self.assertEqual(len(recorder.exchanges), 2)

    def test_bytes_received_during_the_handler(self) -> None:
        """Bytes that arrive while the lane's handler runs are read after it."""
        channel_box: list[HTTPChannel] = []

        def start(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/a":
                channel_box[0].dataReceived(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
            exchange.respond(exchange.head.target)

        channel, transport, _clock, recorder = make_channel(Recorder(start))
        channel_box.append(channel)
        channel.dataReceived(GET)
        self.assertEqual(recorder.targets, [b"/a", b"/b"])
        self.assertEqual(
            [exchange.events for exchange in recorder.exchanges],
            [["start", "sent", "complete"], ["start", "sent", "complete"]],
        )
        value = transport.value()
        self.assertLess(value.index(b"/a"), value.index(b"/b"))

    def test_paused_end_before_bytes_received_during_the_handler(self) -> None:
        """With the end waiting, later bytes still come after it, in order."""
        channel_box: list[HTTPChannel] = []

        def start(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/a":
                exchange.slot.pause_body()
                channel_box[0].dataReceived(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
            exchange.respond(exchange.head.target)

        channel, transport, _clock, recorder = make_channel(Recorder(start))
        channel_box.append(channel)
        channel.dataReceived(GET)
        self.assertEqual(recorder.targets, [b"/a"])
        first = recorder.exchanges[0]
        self.assertEqual(first.events, ["start", "sent"])
        first.slot.resume_body()
        self.assertEqual(recorder.targets, [b"/a", b"/b"])
        self.assertEqual(first.events, ["start", "sent", "complete"])
        value = transport.value()
        self.assertLess(value.index(b"/a"), value.index(b"/b"))

    def test_peer_closed_during_the_handler(self) -> None:
        """The peer's close told during ``start`` is handled as in the parser."""
        for pause in (False, True):
            outcomes = []
            for split in (False, True):
                channel_box: list[HTTPChannel] = []

                def start(
                    exchange: RecordingExchange,
                    pause: bool = pause,
                    box: list[HTTPChannel] = channel_box,
                ) -> None:
                    if pause:
                        exchange.slot.pause_body()
                    box[0].readConnectionLost()
                    exchange.respond()

                channel, transport, _clock, recorder = make_channel(Recorder(start))
                channel_box.append(channel)
                step = 1 if split else len(GET)
                for offset in range(0, len(GET), step):
                    channel.dataReceived(GET[offset : offset + step])
                (exchange,) = recorder.exchanges
                self.assertIs(is_closing(transport), not pause)
                exchange.slot.resume_body()
                outcomes.append(
                    (exchange.events, transport.value(), is_closing(transport))
                )
            self.assertEqual(outcomes[0], outcomes[1], pause)
            self.assertEqual(outcomes[0][0], ["start", "sent", "complete"])
            self.assertTrue(outcomes[0][2])
