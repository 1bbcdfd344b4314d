# -*- test-case-name: txhttp.test.test_testing -*-
"""
Tests for `txhttp.testing`: txhttp's client against its server, in memory.
"""

from __future__ import annotations

import json

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionAborted as TwistedConnectionAborted
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IConsumer, IHalfCloseableProtocol
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IBodyProducer, IResponse
from twisted.web.resource import Resource
from twisted.web.server import Request as WebRequest
from twisted.web.server import Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp.client import (
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    ConnectTarget,
    ResponseFailed,
    ResponseHeadTimeout,
)
from txhttp.server import HTTPServerFactory, Request, Response
from txhttp.testing import (
    MemoryHTTPServer,
    RecordingAgent,
    StubResponse,
    make_response,
    read_body,
)


def hello(request: Request, response: Response) -> None:
    """Answer ``hello <path>`` as text."""
    response.set_header(b"Content-Type", b"text/plain")
    response.finish(b"hello " + request.path)


def echo_json(request: Request, response: Response) -> Deferred[None]:
    """Answer the request's JSON body wrapped in ``{"got": ...}``."""

    def answer(body: bytes) -> None:
        response.set_header(b"Content-Type", b"application/json")
        response.finish(json.dumps({"got": json.loads(body)}).encode())

    return request.read().addCallback(answer)


class Greeting(Resource):
    """A twisted.web leaf resource answering GET."""

    isLeaf = True

    def render_GET(self, request: WebRequest) -> bytes:
        """Greet the requested path."""
        request.setHeader(b"content-type", b"text/plain")
        return b"web " + request.path


@implementer(IBodyProducer)
class BytesBody:
    """A body producer that writes its bytes at once."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Write everything."""
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""


