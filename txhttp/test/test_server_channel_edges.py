# -*- test-case-name: txhttp.test.test_server_channel_edges -*-
"""
Edge cases of `txhttp.server.HTTPChannel` that the main channel tests do not
reach: failing exchanges, CONNECT, transports without half-close, producer
and transport flow-control corners, and calls after the connection is gone.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost, TimeoutError
from twisted.internet.interfaces import IPullProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from txhttp._wire import Fields, LocalProtocolError, RequestHead
from txhttp.server import HTTPChannel, RequestDropped
from txhttp.server._exchange import ResponseSlot
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


def get(target: bytes = b"/", *fields: bytes) -> bytes:
    """An honest HTTP/1.1 GET request."""
    return (
        b"GET "
        + target
        + b" HTTP/1.1\r\nHost: a\r\n"
        + b"".join(f + b"\r\n" for f in fields)
        + b"\r\n"
    )


class _BrokenExchange(RecordingExchange):
    """A `RecordingExchange` whose chosen method raises `ValueError`."""

    broken = ""

    def start(self) -> None:
        if self.broken == "start":
            raise ValueError("start")
        super().start()

    def body_received(self, data: bytes) -> None:
        if self.broken == "body":
            raise ValueError("body")
        super().body_received(data)


def _broken_factory(
    method: str,
) -> tuple[list[_BrokenExchange], object]:
    made: list[_BrokenExchange] = []

    def factory(
        channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
    ) -> _BrokenExchange:
        exchange = _BrokenExchange(head, slot, None)
        exchange.broken = method
        made.append(exchange)
        return exchange

    return made, factory


class FailingExchangeTests(SynchronousTestCase):
    """An exchange or exchange factory that raises."""

    def test_factory_raises(self) -> None:
        """An exchange factory raising gets the request a 500 response."""

        def factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> RecordingExchange:
            raise ValueError("no exchange")

        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory
        channel.dataReceived(get())
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 500)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_start_raises(self) -> None:
        """An exchange whose ``start`` raises has its connection aborted."""
        made, factory = _broken_factory("start")
        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory  # type: ignore[assignment]  # a plain function of the right shape
        channel.dataReceived(get())
        self.assertEqual(len(made), 1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_body_received_raises(self) -> None:
        """An exchange whose ``body_received`` raises has its connection aborted."""
        _made, factory = _broken_factory("body")
        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory  # type: ignore[assignment]  # a plain function of the right shape
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        )
        self.assertTrue(transport.disconnected)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_body_received_raises_no_more_calls(self) -> None:
        """After ``body_received`` raised, the exchange is only told of the loss."""
        made, factory = _broken_factory("body")
        channel, _transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory  # type: ignore[assignment]  # a plain function of the right shape
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        )
        channel.connectionLost(Failure(ConnectionDone()))
        self.flushLoggedErrors(ValueError)
        self.assertEqual(made[0].events, ["start", "lost"])

    def test_no_factory_with_body(self) -> None:
        """Without an exchange factory, a request with a body is answered 500."""
        channel = HTTPChannel(clock=Clock())
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 500)
        self.flushLoggedErrors()

    def test_no_factory_connection_lost(self) -> None:
        """Without an exchange factory, losing the connection mid-body is quiet."""
        channel = HTTPChannel(clock=Clock())
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n")
        channel.connectionLost(Failure(ConnectionDone()))
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 500)


class ConnectMethodTests(SynchronousTestCase):
    """``CONNECT`` requests are not tunnelled."""

    def test_nothing_read_after_connect(self) -> None:
        """Bytes after a CONNECT request are not read as another request."""
        channel, transport, _clock, recorder = make_channel(Recorder(respond_at_once))
        channel.dataReceived(
            b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" + get(b"/second")
        )
        self.assertEqual(recorder.targets, [b"a:443"])
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        self.assertNotIn(b"/second", transport.value())
        self.assertTrue(is_closing(transport))


class PlainTransportTests(SynchronousTestCase):
    """A transport that is not TCP (no half-close)."""

    def test_error_closes_whole_connection(self) -> None:
        """A rejected request on a non-TCP transport closes it fully after 400."""
        channel = HTTPChannel(clock=Clock())
        channel.exchangeFactory = Recorder()
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 400)
        self.assertTrue(transport.disconnecting)

    def test_addresses_and_security(self) -> None:
        """The channel reports its transport's addresses and that it is not TLS."""
        host = IPv4Address("TCP", "127.0.0.1", 8080)
        peer = IPv4Address("TCP", "127.0.0.1", 50000)
        channel = HTTPChannel(clock=Clock())
        channel.makeConnection(StringTransport(hostAddress=host, peerAddress=peer))
        self.assertEqual(channel.getHost(), host)
        self.assertEqual(channel.getPeer(), peer)
        self.assertFalse(channel.isSecure())


