# -*- test-case-name: txhttp.test.test_client_tls -*-
"""
TLS for the client: `TLSPolicy` and an endpoint that connects only once the
handshake and the certificate checks are done.

`TLSPolicy` provides ``twisted.web.iweb.IPolicyForHTTPS`` and builds on
pyOpenSSL and service-identity. By default it verifies the server: the chain
against the system trust store (or a trust root you give), then the host name
or IP address (RFC 6125) with service-identity. It sends SNI, offers ALPN
``http/1.1`` and TLS 1.2 or later, and may present a client certificate.
Verification is turned off only by asking for it by name: `TLSPolicy.insecure`.

`TLSEndpoint` wraps any stream endpoint (TCP, a proxy tunnel) and fires its
connect Deferred with the HTTP protocol only after the handshake succeeded and
the certificate was accepted. So no request byte is ever written to a server
that failed verification, the connect timeout covers the handshake, and a
failure is one clear, typed error (`TLSHandshakeFailed`,
`CertificateVerificationFailed`) naming the host and what was wrong, rather
than an OpenSSL error buried in a response failure.

Left out: HTTP itself, pooling (the pool keys connections by policy), proxies.
"""

from __future__ import annotations

import ipaddress
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import idna
from OpenSSL import SSL, crypto
from service_identity import VerificationError
from service_identity.pyopenssl import verify_hostname, verify_ip_address

# IOpenSSLTrustRoot is public API (twisted.internet.ssl documents it) but is
# only importable from the private module that defines it.
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IAddress,
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
    TLSVersion,
    platformTrust,
)
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from txhttp.client._errors import CertificateVerificationFailed, TLSHandshakeFailed

__all__ = [
    "DEFAULT_ALPN_PROTOCOLS",
    "DEFAULT_MINIMUM_TLS_VERSION",
    "TLSEndpoint",
    "TLSPolicy",
]

DEFAULT_ALPN_PROTOCOLS: Final[tuple[bytes, ...]] = (b"http/1.1",)
"""What ALPN offers: only HTTP/1.1, the one protocol this client speaks."""

DEFAULT_MINIMUM_TLS_VERSION: Final = TLSVersion.TLSv1_2
"""Oldest TLS accepted; 1.0 and 1.1 are deprecated by RFC 8996."""

# OpenSSL's X509_V_ERR_* codes for the failures people meet, with a short
# reason for programs and words for people.
_VERIFY_REASONS: Final[dict[int, tuple[str, str]]] = {
    2: ("untrusted", "the issuer certificate could not be found"),
    7: ("bad-signature", "the certificate's signature is invalid"),
    9: ("not-yet-valid", "the certificate is not yet valid"),
    10: ("expired", "the certificate has expired"),
    18: ("self-signed", "the certificate is self-signed and not trusted"),
    19: ("untrusted", "the chain ends in a self-signed certificate not trusted"),
    20: ("untrusted", "the certificate's issuer is not trusted"),
    21: ("untrusted", "the certificate's issuer is not trusted"),
    23: ("revoked", "the certificate has been revoked"),
    26: ("bad-purpose", "the certificate is not for TLS servers"),
}


@dataclass(slots=True, eq=False)
class _Verification:
    """What one connection's certificate checks found (its app data)."""

    host: str
    port: int
    failure: CertificateVerificationFailed | None = None
    checks: bool = True
    peer: list[str] = field(default_factory=list)


def _subject(certificate: crypto.X509) -> str:
    """A printable subject for error messages."""
    parts = certificate.get_subject().get_components()
    return ", ".join(f"{k.decode()}={v.decode(errors='replace')}" for k, v in parts)


_STATES: Final[weakref.WeakKeyDictionary[SSL.Connection, _Verification]] = (
    weakref.WeakKeyDictionary()
)
"""Each connection's check record. Twisted takes the app data slot for its
TLS protocol, so the record is looked up by connection instead."""


def _verify_callback(
    connection: SSL.Connection,
    certificate: crypto.X509,
    error_number: int,
    depth: int,
    ok: int,
) -> bool:
    """Record the first chain error of ``connection``; refuse on any error."""
    state = _STATES.get(connection)
    if not ok and state is not None and state.checks and state.failure is None:
        reason, words = _VERIFY_REASONS.get(
            error_number, ("other", f"verification error {error_number}")
        )
        state.failure = CertificateVerificationFailed(
            state.host,
            state.port,
            f"{words} (X509_V_ERR {error_number} at depth {depth}, "
            f"subject {_subject(certificate)})",
            reason=reason,
            verify_code=error_number,
        )
    # An insecure policy accepts the chain whatever OpenSSL thinks of it.
    return bool(ok) or (state is not None and not state.checks)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IOpenSSLClientConnectionCreator)
