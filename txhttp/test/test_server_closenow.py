# -*- test-case-name: txhttp.test.test_server_closenow -*-
"""
Adversarial tests for "close at the end of the receive" (``HTTPChannel``).

A channel with write-through on, over a plain TCP transport, that decides to
close while ``dataReceived`` runs sends what the receive's responses wrote
at its end and, when the kernel takes it all, closes the socket at once
(``txhttp._twisted_io.close_now``). These tests look for what that could
break: byte order, truncated responses, double or missing closes, timers
left behind, exchanges told twice or never, access log lines, and the paths
that must keep the old close (lingering, buffered output, a Site's channel).

The unit tests drive a real `twisted.internet.tcp.Connection` on a socket
pair on 127.0.0.1 with a `MemoryReactorClock` (see
``txhttp.test.test_server_writethrough``); the loopback tests run a native
handler (or a bare channel) on the global reactor. The graceful stop of
``twistd txhttp`` (``txhttp._tap.Drain``) and its Site channels are looked at
too.
"""

from __future__ import annotations

import os
import random
import socket
from typing import Any, cast

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.protocol import ServerFactory, connectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Request as WebRequest
from twisted.web.server import Site

from txhttp import _tap
from txhttp._tap import Drain
from txhttp._wire import Fields, RequestHead
from txhttp.server import (
    AccessLog,
    ChannelState,
    HTTPChannel,
    HTTPServerFactory,
    echo_exchange_factory,
    use_txhttp,
)
from txhttp.server import Request as NativeRequest
from txhttp.server import Response as NativeResponse
from txhttp.server._exchange import ResponseSlot
from txhttp.test._server_helpers import (
    Recorder,
    RecordingExchange,
    parse_responses,
    respond_at_once,
)
from txhttp.test.test_client_writethrough import _Sockets
from txhttp.test.test_server_loopback import raw_exchange
from txhttp.test.test_server_writethrough import (
    _abort_second,
    _PeeredSends,
    _RecordingSends,
    _tcp_channel,
    serve_tracked,
    wait_closed,
)

_CLOSE = b"Connection: close\r\n"


def _get(target: bytes, extra: bytes = b"") -> bytes:
    """A bodiless GET for ``target``."""
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n"


def _closing(method: bytes, target: bytes, fields: bytes, body: bytes = b"") -> bytes:
    """A request with ``Connection: close``, the ``fields`` lines, then ``body``."""
    return (
        method
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: a\r\n"
        + _CLOSE
        + fields
        + b"\r\n"
        + body
    )


def _bodies(data: bytes, methods: tuple[bytes, ...] = ()) -> list[bytes]:
    """The bodies of the responses in ``data``, in order."""
    return [response.body for response in parse_responses(data, methods)]


def _pending(channel: HTTPChannel) -> list[float]:
    """When the channel's clock's pending calls are due."""
    return [call.getTime() for call in cast(Clock, channel.clock).getDelayedCalls()]


def _flush(transport: _RecordingSends, sockets: _Sockets) -> bytes:
    """
    Run the transport's write turns as a reactor would, reading the peer.

    Returns everything the peer read; a turn that ends the connection
    (``doWrite`` returning a reason) is handed to ``connectionLost``, as the
    reactor does.
    """
    received = [sockets.received()]
    for _ in range(10000):
        if transport.disconnected:
            break
        why = transport.doWrite()
        received.append(sockets.received())
        if why is not None:
            transport.connectionLost(Failure(why))
            break
        if (
            not transport.dataBuffer
            and not transport._tempDataLen
            and not transport.disconnecting
            and (transport._writeDisconnected or not transport._writeDisconnecting)
        ):
            break  # All written; a half-close (if asked) done.
    received.append(sockets.received())
    return b"".join(received)


def _peered(
    case: SynchronousTestCase, recorder: Recorder, **settings: object
) -> tuple[HTTPChannel, _RecordingSends, _Sockets]:
    """``_tcp_channel`` with a transport that knows its peer (logs name it)."""
    return _tcp_channel(
        case, recorder, clock=None, kind=_PeeredSends, reactor=None, **settings
    )


def _native_tcp(
    case: SynchronousTestCase,
    handler: Any,
    kind: type[_RecordingSends] = _PeeredSends,
    **settings: object,
) -> tuple[HTTPServerFactory, HTTPChannel, _RecordingSends, _Sockets]:
    """A native handler's channel (from a factory) on a recording TCP transport."""
    factory = HTTPServerFactory(handler, clock=Clock())
    channel = factory.buildProtocol(None)
    for name, value in settings.items():
        setattr(channel, name, value)
    sockets = _Sockets(case)
    transport = kind(sockets.ours, channel, MemoryReactorClock())
    transport.sends = []
    transport.writes = []
    transport.connected = 1
    channel.makeConnection(transport)
    return factory, channel, transport, sockets


class _Addressed(_PeeredSends):
    """A `_PeeredSends` with a local address too (twisted.web asks for it)."""

    def getHost(self) -> IPv4Address:
        """A fixed server address."""
        return IPv4Address("TCP", "127.0.0.1", 8080)


class _ServerLike(_Addressed):
    """A transport whose local address comes from its socket, as ``tcp.Server``."""

    def getHost(self) -> IPv4Address:
        """The socket's own address (gone with the socket, as in Twisted)."""
        host, port = self.socket.getsockname()
        return IPv4Address("TCP", host, port)


class _AnswerAtEnd(RecordingExchange):
    """Asks for the body; answers with it (after the target if tagged) at its end."""

    tagged = False

    def body_complete(self, trailers: Fields) -> None:
        """Record, then answer with the body received."""
        super().body_complete(trailers)
        self.respond(self.head.target + b":" + self.body if self.tagged else self.body)


class _AtEndRecorder(Recorder):
    """A `Recorder` making `_AnswerAtEnd` exchanges that ask for their body."""

    def __init__(self, tagged: bool = False) -> None:
        super().__init__()
        self.tagged = tagged

    def __call__(
        self, channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
    ) -> RecordingExchange:
        exchange = _AnswerAtEnd(head, slot, lambda e: e.slot.want_body())
        exchange.tagged = self.tagged
        self.exchanges.append(exchange)
        return exchange


