"""
Tests for `txhttp.server._web`: twisted.web's Request driven by a slot.

These are deterministic: a real ``twisted.web.server.Site`` and real
resources, but the response slot is a small recording fake (`FakeSlot`), so
every byte the bridge writes and every persistence decision is visible. The
loopback tests (``test_server_loopback``) run the same code on real sockets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IAddress, IProducer, IPushProducer
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from txhttp._wire import (
    HTTP_1_0,
    HTTP_1_1,
    BodyKind,
    Fields,
    Framing,
    RequestHead,
)
from txhttp.server._channel import HTTPChannel
from txhttp.server._web import (
    WebExchange,
    WebState,
    site_exchange_factory,
    use_txhttp,
)

PEER = IPv4Address("TCP", "127.0.0.1", 50000)
HOST = IPv4Address("TCP", "127.0.0.1", 8080)


class FakeSlot:
    """
    A recording `ResponseSlot`: keeps what is written, writes nothing.

    Attributes:
        written: Raw bytes written, in order.
        finished: The ``persistent`` flag given to ``finish_raw`` (or
            ``None`` before it is called).
        framed: The one framed response given to ``finish_with_body``.
        errors: Statuses given to ``write_error``.
    """

    def __init__(self, head: RequestHead, *, secure: bool = False) -> None:
        self.head = head
        self.written: list[bytes] = []
        self.finished: bool | None = None
        self.finish_count = 0
        self.framed: tuple[int, bytes, list[tuple[bytes, bytes]], bytes] | None = None
        self.body_wanted = False
        self.paused = False
        self.aborted = False
        self.errors: list[int] = []
        self.producer: IProducer | None = None
        self.streaming: bool | None = None
        self._secure = secure
        self.connected = True

    @property
    def peer(self) -> IAddress:
        return PEER

    @property
    def host(self) -> IAddress:
        return HOST

    @property
    def is_secure(self) -> bool:
        return self._secure

    def is_connected(self) -> bool:
        return self.connected

    def is_last_request(self) -> bool:
        return not self.head.keep_alive

    def is_fresh(self) -> bool:
        return not self.written and not self.finish_count

    def write_error(self, status: int) -> None:
        if not self.is_fresh():
            raise RuntimeError("write_error after output")
        self.errors.append(status)
        self.finish_count += 1

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.written.append(b"".join(data))

    def finish_raw(self, persistent: bool) -> None:
        self.finished = persistent
        self.finish_count += 1

    def write_head(
        self, status: int, reason: bytes, fields: Sequence[tuple[bytes, bytes]]
    ) -> None:
        raise AssertionError("the bridge writes raw responses only")

    def write_body(self, data: bytes) -> None:
        raise AssertionError("the bridge writes raw responses only")

    def finish(self, trailers: Fields = ()) -> None:
        raise AssertionError("the bridge writes raw responses only")

    def finish_with_body(
        self,
        status: int,
        reason: bytes,
        fields: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        self.framed = (status, reason, list(fields), body)
        self.finish_count += 1

    def want_body(self) -> None:
        self.body_wanted = True

    def pause_body(self) -> None:
        self.paused = True

    def resume_body(self) -> None:
        self.paused = False

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self) -> None:
        self.producer = None

    def abort(self) -> None:
        self.aborted = True

    def output(self) -> bytes:
        """Everything written so far."""
        return b"".join(self.written)


def make_channel() -> HTTPChannel:
    """An unconnected channel with a transport (all the bridge reads of it)."""
    channel = HTTPChannel()
    channel.transport = StringTransport()
    return channel


def make_head(
    method: bytes = b"GET",
    target: bytes = b"/",
    *,
    version: bytes = HTTP_1_1,
    fields: Sequence[tuple[bytes, bytes]] = ((b"Host", b"example.com"),),
    length: int | None = None,
    chunked: bool = False,
    keep_alive: bool | None = None,
    expect_continue: bool = False,
) -> RequestHead:
    """Build a parsed request head as the wire core would."""
    if chunked:
        framing = Framing(BodyKind.CHUNKED)
    elif length is not None:
        framing = Framing(BodyKind.LENGTH, length)
    else:
        framing = Framing(BodyKind.NONE)
    if keep_alive is None:
        keep_alive = version == HTTP_1_1
    host = next((v for n, v in fields if n.lower() == b"host"), None)
    return RequestHead(
        method=method,
        target=target,
        version=version,
        fields=list(fields),
        framing=framing,
        keep_alive=keep_alive,
        expect_continue=expect_continue,
        host=host,
    )


class Leaf(Resource):
    """Answers GET and POST with a fixed body, or what a test asks."""

    isLeaf = True

    def __init__(self, body: bytes = b"hello") -> None:
        super().__init__()
        self.body = body
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> bytes:
        self.requests.append(request)
        return self.body

    def render_POST(self, request: Request) -> bytes:
        self.requests.append(request)
        assert request.content is not None
        return b"got " + bytes(request.content.read())


class Later(Resource):
    """Returns NOT_DONE_YET; the test writes and finishes the request."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> int:
        self.requests.append(request)
        return NOT_DONE_YET


