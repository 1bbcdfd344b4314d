# -*- test-case-name: txhttp.test.test_client_agent -*-
"""
Tests for `txhttp.client.Agent`: URLs, the Host field, endpoints (TCP, UNIX,
TLS), timeouts and retries, driving the real `HTTP11ClientProtocol` over a
`StringTransport`. Deterministic: a `MemoryReactorClock` and fake endpoints.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import readBody
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IResponse
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp._wire import LocalProtocolError
from txhttp.client import _agent
from txhttp.client._agent import (
    Agent,
    ConnectTarget,
    _copies_as_assumed,
    _with_host,
    parse_url,
)
from txhttp.client._errors import (
    ConnectTimeout,
    ResponseHeadTimeout,
    ResponseNeverReceived,
    TotalTimeout,
)
from txhttp.client._pool import HTTPConnectionPool
from txhttp.client._protocol import HTTP11ClientProtocol
from txhttp.client._tls import TLSPolicy

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """Connects each protocol to a new `StringTransport`, now or on demand."""

    def __init__(self, *, manual: bool = False) -> None:
        self.manual = manual
        self.pending: list[Deferred[IProtocol]] = []
        self.protocols: list[IProtocol] = []
        self.transports: list[StringTransport] = []

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        if self.manual:
            waiting: Deferred[IProtocol] = Deferred()
            self.pending.append(waiting)
            return waiting
        protocol = protocolFactory.buildProtocol(None)  # type: ignore[arg-type]  # unused
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.protocols.append(protocol)
        self.transports.append(transport)
        return succeed(protocol)

    def client(self, index: int = -1) -> HTTP11ClientProtocol:
        """The HTTP protocol of connection ``index``."""
        return cast(HTTP11ClientProtocol, self.protocols[index])


class AgentSetup(SynchronousTestCase):
    """An agent whose endpoint factory records targets and returns a fake."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.endpoint = FakeEndpoint()
        self.targets: list[ConnectTarget] = []
        self.pool = HTTPConnectionPool(self.reactor)

    def factory(self, target: ConnectTarget) -> IStreamClientEndpoint:
        self.targets.append(target)
        return self.endpoint

    def agent(self, **kwargs: object) -> Agent:
        return Agent(
            self.reactor,
            pool=self.pool,
            endpoint_factory=self.factory,
            **kwargs,  # type: ignore[arg-type]  # options under test
        )

    def written(self, index: int = -1) -> bytes:
        data: bytes = self.endpoint.transports[index].value()
        return data

    def respond(self, data: bytes = OK, index: int = -1) -> None:
        self.endpoint.client(index).dataReceived(data)


class AgentInterfaceTests(AgentSetup):
    """Agent is an IAgent."""

    def test_provides_iagent(self) -> None:
        """Agent provides twisted.web's IAgent."""
        self.assertTrue(verifyObject(IAgent, Agent(self.reactor)))


