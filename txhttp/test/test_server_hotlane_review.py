# -*- test-case-name: txhttp.test.test_server_hotlane_review -*-
"""
An adversarial review of the server channel's hot-path shortcuts.

``HTTPChannel.dataReceived`` takes a whole bodiless request on an idle
connection without its parser (the whole-request lane), corks what the
responses write until the receive ends, and resets the idle timer inline.
Each test here feeds the same bytes whole (the lane) and in pieces (the
parser), with handlers that misbehave inside ``start``, and holds the two to
the same handler calls, bytes on the wire, state, read pauses and timers.
Three differences it found are fixed, each with its test here: the lane
kept the parser's count of empty lines before a request (a 400 after 8),
did not pause reading when the pipeline was full or the client was not
reading, and an exchange's failure left the others untold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import Limits
from txhttp.server import ChannelState, HTTPChannel
from txhttp.server._channel import ReadPause
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
from txhttp.test.test_server_writethrough import _get, _PeeredSends, _tcp_channel

NEXT = _get(b"/b")

REQUESTS = {
    "get": _get(b"/a"),
    "head": b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
    "connect": b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    "http10": b"GET /a HTTP/1.0\r\n\r\n",
    "http10-keep-alive": b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "expect-no-body": _get(b"/a", b"Expect: 100-continue\r\n"),
    "close": _get(b"/a", b"Connection: close\r\n"),
}
"""Whole bodiless requests: each is one receive the lane takes."""

Hook = Callable[[RecordingExchange], None]
Box = list[HTTPChannel]


def _hooks(box: Box) -> dict[str, Hook]:
    """Start hooks misbehaving in every way tried; ``box[0]`` is the channel."""

    def first(exchange: RecordingExchange) -> bool:
        return exchange.head.target not in (b"/b", b"/c", b"/z")

    def answer(exchange: RecordingExchange) -> None:
        exchange.respond(exchange.head.target)

    def nested(data: bytes, pause: bool = False, eof: bool = False) -> Hook:
        def hook(exchange: RecordingExchange) -> None:
            if first(exchange):
                if pause:
                    exchange.slot.pause_body()
                box[0].dataReceived(data)
                if eof:
                    box[0].readConnectionLost()
            answer(exchange)

        return hook

    def stream(exchange: RecordingExchange) -> None:
        exchange.slot.write_head(200, b"OK", [])
        exchange.slot.registerProducer(RecordingProducer(), True)

    def pause_lost(exchange: RecordingExchange) -> None:
        exchange.slot.pause_body()
        box[0].connectionLost(Failure(ConnectionDone()))

    def lost(exchange: RecordingExchange) -> None:
        answer(exchange)
        box[0].connectionLost(Failure(ConnectionDone()))

    def pause_resume(exchange: RecordingExchange) -> None:
        exchange.slot.pause_body()
        exchange.slot.resume_body()
        answer(exchange)

    def pause_abort(exchange: RecordingExchange) -> None:
        exchange.slot.pause_body()
        exchange.slot.abort()

    def timed_out(exchange: RecordingExchange) -> None:
        answer(exchange)
        cast(Clock, box[0].clock).advance(3600)

    def fail(exchange: RecordingExchange) -> None:
        raise ValueError("boom")

    def pause_answer(exchange: RecordingExchange) -> None:
        exchange.slot.pause_body()
        answer(exchange)

    def peer_closes(exchange: RecordingExchange) -> None:
        box[0].readConnectionLost()
        answer(exchange)

    def write_blocked(exchange: RecordingExchange) -> None:
        box[0].pauseProducing()  # The transport's buffer is full.
        answer(exchange)

    return {
        "at once": answer,
        "later": lambda exchange: None,
        "pause then answer": pause_answer,
        "pause, answer later": lambda e: e.slot.pause_body(),
        "pause and resume": pause_resume,
        "abort": lambda e: e.slot.abort(),
        "pause and abort": pause_abort,
        "error": lambda e: e.slot.write_error(503),
        "raise": fail,
        "stream": stream,
        "answer, lost": lost,
        "pause, lost": pause_lost,
        "answer, idle timeout": timed_out,
        "peer closes": peer_closes,
        "empty receive": nested(b""),
        "next request": nested(NEXT),
        "two more requests": nested(NEXT + _get(b"/c")),
        "next head in part": nested(NEXT[:10]),
        "garbage": nested(b"\x00garbage\r\n\r\n"),
        "stray body": nested(b"xyz"),
        "closing request": nested(_get(b"/b", b"Connection: close\r\n")),
        "pause, next request": nested(NEXT, pause=True),
        "pause, next, peer closes": nested(NEXT, pause=True, eof=True),
        "write blocked": write_blocked,
    }


def _feed(channel: HTTPChannel, data: bytes, mode: str) -> None:
    """Feed ``data`` whole, in two pieces (the last byte apart) or bytewise."""
    if mode == "whole":
        channel.dataReceived(data)
    elif mode == "two":
        channel.dataReceived(data[:-1])
        channel.dataReceived(data[-1:])
    else:
        for offset in range(len(data)):
            channel.dataReceived(data[offset : offset + 1])


def _after(channel: HTTPChannel, transport: HalfCloseTransport, clock: Clock) -> Any:
    """What can be seen of a channel: wire, state, pauses, timers."""
    return (
        transport.value(),
        is_closing(transport),
        channel.state,
        transport.producerState,
        len(channel._slots),
        channel._reading is not None,
        channel._read_pauses,
        channel._idle_on,
        channel._header_call is not None,
        sorted(call.getTime() for call in clock.getDelayedCalls()),
    )


def _run(data: bytes, name: str, mode: str) -> Any:
    """Run hook ``name`` on ``data`` fed by ``mode``, then finish everything."""
    box: Box = []
    recorder = Recorder(_hooks(box)[name])
    clock = Clock()
    clock.advance(1_700_000_000)
    channel, transport, _clock, _r = make_channel(recorder, clock=clock)
    box.append(channel)
    _feed(channel, data, mode)
    first = _after(channel, transport, clock)
    events = [list(exchange.events) for exchange in recorder.exchanges]
    # Then resume every body and answer every fresh exchange, and send more.
    for exchange in recorder.exchanges:
        exchange.slot.resume_body()
    for exchange in recorder.exchanges:
        # (Not once an abort is under way: see test_answer_after_abort.)
        if (
            exchange.slot.is_fresh()
            and exchange.lost is None
            and channel.state is not ChannelState.CLOSING
        ):
            exchange.respond(exchange.head.target)
    channel.dataReceived(_get(b"/z"))
    events_end = [list(exchange.events) for exchange in recorder.exchanges]
    return first, events, _after(channel, transport, clock), events_end


class LaneAgreementTests(SynchronousTestCase):
    """The lane leaves what the parser leaves, whatever the handler does."""

    def test_misbehaving_handlers_agree(self) -> None:
        """Every request kind and hook: whole, in two, bytewise, all alike."""
        for request, data in REQUESTS.items():
            for name in _hooks([]):
                if name == "write blocked":
                    continue  # See test_write_blocked_pauses_reading.
                whole = _run(data, name, "whole")
                for mode in ("two", "bytes"):
                    self.assertEqual(whole, _run(data, name, mode), (request, name))
        # The "raise" hook failed once per request kind and mode.
        self.assertEqual(3 * len(REQUESTS), len(self.flushLoggedErrors(ValueError)))

    def test_nested_requests_in_order(self) -> None:
        """Requests fed inside the lane's handler are answered after it, in order."""
        whole = _run(REQUESTS["get"], "two more requests", "whole")
        wire, _closing, state = whole[0][:3]
        self.assertEqual([b"/a", b"/b", b"/c"], [r.body for r in parse_responses(wire)])
        self.assertIs(ChannelState.OPEN, state)
        self.assertEqual([["start", "sent", "complete"]] * 3, whole[1])

    def test_paused_end_waits_before_nested_request(self) -> None:
        """A paused lane request's end comes before the nested one's start."""
        first, events, _end, events_end = _run(
            REQUESTS["get"], "pause, next request", "whole"
        )
        self.assertEqual([["start", "sent"]], events)
        self.assertEqual(frozenset({ReadPause.BODY}), first[6])
        self.assertEqual(
            [["start", "sent", "complete"]] * 3, events_end
        )  # /a, then /b and /z.

    def test_limits_same_status_whole_and_split(self) -> None:
        """At each head limit and one byte over, lane and parser answer alike."""
        limits = Limits()
        line = b"GET /%s HTTP/1.1\r\nHost: h\r\n\r\n"
        short = limits.max_line_bytes - len(b"GET / HTTP/1.1")
        big = HTTPChannel.maxHeaderLength
        cases: list[tuple[bytes, int, int]] = [
            (line % (b"a" * short), 200, big),
            (line % (b"a" * (short + 1)), 414, big),
            (
                _get(b"/", b"X: %s\r\n" % (b"v" * (limits.max_field_line_bytes - 3))),
                200,
                big,
            ),
            (
                _get(b"/", b"X: %s\r\n" % (b"v" * (limits.max_field_line_bytes - 2))),
                431,
                big,
            ),
            (_get(b"/", b"X: y\r\n" * (limits.max_header_count - 1)), 200, big),
            (_get(b"/", b"X: y\r\n" * limits.max_header_count), 431, big),
            (_get(b"/", b"X: %s\r\n" % (b"v" * 168)), 200, 200),
            (_get(b"/", b"X: %s\r\n" % (b"v" * 169)), 431, 200),
        ]
        for data, status, max_header in cases:
            outcomes = []
            for mode in ("whole", "two", "bytes"):
                channel, transport, _c, recorder = make_channel(
                    Recorder(respond_at_once), maxHeaderLength=max_header
                )
                _feed(channel, data, mode)
                outcomes.append(
                    (
                        [r.status for r in parse_responses(transport.value())],
                        channel.state,
                        len(recorder.exchanges),
                    )
                )
            self.assertEqual([outcomes[0]] * 3, outcomes, (len(data), status))
            self.assertEqual([status], outcomes[0][0], len(data))

    def test_bytes_like_data_takes_the_parser(self) -> None:
        """A bytes subclass, bytearray or memoryview: the parser, the same answer."""

        class Sub(bytes):
            pass

        expected = None
        for kind in (bytes, Sub, bytearray, memoryview):
            channel, transport, _c, recorder = make_channel(Recorder(respond_at_once))
            channel.dataReceived(kind(REQUESTS["get"]))  # type: ignore[arg-type]  # what a transport might hand over
            channel.dataReceived(kind(NEXT))  # type: ignore[arg-type]  # the same
            self.assertIs(kind is not bytes, channel._parser is not None, kind)
            outcome = (transport.value(), [e.events for e in recorder.exchanges])
            if expected is None:
                expected = outcome
            self.assertEqual(expected, outcome, kind)

    def test_empty_lines_between_lane_requests(self) -> None:
        """A lone CRLF before each keep-alive request is one empty line each."""
        for split in (False, True):
            channel, transport, _c, _r = make_channel(Recorder(respond_at_once))
            for _ in range(12):
                channel.dataReceived(b"\r\n")
                _feed(channel, REQUESTS["get"], "two" if split else "whole")
            statuses = [r.status for r in parse_responses(transport.value())]
            self.assertEqual([200] * 12, statuses, split)
            self.assertIs(ChannelState.OPEN, channel.state)

    def test_write_blocked_pauses_reading(self) -> None:
        """A request answered into a full transport pauses reading, as split."""
        outcomes = [
            _run(REQUESTS["get"], "write blocked", mode)[0][3]
            for mode in ("whole", "two")
        ]
        self.assertEqual(["paused", "paused"], outcomes)