class TransportFlowTests(SynchronousTestCase):
    """The transport pausing and resuming the channel as its producer."""

    def test_request_waits_while_write_blocked(self) -> None:
        """A request arriving while output is blocked is started once it drains."""
        channel, transport, _clock, recorder = make_channel(Recorder(respond_at_once))
        channel.pauseProducing()
        channel.pauseProducing()
        channel.dataReceived(get(b"/late"))
        self.assertEqual(recorder.targets, [])
        self.assertEqual(transport.producerState, "paused")
        channel.resumeProducing()
        channel.resumeProducing()
        self.assertEqual(recorder.targets, [b"/late"])
        [response] = parse_responses(transport.value())
        self.assertEqual(response.body, b"/late")

    def test_large_body_written_in_pieces(self) -> None:
        """A write bigger than ``write_piece_bytes`` still reaches the peer whole."""
        body = b"x" * 100

        def respond(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"100")])
            exchange.slot.write_body(body)
            exchange.slot.finish()

        channel, transport, _clock, _ = make_channel(
            Recorder(respond), write_piece_bytes=16
        )
        channel.dataReceived(get())
        [response] = parse_responses(transport.value())
        self.assertEqual(response.body, body)

    def test_stop_producing_leaves_stop_to_connection_lost(self) -> None:
        """
        The transport stopping the channel stops the response's producer
        only with the loss that follows, once the response is lost.
        """
        producer = RecordingProducer()

        def register(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"5")])
            exchange.slot.registerProducer(producer, True)

        recorder = Recorder(register)
        channel, _transport, _clock, _ = make_channel(recorder)
        channel.dataReceived(get())
        channel.stopProducing()
        self.assertEqual([], producer.calls)
        self.assertTrue(recorder.exchanges[0].slot.is_connected())
        channel.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(["stop"], producer.calls)
        self.assertEqual(["start", "complete", "lost"], recorder.exchanges[0].events)


class AfterCloseTests(SynchronousTestCase):
    """Calls that arrive when the connection is gone, or never was."""

    def test_lost_before_connected(self) -> None:
        """Losing a connection that never connected leaves nothing scheduled."""
        clock = Clock()
        channel = HTTPChannel(clock=clock)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_lost_twice(self) -> None:
        """A second ``connectionLost`` does not tell the exchange again."""
        channel, _transport, clock, recorder = make_channel()
        channel.dataReceived(get())
        channel.connectionLost(Failure(ConnectionDone()))
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(recorder.exchanges[0].events, ["start", "complete", "lost"])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_lost_with_partial_head(self) -> None:
        """Losing the connection mid-head cancels the header timeout."""
        channel, _transport, clock, recorder = make_channel()
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.assertNotEqual(clock.getDelayedCalls(), [])
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(recorder.exchanges, [])

    def test_read_lost_while_closing(self) -> None:
        """The peer closing its side after we began closing changes nothing."""
        channel, transport, _clock, _recorder = make_channel(Recorder(respond_at_once))
        channel.dataReceived(get(b"/", b"Connection: close"))
        self.assertTrue(transport.disconnecting)
        written = transport.value()
        channel.readConnectionLost()
        self.assertEqual(transport.value(), written)
        self.assertFalse(transport.disconnected)

    def test_timeout_after_lost(self) -> None:
        """A timeout firing after the connection is gone does nothing."""
        channel, transport, _clock, _recorder = make_channel()
        channel.connectionLost(Failure(ConnectionDone()))
        channel.timeoutConnection()
        self.assertFalse(transport.disconnected)
        self.assertEqual(transport.value(), b"")