class _ConnectionCreator:
    """Builds the ``SSL.Connection`` of one connection to ``host:port``."""

    def __init__(
        self,
        context: SSL.Context,
        host: str,
        port: int,
        *,
        verify: bool,
        alpn: Sequence[bytes],
    ) -> None:
        self._context = context
        self._alpn = list(alpn)
        self.host = host
        self.port = port
        self.verify = verify

    def clientConnectionForTLS(
        self, tlsProtocol: TLSMemoryBIOProtocol
    ) -> SSL.Connection:
        """Create the connection: SNI for names, checks recorded per connection."""
        connection = SSL.Connection(self._context, None)
        _STATES[connection] = _Verification(self.host, self.port, checks=self.verify)
        if self._alpn:
            connection.set_alpn_protos(self._alpn)
        if not _is_ip_address(self.host):
            connection.set_tlsext_host_name(idna.encode(self.host, uts46=True))
        connection.set_connect_state()
        return connection


@implementer(IPolicyForHTTPS)
class TLSPolicy:
    """
    How HTTPS connections are secured; provides ``IPolicyForHTTPS``.

    Verification is on unless the policy comes from `insecure`. The policy
    builds its OpenSSL context once, on first use, and shares it between
    connections; connections of different policies are never pooled
    together.

    Args:
        trust_root: Whom to trust, e.g. ``twisted.internet.ssl.Certificate``
            of a private CA (``Certificate.loadPEM(pem)``) or
            ``trustRootFromCertificates([...])``. Default: the system trust
            store (``platformTrust()``).
        client_certificate: A certificate with its private key
            (``PrivateCertificate.loadPEM(cert_pem + key_pem)``) presented
            to servers that ask for one.
        alpn_protocols: Protocols offered with ALPN.
        minimum_version: Oldest TLS version accepted.
    """

    def __init__(
        self,
        *,
        trust_root: IOpenSSLTrustRoot | Certificate | None = None,
        client_certificate: PrivateCertificate | None = None,
        alpn_protocols: Sequence[bytes] = DEFAULT_ALPN_PROTOCOLS,
        minimum_version: TLSVersion = DEFAULT_MINIMUM_TLS_VERSION,
    ) -> None:
        self._trust_root = trust_root
        self._client_certificate = client_certificate
        self._alpn = tuple(alpn_protocols)
        self._minimum_version = minimum_version
        self._verify = True
        self._context: SSL.Context | None = None

    @classmethod
    def insecure(
        cls, *, client_certificate: PrivateCertificate | None = None
    ) -> TLSPolicy:
        """
        A policy that accepts ANY certificate for ANY host name.

        Only for tests and for servers whose identity is checked some other
        way: anyone on the path can read and change the traffic. SNI and
        ALPN are still sent.
        """
        policy = cls(client_certificate=client_certificate)
        policy._verify = False
        return policy

    @property
    def verifies(self) -> bool:
        """Whether this policy checks the server's certificate and name."""
        return self._verify

    def creatorForNetloc(
        self, hostname: bytes, port: int
    ) -> IOpenSSLClientConnectionCreator:
        """
        Return the connection creator for ``hostname:port``.

        Args:
            hostname: The host name (IDNA bytes) or IP address to verify.
            port: The port, for error messages.
        """
        host = hostname.decode("ascii")
        return _ConnectionCreator(
            self._get_context(), host, port, verify=self._verify, alpn=self._alpn
        )

    def _get_context(self) -> SSL.Context:
        if self._context is None:
            self._context = self._build_context()
        return self._context

    def _build_context(self) -> SSL.Context:
        certificate = key = None
        if self._client_certificate is not None:
            certificate = self._client_certificate.original
            key = self._client_certificate.privateKey.original
        settings: dict[str, object] = {
            "privateKey": key,
            "certificate": certificate,
            "raiseMinimumTo": self._minimum_version,
        }
        if self._verify:
            settings["trustRoot"] = self._trust_root or platformTrust()
        else:
            settings["verify"] = False
        # CertificateOptions has no annotations for these keywords.
        options = CertificateOptions(**settings)  # type: ignore[arg-type]
        context: SSL.Context = options.getContext()
        if self._verify:
            context.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _verify_callback
            )
        else:
            context.set_verify(SSL.VERIFY_NONE, _verify_callback)
        return context

    def __repr__(self) -> str:
        return f"<TLSPolicy verify={self._verify} alpn={self._alpn!r}>"


def _check_peer(connection: SSL.Connection, state: _Verification) -> None:
    """Verify the host name or IP address against the peer certificate."""
    if not state.checks:
        return
    try:
        if _is_ip_address(state.host):
            verify_ip_address(connection, state.host)
        else:
            verify_hostname(connection, state.host)
    except VerificationError as e:
        state.failure = CertificateVerificationFailed(
            state.host,
            state.port,
            f"the certificate is not valid for {state.host!r}: {e}",
            reason="hostname-mismatch",
        )


