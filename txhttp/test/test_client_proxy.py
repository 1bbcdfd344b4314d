# -*- test-case-name: txhttp.test.test_client_proxy -*-
"""
Tests for HTTP proxies: `HTTPProxy`, absolute-form requests through the
`Agent`, and ``CONNECT`` tunnels (`ConnectTunnelEndpoint`).

Unit tests drive `StringTransport`s; the loopback tests run a small CONNECT
proxy and a TLS twisted.web origin on 127.0.0.1.
"""

from __future__ import annotations

from typing import cast

from twisted.internet import reactor as _global_reactor
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IReactorSSL,
    IReactorTCP,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, ServerFactory, connectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import readBody
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from txhttp.client._agent import Agent, ConnectTarget
from txhttp.client._errors import ProxyTunnelFailed
from txhttp.client._pool import HTTPConnectionPool
from txhttp.client._protocol import HTTP11ClientProtocol
from txhttp.client._proxy import ConnectTunnelEndpoint, HTTPProxy
from txhttp.client._tls import TLSPolicy
from txhttp.test.test_client_tls import certificates, server_options

PROXY = HTTPProxy.from_url("http://alice:s%3Acret@127.0.0.1:3128")
CREDENTIALS = b"Basic YWxpY2U6czpjcmV0"  # base64 of "alice:s:cret"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """Connects each protocol to a new `StringTransport` at once."""

    def __init__(self) -> None:
        self.protocols: list[IProtocol] = []
        self.transports: list[StringTransport] = []

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = protocolFactory.buildProtocol(None)  # type: ignore[arg-type]  # unused
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.protocols.append(protocol)
        self.transports.append(transport)
        return succeed(protocol)


class Recorder(Protocol):
    """Records what arrives through a tunnel."""

    def __init__(self) -> None:
        self.data = b""
        self.reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason


class HTTPProxyTests(SynchronousTestCase):
    """Proxy settings."""

    def test_from_url(self) -> None:
        """Host, port and %-decoded credentials come from the URL."""
        self.assertEqual(("127.0.0.1", 3128), (PROXY.host, PROXY.port))
        self.assertEqual(("alice", "s:cret"), (PROXY.username, PROXY.password))
        self.assertEqual(CREDENTIALS, PROXY.authorization())

    def test_no_credentials(self) -> None:
        """Without credentials there is no Proxy-Authorization; port defaults."""
        proxy = HTTPProxy.from_url("http://proxy.example")
        self.assertIsNone(proxy.authorization())
        self.assertEqual(8080, proxy.port)

    def test_password_hidden(self) -> None:
        """The password does not appear in repr."""
        self.assertNotIn("cret", repr(PROXY))

    def test_bad_url(self) -> None:
        """Only http:// proxy URLs with a host are accepted."""
        self.assertRaises(ValueError, HTTPProxy.from_url, "socks5://h:1")
        self.assertRaises(ValueError, HTTPProxy.from_url, "http://")


class ForwardProxyTests(SynchronousTestCase):
    """http URLs through a proxy: absolute-form, credentials to the proxy."""

    def setUp(self) -> None:
        self.endpoint = FakeEndpoint()
        self.targets: list[ConnectTarget] = []

        def factory(target: ConnectTarget) -> IStreamClientEndpoint:
            self.targets.append(target)
            return self.endpoint

        self.agent = Agent(MemoryReactorClock(), proxy=PROXY, endpoint_factory=factory)

    def test_absolute_form(self) -> None:
        """The request goes to the proxy with the absolute URL as target."""
        result = self.agent.request(b"GET", b"http://example.com:8000/a?b")
        self.assertEqual([ConnectTarget("http", "127.0.0.1", 3128)], self.targets)
        head = self.endpoint.transports[0].value()
        self.assertTrue(
            head.startswith(b"GET http://example.com:8000/a?b HTTP/1.1\r\n"), head
        )
        self.assertIn(b"host: example.com:8000\r\n", head.lower())
        self.assertIn(b"proxy-authorization: " + CREDENTIALS.lower(), head.lower())
        cast(HTTP11ClientProtocol, self.endpoint.protocols[0]).dataReceived(OK)
        self.assertEqual(200, self.successResultOf(result).code)

    def test_origins_share_proxy_connection(self) -> None:
        """Requests to different origins reuse one connection to the proxy."""
        first = self.agent.request(b"GET", b"http://a.example/")
        cast(HTTP11ClientProtocol, self.endpoint.protocols[0]).dataReceived(OK)
        self.successResultOf(readBody(self.successResultOf(first)))
        self.agent.request(b"GET", b"http://b.example/")
        self.assertEqual(1, len(self.endpoint.protocols))
        self.assertIn(
            b"GET http://b.example/ HTTP/1.1", self.endpoint.transports[0].value()
        )

    def test_unix_bypasses_proxy(self) -> None:
        """UNIX socket URLs never go through the proxy."""
        self.agent.request(b"GET", b"http+unix://%2Ftmp%2Fs/")
        self.assertEqual([ConnectTarget("unix", "/tmp/s", 0)], self.targets)


