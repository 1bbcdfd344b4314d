# -*- test-case-name: txhttp.test.test_server_writethrough -*-
"""
Tests for the server channel's cork and write-through (``HTTPChannel._out``).

The unit tests drive the channel over a real `twisted.internet.tcp.Connection`
on a connected pair of sockets on 127.0.0.1 with a `MemoryReactorClock`
(nothing runs on its own: the test calls ``doWrite``), recording what went
straight to the socket (``writeSomeData``) and what went through the
transport's buffer (``write``); or over a `StringTransport` recording the
order of writes and closes. The loopback test runs a native handler on the
global reactor.
"""

from __future__ import annotations

import socket
from typing import Any, cast

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from txhttp._wire import RequestHead
from txhttp.server import ChannelState, HTTPChannel, HTTPServerFactory, use_txhttp
from txhttp.server import Request as NativeRequest
from txhttp.server import Response as NativeResponse
from txhttp.server._exchange import ResponseSlot
from txhttp.server._native import Handler
from txhttp.test._server_helpers import (
    HalfCloseTransport,
    Recorder,
    RecordingExchange,
    make_channel,
    parse_responses,
    respond_at_once,
)
from txhttp.test.test_client_writethrough import _ScriptedSends, _Sockets
from txhttp.test.test_server_loopback import raw_exchange


def _get(target: bytes, extra: bytes = b"") -> bytes:
    """A bodiless GET for ``target``."""
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n"


class _RecordingSends(_ScriptedSends):
    """A TCP transport recording socket sends and buffered writes."""

    sends: list[bytes]
    writes: list[bytes]

    def writeSomeData(self, data: bytes) -> int | ConnectionLost:
        """Record the bytes offered to the socket."""
        self.sends.append(bytes(data))
        return super().writeSomeData(data)

    def write(self, data: bytes) -> None:
        """Record a write into the transport's buffer."""
        self.writes.append(data)
        super().write(data)


class _PeeredSends(_RecordingSends):
    """A `_RecordingSends` with a peer address (the timeout logs it)."""

    def getPeer(self) -> IPv4Address:
        """A fixed client address."""
        return IPv4Address("TCP", "127.0.0.1", 12345)


