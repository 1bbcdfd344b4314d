# -*- test-case-name: txhttp.test.test_client_tls -*-
"""
Tests for `txhttp.client.TLSPolicy` and `TLSEndpoint`, against real TLS
servers on 127.0.0.1 using certificates each test run generates: a private
CA, a good server certificate, one for the wrong name, an expired one, an
untrusted self-signed one, and a client certificate for mutual TLS.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import reactor as _global_reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorSSL,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.protocol import (
    Factory,
    Protocol,
    ServerFactory,
    connectionDone,
)
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    PrivateCertificate,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import readBody
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface.verify import verifyObject

from txhttp.client._agent import Agent, ConnectTarget
from txhttp.client._errors import CertificateVerificationFailed, TLSHandshakeFailed
from txhttp.client._pool import HTTPConnectionPool
from txhttp.client._tls import TLSEndpoint, TLSPolicy

reactor: IReactorTCP = _global_reactor

_NOW = datetime.datetime.now(datetime.timezone.utc)
_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class _Pair:
    """A certificate and its key, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    def private(self) -> PrivateCertificate:
        private: PrivateCertificate = PrivateCertificate.loadPEM(
            self.cert_pem + self.key_pem
        )
        return private


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> _Pair:
    return _Pair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name("txhttp test CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - _DAY)
        .not_valid_after(_NOW + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    names: list[str],
    *,
    valid_from: datetime.datetime = _NOW - _DAY,
    valid_to: datetime.datetime = _NOW + 30 * _DAY,
    client: bool = False,
) -> _Pair:
    """A leaf certificate for ``names``, signed by ``ca`` (self-signed if None)."""
    key = _key()
    subject = _name(names[0])
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    usage = (
        ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca[0].subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.SubjectAlternativeName(sans), False)
        .add_extension(x509.ExtendedKeyUsage([usage]), False)
    )
    cert = builder.sign(ca[1] if ca else key, hashes.SHA256())
    return _pem(cert, key)


class _Certificates:
    """Everything the tests need, generated once per test run."""

    def __init__(self) -> None:
        ca_cert, ca_key = _make_ca()
        self.ca = _pem(ca_cert, ca_key)
        ca = (ca_cert, ca_key)
        self.good = _leaf(ca, ["localhost", "127.0.0.1"])
        self.wrong_name = _leaf(ca, ["wrong.example"])
        self.expired = _leaf(
            ca,
            ["localhost", "127.0.0.1"],
            valid_from=_NOW - 30 * _DAY,
            valid_to=_NOW - 2 * _DAY,
        )
        self.self_signed = _leaf(None, ["localhost", "127.0.0.1"])
        self.client = _leaf(ca, ["txhttp test client"], client=True)

    def trust_root(self) -> Certificate:
        return Certificate.loadPEM(self.ca.cert_pem)


_CERTS: _Certificates | None = None


def certificates() -> _Certificates:
    """The generated certificates (made on first use, then shared)."""
    global _CERTS  # noqa: PLW0603 - generating keys is slow; share them
    if _CERTS is None:
        _CERTS = _Certificates()
    return _CERTS


def server_options(
    pair: _Pair, *, require_client_cert: bool = False
) -> CertificateOptions:
    """Server-side TLS options: ``pair``, ALPN http/1.1, optional mutual TLS."""
    private = pair.private()
    extra: dict[str, object] = {}
    if require_client_cert:
        extra = {
            "verify": True,
            "requireCertificate": True,
            "caCerts": [certificates().trust_root().original],
        }
    return CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        acceptableProtocols=[b"http/1.1"],
        **extra,  # type: ignore[arg-type]  # CertificateOptions is untyped here
    )


class _Greeter(Protocol):
    """Server side: says hello and stays open."""

    def __init__(self) -> None:
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"hello")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class _Reader(Protocol):
    """Client side: collects what the server sends."""

    def __init__(self) -> None:
        self.received = b""
        self.first: Deferred[bytes] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.reason = reason
        self.lost.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if not self.first.called:
            self.first.callback(self.received)


