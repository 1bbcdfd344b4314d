# -*- test-case-name: txhttp.test.test_server_lazyproducer -*-
"""
Tests for when a write-through channel becomes its transport's producer.

Over a plain TCP transport with write-through, ``HTTPChannel`` registers as
the transport's streaming producer before its first write that can leave
bytes in the transport's buffer (``HTTPChannel._register``), not at
``connectionMade``: a response sent whole as the connection closes never
registers at all. The tests drive the channel over a real
`twisted.internet.tcp.Connection` on a socket pair (see
`txhttp.test.test_server_writethrough`), whose sends can be scripted to leave
bytes unsent, and check that flow control and the stopping of response
producers are what they were with the registration at connect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProducer
from twisted.internet.tcp import Connection as TCPConnection
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp.server import ChannelState, HTTPChannel
from txhttp.test._server_helpers import (
    Recorder,
    RecordingExchange,
    RecordingProducer,
    respond_at_once,
)
from txhttp.test.test_client_writethrough import _Sockets
from txhttp.test.test_server_writethrough import _get, _RecordingSends, _tcp_channel

_BIG = 300_000
"""A body several times a TCP transport's ``bufferSize`` (64 KiB)."""


class _Registering(_RecordingSends):
    """
    A recording TCP transport that counts ``registerProducer`` calls and
    notes, for each buffered write, whether a producer was registered.
    """

    registered: int = 0
    writes_with_producer: list[bool]

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """Count, then register as Twisted does."""
        self.registered += 1
        super().registerProducer(producer, streaming)

    def write(self, data: bytes) -> None:
        """Note whether the write can pause a producer, then record it."""
        self.writes_with_producer.append(self.producer is not None)
        super().write(data)


def _channel(
    case: SynchronousTestCase, recorder: Recorder, **settings: Any
) -> tuple[HTTPChannel, _Registering, _Sockets]:
    channel, transport, sockets = _tcp_channel(
        case, recorder, kind=_Registering, **settings
    )
    assert isinstance(transport, _Registering)
    transport.writes_with_producer = []
    return channel, transport, sockets


def _streaming(producer: RecordingProducer) -> Callable[[RecordingExchange], None]:
    """A start hook: register ``producer``, then write a big body, unfinished."""

    def start(exchange: RecordingExchange) -> None:
        exchange.slot.registerProducer(producer, True)
        exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"%d" % _BIG)])
        exchange.slot.write_body(b"x" * _BIG)

    return start


class LazyRegistrationTests(SynchronousTestCase):
    """The channel registers with a write-through transport at its first write."""

    def test_not_registered_at_connect(self) -> None:
        """Connecting registers nothing; the first response registers once."""
        channel, transport, _ = _channel(self, Recorder(respond_at_once))
        self.assertEqual(0, transport.registered)
        self.assertIsNone(transport.producer)
        channel.dataReceived(_get(b"/a"))
        self.assertEqual(1, transport.registered)
        self.assertIs(channel, transport.producer)
        channel.dataReceived(_get(b"/b"))
        self.assertEqual(1, transport.registered)

    def test_registered_at_connect_without_write_through(self) -> None:
        """With write-through off, the channel registers at ``connectionMade``."""
        channel, transport, _ = _channel(
            self, Recorder(respond_at_once), write_through=False
        )
        self.assertEqual(1, transport.registered)
        self.assertIs(channel, transport.producer)

    def test_closing_response_sent_whole_never_registers(self) -> None:
        """A response sent whole as the connection closes registers nothing."""
        channel, transport, sockets = _channel(self, Recorder(respond_at_once))
        channel.dataReceived(_get(b"/last", b"Connection: close\r\n"))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(0, transport.registered)
        self.assertIn(b"/last", sockets.received())

    def test_closing_response_cut_short_waits_for_transport(self) -> None:
        """A closing response the kernel takes in part is finished by the transport."""
        channel, transport, sockets = _channel(self, Recorder(respond_at_once))
        transport.script = [5]
        channel.dataReceived(_get(b"/last", b"Connection: close\r\n"))
        self.assertIs(ChannelState.CLOSING, channel.state)
        transport.doWrite()
        self.assertIn(b"/last", sockets.received())

    def test_write_through_rest_registers_first(self) -> None:
        """The rest of a send the kernel cut short is buffered with us registered."""
        channel, transport, sockets = _channel(self, Recorder(respond_at_once))
        transport.script = [3]
        channel.dataReceived(_get(b"/cut"))
        self.assertEqual([True], transport.writes_with_producer)
        self.assertIs(channel, transport.producer)
        transport.doWrite()
        self.assertIn(b"/cut", sockets.received())

    def test_backlog_registers_first(self) -> None:
        """A first write too big for one piece is buffered with us registered."""
        channel, transport, sockets = _channel(
            self, Recorder(respond_at_once), write_piece_bytes=16
        )
        channel.dataReceived(_get(b"/pieces"))
        self.assertEqual(1, transport.registered)
        self.assertTrue(transport.writes_with_producer)
        self.assertEqual(
            [True] * len(transport.writes_with_producer),
            transport.writes_with_producer,
        )
        transport.doWrite()
        self.assertIn(b"/pieces", sockets.received())

    def test_held_bytes_registered(self) -> None:
        """With batch_writes, bytes held to the turn's end register when written."""
        reactor = MemoryReactorClock()
        (first, _, _), (second, second_transport, second_sockets) = (
            _tcp_channel(
                self,
                Recorder(respond_at_once),
                kind=_Registering,
                reactor=reactor,
                batch_writes=True,
            )
            for _ in range(2)
        )
        assert isinstance(second_transport, _Registering)
        first.dataReceived(_get(b"/a"))
        second.dataReceived(_get(b"/b"))
        self.assertEqual(b"", second_sockets.received())
        self.assertIs(second, second_transport.producer)
        reactor.advance(0)
        self.assertIn(b"/b", second_sockets.received())