class _Ordered(HalfCloseTransport):
    """A half-closeable `StringTransport` recording writes and closes in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, data: bytes) -> None:
        """Record a write."""
        self.calls.append("write")
        super().write(data)

    def loseConnection(self) -> None:
        """Record a close."""
        self.calls.append("loseConnection")
        super().loseConnection()

    def loseWriteConnection(self) -> None:
        """Record a half-close."""
        self.calls.append("loseWriteConnection")
        super().loseWriteConnection()

    def abortConnection(self) -> None:
        """Record an abort."""
        self.calls.append("abortConnection")
        super().abortConnection()


def _tcp_channel(
    case: SynchronousTestCase,
    recorder: Recorder,
    *,
    clock: Clock | None = None,
    kind: type[_RecordingSends] = _RecordingSends,
    reactor: MemoryReactorClock | None = None,
    **settings: object,
) -> tuple[HTTPChannel, _RecordingSends, _Sockets]:
    """
    A channel connected to a recording TCP transport on a socket pair (on
    ``reactor``, a new `MemoryReactorClock` by default).
    """
    sockets = _Sockets(case)
    channel = HTTPChannel(clock=clock if clock is not None else Clock())
    channel.exchangeFactory = recorder
    for name, value in settings.items():
        setattr(channel, name, value)
    transport = kind(
        sockets.ours, channel, reactor if reactor is not None else MemoryReactorClock()
    )
    transport.sends = []
    transport.writes = []
    transport.connected = 1
    channel.makeConnection(transport)
    return channel, transport, sockets


def _bodies(data: bytes) -> list[bytes]:
    """The bodies of the responses in ``data``, in order."""
    return [response.body for response in parse_responses(data)]


class _FailingSent(RecordingExchange):
    """Answers at once, then fails when told its response was sent."""

    def response_sent(self) -> None:
        """Record, then fail."""
        super().response_sent()
        raise ValueError("boom")


def _failing_when_sent(
    channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
) -> RecordingExchange:
    """An exchange factory making `_FailingSent` exchanges."""
    return _FailingSent(head, slot, respond_at_once)


def _abort_second(exchange: RecordingExchange) -> None:
    """A start hook answering ``/1`` and abandoning any other request."""
    if exchange.head.target == b"/1":
        exchange.respond(b"/1")
    else:
        exchange.slot.abort()


class CorkTests(SynchronousTestCase):
    """What one receive's responses write leaves in one send, in order."""

    def test_response_sent_when_receive_ends(self) -> None:
        """A keep-alive response goes to the socket before dataReceived returns."""
        channel, transport, sockets = _tcp_channel(self, Recorder(respond_at_once))
        channel.dataReceived(_get(b"/a"))
        self.assertEqual([], transport.writes)
        self.assertEqual(1, len(transport.sends))
        self.assertEqual([b"/a"], _bodies(sockets.received()))
        self.assertIs(ChannelState.OPEN, channel.state)

    def test_pipelined_responses_one_send(self) -> None:
        """Sixteen pipelined requests in one receive get one send, in order."""
        channel, transport, sockets = _tcp_channel(self, Recorder(respond_at_once))
        targets = [b"/%d" % n for n in range(16)]
        channel.dataReceived(b"".join(_get(target) for target in targets))
        self.assertEqual(1, len(transport.sends))
        self.assertEqual([], transport.writes)
        self.assertEqual(targets, _bodies(sockets.received()))

    def test_later_response_written_through(self) -> None:
        """A response finished outside a receive goes to the socket at once."""
        recorder = Recorder()
        channel, transport, sockets = _tcp_channel(self, recorder)
        channel.dataReceived(_get(b"/later"))
        self.assertEqual([], transport.sends)
        recorder.exchanges[0].respond(b"/later")
        self.assertEqual(1, len(transport.sends))
        self.assertEqual([], transport.writes)
        self.assertEqual([b"/later"], _bodies(sockets.received()))

    def test_write_through_off(self) -> None:
        """With ``write_through`` off, a response waits in the transport's buffer."""
        channel, transport, sockets = _tcp_channel(
            self, Recorder(respond_at_once), write_through=False
        )
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        self.assertEqual([], transport.sends)
        self.assertEqual(1, len(transport.writes))
        transport.doWrite()
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))

    def test_site_channel_batches(self) -> None:
        """A twisted.web Site's channel writes through in batches per turn."""
        site = use_txhttp(Site(Resource(), reactor=Clock()))
        channel = site.buildProtocol(None)
        self.assertIsInstance(channel, HTTPChannel)
        self.assertTrue(cast(HTTPChannel, channel).write_through)
        self.assertTrue(cast(HTTPChannel, channel).batch_writes)
        self.assertTrue(HTTPChannel.write_through)
        self.assertFalse(HTTPChannel.batch_writes)

    def test_cork_bounded(self) -> None:
        """Past ``write_piece_bytes`` the cork is sent during the receive."""
        channel, transport, sockets = _tcp_channel(
            self, Recorder(respond_at_once), write_piece_bytes=200
        )
        targets = [b"/%d" % n for n in range(6)]
        channel.dataReceived(b"".join(_get(target) for target in targets))
        self.assertGreater(len(transport.sends), 1)
        for sent in transport.sends[:-1]:
            self.assertGreater(len(sent), 200)
        self.assertEqual(targets, _bodies(sockets.received()))

    def test_unsent_rest_stays_in_order(self) -> None:
        """What the kernel did not take is buffered, and later writes queue behind."""
        recorder = Recorder()
        channel, transport, sockets = _tcp_channel(self, recorder)
        transport.script = [10]
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        first, second = recorder.exchanges
        first.respond(b"/1")
        self.assertEqual(1, len(transport.writes))
        second.respond(b"/2")
        self.assertEqual(2, len(transport.writes))
        transport.doWrite()
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))

    def test_big_response_after_corked_one(self) -> None:
        """A response too big for one write goes out after the corked one."""
        big = b"x" * 300

        def respond(exchange: RecordingExchange) -> None:
            target = exchange.head.target
            exchange.respond(big if target == b"/big" else target)

        channel, transport, _c, _r = make_channel(
            Recorder(respond), write_piece_bytes=200
        )
        channel.dataReceived(_get(b"/small") + _get(b"/big"))
        self.assertEqual([b"/small", big], _bodies(transport.value()))

    def test_backlog_starts_after_cork(self) -> None:
        """Once output must wait, what the cork held is at the transport first."""
        seen: list[bytes] = []
        channel: HTTPChannel | None = None

        def respond(exchange: RecordingExchange) -> None:
            assert channel is not None
            if exchange.head.target == b"/2":
                channel.pauseProducing()  # The transport's buffer is full.
                exchange.respond(b"/2")
                seen.append(transport.value())
            else:
                exchange.respond(b"/1")

        channel, transport, _c, _r = make_channel(Recorder(respond))
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        self.assertEqual([b"/1"], _bodies(seen[0]))
        channel.resumeProducing()
        self.assertEqual([b"/1", b"/2"], _bodies(transport.value()))

    def test_nested_receive_keeps_outer_cork(self) -> None:
        """A receive inside a receive leaves the outer one's cork to it."""
        channel: HTTPChannel | None = None

        def respond(exchange: RecordingExchange) -> None:
            assert channel is not None
            exchange.respond(exchange.head.target)
            if exchange.head.target == b"/1":
                channel.dataReceived(_get(b"/2"))

        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(respond), transport=transport)
        channel.dataReceived(_get(b"/1"))
        self.assertEqual(["write"], transport.calls)
        self.assertEqual([b"/1", b"/2"], _bodies(transport.value()))


