# -*- test-case-name: txhttp.test.test_server_native -*-
"""
Tests for the native request/response API and `HTTPServerFactory`.
"""

from __future__ import annotations

import gc

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import LocalProtocolError
from txhttp.server import HTTPChannel, HTTPServerFactory, Request, Response
from txhttp.server._channel import DEFAULT_MAX_PIPELINE
from txhttp.test._server_helpers import is_closing, make_native, parse_responses

GET = b"GET /p/a?x=1&x=2&y= HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n"


class RequestTests(SynchronousTestCase):
    """What a handler sees."""

    def test_attributes(self) -> None:
        """Method, target, path, query, headers and host come from the head."""
        seen: list[Request] = []

        def handler(request: Request, response: Response) -> bytes:
            seen.append(request)
            return b"ok"

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        [request] = seen
        self.assertEqual((request.method, request.path), (b"GET", b"/p/a"))
        self.assertEqual(request.query[b"x"], [b"1", b"2"])
        self.assertEqual(request.query[b"y"], [b""])
        self.assertEqual(request.headers.get(b"X-A"), b"1")
        self.assertEqual(request.headers.get_all(b"x-A"), [b"1", b"2"])
        self.assertEqual(request.host, b"h")
        self.assertFalse(request.is_secure)
        self.assertEqual(request.peer, transport.getPeer())
        self.assertEqual(parse_responses(transport.value())[0].body, b"ok")

    def test_read_whole_body(self) -> None:
        """read() returns the whole body, whatever its framing."""

        def handler(request: Request, response: Response) -> Deferred[None]:
            return request.read().addCallback(response.finish)

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
        )
        self.assertEqual(parse_responses(transport.value())[0].body, b"abc")

    def test_async_iteration(self) -> None:
        """An async def handler can iterate the body and return bytes."""

        async def handler(request: Request, response: Response) -> bytes:
            parts = [data async for data in request.iter_body()]
            return b"|".join(parts)

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab"
        )
        channel.dataReceived(b"cd")
        self.assertEqual(parse_responses(transport.value())[0].body, b"ab|cd")

    def test_slow_reader_pauses_socket(self) -> None:
        """Unread body over the high-water mark pauses the transport."""
        requests: list[Request] = []

        def handler(request: Request, response: Response) -> None:
            requests.append(request)

        channel, transport, _clock = make_native(handler)
        size = 200 * 1024
        channel.dataReceived(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % size
        )
        channel.dataReceived(b"x" * (100 * 1024))
        self.assertEqual(transport.producerState, "paused")
        got = self.successResultOf(requests[0].read_chunk())
        while len(got) < 100 * 1024:
            got += self.successResultOf(requests[0].read_chunk())
        self.assertEqual(transport.producerState, "producing")


class ResponseTests(SynchronousTestCase):
    """What a handler writes."""

    def test_streaming_chunked_with_trailers(self) -> None:
        """write() without a length chunks; finish() sends trailers."""

        def handler(request: Request, response: Response) -> None:
            response.write(b"ab")
            response.write(b"cd")
            response.finish(trailers=[(b"X-Done", b"yes")])

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        [response] = parse_responses(transport.value())
        self.assertEqual(
            (response.body, list(response.trailers)), (b"abcd", [(b"X-Done", b"yes")])
        )

    def test_content_length_enforced(self) -> None:
        """Writing more than the Content-Length set raises LocalProtocolError."""
        errors: list[Exception] = []

        def handler(request: Request, response: Response) -> None:
            response.set_header(b"Content-Length", b"2")
            response.write(b"ab")
            try:
                response.write(b"c")
            except LocalProtocolError as e:
                errors.append(e)
            response.finish()

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        self.assertEqual(len(errors), 1)
        self.assertEqual(parse_responses(transport.value())[0].body, b"ab")

    def test_exception_gives_500(self) -> None:
        """A handler exception answers 500 and is logged."""

        def handler(request: Request, response: Response) -> None:
            1 / 0

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        self.assertEqual(parse_responses(transport.value())[0].status, 500)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_async_exception_after_write(self) -> None:
        """A failure after the head was written cuts the response and closes."""
        waiting: Deferred[None] = Deferred()

        async def handler(request: Request, response: Response) -> None:
            response.write(b"partial")
            await waiting
            raise ValueError("boom")

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        waiting.callback(None)
        self.assertTrue(is_closing(transport))
        self.assertEqual(parse_responses(transport.value()), [])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_write_after_disconnect_is_noop(self) -> None:
        """After the client left, writes do nothing and when_done fires False."""
        responses: list[Response] = []

        def handler(request: Request, response: Response) -> None:
            responses.append(response)

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        done = responses[0].when_done()
        channel.connectionLost()
        responses[0].write(b"late")
        responses[0].write(b"later")
        responses[0].finish()
        self.assertIs(self.successResultOf(done), False)
        self.assertEqual(transport.value(), b"")

    def test_when_done_true(self) -> None:
        """when_done fires True once the response was handed to the transport."""
        responses: list[Response] = []

        def handler(request: Request, response: Response) -> None:
            responses.append(response)

        channel, _transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        done = responses[0].when_done()
        self.assertNoResult(done)
        responses[0].finish(b"x")
        self.assertIs(self.successResultOf(done), True)

    def test_deferred_result_finishes(self) -> None:
        """A Deferred firing None finishes a response the handler left open."""
        waiting: Deferred[None] = Deferred()

        def handler(request: Request, response: Response) -> Deferred[None]:
            response.status = 201
            return waiting

        channel, transport, _clock = make_native(handler)
        channel.dataReceived(GET)
        self.assertEqual(transport.value(), b"")
        waiting.callback(None)
        self.assertEqual(parse_responses(transport.value())[0].status, 201)