def listen_tls(
    case: TestCase, pair: _Pair, *, require_client_cert: bool = False
) -> int:
    """Listen on 127.0.0.1 with ``pair``; stop listening at cleanup."""
    ssl_reactor: IReactorSSL = _global_reactor  # type: ignore[assignment]  # it provides IReactorSSL
    greeters: list[_Greeter] = []

    def build() -> _Greeter:
        greeter = _Greeter()
        greeters.append(greeter)
        return greeter

    port: IListeningPort = ssl_reactor.listenSSL(
        0,
        ServerFactory.forProtocol(build),  # type: ignore[arg-type]  # typed as Factory
        server_options(pair, require_client_cert=require_client_cert),
        interface="127.0.0.1",
    )

    def close() -> Deferred[object]:
        for greeter in greeters:
            if greeter.transport is not None and not greeter.lost.called:
                greeter.transport.abortConnection()  # type: ignore[attr-defined]  # TLS transports have it
        waits = [g.lost for g in greeters]
        stopped = port.stopListening()
        if stopped is not None:
            waits.append(stopped)
        return gatherResults(waits)  # type: ignore[return-value]  # any result will do

    case.addCleanup(close)
    return port.getHost().port  # type: ignore[attr-defined, no-any-return]  # IPv4Address has port


_E = TypeVar("_E", bound=Exception)


async def expect_failure(
    attempt: Coroutine[object, object, _Reader], kind: type[_E]
) -> _E:
    """Wait for ``attempt`` and return its error, which must be a ``kind``."""
    try:
        result = await attempt
    except kind as e:
        return e
    raise AssertionError(f"expected {kind.__name__}, got {result!r}")


class TLSPolicyTests(SynchronousTestCase):
    """`TLSPolicy` as an object: interfaces and settings."""

    def test_provides_policy_for_https(self) -> None:
        """TLSPolicy provides twisted.web's IPolicyForHTTPS."""
        self.assertTrue(verifyObject(IPolicyForHTTPS, TLSPolicy()))

    def test_verifies_by_default(self) -> None:
        """Verification is on unless asked off by name."""
        self.assertTrue(TLSPolicy().verifies)
        self.assertFalse(TLSPolicy.insecure().verifies)


class TLSEndpointTests(TestCase):
    """`TLSEndpoint` against real TLS servers on 127.0.0.1."""

    timeout = 20

    async def connect(
        self,
        port: int,
        policy: TLSPolicy,
        host: str = "localhost",
    ) -> _Reader:
        """Connect to 127.0.0.1:``port``, verifying the certificate for ``host``."""
        readers: list[_Reader] = []

        def build() -> _Reader:
            reader = _Reader()
            readers.append(reader)
            return reader

        creator = policy.creatorForNetloc(host.encode("ascii"), port)
        endpoint = TLSEndpoint(
            creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port), host, port
        )
        await endpoint.connect(Factory.forProtocol(build))
        protocol = readers[0]

        def close() -> Deferred[None]:
            if protocol.transport is not None and not protocol.lost.called:
                protocol.transport.loseConnection()
            return protocol.lost

        self.addCleanup(close)
        return protocol

    async def test_good_certificate(self) -> None:
        """A certificate from the trusted CA for the right name is accepted."""
        port = listen_tls(self, certificates().good)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        reader = await self.connect(port, policy)
        data = await reader.first
        self.assertEqual(b"hello", data)

    async def test_alpn_http11(self) -> None:
        """ALPN negotiates http/1.1."""
        port = listen_tls(self, certificates().good)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        reader = await self.connect(port, policy)
        await reader.first
        assert reader.transport is not None
        self.assertEqual(
            b"http/1.1",
            reader.transport.negotiatedProtocol,  # type: ignore[attr-defined]  # TLS transport
        )

    async def test_ip_address(self) -> None:
        """An IP address is verified against the certificate's IP SAN."""
        port = listen_tls(self, certificates().good)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        reader = await self.connect(port, policy, host="127.0.0.1")
        data = await reader.first
        self.assertEqual(b"hello", data)

    async def test_wrong_hostname(self) -> None:
        """A certificate for another name fails as hostname-mismatch, naming it."""
        port = listen_tls(self, certificates().wrong_name)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        error = await expect_failure(
            self.connect(port, policy), CertificateVerificationFailed
        )
        self.assertEqual("hostname-mismatch", error.reason)
        self.assertIn("localhost", str(error))
        self.assertEqual(port, error.port)

    async def test_expired(self) -> None:
        """An expired certificate fails as expired (X509_V_ERR 10)."""
        port = listen_tls(self, certificates().expired)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        error = await expect_failure(
            self.connect(port, policy), CertificateVerificationFailed
        )
        self.assertEqual(("expired", 10), (error.reason, error.verify_code))
        self.assertIn("expired", str(error))

    async def test_untrusted_self_signed(self) -> None:
        """A self-signed certificate nobody trusts fails as self-signed."""
        port = listen_tls(self, certificates().self_signed)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        error = await expect_failure(
            self.connect(port, policy), CertificateVerificationFailed
        )
        self.assertEqual("self-signed", error.reason)

    async def test_untrusted_ca(self) -> None:
        """A certificate from a CA outside the trust root fails as untrusted."""
        port = listen_tls(self, certificates().good)
        other = Certificate.loadPEM(certificates().self_signed.cert_pem)
        policy = TLSPolicy(trust_root=other)
        error = await expect_failure(
            self.connect(port, policy), CertificateVerificationFailed
        )
        self.assertEqual("untrusted", error.reason)

    async def test_insecure_accepts_anything(self) -> None:
        """TLSPolicy.insecure() accepts an untrusted cert for the wrong name."""
        port = listen_tls(self, certificates().self_signed)
        reader = await self.connect(port, TLSPolicy.insecure(), host="wrong.example")
        data = await reader.first
        self.assertEqual(b"hello", data)

    async def test_client_certificate(self) -> None:
        """A client certificate is presented to a server that requires one."""
        port = listen_tls(self, certificates().good, require_client_cert=True)
        policy = TLSPolicy(
            trust_root=certificates().trust_root(),
            client_certificate=certificates().client.private(),
        )
        reader = await self.connect(port, policy)
        data = await reader.first
        self.assertEqual(b"hello", data)

    async def test_client_certificate_missing(self) -> None:
        """Without the certificate a server requires, the handshake fails."""
        port = listen_tls(self, certificates().good, require_client_cert=True)
        policy = TLSPolicy(trust_root=certificates().trust_root())
        connected = self.connect(port, policy)

        try:
            protocol = await connected
        except TLSHandshakeFailed as e:
            self.assertIn("localhost", str(e))
        else:
            # TLS 1.3 finishes the client's handshake before the server
            # checks the certificate: the refusal comes as the connection
            # closing with an alert, and no data.
            await protocol.lost
            assert protocol.reason is not None
            self.assertIn("certificate required", str(protocol.reason.value))
            self.assertEqual(b"", protocol.received)


