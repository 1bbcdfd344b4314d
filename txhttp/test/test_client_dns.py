"""
Tests for `txhttp.client._dns`: the client's bounded, TTL-based DNS cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp.client import ClientResponse, HTTPClient, HTTPClientConfig, HTTPError
from txhttp.client._agent import ConnectTarget
from txhttp.client._dns import (
    DEFAULT_DNS_CACHE_MAX_ENTRIES,
    CachingHostnameResolver,
    caching_endpoint_factory,
)
from txhttp.testing import RecordingAgent, make_response


@implementer(IHostResolution)
class FakeResolution:
    """A resolution in progress in `FakeResolver`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """Not used by these tests."""


@implementer(IHostnameResolver)
class FakeResolver:
    """
    Answers from a table, synchronously, recording every lookup.

    A name missing from the table resolves to nothing (a failed lookup).
    With ``hold`` set, answers wait until `release` is called.
    """

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []
        self.hold = False
        self._held: list[tuple[IResolutionReceiver, str, int]] = []

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """Record the lookup and answer from the table."""
        self.calls.append((hostName, portNumber))
        resolution = FakeResolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        if self.hold:
            self._held.append((resolutionReceiver, hostName, portNumber))
        else:
            self._answer(resolutionReceiver, hostName, portNumber)
        return resolution

    def release(self) -> None:
        """Answer the held lookups."""
        held, self._held = self._held, []
        for receiver, name, port in held:
            self._answer(receiver, name, port)

    def _answer(self, receiver: IResolutionReceiver, name: str, port: int) -> None:
        for host in self.table.get(name, []):
            if ":" in host:
                receiver.addressResolved(IPv6Address("TCP", host, port))
            else:
                receiver.addressResolved(IPv4Address("TCP", host, port))
        receiver.resolutionComplete()


@implementer(IResolutionReceiver)
class Receiver:
    """Collects what a resolver reports."""

    def __init__(self) -> None:
        self.began: list[IHostResolution] = []
        self.addresses: list[IAddress] = []
        self.completed = 0

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """Record the start."""
        self.began.append(resolutionInProgress)

    def addressResolved(self, address: IAddress) -> None:
        """Record an address."""
        self.addresses.append(address)

    def resolutionComplete(self) -> None:
        """Record the end."""
        self.completed += 1


def resolve(resolver: CachingHostnameResolver, name: str, port: int = 80) -> Receiver:
    """Resolve ``name`` and return what was reported."""
    receiver = Receiver()
    resolver.resolveHostName(receiver, name, port)
    return receiver