class ConnectTunnelTests(SynchronousTestCase):
    """The CONNECT exchange, byte for byte."""

    def setUp(self) -> None:
        self.proxy_endpoint = FakeEndpoint()
        self.recorder = Recorder()
        self.tunnel = ConnectTunnelEndpoint(
            self.proxy_endpoint, PROXY, "example.com", 443
        )
        self.result = self.tunnel.connect(Factory.forProtocol(lambda: self.recorder))

    def proxy_side(self) -> tuple[IProtocol, StringTransport]:
        return self.proxy_endpoint.protocols[0], self.proxy_endpoint.transports[0]

    def test_connect_request(self) -> None:
        """CONNECT names host:port and carries Host and Proxy-Authorization."""
        _, transport = self.proxy_side()
        self.assertEqual(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
            b"Proxy-Authorization: " + CREDENTIALS + b"\r\n\r\n",
            transport.value(),
        )
        self.assertNoResult(self.result)

    def test_established(self) -> None:
        """After 200, bytes (those after the answer first) reach the protocol."""
        protocol, transport = self.proxy_side()
        protocol.dataReceived(b"HTTP/1.1 200 Connection established\r\n\r\nearly")
        self.assertIs(self.recorder, self.successResultOf(self.result))
        protocol.dataReceived(b" late")
        self.assertEqual(b"early late", self.recorder.data)
        assert self.recorder.transport is not None
        self.recorder.transport.write(b"up")
        self.assertTrue(transport.value().endswith(b"\r\n\r\nup"))
        protocol.connectionLost(Failure(ConnectionDone()))
        assert self.recorder.reason is not None
        self.assertTrue(self.recorder.reason.check(ConnectionDone))

    def test_refused(self) -> None:
        """A 407 fails with ProxyTunnelFailed carrying the status."""
        protocol, transport = self.proxy_side()
        protocol.dataReceived(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
        )
        error = self.failureResultOf(self.result, ProxyTunnelFailed).value
        self.assertEqual(407, error.status)
        self.assertIn("407", str(error))
        self.assertTrue(transport.disconnecting)

    def test_closed_before_answer(self) -> None:
        """A proxy closing without an answer fails with no status."""
        protocol, _ = self.proxy_side()
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(self.result, ProxyTunnelFailed).value
        self.assertIsNone(error.status)

    def test_garbage_answer(self) -> None:
        """An answer that is not HTTP fails the tunnel."""
        protocol, _ = self.proxy_side()
        protocol.dataReceived(b"SSH-2.0-OpenSSH\r\n\r\n")
        self.failureResultOf(self.result, ProxyTunnelFailed)