class _PlainReset(HTTPChannel):
    """Overrides ``resetTimeout`` without moving the timer: records only."""

    __slots__ = ()
    resets: list[ChannelState]

    def resetTimeout(self) -> None:
        """Record the call and the state; leave the timer where it is."""
        self.resets.append(self.state)


class _Grandchild(_PlainReset):
    """Inherits the override: still not plain."""

    __slots__ = ()


class _SetOnly(HTTPChannel):
    """Overrides ``setTimeout`` only."""

    __slots__ = ()
    periods: list[float | None]

    def setTimeout(self, period: float | None) -> float | None:
        """Record, then set as ``TimeoutMixin`` does."""
        self.periods.append(period)
        previous: float | None = super().setTimeout(period)
        return previous


class TimerShortcutTests(SynchronousTestCase):
    """The inline timer code is skipped for subclasses overriding it."""

    def _connect(
        self, kind: type[_PlainReset], hook: str = "next request"
    ) -> tuple[_PlainReset, Clock, Box]:
        """A connected ``kind`` channel, idle after 10 s, running ``hook``."""
        clock = Clock()
        box: Box = []
        channel = kind(clock=clock)
        channel.resets = []
        channel.timeOut = 10.0
        channel.exchangeFactory = Recorder(_hooks(box)[hook])
        box.append(channel)
        channel.makeConnection(HalfCloseTransport())
        return channel, clock, box

    def test_override_sees_every_receive_and_timer_stays(self) -> None:
        """Lane, nested and parser receives call the override; nothing else moves."""
        for kind in (_PlainReset, _Grandchild):
            self.assertFalse(kind._plain_timeouts)
            channel, clock, _box = self._connect(kind)
            clock.advance(4)
            channel.dataReceived(REQUESTS["get"])  # The lane, one nested receive.
            _feed(channel, _get(b"/c"), "two")
            self.assertEqual([ChannelState.OPEN] * 4, channel.resets, kind)
            # Nothing reset the timer inline: it fires 10 s after connecting.
            self.assertEqual([10.0], [c.getTime() for c in clock.getDelayedCalls()])

    def test_override_not_called_while_closing(self) -> None:
        """A receive after the close leaves the override alone, as the inline path."""
        channel, _clock, _box = self._connect(_PlainReset, "at once")
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertIs(ChannelState.CLOSING, channel.state)
        channel.dataReceived(NEXT)
        self.assertEqual([ChannelState.OPEN], channel.resets)

    def test_set_timeout_override_not_plain(self) -> None:
        """Overriding ``setTimeout`` alone turns the inline paths off too."""
        self.assertFalse(_SetOnly._plain_timeouts)
        self.assertTrue(HTTPChannel._plain_timeouts)
        channel = _SetOnly(clock=Clock())
        channel.periods = []
        channel.timeOut = 10.0
        channel.exchangeFactory = Recorder(respond_at_once)
        channel.makeConnection(HalfCloseTransport())
        channel.dataReceived(REQUESTS["close"])
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([10.0, None, channel.abort_timeout, None], channel.periods)


