# -*- test-case-name: txhttp.test.test_twisted_io -*-
"""
Tests for `txhttp._twisted_io.close_now` and `txhttp._twisted_io.TurnBatch`.

Each test drives a real `twisted.internet.tcp.Connection` over a connected
pair of sockets on 127.0.0.1 with a `MemoryReactorClock` (nothing runs on
its own), whose ``writeSomeData`` answers may be scripted
(``test_client_writethrough._ScriptedSends``).
"""

from __future__ import annotations

from twisted.internet.error import (
    ConnectionAborted,
    ConnectionClosed,
    ConnectionDone,
    ConnectionLost,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp._twisted_io import _CONNECTION_DONE, TurnBatch, close_now, turn_batch_for
from txhttp.test.test_client_writethrough import _ScriptedSends, _Sockets, _transport


class _Lost(Protocol):
    """Records the reasons ``connectionLost`` is called with."""

    def __init__(self) -> None:
        self.reasons: list[Failure] = []

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Record ``reason``."""
        self.reasons.append(reason)


class CloseNowTests(SynchronousTestCase):
    """`close_now` closes at once only when nothing is left to send."""

    def _scripted(
        self, script: list[int | Exception]
    ) -> tuple[_ScriptedSends, _Lost, _Sockets]:
        protocol = _Lost()
        transport, sockets, reactor = _transport(self, protocol, _ScriptedSends)
        assert isinstance(transport, _ScriptedSends)
        transport.script = script
        reactor.addReader(transport)
        return transport, protocol, sockets

    def test_all_taken_closes(self) -> None:
        """The kernel took it all: the peer reads it, then the end; lost now."""
        protocol = _Lost()
        transport, sockets, reactor = _transport(self, protocol)
        reactor.addReader(transport)
        self.assertTrue(close_now(transport, b"last bytes"))
        self.assertEqual(b"last bytes", sockets.received())
        self.assertEqual(b"", sockets.peer.recv(10))  # The end, not "no data".
        self.assertEqual(1, len(protocol.reasons))
        self.assertTrue(protocol.reasons[0].check(ConnectionDone))
        self.assertTrue(transport.disconnected)
        self.assertNotIn(transport, reactor.getReaders())
        self.assertNotIn(transport, reactor.getWriters())

    def test_nothing_to_send_closes(self) -> None:
        """No bytes: the connection closes at once all the same."""
        protocol = _Lost()
        transport, sockets, _reactor = _transport(self, protocol)
        self.assertTrue(close_now(transport, b""))
        self.assertEqual(1, len(protocol.reasons))
        self.assertEqual(b"", sockets.peer.recv(10))

    def test_producer_stopped(self) -> None:
        """A registered streaming producer is stopped, as the reactor's close does."""
        stopped: list[bool] = []

        class _Producer:
            def stopProducing(self) -> None:
                stopped.append(True)

            def pauseProducing(self) -> None:
                pass

            def resumeProducing(self) -> None:
                pass

        protocol = _Lost()
        transport, _sockets, _reactor = _transport(self, protocol)
        transport.registerProducer(_Producer(), True)
        self.assertTrue(close_now(transport, b"x"))
        self.assertEqual([True], stopped)

    def test_partial_send_buffers_rest(self) -> None:
        """What the kernel did not take is buffered; nothing is closed."""
        transport, protocol, sockets = self._scripted([4])
        self.assertFalse(close_now(transport, b"abcdefgh"))
        self.assertEqual([], protocol.reasons)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(b"abcd", sockets.received())
        transport.doWrite()
        self.assertEqual(b"efgh", sockets.received())

    def test_send_error_buffers_all(self) -> None:
        """An error result buffers all of it; the transport reports the error."""
        transport, protocol, _sockets = self._scripted([ConnectionLost()])
        self.assertFalse(close_now(transport, b"abcdefgh"))
        self.assertEqual([], protocol.reasons)
        self.assertEqual(8, transport._tempDataLen)

    def test_something_buffered(self) -> None:
        """Earlier bytes still buffered: the new ones queue behind them."""
        transport, protocol, sockets = self._scripted([])
        transport.write(b"first ")
        self.assertFalse(close_now(transport, b"second"))
        self.assertEqual([], protocol.reasons)
        self.assertEqual(b"", sockets.received())
        transport.doWrite()
        self.assertEqual(b"first second", sockets.received())

    def test_closing_transport_untouched(self) -> None:
        """A transport already closing is left to its own close."""
        transport, protocol, _sockets = self._scripted([])
        transport.loseConnection()
        self.assertFalse(close_now(transport, b""))
        self.assertEqual([], protocol.reasons)

    def test_aborted_transport_untouched(self) -> None:
        """An aborted transport is not closed a second way."""
        transport, protocol, _sockets = self._scripted([])
        transport.abortConnection()
        self.assertFalse(close_now(transport, b""))
        self.assertEqual([], protocol.reasons)


class TurnBatchTests(SynchronousTestCase):
    """`TurnBatch` and `turn_batch_for`: one call per reactor turn."""

    def test_begin_opens_the_turn_once(self) -> None:
        """The first ``begin`` of a turn schedules the one call; later ones do not."""
        clock = Clock()
        batch = TurnBatch()
        self.assertTrue(batch.begin(clock))
        self.assertFalse(batch.begin(clock))
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertEqual([], clock.getDelayedCalls())
        self.assertTrue(batch.begin(clock))

    def test_added_releases_run_in_order_at_turn_end(self) -> None:
        """Releases added in a turn run at its end, in the order added."""
        clock = Clock()
        batch = TurnBatch()
        ran: list[int] = []
        self.assertTrue(batch.begin(clock))
        batch.add(lambda: ran.append(1), clock)
        batch.add(lambda: ran.append(2), clock)
        self.assertEqual([], ran)
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertEqual([1, 2], ran)

    def test_call_cancelled_from_outside(self) -> None:
        """
        A turn call cancelled by someone else is replaced: releases added
        before and after it run at the next turn's end.
        """
        clock = Clock()
        batch = TurnBatch()
        ran: list[int] = []
        self.assertTrue(batch.begin(clock))
        batch.add(lambda: ran.append(1), clock)
        for call in clock.getDelayedCalls():
            call.cancel()
        self.assertTrue(batch.begin(clock))
        batch.add(lambda: ran.append(2), clock)
        self.assertEqual(1, len(clock.getDelayedCalls()))
        clock.advance(0)
        self.assertEqual([1, 2], ran)
        batch.add(lambda: ran.append(3), clock)
        for call in clock.getDelayedCalls():
            call.cancel()
        batch.add(lambda: ran.append(4), clock)
        clock.advance(0)
        self.assertEqual([1, 2, 3, 4], ran)

    def test_failing_release_logged_others_run(self) -> None:
        """A release that raises is logged; the others still run."""
        clock = Clock()
        batch = TurnBatch()
        ran: list[int] = []

        def fail() -> None:
            raise ValueError("boom")

        batch.add(fail, clock)
        batch.add(lambda: ran.append(2), clock)
        clock.advance(0)
        self.assertEqual([2], ran)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))

    def test_one_batch_per_clock(self) -> None:
        """Everything on one clock shares its batch; another clock has another."""
        clock, other = Clock(), Clock()
        self.assertIs(turn_batch_for(clock), turn_batch_for(clock))
        self.assertIsNot(turn_batch_for(clock), turn_batch_for(other))

    def test_clock_without_weak_reference(self) -> None:
        """A clock that cannot be weakly referenced gets a batch all the same."""
        self.assertIsInstance(turn_batch_for(1), TurnBatch)