class AgentRequestTests(AgentSetup):
    """What goes on the wire, and what comes back."""

    def test_get(self) -> None:
        """A GET writes origin-form and Host, and fires with the response."""
        result = self.agent().request(b"GET", b"http://example.com/a/b?c=d#frag")
        self.assertEqual([ConnectTarget("http", "example.com", 80)], self.targets)
        head = self.written()
        self.assertTrue(head.startswith(b"GET /a/b?c=d HTTP/1.1\r\n"), head)
        self.assertIn(b"\r\nhost: example.com\r\n", head.lower())
        self.respond()
        response = self.successResultOf(result)
        self.assertEqual(200, response.code)
        self.assertEqual(b"hi", self.successResultOf(readBody(response)))

    def test_port_in_host_field(self) -> None:
        """A non-default port appears in Host; the path defaults to /."""
        self.agent().request(b"GET", b"http://example.com:8080")
        head = self.written()
        self.assertTrue(head.startswith(b"GET / HTTP/1.1\r\n"), head)
        self.assertIn(b"host: example.com:8080\r\n", head.lower())

    def test_ipv6(self) -> None:
        """An IPv6 literal connects to the bare address; Host keeps brackets."""
        self.agent().request(b"GET", b"http://[::1]:8080/")
        self.assertEqual([ConnectTarget("http", "::1", 8080)], self.targets)
        self.assertIn(b"host: [::1]:8080\r\n", self.written().lower())

    def test_headers_kept_and_not_mutated(self) -> None:
        """The caller's headers are sent, their Host wins, the object is untouched."""
        headers = Headers({b"Host": [b"other.example"], b"X-Thing": [b"1"]})
        self.agent().request(b"GET", b"http://example.com/", headers)
        head = self.written().lower()
        self.assertIn(b"host: other.example\r\n", head)
        self.assertNotIn(b"host: example.com", head)
        self.assertIn(b"x-thing: 1\r\n", head)
        self.assertEqual(2, len(list(headers.getAllRawHeaders())))

    def test_reuses_connection(self) -> None:
        """Two requests in sequence share one connection."""
        agent = self.agent()
        first = agent.request(b"GET", b"http://example.com/1")
        self.respond()
        self.successResultOf(readBody(self.successResultOf(first)))
        second = agent.request(b"GET", b"http://example.com/2")
        self.assertEqual(1, len(self.endpoint.protocols))
        self.assertIn(b"GET /2 HTTP/1.1", self.written())
        self.respond()
        self.successResultOf(second)

    def test_unix_socket(self) -> None:
        """http+unix URLs connect to the %-decoded socket path, Host localhost."""
        self.agent().request(b"GET", b"http+unix://%2Fvar%2Frun%2Fapp.sock/v1/info")
        self.assertEqual([ConnectTarget("unix", "/var/run/app.sock", 0)], self.targets)
        head = self.written()
        self.assertTrue(head.startswith(b"GET /v1/info HTTP/1.1\r\n"), head)
        self.assertIn(b"host: localhost\r\n", head.lower())

    def test_https_uses_tls(self) -> None:
        """An https URL gets TLS over the endpoint: a ClientHello is written."""
        self.agent(tls_policy=TLSPolicy.insecure()).request(
            b"GET", b"https://example.com/"
        )
        self.assertEqual([ConnectTarget("https", "example.com", 443)], self.targets)
        # A TLS record of type handshake (22), not an HTTP request line.
        self.assertEqual(b"\x16\x03", self.written()[:2])

    def test_not_persistent(self) -> None:
        """A non-persistent pool makes the agent send Connection: close."""
        self.pool = HTTPConnectionPool(self.reactor, persistent=False)
        self.agent().request(b"GET", b"http://example.com/")
        self.assertIn(b"connection: close\r\n", self.written().lower())


class AgentRefusalTests(AgentSetup):
    """Bad input fails the Deferred; nothing is connected or written."""

    def assert_refused(self, uri: bytes, kind: type[Exception], **kw: object) -> None:
        method = cast(bytes, kw.get("method", b"GET"))
        headers = cast("Headers | None", kw.get("headers"))
        self.failureResultOf(self.agent().request(method, uri, headers), kind)
        self.assertEqual([], self.targets)

    def test_unsupported_scheme(self) -> None:
        """An ftp URL fails with SchemeNotSupported."""
        self.assert_refused(b"ftp://example.com/", SchemeNotSupported)

    def test_userinfo(self) -> None:
        """Credentials in the URL are refused, not sent or dropped."""
        self.assert_refused(b"http://user:pw@example.com/", ValueError)

    def test_bad_port(self) -> None:
        """A non-numeric or out-of-range port is refused."""
        self.assert_refused(b"http://example.com:99999/", ValueError)
        self.assert_refused(b"http://example.com:x/", ValueError)

    def test_header_control_character(self) -> None:
        """A header value with a NUL fails with LocalProtocolError."""
        headers = Headers({b"X-Evil": [b"a\x00b"]})
        self.assert_refused(b"http://example.com/", LocalProtocolError, headers=headers)

    def test_header_crlf_never_injects(self) -> None:
        """CR LF in a header value never starts a new field on the wire."""
        headers = Headers({b"X-Evil": [b"a\r\nInjected: yes"]})
        result = self.agent().request(b"GET", b"http://example.com/", headers)
        if not result.called:  # Twisted's Headers turned CR LF into spaces
            self.assertNotIn(b"\r\nInjected", self.written())
        else:
            self.failureResultOf(result, LocalProtocolError)

    def test_bad_method(self) -> None:
        """A method that is not a token fails with LocalProtocolError."""
        self.assert_refused(b"http://example.com/", LocalProtocolError, method=b"GE T")

    def test_target_injection(self) -> None:
        """A space or CR LF in the path is refused."""
        self.assert_refused(b"http://example.com/a b", LocalProtocolError)
        self.assert_refused(b"http://example.com/a\r\nX: y", LocalProtocolError)