class LazyFlowControlTests(SynchronousTestCase):
    """A full or drained transport buffer still reaches the response's producer."""

    def test_full_buffer_pauses_response_producer(self) -> None:
        """Bytes the kernel does not take fill the buffer: the producer pauses."""
        producer = RecordingProducer()
        channel, transport, _ = _channel(self, Recorder(_streaming(producer)))
        transport.script = [0]
        channel.dataReceived(_get(b"/big"))
        self.assertEqual(["pause"], producer.calls)
        self.assertTrue(transport.producerPaused)

    def test_drained_buffer_resumes_response_producer(self) -> None:
        """Once the transport drains, the producer resumes."""
        producer = RecordingProducer()
        channel, transport, sockets = _channel(self, Recorder(_streaming(producer)))
        transport.script = [0]
        channel.dataReceived(_get(b"/big"))
        for _ in range(50):
            if producer.calls[-1:] == ["resume"]:
                break
            sockets.received()
            transport.doWrite()
        self.assertEqual(["pause", "resume"], producer.calls)

    def test_small_write_through_does_not_pause(self) -> None:
        """A response the kernel takes whole pauses nothing."""
        producer = RecordingProducer()

        def start(exchange: RecordingExchange) -> None:
            exchange.slot.registerProducer(producer, True)
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"2")])
            exchange.slot.write_body(b"ok")

        channel, transport, _ = _channel(self, Recorder(start))
        channel.dataReceived(_get(b"/small"))
        self.assertEqual([], producer.calls)
        self.assertEqual([], transport.writes)


class LazyStopTests(SynchronousTestCase):
    """Response producers are stopped once when the connection is lost."""

    def _lose(self, transport: TCPConnection) -> None:
        transport.connectionLost(Failure(ConnectionDone()))

    def test_lost_before_registering_stops_producer(self) -> None:
        """Lost before any write (never registered): the producer is stopped."""
        producer = RecordingProducer()

        def start(exchange: RecordingExchange) -> None:
            exchange.slot.registerProducer(producer, True)

        recorder = Recorder(start)
        channel, transport, _ = _channel(self, recorder)
        channel.dataReceived(_get(b"/wait"))
        self.assertEqual(0, transport.registered)
        self._lose(transport)
        self.assertEqual(["stop"], producer.calls)
        self.assertEqual(["start", "complete", "lost"], recorder.exchanges[0].events)

    def test_lost_after_registering_stops_producer_once(self) -> None:
        """Lost after the transport took the channel: one stop, from it."""
        producer = RecordingProducer()
        channel, transport, _ = _channel(self, Recorder(_streaming(producer)))
        transport.script = [0]
        channel.dataReceived(_get(b"/big"))
        self._lose(transport)
        self.assertEqual(["pause", "stop"], producer.calls)

    def test_lost_idle_connection(self) -> None:
        """An idle connection lost before any write ends cleanly."""
        channel, transport, _ = _channel(self, Recorder())
        self._lose(transport)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(0, transport.registered)

    def test_late_response_after_loss(self) -> None:
        """A producer is stopped once at the loss; a later response writes nothing."""
        producer = RecordingProducer()
        recorder = Recorder()
        channel, transport, _ = _channel(self, recorder)
        channel.dataReceived(_get(b"/late"))
        recorder.exchanges[0].slot.registerProducer(producer, True)
        self._lose(transport)
        self.assertEqual(["stop"], producer.calls)
        # A late write after the loss is a no-op; nothing is stopped twice.
        recorder.exchanges[0].respond(b"late")
        self.assertEqual(["stop"], producer.calls)
        self.assertEqual(([], []), (transport.sends, transport.writes))
        self.assertEqual(0, transport.registered)