class CloseNowTimersTests(SynchronousTestCase):
    """A connection closed at once leaves no timer and tells each exchange once."""

    def test_factory_timers_empty(self) -> None:
        """A factory's channel closed at once leaves none of its shared timers."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.finish(b"hi")

        factory, channel, _transport, sockets = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(0, factory.timers.pending)
        self.assertEqual([b"hi"], _bodies(sockets.received()))
        self.assertEqual(b"", sockets.peer.recv(10))

    def test_factory_timers_empty_after_partial_send(self) -> None:
        """When the close waits for the buffer, only the abort timer is pending."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.finish(b"hi")

        factory, channel, transport, sockets = _native_tcp(self, handler)
        transport.script = [5]
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual(1, factory.timers.pending)
        self.assertEqual([b"hi"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(0, factory.timers.pending)

    def test_header_timer_cancelled(self) -> None:
        """A keep-alive receive's partial head timer is gone once a close follows."""
        channel, _transport, sockets = _peered(self, Recorder(respond_at_once))
        channel.dataReceived(b"GET /a HTTP/1.1\r\nHo")
        self.assertEqual(2, len(_pending(channel)))  # Idle and header timers.
        channel.dataReceived(b"st: a\r\n" + _CLOSE + b"\r\n")
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))
        self.assertEqual([b"/a"], _bodies(sockets.received()))

    def test_exchange_told_once(self) -> None:
        """The closing exchange hears start, sent and complete, never lost."""
        recorder = Recorder(respond_at_once)
        channel, _transport, _sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/1") + _get(b"/2", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        for exchange in recorder.exchanges:
            self.assertEqual(["start", "sent", "complete"], exchange.events)

    def test_when_done_true(self) -> None:
        """``Response.when_done`` fires True for a response closed at once."""
        outcomes: list[bool] = []

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.when_done().addCallback(outcomes.append)
            response.finish(b"done")

        _f, channel, _t, sockets = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertEqual([True], outcomes)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"done"], _bodies(sockets.received()))

    def test_when_done_after_close(self) -> None:
        """``when_done`` asked after the close is already settled True."""
        responses: list[NativeResponse] = []

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            responses.append(response)
            response.finish(b"done")

        _f, channel, _t, _s = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertTrue(self.successResultOf(responses[0].when_done()))

    def test_access_log_once_per_request(self) -> None:
        """Pipelined requests ending in a close each log exactly one line."""
        path = self.mktemp()
        log = AccessLog(Clock(), path)
        self.addCleanup(log.close)
        channel, _t, sockets = _peered(self, Recorder())
        channel.exchangeFactory = echo_exchange_factory(log)
        channel.dataReceived(
            _get(b"/1") + _get(b"/2") + b"GET /3 HTTP/1.0\r\nHost: a\r\n\r\n"
        )
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(3, len(parse_responses(sockets.received())))
        log.close()
        with open(path, encoding="ascii") as lines:
            logged = lines.read().splitlines()
        self.assertEqual(3, len(logged))
        for line, target in zip(logged, ("/1", "/2", "/3"), strict=True):
            self.assertIn(f'"GET {target} ', line)

    def test_access_log_single_close(self) -> None:
        """A single closing request logs one line, not one per close step."""
        path = self.mktemp()
        log = AccessLog(Clock(), path)
        self.addCleanup(log.close)
        channel, _t, _s = _peered(self, Recorder())
        channel.exchangeFactory = echo_exchange_factory(log)
        channel.dataReceived(_get(b"/only", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        log.close()
        with open(path, encoding="ascii") as lines:
            self.assertEqual(1, len(lines.read().splitlines()))


class CloseNowOrderTests(SynchronousTestCase):
    """Bytes of the last receive leave whole and in order, in any split."""

    def test_every_split_of_a_pipeline(self) -> None:
        """Any split of three pipelined requests ending in a close: all answered."""
        data = _get(b"/1") + _get(b"/2") + _get(b"/3", _CLOSE)
        for cut in range(1, len(data)):
            channel, transport, sockets = _peered(self, Recorder(respond_at_once))
            channel.dataReceived(data[:cut])
            channel.dataReceived(data[cut:])
            self.assertIs(ChannelState.CLOSED, channel.state, cut)
            self.assertEqual([], transport.writes, cut)
            self.assertEqual([b"/1", b"/2", b"/3"], _bodies(sockets.received()), cut)
            self.assertEqual(b"", sockets.peer.recv(10), cut)
            self.assertEqual([], _pending(channel), cut)

    def test_byte_by_byte(self) -> None:
        """Requests fed one byte per receive still close at once at the end."""
        recorder = Recorder(respond_at_once)
        channel, _transport, sockets = _peered(self, recorder)
        data = _get(b"/1") + _get(b"/2", _CLOSE)
        for index in range(len(data)):
            self.assertIsNot(ChannelState.CLOSED, channel.state)
            channel.dataReceived(data[index : index + 1])
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))
        self.assertEqual(["start", "sent", "complete"], recorder.exchanges[1].events)

    def test_earlier_response_answered_later_comes_first(self) -> None:
        """A closing answer waits for an earlier one answered later; then closes."""

        def answer_second(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/2":
                exchange.respond(b"/2")

        recorder = Recorder(answer_second)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/1") + _get(b"/2", _CLOSE))
        self.assertEqual(b"", sockets.received())
        self.assertIs(ChannelState.DRAINING, channel.state)
        recorder.exchanges[0].respond(b"/1")
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([b"/1", b"/2"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_close_after_partial_send_in_earlier_receive(self) -> None:
        """A close never overtakes the unsent rest of an earlier receive's response."""
        channel, transport, sockets = _peered(self, Recorder(respond_at_once))
        transport.script = [10]
        channel.dataReceived(_get(b"/1"))
        self.assertEqual(1, len(transport.writes))
        channel.dataReceived(_get(b"/2", _CLOSE))
        self.assertEqual(1, len(transport.sends))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([b"/1", b"/2"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_close_after_partial_send_in_same_receive(self) -> None:
        """A close never overtakes the unsent rest of its own receive's early cork."""

        def respond(exchange: RecordingExchange) -> None:
            exchange.respond(exchange.head.target * 50)

        channel, transport, sockets = _peered(
            self, Recorder(respond), write_piece_bytes=200
        )
        transport.script = [10]
        targets = [b"/1", b"/2", b"/3"]
        channel.dataReceived(_get(b"/1") + _get(b"/2") + _get(b"/3", _CLOSE))
        self.assertEqual(1, len(transport.sends))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([t * 50 for t in targets], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)

    def test_close_after_send_error_in_earlier_receive(self) -> None:
        """After a failed send, a close waits for the transport; no exchange lost."""
        recorder = Recorder(respond_at_once)
        channel, transport, _sockets = _peered(self, recorder)
        transport.script = [ConnectionLost()]
        channel.dataReceived(_get(b"/1"))
        channel.dataReceived(_get(b"/2", _CLOSE))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertTrue(transport.disconnecting)
        for exchange in recorder.exchanges:
            self.assertNotIn("lost", exchange.events)

    def test_closing_request_behind_pipeline_limit(self) -> None:
        """A close held back by ``maxPipeline`` is answered in turn, then closed."""

        def answer_later_first(exchange: RecordingExchange) -> None:
            if exchange.head.target != b"/1":
                exchange.respond(exchange.head.target)

        recorder = Recorder(answer_later_first)
        channel, transport, sockets = _peered(self, recorder, maxPipeline=1)
        channel.dataReceived(_get(b"/1") + _get(b"/2", _CLOSE))
        self.assertEqual([b"/1"], recorder.targets)
        recorder.exchanges[0].respond(b"/1")
        self.assertEqual([b"/1", b"/2"], recorder.targets)
        self.assertEqual([b"/1", b"/2"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_closing_request_then_more_bytes_lingers(self) -> None:
        """Bytes after a closing request: answered, not read, and it lingers."""
        recorder = Recorder(respond_at_once)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/a", _CLOSE) + _get(b"/b"))
        self.assertIs(ChannelState.LINGERING, channel.state)
        self.assertEqual([b"/a"], recorder.targets)
        self.assertEqual([b"/a"], _bodies(_flush(transport, sockets)))
        self.assertEqual([channel.linger_timeout], _pending(channel))

    def test_error_mid_pipeline_lingers(self) -> None:
        """A 400 after a good request in one receive: both sent, then lingering."""
        channel, transport, sockets = _peered(self, Recorder(respond_at_once))
        channel.dataReceived(
            _get(b"/1") + b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
        )
        self.assertIs(ChannelState.LINGERING, channel.state)
        self.assertFalse(transport.disconnecting)
        received = _flush(transport, sockets)
        self.assertEqual([200, 400], [r.status for r in parse_responses(received)])
        self.assertTrue(transport._writeDisconnected)
        self.assertFalse(transport.disconnected)
        self.assertEqual([channel.linger_timeout], _pending(channel))

    def test_linger_overflow_closes_without_timers(self) -> None:
        """Lingering input past its limit closes the socket, leaving no timer."""
        channel, transport, sockets = _peered(
            self, Recorder(respond_at_once), max_linger_bytes=10
        )
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        received = _flush(transport, sockets)
        self.assertEqual([400], [r.status for r in parse_responses(received)])
        channel.dataReceived(b"x" * 100)
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertTrue(transport.disconnected)
        self.assertEqual([], _pending(channel))

    def test_linger_overflow_before_error_written(self) -> None:
        """Linger overflow before the error response was written: still delivered."""
        channel, transport, sockets = _peered(
            self, Recorder(respond_at_once), max_linger_bytes=10
        )
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        channel.dataReceived(b"x" * 100)
        received = _flush(transport, sockets)
        self.assertEqual([400], [r.status for r in parse_responses(received)])
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_overflow_when_half_close_pending(self) -> None:
        """Linger overflow under a pending half-close: the write turn does no harm."""
        channel, transport, sockets = _peered(
            self, Recorder(_abort_second), max_linger_bytes=10
        )
        channel.dataReceived(_get(b"/1"))  # Written through, all taken.
        channel.dataReceived(_get(b"/2"))  # Abandoned: linger, half-close.
        self.assertTrue(transport._writeDisconnecting)
        self.assertFalse(transport._writeDisconnected)
        channel.dataReceived(b"x" * 100)
        why = transport.doWrite()  # The same epoll event's write half.
        if why is not None:
            transport.connectionLost(Failure(why))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"/1"], _bodies(sockets.received()))

    def test_pipeline_drop_after_close_request(self) -> None:
        """A request behind an answered closing one is never started."""
        recorder = Recorder(respond_at_once)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/a", _CLOSE) + b"GET /b HTTP/1.1\r\n")
        self.assertEqual([b"/a"], recorder.targets)
        self.assertEqual([b"/a"], _bodies(_flush(transport, sockets)))
        self.assertIn(channel.state, (ChannelState.LINGERING, ChannelState.CLOSED))


def _random_request(
    rng: random.Random, target: bytes, last: bool
) -> tuple[bytes, bytes, bytes]:
    """A request of a random kind: its bytes, its method, the answer's body."""
    kind = rng.choice(("get", "head", "length", "chunked"))
    close = b""
    version = b"HTTP/1.1"
    if last:
        if rng.random() < 0.5:
            close = _CLOSE
        else:
            version = b"HTTP/1.0"
    line = b"%s " + target + b" " + version + b"\r\nHost: a\r\n" + close
    if kind == "get":
        return line % b"GET" + b"\r\n", b"GET", target + b":"
    if kind == "head":
        return line % b"HEAD" + b"\r\n", b"HEAD", b""
    body = bytes(rng.randrange(97, 123) for _ in range(rng.randrange(1, 40)))
    if kind == "length" or version == b"HTTP/1.0":
        framing = b"Content-Length: %d\r\n\r\n" % len(body)
        return line % b"POST" + framing + body, b"POST", target + b":" + body
    cut = rng.randrange(1, len(body) + 1)
    chunks = b"%x\r\n%s\r\n" % (cut, body[:cut])
    if body[cut:]:
        chunks += b"%x\r\n%s\r\n" % (len(body) - cut, body[cut:])
    framing = b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    return line % b"POST" + framing, b"POST", target + b":" + body


class CloseNowRandomTests(SynchronousTestCase):
    """Random pipelines ending in a close, in random receives and sends."""

    def test_random_pipelines(self) -> None:
        """Every response arrives whole and in order; the socket ends closed."""
        rng = random.Random(20261121)
        closed_at_once = 0
        rounds = 150
        for round_ in range(rounds):
            count = rng.randrange(1, 6)
            requests = [
                _random_request(rng, b"/%d" % n, n == count - 1) for n in range(count)
            ]
            data = b"".join(request for request, _m, _b in requests)
            recorder = _AtEndRecorder(tagged=True)
            channel, transport, sockets = _peered(self, recorder)
            if rng.random() < 0.3:
                transport.script = [rng.randrange(0, 50)]
            cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, 4)))
            start = 0
            for cut in [*cuts, len(data)]:
                channel.dataReceived(data[start:cut])
                start = cut
            closed_at_once += channel.state is ChannelState.CLOSED
            received = _flush(transport, sockets)
            methods = tuple(method for _r, method, _b in requests)
            context = (round_, data, cuts)
            self.assertEqual(
                [body for _r, _m, body in requests],
                _bodies(received, methods),
                context,
            )
            self.assertIs(ChannelState.CLOSED, channel.state, context)
            self.assertEqual([], _pending(channel), context)
            for exchange in recorder.exchanges:
                self.assertEqual(1, exchange.events.count("sent"), context)
                self.assertEqual(1, exchange.events.count("complete"), context)
                self.assertNotIn("lost", exchange.events, context)
        # Both ways to the end were taken: at once, and after the buffer.
        self.assertTrue(0 < closed_at_once < rounds, closed_at_once)


class CloseNowFramingTests(SynchronousTestCase):
    """Responses of every framing survive a close at the end of the receive."""

    def test_http10_read_until_close_body(self) -> None:
        """An HTTP/1.0 body ended by the close arrives whole before the end."""

        def stream(exchange: RecordingExchange) -> None:
            exchange.slot.write_head(200, b"OK", [])
            exchange.slot.write_body(b"first, ")
            exchange.slot.write_body(b"second")
            exchange.slot.finish()

        channel, transport, sockets = _peered(self, Recorder(stream))
        channel.dataReceived(b"GET /old HTTP/1.0\r\n\r\n")
        self.assertIs(ChannelState.CLOSED, channel.state)
        received = sockets.received()
        head, _, body = received.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertNotIn(b"content-length", head.lower())
        self.assertNotIn(b"transfer-encoding", head.lower())
        self.assertEqual(b"first, second", body)
        self.assertEqual(b"", sockets.peer.recv(10))  # The end of the body.
        self.assertEqual(1, len(transport.sends))

    def test_head_with_close(self) -> None:
        """A HEAD answered with a Content-Length and no body, then closed at once."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.finish(b"twelve bytes")

        _f, channel, _t, sockets = _native_tcp(self, handler)
        channel.dataReceived(b"HEAD /h HTTP/1.1\r\nHost: a\r\n" + _CLOSE + b"\r\n")
        self.assertIs(ChannelState.CLOSED, channel.state)
        received = sockets.received()
        (response,) = parse_responses(received, (b"HEAD",))
        self.assertEqual(b"12", response.header(b"content-length"))
        self.assertEqual(b"", response.body)
        self.assertTrue(received.endswith(b"\r\n\r\n"))

    def test_expect_continue_answered_first_lingers(self) -> None:
        """100-continue and close, answered before the body: no 100, lingering."""
        recorder = Recorder(respond_at_once)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(
            _closing(b"POST", b"/u", b"Expect: 100-continue\r\nContent-Length: 5\r\n")
        )
        self.assertIs(ChannelState.LINGERING, channel.state)
        (response,) = parse_responses(_flush(transport, sockets))
        self.assertEqual([], response.interim)
        self.assertEqual(b"/u", response.body)
        self.assertEqual(["start", "sent", "lost"], recorder.exchanges[0].events)

    def test_expect_continue_body_read_then_closed(self) -> None:
        """100-continue and close: the 100, then the answer; closed in that receive."""
        recorder = _AtEndRecorder()
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(
            _closing(b"POST", b"/u", b"Expect: 100-continue\r\nContent-Length: 5\r\n")
        )
        first = _flush(transport, sockets)
        self.assertTrue(first.startswith(b"HTTP/1.1 100 Continue\r\n"))
        channel.dataReceived(b"hello")
        self.assertIs(ChannelState.CLOSED, channel.state)
        (response,) = parse_responses(first + sockets.received())
        self.assertEqual([100], response.interim)
        self.assertEqual(b"hello", response.body)
        self.assertEqual(
            ["start", "body", "complete", "sent"], recorder.exchanges[0].events
        )

    def test_body_answered_before_read_lingers(self) -> None:
        """A closing request's body unread when answered: the answer, then lingering."""
        framings = [
            (b"Content-Length: 5\r\n", b"hello"),
            (b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        ]
        for fields, body in framings:
            recorder = Recorder(respond_at_once)
            channel, transport, sockets = _peered(self, recorder)
            channel.dataReceived(_closing(b"POST", b"/p", fields, body))
            self.assertIs(ChannelState.LINGERING, channel.state, fields)
            self.assertEqual([b"/p"], _bodies(_flush(transport, sockets)), fields)
            self.assertEqual(
                ["start", "sent", "lost"], recorder.exchanges[0].events, fields
            )

    def test_length_body_read_then_closed(self) -> None:
        """A closing request's body read in its receive, then answered: closed."""
        recorder = _AtEndRecorder()
        channel, _transport, sockets = _peered(self, recorder)
        channel.dataReceived(
            _closing(b"POST", b"/p", b"Content-Length: 5\r\n", b"hello")
        )
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"hello"], _bodies(sockets.received()))
        self.assertEqual(
            ["start", "body", "complete", "sent"], recorder.exchanges[0].events
        )
        self.assertEqual([], _pending(channel))

    def test_chunked_body_split_then_closed(self) -> None:
        """A chunked body split over receives, answered at its end: closed at once."""
        recorder = _AtEndRecorder()
        channel, _transport, sockets = _peered(self, recorder)
        channel.dataReceived(
            _closing(b"POST", b"/c", b"Transfer-Encoding: chunked\r\n", b"5\r\nhel")
        )
        self.assertIs(ChannelState.DRAINING, channel.state)
        channel.dataReceived(b"lo\r\n0\r\n\r\n")
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"hello"], _bodies(sockets.received()))
        self.assertEqual(b"", sockets.peer.recv(10))

    def test_native_body_read_in_receive(self) -> None:
        """A native handler reading the body answers in the receive; closed at once."""

        def handler(request: NativeRequest, response: NativeResponse) -> Any:
            return request.read().addCallback(response.finish)

        _f, channel, _t, sockets = _native_tcp(self, handler)
        channel.dataReceived(_closing(b"PUT", b"/n", b"Content-Length: 3\r\n", b"abc"))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"abc"], _bodies(sockets.received()))

    def test_expect_continue_body_in_same_receive(self) -> None:
        """A 100 and the answer to a body sent with its head leave in one send."""
        recorder = _AtEndRecorder()
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(
            _closing(
                b"POST",
                b"/u",
                b"Expect: 100-continue\r\nContent-Length: 5\r\n",
                b"hello",
            )
        )
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(1, len(transport.sends))
        (response,) = parse_responses(sockets.received())
        self.assertEqual([100], response.interim)
        self.assertEqual(b"hello", response.body)

    def test_native_chunked_with_trailers(self) -> None:
        """A chunked native response with trailers closes at once, its end intact."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.write(b"ab")
            response.write(b"cd")
            response.finish(b"ef", trailers=((b"X-Sum", b"6"),))

        _f, channel, transport, sockets = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/c", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(1, len(transport.sends))
        received = sockets.received()
        (response,) = parse_responses(received)
        self.assertEqual(b"abcdef", response.body)
        self.assertEqual(((b"X-Sum", b"6"),), tuple(response.trailers))
        self.assertTrue(received.endswith(b"\r\n\r\n"))

    def test_server_close_header_lingers(self) -> None:
        """A close the server chose (its ``Connection: close``) lingers as before."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.headers.append((b"Connection", b"close"))
            response.finish(request.target)

        _f, channel, transport, sockets = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/1") + _get(b"/2"))
        self.assertIs(ChannelState.LINGERING, channel.state)
        self.assertEqual([b"/1"], _bodies(_flush(transport, sockets)))
        self.assertTrue(transport._writeDisconnected)

    def test_non_plain_timeouts_leave_no_timer(self) -> None:
        """A subclass overriding ``resetTimeout`` closes at once with no timer left."""
        resets: list[None] = []

        class Counting(HTTPChannel):
            def resetTimeout(self) -> None:
                resets.append(None)
                super().resetTimeout()

        sockets = _Sockets(self)
        channel = Counting(clock=Clock())
        channel.exchangeFactory = Recorder(respond_at_once)
        transport = _PeeredSends(sockets.ours, channel, MemoryReactorClock())
        transport.sends = []
        transport.writes = []
        transport.connected = 1
        channel.makeConnection(transport)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))
        self.assertEqual(1, len(resets))
        self.assertEqual([b"/a"], _bodies(sockets.received()))


