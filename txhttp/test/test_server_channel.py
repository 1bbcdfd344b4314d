# -*- test-case-name: txhttp.test.test_server_channel -*-
"""
Tests for `txhttp.server.HTTPChannel`: pipelining, keep-alive, lingering
close, errors and flow control, with `StringTransport` and `Clock`.
"""

from __future__ import annotations

import random

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from txhttp._wire import LocalProtocolError, serialize_response_head
from txhttp.server import ChannelState, HTTPChannel, RequestDropped
from txhttp.server._channel import _TRANSITIONS, ChannelInput
from txhttp.server._date import DateCache
from txhttp.test._server_helpers import (
    HalfCloseTransport,
    Recorder,
    RecordingExchange,
    RecordingProducer,
    is_closing,
    make_channel,
    parse_responses,
    respond_at_once,
)

HOST = b"Host: a\r\n"


def get(target: bytes = b"/", *fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    """An honest GET request."""
    return (
        b"GET "
        + target
        + b" "
        + version
        + b"\r\n"
        + HOST
        + b"".join(f + b"\r\n" for f in fields)
        + b"\r\n"
    )


class StateTableTests(SynchronousTestCase):
    """The channel's transition table."""

    def test_every_pair(self) -> None:
        """Every (state, input) pair is either in the table or refused."""
        channel = HTTPChannel(clock=Clock())
        for state in ChannelState:
            for event in ChannelInput:
                channel._state = state
                if (state, event) in _TRANSITIONS:
                    channel._advance(event)
                    self.assertEqual(channel.state, _TRANSITIONS[state, event])
                else:
                    self.assertRaises(RuntimeError, channel._advance, event)

    def test_interfaces(self) -> None:
        """The channel provides IHalfCloseableProtocol and IPushProducer."""
        channel = HTTPChannel(clock=Clock())
        self.assertTrue(verifyObject(IHalfCloseableProtocol, channel))
        self.assertTrue(verifyObject(IPushProducer, channel))


class KeepAliveTests(SynchronousTestCase):
    """Persistence rules and response fields."""

    def test_http11_keeps_alive(self) -> None:
        """An HTTP/1.1 request leaves the connection open, with Date and Server."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get())
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header(b"server"), b"txhttp")
        self.assertEqual(response.header(b"date"), b"Thu, 01 Jan 1970 00:00:00 GMT")
        self.assertIsNone(response.header(b"connection"))
        self.assertFalse(is_closing(transport))
        self.assertTrue(transport.no_delay)

    def test_no_delay_not_set_for_a_closing_connection(self) -> None:
        """A connection whose first request asks to close skips TCP_NODELAY."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", b"Connection: close"))
        self.assertEqual(parse_responses(transport.value())[0].status, 200)
        self.assertTrue(is_closing(transport))
        self.assertFalse(transport.no_delay)

    def test_no_delay_set_for_a_streamed_response(self) -> None:
        """A response in several writes sets TCP_NODELAY, even on a closing one."""

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"event")

        def raw(exchange: RecordingExchange) -> None:
            exchange.slot.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            self.assertFalse(transport.no_delay)
            exchange.slot.write(b"event")

        for start in (stream, raw):
            channel, transport, _clock, _rec = make_channel(Recorder(start))
            channel.dataReceived(get(b"/", b"Connection: close"))
            self.assertTrue(transport.no_delay)

    def test_server_header_configurable(self) -> None:
        """server_header=None sends no Server field."""
        channel, transport, _clock, _rec = make_channel(
            Recorder(respond_at_once), server_header=None
        )
        channel.dataReceived(get())
        self.assertIsNone(parse_responses(transport.value())[0].header(b"server"))

    def test_date_cached_per_second(self) -> None:
        """The Date value changes only when the clock enters a new second."""
        clock = Clock()
        cache = DateCache(clock)
        first = cache.value()
        clock.advance(0.5)
        self.assertIs(cache.value(), first)
        clock.advance(0.5)
        self.assertEqual(cache.value(), b"Thu, 01 Jan 1970 00:00:01 GMT")

    def test_http10_closes_by_default(self) -> None:
        """HTTP/1.0 without keep-alive gets Connection: close and a close."""
        channel, transport, _clock, rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(version=b"HTTP/1.0") + get(b"/2"))
        [response] = parse_responses(transport.value())
        self.assertEqual(response.header(b"connection"), b"close")
        self.assertTrue(is_closing(transport))
        self.assertEqual(rec.targets, [b"/"])

    def test_http10_explicit_keep_alive(self) -> None:
        """HTTP/1.0 with Connection: keep-alive stays open and says so."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(
            get(version=b"HTTP/1.0")[:-2] + b"Connection: keep-alive\r\n\r\n"
        )
        [response] = parse_responses(transport.value())
        self.assertEqual(response.header(b"connection"), b"keep-alive")
        self.assertFalse(is_closing(transport))

    def test_connection_close_request(self) -> None:
        """Connection: close answers with Connection: close, then closes."""
        channel, transport, _clock, rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", b"Connection: close") + get(b"/2"))
        self.assertEqual(rec.targets, [b"/"])
        self.assertEqual(
            parse_responses(transport.value())[0].header(b"connection"), b"close"
        )
        self.assertTrue(transport.write_closed)

    def test_head_has_no_body(self) -> None:
        """HEAD is answered with the Content-Length of GET and no body."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(b"HEAD /abc HTTP/1.1\r\nHost: a\r\n\r\n" + get(b"/n"))
        responses = parse_responses(transport.value(), [b"HEAD", b"GET"])
        self.assertEqual(responses[0].header(b"content-length"), b"4")
        self.assertEqual(responses[0].body, b"")
        self.assertEqual(responses[1].body, b"/n")

    def test_chunked_request_with_trailers(self) -> None:
        """A chunked body and its trailers reach the exchange."""
        channel, _transport, _clock, rec = make_channel()
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
        )
        [exchange] = rec.exchanges
        self.assertEqual(exchange.body, b"abcde")
        self.assertEqual(list(exchange.trailers), [(b"X-Sum", b"5")])
        self.assertEqual(exchange.events[-1], "complete")

    def test_streamed_response_chunked(self) -> None:
        """A framed response without a length is chunked on HTTP/1.1."""

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"abc")
            exchange.slot.finish([(b"X-T", b"1")])

        channel, transport, _clock, _rec = make_channel(Recorder(stream))
        channel.dataReceived(get())
        [response] = parse_responses(transport.value())
        self.assertEqual(response.header(b"transfer-encoding"), b"chunked")
        self.assertEqual(
            (response.body, list(response.trailers)), (b"abc", [(b"X-T", b"1")])
        )

    def test_streamed_response_http10_close_delimited(self) -> None:
        """Without a length on HTTP/1.0 the body ends with the close."""

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"abc")
            exchange.slot.finish()

        channel, transport, _clock, _rec = make_channel(Recorder(stream))
        channel.dataReceived(
            get(version=b"HTTP/1.0")[:-2] + b"Connection: keep-alive\r\n\r\n"
        )
        self.assertNotIn(b"chunked", transport.value().lower())
        self.assertTrue(transport.value().endswith(b"\r\n\r\nabc"))
        self.assertTrue(is_closing(transport))