@implementer(IHalfCloseableProtocol)
class RawClient(Protocol):
    """A client speaking bytes, recording what it receives and the closes."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.events: list[str] = []

    def dataReceived(self, data: bytes) -> None:
        """Keep the bytes."""
        self.received.append(data)

    def readConnectionLost(self) -> None:
        """Record the server's end of output."""
        self.events.append("read-lost")
        assert self.transport is not None
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """Record our own end of output."""
        self.events.append("write-lost")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Record the close."""
        self.events.append(f"lost:{type(reason.value).__name__}")


class MemoryHTTPServerTests(SynchronousTestCase):
    """`MemoryHTTPServer` joins txhttp's client and server in memory."""

    def get(self, server: MemoryHTTPServer, url: bytes) -> IResponse:
        d = server.agent().request(b"GET", url)
        server.flush()
        return self.successResultOf(d)

    def test_native_handler(self) -> None:
        """A native handler answers the agent's request."""
        server = MemoryHTTPServer(hello)
        response = self.get(server, b"http://example.test/a")
        self.assertEqual(200, response.code)
        self.assertEqual(
            [b"text/plain"], response.headers.getRawHeaders(b"content-type")
        )
        self.assertEqual(b"hello /a", read_body(response, server=server))

    def test_nothing_moves_before_flush(self) -> None:
        """The request waits until the test flushes."""
        server = MemoryHTTPServer(hello)
        d = server.agent().request(b"GET", b"http://example.test/")
        self.assertNoResult(d)
        self.assertTrue(server.flush())
        self.successResultOf(d)
        self.assertFalse(server.flush())

    def test_agent_provides_iagent(self) -> None:
        """`agent` returns one verified ``IAgent``, the same on every call."""
        server = MemoryHTTPServer(hello)
        self.assertTrue(verifyObject(IAgent, server.agent()))
        self.assertIs(server.agent(), server.agent())

    def test_resource(self) -> None:
        """A twisted.web Resource is served through ``use_txhttp``."""
        server = MemoryHTTPServer(Greeting())
        response = self.get(server, b"http://example.test/r")
        self.assertEqual(200, response.code)
        self.assertEqual(b"web /r", read_body(response, server=server))

    def test_site(self) -> None:
        """A Site built on a Clock is served, and its Clock is the server's."""
        clock = Clock()
        server = MemoryHTTPServer(Site(Greeting(), reactor=clock))
        self.assertIs(clock, server.clock)
        response = self.get(server, b"http://example.test/s")
        self.assertEqual(b"web /s", read_body(response, server=server))

    def test_site_on_real_reactor_refused(self) -> None:
        """A Site on the global reactor is refused: tests would use real time."""
        from twisted.internet import reactor

        with self.assertRaises(TypeError):
            MemoryHTTPServer(Site(Greeting(), reactor=reactor))

    def test_other_clock_refused(self) -> None:
        """A clock other than the factory's own is refused."""
        factory = HTTPServerFactory(hello, clock=Clock())
        with self.assertRaises(TypeError):
            MemoryHTTPServer(factory, clock=Clock())

    def test_not_an_app_refused(self) -> None:
        """Something that is not a handler, Resource or Site is refused."""
        with self.assertRaises(TypeError):
            MemoryHTTPServer(42)  # type: ignore[arg-type]  # the misuse tested

    def test_keep_alive_reuse(self) -> None:
        """Requests one after another share one pooled connection."""
        server = MemoryHTTPServer(hello)
        for path in (b"/1", b"/2", b"/3"):
            response = self.get(server, b"http://example.test" + path)
            self.assertEqual(b"hello " + path, read_body(response, server=server))
        self.assertEqual(1, server.connections_made)
        self.assertEqual(1, server.open_connections)

    def test_connection_close(self) -> None:
        """``Connection: close`` ends the connection after the response."""
        server = MemoryHTTPServer(hello)
        d = server.agent().request(
            b"GET", b"http://example.test/c", Headers({b"connection": [b"close"]})
        )
        server.flush()
        response = self.successResultOf(d)
        self.assertEqual(b"hello /c", read_body(response, server=server))
        self.assertEqual(0, server.open_connections)
        self.assertEqual(
            b"hello /n", read_body(self.get(server, b"http://t/n"), server=server)
        )
        self.assertEqual(2, server.connections_made)

    def test_raw_pipelining_and_half_close(self) -> None:
        """Pipelined requests are answered in order; half-closes travel both ways."""
        server = MemoryHTTPServer(hello)
        endpoint = server.endpoint_factory(ConnectTarget("http", "example.test", 80))
        d = endpoint.connect(Factory.forProtocol(RawClient))
        client = self.successResultOf(d)
        assert isinstance(client, RawClient) and client.transport is not None
        client.transport.write(
            b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        client.transport.loseWriteConnection()  # type: ignore[attr-defined]  # TCP
        server.flush()
        data = b"".join(client.received)
        self.assertLess(data.index(b"hello /1"), data.index(b"hello /2"))
        self.assertEqual(2, data.count(b"HTTP/1.1 200 OK\r\n"))
        # The server, seeing our end of input, answers and closes outright.
        self.assertEqual(["write-lost", "lost:ConnectionDone"], client.events)
        self.assertEqual(0, server.open_connections)

    def test_concurrent_then_reused(self) -> None:
        """Concurrent requests open connections that later requests reuse."""
        server = MemoryHTTPServer(hello)
        agent = server.agent()
        ds = [agent.request(b"GET", b"http://example.test/%d" % i) for i in range(3)]
        server.flush()
        bodies = [read_body(self.successResultOf(d), server=server) for d in ds]
        self.assertEqual([b"hello /0", b"hello /1", b"hello /2"], bodies)
        self.assertEqual(3, server.connections_made)
        response = self.get(server, b"http://example.test/again")
        self.assertEqual(b"hello /again", read_body(response, server=server))
        self.assertEqual(3, server.connections_made)

    def test_post_with_body(self) -> None:
        """A POST body reaches the handler whole."""
        server = MemoryHTTPServer(echo_json)
        d = server.agent().request(
            b"POST",
            b"http://example.test/echo",
            Headers({b"content-type": [b"application/json"]}),
            BytesBody(b'{"n": 1}'),
        )
        server.flush()
        body = read_body(self.successResultOf(d), server=server)
        self.assertEqual({"got": {"n": 1}}, json.loads(body))

    def test_http_client_json(self) -> None:
        """`client` sends JSON and parses the JSON answer, on the server's clock."""
        server = MemoryHTTPServer(echo_json)
        client = server.client()
        self.assertIs(server.clock, client.clock)
        d = client.post("http://example.test/echo", json={"a": [1, 2]})
        server.flush()
        response = self.successResultOf(d)
        self.assertEqual(200, response.code)
        parsed = response.json()
        server.flush()
        self.assertEqual({"got": {"a": [1, 2]}}, self.successResultOf(parsed))

    def test_handler_raising_gives_500(self) -> None:
        """A handler that raises before answering gives the client a 500."""

        def broken(request: Request, response: Response) -> None:
            raise ZeroDivisionError("handler bug")

        server = MemoryHTTPServer(broken)
        response = self.get(server, b"http://example.test/")
        self.assertEqual(500, response.code)
        read_body(response, server=server)
        self.assertEqual(1, len(self.flushLoggedErrors(ZeroDivisionError)))

    def test_handler_failing_mid_body(self) -> None:
        """A handler failing mid-body cuts the response: ResponseFailed."""
        failing: Deferred[None] = Deferred()

        def partial(request: Request, response: Response) -> Deferred[None]:
            response.set_header(b"Content-Length", b"10")
            response.write(b"12345")
            return failing

        server = MemoryHTTPServer(partial)
        response = self.get(server, b"http://example.test/")
        self.assertEqual(10, response.length)
        failing.errback(ZeroDivisionError("died half way"))
        with self.assertRaises(ResponseFailed):
            read_body(response, server=server)
        self.assertEqual(1, len(self.flushLoggedErrors(ZeroDivisionError)))
        self.assertEqual(0, server.open_connections)

    def test_drop_connections_mid_body(self) -> None:
        """The server dropping the connection mid-body gives ResponseFailed."""

        def partial(request: Request, response: Response) -> None:
            response.set_header(b"Content-Length", b"10")
            response.write(b"12345")

        server = MemoryHTTPServer(partial)
        response = self.get(server, b"http://example.test/")
        server.drop_connections()
        with self.assertRaises(ResponseFailed):
            read_body(response, server=server)
        self.assertEqual(0, server.open_connections)

    def test_refuse_connections(self) -> None:
        """While refusing, new connections fail with ConnectionRefusedError."""
        server = MemoryHTTPServer(hello)
        server.refuse_connections()
        d = server.agent().request(b"GET", b"http://example.test/")
        server.flush()
        self.failureResultOf(d, ConnectionRefusedError)
        server.refuse_connections(False)
        self.assertEqual(200, self.get(server, b"http://example.test/").code)

    def test_https_refused(self) -> None:
        """An https URL fails: the memory server speaks plain http only."""
        server = MemoryHTTPServer(hello)
        d = server.agent().request(b"GET", b"https://example.test/")
        server.flush()
        self.failureResultOf(d, ValueError)
        self.assertEqual(0, server.connections_made)

    def test_advance_runs_server_idle_timeout(self) -> None:
        """`advance` moves time: the server's idle timeout closes the connection."""
        clock = Clock()
        server = MemoryHTTPServer(HTTPServerFactory(hello, clock=clock, idle_timeout=5))
        read_body(self.get(server, b"http://example.test/"), server=server)
        self.assertEqual(1, server.open_connections)
        server.advance(4)
        self.assertEqual(1, server.open_connections)
        server.advance(1)
        self.assertEqual(0, server.open_connections)
        self.assertEqual(200, self.get(server, b"http://example.test/").code)
        self.assertEqual(2, server.connections_made)

    def test_advance_runs_client_timeouts(self) -> None:
        """The agent runs on the server's clock: its head timeout fires on advance."""

        def silent(request: Request, response: Response) -> Deferred[None]:
            return Deferred()

        server = MemoryHTTPServer(silent)
        d = server.agent().request(b"GET", b"http://example.test/")
        server.flush()
        server.advance(DEFAULT_RESPONSE_HEAD_TIMEOUT - 1)
        self.assertNoResult(d)
        server.advance(1)
        self.failureResultOf(d, ResponseHeadTimeout)


class StubResponseTests(SynchronousTestCase):
    """`StubResponse` and `make_response` build canned responses."""

    def test_make_response(self) -> None:
        """`make_response` builds a complete, verified ``IResponse``."""
        response = make_response(404, {"Content-Type": "text/plain"}, b"none")
        self.assertTrue(verifyObject(IResponse, response))
        self.assertEqual(
            (404, b"Not Found", 4), (response.code, response.phrase, response.length)
        )
        self.assertEqual(
            [b"text/plain"], response.headers.getRawHeaders(b"content-type")
        )
        self.assertEqual(b"none", read_body(response))

    def test_header_lists_and_bytes(self) -> None:
        """Header values may be lists, names and values bytes."""
        response = make_response(headers={b"set-cookie": [b"a=1", b"b=2"]})
        self.assertEqual(
            [b"a=1", b"b=2"], response.headers.getRawHeaders(b"set-cookie")
        )

    def test_unknown_code_phrase(self) -> None:
        """A code with no standard phrase gets ``Unknown``."""
        self.assertEqual(b"Unknown", StubResponse(599).phrase)

    def test_incremental_body(self) -> None:
        """An incomplete body is delivered as written, and ends with finish."""
        response = StubResponse(200, body=b"a", complete=False)
        self.assertIs(UNKNOWN_LENGTH, response.length)
        response.write(b"b")
        response.finish()
        self.assertEqual(b"ab", read_body(response))

    def test_pending_body(self) -> None:
        """`read_body` refuses a body that has not ended."""
        response = StubResponse(200, body=b"a", complete=False)
        with self.assertRaises(RuntimeError):
            read_body(response)

    def test_failed_body(self) -> None:
        """A body ended by `StubResponse.fail` raises that error in `read_body`."""
        response = StubResponse(200, complete=False)
        response.fail(ResponseFailed([]))
        with self.assertRaises(ResponseFailed):
            read_body(response)

    def test_pause_resume(self) -> None:
        """Chunks wait while the reader is paused."""
        received: list[bytes] = []

        class Pauser(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)
                assert self.transport is not None
                self.transport.pauseProducing()  # type: ignore[attr-defined]  # a push producer

        response = StubResponse(200, body=b"a", complete=False)
        reader = Pauser()
        response.deliverBody(reader)
        response.write(b"b")
        self.assertEqual([b"a"], received)
        reader.transport.resumeProducing()  # type: ignore[union-attr]  # a push producer
        self.assertEqual([b"a", b"b"], received)

    def test_deliver_twice(self) -> None:
        """``deliverBody`` may be called once."""
        response = make_response(body=b"x")
        read_body(response)
        with self.assertRaises(RuntimeError):
            read_body(response)

    def test_chunks_delivered_one_by_one(self) -> None:
        """A sequence body arrives one ``dataReceived`` per non-empty chunk."""
        received: list[bytes] = []

        class Grab(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        response = StubResponse(200, body=[b"ab", b"", b"c"])
        self.assertEqual(3, response.length)
        response.deliverBody(Grab())
        self.assertEqual([b"ab", b"c"], received)
        self.assertEqual(b"abc", read_body(make_response(body=[b"ab", b"c"])))

    def test_announced_length(self) -> None:
        """``length`` overrides the announced body length, complete or not."""
        self.assertEqual(1000, StubResponse(200, body=b"x", length=1000).length)
        self.assertEqual(
            7, StubResponse(200, body=b"x", complete=False, length=7).length
        )
        self.assertIs(UNKNOWN_LENGTH, StubResponse(200, complete=False).length)

    def test_header_mapping_variable(self) -> None:
        """A ``dict[str, str]`` held in a variable is accepted as headers."""
        fields: dict[str, str] = {"Content-Type": "text/event-stream"}
        self.assertEqual(
            [b"text/event-stream"],
            StubResponse(200, fields).headers.getRawHeaders(b"content-type"),
        )

    def test_reader_actions_observable(self) -> None:
        """`delivered`, `paused` and `stopped` follow what the reader does."""
        reasons: list[Failure] = []

        class Pauser(Protocol):
            def dataReceived(self, data: bytes) -> None:
                assert self.transport is not None
                self.transport.pauseProducing()  # type: ignore[attr-defined]  # a push producer

            def connectionLost(self, reason: Failure = connectionDone) -> None:
                reasons.append(reason)

        response = StubResponse(200, body=[b"a", b"b"], complete=False)
        self.assertEqual((False, False, False), _reader_state(response))
        reader = Pauser()
        response.deliverBody(reader)
        self.assertEqual((True, True, False), _reader_state(response))
        reader.transport.resumeProducing()  # type: ignore[union-attr]  # a push producer
        self.assertEqual((True, True, False), _reader_state(response))
        self.assertEqual([], reasons)
        reader.transport.stopProducing()  # type: ignore[union-attr]  # a push producer
        self.assertTrue(response.stopped)
        self.assertEqual(1, len(reasons))
        self.assertTrue(reasons[0].check(TwistedConnectionAborted))

    def test_resume_inside_data_received(self) -> None:
        """A reader resuming from ``dataReceived`` still gets chunks one at a time."""
        events: list[str] = []

        class Bouncer(Protocol):
            def dataReceived(self, data: bytes) -> None:
                events.append(f"start {data.decode()}")
                assert self.transport is not None
                self.transport.pauseProducing()  # type: ignore[attr-defined]  # a push producer
                self.transport.resumeProducing()  # type: ignore[attr-defined]  # a push producer
                events.append(f"end {data.decode()}")

            def connectionLost(self, reason: Failure = connectionDone) -> None:
                events.append("lost")

        response = StubResponse(200, body=[b"a", b"b"])
        response.deliverBody(Bouncer())
        self.assertEqual(["start a", "end a", "start b", "end b", "lost"], events)
        self.assertFalse(response.paused)


class RecordingAgentTests(SynchronousTestCase):
    """`RecordingAgent` records requests and answers with canned responses."""

    def test_provides_iagent(self) -> None:
        """It provides ``IAgent``."""
        self.assertTrue(verifyObject(IAgent, RecordingAgent()))

    def test_queue_and_record(self) -> None:
        """Queued answers go out in order; requests and bodies are recorded."""
        agent = RecordingAgent()
        agent.queue(make_response(201), ValueError("boom"))
        first = agent.request(
            b"POST",
            b"http://example.test/",
            Headers({b"x-a": [b"1"]}),
            BytesBody(b"payload"),
        )
        second = agent.request(b"GET", b"http://example.test/2")
        self.assertEqual(201, self.successResultOf(first).code)
        self.failureResultOf(second, ValueError)
        self.assertEqual(
            [(b"POST", b"payload", b"1"), (b"GET", b"", None)],
            [(r.method, r.body, r.header("x-a")) for r in agent.requests],
        )

    def test_responder_and_pending(self) -> None:
        """A responder answers; ``None`` leaves the request for the test."""
        agent = RecordingAgent(
            lambda r: make_response(204) if r.uri.endswith(b"/now") else None
        )
        self.assertEqual(
            204, self.successResultOf(agent.request(b"GET", b"http://t/now")).code
        )
        later = agent.request(b"GET", b"http://t/later")
        self.assertNoResult(later)
        agent.requests[-1].respond(make_response(200))
        self.assertEqual(200, self.successResultOf(later).code)

    def test_responder_replaceable(self) -> None:
        """`RecordingAgent.responder` may be set after construction."""
        agent = RecordingAgent()
        pending = agent.request(b"GET", b"http://t/a")
        agent.responder = lambda r: ConnectionRefusedError()
        self.failureResultOf(
            agent.request(b"GET", b"http://t/b"), ConnectionRefusedError
        )
        agent.responder = None
        self.assertNoResult(agent.request(b"GET", b"http://t/c"))
        self.assertNoResult(pending)
        self.assertEqual(3, len(agent.requests))

    def test_body_producer_recorded(self) -> None:
        """The body producer is kept, after it ran, beside the bytes it wrote."""
        agent = RecordingAgent()
        producer = BytesBody(b"payload")
        agent.request(b"POST", b"http://t/", None, producer)
        agent.request(b"GET", b"http://t/")
        with_body, without = agent.requests
        self.assertIs(producer, with_body.body_producer)
        self.assertEqual(b"payload", with_body.body)
        self.assertIsNone(without.body_producer)

    def test_cancel_recorded(self) -> None:
        """Cancelling a pending request is recorded."""
        agent = RecordingAgent()
        d = agent.request(b"GET", b"http://t/")
        d.cancel()
        self.failureResultOf(d)
        self.assertTrue(agent.requests[0].cancelled)

    def test_with_http_client(self) -> None:
        """`HTTPClient` over a RecordingAgent reads a canned JSON answer."""
        from txhttp.client import HTTPClient

        agent = RecordingAgent()
        agent.queue(
            make_response(200, {"content-type": "application/json"}, b'{"ok": true}')
        )
        client = HTTPClient(agent=agent, clock=Clock())
        response = self.successResultOf(client.get("http://example.test/api"))
        self.assertEqual({"ok": True}, self.successResultOf(response.json()))
        self.assertEqual(b"http://example.test/api", agent.requests[0].uri)


def _reader_state(response: StubResponse) -> tuple[bool, bool, bool]:
    """``(delivered, paused, stopped)`` of ``response``."""
    return (response.delivered, response.paused, response.stopped)
