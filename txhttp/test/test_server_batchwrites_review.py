# -*- test-case-name: txhttp.test.test_server_batchwrites_review -*-
"""
Adversarial tests for ``HTTPChannel.batch_writes`` and `TurnBatch`.

The deterministic tests drive a batching channel over a real
`twisted.internet.tcp.Connection` on a socket pair (see
`txhttp.test.test_server_writethrough`) whose reactor, a
`MemoryReactorClock`, runs the turn's end only when the test advances it;
the channel comes "later in the turn" by opening the reactor's batch first,
as another connection's first write would. The loopback tests run a
twisted.web Site on txhttp with the global reactor.
"""

from __future__ import annotations

import os
from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.main import CONNECTION_DONE
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.static import File

from txhttp._tap import Drain
from txhttp._twisted_io import TurnBatch, turn_batch_for
from txhttp.server import ChannelState, HTTPChannel, use_txhttp
from txhttp.test._server_helpers import (
    Recorder,
    RecordingExchange,
    RecordingProducer,
    make_channel,
    parse_responses,
    respond_at_once,
)
from txhttp.test.test_client_writethrough import _Sockets
from txhttp.test.test_server_closenow import _Addressed
from txhttp.test.test_server_loopback import TrackingSite, raw_exchange
from txhttp.test.test_server_writethrough import (
    _bodies,
    _get,
    _tcp_channel,
    wait_closed,
)


class _Calls(_Addressed):
    """An `_Addressed` transport recording writes and aborts, in order."""

    calls: list[str]

    def write(self, data: bytes) -> None:
        """Record the write, then buffer it."""
        self.calls.append("write")
        super().write(data)

    def abortConnection(self) -> None:
        """Record the abort, then abort."""
        self.calls.append("abort")
        super().abortConnection()


def _later_in_turn(
    case: SynchronousTestCase, recorder: Recorder, **settings: Any
) -> tuple[MemoryReactorClock, HTTPChannel, _Calls, _Sockets]:
    """
    A batching channel on a fresh reactor whose turn another writer opened:
    its writes are held until the reactor's ``callLater(0)`` runs.
    """
    reactor = MemoryReactorClock()
    channel, transport, sockets = _tcp_channel(
        case, recorder, reactor=reactor, kind=_Calls, batch_writes=True, **settings
    )
    assert isinstance(transport, _Calls)
    transport.calls = []
    case.assertTrue(turn_batch_for(reactor).begin(reactor))
    return reactor, channel, transport, sockets


class BatchOrderTests(SynchronousTestCase):
    """What is held leaves before anything the same connection writes later."""

    def test_big_response_after_held(self) -> None:
        """A response too big for one piece starts its backlog after the held one."""
        recorder = Recorder()
        reactor, channel, transport, sockets = _later_in_turn(
            self, recorder, write_piece_bytes=200
        )
        channel.dataReceived(_get(b"/1") + _get(b"/big"))
        recorder.exchanges[0].respond(b"/1")
        self.assertEqual([], transport.sends)
        recorder.exchanges[1].respond(b"x" * 500)
        # The held response went to the socket, then the pieces to the buffer.
        self.assertEqual([b"/1"], _bodies(transport.sends[0]))
        self.assertEqual(1, len(transport.sends))
        self.assertEqual(3, len(transport.writes))
        reactor.advance(0)  # Nothing is left for the turn's end.
        self.assertEqual(1, len(transport.sends))
        transport.doWrite()
        self.assertEqual([b"/1", b"x" * 500], _bodies(sockets.received()))

    def test_continue_joins_held_bytes(self) -> None:
        """A ``100 Continue`` and its final response queue behind held bytes."""

        def start(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/1":
                exchange.respond(b"/1")
            else:
                exchange.slot.want_body()

        recorder = Recorder(start)
        reactor, channel, transport, sockets = _later_in_turn(self, recorder)
        channel.dataReceived(_get(b"/1"))
        channel.dataReceived(
            b"POST /up HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        channel.dataReceived(b"hello")
        recorder.exchanges[1].respond(recorder.exchanges[1].body)
        self.assertEqual([], transport.sends)
        reactor.advance(0)
        self.assertEqual(1, len(transport.sends))
        responses = parse_responses(sockets.received(), [b"GET", b"POST"])
        self.assertEqual([b"/1", b"hello"], [r.body for r in responses])
        self.assertEqual([[], [100]], [r.interim for r in responses])

    def test_same_connection_twice_in_a_turn(self) -> None:
        """The turn's first writer's own second write waits for the turn's end."""
        recorder = Recorder()
        reactor = MemoryReactorClock()
        channel, transport, sockets = _tcp_channel(
            self, recorder, reactor=reactor, batch_writes=True
        )
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        recorder.exchanges[0].respond(b"/1")
        recorder.exchanges[1].respond(b"/2")
        self.assertEqual([[b"/1"]], [_bodies(sent) for sent in transport.sends])
        reactor.advance(0)
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))
        self.assertEqual([], transport.writes)

    def test_producer_resume_releases_held(self) -> None:
        """
        A full buffer pauses the response's producer while bytes are held;
        the resume writes them, before the backlog, and resumes the producer.
        """
        producer = RecordingProducer()

        def start(exchange: RecordingExchange) -> None:
            exchange.slot.registerProducer(producer, True)
            exchange.slot.write_head(200, b"OK", [(b"content-length", b"6")])
            exchange.slot.write_body(b"one")

        recorder = Recorder(start)
        reactor, channel, transport, sockets = _later_in_turn(self, recorder)
        channel.dataReceived(_get(b"/p"))
        self.assertEqual([], transport.sends)
        channel.pauseProducing()
        self.assertEqual(["pause"], producer.calls)
        recorder.exchanges[0].slot.write_body(b"two")  # Into the backlog.
        self.assertEqual(([], []), (transport.sends, transport.writes))
        channel.resumeProducing()
        self.assertEqual(["pause", "resume"], producer.calls)
        self.assertEqual(1, len(transport.sends))
        self.assertEqual(["write"], transport.calls)  # The backlog, behind.
        recorder.exchanges[0].slot.unregisterProducer()
        recorder.exchanges[0].slot.finish()
        reactor.advance(0)
        transport.doWrite()
        self.assertEqual([b"onetwo"], _bodies(sockets.received()))