class ExpectContinueTests(SynchronousTestCase):
    """Expect: 100-continue."""

    REQUEST = (
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
        b"Content-Length: 3\r\n\r\n"
    )

    def test_continue_when_body_wanted(self) -> None:
        """100 Continue is sent once the exchange wants the body."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(self.REQUEST)
        self.assertEqual(transport.value(), b"")
        rec.exchanges[0].slot.want_body()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 100 Continue\r\n"))
        channel.dataReceived(b"abc")
        rec.exchanges[0].respond()
        [response] = parse_responses(transport.value())
        self.assertEqual((response.interim, response.status), ([100], 200))
        self.assertFalse(is_closing(transport))

    def test_refused_without_reading(self) -> None:
        """A final status without wanting the body: no 100, then a close."""

        def refuse(exchange: RecordingExchange) -> None:
            exchange.respond(b"no", status=417)

        channel, transport, _clock, rec = make_channel(Recorder(refuse))
        channel.dataReceived(self.REQUEST + b"abc" + get())
        self.assertNotIn(b" 100 ", transport.value())
        self.assertEqual(parse_responses(transport.value())[0].status, 417)
        self.assertTrue(is_closing(transport))
        self.assertEqual(len(rec.exchanges), 1)
        self.assertEqual(rec.exchanges[0].body, b"")


class PipeliningTests(SynchronousTestCase):
    """Responses go out in request order whatever order handlers finish in."""

    def run_reverse(self, pieces: list[bytes], count: int) -> None:
        channel, transport, _clock, rec = make_channel()
        for piece in pieces:
            channel.dataReceived(piece)
        self.assertEqual(len(rec.exchanges), count)
        for exchange in reversed(rec.exchanges):
            exchange.respond(exchange.head.target)
        bodies = [r.body for r in parse_responses(transport.value())]
        self.assertEqual(bodies, [b"/%d" % i for i in range(count)])
        self.assertFalse(is_closing(transport))

    def test_one_segment_reverse_finish(self) -> None:
        """Many requests in one segment, finished in reverse: written in order."""
        data = b"".join(get(b"/%d" % i) for i in range(20))
        self.run_reverse([data], 20)

    def test_odd_splits(self) -> None:
        """The same holds when the requests arrive in odd splits."""
        data = b"".join(get(b"/%d" % i) for i in range(20))
        rng = random.Random(7)
        for _ in range(5):
            cuts = sorted(rng.sample(range(1, len(data)), 30))
            bounds = zip([0, *cuts], [*cuts, len(data)], strict=True)
            pieces = [data[a:b] for a, b in bounds]
            self.run_reverse(pieces, 20)
        self.run_reverse([data[i : i + 1] for i in range(len(data))], 20)

    def test_input_paused_beyond_max_pipeline(self) -> None:
        """Beyond maxPipeline the transport is paused, and resumed as answers go."""
        channel, transport, _clock, rec = make_channel(maxPipeline=3)
        channel.dataReceived(b"".join(get(b"/%d" % i) for i in range(5)))
        self.assertEqual(len(rec.exchanges), 3)
        self.assertEqual(transport.producerState, "paused")
        rec.exchanges[0].respond()
        self.assertEqual(len(rec.exchanges), 4)
        for exchange in rec.exchanges[1:]:
            exchange.respond()
        self.assertEqual(len(rec.exchanges), 5)
        rec.exchanges[4].respond()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(len(parse_responses(transport.value())), 5)

    def test_later_output_bounded(self) -> None:
        """A later response over the buffer bound has its producer paused."""
        channel, _transport, _clock, rec = make_channel(max_buffered_response_bytes=10)
        channel.dataReceived(get(b"/0") + get(b"/1"))
        first, second = rec.exchanges
        producer = RecordingProducer()
        second.slot.registerProducer(producer, True)
        second.slot.write_head(200, b"OK", [])
        second.slot.write_body(b"x" * 100)
        self.assertEqual(producer.calls, ["pause"])
        first.respond()
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_close_drops_queued(self) -> None:
        """A response with Connection: close drops the requests queued after it."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(get(b"/0") + get(b"/1") + get(b"/2"))
        rec.exchanges[0].slot.finish_with_body(
            200, b"OK", [(b"Connection", b"close")], b""
        )
        for exchange in rec.exchanges[1:]:
            self.assertEqual(exchange.events, ["start", "complete", "lost"])
            assert exchange.lost is not None
            self.assertIsInstance(exchange.lost.value, RequestDropped)
        self.assertEqual(len(parse_responses(transport.value())), 1)
        self.assertTrue(is_closing(transport))