class FactoryTests(SynchronousTestCase):
    """HTTPServerFactory settings."""

    def test_settings_applied(self) -> None:
        """The factory's settings reach each channel."""
        factory = HTTPServerFactory(
            lambda request, response: None,
            idle_timeout=5.0,
            max_pipeline=2,
            server_header=b"x",
        )
        channel = factory.buildProtocol(None)
        self.assertEqual(
            (channel.timeOut, channel.maxPipeline, channel.server_header),
            (5.0, 2, b"x"),
        )

    def test_settings_shared_not_copied(self) -> None:
        """Settings live on the factory's channel class, not in each channel."""
        factory = HTTPServerFactory(
            lambda request, response: None,
            clock=Clock(),
            idle_timeout=7.0,
            max_pipeline=3,
            max_body_bytes=10,
        )
        self.assertEqual(
            (factory.protocol.timeOut, factory.protocol.maxPipeline), (7.0, 3)
        )
        channel = factory.buildProtocol(None)
        self.assertIsInstance(channel, HTTPChannel)
        self.assertIs(channel.factory, factory)
        self.assertFalse(
            {"timeOut", "maxPipeline", "max_body_bytes", "exchangeFactory"}
            & set(vars(channel))
        )
        # The base class keeps its defaults.
        self.assertEqual(HTTPChannel.maxPipeline, DEFAULT_MAX_PIPELINE)
        self.assertIsNone(HTTPChannel.exchangeFactory)

    def test_idle_channel_holds_only_twisted_attributes(self) -> None:
        """A connected channel's instance dict holds only what Twisted sets."""
        channel, _transport, _clock = make_native(lambda request, response: None)
        twisted_keys = {
            "factory",
            "transport",
            "connected",
            "timeOut",
            "_TimeoutMixin__timeoutCall",
        }
        self.assertLessEqual(set(vars(channel)), twisted_keys)
        channel.dataReceived(GET)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertLessEqual(set(vars(channel)), twisted_keys)

    def test_finished_requests_leave_no_cycles(self) -> None:
        """Answered requests are freed by reference counting, not the cyclic GC."""

        def hello(request: Request, response: Response) -> None:
            response.headers.append((b"Content-Type", b"text/plain"))
            response.finish(b"hi")

        was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            channel, transport, _clock = make_native(hello)
            channel.dataReceived(GET * 3)
            channel.dataReceived(GET.replace(b"X-A: 1", b"Connection: close"))
            channel.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(len(parse_responses(transport.value())), 4)
            del channel, transport
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            kinds = {type(thing).__name__ for thing in gc.garbage}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            if was_enabled:
                gc.enable()
        self.assertFalse(
            {"ChannelSlot", "NativeExchange", "Request", "Response"} & kinds
        )

    def test_rejects_bad_pipeline(self) -> None:
        """max_pipeline below 1 is refused."""
        self.assertRaises(
            ValueError, HTTPServerFactory, lambda r, s: None, max_pipeline=0
        )
