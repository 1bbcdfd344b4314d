# -*- test-case-name: txhttp.test.test_server_lazyproducer_review -*-
"""
Adversarial tests for the lazy producer registration of a write-through
``HTTPChannel`` (see `txhttp.test.test_server_lazyproducer`).

The deterministic tests drive the channel over a real
`twisted.internet.tcp.Connection` on a socket pair with scripted partial
sends and a `Clock`; the loopback tests run servers on 127.0.0.1 with the
global reactor and a client that stops reading until the server's side is
seen paused. Each checks that flow control, closes, timers and the stopping
of response producers behave as with the registration at connect.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer, IReactorTCP, IReactorTime
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.server import Site
from twisted.web.static import File
from zope.interface import implementer

from txhttp.server import ChannelState, HTTPChannel, use_txhttp
from txhttp.server import Request as NativeRequest
from txhttp.server import Response as NativeResponse
from txhttp.test._server_helpers import (
    Recorder,
    RecordingExchange,
    RecordingProducer,
    parse_responses,
    respond_at_once,
)
from txhttp.test.test_client_writethrough import _Sockets
from txhttp.test.test_server_lazyproducer import _Registering
from txhttp.test.test_server_writethrough import (
    _bodies,
    _get,
    _PeeredSends,
    _tcp_channel,
    serve_tracked,
    wait_closed,
)

_BIG = 1_000_000
"""A body many times a TCP transport's ``bufferSize`` (64 KiB)."""


class _Peered(_Registering, _PeeredSends):
    """A registration-counting TCP transport with a peer address."""


def _channel(
    case: SynchronousTestCase, recorder: Recorder, **settings: Any
) -> tuple[HTTPChannel, _Peered, _Sockets]:
    """A `_tcp_channel` over a `_Peered` transport."""
    channel, transport, sockets = _tcp_channel(case, recorder, kind=_Peered, **settings)
    assert isinstance(transport, _Peered)
    transport.writes_with_producer = []
    return channel, transport, sockets


def _by_target(**hooks: Callable[[RecordingExchange], None]) -> Recorder:
    """A recorder whose start hook is picked by target (``/name`` -> ``name``)."""

    def start(exchange: RecordingExchange) -> None:
        hooks.get(exchange.head.target.decode()[1:], respond_at_once)(exchange)

    return Recorder(start)


def _big(exchange: RecordingExchange) -> None:
    """Answer with a whole ``_BIG`` body, in one write."""
    exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"%d" % _BIG)])
    exchange.slot.write_body(b"b" * _BIG)
    exchange.slot.finish()


def _eof(sockets: _Sockets) -> bool:
    """Whether the peer reads the end of the stream now (after `received`)."""
    try:
        return sockets.peer.recv(1) == b""
    except BlockingIOError:
        return False