class CloseReasonTests(SynchronousTestCase):
    """The failure `close_now` gives answers ``check`` as a plain one does."""

    def test_check_same_as_failure(self) -> None:
        """For classes and dotted names, the answers match ``Failure.check``'s."""
        plain = Failure(ConnectionDone())
        reason = _CONNECTION_DONE
        self.assertIsInstance(reason, Failure)
        self.assertIsInstance(reason.value, ConnectionDone)
        cases: list[tuple[type[BaseException] | str, ...]] = [
            (ConnectionDone,),
            (ConnectionAborted,),
            (ConnectionLost,),
            (ConnectionClosed,),
            (Exception,),
            (KeyboardInterrupt,),
            (ConnectionAborted, ConnectionClosed),
            ("twisted.internet.error.ConnectionDone",),
            ("twisted.internet.error.ConnectionLost",),
            (),
        ]
        for kinds in cases:
            self.assertEqual(plain.check(*kinds), reason.check(*kinds), kinds)

    def test_close_now_reason(self) -> None:
        """``close_now`` tells the protocol of a clean close."""
        protocol = _Lost()
        transport, _sockets, _reactor = _transport(self, protocol)
        self.assertTrue(close_now(transport, b""))
        self.assertIs(ConnectionDone, protocol.reasons[0].check(ConnectionDone))
        self.assertIsNone(protocol.reasons[0].check(ConnectionAborted))
