"""
Tests for `txhttp.server._web`: twisted.web's Request driven by a slot.

These are deterministic: a real ``twisted.web.server.Site`` and real
resources, but the response slot is a small recording fake (`FakeSlot`), so
every byte the bridge writes and every persistence decision is visible. The
loopback tests (``test_server_loopback``) run the same code on real sockets.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress, IProducer, IPushProducer
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http
from twisted.web.error import UnsupportedMethod
from twisted.web.http_headers import Headers as StockHeaders
from twisted.web.resource import EncodingResourceWrapper, Resource
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
        """A resource's own ``Connection: close`` ends the connection.

        The second time, the head is joined from remembered field lines: the
        close is still obeyed.
        """

        class Closing(Resource):
            isLeaf = True

            def render_GET(self, request: Request) -> bytes:
                request.setHeader(b"connection", b"close")
                return b"bye"

        for _ in range(2):
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


# -- WebRequest: the stock Request's cheaper twin -----------------------------

_FROZEN_DATE = b"Sat, 21 Nov 2026 03:00:00 GMT"


def _frozen_date(when: float | None = None) -> bytes:
    return _FROZEN_DATE


class _LogFile:
    """A Site log file that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, data: str) -> None:
        self.lines.append(data)

    def close(self) -> None:
        pass