class CorkClosingTests(SynchronousTestCase):
    """Closes, aborts and losses handle what the cork holds."""

    def test_close_sends_cork_first(self) -> None:
        """A close after an abandoned response writes the corked ones first."""
        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(_abort_second), transport=transport)
        channel.dataReceived(_get(b"/1") + _get(b"/2", b"Connection: close\r\n"))
        self.assertEqual(["write", "loseConnection"], transport.calls)
        self.assertEqual([b"/1"], _bodies(transport.value()))

    def test_close_in_receive_closes_at_once(self) -> None:
        """
        Over TCP a closing response answered in its receive is sent, then the
        socket is closed before ``dataReceived`` returns, with no timer left.
        """
        recorder = Recorder(respond_at_once)
        channel, transport, sockets = _tcp_channel(self, recorder)
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual(1, len(transport.sends))
        self.assertEqual([], transport.writes)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertTrue(transport.disconnected)
        self.assertFalse(transport.disconnecting)  # No loseConnection.
        self.assertEqual([b"/a"], _bodies(sockets.received()))
        self.assertEqual(b"", sockets.peer.recv(10))  # The end, not "no data".
        # (Answered before its end was told: see ChannelSlot._release.)
        self.assertEqual(["start", "sent", "complete"], recorder.exchanges[0].events)
        self.assertEqual([], cast(Clock, channel.clock).getDelayedCalls())

    def test_close_rest_unsent_waits(self) -> None:
        """
        When the kernel does not take all of a closing response, the rest is
        buffered and the transport closes once it is written, within the
        abort timer.
        """
        channel, transport, sockets = _tcp_channel(self, Recorder(respond_at_once))
        transport.script = [10]
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual(1, len(transport.writes))
        self.assertTrue(transport.disconnecting)
        self.assertIs(ChannelState.CLOSING, channel.state)
        calls = cast(Clock, channel.clock).getDelayedCalls()
        self.assertEqual([channel.abort_timeout], [call.getTime() for call in calls])
        transport.doWrite()
        self.assertEqual([b"/a"], _bodies(sockets.received()))

    def test_close_send_error_waits(self) -> None:
        """A send error on a closing response leaves it to the transport's turn."""
        channel, transport, _sockets = _tcp_channel(self, Recorder(respond_at_once))
        transport.script = [ConnectionLost()]
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual(1, len(transport.writes))
        self.assertTrue(transport.disconnecting)
        self.assertIs(ChannelState.CLOSING, channel.state)

    def test_close_after_keep_alive_responses_one_send(self) -> None:
        """Keep-alive responses and the closing one after them: one send, closed."""
        channel, transport, sockets = _tcp_channel(self, Recorder(respond_at_once))
        channel.dataReceived(
            _get(b"/1") + _get(b"/2") + _get(b"/3", b"Connection: close\r\n")
        )
        self.assertEqual(1, len(transport.sends))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"/1", b"/2", b"/3"], _bodies(sockets.received()))

    def test_close_http10_closes_at_once(self) -> None:
        """An HTTP/1.0 request without keep-alive is answered and closed at once."""
        channel, transport, sockets = _tcp_channel(self, Recorder(respond_at_once))
        channel.dataReceived(b"GET /old HTTP/1.0\r\n\r\n")
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(1, len(transport.sends))
        received = sockets.received()
        self.assertTrue(received.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(received.endswith(b"/old"))

    def test_close_with_write_through_off_waits(self) -> None:
        """With ``write_through`` off, a closing response waits for the close's turn."""
        channel, transport, sockets = _tcp_channel(
            self, Recorder(respond_at_once), write_through=False
        )
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual([], transport.sends)
        self.assertTrue(transport.disconnecting)
        transport.doWrite()
        self.assertEqual([b"/a"], _bodies(sockets.received()))

    def test_close_then_exchange_fails_aborts_only(self) -> None:
        """
        An exchange failing after the close was decided in the receive aborts
        the connection: nothing is sent and it is not closed a second way.
        """

        def respond_then_fail(exchange: RecordingExchange) -> None:
            exchange.respond(b"/a")
            raise ValueError("boom")

        channel, transport, sockets = _tcp_channel(self, Recorder(respond_then_fail))
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual([], transport.sends)
        self.assertTrue(transport._aborting)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(b"", sockets.received())
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_close_then_timed_out_aborts_only(self) -> None:
        """
        The idle timer firing inside the receive, after the close was decided,
        aborts the connection; the end of the receive leaves it at that.
        """

        def respond_then_wait(exchange: RecordingExchange) -> None:
            exchange.respond(b"/a")
            clock.advance(3600)

        clock = Clock()
        channel, transport, _sockets = _tcp_channel(
            self, Recorder(respond_then_wait), clock=clock, kind=_PeeredSends
        )
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertTrue(transport._aborting)
        self.assertFalse(transport.disconnecting)
        self.assertEqual([], transport.sends)

    def test_later_closing_response_buffered(self) -> None:
        """A closing response finished outside a receive is buffered too."""
        recorder = Recorder()
        channel, transport, sockets = _tcp_channel(self, recorder)
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        recorder.exchanges[0].respond(b"/a")
        self.assertEqual([], transport.sends)
        self.assertTrue(transport.disconnecting)
        transport.doWrite()
        self.assertEqual([b"/a"], _bodies(sockets.received()))

    def test_closing_response_in_pieces_corked(self) -> None:
        """
        A closing response written in pieces in its receive is gathered and
        written once, before the close.
        """

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"part one, ")
            exchange.slot.write_body(b"part two")
            exchange.slot.finish()

        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(stream), transport=transport)
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual(["write", "loseConnection"], transport.calls)
        self.assertEqual([b"part one, part two"], _bodies(transport.value()))

    def test_closing_response_in_pieces_one_send_over_tcp(self) -> None:
        """Over TCP the pieces of a closing response leave in one send, then close."""

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"part one, ")
            exchange.slot.write_body(b"part two")
            exchange.slot.finish()

        channel, transport, sockets = _tcp_channel(self, Recorder(stream))
        channel.dataReceived(_get(b"/a", b"Connection: close\r\n"))
        self.assertEqual(1, len(transport.sends))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"part one, part two"], _bodies(sockets.received()))

    def test_closing_response_after_corked_one(self) -> None:
        """A closing response goes out after the keep-alive ones corked before it."""
        transport = _Ordered()
        channel, _t, _c, _r = make_channel(
            Recorder(respond_at_once), transport=transport
        )
        channel.dataReceived(_get(b"/1") + _get(b"/2", b"Connection: close\r\n"))
        self.assertEqual([b"/1", b"/2"], _bodies(transport.value()))
        self.assertEqual("loseConnection", transport.calls[-1])

    def test_lingering_close_sends_cork_first(self) -> None:
        """The corked responses are written before the write side is closed."""
        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(_abort_second), transport=transport)
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        self.assertEqual(["write", "loseWriteConnection"], transport.calls)
        self.assertEqual([b"/1"], _bodies(transport.value()))

    def test_error_response_before_half_close(self) -> None:
        """An error's response is written before the write side is closed."""
        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(), transport=transport)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        self.assertEqual(["write", "loseWriteConnection"], transport.calls)
        self.assertEqual([400], [r.status for r in parse_responses(transport.value())])

    def test_abort_buffers_cork_first(self) -> None:
        """An exchange failure hands the cork to the transport's buffer, then aborts."""

        transport = _Ordered()
        channel, _t, _c, _r = make_channel(transport=transport)
        channel.exchangeFactory = _failing_when_sent
        channel.dataReceived(_get(b"/a"))
        # (StringTransport's abortConnection calls loseConnection.)
        self.assertEqual(["write", "abortConnection"], transport.calls[:2])
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_abort_over_tcp_sends_nothing(self) -> None:
        """Over TCP an aborted receive's cork never reaches the socket."""

        channel, transport, sockets = _tcp_channel(self, Recorder())
        channel.exchangeFactory = _failing_when_sent
        channel.dataReceived(_get(b"/a"))
        self.assertEqual([], transport.sends)
        self.assertEqual(b"", sockets.received())
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_lost_during_receive_drops_cork(self) -> None:
        """A connection lost while a receive is handled writes nothing after."""
        channel: HTTPChannel | None = None

        def respond(exchange: RecordingExchange) -> None:
            assert channel is not None
            exchange.respond(b"/a")
            channel.connectionLost(Failure(ConnectionDone()))

        transport = _Ordered()
        channel, _t, _c, _r = make_channel(Recorder(respond), transport=transport)
        channel.dataReceived(_get(b"/a"))
        self.assertEqual([], transport.calls)
        self.assertIs(ChannelState.CLOSED, channel.state)