class LazyWireTests(SynchronousTestCase):
    """Bytes on the wire, states and timers around the first registration."""

    def test_partial_first_then_later_response(self) -> None:
        """A cut-short first send, then a later response: registered once, in order."""
        channel, transport, sockets = _channel(self, Recorder(respond_at_once))
        transport.script = [3]
        channel.dataReceived(_get(b"/1"))
        channel.dataReceived(_get(b"/2"))
        self.assertEqual(1, transport.registered)
        self.assertEqual([True, True], transport.writes_with_producer)
        transport.doWrite()
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))
        self.assertIs(ChannelState.OPEN, channel.state)

    def test_error_response_first_write(self) -> None:
        """400, 413 and 431 as the first write: sent, half-closed, lingering."""
        cases = [
            (400, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", {}),
            (
                413,
                b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n",
                {"max_body_bytes": 10},
            ),
            (
                431,
                _get(b"/", b"X-Big: " + b"v" * 400 + b"\r\n"),
                {"maxHeaderLength": 200},
            ),
        ]
        for status, request, settings in cases:
            clock = Clock()
            channel, transport, sockets = _channel(
                self, Recorder(), clock=clock, **settings
            )
            channel.dataReceived(request)
            self.assertIs(ChannelState.LINGERING, channel.state)
            self.assertEqual(1, transport.registered)
            self.assertEqual([True], transport.writes_with_producer)
            transport.doWrite()
            received = sockets.received()
            self.assertEqual([status], [r.status for r in parse_responses(received)])
            self.assertTrue(_eof(sockets))
            delays = [c.getTime() for c in clock.getDelayedCalls()]
            self.assertIn(channel.linger_timeout, delays)
            channel.readConnectionLost()  # The peer closes: over at once.
            self.assertIs(ChannelState.CLOSED, channel.state)
            self.assertTrue(transport.disconnected)
            self.assertEqual([], clock.getDelayedCalls())

    def test_continue_first_write(self) -> None:
        """``100 Continue`` as the first write, cut short: the answer follows it."""
        recorder = Recorder(lambda exchange: exchange.slot.want_body())
        channel, transport, sockets = _channel(self, recorder)
        transport.script = [0]
        channel.dataReceived(
            b"POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        self.assertEqual(1, transport.registered)
        channel.dataReceived(b"hello")
        recorder.exchanges[0].respond(b"got it")
        self.assertEqual([True, True], transport.writes_with_producer)
        transport.doWrite()
        responses = parse_responses(sockets.received())
        self.assertEqual(
            [([100], 200, b"got it")],
            [(r.interim, r.status, r.body) for r in responses],
        )

    def test_closing_rest_drains_and_ends(self) -> None:
        """
        A closing response cut short (never registered) closes once drained,
        with no timer left and the exchange told only that it was sent.
        """
        clock = Clock()
        recorder = Recorder(respond_at_once)
        channel, transport, sockets = _channel(self, recorder, clock=clock)
        transport.script = [5]
        channel.dataReceived(_get(b"/last", b"Connection: close\r\n"))
        self.assertEqual(0, transport.registered)
        reason = transport.doWrite()
        transport.connectionLost(Failure(reason))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], clock.getDelayedCalls())
        self.assertEqual(["start", "sent", "complete"], recorder.exchanges[0].events)
        self.assertEqual([b"/last"], _bodies(sockets.received()))
        self.assertTrue(_eof(sockets))

    def test_write_blocked_stops_reading_pipelined(self) -> None:
        """
        A backed-up first response keeps the next request unread until the
        transport drains; then it is answered after it, in order.
        """
        recorder = _by_target(big=_big)
        channel, transport, sockets = _channel(self, recorder)
        transport.script = [0]
        channel.dataReceived(_get(b"/big"))
        self.assertTrue(transport.producerPaused)
        channel.dataReceived(_get(b"/small"))
        self.assertEqual([b"/big"], recorder.targets)
        received = b""
        for _ in range(30):
            received += sockets.received()
            transport.doWrite()
        received += sockets.received()
        self.assertEqual([b"/big", b"/small"], recorder.targets)
        bodies = _bodies(received)
        self.assertEqual([_BIG, 6], [len(body) for body in bodies])
        self.assertEqual((b"b" * _BIG, b"/small"), (bodies[0], bodies[1]))
        self.assertEqual(1, transport.registered)

    def test_slow_moving_download_kept_stuck_one_cut(self) -> None:
        """
        A download drained a little every 6 s outlives a 10 s idle timeout;
        once it stops moving it is aborted and its producer stopped.
        """
        clock = Clock()
        producer = RecordingProducer()

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.registerProducer(producer, True)
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"%d" % _BIG)])
            exchange.slot.write_body(b"s" * _BIG)

        channel, transport, sockets = _channel(
            self, Recorder(stream), clock=clock, timeOut=10
        )
        transport.script = [0]
        channel.dataReceived(_get(b"/slow"))
        self.assertEqual(["pause"], producer.calls)
        got = 0
        for _ in range(6):  # 36 s in all, never 10 s without progress.
            clock.advance(6)
            got += len(sockets.received())
            transport.doWrite()
            self.assertIs(ChannelState.OPEN, channel.state)
        self.assertFalse(transport._aborting)
        self.assertLess(300_000, got)
        self.assertLess(got, _BIG)  # Not done: stuck from here on.
        clock.advance(11)  # No doWrite: nothing moves.
        self.assertTrue(transport._aborting)
        cast(Any, transport.reactor).advance(0)  # The abort's connectionLost.
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual("stop", producer.calls[-1])
        self.assertEqual(1, producer.calls.count("stop"))