class PipelineOrderTests(SynchronousTestCase):
    """Pipeline bookkeeping."""

    def test_finish_out_of_order_refused(self) -> None:
        """Finishing a response that is not at the head of the pipeline is a bug."""
        channel, _transport, _clock, recorder = make_channel()
        channel.dataReceived(get(b"/1") + get(b"/2"))
        second = recorder.exchanges[1].slot
        self.assertRaises(
            RuntimeError,
            channel.requestWriteFinished,
            second,
        )


class _PausingTransport(HalfCloseTransport):
    """A transport whose buffer fills on every write: it pauses its producer."""

    def write(self, data: bytes) -> None:
        super().write(data)
        producer = self.producer
        if producer is not None:
            producer.pauseProducing()


class BlockedOutputTests(SynchronousTestCase):
    """Output the client is not reading when the channel must close."""

    def _blocked_408(self) -> tuple[HTTPChannel, HalfCloseTransport, Clock]:
        channel, transport, clock, _ = make_channel(header_timeout=5.0)
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        channel.pauseProducing()
        channel.dataReceived(b"Host: a\r\n")
        clock.advance(5.0)
        return channel, transport, clock

    def test_error_waits_for_drain_then_half_closes(self) -> None:
        """A 408 owed to a blocked client goes out when it drains, then half-closes."""
        channel, transport, _clock = self._blocked_408()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(transport.producerState, "producing")
        self.assertFalse(transport.write_closed)
        channel.resumeProducing()
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 408)
        self.assertTrue(transport.write_closed)

    def test_linger_flood_while_blocked_aborts(self) -> None:
        """Too many bytes while a response is still unwritten abort the connection."""
        channel, transport, _clock = self._blocked_408()
        channel.max_linger_bytes = 10
        channel.dataReceived(b"x" * 11)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")

    def test_piece_by_piece_as_transport_drains(self) -> None:
        """A body bigger than a piece goes out one piece per drain."""
        body = b"y" * 40

        def respond(exchange: RecordingExchange) -> None:
            exchange.slot.finish_with_body(200, b"OK", [], body)

        channel, transport, _clock, _ = make_channel(
            Recorder(respond), transport=_PausingTransport(), write_piece_bytes=16
        )
        channel.dataReceived(get())
        sizes = [len(transport.value())]
        for _ in range(12):
            channel.resumeProducing()
            sizes.append(len(transport.value()))
        [response] = parse_responses(transport.value())
        self.assertEqual(response.body, body)
        self.assertEqual(len(set(sizes[:4])), 4)

    def test_resume_when_idle_keeps_idle_timeout(self) -> None:
        """A drain on an idle connection leaves the idle timeout running."""
        channel, transport, clock, _ = make_channel(timeOut=7.0)
        channel.pauseProducing()
        channel.resumeProducing()
        clock.advance(7.0)
        self.assertTrue(is_closing(transport))


class WireErrorMidBodyTests(SynchronousTestCase):
    """A framing error in a body whose response already began."""

    def test_started_response_is_cut(self) -> None:
        """A bad chunk after the response began closes without a 400."""

        def begin(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"5")])

        channel, transport, _clock, recorder = make_channel(Recorder(begin))
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        self.assertTrue(is_closing(transport))
        self.assertNotIn(b" 400 ", transport.value())
        self.assertIn("lost", recorder.exchanges[0].events)

    def test_cut_response_not_reported_sent(self) -> None:
        """An exchange told its connection was lost is not then told it was sent."""

        def begin(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [(b"Content-Length", b"5")])

        channel, _transport, _clock, recorder = make_channel(Recorder(begin))
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        self.assertEqual(recorder.exchanges[0].events, ["start", "lost"])