class AgentHeadersCopyTests(AgentSetup):
    """The agent sends a copy of the caller's headers, with Host added."""

    def reference(self, headers: Headers | None, host: bytes) -> Headers:
        """What ``copy()`` and ``addRawHeader`` give: the public-API copy."""
        copied = Headers() if headers is None else headers.copy()
        if not copied.hasHeader(b"host"):
            copied.addRawHeader(b"Host", host)
        return copied

    def assert_copy(self, headers: Headers | None) -> None:
        """`_with_host` gives the public-API copy: fields, order, type."""
        expected = self.reference(headers, b"example.com:8080")
        copied = _with_host(headers, b"example.com:8080")
        self.assertIsNot(headers, copied)
        self.assertIs(type(expected), type(copied))
        self.assertEqual(
            list(expected.getAllRawHeaders()), list(copied.getAllRawHeaders())
        )

    def test_copy_like_headers_copy(self) -> None:
        """The copy holds what copy() and addRawHeader would, in order."""
        self.assert_copy(None)
        self.assert_copy(Headers())
        headers = Headers({b"x-b": [b"1", b"2"]})
        headers.addRawHeader("Accept", "text/plain")
        self.assert_copy(headers)
        self.assert_copy(Headers({b"HOST": [b"other.example"], b"X-A": [b"1"]}))

    def test_copy_owns_its_value_lists(self) -> None:
        """Adding to the caller's headers afterwards leaves the request's alone."""
        headers = Headers({b"X-Thing": [b"1"]})
        result = self.agent().request(b"GET", b"http://example.com/", headers)
        headers.addRawHeader(b"X-Thing", b"2")
        self.respond()
        sent = self.successResultOf(result).request.headers
        self.assertEqual([b"1"], sent.getRawHeaders(b"X-Thing"))
        self.assertEqual([b"example.com"], sent.getRawHeaders(b"Host"))
        self.assertEqual([b"1", b"2"], headers.getRawHeaders(b"X-Thing"))

    def test_headers_subclass_copied_by_its_copy(self) -> None:
        """A Headers subclass is copied by its own copy(), keeping its type."""

        class MyHeaders(Headers):
            copies = 0

            def copy(self) -> Headers:
                MyHeaders.copies += 1
                return MyHeaders(dict(self.getAllRawHeaders()))

        headers = MyHeaders({b"X-A": [b"1"]})
        self.assert_copy(headers)
        self.assertEqual(2, MyHeaders.copies)  # the reference's and ours

    def test_unknown_storage_goes_through_copy(self) -> None:
        """When Headers is not stored as assumed, copy() makes the copy."""
        copies: list[Headers] = []
        original = Headers.copy

        def spy(self: Headers) -> Headers:
            copies.append(self)
            return original(self)

        self.patch(_agent, "_COPY_RAW", False)
        self.patch(Headers, "copy", spy)
        headers = Headers({b"X-A": [b"1"]})
        self.assert_copy(headers)
        self.assert_copy(None)
        self.assertEqual([headers, headers], copies)

    def test_storage_probe(self) -> None:
        """The import-time probe accepts this Twisted's Headers, and notices
        one that stores names differently."""
        self.assertTrue(_copies_as_assumed())
        self.assertTrue(_agent._COPY_RAW)

        def add_as_given(self: Headers, name: bytes, value: bytes) -> None:
            self._rawHeaders.setdefault(name, []).append(value)

        self.patch(Headers, "addRawHeader", add_as_given)
        self.assertFalse(_copies_as_assumed())

    def test_refused_target_not_remembered(self) -> None:
        """A URL whose target is refused is refused again, never connected."""
        agent = self.agent()
        for _ in range(2):
            result = agent.request(b"GET", b"http://example.com/a\x00b")
            self.failureResultOf(result, LocalProtocolError)
        self.assertEqual([], self.targets)


class ParseURLTests(SynchronousTestCase):
    """parse_url splits URLs the way the agent needs them."""

    def test_defaults(self) -> None:
        """Ports default by scheme and the host is lower-cased."""
        url = parse_url(b"HTTPS://Example.COM")
        self.assertEqual(
            ("https", "example.com", 443, b"/"),
            (url.scheme, url.host, url.port, url.target),
        )
        self.assertEqual(b"example.com", url.host_field)

    def test_query_without_path(self) -> None:
        """A query right after the authority gets a / path."""
        self.assertEqual(b"/?a=1", parse_url(b"http://h?a=1").target)

    def test_no_host(self) -> None:
        """A URL without host is refused."""
        self.assertRaises(ValueError, parse_url, b"http:///path")