class _Recorder:
    """
    The channel a twisted.web Request talks to, recording every call.

    Both request classes are driven through one of these, so their calls
    can be compared one for one.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self.factory = site
        self.transport = StringTransport()
        self.calls: list[tuple[object, ...]] = []

    def getPeer(self) -> IAddress:
        return PEER

    def getHost(self) -> IAddress:
        return HOST

    def isSecure(self) -> bool:
        return False

    def writeHeaders(
        self, version: bytes, code: bytes, reason: bytes, headers: object
    ) -> None:
        assert isinstance(headers, StockHeaders)
        fields = [(name, list(values)) for name, values in headers.getAllRawHeaders()]
        self.calls.append(("head", version, code, reason, fields))

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.calls.append(("sequence", tuple(data)))

    def requestDone(self, request: object) -> None:
        self.calls.append(("done",))

    def registerProducer(self, producer: object, streaming: bool) -> None:
        self.calls.append(("producer", streaming))

    def unregisterProducer(self) -> None:
        self.calls.append(("unproducer",))

    def loseConnection(self) -> None:
        self.calls.append(("lose",))

    def _respondToBadRequestAndDisconnect(self) -> None:
        self.calls.append(("bad",))


_COMPARED = (
    "method",
    "uri",
    "path",
    "clientproto",
    "args",
    "prepath",
    "postpath",
    "code",
    "code_message",
    "sentLength",
    "chunked",
    "finished",
    "startedWriting",
    "received_cookies",
    "cookies",
    "etag",
    "lastModified",
)


class _Scenario(Resource):
    """A resource doing whatever the scenario function does with a request."""

    isLeaf = True

    def __init__(self, scenario: Callable[[Request], object]) -> None:
        super().__init__()
        self.scenario = scenario
        self.requests: list[Request] = []

    def render(self, request: Request) -> object:
        self.requests.append(request)
        return self.scenario(request)


def _get_only(body: bytes, early: bytes = b"") -> Callable[[Request], object]:
    """A scenario that renders GET only (HEAD is faked by twisted.web)."""

    def render(request: Request) -> object:
        if request.method != b"GET":
            raise UnsupportedMethod([b"GET"])
        if early:
            request.write(early)
        return body

    return render


class WebRequestEquivalenceTests(SynchronousTestCase):
    """WebRequest does what twisted.web.server.Request does, call for call."""

    def setUp(self) -> None:
        from twisted.web import server

        self.patch(server, "datetimeToString", _frozen_date)

    def drive(
        self,
        factory: type[Request],
        resource: Resource,
        *,
        method: bytes = b"GET",
        target: bytes = b"/",
        version: bytes = b"HTTP/1.1",
        fields: Sequence[tuple[bytes, bytes]] = ((b"Host", b"example.com"),),
        body: bytes = b"",
        after: Callable[[Request], object] | None = None,
    ) -> tuple[list[tuple[object, ...]], dict[str, object], list[str], Request]:
        site = Site(resource)
        site.logFile = _LogFile()
        site._logDateTime = "[21/Nov/2026:03:00:00 +0000]"
        recorder = _Recorder(site)
        request = factory(recorder)
        for name, value in fields:
            request.requestHeaders.addRawHeader(name, value)
        request.parseCookies()
        request.gotLength(len(body))
        if body:
            request.handleContentChunk(body)
        request.requestReceived(method, target, version)
        if after is not None:
            after(request)
        state = {name: getattr(request, name, None) for name in _COMPARED}
        state["responseHeaders"] = list(request.responseHeaders.getAllRawHeaders())
        log = cast(_LogFile, site._logFile)
        return recorder.calls, state, log.lines, request

    def assertSame(
        self,
        scenario: Callable[[Request], object],
        after: Callable[[Request], object] | None = None,
        **kwargs: object,
    ) -> list[tuple[object, ...]]:
        """Run ``scenario`` on both classes; their effects must be equal."""
        from txhttp.server._web_request import WebRequest

        stock = self.drive(Request, _Scenario(scenario), after=after, **kwargs)  # type: ignore[arg-type]
        ours = self.drive(WebRequest, _Scenario(scenario), after=after, **kwargs)  # type: ignore[arg-type]
        self.assertIsInstance(ours[3], WebRequest)
        self.assertEqual(stock[0], ours[0])
        self.assertEqual(stock[1], ours[1])
        self.assertEqual(stock[2], ours[2])
        return ours[0]

    def test_body_returned(self) -> None:
        """A returned body: same head, body, log line and request state."""
        calls = self.assertSame(lambda request: b"hello")
        self.assertEqual(("write", b"hello"), calls[1])

    def test_query_and_quoted_path(self) -> None:
        """Arguments and unquoted path segments are the same."""
        self.assertSame(lambda request: b"x", target=b"/a%2Fb/c%20d/e?x=1&x=2&y=")

    def test_head_faked_from_get(self) -> None:
        """HEAD on a GET-only resource: headers with the length, no body."""
        calls = self.assertSame(_get_only(b"hello"), method=b"HEAD")
        self.assertEqual(["head", "done"], [call[0] for call in calls])
        self.assertIn([b"5"], [values for _, values in cast(Any, calls[0])[4]])

    def test_streamed_chunked_then_finished(self) -> None:
        """NOT_DONE_YET, two writes and finish: chunked, identically."""

        def later(request: Request) -> None:
            request.write(b"abc")
            request.write(b"")
            request.write(b"defg")
            request.finish()

        self.assertSame(lambda request: NOT_DONE_YET, after=later)
        self.assertSame(lambda request: NOT_DONE_YET, after=later, version=b"HTTP/1.0")

    def test_no_body_statuses(self) -> None:
        """204 and 304 send a head only; later writes are dropped."""
        for code in (204, 304):

            def answer(request: Request, code: int = code) -> object:
                request.setResponseCode(code)
                request.write(b"dropped")
                request.write(b"dropped too")
                request.finish()
                return NOT_DONE_YET

            self.assertSame(answer)

    def test_zero_length_has_no_default_type(self) -> None:
        """``Content-Length: 0`` set by hand: no default Content-Type."""

        def empty(request: Request) -> bytes:
            request.setHeader(b"Content-Length", b"0")
            request.write(b"")
            request.finish()
            return NOT_DONE_YET  # type: ignore[return-value]

        self.assertSame(empty)

    def test_modified_etag_cookies(self) -> None:
        """Last-Modified, ETag and cookies become the same fields."""

        def decorated(request: Request) -> bytes:
            request.setLastModified(1_000_000)
            request.setETag(b'"v1"')
            request.addCookie(b"a", b"b", path=b"/", httpOnly=True)
            return b"body"

        self.assertSame(decorated)

    def test_last_modified_field_wins(self) -> None:
        """A Last-Modified field set by hand is kept over the attribute."""

        def both(request: Request) -> bytes:
            request.lastModified = 1_000_000
            request.setHeader(b"Last-Modified", b"yesterday")
            return b"body"

        with capturedLogs():
            self.assertSame(both)

    def test_gzip_encoder(self) -> None:
        """An encoding resource compresses the same way (chunked)."""
        from twisted.web.server import GzipEncoderFactory

        site_resource = EncodingResourceWrapper(
            Leaf(b"x" * 500), [GzipEncoderFactory()]
        )
        stock = self.drive(
            Request, site_resource, fields=[(b"Accept-Encoding", b"gzip")]
        )
        from txhttp.server._web_request import WebRequest

        ours = self.drive(
            WebRequest, site_resource, fields=[(b"Accept-Encoding", b"gzip")]
        )
        self.assertEqual(stock[0], ours[0])
        self.assertEqual(stock[1], ours[1])
        self.assertEqual(stock[2], ours[2])

    def test_gzip_streamed(self) -> None:
        """An encoder over several later writes compresses the same way."""
        from twisted.web.server import GzipEncoderFactory

        from txhttp.server._web_request import WebRequest

        def later(request: Request) -> None:
            request.write(b"a" * 300)
            request.write(b"b" * 300)
            request.finish()

        wrapped = EncodingResourceWrapper(
            _Scenario(lambda request: NOT_DONE_YET), [GzipEncoderFactory()]
        )
        fields = [(b"Accept-Encoding", b"gzip")]
        stock = self.drive(Request, wrapped, fields=fields, after=later)
        ours = self.drive(WebRequest, wrapped, fields=fields, after=later)
        self.assertEqual(stock[:3], ours[:3])

    def test_lost_while_streaming(self) -> None:
        """Writes after the connection was lost are dropped the same way."""

        def later(request: Request) -> None:
            request.write(b"first")
            request.connectionLost(Failure(Exception("gone")))
            request.write(b"dropped")

        self.assertSame(lambda request: NOT_DONE_YET, after=later)

    def test_lost_before_writing(self) -> None:
        """A first write after the connection was lost sends nothing."""

        def later(request: Request) -> None:
            request.connectionLost(Failure(Exception("gone")))
            request.write(b"dropped")

        self.assertSame(lambda request: NOT_DONE_YET, after=later)

    def test_writes_while_faking_head(self) -> None:
        """A GET-only resource writing during a faked HEAD: same effects."""
        with capturedLogs():
            calls = self.assertSame(_get_only(b"rest", b"early"), method=b"HEAD")
        self.assertEqual(["head", "done"], [call[0] for call in calls])

    def test_rendering_failure(self) -> None:
        """An exception while rendering gives the same 500 page."""

        def broken(request: Request) -> bytes:
            raise ZeroDivisionError("boom")

        with capturedLogs():
            calls = self.assertSame(broken)
        self.assertEqual(b"500", calls[0][2])
        self.flushLoggedErrors(ZeroDivisionError)

    def test_not_bytes(self) -> None:
        """A resource returning something else gives the same error page.

        The page shows the request's repr: its class name and address are
        the only difference.
        """
        from txhttp.server._web_request import WebRequest

        leaf = _Scenario(lambda request: "text")
        stock = self.drive(Request, leaf)
        ours = self.drive(WebRequest, leaf)

        def page(calls: list[tuple[object, ...]]) -> bytes:
            data = cast(bytes, calls[1][1])
            return re.sub(rb"&lt;\w*Request at 0x[0-9a-f]+", b"REQUEST", data)

        self.assertEqual(page(stock[0]), page(ours[0]))
        self.assertEqual(stock[0][2:], ours[0][2:])
        self.assertEqual(stock[1]["code"], ours[1]["code"])

    def test_unsupported_method(self) -> None:
        """A method the resource lacks gives the same 405 with Allow."""
        leaf = Leaf()
        self.assertSame(lambda request: Leaf.render(leaf, request), method=b"PUT")

    def test_star(self) -> None:
        """``OPTIONS *`` and ``GET *`` are answered the same way."""
        self.assertSame(lambda request: b"never", method=b"OPTIONS", target=b"*")
        self.assertSame(lambda request: b"never", method=b"GET", target=b"*")

    def test_post_form(self) -> None:
        """A form POST fills ``args`` the same way."""
        self.assertSame(
            lambda request: b"ok",
            method=b"POST",
            fields=[(b"Content-Type", b"application/x-www-form-urlencoded")],
            body=b"a=1&b=2",
        )

    def test_cookies_and_referrer_logged(self) -> None:
        """Cookies, a referrer and an agent with quotes: same state and log."""
        self.assertSame(
            lambda request: b"ok",
            fields=[
                (b"Cookie", b"a=1; b=2"),
                (b"Referer", b"http://x/'q'"),
                (b"User-Agent", b'say "hi"\\'),
            ],
        )

    def test_finish_twice_warns(self) -> None:
        """A second finish warns and does nothing, as the base class does."""
        from txhttp.server._web_request import WebRequest

        _, _, _, request = self.drive(WebRequest, Leaf())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            request.finish()
        self.assertEqual(
            ["Warning! request.finish called twice."],
            [str(warning.message) for warning in caught],
        )

    def test_write_after_finish_raises(self) -> None:
        """Writing after finish raises, as the base class does."""
        from txhttp.server._web_request import WebRequest

        _, _, _, request = self.drive(WebRequest, Later())
        request.finish()
        self.assertRaises(RuntimeError, request.write, b"late")

    def test_finish_after_lost_raises(self) -> None:
        """finish after the connection was lost raises RuntimeError."""
        from txhttp.server._web_request import WebRequest

        _, _, _, request = self.drive(WebRequest, Later())
        request.connectionLost(Failure(Exception("gone")))
        self.assertRaises(RuntimeError, request.finish)
        request.write(b"ignored")  # Dropped silently, as the base class does.

    def test_same_attributes(self) -> None:
        """A new WebRequest has the attributes a new stock Request has."""
        from txhttp.server._web_request import WebRequest

        site = Site(Leaf())
        stock = Request(_Recorder(site))
        ours = WebRequest(_Recorder(site))
        self.assertEqual(sorted(vars(stock)), sorted(vars(ours)))
        for name, value in vars(stock).items():
            if name in ("channel", "transport", "notifications"):
                continue
            self.assertEqual(value, getattr(ours, name), name)


_names = st.sampled_from(
    [
        b"Content-Type",
        b"content-type",
        "Content-Type",
        b"X-Thing",
        "x-thing",
        b"Set-Cookie",
        b"bad name",
        "bad\x00",
        b"ETag",
        b"etag",
        b"Te",
    ]
)
_values = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=8),
    st.sampled_from([b"a\r\nb", b"a\nb\r", b"\r\n", b"plain", b"", "x\ny"]),
)
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _names, st.lists(_values, max_size=3)),
        st.tuples(st.just("add"), _names, _values),
        st.tuples(st.just("get"), _names, st.none()),
        st.tuples(st.just("has"), _names, st.none()),
        st.tuples(st.just("remove"), _names, st.none()),
    ),
    max_size=12,
)


def _apply(
    headers: StockHeaders, operations: list[tuple[str, Any, Any]]
) -> list[object]:
    """Run ``operations`` on ``headers``; return every result or error type."""
    results: list[object] = []
    for operation, name, argument in operations:
        try:
            if operation == "set":
                headers.setRawHeaders(name, argument)
                results.append(None)
            elif operation == "add":
                headers.addRawHeader(name, argument)
                results.append(None)
            elif operation == "get":
                results.append(headers.getRawHeaders(name, "default"))
            elif operation == "has":
                results.append(headers.hasHeader(name))
            else:
                headers.removeHeader(name)
                results.append(None)
        except Exception as error:  # Compared with the stock class, not hidden.
            results.append(type(error))
    results.append(list(headers.getAllRawHeaders()))
    return results


class WebRequestArgumentsTests(SynchronousTestCase):
    """WebRequest built with the base class's optional arguments."""

    def test_arguments_passed_on(self) -> None:
        """Keyword arguments take the base class's own initialiser."""
        from txhttp.server._web_request import Headers, WebRequest

        request = WebRequest(_Recorder(Site(Leaf())), parsePOSTFormSubmission=False)
        self.assertFalse(request._parsePOSTFormSubmission)
        self.assertEqual(PEER, request.getClientAddress())
        self.assertIsInstance(request.requestHeaders, Headers)


