# -*- test-case-name: txhttp.test.test_client_proxy -*-
"""
HTTP proxies for the client: absolute-form requests and ``CONNECT`` tunnels.

`HTTPProxy` says where the proxy is and how to authenticate to it. `Agent`
uses it two ways (RFC 9110, section 9.3.6; RFC 9112, section 3.2.2):

- ``http://`` URLs go to the proxy as ordinary requests whose target is the
  absolute URL; connections to the proxy are pooled and shared by origins.
  ``Proxy-Authorization`` is added to those requests, which the proxy
  consumes (RFC 9110, section 11.7.2).
- ``https://`` URLs go through a tunnel: `ConnectTunnelEndpoint` sends
  ``CONNECT host:port`` (with ``Proxy-Authorization``) and, once the proxy
  answers 2xx, hands the raw connection to TLS and then HTTP. The
  credentials travel only on the ``CONNECT`` request, which the origin never
  sees; requests inside the tunnel carry none.

The ``CONNECT`` exchange is written and parsed by the wire core
(`serialize_request_head`, `ResponseParser`), like every other message.
Left out: SOCKS, proxies reached over TLS, and ``no_proxy`` rules.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from txhttp._wire import (
    Limits,
    ProtocolError,
    ResponseHead,
    ResponseParser,
    serialize_request_head,
)
from txhttp.client._errors import ProxyTunnelFailed

__all__ = [
    "DEFAULT_PROXY_PORT",
    "ConnectTunnelEndpoint",
    "HTTPProxy",
]

DEFAULT_PROXY_PORT: Final = 8080
"""Port used when a proxy URL names none (the common HTTP proxy port)."""

_TUNNEL_LIMITS: Final = Limits(max_header_section_bytes=16 * 1024, max_header_count=50)
"""A CONNECT answer is a short head; its body, if any, is never read."""


@dataclass(frozen=True, slots=True)
class HTTPProxy:
    """
    An HTTP proxy: where it is and, optionally, the credentials it wants.

    Attributes:
        host: The proxy's host name or address.
        port: The proxy's port.
        username: For ``Proxy-Authorization: Basic``, or ``None``.
        password: Goes with ``username``.
    """

    host: str
    port: int = DEFAULT_PROXY_PORT
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> HTTPProxy:
        """
        Parse ``http://[user:password@]host[:port]``; credentials %-decoded.

        Raises:
            ValueError: The URL is not an ``http`` URL with a host.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "http":
            raise ValueError(f"proxy URL must start with http://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"proxy URL has no host: {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PROXY_PORT,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    @property
    def address(self) -> str:
        """``host:port``, for keys and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def authorization(self) -> bytes | None:
        """The ``Proxy-Authorization`` value (Basic, RFC 7617), or ``None``."""
        if self.username is None:
            return None
        secret = f"{self.username}:{self.password or ''}".encode()
        return b"Basic " + base64.b64encode(secret)


class _TunnelProtocol(Protocol):
    """
    Asks the proxy for a tunnel, then relays the raw connection.

    Once the proxy answers 2xx, the protocol built by the caller's factory
    takes over the connection: bytes from the proxy are passed on to it
    as they come, starting with any that followed the proxy's answer.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        address: IAddress | None,
        *,
        request: bytes,
        ready: Deferred[IProtocol],
        proxy: str,
        authority: str,
    ) -> None:
        self._factory = factory
        self._address = address
        self._request = request
        self._ready = ready
        self._proxy = proxy
        self._authority = authority
        self._parser = ResponseParser(_TUNNEL_LIMITS)
        self._inner: IProtocol | None = None

    def connectionMade(self) -> None:
        """Send the CONNECT request."""
        self._parser.expect_response(b"CONNECT")
        assert self.transport is not None
        self.transport.write(self._request)

    def dataReceived(self, data: bytes) -> None:
        """Read the proxy's answer, or relay tunnel bytes."""
        if self._inner is not None:
            self._inner.dataReceived(data)
            return
        self._parser.feed(data)
        try:
            while True:
                event = self._parser.next_event()
                if event is None:
                    return
                if isinstance(event, ResponseHead) and event.status >= 200:
                    self._answered(event)
                    return
        except ProtocolError as e:
            self._fail(None, f"invalid answer to CONNECT: {e}")

    def _answered(self, head: ResponseHead) -> None:
        assert self.transport is not None
        if not 200 <= head.status < 300:
            reason = head.reason.decode("latin-1")
            self._fail(head.status, f"proxy answered {head.status} {reason}")
            return
        inner = self._factory.buildProtocol(self._address or self.transport.getPeer())
        if inner is None:
            self._fail(None, "the tunnel's protocol factory built no protocol")
            return
        self._inner = inner
        leftover = self._parser.take_leftover()
        inner.makeConnection(self.transport)
        ready, self._ready = self._ready, Deferred()
        ready.callback(inner)
        if leftover:
            inner.dataReceived(leftover)

    def _fail(self, status: int | None, detail: str) -> None:
        ready, self._ready = self._ready, Deferred()
        assert self.transport is not None
        self.transport.loseConnection()
        ready.errback(
            Failure(ProxyTunnelFailed(self._proxy, self._authority, status, detail))
        )

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Pass the loss on to the tunnel's protocol, or fail the tunnel."""
        if self._inner is not None:
            self._inner.connectionLost(reason)
        elif not self._ready.called:
            self._ready.errback(
                Failure(
                    ProxyTunnelFailed(
                        self._proxy,
                        self._authority,
                        None,
                        f"connection closed before the proxy answered: "
                        f"{reason.getErrorMessage()}",
                    )
                )
            )


class _TunnelFactory(Factory):
    """Builds the `_TunnelProtocol` of one proxy connection."""

    def __init__(
        self,
        factory: IProtocolFactory,
        request: bytes,
        ready: Deferred[IProtocol],
        proxy: str,
        authority: str,
    ) -> None:
        self._factory = factory
        self._request = request
        self._ready = ready
        self._proxy = proxy
        self._authority = authority

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        """Build the tunnel protocol for the proxy connection."""
        return _TunnelProtocol(
            self._factory,
            addr,
            request=self._request,
            ready=self._ready,
            proxy=self._proxy,
            authority=self._authority,
        )


@implementer(IStreamClientEndpoint)
class ConnectTunnelEndpoint:
    """
    A connection to ``host:port`` through an HTTP proxy's ``CONNECT`` tunnel.

    Args:
        proxy_endpoint: How to reach the proxy.
        proxy: The proxy (its address and credentials).
        host: The origin's host name or address.
        port: The origin's port.
    """

    def __init__(
        self,
        proxy_endpoint: IStreamClientEndpoint,
        proxy: HTTPProxy,
        host: str,
        port: int,
    ) -> None:
        self._proxy_endpoint = proxy_endpoint
        self._proxy = proxy
        self._authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def request_bytes(self) -> bytes:
        """The ``CONNECT`` request this endpoint sends (RFC 9110, 9.3.6)."""
        authority = self._authority.encode("idna")
        fields = [(b"Host", authority)]
        credentials = self._proxy.authorization()
        if credentials is not None:
            fields.append((b"Proxy-Authorization", credentials))
        return serialize_request_head(b"CONNECT", authority, fields)

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect to the proxy, open the tunnel, then build the caller's protocol.

        Returns:
            A Deferred firing with that protocol once the tunnel is open, or
            failing with `ProxyTunnelFailed` (with the proxy's status, 407
            for bad credentials) or the proxy endpoint's connection error.
            Cancelling it closes the attempt.
        """
        connecting: list[Deferred[IProtocol]] = []
        tunnels: list[IProtocol] = []

        def cancel(_: Deferred[IProtocol]) -> None:
            if tunnels and isinstance(tunnels[0], Protocol):
                transport = tunnels[0].transport
                if transport is not None:
                    transport.loseConnection()
            elif connecting:
                connecting[0].cancel()

        ready: Deferred[IProtocol] = Deferred(cancel)
        factory = _TunnelFactory(
            protocolFactory,
            self.request_bytes(),
            ready,
            self._proxy.address,
            self._authority,
        )

        def failed(reason: Failure) -> None:
            if not ready.called:
                ready.errback(reason)

        attempt = self._proxy_endpoint.connect(factory)
        connecting.append(attempt)
        attempt.addCallbacks(tunnels.append, failed)
        return ready