class CachingHostnameResolverTests(SynchronousTestCase):
    """`CachingHostnameResolver` reuses answers within the TTL, bounded."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.inner = FakeResolver(
            {
                "a.test": ["127.0.0.11", "::1"],
                "b.test": ["127.0.0.12"],
                "c.test": ["3.3.3.3"],
            }
        )
        self.cache = CachingHostnameResolver(self.inner, self.clock, ttl=10.0)

    def test_interface(self) -> None:
        """It provides IHostnameResolver."""
        self.assertTrue(verifyObject(IHostnameResolver, self.cache))

    def test_repeat_within_ttl_not_resolved_again(self) -> None:
        """A second lookup within the TTL is answered from the cache."""
        first = resolve(self.cache, "a.test")
        self.clock.advance(9.9)
        second = resolve(self.cache, "a.test")
        self.assertEqual([("a.test", 80)], self.inner.calls)
        self.assertEqual(1, self.cache.lookups)
        self.assertEqual(first.addresses, second.addresses)
        self.assertEqual((1, 1), (second.completed, len(second.began)))

    def test_expired_answer_resolved_again(self) -> None:
        """Once the TTL has passed the name is resolved again."""
        resolve(self.cache, "a.test")
        self.clock.advance(10.0)
        resolve(self.cache, "a.test")
        self.assertEqual(2, len(self.inner.calls))

    def test_cached_answer_takes_the_port_asked(self) -> None:
        """Cached addresses carry the port of each lookup, families kept."""
        resolve(self.cache, "a.test", 80)
        again = resolve(self.cache, "A.TEST", 8443)
        self.assertEqual(
            [IPv4Address("TCP", "127.0.0.11", 8443), IPv6Address("TCP", "::1", 8443)],
            again.addresses,
        )
        self.assertEqual(1, len(self.inner.calls))

    def test_failed_lookup_not_cached(self) -> None:
        """An empty answer is not cached: the next lookup asks again."""
        self.assertEqual([], resolve(self.cache, "nowhere.test").addresses)
        resolve(self.cache, "nowhere.test")
        self.assertEqual(2, len(self.inner.calls))
        self.assertEqual(0, len(self.cache))

    def test_in_flight_lookup_cached_when_complete(self) -> None:
        """An answer is cached when it completes, not before."""
        self.inner.hold = True
        pending = resolve(self.cache, "a.test")
        self.assertEqual(0, len(self.cache))
        self.inner.release()
        self.assertEqual(2, len(pending.addresses))
        self.inner.hold = False
        resolve(self.cache, "a.test")
        self.assertEqual(1, len(self.inner.calls))

    def test_bounded_oldest_evicted(self) -> None:
        """Past max_entries the oldest answer is dropped."""
        cache = CachingHostnameResolver(self.inner, self.clock, ttl=10.0, max_entries=2)
        resolve(cache, "a.test")
        resolve(cache, "b.test")
        resolve(cache, "c.test")
        self.assertEqual(2, len(cache))
        resolve(cache, "c.test")
        resolve(cache, "b.test")
        self.assertEqual(3, len(self.inner.calls))
        resolve(cache, "a.test")
        self.assertEqual(4, len(self.inner.calls))

    def test_expired_evicted_before_fresh(self) -> None:
        """When full, expired answers go first, fresh ones are kept."""
        cache = CachingHostnameResolver(self.inner, self.clock, ttl=10.0, max_entries=2)
        resolve(cache, "a.test")
        self.clock.advance(5)
        resolve(cache, "b.test")
        self.clock.advance(5)  # a.test expired, b.test fresh
        resolve(cache, "c.test")
        resolve(cache, "b.test")
        self.assertEqual(
            ["a.test", "b.test", "c.test"], [n for n, _ in self.inner.calls]
        )

    def test_clear(self) -> None:
        """clear() forgets every answer."""
        resolve(self.cache, "a.test")
        self.cache.clear()
        resolve(self.cache, "a.test")
        self.assertEqual(2, len(self.inner.calls))

    def test_arguments_validated(self) -> None:
        """ttl must be positive and max_entries at least 1."""
        with self.assertRaises(ValueError):
            CachingHostnameResolver(self.inner, self.clock, ttl=0)
        with self.assertRaises(ValueError):
            CachingHostnameResolver(self.inner, self.clock, ttl=1, max_entries=0)
        self.assertEqual(DEFAULT_DNS_CACHE_MAX_ENTRIES, self.cache.max_entries)


class CachingEndpointFactoryTests(SynchronousTestCase):
    """`caching_endpoint_factory` builds agent endpoints resolving via a cache."""

    def test_hostname_endpoint_uses_resolver(self) -> None:
        """TCP targets connect to the addresses the given resolver returns."""
        reactor = MemoryReactorClock()
        inner = FakeResolver({"a.test": ["127.0.0.11"]})
        cache = CachingHostnameResolver(inner, reactor, ttl=60.0)
        factory = caching_endpoint_factory(reactor, cache, connect_timeout=5)
        for _ in range(2):
            endpoint = factory(ConnectTarget("http", "a.test", 8080))
            self.assertIsInstance(endpoint, HostnameEndpoint)
            endpoint.connect(Factory.forProtocol(Protocol))
        self.assertEqual([("a.test", 8080)], inner.calls)
        self.assertEqual(
            [("127.0.0.11", 8080), ("127.0.0.11", 8080)],
            [(host, port) for host, port, *_ in reactor.tcpClients],
        )
        self.assertEqual(5, reactor.tcpClients[0][3])

    def test_unix_target(self) -> None:
        """UNIX socket targets get a UNIXClientEndpoint (nothing to resolve)."""
        reactor = MemoryReactorClock()
        inner = FakeResolver({})
        factory = caching_endpoint_factory(
            reactor,
            CachingHostnameResolver(inner, reactor, ttl=1.0),
            connect_timeout=0.2,
        )
        endpoint = factory(ConnectTarget("unix", "/tmp/s.sock", 0))
        self.assertIsInstance(endpoint, UNIXClientEndpoint)
        self.assertEqual([], inner.calls)


class HTTPClientDNSCacheTests(SynchronousTestCase):
    """`HTTPClient` resolves through a cache with ``config.dns_cache_ttl``."""

    def _client(
        self, ttl: float | None
    ) -> tuple[HTTPClient, FakeResolver, MemoryReactorClock]:
        reactor = MemoryReactorClock()
        inner = FakeResolver({"a.test": ["127.0.0.11"]})
        reactor.installNameResolver(inner)
        config = HTTPClientConfig(dns_cache_ttl=ttl, timeout=None)
        return HTTPClient(config, reactor=reactor), inner, reactor

    def _get_twice(self, client: HTTPClient, reactor: MemoryReactorClock) -> None:
        requests: list[Deferred[ClientResponse]] = []
        for path in ("/1", "/2"):
            requests.append(client.get(f"http://a.test:8080{path}"))
        # Neither connection completes in a memory reactor: cancel both.
        for d in requests:
            d.cancel()
            self.failureResultOf(d)

    def test_repeated_requests_resolve_once(self) -> None:
        """Two connections to one host within the TTL resolve its name once."""
        client, inner, reactor = self._client(300.0)
        self._get_twice(client, reactor)
        self.assertEqual(2, len(reactor.tcpClients))
        self.assertEqual([("a.test", 8080)], inner.calls)

    def test_ttl_expiry_resolves_again(self) -> None:
        """After the TTL, the next connection resolves the name again."""
        client, inner, reactor = self._client(30.0)
        d = client.get("http://a.test:8080/")
        d.cancel()
        self.failureResultOf(d)
        reactor.advance(30)
        d = client.get("http://a.test:8080/")
        d.cancel()
        self.failureResultOf(d)
        self.assertEqual(2, len(inner.calls))

    def test_none_disables_cache(self) -> None:
        """dns_cache_ttl=None resolves every connection's name."""
        client, inner, reactor = self._client(None)
        self._get_twice(client, reactor)
        self.assertEqual(2, len(inner.calls))

    def test_config_limits_used_and_validated(self) -> None:
        """The cache takes the config's TTL and size; a bad size is refused."""
        client, _inner, _reactor = self._client(45.0)
        self.assertIsNone(client.dns_cache)
        d = client.get("http://a.test:8080/")
        d.cancel()
        self.failureResultOf(d)
        cache = client.dns_cache
        assert cache is not None
        self.assertEqual((45.0, 256), (cache.ttl, cache.max_entries))
        with self.assertRaises(HTTPError):
            HTTPClientConfig(dns_cache_max_entries=0)

    def test_injected_agent_has_no_cache(self) -> None:
        """With an injected agent the client builds no DNS cache."""
        agent = RecordingAgent()
        agent.queue(make_response())
        client = HTTPClient(agent=agent, clock=Clock())
        self.successResultOf(client.get("http://a.test/"))
        self.assertIsNone(client.dns_cache)