class LazyStopEquivalenceTests(SynchronousTestCase):
    """Producers are stopped as with registration at connect (write_through off)."""

    def _both(
        self, run: Callable[[HTTPChannel, _Peered, Recorder], Any], hook: Any
    ) -> list[tuple[int, Any]]:
        """Run ``run`` lazily registered and registered at connect."""
        results = []
        for write_through in (True, False):
            recorder = Recorder(hook)
            channel, transport, _ = _channel(
                self, recorder, write_through=write_through
            )
            results.append((transport.registered, run(channel, transport, recorder)))
        return results

    def test_finished_later_response_producer_stopped(self) -> None:
        """A later response done behind an unanswered one: its producer is stopped."""
        producers: list[RecordingProducer] = []

        def hook(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/2":
                producer = RecordingProducer()
                producers.append(producer)
                exchange.slot.registerProducer(producer, True)
                exchange.respond(b"/2")

        def run(channel: HTTPChannel, transport: _Peered, recorder: Recorder) -> Any:
            channel.dataReceived(_get(b"/1") + _get(b"/2"))
            transport.connectionLost(Failure(ConnectionDone()))
            return producers[-1].calls, [e.events for e in recorder.exchanges]

        lazy, eager = self._both(run, hook)
        self.assertEqual((0, 1), (lazy[0], eager[0]))
        self.assertEqual(eager[1], lazy[1])
        self.assertEqual(["stop"], lazy[1][0])

    def test_failed_exchange_producer_stopped(self) -> None:
        """An exchange failing after registering a producer: stopped once, aborted."""
        producers: list[RecordingProducer] = []

        def hook(exchange: RecordingExchange) -> None:
            producer = RecordingProducer()
            producers.append(producer)
            exchange.slot.registerProducer(producer, True)
            raise ValueError("boom")

        def run(channel: HTTPChannel, transport: _Peered, recorder: Recorder) -> Any:
            channel.dataReceived(_get(b"/fail"))
            self.assertTrue(transport._aborting)
            cast(Any, transport.reactor).advance(0)
            return channel.state, producers[-1].calls

        lazy, eager = self._both(run, hook)
        self.assertEqual(2, len(self.flushLoggedErrors(ValueError)))
        self.assertEqual(eager[1], lazy[1])
        self.assertEqual((ChannelState.CLOSED, ["stop"]), lazy[1])


class _StopFinishes(RecordingProducer):
    """A producer whose ``stopProducing`` finishes its response, or raises."""

    def __init__(self, exchange: RecordingExchange, fail: bool) -> None:
        super().__init__()
        self.exchange = exchange
        self.fail = fail

    def stopProducing(self) -> None:
        """Record; then raise, or answer (too late: the connection is gone)."""
        super().stopProducing()
        if self.fail:
            raise ValueError("stop failed")
        self.exchange.respond(b"late")


class StopAtLossTests(SynchronousTestCase):
    """
    A response producer stopped by a connection loss, whether the channel
    registered with the transport (a response was written before) or not:
    the exchange must be told the loss in both cases.
    """

    def _lose(self, registered: bool, fail: bool) -> list[str]:
        """Lose the connection while ``/1`` waits on its producer; its events."""

        def hook(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/0":
                exchange.respond(b"/0")
            else:
                exchange.slot.registerProducer(_StopFinishes(exchange, fail), True)

        recorder = Recorder(hook)
        channel, transport, _ = _channel(self, recorder)
        if registered:
            channel.dataReceived(_get(b"/0"))
        channel.dataReceived(_get(b"/1"))
        self.assertEqual(int(registered), transport.registered)
        transport.connectionLost(Failure(ConnectionDone()))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(int(fail), len(self.flushLoggedErrors(ValueError)))
        return recorder.exchanges[-1].events

    def test_unregistered_finish_in_stop_is_lost(self) -> None:
        """Never registered: a response finished as its producer stops is lost."""
        self.assertEqual(["start", "complete", "lost"], self._lose(False, False))

    def test_unregistered_failing_stop_tells_loss(self) -> None:
        """Never registered: a producer failing to stop still lets the loss be told."""
        self.assertEqual(["start", "complete", "lost"], self._lose(False, True))

    def test_registered_finish_in_stop_is_lost(self) -> None:
        """Registered: a response finished as its producer stops is lost, not sent."""
        self.assertEqual(["start", "complete", "lost"], self._lose(True, False))

    def test_registered_failing_stop_tells_loss(self) -> None:
        """Registered: a producer failing to stop still lets the loss be told."""
        self.assertEqual(["start", "complete", "lost"], self._lose(True, True))


# -- loopback -----------------------------------------------------------------


def _pattern(size: int) -> bytes:
    """``size`` bytes of numbered lines: any loss or reordering shows."""
    lines = b"".join(b"%07d\n" % n for n in range(size // 8 + 1))
    return lines[:size]


_BODY = _pattern(8_500_000)
"""Twice the largest kernel send buffer Linux grows to by default (4 MiB)."""


@implementer(IPushProducer)
class _Pump:
    """A push producer writing `_BODY` to a native response in 16 KiB pieces."""

    def __init__(self, response: NativeResponse) -> None:
        self.response = response
        self.calls: list[str] = []
        self.offset = 0
        self.paused = self.stopped = self.scheduled = False
        self.done: Deferred[None] = Deferred()

    def pauseProducing(self) -> None:
        """Stop writing."""
        self.calls.append("pause")
        self.paused = True

    def resumeProducing(self) -> None:
        """Write again, on the next turn."""
        self.calls.append("resume")
        self.paused = False
        self.schedule()

    def stopProducing(self) -> None:
        """Give up."""
        self.calls.append("stop")
        self.stopped = True

    def schedule(self) -> None:
        """Pump on the next turn, once."""
        if not self.scheduled:
            self.scheduled = True
            cast(IReactorTime, reactor).callLater(0, self.pump)

    def pump(self) -> None:
        """Write until paused, stopped or done."""
        self.scheduled = False
        while not (self.paused or self.stopped) and self.offset < len(_BODY):
            piece = _BODY[self.offset : self.offset + 16384]
            self.offset += len(piece)
            self.response.write(piece)
        if self.offset >= len(_BODY) and not self.stopped and not self.done.called:
            self.response.unregisterProducer()
            self.response.finish()
            self.done.callback(None)


def _slow_client(port: int, data: bytes, go: threading.Event) -> bytes:
    """Send ``data``, read nothing until ``go`` is set, then read to the end."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(data)
        if not go.wait(10):
            return b""
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)


class LazyLoopbackTests(TestCase):
    """Slow readers over real sockets on 127.0.0.1."""

    timeout = 30

    @inlineCallbacks
    def _slow_read(self, channels: list[HTTPChannel], port: int, data: bytes) -> Any:
        """
        Run `_slow_client`; once the server's channel is paused by its
        transport (the client reads nothing), let it read. Return the bytes.
        """
        go = threading.Event()
        self.addCleanup(go.set)
        received = deferToThread(_slow_client, port, data, go)
        for _ in range(500):
            if channels and channels[0]._transport_paused:
                break
            yield task.deferLater(reactor, 0.01, lambda: None)  # loopback
        self.assertTrue(
            channels and channels[0]._transport_paused,
            [(c.state, c._registered, c._backlog, c._slots) for c in channels],
        )
        self.assertEqual([True], [c._registered for c in channels])
        go.set()
        result = yield received
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED], [c.state for c in channels])
        return result

    @inlineCallbacks
    def test_native_producer_paused_and_resumed(self) -> Any:
        """
        Pipelined: an 8.5 MB streamed body, then a small one; the producer is
        paused while the client does not read, resumed after; both arrive
        whole and in order.
        """
        pumps: list[_Pump] = []

        def handler(
            request: NativeRequest, response: NativeResponse
        ) -> Deferred[None] | None:
            if request.target != b"/big":
                response.finish(request.target)
                return None
            response.headers.append((b"Content-Length", b"%d" % len(_BODY)))
            pump = _Pump(response)
            pumps.append(pump)
            response.registerProducer(pump, True)
            pump.schedule()
            return pump.done

        _factory, channels, port = serve_tracked(self, handler)
        data = _get(b"/big") + _get(b"/small", b"Connection: close\r\n")
        received = yield self._slow_read(channels, port, data)
        self.assertEqual([_BODY, b"/small"], _bodies(received))
        calls = pumps[0].calls
        self.assertIn("pause", calls)
        self.assertEqual("resume", calls[calls.index("pause") + 1])
        self.assertNotIn("stop", calls)

    @inlineCallbacks
    def test_site_static_file_slow_reader(self) -> Any:
        """A twisted.web Site on txhttp serves an 8.5 MB File whole to a slow reader."""
        folder = self.mktemp()
        os.mkdir(folder)
        with open(os.path.join(folder, "big.bin"), "wb") as f:
            f.write(_BODY)
        site = use_txhttp(Site(File(folder)))
        channels: list[HTTPChannel] = []
        build = site.buildProtocol

        def tracking(addr: Any) -> Any:
            channel = build(addr)
            channels.append(cast(HTTPChannel, channel))
            return channel

        site.buildProtocol = tracking  # type: ignore[method-assign]  # tracks channels
        listening = cast(IReactorTCP, reactor).listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(listening.stopListening)
        port = cast(IPv4Address, listening.getHost()).port
        received = yield self._slow_read(
            channels, port, _get(b"/big.bin", b"Connection: close\r\n")
        )
        self.assertEqual([_BODY], _bodies(received))