class BoundedCacheTests(SynchronousTestCase):
    """Every memo of the bridge and WebRequest stays within its bound."""

    def test_field_lines(self) -> None:
        """Remembered field lines never exceed MAX_FIELD_LINES."""
        from txhttp.server import _web

        self.patch(_web, "MAX_FIELD_LINES", 4)

        class Many(Resource):
            isLeaf = True
            count = 0

            def render_GET(self, request: Request) -> bytes:
                Many.count += 1
                request.setHeader(b"X-Count", b"%d" % Many.count)
                return b"x"

        for _ in range(10):
            _, slot = run(Site(Many()), make_head())
            self.assertEqual([], slot.errors)
            self.assertLessEqual(len(_web._FIELD_LINES), 4)

    def test_status_lines(self) -> None:
        """Remembered status lines never exceed MAX_CODE_LINES."""
        from txhttp.server import _web

        self.patch(_web, "MAX_CODE_LINES", 2)
        for code in range(200, 206):

            def answer(request: Request, code: int = code) -> bytes:
                request.setResponseCode(code, b"Fine")
                return b""

            _, slot = run(Site(_Scenario(answer)), make_head())
            self.assertTrue(slot.output().startswith(b"HTTP/1.1 %d Fine" % code))
            self.assertLessEqual(len(_web._CODE_LINES), 2)

    def test_log_texts(self) -> None:
        """Remembered log fields never exceed MAX_LOG_TEXT_CACHE."""
        from txhttp.server import _web_request

        self.patch(_web_request, "MAX_LOG_TEXT_CACHE", 3)
        for index in range(10):
            _web_request._log_text(b"/path/%d" % index)
            self.assertLessEqual(len(_web_request._log_texts), 3)
        self.assertEqual("x" * 300, _web_request._log_text(b"x" * 300))
        self.assertNotIn(b"x" * 300, _web_request._log_texts)

    def test_canonical_names(self) -> None:
        """Remembered header names never exceed MAX_CANONICAL_NAMES."""
        from txhttp.server import _web_request

        self.patch(_web_request, "MAX_CANONICAL_NAMES", 3)
        headers = _web_request.Headers()
        for index in range(10):
            headers.setRawHeaders(b"x-name-%d" % index, [b"v"])
            self.assertLessEqual(len(_web_request._canonical), 3)
        self.assertEqual([b"v"], headers.getRawHeaders(b"X-Name-0"))