class TunnelThroughAgentTests(SynchronousTestCase):
    """https URLs through a proxy: CONNECT, then TLS, credentials never inside."""

    def test_tls_after_connect(self) -> None:
        """After the proxy's 200, the tunnel carries a TLS ClientHello only."""
        endpoint = FakeEndpoint()
        agent = Agent(
            MemoryReactorClock(),
            proxy=PROXY,
            tls_policy=TLSPolicy.insecure(),
            endpoint_factory=lambda target: endpoint,
        )
        agent.request(b"GET", b"https://example.com/")
        transport = endpoint.transports[0]
        self.assertTrue(transport.value().startswith(b"CONNECT example.com:443 "))
        transport.clear()
        endpoint.protocols[0].dataReceived(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertEqual(b"\x16\x03", transport.value()[:2])
        self.assertNotIn(b"Proxy-Authorization", transport.value())


# -- loopback: a real CONNECT proxy in front of a TLS twisted.web origin --------------

reactor: IReactorTCP = _global_reactor


class _Relay(Protocol):
    """The proxy's connection to the origin: passes bytes back."""

    def __init__(self, peer: _ConnectProxy) -> None:
        self.peer = peer

    def connectionMade(self) -> None:
        self.peer.relay_ready(self)

    def dataReceived(self, data: bytes) -> None:
        assert self.peer.transport is not None
        self.peer.transport.write(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.peer.transport is not None:
            self.peer.transport.loseConnection()


class _ConnectProxy(Protocol):
    """A minimal CONNECT proxy for tests: 127.0.0.1 targets only."""

    heads: list[bytes]

    def __init__(self, heads: list[bytes], closed: list[Deferred[None]]) -> None:
        self.heads = heads
        self.buffer = b""
        self.relay: _Relay | None = None
        self.lost: Deferred[None] = Deferred()
        closed.append(self.lost)

    def dataReceived(self, data: bytes) -> None:
        if self.relay is not None:
            assert self.relay.transport is not None
            self.relay.transport.write(data)
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.heads.append(head)
        target = head.split(b" ")[1]
        port = int(target.rpartition(b":")[2])
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        endpoint.connect(Factory.forProtocol(lambda: _Relay(self)))

    def relay_ready(self, relay: _Relay) -> None:
        self.relay = relay
        assert self.transport is not None and relay.transport is not None
        self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if self.buffer:
            relay.transport.write(self.buffer)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.relay is not None and self.relay.transport is not None:
            self.relay.transport.loseConnection()
        self.lost.callback(None)


class _Echo(Resource):
    """Answers with the request's Proxy-Authorization header, if any."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        seen = request.getHeader(b"proxy-authorization")
        return b"origin saw: " + (seen or b"nothing")


class TunnelLoopbackTests(TestCase):
    """HTTPS through a real CONNECT proxy on 127.0.0.1."""

    timeout = 20

    async def test_https_through_proxy(self) -> None:
        """The response arrives; the proxy saw the credentials, the origin none."""
        ssl_reactor: IReactorSSL = _global_reactor  # type: ignore[assignment]  # it does
        site = Site(_Echo())
        origin: IListeningPort = ssl_reactor.listenSSL(
            0, site, server_options(certificates().good), interface="127.0.0.1"
        )
        heads: list[bytes] = []
        closed: list[Deferred[None]] = []
        proxy_port = reactor.listenTCP(
            0,
            ServerFactory.forProtocol(lambda: _ConnectProxy(heads, closed)),  # type: ignore[arg-type]  # typed as Factory
            interface="127.0.0.1",
        )
        self.addCleanup(origin.stopListening)
        self.addCleanup(proxy_port.stopListening)
        pool = HTTPConnectionPool(reactor)  # type: ignore[arg-type]  # the reactor has IReactorTime
        proxy = HTTPProxy(
            "127.0.0.1",
            proxy_port.getHost().port,  # type: ignore[attr-defined]  # an IPv4Address
            username="alice",
            password="secret",
        )
        agent = Agent(
            reactor,  # type: ignore[arg-type]  # the global reactor provides IReactorTime
            pool=pool,
            proxy=proxy,
            tls_policy=TLSPolicy(trust_root=certificates().trust_root()),
        )
        # getHost() is an IPv4Address, which has a port.
        origin_port = origin.getHost().port  # type: ignore[attr-defined]
        try:
            response = await agent.request(
                b"GET", b"https://localhost:%d/" % origin_port
            )
            body = await readBody(response)
        finally:
            await pool.closeCachedConnections()
            await gatherResults([d for d in closed if not d.called])
        self.assertEqual(b"origin saw: nothing", body)
        self.assertEqual(1, len(heads))
        self.assertTrue(heads[0].startswith(b"CONNECT localhost:%d " % origin_port))
        self.assertIn(b"Proxy-Authorization: Basic", heads[0])