class CloseNowBigTests(SynchronousTestCase):
    """Responses the kernel cannot take in one send close after the buffer."""

    def test_bigger_than_send_limit_in_cork(self) -> None:
        """A corked closing response past one send is buffered, whole, then closed."""
        body = bytes(range(256)) * 2400  # 600 KiB: past Twisted's SEND_LIMIT.

        def big(exchange: RecordingExchange) -> None:
            exchange.respond(body)

        channel, transport, sockets = _peered(
            self, Recorder(big), write_piece_bytes=1 << 20
        )
        channel.dataReceived(_get(b"/big", _CLOSE))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([channel.abort_timeout], _pending(channel))
        self.assertEqual([body], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_bigger_than_piece(self) -> None:
        """A closing response past ``write_piece_bytes``: fed in pieces, then closed."""
        body = b"y" * (300 * 1024)

        def big(exchange: RecordingExchange) -> None:
            exchange.respond(body)

        recorder = Recorder(big)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/small") + _get(b"/big", _CLOSE))
        self.assertIsNot(ChannelState.CLOSED, channel.state)
        self.assertEqual([body, body], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))
        for exchange in recorder.exchanges:
            self.assertEqual(["start", "sent", "complete"], exchange.events)

    def test_cork_past_piece_while_draining(self) -> None:
        """A closing receive's cork past its bound goes out first, in order."""

        def respond(exchange: RecordingExchange) -> None:
            exchange.respond(exchange.head.target * 40)

        channel, transport, sockets = _peered(
            self, Recorder(respond), write_piece_bytes=300
        )
        targets = [b"/%d" % n for n in range(5)]
        data = b"".join(_get(t) for t in targets[:-1]) + _get(targets[-1], _CLOSE)
        channel.dataReceived(data)
        self.assertEqual([t * 40 for t in targets], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)

    def test_close_behind_buffered_keep_alive_response(self) -> None:
        """A close behind a big buffered keep-alive response waits for it."""
        body = b"k" * (300 * 1024)

        def respond(exchange: RecordingExchange) -> None:
            target = exchange.head.target
            exchange.respond(body if target == b"/big" else target)

        channel, transport, sockets = _peered(self, Recorder(respond))
        channel.dataReceived(_get(b"/big"))
        self.assertIs(ChannelState.OPEN, channel.state)
        channel.dataReceived(_get(b"/last", _CLOSE))
        self.assertIsNot(ChannelState.CLOSED, channel.state)
        self.assertEqual([body, b"/last"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))