class WriteHeadersTests(SynchronousTestCase):
    """writeHeaders also takes a plain list of fields (twisted.web allows it)."""

    def test_field_list(self) -> None:
        """A list of (name, value) pairs is serialized like Headers."""
        resource = Later()
        exchange, slot = run(Site(resource), make_head())
        exchange.writeHeaders(
            b"HTTP/1.1", b"200", b"OK", [(b"Content-Length", b"2"), (b"X-A", b"b")]
        )
        exchange.write(b"hi")
        status, fields, body = split_response(slot.output())
        self.assertEqual(b"HTTP/1.1 200 OK", status)
        self.assertEqual([b"b"], fields[b"x-a"])
        self.assertEqual(b"hi", body)


class WebHeadersTests(SynchronousTestCase):
    """The Headers WebRequest uses behave as twisted.web's own."""

    @given(operations=_operations)
    def test_same_results(self, operations: list[tuple[str, Any, Any]]) -> None:
        """Any sequence of calls gives the same results, errors and fields."""
        from txhttp.server._web_request import Headers

        self.assertEqual(
            _apply(StockHeaders(), operations), _apply(Headers(), operations)
        )

    def test_layout_checked(self) -> None:
        """The fast Headers is used only after checking Twisted's layout."""
        from txhttp.server import _web_request

        self.assertTrue(_web_request._stock_layout())
        self.assertTrue(_web_request._FAST_HEADERS)
        request = _web_request.WebRequest(_Recorder(Site(Leaf())))
        self.assertIsInstance(request.requestHeaders, _web_request.Headers)
        self.assertIsInstance(request.responseHeaders, _web_request.Headers)

    def test_copy_and_equality(self) -> None:
        """Copies and comparisons work across both classes."""
        from txhttp.server._web_request import Headers

        ours = Headers()
        ours.setRawHeaders(b"x-a", [b"1"])
        stock = StockHeaders({b"X-A": [b"1"]})
        self.assertEqual(stock, ours)
        self.assertEqual(ours, ours.copy())
        self.assertIsInstance(ours.copy(), Headers)


