# -*- test-case-name: txhttp.test.test_server_fastpath -*-
"""
Tests for the server's fast paths: each must agree with the general path.

The channel takes a bodiless head's end without another trip round its read
loop; the slot writes a whole response at the head of the pipeline in one
step; response heads made from plain fields are remembered; a connection
that we closed after its last response ends without the general clean-up of
``connectionLost``. Every test here sends the same input down a fast and a
general (or a cold and a warm) path and compares the bytes written, the
close, and what the exchange was told.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import Fields, RequestHead
from txhttp.server import ChannelState, HTTPChannel, Request, Response, _slot
from txhttp.server._exchange import ResponseSlot
from txhttp.test._server_helpers import (
    HalfCloseTransport,
    Recorder,
    RecordingExchange,
    is_closing,
    make_channel,
    make_native,
    parse_responses,
    respond_at_once,
)

NativeHandler = Callable[[Request, Response], object]

GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
NOW = 1_700_000_000.0


def _clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


def _run_native(
    handler: NativeHandler, data: bytes, *, split: int = 0, paused: bool = False
) -> tuple[bytes, bool]:
    """
    Feed ``data`` to a native channel: whole, or in pieces of ``split``
    bytes; with ``paused``, the transport is full until everything was fed.

    Returns:
        The bytes written and whether the channel closed.
    """
    channel, transport, _unused = make_native(handler, clock=_clock())
    if paused:
        channel.pauseProducing()
    if split:
        for offset in range(0, len(data), split):
            channel.dataReceived(data[offset : offset + split])
    else:
        channel.dataReceived(data)
    if paused:
        channel.resumeProducing()
    return transport.value(), is_closing(transport)


def _with_fields(fields: list[tuple[bytes, bytes]]) -> NativeHandler:
    """A handler answering ``b"body"`` with ``fields``."""

    def handler(request: Request, response: Response) -> None:
        response.headers.extend(fields)
        response.finish(b"body")

    return handler


def _hello(request: Request, response: Response) -> None:
    response.headers.append((b"Content-Type", b"text/plain"))
    response.finish(b"hello " + request.path)


class RememberedHeadTests(SynchronousTestCase):
    """Heads made from the memo are the heads the slot would join anew."""

    def setUp(self) -> None:
        _slot._remembered_heads.clear()
        self.addCleanup(_slot._remembered_heads.clear)

    def _cold_and_warm(self, handler: NativeHandler, data: bytes) -> None:
        """Answer ``data`` with an empty memo, then again: all must agree."""
        _slot._remembered_heads.clear()
        cold = _run_native(handler, data)
        warm = _run_native(handler, data)
        self.assertEqual(cold, warm)
        _slot._remembered_heads.clear()
        self.assertEqual(cold, _run_native(handler, data))

    def test_requests_of_every_kind(self) -> None:
        """Every kind of request gets the same bytes from a cold and a warm memo."""
        requests = [
            GET,
            b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            b"GET /a HTTP/1.0\r\n\r\n",
            b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"HEAD /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
            GET * 3,
            GET + b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + GET,
        ]
        for data in requests:
            self._cold_and_warm(_hello, data)

    def test_responses_of_every_kind(self) -> None:
        """Statuses, reasons, fields and framings agree cold and warm."""

        def answer(
            status: int, reason: bytes | None, fields: list[tuple[bytes, bytes]]
        ) -> NativeHandler:
            def handler(request: Request, response: Response) -> None:
                response.status = status
                response.reason = reason
                response.headers.extend(fields)
                response.finish(b"body")

            return handler

        def streaming(request: Request, response: Response) -> None:
            response.headers.append((b"Content-Type", b"text/plain"))
            response.write(b"one")
            response.finish(b"two")

        handlers: list[NativeHandler] = [
            answer(200, None, []),
            answer(404, None, [(b"Content-Type", b"text/plain")]),
            answer(299, b"Fine", [(b"A", b"1"), (b"B", b"2"), (b"a", b"3")]),
            answer(204, None, []),
            answer(304, None, [(b"ETag", b'"x"')]),
            answer(200, None, [(b"Connection", b"close")]),
            answer(200, None, [(b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT")]),
            answer(200, None, [(b"Server", b"other")]),
            answer(200, None, [(b"Content-Length", b"4")]),
            streaming,
        ]
        for handler in handlers:
            for data in (
                GET,
                b"GET /a HTTP/1.0\r\n\r\n",
                b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                b"HEAD / HTTP/1.1\r\n\r\n",
                GET + b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            ):
                self._cold_and_warm(handler, data)

    def test_plain_heads_are_remembered(self) -> None:
        """A head from plain, accepted fields is made once, then remembered."""
        _run_native(_hello, GET)
        self.assertEqual(1, len(_slot._remembered_heads))
        _run_native(_hello, GET)
        self.assertEqual(1, len(_slot._remembered_heads))

    def test_fields_of_the_slot_are_not_remembered(self) -> None:
        """Heads carrying Content-Length, Connection, Date or Server are not kept."""
        for name, value in [
            (b"Content-Length", b"4"),
            (b"connection", b"close"),
            (b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT"),
            (b"SERVER", b"other"),
        ]:
            written, _closed = _run_native(_with_fields([(name, value)]), GET)
            self.assertIn(name + b": " + value + b"\r\n", written)
            self.assertEqual({}, _slot._remembered_heads)

    def test_unhashable_fields_take_the_general_path(self) -> None:
        """A bytearray value is written as the same bytes would be, unremembered."""

        def handler(value: bytes | bytearray) -> NativeHandler:
            def answer(request: Request, response: Response) -> None:
                response.headers.append((b"X-V", value))  # type: ignore[arg-type]  # a bytearray on purpose
                response.finish(b"body")

            return answer

        expected = _run_native(handler(b"v"), GET)
        _slot._remembered_heads.clear()
        self.assertEqual(expected, _run_native(handler(bytearray(b"v")), GET))
        self.assertEqual({}, _slot._remembered_heads)

    def test_memo_is_bounded(self) -> None:
        """No more than MAX_REMEMBERED_HEADS heads are kept."""
        for count in range(_slot.MAX_REMEMBERED_HEADS + 5):
            _run_native(_with_fields([(b"X-N", b"%d" % count)]), GET)
        self.assertLessEqual(len(_slot._remembered_heads), _slot.MAX_REMEMBERED_HEADS)
        self.assertGreater(len(_slot._remembered_heads), 0)

    def test_heads_with_many_fields_are_not_remembered(self) -> None:
        """Past MAX_REMEMBERED_HEAD_FIELDS fields, a head is made anew each time."""
        most = _slot.MAX_REMEMBERED_HEAD_FIELDS
        fields = [(b"X-%d" % n, b"v") for n in range(most + 1)]
        self._cold_and_warm(_with_fields(fields), GET)
        self.assertEqual({}, _slot._remembered_heads)
        _run_native(_with_fields(fields[:most]), GET)
        self.assertEqual(1, len(_slot._remembered_heads))

    def test_date_follows_the_clock(self) -> None:
        """A remembered head still carries the Date of the moment it is sent."""
        channel, transport, clock = make_native(_hello, clock=_clock())
        channel.dataReceived(GET)
        clock.advance(2)
        channel.dataReceived(GET)
        first, second = parse_responses(transport.value())
        self.assertEqual(first.header(b"Date"), b"Tue, 14 Nov 2023 22:13:20 GMT")
        self.assertEqual(second.header(b"Date"), b"Tue, 14 Nov 2023 22:13:22 GMT")


class WholeResponseTests(SynchronousTestCase):
    """A response written whole at once agrees with one that has to wait."""

    def test_split_pipelined_and_paused_inputs_agree(self) -> None:
        """One segment, odd splits, byte by byte, a full transport: same bytes."""
        data = (
            GET
            + b"HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
            + b"POST /c HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy"
            + b"GET /d HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        expected = _run_native(_hello, data)
        self.assertEqual(4, len(parse_responses(expected[0], [b"GET", b"HEAD"])))
        self.assertFalse(expected[1])
        for split in (1, 2, 7, 29, len(GET)):
            self.assertEqual(expected, _run_native(_hello, data, split=split))
        self.assertEqual(expected, _run_native(_hello, data, paused=True))

    def test_sync_and_later_answers_agree(self) -> None:
        """A handler answering at once writes what one answering later does."""
        waiting: list[Deferred[None]] = []

        def later(request: Request, response: Response) -> Deferred[None]:
            waiting.append(Deferred())
            return waiting[-1].addCallback(lambda _: _hello(request, response))

        channel, transport, _c = make_native(later, clock=_clock())
        channel.dataReceived(GET + GET)
        self.assertEqual(b"", transport.value())
        waiting[1].callback(None)  # Behind the first: buffered.
        self.assertEqual(b"", transport.value())
        waiting[0].callback(None)
        self.assertEqual(_run_native(_hello, GET + GET)[0], transport.value())

    def test_exchange_told_in_contract_order(self) -> None:
        """Fast or not, an exchange hears start, sent and complete, once each."""
        for data, split in ((GET, 0), (GET, 1)):
            channel, transport, _c, recorder = make_channel(
                Recorder(respond_at_once), clock=_clock()
            )
            for offset in range(0, len(data), split or len(data)):
                channel.dataReceived(data[offset : offset + (split or len(data))])
            [exchange] = recorder.exchanges
            self.assertEqual(["start", "sent", "complete"], exchange.events)
        # Answered at once, then closed: the end is told before the close.
        channel, transport, _c, recorder = make_channel(
            Recorder(respond_at_once), clock=_clock()
        )
        channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        [exchange] = recorder.exchanges
        self.assertEqual(["start", "sent", "complete"], exchange.events)
        self.assertTrue(is_closing(transport))
        # A body of zero bytes takes the general read path: same calls.
        channel, transport, _c, recorder = make_channel(
            Recorder(respond_at_once), clock=_clock()
        )
        channel.dataReceived(
            b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        )
        [exchange] = recorder.exchanges
        self.assertEqual(["start", "sent", "complete"], exchange.events)

    def test_answer_after_the_end_was_read(self) -> None:
        """Answered after its end was read, the exchange hears complete, then sent."""
        channel, transport, _c, recorder = make_channel(clock=_clock())
        channel.dataReceived(GET)
        [exchange] = recorder.exchanges
        exchange.respond(b"x")
        self.assertEqual(["start", "complete", "sent"], exchange.events)
        self.assertEqual(b"x", parse_responses(transport.value())[0].body)

    def test_failed_exchange_gets_no_end(self) -> None:
        """
        An exchange whose start raised is not told its (bodiless) end, only
        the loss of the connection its failure aborts.
        """

        def explode(exchange: RecordingExchange) -> None:
            raise ValueError("boom")

        channel, transport, _c, recorder = make_channel(
            Recorder(explode), clock=_clock()
        )
        channel.dataReceived(GET + GET)
        [exchange] = recorder.exchanges
        self.assertEqual(["start", "lost"], exchange.events)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_failing_end_of_last_request_aborts(self) -> None:
        """An exchange failing on the end of a request its answer closed aborts."""

        class FailingEnd(RecordingExchange):
            def body_complete(self, trailers: Fields) -> None:
                super().body_complete(trailers)
                raise ValueError("boom")

        def build(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> RecordingExchange:
            exchange = FailingEnd(head, slot, close_after)
            built.append(exchange)
            return exchange

        def close_after(exchange: RecordingExchange) -> None:
            fields = [(b"Connection", b"close")]
            exchange.slot.finish_with_body(200, b"OK", fields, b"/a")

        built: list[RecordingExchange] = []
        channel, transport, _c, _r = make_channel(clock=_clock())
        channel.exchangeFactory = build
        channel.dataReceived(GET)
        self.assertEqual(["start", "sent", "complete"], built[0].events)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))
        self.assertEqual(b"/a", parse_responses(transport.value())[0].body)

    def test_unread_expected_body_closes(self) -> None:
        """Answered without reading an expected body, the connection closes."""
        data = (
            b"POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        for paused in (False, True):
            written, closed = _run_native(_hello, data, paused=paused)
            self.assertTrue(closed)
            self.assertNotIn(b"100 Continue", written)
            [response] = parse_responses(written)
            self.assertEqual(b"hello /a", response.body)

    def test_close_request_drops_nothing_it_should_answer(self) -> None:
        """A Connection: close request is answered, and what follows is not read."""
        data = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + GET
        written, closed = _run_native(_hello, data)
        [response] = parse_responses(written)
        self.assertEqual(b"close", response.header(b"Connection"))
        self.assertTrue(closed)

    def test_large_body_written_in_pieces(self) -> None:
        """A body over the join size goes after its head, in order."""
        body = b"z" * (2 * 1024 * 1024)

        def big(request: Request, response: Response) -> None:
            response.finish(body)

        transport = HalfCloseTransport()
        channel, _transport, _c = make_native(big, transport=transport, clock=_clock())
        channel.dataReceived(GET)
        [response] = parse_responses(transport.value())
        self.assertEqual(body, response.body)


CLOSE_GET = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"


class ClosedConnectionEndTests(SynchronousTestCase):
    """The short end of a connection we closed leaves what the long one does."""

    def test_close_after_response(self) -> None:
        """After a closing response and the loss, no timer or exchange is left."""
        channel, transport, _c, recorder = make_channel(
            Recorder(respond_at_once), clock=_clock(), header_timeout=5.0
        )
        channel.dataReceived(CLOSE_GET)
        self.assertTrue(is_closing(transport))
        channel.connectionLost(Failure(ConnectionDone()))
        [exchange] = recorder.exchanges
        self.assertEqual(["start", "sent", "complete"], exchange.events)
        self.assertIsNone(exchange.lost)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _c.getDelayedCalls())

    def test_close_with_a_request_left_takes_the_long_way(self) -> None:
        """Lost while closing with a request unanswered: its exchange is told."""
        channel, _transport, clock, recorder = make_channel(clock=_clock())
        channel.dataReceived(GET)
        [exchange] = recorder.exchanges
        channel.pauseProducing()  # The client stopped reading.
        clock.advance(channel.timeOut or 0)
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertIsNone(exchange.lost)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(exchange.lost)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], clock.getDelayedCalls())
