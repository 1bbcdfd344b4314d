"""
Loopback tests: twisted.web Sites on txhttp's channel, over real sockets.

Every server listens on 127.0.0.1 on a port the system picks; clients are
Python's ``http.client`` (in a thread), raw TCP connections, and ``curl``
when it is installed. Each test is bounded by the class ``timeout`` and
waits, before it ends, until the server side of every connection is closed,
so the reactor is clean.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import struct
from collections.abc import Callable
from typing import Any, Final, cast

from twisted.internet import reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IReactorTCP
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import File
from twisted.web.wsgi import WSGIResource

from txhttp.server import ChannelState, HTTPChannel, use_txhttp

CURL = shutil.which("curl")

_LIVE: Final = (
    ChannelState.OPEN,
    ChannelState.DRAINING,
    ChannelState.LINGERING,
    ChannelState.CLOSING,
)


class TrackingSite(Site):
    """A Site that remembers its connections, to wait for them to close."""

    def __init__(self, resource: Any) -> None:
        super().__init__(resource)
        self.channels: list[HTTPChannel] = []

    def buildProtocol(self, addr: IAddress | None) -> Any:
        channel = super().buildProtocol(addr)
        self.channels.append(channel)
        return channel


class Pending(Resource):
    """Keeps requests open; the test finishes them."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.arrived: list[Deferred[Request]] = []

    def render_GET(self, request: Request) -> int:
        self.requests.append(request)
        if self.arrived:
            self.arrived.pop(0).callback(request)
        return NOT_DONE_YET

    def wait(self) -> Deferred[Request]:
        """Fire with the next request to arrive."""
        d: Deferred[Request] = Deferred()
        self.arrived.append(d)
        return d


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET ``path`` with http.client (blocking; run it in a thread)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw_exchange(port: int, data: bytes, until: Callable[[bytes], bool]) -> bytes:
    """Send raw bytes; read until ``until(received)`` or the peer closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while not until(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


class LoopbackTests(TestCase):
    """Real components, real sockets, txhttp's channel."""

    timeout = 30

    def serve(self, resource: Any) -> tuple[TrackingSite, int]:
        site = TrackingSite(resource)
        use_txhttp(site)
        tcp = cast(IReactorTCP, reactor)
        # Site is typed as a factory of twisted.web's channel; it builds ours.
        port = tcp.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(self.wait_closed, site)
        self.addCleanup(port.stopListening)
        return site, cast(IPv4Address, port.getHost()).port

    @inlineCallbacks
    def wait_closed(self, site: TrackingSite) -> Any:
        for _ in range(200):
            open_channels = [c for c in site.channels if c.state in _LIVE]
            if not open_channels:
                return
            for channel in open_channels:
                if channel.transport is not None:
                    channel.transport.loseConnection()
            yield task.deferLater(reactor, 0.01, lambda: None)  # loopback

    @inlineCallbacks
    def test_channel_is_txhttp(self) -> Any:
        """The Site really runs on HTTPChannel."""
        site, port = self.serve(Resource())
        yield deferToThread(fetch, port, "/")
        self.assertIsInstance(site.channels[0], HTTPChannel)

    def make_folder(self) -> str:
        folder = self.mktemp()
        os.mkdir(folder)
        with open(os.path.join(folder, "data.txt"), "wb") as f:
            f.write(b"0123456789")
        return str(folder)

    @inlineCallbacks
    def test_static_file(self) -> Any:
        """static.File serves a file whole, with its length and type."""
        _, port = self.serve(File(self.make_folder()))
        status, headers, body = yield deferToThread(fetch, port, "/data.txt")
        self.assertEqual(200, status)
        self.assertEqual(b"0123456789", body)
        self.assertEqual("10", headers["Content-Length"])
        self.assertEqual("text/plain", headers["Content-Type"])

    @inlineCallbacks
    def test_static_file_range(self) -> Any:
        """A Range request gets 206 and only the bytes asked for."""
        _, port = self.serve(File(self.make_folder()))
        status, headers, body = yield deferToThread(
            fetch, port, "/data.txt", {"Range": "bytes=2-5"}
        )
        self.assertEqual(206, status)
        self.assertEqual(b"2345", body)
        self.assertEqual("bytes 2-5/10", headers["Content-Range"])

    @inlineCallbacks
    def test_static_file_conditional(self) -> Any:
        """If-Modified-Since with the file's own date gets 304, no body."""
        _, port = self.serve(File(self.make_folder()))
        _, headers, _ = yield deferToThread(fetch, port, "/data.txt")
        status, _, body = yield deferToThread(
            fetch, port, "/data.txt", {"If-Modified-Since": headers["Last-Modified"]}
        )
        self.assertEqual(304, status)
        self.assertEqual(b"", body)

    @inlineCallbacks
    def test_wsgi_flask(self) -> Any:
        """A Flask app runs through WSGIResource."""
        from flask import Flask, request

        app = Flask("loopback")

        @app.route("/hello/<name>")
        def hello(name: str) -> str:
            return f"hello {name} {request.args.get('x', '')!s}"

        resource = WSGIResource(reactor, reactor.getThreadPool(), app)  # type: ignore[attr-defined]
        _, port = self.serve(resource)
        status, _, body = yield deferToThread(fetch, port, "/hello/you?x=1")
        self.assertEqual(200, status)
        self.assertEqual(b"hello you 1", body)

    @inlineCallbacks
    def test_klein(self) -> Any:
        """A Klein app runs on the channel."""
        from klein import Klein

        app = Klein()

        @app.route("/k/<int:n>")
        def double(request: Request, n: int) -> bytes:
            request.setHeader(b"content-type", b"text/plain")
            return b"%d" % (n * 2)

        _, port = self.serve(app.resource())
        status, _, body = yield deferToThread(fetch, port, "/k/21")
        self.assertEqual(200, status)
        self.assertEqual(b"42", body)

    @inlineCallbacks
    def test_not_done_yet(self) -> Any:
        """A resource that returns NOT_DONE_YET and writes later is answered."""
        pending = Pending()
        _, port = self.serve(pending)
        arrived = pending.wait()
        result = deferToThread(fetch, port, "/later")
        request = yield arrived
        request.write(b"part one, ")
        yield task.deferLater(reactor, 0.05, lambda: None)  # loopback
        request.write(b"part two")
        request.finish()
        status, headers, body = yield result
        self.assertEqual(200, status)
        self.assertEqual(b"part one, part two", body)
        self.assertEqual("chunked", headers["Transfer-Encoding"])

    @inlineCallbacks
    def test_notify_finish_on_disconnect(self) -> Any:
        """notifyFinish fails when the client goes away mid-request."""
        pending = Pending()
        _, port = self.serve(pending)
        arrived = pending.wait()
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        request = yield arrived
        finished = request.notifyFinish()
        # An abortive close (RST): the connection is gone both ways. A bare
        # FIN only half-closes, which HTTPChannel allows while it answers.
        linger = struct.pack("ii", 1, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.close()
        yield self.assertFailure(finished, ConnectionLost, ConnectionDone)

    @inlineCallbacks
    def test_pipelined_responses_in_order(self) -> Any:
        """Pipelined requests finished in reverse order are answered in order."""
        pending = Pending()
        _, port = self.serve(pending)
        waits = [pending.wait() for _ in range(3)]
        data = b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % n for n in range(3))
        result = deferToThread(
            raw_exchange, port, data, lambda got: got.count(b"0\r\n\r\n") >= 3
        )
        requests = []
        for wait in waits:
            requests.append((yield wait))
        for request in reversed(requests):
            request.write(request.uri)
            request.finish()
        received = yield result
        positions = [received.index(b"\r\n/%d\r\n" % n) for n in range(3)]
        self.assertEqual(sorted(positions), positions)
        self.assertEqual(3, received.count(b"HTTP/1.1 200 OK"))

    @inlineCallbacks
    def test_curl(self) -> Any:
        """curl fetches a file (whole and by range) from the Site."""
        if CURL is None:
            raise SkipTest("curl is not installed")
        _, port = self.serve(File(self.make_folder()))
        url = f"http://127.0.0.1:{port}/data.txt"
        out, err, code = yield getProcessOutputAndValue(CURL, ["-sS", url, url])
        self.assertEqual(0, code, err)
        self.assertEqual(b"01234567890123456789", out)
        out, err, code = yield getProcessOutputAndValue(CURL, ["-sS", "-r", "3-4", url])
        self.assertEqual((b"34", 0), (out, code), err)