class AgentTimeoutTests(AgentSetup):
    """Each timeout fails with its own type, naming its limit."""

    def test_connect_timeout(self) -> None:
        """No connection within connect_timeout: ConnectTimeout."""
        self.endpoint.manual = True
        result = self.agent(connect_timeout=4).request(b"GET", b"http://example.com/")
        self.reactor.advance(4)
        error = self.failureResultOf(result, ConnectTimeout).value
        self.assertEqual(4.0, error.limit_seconds)

    def test_response_head_timeout(self) -> None:
        """No response head within response_head_timeout: ResponseHeadTimeout."""
        result = self.agent(response_head_timeout=5).request(
            b"GET", b"http://example.com/"
        )
        self.reactor.advance(5)
        error = self.failureResultOf(result, ResponseHeadTimeout).value
        self.assertEqual(5.0, error.limit_seconds)

    def test_total_timeout(self) -> None:
        """The whole exchange past total_timeout: TotalTimeout, connection aborted."""
        result = self.agent(total_timeout=2).request(b"GET", b"http://example.com/")
        self.reactor.advance(2)
        error = self.failureResultOf(result, TotalTimeout).value
        self.assertEqual(2.0, error.limit_seconds)
        self.assertTrue(self.endpoint.transports[0].disconnecting)

    def test_total_timeout_during_body(self) -> None:
        """A deadline passing mid-body ends the body with TotalTimeout inside."""
        result = self.agent(total_timeout=2).request(b"GET", b"http://example.com/")
        self.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart")
        body = readBody(self.successResultOf(result))
        self.reactor.advance(2)
        error = self.failureResultOf(body).value
        reasons = getattr(error, "reasons", [])
        self.assertTrue(
            any(r.check(TotalTimeout) for r in reasons), f"{error!r}: {reasons!r}"
        )


class AgentRetryTests(AgentSetup):
    """A pooled connection closed by the server under a request."""

    def idle_then_request(self, method: bytes) -> Deferred[IResponse]:
        agent = self.agent()
        first = agent.request(b"GET", b"http://example.com/")
        self.respond()
        self.successResultOf(readBody(self.successResultOf(first)))
        return agent.request(method, b"http://example.com/")

    def test_get_retried(self) -> None:
        """A GET cut off on a reused connection is resent on a new one."""
        result = self.idle_then_request(b"GET")
        self.endpoint.client(0).connectionLost(Failure(ConnectionDone()))
        self.assertEqual(2, len(self.endpoint.protocols))
        self.assertTrue(self.written(1).startswith(b"GET / HTTP/1.1\r\n"))
        self.respond(index=1)
        self.assertEqual(200, self.successResultOf(result).code)

    def test_post_not_retried(self) -> None:
        """A POST cut off the same way is not resent."""
        result = self.idle_then_request(b"POST")
        self.endpoint.client(0).connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(result, ResponseNeverReceived)
        self.assertEqual(1, len(self.endpoint.protocols))


class AgentDefaultEndpointTests(SynchronousTestCase):
    """Without a hook, the agent uses Twisted's endpoints on its reactor."""

    def test_tcp(self) -> None:
        """http URLs connect with TCP to the host and port."""
        reactor = MemoryReactorClock()
        Agent(reactor).request(b"GET", b"http://127.0.0.1:8080/")
        self.assertEqual(("127.0.0.1", 8080), reactor.tcpClients[0][:2])

    def test_unix(self) -> None:
        """http+unix URLs connect to the UNIX socket."""
        reactor = MemoryReactorClock()
        Agent(reactor).request(b"GET", b"http+unix://%2Ftmp%2Fx.sock/")
        self.assertEqual("/tmp/x.sock", reactor.unixClients[0][0])


class AgentQueueTests(AgentSetup):
    """Requests queued behind the per-host cap, on the real protocol."""

    def test_queued_request_takes_over_connection(self) -> None:
        """A queued request is sent on the connection the first one freed."""
        self.pool = HTTPConnectionPool(
            self.reactor, max_connections_per_host=1, max_idle_per_host=1
        )
        agent = self.agent()
        first = agent.request(b"GET", b"http://example.com/1")
        second = agent.request(b"GET", b"http://example.com/2")
        self.assertEqual(1, len(self.endpoint.protocols))
        self.assertNotIn(b"GET /2", self.written())
        self.respond()
        self.successResultOf(readBody(self.successResultOf(first)))
        self.assertIn(b"GET /2 HTTP/1.1", self.written())
        self.respond()
        self.assertEqual(200, self.successResultOf(second).code)
        self.assertEqual(1, len(self.endpoint.protocols))