class CloseNowHandlerTests(SynchronousTestCase):
    """Handlers that misbehave during the closing receive."""

    def _late_call(self, late: Any) -> _RecordingSends:
        """Answer a closing request, then call ``late(response)``; check the end."""

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.finish(b"first")
            late(response)

        _f, channel, transport, sockets = _native_tcp(self, handler)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertEqual(1, len(self.flushLoggedErrors(RuntimeError)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"first"], _bodies(sockets.received()))
        return transport

    def test_finish_twice(self) -> None:
        """A second ``finish`` is logged once; the first response closes whole."""
        transport = self._late_call(lambda response: response.finish(b"second"))
        self.assertEqual(1, len(transport.sends))

    def test_write_after_finish(self) -> None:
        """A ``write`` after ``finish`` is logged; the response still closes whole."""
        transport = self._late_call(lambda response: response.write(b"more"))
        self.assertEqual(1, len(transport.sends))

    def test_handler_loses_connection_itself(self) -> None:
        """A handler's own ``loseConnection`` after answering: sent, then closed."""
        channel: HTTPChannel | None = None

        def respond_and_close(exchange: RecordingExchange) -> None:
            assert channel is not None and channel.transport is not None
            exchange.respond(b"/a")
            channel.transport.loseConnection()

        recorder = Recorder(respond_and_close)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([b"/a"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))
        self.assertNotIn("lost", recorder.exchanges[0].events)

    def test_handler_aborts_transport_itself(self) -> None:
        """A handler's own ``abortConnection``: nothing is sent, one loss, no timer."""
        channel: HTTPChannel | None = None
        lost: list[Failure] = []

        def respond_and_abort(exchange: RecordingExchange) -> None:
            assert channel is not None and channel.transport is not None
            exchange.respond(b"/a")
            cast(_RecordingSends, channel.transport).abortConnection()

        channel, transport, _sockets = _peered(self, Recorder(respond_and_abort))
        original = channel.connectionLost

        def recording(reason: Failure = connectionDone) -> None:
            lost.append(reason)
            original(reason)

        channel.connectionLost = recording  # type: ignore[method-assign]  # records the calls
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertEqual([], transport.sends)
        cast(MemoryReactorClock, transport.reactor).advance(0)
        self.assertEqual(1, len(lost))
        self.assertTrue(lost[0].check(ConnectionAborted))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_connection_lost_called_once(self) -> None:
        """The protocol's ``connectionLost`` runs once, inside the receive."""
        channel, transport, sockets = _peered(self, Recorder(respond_at_once))
        calls: list[ChannelState] = []
        original = channel.connectionLost

        def recording(reason: Failure = connectionDone) -> None:
            calls.append(channel.state)
            original(reason)

        channel.connectionLost = recording  # type: ignore[method-assign]  # records the calls
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertEqual([ChannelState.CLOSING], calls)
        # Late calls the reactor could still make do nothing more.
        transport.connectionLost(Failure(ConnectionAborted()))
        channel.dataReceived(_get(b"/b"))
        self.assertEqual([ChannelState.CLOSING], calls)
        self.assertEqual([b"/a"], _bodies(sockets.received()))

    def test_nested_receive_closing(self) -> None:
        """A closing request fed by a nested receive closes once, at the outer end."""
        channel: HTTPChannel | None = None
        inside: list[ChannelState] = []

        def respond(exchange: RecordingExchange) -> None:
            assert channel is not None
            exchange.respond(exchange.head.target)
            if exchange.head.target == b"/1":
                channel.dataReceived(_get(b"/2", _CLOSE))
                inside.append(channel.state)

        recorder = Recorder(respond)
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/1"))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertNotIn(ChannelState.CLOSED, inside)
        self.assertEqual(1, len(transport.sends))
        self.assertEqual([b"/1", b"/2"], _bodies(sockets.received()))

    def test_nested_receive_after_close_decided(self) -> None:
        """Bytes fed by a nested receive after the close was decided are ignored."""
        channel: HTTPChannel | None = None

        def respond(exchange: RecordingExchange) -> None:
            assert channel is not None
            exchange.respond(exchange.head.target)
            channel.dataReceived(_get(b"/2"))

        recorder = Recorder(respond)
        channel, _transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/1", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"/1"], recorder.targets)
        self.assertEqual([b"/1"], _bodies(sockets.received()))

    def test_answer_from_connection_lost_goes_nowhere(self) -> None:
        """An exchange writing when told of the loss writes and raises nothing."""

        class _AnswerWhenLost(RecordingExchange):
            def connection_lost(self, reason: Failure) -> None:
                super().connection_lost(reason)
                self.slot.write_body(b"late")

        def respond(exchange: RecordingExchange) -> None:
            if exchange.head.target == b"/a":
                exchange.slot.abort()

        def factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> RecordingExchange:
            return _AnswerWhenLost(head, slot, respond)

        channel, _transport, sockets = _peered(self, Recorder())
        channel.exchangeFactory = factory
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual(b"", sockets.received())
        self.assertEqual([], self.flushLoggedErrors())

    def test_streaming_response_closes_after_its_end(self) -> None:
        """A response still streaming when a close request arrives waits for its end."""
        recorder = Recorder()
        channel, transport, sockets = _peered(self, recorder)
        channel.dataReceived(_get(b"/s", _CLOSE))
        slot = recorder.exchanges[0].slot
        slot.write_head(200, b"OK", [])
        slot.write_body(b"one ")
        self.assertIs(ChannelState.DRAINING, channel.state)
        slot.write_body(b"two")
        slot.finish()
        self.assertEqual([b"one two"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], _pending(channel))

    def test_local_address_after_receive(self) -> None:
        """
        ``Request.local`` answers in the handler; once the closing receive
        returned, the socket is gone and it raises ``ConnectionDone``.
        """
        requests: list[NativeRequest] = []
        during: list[object] = []

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            requests.append(request)
            during.append(request.local)
            response.finish(b"bye")

        _f, channel, _t, sockets = _native_tcp(self, handler, kind=_ServerLike)
        channel.dataReceived(_get(b"/a", _CLOSE))
        self.assertEqual([b"bye"], _bodies(sockets.received()))
        self.assertIsInstance(during[0], IPv4Address)
        self.assertRaises(ConnectionDone, lambda: requests[0].local)