class BatchWritesTests(SynchronousTestCase):
    """``batch_writes``: the first write of a reactor turn goes, later ones wait."""

    def _pair(
        self,
        recorder: Recorder | None = None,
        write_piece_bytes: int = HTTPChannel.write_piece_bytes,
    ) -> tuple[
        MemoryReactorClock,
        tuple[HTTPChannel, _RecordingSends, _Sockets],
        tuple[HTTPChannel, _RecordingSends, _Sockets],
    ]:
        """Two batching channels whose transports share one reactor."""
        reactor = MemoryReactorClock()
        first, second = (
            _tcp_channel(
                self,
                recorder or Recorder(respond_at_once),
                reactor=reactor,
                kind=_PeeredSends,
                batch_writes=True,
                write_piece_bytes=write_piece_bytes,
            )
            for _ in range(2)
        )
        return reactor, first, second

    def _holding(
        self, recorder: Recorder
    ) -> tuple[MemoryReactorClock, HTTPChannel, _RecordingSends, _Sockets]:
        """
        A pair whose first channel answered ``/a`` first in the turn, and
        whose second (returned, with its reactor) holds its ``/1`` answer.
        """
        reactor, (a, _at, _as), (b, b_transport, b_sockets) = self._pair(recorder)
        a.dataReceived(_get(b"/a"))
        recorder.exchanges[0].respond(b"/a")
        b.dataReceived(_get(b"/1"))
        recorder.exchanges[1].respond(b"/1")
        self.assertEqual([], b_transport.sends)
        return reactor, b, b_transport, b_sockets

    def test_later_connection_held_to_turn_end(self) -> None:
        """The turn's first response goes now; another connection's waits."""
        reactor, (a, a_transport, a_sockets), (b, b_transport, b_sockets) = self._pair()
        a.dataReceived(_get(b"/a"))
        b.dataReceived(_get(b"/b"))
        self.assertEqual([b"/a"], _bodies(a_sockets.received()))
        self.assertEqual([], b_transport.sends)
        self.assertEqual(1, len(reactor.getDelayedCalls()))
        reactor.advance(0)
        self.assertEqual([b"/b"], _bodies(b_sockets.received()))
        self.assertEqual(([], []), (a_transport.writes, b_transport.writes))
        self.assertEqual([], reactor.getDelayedCalls())

    def test_off_by_default(self) -> None:
        """Without ``batch_writes`` every response goes at once."""
        reactor = MemoryReactorClock()
        _a, _at, a_sockets = _tcp_channel(
            self, Recorder(respond_at_once), reactor=reactor
        )
        b, _bt, b_sockets = _tcp_channel(
            self, Recorder(respond_at_once), reactor=reactor
        )
        _a.dataReceived(_get(b"/a"))
        b.dataReceived(_get(b"/b"))
        self.assertEqual([b"/a"], _bodies(a_sockets.received()))
        self.assertEqual([b"/b"], _bodies(b_sockets.received()))
        self.assertEqual([], reactor.getDelayedCalls())

    def test_held_bytes_keep_their_order(self) -> None:
        """Later writes of a holding connection join what it holds, in order."""
        recorder = Recorder()
        reactor, (a, _at, _as), (b, b_transport, b_sockets) = self._pair(recorder)
        a.dataReceived(_get(b"/a"))
        recorder.exchanges[0].respond(b"/a")
        b.dataReceived(_get(b"/1") + _get(b"/2"))
        recorder.exchanges[1].respond(b"/1")
        recorder.exchanges[2].respond(b"/2")
        self.assertEqual([], b_transport.sends)
        reactor.advance(0)
        self.assertEqual(1, len(b_transport.sends))
        self.assertEqual([b"/1", b"/2"], _bodies(b_sockets.received()))

    def test_held_bytes_bounded(self) -> None:
        """Past ``write_piece_bytes`` what is held goes at once."""
        recorder = Recorder()
        reactor, (a, _at, _as), (b, b_transport, b_sockets) = self._pair(
            recorder, write_piece_bytes=150
        )
        a.dataReceived(_get(b"/a"))
        recorder.exchanges[0].respond(b"/a")
        b.dataReceived(_get(b"/1") + _get(b"/2"))
        recorder.exchanges[1].respond(b"x" * 40)
        self.assertEqual([], b_transport.sends)
        recorder.exchanges[2].respond(b"y" * 40)
        self.assertEqual(1, len(b_transport.sends))
        self.assertEqual([b"x" * 40, b"y" * 40], _bodies(b_sockets.received()))
        reactor.advance(0)
        self.assertEqual(1, len(b_transport.sends))

    def test_held_bytes_go_before_a_closing_response(self) -> None:
        """
        A closing response goes after what was held, both on the transport's
        turn (batching channels do not close at the receive's end).
        """
        recorder = Recorder()
        reactor, b, b_transport, b_sockets = self._holding(recorder)
        recorder.on_start = respond_at_once
        b.dataReceived(_get(b"/2", b"Connection: close\r\n"))
        self.assertEqual([], b_transport.sends)
        self.assertTrue(b_transport.disconnecting)
        self.assertIs(ChannelState.CLOSING, b.state)
        reactor.advance(0)  # The turn's end finds nothing held.
        self.assertEqual([], b_transport.sends)
        b_transport.doWrite()
        self.assertEqual([b"/1", b"/2"], _bodies(b_sockets.received()))

    def test_held_bytes_go_before_a_later_close(self) -> None:
        """A close outside a receive writes what was held before closing."""
        recorder = Recorder()
        _reactor, (a, _at, _as), (b, b_transport, b_sockets) = self._pair(recorder)
        a.dataReceived(_get(b"/a"))
        recorder.exchanges[0].respond(b"/a")
        b.dataReceived(_get(b"/1") + _get(b"/2", b"Connection: close\r\n"))
        recorder.exchanges[1].respond(b"/1")
        recorder.exchanges[2].respond(b"/2")
        self.assertTrue(b_transport.disconnecting)
        self.assertEqual([], b_transport.sends)
        b_transport.doWrite()
        self.assertEqual([b"/1", b"/2"], _bodies(b_sockets.received()))

    def test_held_bytes_go_before_a_half_close(self) -> None:
        """An error's lingering close writes what was held, then the error."""
        recorder = Recorder()
        _reactor, b, b_transport, b_sockets = self._holding(recorder)
        b.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        self.assertIs(ChannelState.LINGERING, b.state)
        b_transport.doWrite()
        received = b_sockets.received()
        self.assertEqual([200, 400], [r.status for r in parse_responses(received)])

    def test_held_bytes_dropped_when_lost(self) -> None:
        """A connection lost while holding bytes sends nothing at the turn's end."""
        recorder = Recorder()
        reactor, b, b_transport, _bs = self._holding(recorder)
        b.connectionLost(Failure(ConnectionDone()))
        reactor.advance(0)
        self.assertEqual(([], []), (b_transport.sends, b_transport.writes))

    def test_held_bytes_before_abort_buffered(self) -> None:
        """An exchange failure hands what was held to the transport, then aborts."""
        recorder = Recorder()
        _reactor, b, b_transport, _bs = self._holding(recorder)
        b.exchangeFactory = _failing_when_sent
        b.dataReceived(_get(b"/2"))
        self.assertTrue(b_transport._aborting)
        self.assertEqual([], b_transport.sends)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))