_log_bytes = st.one_of(
    st.binary(max_size=16),
    st.sampled_from([b"GET", b"HTTP/1.1", b"it's", b'say "x"', b"a\\b", b"-", b""]),
)


class CombinedLogLineTests(SynchronousTestCase):
    """The access log line is twisted.web's, character for character."""

    def request(
        self,
        client: IAddress,
        fields: dict[bytes, list[bytes]],
        factory: type[Request] = Request,
        **attributes: object,
    ) -> Request:
        request = factory(_Recorder(Site(Leaf())))
        request.client = client
        for field, values in fields.items():
            request.requestHeaders.setRawHeaders(field, values)
        for attribute, value in attributes.items():
            setattr(request, attribute, value)
        return request

    @given(
        method=_log_bytes,
        uri=_log_bytes,
        version=_log_bytes,
        referrers=st.lists(_log_bytes, max_size=2),
        agents=st.lists(_log_bytes, max_size=2),
        client=st.sampled_from(
            [PEER, IPv6Address("TCP", "::1", 1), UNIXAddress(b"/tmp/sock")]
        ),
        code=st.sampled_from([200, 404, 500]),
        length=st.sampled_from([0, 14, 123456]),
        timestamp=st.sampled_from(["[21/Nov/2026:03:00:00 +0000]", None]),
        ours=st.booleans(),
    )
    def test_same_line(
        self,
        *,
        method: bytes,
        uri: bytes,
        version: bytes,
        referrers: list[bytes],
        agents: list[bytes],
        client: IAddress,
        code: int,
        length: int,
        timestamp: str | None,
        ours: bool,
    ) -> None:
        """Any request, stock or WebRequest, gives combinedLogFormatter's line."""
        from txhttp.server._web_request import WebRequest, combined_log_line

        fields = {}
        if referrers:
            fields[b"Referer"] = referrers
        if agents:
            fields[b"User-Agent"] = agents
        request = self.request(
            client,
            fields,
            WebRequest if ours else Request,
            method=method,
            uri=uri,
            clientproto=version,
            code=code,
            sentLength=length,
        )
        self.assertEqual(
            http.combinedLogFormatter(timestamp, request),
            combined_log_line(timestamp, request),
        )

    def test_other_types_use_twisted(self) -> None:
        """A field that is not bytes is formatted by twisted.web itself."""
        from txhttp.server._web_request import combined_log_line

        request = self.request(PEER, {}, method="GET", uri=b"/", clientproto=b"x")
        self.assertEqual(
            http.combinedLogFormatter("t", request), combined_log_line("t", request)
        )