class OldCloseKeptTests(SynchronousTestCase):
    """Channels that must keep closing on the transport's turn."""

    def test_write_through_off_pipeline(self) -> None:
        """With write-through off, a closing pipeline is buffered and closed later."""
        channel, transport, sockets = _peered(
            self, Recorder(respond_at_once), write_through=False
        )
        channel.dataReceived(_get(b"/1") + _get(b"/2", _CLOSE))
        self.assertEqual([], transport.sends)
        self.assertTrue(transport.disconnecting)
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([channel.abort_timeout], _pending(channel))
        self.assertEqual([b"/1", b"/2"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)

    def test_site_channel(self) -> None:
        """A twisted.web Site's channel (batching) closes on the transport's turn."""

        class Leaf(Resource):
            isLeaf = True

            def render_GET(self, request: WebRequest) -> bytes:
                return b"site"

        clock = Clock()
        site = use_txhttp(Site(Leaf(), reactor=clock))
        channel = cast(HTTPChannel, site.buildProtocol(None))
        sockets = _Sockets(self)
        transport = _Addressed(sockets.ours, channel, MemoryReactorClock())
        transport.sends = []
        transport.writes = []
        transport.connected = 1
        channel.makeConnection(transport)
        channel.dataReceived(_get(b"/", _CLOSE))
        self.assertEqual([], transport.sends)
        self.assertTrue(transport.disconnecting)
        self.assertIs(ChannelState.CLOSING, channel.state)
        self.assertEqual([b"site"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)


class DrainTests(SynchronousTestCase):
    """A graceful stop (``txhttp._tap.Drain``) and connections closed at once."""

    def _tracked(
        self, recorder: Recorder
    ) -> tuple[Drain, Clock, HTTPChannel, _RecordingSends, _Sockets]:
        """A channel whose requests a `Drain` on its own clock counts."""
        clock = Clock()
        drain = Drain(clock)
        channel, transport, sockets = _peered(self, recorder)
        channel.exchangeFactory = drain.wrap(recorder)
        drain.track(channel)
        return drain, clock, channel, transport, sockets

    def test_stop_waits_for_closing_body(self) -> None:
        """A closing request in flight at stop, answered with its body: closed, done."""
        recorder = _AtEndRecorder()
        drain, clock, channel, _transport, sockets = self._tracked(recorder)
        channel.dataReceived(_closing(b"POST", b"/p", b"Content-Length: 3\r\n"))
        done = drain.drain(10)
        self.assertNoResult(done)
        channel.dataReceived(b"abc")
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([b"abc"], _bodies(sockets.received()))
        # The stop sees the closes at its next look.
        clock.advance(_tap._CLOSE_POLL_SECONDS)
        self.successResultOf(done)
        self.assertEqual([], clock.getDelayedCalls())
        self.assertEqual(0, drain.in_flight())

    def test_stop_waits_for_buffered_closing_response(self) -> None:
        """The stop waits for a closing request's buffered response to be written."""
        recorder = Recorder()
        drain, clock, channel, transport, sockets = self._tracked(recorder)
        channel.dataReceived(_get(b"/a", _CLOSE))
        done = drain.drain(10)
        recorder.exchanges[0].respond(b"r" * 200)
        self.assertIs(ChannelState.CLOSING, channel.state)
        clock.advance(0)
        self.assertNoResult(done)
        self.assertEqual([b"r" * 200], _bodies(_flush(transport, sockets)))
        clock.advance(1)
        self.successResultOf(done)


class TwistdSiteTests(SynchronousTestCase):
    """The Site channels ``twistd txhttp`` builds, next to `use_txhttp`'s."""

    def _site_channel(
        self,
    ) -> tuple[HTTPChannel, _RecordingSends, _Sockets]:
        """A channel of ``twistd txhttp --path``'s Site on a recording transport."""
        folder = self.mktemp()
        os.mkdir(folder)
        with open(os.path.join(folder, "a.txt"), "wb") as f:
            f.write(b"file body")
        clock = MemoryReactorClock()
        options = _tap.Options()
        options.parseOptions(["--path", folder])
        factory, _log = _tap.make_factory(options, clock, Drain(clock))
        channel = cast(
            HTTPChannel, factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        )
        sockets = _Sockets(self)
        transport = _Addressed(sockets.ours, channel, MemoryReactorClock())
        transport.sends = []
        transport.writes = []
        transport.connected = 1
        channel.makeConnection(transport)
        return channel, transport, sockets

    def test_site_channel_closes_on_turn(self) -> None:
        """As with `use_txhttp`, a closing response waits for the transport's turn."""
        channel, transport, sockets = self._site_channel()
        self.assertTrue(channel.batch_writes)
        channel.dataReceived(_get(b"/a.txt", _CLOSE))
        self.assertEqual([], transport.sends)
        self.assertTrue(transport.disconnecting)
        self.assertEqual([b"file body"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)

    def test_site_channel_closing_response_whole(self) -> None:
        """Whatever path it takes, twistd's Site answers a closing request whole."""
        channel, transport, sockets = self._site_channel()
        channel.dataReceived(_get(b"/a.txt", _CLOSE))
        self.assertEqual([b"file body"], _bodies(_flush(transport, sockets)))
        self.assertIs(ChannelState.CLOSED, channel.state)
        self.assertEqual([], cast(Clock, channel.clock).getDelayedCalls())


def _loopback_handler(
    request: NativeRequest, response: NativeResponse
) -> Deferred[None] | None:
    """``/big``: 2 MiB; ``/later``: answered on the next turn; else the target."""
    target = request.target
    if target == b"/big":
        response.finish(b"z" * (2 << 20))
        return None
    if target.startswith(b"/later"):
        return task.deferLater(cast(IReactorTime, reactor), 0, response.finish, target)
    response.finish(target)
    return None


def _send_in_pieces(port: int, pieces: list[bytes], half_close: bool = False) -> bytes:
    """Send each piece in its own ``send`` (then shut our side if asked); read all."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in pieces:
            sock.sendall(piece)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received.append(chunk)
        return b"".join(received)


class CloseNowLoopbackTests(TestCase):
    """The native server closing at once, over real sockets on 127.0.0.1."""

    timeout = 30

    def _serve(self) -> tuple[HTTPServerFactory, list[HTTPChannel], int]:
        """Listen with a tracking factory; return it, its channels and the port."""
        return serve_tracked(self, _loopback_handler)

    @inlineCallbacks
    def test_big_closing_response(self) -> Any:
        """A 2 MiB closing response answered in its receive arrives whole."""
        factory, channels, port = self._serve()
        received = yield deferToThread(
            raw_exchange, port, _get(b"/big", _CLOSE), lambda got: False
        )
        self.assertEqual([b"z" * (2 << 20)], _bodies(received))
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED], [c.state for c in channels])
        self.assertEqual(0, factory.timers.pending)

    @inlineCallbacks
    def test_pipeline_in_pieces(self) -> Any:
        """A pipeline sent in odd pieces, its last request closing: whole, in order."""
        factory, channels, port = self._serve()
        targets = [b"/later%d" % n if n % 3 == 1 else b"/%d" % n for n in range(9)]
        data = b"".join(_get(t) for t in targets) + _get(b"/last", _CLOSE)
        pieces = [data[i : i + 37] for i in range(0, len(data), 37)]
        received = yield deferToThread(_send_in_pieces, port, pieces)
        self.assertEqual([*targets, b"/last"], _bodies(received))
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED], [c.state for c in channels])
        self.assertEqual(0, factory.timers.pending)

    @inlineCallbacks
    def test_http10_and_head(self) -> Any:
        """HTTP/1.0 and HEAD-with-close connections end whole, every channel closed."""
        factory, channels, port = self._serve()
        plain = yield deferToThread(
            raw_exchange, port, b"GET /old HTTP/1.0\r\n\r\n", lambda got: False
        )
        self.assertEqual([b"/old"], _bodies(plain))
        head = yield deferToThread(
            raw_exchange,
            port,
            b"HEAD /h HTTP/1.1\r\nHost: a\r\n" + _CLOSE + b"\r\n",
            lambda got: False,
        )
        (response,) = parse_responses(head, (b"HEAD",))
        self.assertEqual(b"2", response.header(b"content-length"))
        self.assertTrue(head.endswith(b"\r\n\r\n"))
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED] * 2, [c.state for c in channels])
        self.assertEqual(0, factory.timers.pending)

    @inlineCallbacks
    def test_many_at_once(self) -> Any:
        """Thirty closing connections at once, some half-closed: all whole, closed."""
        factory, channels, port = self._serve()
        requests = []
        for n in range(30):
            if n % 3 == 0:
                requests.append(b"GET /old%d HTTP/1.0\r\n\r\n" % n)
            else:
                requests.append(_get(b"/c%d" % n, _CLOSE))
        results = yield gatherResults(
            [
                deferToThread(_send_in_pieces, port, [request], n % 2 == 0)
                for n, request in enumerate(requests)
            ]
        )
        for request, received in zip(requests, results, strict=True):
            self.assertEqual([request.split(b" ")[1]], _bodies(received))
        yield wait_closed(channels)
        self.assertEqual([ChannelState.CLOSED] * 30, [c.state for c in channels])
        self.assertEqual(0, factory.timers.pending)


class LocalAddressLoopbackTests(TestCase):
    """What a handler can still ask of its request once a closing receive ends."""

    timeout = 30

    @inlineCallbacks
    def _local_on_next_turn(self, write_through: bool) -> Any:
        """Answer a closing request, read ``Request.local`` on the next turn."""
        seen: list[object] = []
        done: Deferred[None] = Deferred()

        def read_local(request: NativeRequest) -> None:
            try:
                seen.append(request.local)
            except (AttributeError, ConnectionDone) as error:
                seen.append(error)
            done.callback(None)

        def handler(request: NativeRequest, response: NativeResponse) -> None:
            response.finish(b"bye")
            cast(IReactorTime, reactor).callLater(0, read_local, request)

        factory = HTTPServerFactory(handler, clock=cast(IReactorTime, reactor))
        factory.protocol.write_through = write_through
        port = cast(IReactorTCP, reactor).listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number = cast(IPv4Address, port.getHost()).port
        received = yield deferToThread(
            raw_exchange, number, _get(b"/a", _CLOSE), lambda got: False
        )
        self.assertEqual([b"bye"], _bodies(received))
        yield done
        self.assertEqual(1, len(seen))
        # Closed at the end of the receive: gone. Closed on the transport's
        # turn: still there on the next one.
        self.assertIsInstance(seen[0], ConnectionDone if write_through else IPv4Address)

    def test_local_address_on_next_turn_buffered(self) -> Any:
        """With write-through off, ``Request.local`` works on the next turn."""
        return self._local_on_next_turn(False)

    def test_local_address_on_next_turn(self) -> Any:
        """``Request.local`` read on the turn after a closed-at-once answer raises."""
        return self._local_on_next_turn(True)


class _PausedUpload:
    """
    An exchange that pauses its request's body, answers part of a response
    at once, and abandons it when told (``abandon``).
    """

    def __init__(self, slot: ResponseSlot) -> None:
        self.slot = slot

    def start(self) -> None:
        """Pause the body; send the head and a first piece."""
        self.slot.pause_body()
        self.slot.write_head(200, b"OK", [])
        self.slot.write_body(b"partial")

    def abandon(self) -> None:
        """Give up on the response (the connection then lingers)."""
        self.slot.abort()

    def body_received(self, data: bytes) -> None:
        """Ignored."""

    def body_complete(self, trailers: Fields) -> None:
        """Ignored."""

    def response_sent(self) -> None:
        """Ignored."""

    def connection_lost(self, reason: Failure) -> None:
        """Ignored."""


class LingerOverflowLoopbackTests(TestCase):
    """Lingering input past its limit on the reactor's turn that half-closes."""

    timeout = 30

    def _upload_then_abandon(self, port: int, abandon: Any) -> bytes:
        """
        (In a thread.) Send a head announcing a big body, wait for the first
        piece of the answer, send 256 KiB of body (held in the kernel: the
        server paused reading), have the server abandon its response, then
        read until the server closes.
        """
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n"
            )
            received = b""
            while not received.endswith(b"partial\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            sock.sendall(b"u" * (256 * 1024))
            reactor.callFromThread(abandon)  # type: ignore[attr-defined]  # the global reactor
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
            return received

    def test_overflow_when_half_close_pending(self) -> Any:
        """Linger overflow under a pending half-close: no traceback is logged."""
        return self._overflow(True)

    def test_overflow_when_half_close_pending_buffered(self) -> Any:
        """The same with write-through off: closed, no traceback logged."""
        return self._overflow(False)

    @inlineCallbacks
    def _overflow(self, write_through: bool) -> Any:
        """Abandon a response with its upload held; check the end."""
        exchanges: list[_PausedUpload] = []
        channels: list[HTTPChannel] = []

        def exchange_factory(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> _PausedUpload:
            exchange = _PausedUpload(slot)
            exchanges.append(exchange)
            return exchange

        def build(addr: Any) -> HTTPChannel:
            channel = HTTPChannel(clock=cast(IReactorTime, reactor))
            channel.exchangeFactory = exchange_factory
            channel.max_linger_bytes = 1000
            channel.write_through = write_through
            channels.append(channel)
            return channel

        factory = ServerFactory()
        factory.buildProtocol = build  # type: ignore[method-assign]  # builds the channels
        port = cast(IReactorTCP, reactor).listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        number = cast(IPv4Address, port.getHost()).port

        def abandon() -> None:
            exchanges[0].abandon()  # (Made once the head arrived.)

        received = yield deferToThread(self._upload_then_abandon, number, abandon)
        self.assertTrue(received.startswith(b"HTTP/1.1 200 OK\r\n"))
        for _ in range(300):
            if all(c.state is ChannelState.CLOSED for c in channels):
                break
            yield task.deferLater(reactor, 0.01, lambda: None)  # loopback
        self.assertEqual([ChannelState.CLOSED], [c.state for c in channels])
        self.assertEqual([], self.flushLoggedErrors(AttributeError))