def _native(request: NativeRequest, response: NativeResponse) -> Deferred[None] | None:
    """Answer with the target as the body; ``/later...`` on the next turn."""
    target = request.target
    if not target.startswith(b"/later"):
        response.finish(target)
        return None
    done: Deferred[None] = task.deferLater(
        cast(IReactorTime, reactor), 0, response.finish, target
    )
    return done


def serve_tracked(
    case: TestCase,
    handler: Handler,
) -> tuple[HTTPServerFactory, list[HTTPChannel], int]:
    """
    Serve ``handler`` on 127.0.0.1 with the global reactor until ``case``
    ends; return the factory, the list its channels are appended to, and
    the port.
    """
    factory = HTTPServerFactory(handler, clock=cast(IReactorTime, reactor))
    channels: list[HTTPChannel] = []
    build = factory.buildProtocol

    def tracking(addr: Any) -> Any:
        channel = build(addr)
        channels.append(channel)
        return channel

    factory.buildProtocol = tracking  # type: ignore[method-assign]  # tracks channels
    port = cast(IReactorTCP, reactor).listenTCP(0, factory, interface="127.0.0.1")
    case.addCleanup(port.stopListening)
    return factory, channels, cast(IPv4Address, port.getHost()).port


@inlineCallbacks
def wait_closed(channels: list[HTTPChannel]) -> Any:
    """Wait (2 s at most) until every channel in ``channels`` is closed."""
    for _ in range(200):
        if all(c.state is ChannelState.CLOSED for c in channels):
            return
        yield task.deferLater(reactor, 0.01, lambda: None)  # loopback