class DroppedReaderTests(SynchronousTestCase):
    """A closing response dropping the request still being read."""

    def _setup(self) -> tuple[HalfCloseTransport, Recorder]:
        def pause_second(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/2":
                exchange.slot.pause_body()

        channel, transport, _clock, recorder = make_channel(Recorder(pause_second))
        channel.dataReceived(
            get(b"/1") + b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab"
        )
        recorder.exchanges[0].slot.write_error(503)
        return transport, recorder

    def test_reader_told_dropped(self) -> None:
        """The request being read after a closing response is told it was dropped."""
        transport, recorder = self._setup()
        second = recorder.exchanges[1]
        self.assertEqual(second.events, ["start", "lost"])
        assert second.lost is not None
        self.assertTrue(second.lost.check(RequestDropped))
        [response] = parse_responses(transport.value())
        self.assertEqual(response.status, 503)
        self.assertTrue(is_closing(transport))

    def test_transport_reading_while_lingering(self) -> None:
        """A body pause of a dropped request does not leave reading paused."""
        transport, _recorder = self._setup()
        self.assertEqual(transport.producerState, "producing")


class AbortTimerTests(SynchronousTestCase):
    """The abort timer of a closing connection."""

    def test_drain_while_closing_keeps_abort_deadline(self) -> None:
        """A drain after the close began does not postpone the abort."""
        channel, transport, clock, _ = make_channel(
            Recorder(respond_at_once), abort_timeout=10.0
        )
        channel.dataReceived(get(b"/", b"Connection: close"))
        self.assertTrue(transport.disconnecting)
        clock.advance(9.0)
        channel.pauseProducing()
        channel.resumeProducing()
        clock.advance(1.0)
        self.assertTrue(transport.disconnected)
        self.assertEqual(clock.getDelayedCalls(), [])


@implementer(IPullProducer)
class _PullProducer:
    """A pull producer writing ``chunks`` one per request, then finishing."""

    def __init__(self, slot: ResponseSlot, chunks: list[bytes]) -> None:
        self.slot = slot
        self.chunks = chunks
        self.pulls = 0

    def resumeProducing(self) -> None:
        self.pulls += 1
        if self.chunks:
            self.slot.write_body(self.chunks.pop(0))
        else:
            self.slot.unregisterProducer()
            self.slot.finish()

    def stopProducing(self) -> None:
        self.chunks = []


def _answer(action: Callable[[ResponseSlot], None]) -> Recorder:
    """A recorder whose exchanges run ``action`` on their slot at start."""
    return Recorder(lambda exchange: action(exchange.slot))


class SlotRawTests(SynchronousTestCase):
    """Raw responses written through the slot."""

    def test_raw_bytes_verbatim_then_close(self) -> None:
        """Raw bytes go out verbatim; a non-persistent raw end closes."""
        raw = [b"HTTP/1.1 204 No Content\r\n", b"X: y\r\n\r\n"]

        def action(slot: ResponseSlot) -> None:
            slot.writeSequence(raw)
            slot.write(b"")
            slot.finish_raw(persistent=False)

        channel, transport, _clock, _ = make_channel(_answer(action))
        channel.dataReceived(get(b"/1") + get(b"/2"))
        self.assertEqual(transport.value(), b"".join(raw))
        self.assertTrue(is_closing(transport))

    def test_persistent_raw_keeps_connection(self) -> None:
        """A persistent raw end lets the next request be answered."""

        def action(slot: ResponseSlot) -> None:
            slot.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
            slot.finish_raw(persistent=True)

        channel, transport, _clock, _ = make_channel(_answer(action))
        channel.dataReceived(get(b"/1") + get(b"/2"))
        self.assertEqual(len(parse_responses(transport.value())), 2)
        self.assertFalse(is_closing(transport))


class SlotMisuseTests(SynchronousTestCase):
    """A handler calling the slot out of order or with forbidden fields."""

    def _slot(self) -> tuple[ResponseSlot, HalfCloseTransport]:
        channel, transport, _clock, recorder = make_channel()
        channel.dataReceived(get())
        return recorder.exchanges[0].slot, transport

    def test_body_before_head(self) -> None:
        """Writing a body before the head is refused and writes nothing."""
        slot, transport = self._slot()
        self.assertRaises(RuntimeError, slot.write_body, b"x")
        self.assertRaises(RuntimeError, slot.finish)
        self.assertEqual(transport.value(), b"")

    def test_head_twice(self) -> None:
        """A second head, whole response or error after a head is refused."""
        slot, transport = self._slot()
        slot.write_head(200, b"OK", [(b"Content-Length", b"0")])
        written = transport.value()
        self.assertRaises(RuntimeError, slot.write_head, 200, b"OK", [])
        self.assertRaises(RuntimeError, slot.finish_with_body, 200, b"OK", [], b"")
        self.assertRaises(RuntimeError, slot.write_error, 500)
        self.assertEqual(transport.value(), written)

    def test_interim_status_refused(self) -> None:
        """An interim status as the final response is refused."""
        slot, transport = self._slot()
        self.assertRaises(ValueError, slot.write_head, 100, b"Continue", [])
        self.assertEqual(transport.value(), b"")

    def test_transfer_encoding_refused(self) -> None:
        """A handler-chosen Transfer-Encoding is refused."""
        slot, transport = self._slot()
        self.assertRaises(
            LocalProtocolError,
            slot.write_head,
            200,
            b"OK",
            [(b"Transfer-Encoding", b"chunked")],
        )
        self.assertEqual(transport.value(), b"")

    def test_bad_content_length_refused(self) -> None:
        """A Content-Length that is not a number is refused."""
        slot, transport = self._slot()
        self.assertRaises(
            LocalProtocolError,
            slot.write_head,
            200,
            b"OK",
            [(b"Content-Length", b"ten")],
        )
        self.assertEqual(transport.value(), b"")

    def test_mutable_field_values(self) -> None:
        """Fields given as bytearrays are written like bytes."""
        slot, transport = self._slot()
        slot.finish_with_body(
            200,
            b"OK",
            [(bytearray(b"X-Tag"), bytearray(b"v"))],  # type: ignore[list-item]  # a caller ignoring the types
            b"ok",
        )
        [response] = parse_responses(transport.value())
        self.assertEqual(response.header(b"x-tag"), b"v")
        self.assertEqual(response.body, b"ok")

    def test_own_date_and_server_not_doubled(self) -> None:
        """A handler's own Date and Server fields are sent once, unchanged."""
        slot, transport = self._slot()
        slot.finish_with_body(
            200, b"OK", [(b"Date", b"yesterday"), (b"Server", b"mine")], b""
        )
        [response] = parse_responses(transport.value())
        self.assertEqual(
            [v for k, v in response.fields if k.lower() in (b"date", b"server")],
            [b"yesterday", b"mine"],
        )

    def test_short_body_closes(self) -> None:
        """Finishing short of the Content-Length closes after what was written."""
        slot, transport = self._slot()
        slot.write_head(200, b"OK", [(b"Content-Length", b"5")])
        slot.write_body(b"ab")
        slot.finish()
        self.assertTrue(transport.value().endswith(b"\r\n\r\nab"))
        self.assertTrue(is_closing(transport))

    def test_host(self) -> None:
        """The slot reports the connection's local address."""
        host = IPv4Address("TCP", "127.0.0.1", 8080)
        channel, _transport, _clock, recorder = make_channel(
            transport=HalfCloseTransport(hostAddress=host)
        )
        channel.dataReceived(get())
        self.assertEqual(recorder.exchanges[0].slot.host, host)


class SlotProducerTests(SynchronousTestCase):
    """Producers registered on a slot."""

    def test_pull_producer_drives_body(self) -> None:
        """A pull producer is asked for data until it finishes the response."""
        producers: list[_PullProducer] = []

        def action(slot: ResponseSlot) -> None:
            slot.write_head(200, b"OK", [(b"Content-Length", b"4")])
            producer = _PullProducer(slot, [b"ab", b"cd"])
            producers.append(producer)
            slot.registerProducer(producer, False)

        channel, transport, _clock, _ = make_channel(_answer(action))
        channel.dataReceived(get())
        [response] = parse_responses(transport.value())
        self.assertEqual(response.body, b"abcd")
        self.assertEqual(producers[0].pulls, 3)

    def test_second_producer_refused(self) -> None:
        """Registering a second producer is refused."""
        channel, _transport, _clock, recorder = make_channel()
        channel.dataReceived(get())
        slot = recorder.exchanges[0].slot
        slot.write_head(200, b"OK", [])
        slot.registerProducer(RecordingProducer(), True)
        self.assertRaises(
            RuntimeError, slot.registerProducer, RecordingProducer(), True
        )

    def test_producer_after_loss_stopped(self) -> None:
        """A producer registered after the connection was lost is stopped."""
        channel, _transport, _clock, recorder = make_channel()
        channel.dataReceived(get())
        channel.connectionLost(Failure(ConnectionDone()))
        producer = RecordingProducer()
        recorder.exchanges[0].slot.registerProducer(producer, True)
        self.assertEqual(producer.calls, ["stop"])


class SlotExchangeFailureTests(SynchronousTestCase):
    """An exchange raising from the slot's notifications."""

    def test_response_sent_raises(self) -> None:
        """An exchange raising from ``response_sent`` has its connection aborted."""

        class Raising(RecordingExchange):
            def response_sent(self) -> None:
                raise ValueError("sent")

        def factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> Raising:
            return Raising(head, slot, respond_at_once)

        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory
        channel.dataReceived(get())
        self.assertEqual(len(parse_responses(transport.value())), 1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_response_sent_raises_stops_the_pipeline(self) -> None:
        """After ``response_sent`` raised, no later response goes out or is "sent"."""

        class Raising(RecordingExchange):
            def response_sent(self) -> None:
                raise ValueError("sent")

        made: list[RecordingExchange] = []

        def factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> RecordingExchange:
            exchange = (
                Raising(head, slot, None)
                if head.target == b"/1"
                else RecordingExchange(head, slot, respond_at_once)
            )
            made.append(exchange)
            return exchange

        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory
        channel.dataReceived(get(b"/1") + get(b"/2"))
        self.assertEqual(transport.value(), b"")  # /2 waits behind /1
        made[0].respond()
        self.assertTrue(transport.disconnected)
        self.assertEqual(len(parse_responses(transport.value())), 1)
        self.assertNotIn("sent", made[1].events)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_body_complete_raises(self) -> None:
        """An exchange raising from ``body_complete`` has its connection aborted."""

        class Raising(RecordingExchange):
            def body_complete(self, trailers: Fields) -> None:
                raise ValueError("complete")

        def factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> Raising:
            return Raising(head, slot, None)

        channel, transport, _clock, _ = make_channel()
        channel.exchangeFactory = factory
        channel.dataReceived(get())
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)


class AnsweredBeforeBodyTests(SynchronousTestCase):
    """A request answered before its body finished arriving."""

    def _answered(self) -> tuple[HTTPChannel, HalfCloseTransport, Clock, Recorder]:
        channel, transport, clock, recorder = make_channel(
            Recorder(respond_at_once), timeOut=5.0
        )
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab"
        )
        self.assertEqual(recorder.exchanges[0].events, ["start", "sent", "body"])
        return channel, transport, clock, recorder

    def test_body_stalls(self) -> None:
        """A body that stalls after the answer times out and its exchange is told."""
        _channel, transport, clock, recorder = self._answered()
        clock.advance(5.0)
        exchange = recorder.exchanges[0]
        self.assertEqual(exchange.events[-1], "lost")
        assert exchange.lost is not None
        self.assertTrue(exchange.lost.check(TimeoutError))
        self.assertTrue(transport.disconnecting)

    def test_connection_lost_mid_body(self) -> None:
        """Losing the connection while the answered body arrives tells the exchange."""
        channel, _transport, clock, recorder = self._answered()
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(recorder.exchanges[0].events[-1], "lost")
        self.assertEqual(clock.getDelayedCalls(), [])