class LogRequestTests(SynchronousTestCase):
    """log_request takes the short way only for twisted.web's own log."""

    def finished(self, site: Site) -> Request:
        request = Request(_Recorder(site))
        request.method, request.uri, request.clientproto = b"GET", b"/", b"HTTP/1.1"
        return request

    def test_stock_site(self) -> None:
        """A plain Site gets the combined line in its log file."""
        from txhttp.server._web_request import log_request

        site = Site(Leaf())
        site.logFile = log = _LogFile()
        site._logDateTime = "[now]"
        request = self.finished(site)
        log_request(site, request)
        self.assertEqual(
            [http.combinedLogFormatter("[now]", request) + "\n"], log.lines
        )

    def test_no_log_file(self) -> None:
        """A Site that was never started logs nothing, as its log would."""
        from txhttp.server._web_request import log_request

        site = Site(Leaf())
        log_request(site, self.finished(site))  # No file: no error either.

    def test_custom_formatter(self) -> None:
        """A Site with its own formatter is logged through Site.log."""
        from txhttp.server._web_request import log_request

        site = Site(Leaf(), logFormatter=lambda timestamp, request: "custom")
        site.logFile = log = _LogFile()
        log_request(site, self.finished(site))
        self.assertEqual(["custom\n"], log.lines)

    def test_overridden_log(self) -> None:
        """A Site subclass's own log method is called."""
        from txhttp.server._web_request import log_request

        seen: list[Request] = []

        class Logging(Site):
            def log(self, request: Request) -> None:  # type: ignore[override]
                seen.append(request)

        site = Logging(Leaf())
        request = self.finished(site)
        log_request(site, request)
        self.assertEqual([request], seen)

    def test_instance_log(self) -> None:
        """A log function set on the Site itself is called."""
        from txhttp.server._web_request import log_request

        seen: list[object] = []
        site = Site(Leaf())
        site.log = seen.append  # type: ignore[method-assign,assignment]
        request = self.finished(site)
        log_request(site, request)
        self.assertEqual([request], seen)

    def test_not_a_factory(self) -> None:
        """Any object with a log method is simply asked to log."""
        from txhttp.server._web_request import log_request

        seen: list[object] = []

        class Logger:
            def log(self, request: object) -> None:
                seen.append(request)

        request = self.finished(Site(Leaf()))
        log_request(Logger(), request)
        self.assertEqual([request], seen)