class _Hello(Resource):
    """A twisted.web resource answering every GET with a fixed body."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"secure hello"


class AgentTLSTests(TestCase):
    """HTTPS through `Agent` against a twisted.web TLS server on 127.0.0.1."""

    timeout = 20

    def setUp(self) -> None:
        self.clock: IReactorTime = _global_reactor
        self.pool = HTTPConnectionPool(self.clock)
        self.addCleanup(self.pool.closeCachedConnections)

    def serve(self, pair: _Pair) -> int:
        ssl_reactor: IReactorSSL = _global_reactor  # type: ignore[assignment]  # it does
        port: IListeningPort = ssl_reactor.listenSSL(
            0,
            Site(_Hello()),
            server_options(pair),
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        number: int = port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
        return number

    def agent(self, policy: TLSPolicy | None) -> Agent:
        def loopback(target: ConnectTarget) -> TCP4ClientEndpoint:
            return TCP4ClientEndpoint(reactor, "127.0.0.1", target.port)

        return Agent(
            self.clock, pool=self.pool, tls_policy=policy, endpoint_factory=loopback
        )

    async def test_https_get(self) -> None:
        """An https URL is fetched over TLS verified for the URL's host name."""
        port = self.serve(certificates().good)
        agent = self.agent(TLSPolicy(trust_root=certificates().trust_root()))
        response = await agent.request(b"GET", b"https://localhost:%d/" % port)
        self.assertEqual(b"secure hello", await readBody(response))

    async def test_wrong_hostname_via_agent(self) -> None:
        """The agent's request fails with CertificateVerificationFailed itself."""
        port = self.serve(certificates().wrong_name)
        agent = self.agent(TLSPolicy(trust_root=certificates().trust_root()))
        try:
            await agent.request(b"GET", b"https://localhost:%d/" % port)
        except CertificateVerificationFailed as e:
            self.assertEqual("hostname-mismatch", e.reason)
        else:
            self.fail("no error")
        self.assertEqual(0, self.pool.stats().connections)

    async def test_default_policy_uses_system_trust(self) -> None:
        """By default only the system trust store counts: a private CA fails."""
        port = self.serve(certificates().good)
        try:
            await self.agent(None).request(b"GET", b"https://localhost:%d/" % port)
        except CertificateVerificationFailed as e:
            self.assertEqual("untrusted", e.reason)
        else:
            self.fail("no error")