def run(
    site: Site, head: RequestHead, body: Sequence[bytes] = (), *, secure: bool = False
) -> tuple[WebExchange, FakeSlot]:
    """Drive one request through the bridge: head, body pieces, end."""
    slot = FakeSlot(head, secure=secure)
    exchange = WebExchange(site, make_channel(), head, slot)
    exchange.start()
    for piece in body:
        exchange.body_received(piece)
    exchange.body_complete(())
    return exchange, slot


def split_response(data: bytes) -> tuple[bytes, dict[bytes, list[bytes]], bytes]:
    """Split raw response bytes into status line, fields (lowercased) and body."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    fields: dict[bytes, list[bytes]] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        fields.setdefault(name.lower(), []).append(value.strip())
    return status, fields, body


class WebExchangeResponseTests(SynchronousTestCase):
    """The bytes a twisted.web Request writes through the bridge."""

    def test_simple_get(self) -> None:
        """A rendered body goes out with its length, and the connection stays."""
        site = Site(Leaf(b"hello"))
        exchange, slot = run(site, make_head())
        status, fields, body = split_response(slot.output())
        self.assertEqual(b"HTTP/1.1 200 OK", status)
        self.assertEqual([b"5"], fields[b"content-length"])
        self.assertNotIn(b"connection", fields)
        self.assertEqual(b"hello", body)
        self.assertIs(True, slot.finished)
        self.assertIs(WebState.FINISHED, exchange.state)

    def test_head_and_first_body_bytes_leave_together(self) -> None:
        """The serialized head is held until the first body write joins it."""
        site = Site(Leaf(b"hello"))
        _, slot = run(site, make_head())
        self.assertEqual(1, len(slot.written))

    def test_head_request_has_no_body(self) -> None:
        """A HEAD response is a head only, and keeps the connection."""
        site = Site(Leaf(b"hello"))
        _, slot = run(site, make_head(b"HEAD"))
        status, _fields, body = split_response(slot.output())
        self.assertEqual(b"HTTP/1.1 200 OK", status)
        self.assertEqual(b"", body)
        self.assertIs(True, slot.finished)

    def test_streamed_response_is_chunked(self) -> None:
        """Without a length an HTTP/1.1 response is chunked and persistent."""
        resource = Later()
        _exchange, slot = run(Site(resource), make_head())
        request = resource.requests[0]
        request.write(b"abc")
        request.write(b"defg")
        self.assertIsNone(slot.finished)
        request.finish()
        _status, fields, body = split_response(slot.output())
        self.assertEqual([b"chunked"], fields[b"transfer-encoding"])
        self.assertEqual(b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", body)
        self.assertIs(True, slot.finished)

    def test_not_done_yet_without_body_writes(self) -> None:
        """A request finished later with no body still sends its head."""
        resource = Later()
        _, slot = run(Site(resource), make_head())
        self.assertEqual(b"", slot.output())
        resource.requests[0].finish()
        status, _fields, body = split_response(slot.output())
        self.assertEqual(b"HTTP/1.1 200 OK", status)
        self.assertEqual(b"0\r\n\r\n", body)
        self.assertIs(True, slot.finished)

    def test_client_asked_to_close(self) -> None:
        """A request without keep-alive gets ``Connection: close``."""
        site = Site(Leaf())
        _, slot = run(
            site,
            make_head(
                fields=[(b"Host", b"a"), (b"Connection", b"close")], keep_alive=False
            ),
        )
        _, fields, _ = split_response(slot.output())
        self.assertEqual([b"close"], fields[b"connection"])
        self.assertIs(False, slot.finished)

    def test_http10_keep_alive_with_length(self) -> None:
        """HTTP/1.0 keep-alive with a known length persists and says so."""
        site = Site(Leaf(b"hi"))
        _, slot = run(
            site,
            make_head(
                version=HTTP_1_0,
                fields=[(b"Connection", b"keep-alive")],
                keep_alive=True,
            ),
        )
        status, fields, body = split_response(slot.output())
        self.assertEqual(b"HTTP/1.1 200 OK", status)
        self.assertEqual([b"keep-alive"], fields[b"connection"])
        self.assertEqual(b"hi", body)
        self.assertIs(True, slot.finished)

    def test_http10_without_length_closes(self) -> None:
        """An HTTP/1.0 response with no length is delimited by the close."""
        resource = Later()
        _, slot = run(
            Site(resource),
            make_head(
                version=HTTP_1_0,
                fields=[(b"Connection", b"keep-alive")],
                keep_alive=True,
            ),
        )
        request = resource.requests[0]
        request.write(b"streamed")
        request.finish()
        _, fields, body = split_response(slot.output())
        self.assertEqual([b"close"], fields[b"connection"])
        self.assertNotIn(b"transfer-encoding", fields)
        self.assertEqual(b"streamed", body)
        self.assertIs(False, slot.finished)

    def test_resource_sets_connection_close(self) -> None:
        """A resource's own ``Connection: close`` ends the connection."""

        class Closing(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> bytes:
                request.setHeader(b"connection", b"close")
                return b"bye"

        _, slot = run(Site(Closing()), make_head())
        _, fields, _ = split_response(slot.output())
        self.assertEqual([b"close"], fields[b"connection"])
        self.assertIs(False, slot.finished)

    def test_injected_reason_phrase_refused(self) -> None:
        """A reason phrase with CRLF never reaches the wire: 500 and close."""

        class Injecting(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> bytes:
                request.setResponseCode(200, b"OK\r\nSet-Cookie: evil=1")
                return b"x"

        with capturedLogs() as events:
            _, slot = run(Site(Injecting()), make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(b"", slot.output())
        self.assertEqual(1, slot.finish_count)
        self.assertTrue(
            any(e.get("log_namespace") == "txhttp.server.web" for e in events)
        )

    def test_control_character_in_value_refused(self) -> None:
        """A NUL in a header value is refused with a 500 and a close."""

        class Nul(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> bytes:
                request.setHeader(b"x-thing", b"a\x00b")
                return b"x"

        with capturedLogs():
            _, slot = run(Site(Nul()), make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(b"", slot.output())

    def test_writes_after_refusal_dropped(self) -> None:
        """After a refused head, later body writes are not sent."""

        class Injecting(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> int:
                request.setResponseCode(200, b"OK\nX: y")
                request.write(b"first")
                request.write(b"second")
                request.finish()
                return NOT_DONE_YET

        _, slot = run(Site(Injecting()), make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(b"", slot.output())
        self.assertEqual(1, slot.finish_count)


class WebExchangeRequestTests(SynchronousTestCase):
    """What the twisted.web Request sees of the parsed request."""

    def test_head_copied(self) -> None:
        """Method, URI, path, args, version and headers reach the request."""
        resource = Leaf()
        head = make_head(
            target=b"/a/b?x=1&x=2",
            fields=[(b"Host", b"example.com"), (b"X-Dup", b"1"), (b"X-Dup", b"2")],
        )
        run(Site(resource), head)
        request = resource.requests[0]
        self.assertEqual(b"GET", request.method)
        self.assertEqual(b"/a/b?x=1&x=2", request.uri)
        self.assertEqual(b"/a/b", request.path)
        self.assertEqual({b"x": [b"1", b"2"]}, request.args)
        self.assertEqual(b"HTTP/1.1", request.clientproto)
        self.assertEqual([b"1", b"2"], request.requestHeaders.getRawHeaders(b"x-dup"))
        self.assertEqual(b"example.com", request.getRequestHostname())

    def test_cookies_parsed(self) -> None:
        """Cookies are parsed as twisted.web's channel does."""
        resource = Leaf()
        run(Site(resource), make_head(fields=[(b"Cookie", b"a=1; b=2")]))
        self.assertEqual(
            {b"a": b"1", b"b": b"2"}, resource.requests[0].received_cookies
        )

    def test_body_delivered(self) -> None:
        """A body fed in pieces is the request's content when it is rendered."""
        resource = Leaf()
        head = make_head(b"POST", length=11)
        _, slot = run(Site(resource), head, [b"hello", b" world"])
        _, _, body = split_response(slot.output())
        self.assertEqual(b"got hello world", body)
        self.assertTrue(slot.body_wanted)

    def test_chunked_body_delivered(self) -> None:
        """A chunked request body (no length known) reaches the request."""
        resource = Leaf()
        _, slot = run(Site(resource), make_head(b"POST", chunked=True), [b"a", b"b"])
        self.assertEqual(b"got ab", split_response(slot.output())[2])

    def test_form_arguments(self) -> None:
        """A urlencoded POST body is parsed into ``args``."""
        resource = Leaf()
        body = b"k=v&k=w"
        head = make_head(
            b"POST",
            length=len(body),
            fields=[(b"Content-Type", b"application/x-www-form-urlencoded")],
        )
        run(Site(resource), head, [body])
        self.assertEqual({b"k": [b"v", b"w"]}, resource.requests[0].args)

    def test_bad_multipart_answers_400(self) -> None:
        """A broken multipart body gets 400 and a close, not a render."""
        resource = Leaf()
        body = b"--nonsense"
        head = make_head(
            b"POST",
            length=len(body),
            fields=[(b"Content-Type", b"multipart/form-data; boundary=")],
        )
        exchange, slot = run(Site(resource), head, [body])
        self.assertEqual([], resource.requests)
        self.assertEqual([400], slot.errors)
        self.assertIs(WebState.FINISHED, exchange.state)

    def test_expect_continue_wants_body(self) -> None:
        """The bridge always reads the body, so 100-continue is granted."""
        slot = FakeSlot(make_head(b"POST", length=3, expect_continue=True))
        exchange = WebExchange(Site(Leaf()), make_channel(), slot.head, slot)
        exchange.start()
        self.assertTrue(slot.body_wanted)

    def test_addresses_and_security(self) -> None:
        """Peer, host and TLS come from the slot."""
        resource = Later()
        run(Site(resource), make_head(), secure=True)
        request = resource.requests[0]
        self.assertEqual(PEER, request.getClientAddress())
        self.assertEqual(HOST, request.getHost())
        self.assertTrue(request.isSecure())

    def test_request_sees_site(self) -> None:
        """The request's channel offers the Site, as twisted.web's does."""
        resource = Later()
        site = Site(resource)
        run(site, make_head())
        request = resource.requests[0]
        self.assertIs(site, request.site)
        # The request's channel is the per-request bridge, not HTTPChannel.
        self.assertIs(site, cast(WebExchange, request.channel).site)

    def test_request_factory_failure(self) -> None:
        """A request factory that raises gets the client a 500 and a close."""

        class Broken(Request):
            def __init__(self, channel: object) -> None:
                raise ValueError("no")

        site = Site(Leaf(), requestFactory=Broken)
        _exchange, slot = run(site, make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(1, len(self.flushLoggedErrors(ValueError)))


class UseTxhttpTests(SynchronousTestCase):
    """`use_txhttp` and `site_exchange_factory`."""

    def test_returns_the_site(self) -> None:
        """use_txhttp changes the Site in place and returns it."""
        site = Site(Leaf())
        self.assertIs(site, use_txhttp(site))

    def test_site_builds_txhttp_channels(self) -> None:
        """The Site then builds HTTPChannel connections wired to itself."""
        site = use_txhttp(Site(Leaf(), timeout=7))
        channel = site.buildProtocol(PEER)
        self.assertIsInstance(channel, HTTPChannel)
        assert isinstance(channel, HTTPChannel)
        self.assertIs(site.reactor, channel.clock)
        self.assertEqual(7, channel.timeOut)
        self.assertIs(site, channel.factory)
        self.assertIsNotNone(channel.exchangeFactory)

    def test_exchange_factory_builds_bridges(self) -> None:
        """site_exchange_factory builds a WebExchange for each request."""
        site = Site(Leaf())
        head = make_head()
        exchange = site_exchange_factory(site)(make_channel(), head, FakeSlot(head))
        self.assertIsInstance(exchange, WebExchange)


class WebExchangeLifecycleTests(SynchronousTestCase):
    """Finishing, disconnection, producers and closing."""

    def test_notify_finish_on_success(self) -> None:
        """notifyFinish fires once the request finishes."""
        resource = Later()
        run(Site(resource), make_head())
        request = resource.requests[0]
        finished = request.notifyFinish()
        self.assertNoResult(finished)
        request.finish()
        self.assertIsNone(self.successResultOf(finished))

    def test_connection_lost_before_finish(self) -> None:
        """A client that goes away fails notifyFinish; late writes are no-ops."""
        resource = Later()
        exchange, slot = run(Site(resource), make_head())
        request = resource.requests[0]
        finished = request.notifyFinish()
        exchange.connection_lost(Failure(ConnectionError("gone")))
        self.failureResultOf(finished, ConnectionError)
        request.write(b"late")
        self.assertEqual(b"", slot.output())
        self.assertIs(WebState.LOST, exchange.state)
        self.assertIsNone(slot.finished)

    def test_connection_lost_after_finish_ignored(self) -> None:
        """Losing the connection after finish changes nothing."""
        resource = Leaf()
        exchange, _slot = run(Site(resource), make_head())
        exchange.connection_lost(Failure(ConnectionError("gone")))
        self.assertIs(WebState.FINISHED, exchange.state)

    def test_connection_lost_during_body(self) -> None:
        """A body cut short tells the request, which is never rendered."""
        resource = Leaf()
        site = Site(resource)
        slot = FakeSlot(make_head(b"POST", length=10))
        exchange = WebExchange(site, make_channel(), slot.head, slot)
        exchange.start()
        exchange.body_received(b"abc")
        exchange.connection_lost(Failure(ConnectionError("cut")))
        exchange.body_complete(())
        self.assertEqual([], resource.requests)
        self.assertIs(WebState.LOST, exchange.state)

    def test_producer_forwarded(self) -> None:
        """registerProducer and unregisterProducer reach the slot."""

        @implementer(IPushProducer)
        class Producer:
            def pauseProducing(self) -> None:
                pass

            def resumeProducing(self) -> None:
                pass

            def stopProducing(self) -> None:
                pass

        resource = Later()
        _, slot = run(Site(resource), make_head())
        request = resource.requests[0]
        producer = Producer()
        request.registerProducer(producer, True)
        self.assertIs(producer, slot.producer)
        self.assertIs(True, slot.streaming)
        request.unregisterProducer()
        self.assertIsNone(slot.producer)

    def test_lose_connection_aborts_slot(self) -> None:
        """Request.loseConnection closes through the slot, in turn."""
        resource = Later()
        _, slot = run(Site(resource), make_head())
        resource.requests[0].loseConnection()
        self.assertTrue(slot.aborted)

    def test_access_log_through_site(self) -> None:
        """Request.finish logs through the Site, as on twisted.web's channel."""
        logged: list[http.Request] = []

        class LoggingSite(Site):
            def log(self, request: http.Request) -> None:
                logged.append(request)

        resource = Leaf()
        run(LoggingSite(resource), make_head())
        self.assertEqual(resource.requests, logged)

    def test_transport_offered(self) -> None:
        """``request.transport`` is the connection's transport."""
        resource = Leaf()
        site = Site(resource)
        channel = make_channel()
        slot = FakeSlot(make_head())
        exchange = WebExchange(site, channel, slot.head, slot)
        exchange.start()
        exchange.body_complete(())
        self.assertIs(channel.transport, resource.requests[0].transport)


class _Framing(Resource):
    """Answers with the framing fields a test picks through ``mode``."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.mode = "length"

    def render_GET(self, request: Request) -> bytes | int:
        headers = request.responseHeaders
        if self.mode == "length":
            return b"hello"
        if self.mode == "length6":
            return b"hello!"
        if self.mode == "chunked":
            request.write(b"x")
            request.finish()
            return NOT_DONE_YET
        if self.mode == "both":
            headers.setRawHeaders(b"content-length", [b"5"])
            headers.setRawHeaders(b"transfer-encoding", [b"chunked"])
            return b"hello"
        # Written by hand: a rendered body would make twisted.web replace
        # Content-Length with the real length.
        headers.setRawHeaders(b"content-length", [b"5", b"6"])
        request.write(b"hello")
        request.finish()
        return NOT_DONE_YET


class WebHeadCacheTests(SynchronousTestCase):
    """Heads made of pieces seen before still get the framing checks."""

    def warm(self, resource: _Framing) -> None:
        for mode in ("length", "length6", "chunked"):
            resource.mode = mode
            _, slot = run(Site(resource), make_head())
            self.assertEqual([], slot.errors)
            self.assertTrue(slot.output().startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_known_pieces_joined_as_the_serializer_would(self) -> None:
        """A head of cached pieces is byte-for-byte what the first one was."""
        resource = _Framing()
        self.warm(resource)
        resource.mode = "length"
        _, first = run(Site(resource), make_head())
        _, second = run(Site(resource), make_head())
        strip = [
            line
            for line in first.output().split(b"\r\n")
            if not line.startswith(b"Date:")
        ]
        again = [
            line
            for line in second.output().split(b"\r\n")
            if not line.startswith(b"Date:")
        ]
        self.assertEqual(strip, again)

    def test_length_and_chunked_refused_after_both_were_seen(self) -> None:
        """Content-Length with Transfer-Encoding is refused even when cached."""
        resource = _Framing()
        self.warm(resource)
        resource.mode = "both"
        with capturedLogs():
            _, slot = run(Site(resource), make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(b"", slot.output())

    def test_two_lengths_refused_after_both_were_seen(self) -> None:
        """Two different Content-Length values are refused even when cached."""
        resource = _Framing()
        self.warm(resource)
        resource.mode = "two"
        with capturedLogs():
            _, slot = run(Site(resource), make_head())
        self.assertEqual([500], slot.errors)
        self.assertEqual(b"", slot.output())