class CorkReviewTests(SynchronousTestCase):
    """The cork over TCP, pushed past its bound by a nested receive that closes."""

    def test_nested_close_past_piece(self) -> None:
        """
        A close read in a nested receive, its response pushing the cork past
        its bound while draining: both responses buffered whole, in order,
        for the close's write turn; no send overtakes them.
        """
        box: Box = []

        def start(exchange: RecordingExchange) -> None:
            exchange.respond(exchange.head.target * 60)
            if exchange.head.target == b"/a":
                box[0].dataReceived(_get(b"/b", b"Connection: close\r\n"))

        recorder = Recorder(start)
        channel, transport, sockets = _tcp_channel(
            self, recorder, kind=_PeeredSends, write_piece_bytes=250
        )
        box.append(channel)
        channel.dataReceived(REQUESTS["get"])
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([], transport.sends)
        self.assertEqual(1, len(transport.writes))
        self.assertTrue(transport.disconnecting)
        calls = cast(Clock, channel.clock).getDelayedCalls()
        self.assertEqual([channel.abort_timeout], [c.getTime() for c in calls])
        transport.doWrite()
        self.assertEqual(
            [b"/a" * 60, b"/b" * 60],
            [r.body for r in parse_responses(sockets.received())],
        )
        self.assertEqual(
            [["start", "sent", "complete"]] * 2,
            [e.events for e in recorder.exchanges],
        )

    def test_answer_after_abort(self) -> None:
        """An exchange answering after another's failure aborted is told the loss."""

        def start(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/b":
                raise ValueError("boom")

        channel, transport, _c, recorder = make_channel(Recorder(start))
        channel.dataReceived(REQUESTS["get"] + NEXT)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))
        self.assertTrue(transport.disconnecting)
        first = recorder.exchanges[0]
        first.respond()  # Before connectionLost: dropped, not raised.
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(["start", "complete", "lost"], first.events)