class WriteThroughLoopbackTests(TestCase):
    """The native server over a real socket on 127.0.0.1."""

    timeout = 30

    @inlineCallbacks
    def test_pipelined_order_over_socket(self) -> Any:
        """Pipelined requests, some answered later, come back whole and in order."""
        _factory, channels, number = serve_tracked(self, _native)
        targets = [b"/later%d" % n if n % 5 == 2 else b"/%d" % n for n in range(16)]
        data = b"".join(_get(target) for target in targets)
        data += _get(b"/last", b"Connection: close\r\n")
        received = yield deferToThread(raw_exchange, number, data, lambda got: False)
        self.assertEqual([*targets, b"/last"], _bodies(received))
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED], [c.state for c in channels])

    @inlineCallbacks
    def test_closing_connections_over_socket(self) -> Any:
        """
        Connections closed in the receive of their one request deliver the
        whole response, then the end, and every channel ends closed.
        """
        _factory, channels, number = serve_tracked(self, _native)
        requests = [
            _get(b"/close%d" % n, b"Connection: close\r\n") for n in range(10)
        ] + [b"GET /old%d HTTP/1.0\r\n\r\n" % n for n in range(10)]
        for request in requests:
            # Read until the server closes: the response must be whole then.
            received = yield deferToThread(
                raw_exchange, number, request, lambda got: False
            )
            target = request.split(b" ")[1]
            self.assertEqual([target], _bodies(received))
        yield wait_closed(channels)
        self.assertEqual(
            [ChannelState.CLOSED] * len(requests), [c.state for c in channels]
        )