class FlowControlTests(SynchronousTestCase):
    """Backpressure both ways."""

    def test_slow_client_pauses_producer(self) -> None:
        """The transport pausing the channel pauses the response's producer."""
        channel, _transport, _clock, rec = make_channel()
        channel.dataReceived(get())
        producer = RecordingProducer()
        rec.exchanges[0].slot.registerProducer(producer, True)
        channel.pauseProducing()
        channel.resumeProducing()
        self.assertEqual(producer.calls, ["pause", "resume"])

    def test_body_pause_pauses_transport(self) -> None:
        """An exchange pausing the body pauses reading; resuming delivers the rest."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc"
        )
        exchange = rec.exchanges[0]
        exchange.slot.pause_body()
        self.assertEqual(transport.producerState, "paused")
        channel.dataReceived(b"def")
        self.assertEqual(exchange.body, b"abc")
        exchange.slot.resume_body()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(exchange.body, b"abcdef")

    def test_large_write_in_pieces(self) -> None:
        """A large write reaches the transport in pieces of write_piece_bytes."""
        channel, transport, _clock, rec = make_channel(write_piece_bytes=10)
        channel.dataReceived(get())
        channel.pauseProducing()
        rec.exchanges[0].respond(b"x" * 35)
        self.assertEqual(transport.value(), b"")
        channel.resumeProducing()
        self.assertEqual(parse_responses(transport.value())[0].body, b"x" * 35)


def respond_closing(exchange: RecordingExchange) -> None:
    """A start hook answering ``200`` with a response that closes."""
    exchange.slot.finish_with_body(200, b"OK", [(b"Connection", b"close")], b"ok")


class LingeringCloseTests(SynchronousTestCase):
    """Close gently after a final response."""

    def closed_channel(self) -> tuple[HTTPChannel, HalfCloseTransport, Clock]:
        channel, transport, clock, _rec = make_channel(Recorder(respond_closing))
        # The client may still send: the close is the server's choice.
        channel.dataReceived(get(b"/"))
        assert isinstance(transport, HalfCloseTransport)
        self.assertTrue(transport.write_closed)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(channel.state, ChannelState.LINGERING)
        return channel, transport, clock

    def test_closes_when_peer_closes(self) -> None:
        """Input is discarded until the peer closes its side; then we close."""
        channel, transport, _clock = self.closed_channel()
        written = transport.value()
        channel.dataReceived(b"more junk")
        self.assertEqual(transport.value(), written)
        channel.readConnectionLost()
        self.assertTrue(transport.disconnecting)

    def test_closes_after_linger_timeout(self) -> None:
        """Without the peer closing, the wait ends it after linger_timeout."""
        channel, transport, clock = self.closed_channel()
        channel.writeConnectionLost()
        clock.advance(19.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        channel.connectionLost()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closes_after_too_many_bytes(self) -> None:
        """Discarding more than max_linger_bytes closes at once."""
        channel, transport, _clock = self.closed_channel()
        channel.dataReceived(b"x" * (channel.max_linger_bytes + 1))
        self.assertTrue(transport.disconnecting)

    def test_client_close_closes_directly(self) -> None:
        """A client that asked for the close, fully read, is closed at once."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", b"Connection: close"))
        self.assertEqual(parse_responses(transport.value())[0].status, 200)
        self.assertFalse(transport.write_closed)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(channel.state, ChannelState.CLOSING)

    def test_http10_close_closes_directly(self) -> None:
        """An HTTP/1.0 request without keep-alive is closed at once."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", version=b"HTTP/1.0"))
        self.assertFalse(transport.write_closed)
        self.assertTrue(transport.disconnecting)

    def test_client_close_with_extra_input_lingers(self) -> None:
        """Bytes after a Connection: close request make the close linger."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", b"Connection: close") + b"GET /x")
        self.assertTrue(transport.write_closed)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(channel.state, ChannelState.LINGERING)

    def test_client_close_with_unread_body_lingers(self) -> None:
        """A close answered before the body was read lingers."""
        channel, transport, _clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
            b"Content-Length: 10\r\n\r\n12345"
        )
        self.assertTrue(transport.write_closed)
        self.assertEqual(channel.state, ChannelState.LINGERING)

    def test_client_close_waits_for_backlog(self) -> None:
        """A direct close waits until a large response is written."""
        channel, transport, _clock, rec = make_channel(write_piece_bytes=10)
        channel.dataReceived(get(b"/", b"Connection: close"))
        channel.pauseProducing()
        rec.exchanges[0].respond(b"x" * 35)
        self.assertFalse(transport.disconnecting)
        channel.resumeProducing()
        self.assertEqual(parse_responses(transport.value())[0].body, b"x" * 35)
        self.assertTrue(transport.disconnecting)