@implementer(IHandshakeListener)
class _HandshakeGate(Protocol):
    """
    Stands in for the HTTP protocol until TLS is up and verified.

    Then it builds the real protocol, makes it the TLS layer's wrapped
    protocol (so it receives data with no extra hop) and fires ``ready``.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        address: IAddress | None,
        ready: Deferred[IProtocol],
        host: str,
        port: int,
    ) -> None:
        self._factory = factory
        self._address = address
        self._ready = ready
        self._host = host
        self._port = port
        self._state: _Verification | None = None

    def connectionMade(self) -> None:
        """Find the record that the certificate checks write to."""
        # The gate is only ever built under a TLSMemoryBIOProtocol (below).
        tls = cast(TLSMemoryBIOProtocol, self.transport)
        self._state = _STATES.get(tls.getHandle())

    def handshakeCompleted(self) -> None:
        """Check the name, then hand the connection to the HTTP protocol."""
        # The gate is only ever built under a TLSMemoryBIOProtocol (below).
        tls = cast(TLSMemoryBIOProtocol, self.transport)
        if self._state is not None:
            _check_peer(tls.getHandle(), self._state)
            if self._state.failure is not None:
                tls.abortConnection()
                return
        protocol = self._factory.buildProtocol(self._address or tls.getPeer())
        if protocol is None:
            tls.abortConnection()
            return
        tls.wrappedProtocol = protocol
        protocol.makeConnection(tls)
        ready, self._ready = self._ready, Deferred()
        ready.callback(protocol)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The connection closed before it was usable: say why, clearly."""
        if self._ready.called:
            return
        if self._state is not None and self._state.failure is not None:
            error: TLSHandshakeFailed = self._state.failure
        else:
            error = TLSHandshakeFailed(self._host, self._port, _describe(reason))
        self._ready.errback(Failure(error))


def _describe(reason: Failure) -> str:
    """Words for a handshake failure, from OpenSSL's error queue if any."""
    value = reason.value
    if isinstance(value, SSL.Error) and value.args and value.args[0]:
        try:
            parts = [str(item[2]) for item in value.args[0] if item[2]]
        except (TypeError, IndexError):
            parts = []
        if parts:
            return "; ".join(parts)
    return f"{type(value).__name__}: {value}"


class _GateFactory(Factory):
    """Builds the gate, then the TLS layer around it, for one connection."""

    def __init__(
        self,
        factory: IProtocolFactory,
        ready: Deferred[IProtocol],
        host: str,
        port: int,
    ) -> None:
        self._factory = factory
        self._ready = ready
        self._host = host
        self._port = port

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        """Build the gate for the connection to ``addr``."""
        return _HandshakeGate(self._factory, addr, self._ready, self._host, self._port)


@implementer(IStreamClientEndpoint)
class TLSEndpoint:
    """
    TLS over another stream endpoint; connected only once verified.

    Args:
        creator: From ``IPolicyForHTTPS.creatorForNetloc`` (any policy works;
            `TLSPolicy` adds the clear errors).
        wrapped: The endpoint carrying the TLS bytes (TCP, a tunnel).
        host: The server's name, for error messages.
        port: The server's port, for error messages.
    """

    def __init__(
        self,
        creator: IOpenSSLClientConnectionCreator,
        wrapped: IStreamClientEndpoint,
        host: str,
        port: int,
    ) -> None:
        self._creator = creator
        self._wrapped = wrapped
        self._host = host
        self._port = port

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        Connect, handshake and verify, then build ``protocolFactory``'s protocol.

        Returns:
            A Deferred firing with the protocol once it is connected over
            verified TLS, or failing with `TLSHandshakeFailed` (or its
            `CertificateVerificationFailed`), or the wrapped endpoint's error.
            Cancelling it aborts the attempt.
        """
        connecting: list[Deferred[IProtocol]] = []
        transports: list[TLSMemoryBIOProtocol] = []

        def cancel(_: Deferred[IProtocol]) -> None:
            if transports:
                transports[0].abortConnection()
            elif connecting:
                connecting[0].cancel()

        ready: Deferred[IProtocol] = Deferred(cancel)
        tls_factory = TLSMemoryBIOFactory(
            self._creator,
            True,
            _GateFactory(protocolFactory, ready, self._host, self._port),
        )

        def connected(protocol: IProtocol) -> None:
            if isinstance(protocol, TLSMemoryBIOProtocol):
                transports.append(protocol)

        def failed(reason: Failure) -> None:
            if not ready.called:
                ready.errback(reason)

        attempt = self._wrapped.connect(tls_factory)
        connecting.append(attempt)
        attempt.addCallbacks(connected, failed)
        return ready
