# -*- test-case-name: txhttp.test.test_server_timeouts -*-
"""
Tests for `HTTPChannel`'s timers: idle, header deadline, slow downloads
(twisted/twisted#9526 and #12498), lingering and abort; every DelayedCall is
cancelled on the way out.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txhttp.test._server_helpers import (
    Recorder,
    is_closing,
    make_channel,
    parse_responses,
    respond_at_once,
)

GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


class IdleTimeoutTests(SynchronousTestCase):
    """The idle timeout."""

    def test_closes_after_idle_timeout(self) -> None:
        """An idle connection is closed when the timeout passes, not before."""
        channel, transport, clock, _rec = make_channel(timeOut=30.0)
        clock.advance(29)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnecting)
        channel.connectionLost()
        self.assertEqual([], clock.getDelayedCalls())

    def test_idle_between_requests(self) -> None:
        """After a response, the connection idles out timeOut later."""
        channel, transport, clock, _rec = make_channel(
            Recorder(respond_at_once), timeOut=10.0
        )
        clock.advance(9)
        channel.dataReceived(GET)
        clock.advance(9)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_no_timeout_while_handler_works(self) -> None:
        """A slow handler (long poll) is not cut by the idle timeout."""
        channel, transport, clock, rec = make_channel(timeOut=10.0)
        channel.dataReceived(GET)
        clock.advance(100)
        self.assertFalse(is_closing(transport))
        rec.exchanges[0].respond()
        clock.advance(10)
        self.assertTrue(transport.disconnecting)

    def test_slow_handler_reuses_the_idle_timer(self) -> None:
        """A request answered later pushes the same idle timer, never a new one."""
        channel, transport, clock, rec = make_channel(timeOut=10.0)
        [timer] = clock.getDelayedCalls()
        channel.dataReceived(GET)
        clock.advance(5)
        rec.exchanges[0].respond()
        self.assertEqual(clock.getDelayedCalls(), [timer])
        self.assertEqual(timer.getTime(), 15.0)
        channel.dataReceived(GET)
        clock.advance(25)  # Restarted twice while this handler works.
        self.assertFalse(is_closing(transport))
        rec.exchanges[1].respond()
        clock.advance(9)
        self.assertFalse(is_closing(transport))
        clock.advance(1)
        self.assertTrue(transport.disconnecting)

    def test_stalled_body_times_out(self) -> None:
        """A client that stops sending its body is cut; its exchange is told."""
        channel, transport, clock, rec = make_channel(timeOut=10.0)
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab"
        )
        clock.advance(10)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(rec.exchanges[0].events[-1], "lost")

    def test_slow_download_still_moving(self) -> None:
        """A large response that keeps draining is never cut (#9526, #12498)."""
        channel, transport, clock, rec = make_channel(
            timeOut=10.0, write_piece_bytes=1000
        )
        channel.dataReceived(GET)
        channel.pauseProducing()
        rec.exchanges[0].respond(b"x" * 20000)
        for _ in range(30):
            clock.advance(9)
            channel.resumeProducing()
            channel.pauseProducing()
        self.assertFalse(is_closing(transport))
        channel.resumeProducing()
        self.assertEqual(parse_responses(transport.value())[0].body, b"x" * 20000)

    def test_stalled_download_aborted(self) -> None:
        """A client that stops reading a response is aborted after timeOut."""
        channel, transport, clock, rec = make_channel(timeOut=10.0)
        channel.dataReceived(GET)
        channel.pauseProducing()
        rec.exchanges[0].respond(b"x" * 10)
        clock.advance(10)
        self.assertTrue(transport.disconnected)
        channel.connectionLost()
        self.assertEqual([], clock.getDelayedCalls())


class HeaderTimeoutTests(SynchronousTestCase):
    """The header-read deadline."""

    def test_trickled_head_gets_408(self) -> None:
        """A head trickling in past header_timeout gets 408 and a close."""
        channel, transport, clock, rec = make_channel(timeOut=10.0, header_timeout=15.0)
        for byte in GET[:-2]:
            channel.dataReceived(bytes([byte]))
            clock.advance(1)
            if transport.value():
                break
        self.assertEqual(parse_responses(transport.value())[0].status, 408)
        self.assertTrue(is_closing(transport))
        self.assertEqual(rec.exchanges, [])

    def test_complete_head_cancels_deadline(self) -> None:
        """A head that completes in time cancels the deadline."""
        channel, transport, clock, _rec = make_channel(
            Recorder(respond_at_once), timeOut=None, header_timeout=5.0
        )
        channel.dataReceived(GET[:5])
        clock.advance(4)
        channel.dataReceived(GET[5:])
        clock.advance(10)
        self.assertFalse(is_closing(transport))
        self.assertEqual([], clock.getDelayedCalls())


class CloseTimeoutTests(SynchronousTestCase):
    """Closing never waits forever."""

    def test_abort_when_close_stuck(self) -> None:
        """A close that cannot flush is aborted after abort_timeout."""
        channel, transport, clock, _rec = make_channel(timeOut=10.0, abort_timeout=5.0)
        clock.advance(10)
        self.assertTrue(transport.disconnecting)
        self.assertFalse(transport.disconnected)
        clock.advance(5)
        self.assertTrue(transport.disconnected)
        channel.connectionLost()
        self.assertEqual([], clock.getDelayedCalls())

    def test_linger_cancelled_on_loss(self) -> None:
        """connectionLost during lingering cancels the linger timer."""
        channel, _transport, clock, _rec = make_channel(Recorder(respond_at_once))
        channel.dataReceived(GET[:-2] + b"Connection: close\r\n\r\n")
        channel.writeConnectionLost()
        self.assertTrue(clock.getDelayedCalls())
        channel.connectionLost()
        self.assertEqual([], clock.getDelayedCalls())