class BatchCloseTests(SynchronousTestCase):
    """Held bytes and the ways a connection ends."""

    def test_idle_abort_leaves_no_write_after_abort(self) -> None:
        """
        The idle timer aborting a blocked connection that holds bytes writes
        nothing to the transport after the abort.
        """
        recorder = Recorder()
        clock = Clock()
        reactor, channel, transport, _s = _later_in_turn(
            self, recorder, clock=clock, timeOut=10
        )
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        recorder.exchanges[0].respond(b"/1")  # Held.
        channel.pauseProducing()  # The transport's buffer is full.
        recorder.exchanges[1].respond(b"/2")  # The backlog.
        clock.advance(10)
        self.assertTrue(transport._aborting)
        self.assertIs(ChannelState.CLOSING, channel.state)
        reactor.advance(0)  # The turn's end, then the abort's connectionLost.
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], transport.sends)
        self.assertEqual("abort", transport.calls[-1], transport.calls)

    def test_peer_half_close_sends_held_then_closes(self) -> None:
        """A client's half-close while its last answer is held: answer, then close."""
        recorder = Recorder(respond_at_once)
        reactor, channel, transport, sockets = _later_in_turn(self, recorder)
        channel.dataReceived(_get(b"/1"))
        channel.readConnectionLost()
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual(["write"], transport.calls)  # Before loseConnection.
        self.assertTrue(transport.disconnecting)
        reactor.advance(0)
        self.assertEqual(["write"], transport.calls)
        transport.doWrite()
        self.assertEqual([b"/1"], _bodies(sockets.received()))

    def test_drain_closing_idle_holder_sends_held(self) -> None:
        """
        ``twistd txhttp``'s graceful stop closing an idle connection whose last
        response is held (it calls ``transport.loseConnection`` itself) still
        delivers that response, then closes.
        """
        recorder = Recorder(respond_at_once)
        reactor, channel, transport, sockets = _later_in_turn(self, recorder)
        drain = Drain(reactor)
        drain.track(channel)
        channel.dataReceived(_get(b"/1"))
        stopped = drain.drain(5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([], transport.sends)
        reactor.advance(0)  # The held response: to the closing transport.
        self.assertEqual(["write"], transport.calls)
        # Written, then the close is due (the reactor would call connectionLost).
        self.assertEqual(CONNECTION_DONE, transport.doWrite())
        transport.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([b"/1"], _bodies(sockets.received()))
        self.assertIs(ChannelState.CLOSED, channel.state)
        reactor.advance(0.05)  # The drain's poll sees it closed.
        self.assertIsNone(self.successResultOf(stopped))

    def test_drain_busy_connection_not_held(self) -> None:
        """
        A connection the graceful stop drains is no longer batched: a response
        due in the grace period's last turn goes to the transport's buffer at
        once, before the abort, never held past it.
        """
        recorder = Recorder()
        memory, channel, transport, _s = _later_in_turn(self, recorder)
        memory.advance(0)  # A new turn, for the timed calls below.
        drain = Drain(memory)
        drain.track(channel)
        channel.exchangeFactory = drain.wrap(recorder)
        channel.dataReceived(_get(b"/1") + _get(b"/2"))

        def answer_first() -> None:
            # Another connection wrote first in this turn.
            turn_batch_for(memory).begin(memory)
            recorder.exchanges[0].respond(b"/1")

        memory.callLater(5, answer_first)
        drain.drain(5)  # /2 stays in flight: the grace period's end aborts.
        self.assertIs(ChannelState.DRAINING, channel.state)
        memory.advance(5)
        self.assertEqual(["write", "abort"], transport.calls)
        self.assertEqual([], transport.sends)
        memory.advance(0)
        self.assertEqual(["write", "abort"], transport.calls)
        self.assertIs(ChannelState.CLOSED, channel.state)


class _CutOrEcho(Resource):
    """A Site resource: ``/cut`` writes a piece, then closes; others echo."""

    isLeaf = True

    def render_GET(self, request: Any) -> object:
        """The path; or, for ``/cut``, a piece then ``request.loseConnection``."""
        if request.path != b"/cut":
            return request.path
        request.write(b"partial")
        request.loseConnection()
        return NOT_DONE_YET


class BatchSiteTests(SynchronousTestCase):
    """A twisted.web Site on txhttp over a TCP transport, deterministically."""

    def test_site_cut_goes_after_held(self) -> None:
        """
        A Site response cut by ``request.loseConnection`` goes after the held
        answer before it, then the write side closes.
        """
        reactor = MemoryReactorClock()
        site = use_txhttp(Site(_CutOrEcho(), reactor=reactor))
        peer = IPv4Address("TCP", "127.0.0.1", 1)
        channel = cast(HTTPChannel, site.buildProtocol(peer))
        sockets = _Sockets(self)
        transport = _Calls(sockets.ours, channel, reactor)
        transport.sends, transport.writes, transport.calls = [], [], []
        transport.connected = 1
        channel.makeConnection(transport)
        turn_batch_for(reactor).begin(reactor)
        channel.dataReceived(_get(b"/one") + _get(b"/cut"))
        self.assertIs(ChannelState.LINGERING, channel.state)
        self.assertEqual([], transport.sends)
        self.assertEqual(["write"], transport.calls)  # Held, then the cut one.
        self.assertTrue(transport._writeDisconnecting)
        transport.doWrite()
        received = sockets.received()
        self.assertEqual([b"/one"], _bodies(received))
        self.assertTrue(received.endswith(b"7\r\npartial\r\n"), received)


class BatchScopeTests(SynchronousTestCase):
    """Where batching applies, and its bounds."""

    def test_not_without_write_through(self) -> None:
        """``batch_writes`` without ``write_through`` holds and schedules nothing."""
        reactor = MemoryReactorClock()
        channel, transport, _s = _tcp_channel(
            self,
            Recorder(respond_at_once),
            reactor=reactor,
            write_through=False,
            batch_writes=True,
        )
        turn_batch_for(reactor).begin(reactor)
        channel.dataReceived(_get(b"/a"))
        self.assertEqual(1, len(transport.writes))
        self.assertEqual([], transport.sends)
        self.assertEqual(1, len(reactor.getDelayedCalls()))  # Only ours.

    def test_not_over_other_transports(self) -> None:
        """Over a transport that is not plain TCP each write goes at once."""
        channel, transport, _c, _r = make_channel(
            Recorder(respond_at_once), batch_writes=True
        )
        channel.dataReceived(_get(b"/1"))
        channel.dataReceived(_get(b"/2"))
        self.assertEqual([b"/1", b"/2"], _bodies(transport.value()))

    def test_batch_entries_bounded_by_pieces(self) -> None:
        """
        A channel adds itself to the turn's batch once per hold: writing many
        responses in one turn adds at most one entry per ``write_piece_bytes``.
        """
        added: list[object] = []
        add = TurnBatch.add

        def counting(batch: TurnBatch, release: Any, clock: Any) -> None:
            added.append(release)
            add(batch, release, clock)

        self.patch(TurnBatch, "add", counting)
        recorder = Recorder()
        reactor, channel, transport, sockets = _later_in_turn(
            self, recorder, write_piece_bytes=200
        )
        targets = [b"/%d" % n for n in range(10)]
        channel.dataReceived(b"".join(_get(target) for target in targets))
        for exchange in recorder.exchanges:
            exchange.respond(exchange.head.target)
        reactor.advance(0)
        received = sockets.received()
        self.assertEqual(targets, _bodies(received))
        self.assertLessEqual(len(added), len(received) // 200 + 1)
        self.assertEqual(len(added), len(transport.sends))

    def test_held_never_past_a_piece(self) -> None:
        """
        After any write, what a channel holds is at most ``write_piece_bytes``
        (a cork flushed in one write that is bigger goes at once).
        """
        recorder = Recorder(respond_at_once)
        reactor, channel, transport, sockets = _later_in_turn(
            self, recorder, write_piece_bytes=200
        )
        targets = [b"/%d" % n for n in range(3)]  # Three: one cork past a piece.
        channel.dataReceived(b"".join(_get(target) for target in targets))
        total = len(b"".join(transport.sends))
        reactor.advance(0)
        received = sockets.received()
        self.assertEqual(targets, _bodies(received))
        self.assertLessEqual(len(received) - total, 200)


class TurnBatchEdgeTests(SynchronousTestCase):
    """`TurnBatch` under re-entrancy and a lost turn call."""

    def test_release_adding_runs_next_turn(self) -> None:
        """A release that writes again opens a new turn, run by a new call."""
        clock = Clock()
        batch = TurnBatch()
        ran: list[str] = []
        opened: list[bool] = []

        def first() -> None:
            ran.append("first")
            opened.append(batch.begin(clock))
            batch.add(lambda: ran.append("second"), clock)

        batch.add(first, clock)
        clock.advance(0)  # (A Clock runs a call made while it advances.)
        self.assertEqual(["first", "second"], ran)
        self.assertEqual([True], opened)
        self.assertEqual([], clock.getDelayedCalls())
        self.assertTrue(batch.begin(clock))

    def test_cancelled_turn_call_recovers(self) -> None:
        """
        A batch whose turn call was cancelled (as a test's clean-up of the
        reactor's pending calls does) still sends later held bytes.
        """
        recorder = Recorder(respond_at_once)
        reactor, channel, _t, sockets = _later_in_turn(self, recorder)
        for call in reactor.getDelayedCalls():
            call.cancel()
        channel.dataReceived(_get(b"/1"))
        reactor.advance(0)
        self.assertEqual([b"/1"], _bodies(sockets.received()))


class _Later(Resource):
    """A Site resource answering on a later reactor turn, in two writes."""

    isLeaf = True

    def render_GET(self, request: Any) -> object:
        """``NOT_DONE_YET``; the path twice, written from a ``callLater``."""
        path = cast(bytes, request.path)
        request.setHeader(b"content-length", b"%d" % (2 * len(path)))

        def finish() -> None:
            request.write(path)
            request.write(path)
            request.finish()

        cast(Any, reactor).callLater(0.001, finish)
        return NOT_DONE_YET


class BatchSiteLoopbackTests(TestCase):
    """A Site on txhttp (batching) under clients pipelining mixed responses."""

    timeout = 30

    @inlineCallbacks
    def test_mixed_pipelines_concurrently(self) -> Any:
        """
        Six clients pipeline later, static, ranged and big file responses:
        each gets every answer whole and in order, and every connection closes.
        """
        folder = self.mktemp()
        os.mkdir(folder)
        big = os.urandom(300_000)
        with open(os.path.join(folder, "big"), "wb") as f:
            f.write(big)
        with open(os.path.join(folder, "small"), "wb") as f:
            f.write(b"0123456789abcdef")
        root = Resource()
        root.putChild(b"later", _Later())
        root.putChild(b"files", File(folder))
        site = TrackingSite(root)
        use_txhttp(site)
        tcp = cast(IReactorTCP, reactor)
        port = tcp.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        number = cast(IPv4Address, port.getHost()).port
        data = (
            _get(b"/later/a")
            + _get(b"/files/small", b"Range: bytes=2-5\r\n")
            + _get(b"/files/big")
            + _get(b"/later/b")
            + _get(b"/files/small", b"Connection: close\r\n")
        )
        results = yield gatherResults(
            [
                deferToThread(raw_exchange, number, data, lambda got: False)
                for _ in range(6)
            ]
        )
        for received in results:
            responses = parse_responses(received)
            self.assertEqual([200, 206, 200, 200, 200], [r.status for r in responses])
            self.assertEqual(
                [b"/later/a" * 2, b"2345", big, b"/later/b" * 2, b"0123456789abcdef"],
                [r.body for r in responses],
            )
        yield wait_closed(site.channels)
        self.assertEqual([ChannelState.CLOSED] * 6, [c.state for c in site.channels])