class HttpDateTests(SynchronousTestCase):
    """The Date value is made once a second, and equals twisted.web's."""

    def test_same_as_twisted(self) -> None:
        """The value is datetimeToString() of the current second."""
        from txhttp.server import _web_request

        self.patch(_web_request, "time", lambda: 1_000_000.75)
        self.assertEqual(http.datetimeToString(1_000_000), _web_request.http_date())

    def test_new_second_new_value(self) -> None:
        """A new second gives a new value; the same second the cached one."""
        from txhttp.server import _web_request

        now = [2_000_000.1]
        self.patch(_web_request, "time", lambda: now[0])
        first = _web_request.http_date()
        now[0] = 2_000_000.9
        self.assertIs(first, _web_request.http_date())
        now[0] = 2_000_001.0
        self.assertEqual(http.datetimeToString(2_000_001), _web_request.http_date())

    def test_replaced_function_honoured(self) -> None:
        """A replaced twisted.web.server.datetimeToString is called."""
        from twisted.web import server

        from txhttp.server import _web_request

        self.patch(server, "datetimeToString", _frozen_date)
        self.assertEqual(_FROZEN_DATE, _web_request.http_date())


class StockFactoryTests(SynchronousTestCase):
    """Which request class the bridge builds, and what it tells it."""

    def test_stock_factory_replaced(self) -> None:
        """A Site with twisted.web's Request gets WebRequest."""
        from txhttp.server._web_request import WebRequest

        leaf = Leaf()
        run(Site(leaf), make_head())
        self.assertIs(WebRequest, type(leaf.requests[0]))

    def test_own_factory_kept(self) -> None:
        """A Site with its own request class keeps it, told of cookies always."""
        told: list[bool] = []

        class Own(Request):
            def parseCookies(self) -> None:
                told.append(True)
                super().parseCookies()

        leaf = Leaf()
        run(Site(leaf, requestFactory=Own), make_head())
        self.assertIs(Own, type(leaf.requests[0]))
        self.assertEqual([True], told)

    def test_cookies_parsed_when_sent(self) -> None:
        """WebRequest gets its cookies, whatever the field's spelling."""
        leaf = Leaf()
        run(Site(leaf), make_head(fields=[(b"Host", b"a"), (b"cOOkie", b"k=v")]))
        self.assertEqual({b"k": b"v"}, leaf.requests[0].received_cookies)