class ErrorTests(SynchronousTestCase):
    """Wire errors and broken exchanges."""

    def test_error_body_does_not_echo(self) -> None:
        """A bad request is answered 400 with a body that quotes nothing."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(
            b"GET /<script> HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n"
        )
        [response] = parse_responses(transport.value())
        self.assertEqual((response.status, response.body), (400, b"400 Bad Request\n"))
        self.assertTrue(is_closing(transport))
        self.assertEqual(rec.exchanges, [])

    def test_error_after_pending_responses(self) -> None:
        """An error behind pending requests is written after their responses."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(get(b"/0") + b"BROKEN\r\n\r\n")
        self.assertEqual(transport.value(), b"")
        rec.exchanges[0].respond()
        statuses = [r.status for r in parse_responses(transport.value())]
        self.assertEqual(statuses, [200, 400])

    def test_connection_lost_tells_exchanges(self) -> None:
        """Losing the connection tells every waiting exchange once."""
        channel, transport, clock, rec = make_channel()
        channel.dataReceived(get(b"/0") + get(b"/1"))
        channel.connectionLost()
        self.assertEqual([e.events[-1] for e in rec.exchanges], ["lost", "lost"])
        rec.exchanges[0].respond()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_peer_half_close_finishes_requests(self) -> None:
        """After the peer half-closes, queued requests are answered, then a close."""
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(get(b"/0"))
        channel.readConnectionLost()
        self.assertFalse(transport.disconnecting)
        rec.exchanges[0].respond()
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.write_closed)

    def test_no_factory_answers_500(self) -> None:
        """A channel without an exchangeFactory answers 500."""
        channel = HTTPChannel(clock=Clock())
        transport = HalfCloseTransport()
        channel.makeConnection(transport)
        channel.dataReceived(get())
        self.assertEqual(parse_responses(transport.value())[0].status, 500)
        self.flushLoggedErrors()


