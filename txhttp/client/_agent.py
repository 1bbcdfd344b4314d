# -*- test-case-name: txhttp.test.test_client_agent -*-
"""
`Agent`: txhttp's ``IAgent``, from URLs to pooled connections.

The agent turns ``request(method, uri, headers, bodyProducer)`` into a
validated `ClientRequest` and a `PoolKey`, picks how to reach the server (an
endpoint: TCP, a UNIX socket, TLS over either, an HTTP proxy or a ``CONNECT``
tunnel through one) and hands both to its `HTTPConnectionPool`. It knows URLs,
the ``Host`` field, TLS policy, proxies and timeouts; the pool knows
connections and limits; `HTTP11ClientProtocol` knows bytes.

URLs it accepts:

- ``http://host[:port]/path?query`` and ``https://...``;
- ``http+unix://<socket path, percent-encoded>/path?query``, e.g.
  ``http+unix://%2Fvar%2Frun%2Fdocker.sock/v1.43/info``: the authority is the
  socket's path with every ``/`` written ``%2F``; the request carries
  ``Host: localhost``.

The fragment is never sent; user information (``user:pass@``) in a URL is
refused rather than silently dropped or sent (send an ``Authorization``
header instead).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

import idna
from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IPolicyForHTTPS, IResponse
from zope.interface import implementer

from txhttp.client._pool import (
    DEFAULT_CONNECT_TIMEOUT,
    HTTPConnectionPool,
    PoolKey,
)
from txhttp.client._proxy import ConnectTunnelEndpoint, HTTPProxy
from txhttp.client._request import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    check_target,
    request_for_agent,
)
from txhttp.client._tls import TLSEndpoint, TLSPolicy

__all__ = [
    "DEFAULT_TOTAL_TIMEOUT",
    "Agent",
    "ConnectTarget",
    "EndpointFactory",
    "parse_url",
]

DEFAULT_TOTAL_TIMEOUT: Final[float | None] = None
"""
No overall deadline by default: a download may take as long as it keeps
moving. A stalled request is still bounded, by the connect, response head and
body idle timeouts; set ``total_timeout`` to cap the whole exchange.
"""

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_UNIX_SCHEMES: Final = frozenset({"http+unix", "unix"})


@dataclass(frozen=True, slots=True)
class ConnectTarget:
    """
    Where a new connection must go, as given to an endpoint factory.

    Attributes:
        scheme: ``"http"``, ``"https"`` or ``"unix"``. For https, the
            endpoint carries the TLS bytes: the agent adds TLS on top.
        host: Host name or address; the socket path for ``"unix"``.
        port: TCP port; 0 for ``"unix"``.
    """

    scheme: str
    host: str
    port: int


EndpointFactory = Callable[[ConnectTarget], IStreamClientEndpoint]
"""
The hook for how connections are made: given where to connect, return the
stream endpoint to use (for a proxy, the target is the proxy). TLS and
``CONNECT`` tunnels are layered by the agent on what it returns.
"""


@dataclass(frozen=True, slots=True)
class _ParsedURL:
    """A request URL, split into what the agent needs."""

    scheme: str
    host: str
    port: int
    target: bytes
    host_field: bytes
    absolute: bytes


def _authority_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_url(uri: bytes) -> _ParsedURL:
    """
    Split an ``http``, ``https`` or ``http+unix`` URL.

    Raises:
        SchemeNotSupported: Another scheme.
        ValueError: The URL has no host, a bad port, user information, or
            is not ASCII.
    """
    if not isinstance(uri, bytes):
        raise TypeError(f"uri must be bytes, not {type(uri).__name__}")
    scheme_bytes, sep, rest = uri.partition(b"://")
    scheme = scheme_bytes.decode("ascii", "replace").lower()
    if not sep or not scheme:
        raise ValueError(f"not an absolute URL: {uri!r}")
    if scheme not in _DEFAULT_PORTS and scheme not in _UNIX_SCHEMES:
        raise SchemeNotSupported(f"unsupported scheme: {scheme!r}")
    end = len(rest)
    for delimiter in (b"/", b"?", b"#"):
        at = rest.find(delimiter)
        if at != -1 and at < end:
            end = at
    authority, path = rest[:end], rest[end:]
    path = path.partition(b"#")[0]
    if not path.startswith(b"/"):
        path = b"/" + path
    if b"@" in authority:
        raise ValueError(
            "user information in URLs is not supported; send an Authorization "
            f"header instead: {uri!r}"
        )
    if not authority:
        raise ValueError(f"URL has no host: {uri!r}")
    if scheme in _UNIX_SCHEMES:
        socket_path = unquote_to_bytes(authority).decode("utf-8")
        return _ParsedURL(
            scheme="unix",
            host=socket_path,
            port=0,
            target=path,
            host_field=b"localhost",
            absolute=uri,
        )
    host_bytes, port_bytes = authority, b""
    if authority.startswith(b"["):
        close = authority.find(b"]")
        if close == -1:
            raise ValueError(f"unclosed IPv6 address in URL: {uri!r}")
        host_bytes = authority[1:close]
        after = authority[close + 1 :]
        if after:
            if not after.startswith(b":"):
                raise ValueError(f"junk after IPv6 address in URL: {uri!r}")
            port_bytes = after[1:]
        ipaddress.IPv6Address(host_bytes.decode("ascii"))
    elif b":" in authority:
        host_bytes, _, port_bytes = authority.rpartition(b":")
    default_port = _DEFAULT_PORTS[scheme]
    if port_bytes:
        if not port_bytes.isdigit() or not 0 < int(port_bytes) < 65536:
            raise ValueError(f"invalid port in URL: {uri!r}")
        port = int(port_bytes)
    else:
        port = default_port
    try:
        host = host_bytes.decode("ascii").lower()
    except UnicodeDecodeError:
        raise ValueError(f"host must be ASCII (IDNA-encoded): {uri!r}") from None
    if not host:
        raise ValueError(f"URL has no host: {uri!r}")
    shown = _authority_host(host).encode("ascii")
    host_field = shown if port == default_port else b"%s:%d" % (shown, port)
    return _ParsedURL(
        scheme=scheme,
        host=host,
        port=port,
        target=path,
        host_field=host_field,
        absolute=b"%s://%s%s" % (scheme.encode(), host_field, path),
    )


def _copies_as_assumed() -> bool:
    """
    Whether this Twisted's ``Headers`` keeps fields as `_with_host` copies
    them: ``_rawHeaders``, a dict of canonical name to a list of values,
    which ``copy()`` reproduces as it is; ``Host`` spelt ``b"Host"``.
    """
    probe = Headers({b"x-probe": [b"1", b"2"]})
    probe.addRawHeader(b"host", b"h")
    raw: object = getattr(probe, "_rawHeaders", None)
    copied: object = getattr(probe.copy(), "_rawHeaders", None)
    expected = {b"X-Probe": [b"1", b"2"], b"Host": [b"h"]}
    return type(raw) is dict and raw == expected and copied == expected


_COPY_RAW: Final = _copies_as_assumed()


def _with_host(headers: Headers | None, host: bytes) -> Headers:
    """
    A copy of ``headers`` (new ones for ``None``) with ``Host: host`` added
    unless they have a Host field: what ``copy()`` and ``addRawHeader`` give.

    A plain ``Headers`` is copied dict to dict when `_COPY_RAW` (checked at
    import) says its storage is as assumed, skipping ``copy()``'s
    re-canonicalising of every name and value the ``Headers`` methods
    already did when they were added; anything else goes through ``copy()``.
    Fields written into ``_rawHeaders`` by hand are copied as they are
    rather than canonicalised: `ClientRequest`'s checks refuse any that
    could inject, where ``copy()`` would have turned CR and LF into spaces.
    """
    if not _COPY_RAW or (headers is not None and type(headers) is not Headers):
        copied = Headers() if headers is None else headers.copy()
        if not copied.hasHeader(b"host"):
            copied.addRawHeader(b"Host", host)
        return copied
    copied = Headers()
    raw = copied._rawHeaders
    if headers is not None:
        for name, values in headers._rawHeaders.items():
            raw[name] = list(values)
    if b"Host" not in raw:
        raw[b"Host"] = [host]
    return copied


@dataclass(frozen=True, slots=True)
class _Route:
    """How requests to one URL go out (cached per URL)."""

    key: PoolKey
    connect: Callable[[], IStreamClientEndpoint]
    target: bytes
    extra_fields: tuple[tuple[bytes, bytes], ...]
    host_field: bytes
    absolute: bytes


@implementer(IAgent)
class Agent:
    """
    txhttp's ``IAgent``: pooled, bounded, verified HTTP/1.1 requests.

    A drop-in for ``twisted.web.client.Agent``; treq accepts it as
    ``treq.client.HTTPClient(Agent(reactor))``.

    Args:
        reactor: Provides ``IReactorTime`` and the connection interfaces the
            default endpoints need (``IReactorTCP``, ``IReactorUNIX``,
            ``IReactorPluggableNameResolver``).
        pool: Where connections live; by default a new
            `HTTPConnectionPool` with its default limits. Share one pool
            between agents to share connections.
        tls_policy: Provides ``IPolicyForHTTPS``; default `TLSPolicy()`
            (verification against the system trust store).
        proxy: Send every request through this HTTP proxy (absolute-form for
            http, a ``CONNECT`` tunnel for https; never for UNIX sockets).
        endpoint_factory: How to reach a host (see ``EndpointFactory``);
            default: ``HostnameEndpoint`` for TCP, ``UNIXClientEndpoint`` for
            sockets.
        connect_timeout: Seconds to open a connection: TCP, TLS handshake
            and proxy tunnel (`ConnectTimeout`).
        response_head_timeout: Seconds from the end of the request to the
            final response head (`ResponseHeadTimeout`), or ``None``.
        body_idle_timeout: Seconds without a response body byte
            (`BodyIdleTimeout`), or ``None``.
        total_timeout: Seconds for the whole exchange, queueing and body
            included (`TotalTimeout`), or ``None``.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        *,
        pool: HTTPConnectionPool | None = None,
        tls_policy: IPolicyForHTTPS | None = None,
        proxy: HTTPProxy | None = None,
        endpoint_factory: EndpointFactory | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        response_head_timeout: float | None = DEFAULT_RESPONSE_HEAD_TIMEOUT,
        body_idle_timeout: float | None = DEFAULT_BODY_IDLE_TIMEOUT,
        total_timeout: float | None = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        if not connect_timeout > 0:
            raise ValueError(
                f"connect_timeout must be positive, not {connect_timeout!r}"
            )
        if total_timeout is not None and not total_timeout > 0:
            raise ValueError(f"total_timeout must be positive, not {total_timeout!r}")
        self._reactor = reactor
        self.pool: Final = pool if pool is not None else HTTPConnectionPool(reactor)
        self._tls_policy: IPolicyForHTTPS = (
            tls_policy if tls_policy is not None else TLSPolicy()
        )
        self._proxy = proxy
        self._endpoint_factory = endpoint_factory or self._default_endpoint
        self.connect_timeout: Final = connect_timeout
        self.response_head_timeout: Final = response_head_timeout
        self.body_idle_timeout: Final = body_idle_timeout
        self.total_timeout: Final = total_timeout
        self._keys: dict[tuple[str, str, int], PoolKey] = {}
        self._routes: dict[bytes, _Route] = {}

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        Send a request; see ``IAgent.request``.

        Args:
            method: The method token, e.g. ``b"GET"``.
            uri: An ``http``, ``https`` or ``http+unix`` URL.
            headers: Header fields to send; ``Host`` is added unless given.
                Not modified.
            bodyProducer: The body, or ``None``.

        Returns:
            A Deferred firing with the response once its head arrived, or
            failing with ``SchemeNotSupported``, ``LocalProtocolError``
            (invalid method, URL or header), `PoolQueueFull`, a timeout
            (`ConnectTimeout`, `PoolQueueTimeout`, `ResponseHeadTimeout`,
            `TotalTimeout`), a connection error (`TLSHandshakeFailed`,
            `CertificateVerificationFailed`, `ProxyTunnelFailed`, Twisted's
            ``ConnectError``) or a failure of the exchange
            (`RequestNotSent`, `RequestGenerationFailed`,
            `RequestTransmissionFailed`, `ResponseNeverReceived`,
            `ResponseFailed`). Cancelling it aborts the request.
        """
        try:
            route = self._routes.get(uri)
            if route is None:
                route = self._new_route(uri)
            headers = _with_host(headers, route.host_field)
            if route.extra_fields:
                for name, value in route.extra_fields:
                    headers.setRawHeaders(name, [value])
            request = request_for_agent(
                method,
                route.target,
                headers,
                bodyProducer,
                persistent=self.pool.persistent,
                absoluteURI=route.absolute,
                response_head_timeout=self.response_head_timeout,
                body_idle_timeout=self.body_idle_timeout,
            )
        except (ValueError, TypeError, SchemeNotSupported) as e:
            return fail(e)
        return self.pool.submit(  # type: ignore[return-value]  # Response provides IResponse
            route.key,
            route.connect,
            request,
            connect_timeout=self.connect_timeout,
            total_timeout=self.total_timeout,
        )

    def _new_route(self, uri: bytes) -> _Route:
        """Parse ``uri`` and route it; remember the route (bounded)."""
        url = parse_url(uri)
        key, connect, target, extra = self._route(url)
        check_target(target)  # once per URL: request_for_agent relies on it
        route = _Route(key, connect, target, tuple(extra), url.host_field, url.absolute)
        if len(self._routes) >= _MAX_CACHED_ROUTES:
            self._routes.clear()
        self._routes[uri] = route
        return route

    def _route(
        self, url: _ParsedURL
    ) -> tuple[
        PoolKey, Callable[[], IStreamClientEndpoint], bytes, list[tuple[bytes, bytes]]
    ]:
        """Decide the pool key, the endpoint, the request-target and extra fields."""
        proxy = self._proxy
        if proxy is None or url.scheme == "unix":
            key = self._key(url.scheme, url.host, url.port)
            return key, lambda: self._direct_endpoint(url), url.target, []
        proxy_target = ConnectTarget("http", proxy.host, proxy.port)
        if url.scheme == "http":
            # Absolute-form through the proxy (RFC 9112, 3.2.2); the proxy's
            # connections are shared by every origin.
            credentials = proxy.authorization()
            extra = (
                [] if credentials is None else [(b"proxy-authorization", credentials)]
            )
            key = PoolKey("http", proxy.host, proxy.port, proxy=("forward", proxy))
            return (
                key,
                lambda: self._endpoint_factory(proxy_target),
                url.absolute,
                extra,
            )
        key = PoolKey(
            "https",
            url.host,
            url.port,
            tls=self._tls_policy,
            proxy=("tunnel", proxy),
        )

        def tunnel() -> IStreamClientEndpoint:
            inner = ConnectTunnelEndpoint(
                self._endpoint_factory(proxy_target), proxy, url.host, url.port
            )
            return self._tls(inner, url)

        return key, tunnel, url.target, []

    def _key(self, scheme: str, host: str, port: int) -> PoolKey:
        """The pool key of a direct connection (cached: keys are compared often)."""
        cached = self._keys.get((scheme, host, port))
        if cached is None:
            tls = self._tls_policy if scheme == "https" else None
            if len(self._keys) >= _MAX_CACHED_KEYS:
                self._keys.clear()
            cached = self._keys[scheme, host, port] = PoolKey(scheme, host, port, tls)
        return cached

    def _direct_endpoint(self, url: _ParsedURL) -> IStreamClientEndpoint:
        """The endpoint of a direct connection to ``url``'s server."""
        scheme = "unix" if url.scheme == "unix" else "http"
        if url.scheme == "https":
            scheme = "https"
        inner = self._endpoint_factory(ConnectTarget(scheme, url.host, url.port))
        if url.scheme == "https":
            return self._tls(inner, url)
        return inner

    def _tls(
        self, inner: IStreamClientEndpoint, url: _ParsedURL
    ) -> IStreamClientEndpoint:
        """TLS over ``inner``, verified for ``url``'s host."""
        host = url.host
        try:
            ipaddress.ip_address(host)
            server_name = host.encode("ascii")
        except ValueError:
            server_name = idna.encode(host, uts46=True)
        creator = self._tls_policy.creatorForNetloc(server_name, url.port)
        return TLSEndpoint(creator, inner, host, url.port)

    def _default_endpoint(self, target: ConnectTarget) -> IStreamClientEndpoint:
        """``HostnameEndpoint`` for TCP, ``UNIXClientEndpoint`` for sockets."""
        timeout = max(1, round(self.connect_timeout))
        if target.scheme == "unix":
            return UNIXClientEndpoint(self._reactor, target.host, timeout=timeout)
        return HostnameEndpoint(
            self._reactor, target.host.encode("ascii"), target.port, timeout=timeout
        )


_MAX_CACHED_KEYS: Final = 1024
"""Pool keys an agent remembers; past this the cache starts over."""

_MAX_CACHED_ROUTES: Final = 1024
"""Parsed URLs an agent remembers; past this the cache starts over."""