class ConnectionAddressesTests(SynchronousTestCase):
    """A connection's addresses are asked for once, for all its requests."""

    def test_asked_once(self) -> None:
        """Two requests on one connection read the peer address once."""
        leaf = Leaf()
        site = use_txhttp(Site(leaf))
        channel = site.buildProtocol(PEER)
        assert channel is not None
        transport = StringTransport(peerAddress=PEER, hostAddress=HOST)
        asked: list[str] = []
        get_peer, get_host = transport.getPeer, transport.getHost

        def peer() -> IAddress:
            asked.append("peer")
            return cast(IAddress, get_peer())

        def host() -> IAddress:
            asked.append("host")
            return cast(IAddress, get_host())

        transport.getPeer = peer  # type: ignore[method-assign]
        transport.getHost = host  # type: ignore[method-assign]
        channel.makeConnection(transport)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2)
        self.assertEqual(2, len(leaf.requests))
        self.assertEqual(["peer", "host"], asked)
        self.assertEqual(PEER, leaf.requests[1].getClientAddress())
        self.assertEqual(HOST, leaf.requests[1].getHost())
        channel.connectionLost(Failure(Exception("done")))


class FieldLineCacheTests(SynchronousTestCase):
    """Remembered field lines keep every framing check."""

    def test_new_value_validated(self) -> None:
        """A new value next to remembered ones still goes through the wire core."""

        class Header(Resource):
            isLeaf = True
            value = b"fine"

            def render_GET(self, request: Request) -> bytes:
                request.setHeader(b"X-Value", self.value)
                return b"x"

        resource = Header()
        _, slot = run(Site(resource), make_head())
        self.assertEqual([], slot.errors)
        resource.value = b"bad\x00value"
        with capturedLogs():
            _, slot = run(Site(resource), make_head())
        self.assertEqual([500], slot.errors)


class BodyFileTests(SynchronousTestCase):
    """The request's body file and the slot's body request."""

    def test_no_body_file_as_stock(self) -> None:
        """A request without a body gets the file the stock class opens."""
        from txhttp.server._web_request import WebRequest

        site = Site(Leaf())
        stock = Request(_Recorder(site))
        ours = WebRequest(_Recorder(site))
        stock.gotLength(0)
        ours.gotLength(0)
        self.assertIs(type(stock.content), type(ours.content))
        for length in (10, None):
            stock.gotLength(length)
            ours.gotLength(length)
            self.assertIs(type(stock.content), type(ours.content))

    def test_site_content_file(self) -> None:
        """A Site's getContentFile opens every request's body file."""
        from io import BytesIO

        from txhttp.server._web_request import WebRequest

        opened: list[int | None] = []

        class Files(Site):
            def getContentFile(self, length: int | None) -> BytesIO:
                opened.append(length)
                return BytesIO()

        request = WebRequest(_Recorder(Files(Leaf())))
        request.gotLength(0)
        request.gotLength(7)
        self.assertEqual([0, 7], opened)

    def test_no_body_not_wanted(self) -> None:
        """A request without a body does not ask the slot for one."""
        slot = FakeSlot(make_head())
        WebExchange(Site(Later()), make_channel(), slot.head, slot).start()
        self.assertFalse(slot.body_wanted)

    def test_body_wanted(self) -> None:
        """A request with a body, sized or chunked, asks for it."""
        for head in (make_head(b"POST", length=3), make_head(b"POST", chunked=True)):
            slot = FakeSlot(head)
            WebExchange(Site(Later()), make_channel(), head, slot).start()
            self.assertTrue(slot.body_wanted)