class ResponseHeadCacheTests(SynchronousTestCase):
    """Field names and values are validated once, then joined directly."""

    def respond(self, fields: list[tuple[bytes, bytes]]) -> bytes:
        channel, transport, _clock, rec = make_channel()
        channel.dataReceived(get())
        rec.exchanges[0].slot.finish_with_body(200, b"OK", fields, b"ok")
        written: bytes = transport.value()
        return written

    def test_same_bytes_as_the_wire_core(self) -> None:
        """A head built from known fields equals the wire core's output."""
        fields = [(b"Content-Type", b"text/plain"), (b"X-A", b"1")]
        self.respond(fields)
        written = self.respond(fields)
        head, _, body = written.partition(b"\r\n\r\n")
        date = parse_responses(written)[0].header(b"Date")
        assert date is not None
        expected = serialize_response_head(
            200,
            b"OK",
            [
                *fields,
                (b"Date", date),
                (b"Server", b"txhttp"),
                (b"Content-Length", b"2"),
            ],
        )
        self.assertEqual((head + b"\r\n\r\n", body), (expected, b"ok"))

    def test_bad_value_after_good_ones(self) -> None:
        """A value with CR LF is refused even when its name is known."""
        self.respond([(b"X-B", b"fine")])
        self.assertRaises(
            LocalProtocolError, self.respond, [(b"X-B", b"fine\r\nSet-Cookie: a=b")]
        )

    def test_bad_name_after_good_values(self) -> None:
        """A name that is not a token is refused even when its value is known."""
        self.respond([(b"X-C", b"v")])
        self.assertRaises(LocalProtocolError, self.respond, [(b"X C", b"v")])

    def test_conflicting_lengths_still_checked(self) -> None:
        """Handler Content-Length fields are always checked by the wire core."""
        self.respond([(b"Content-Length", b"2")])
        self.assertRaises(
            LocalProtocolError,
            self.respond,
            [(b"Content-Length", b"2"), (b"Content-Length", b"3")],
        )