class _Echo(Resource):
    """A Site resource answering with the request's path."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        """The path, as the body."""
        return cast(bytes, request.path)


def _keep_alive_client(port: int, name: bytes, count: int) -> list[bytes]:
    """On one connection, ``count`` sequential GETs; the bodies, in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        bodies: list[bytes] = []
        buffered = b""
        for n in range(count):
            sock.sendall(_get(b"/%s/%d" % (name, n)))
            while len(buffered) < _response_size(buffered):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffered += chunk
            size = _response_size(buffered)
            bodies.append(parse_responses(buffered[:size])[0].body)
            buffered = buffered[size:]
        return bodies


def _response_size(data: bytes) -> int:
    """The length of the first whole response in ``data`` (Content-Length)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return len(data) + 1
    length = 0
    for line in data[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head_end + 4 + length


class BatchWritesLoopbackTests(TestCase):
    """A Site on txhttp (batching) with many keep-alive clients at once."""

    timeout = 30

    @inlineCallbacks
    def test_concurrent_keep_alive_clients(self) -> Any:
        """Eight clients, twenty requests each at once: every answer whole, in order."""
        site = use_txhttp(Site(_Echo()))
        # Site is typed as a factory of twisted.web's channel; it builds ours.
        port = cast(IReactorTCP, reactor).listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        number = cast(IPv4Address, port.getHost()).port
        names = [b"c%d" % n for n in range(8)]
        results = yield gatherResults(
            [deferToThread(_keep_alive_client, number, name, 20) for name in names]
        )
        for name, bodies in zip(names, results, strict=True):
            self.assertEqual([b"/%s/%d" % (name, n) for n in range(20)], bodies)
