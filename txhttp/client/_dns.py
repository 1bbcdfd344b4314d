# -*- test-case-name: txhttp.test.test_client_dns -*-
"""
A bounded DNS cache for `HTTPClient`: repeated requests to one host within
``HTTPClientConfig.dns_cache_ttl`` seconds resolve its name once.

Two pieces, both plugged in through public hooks only:

- `CachingHostnameResolver`, an ``IHostnameResolver`` wrapping another one
  (normally the reactor's ``nameResolver``). It keeps each successful answer
  for ``ttl`` seconds of the injected clock, holds at most ``max_entries``
  names (expired ones are dropped first, then the oldest), and never caches a
  failed or empty answer, so a name that did not resolve is asked again next
  time. Lookups for a name not in the cache go to the wrapped resolver, even
  when one for the same name is already in flight.
- `caching_endpoint_factory`, an `EndpointFactory` for txhttp's `Agent`: the
  same endpoints the agent makes by default (``HostnameEndpoint`` with its
  "happy eyeballs" address racing, ``UNIXClientEndpoint`` for sockets), with
  names resolved through the cache. ``HostnameEndpoint`` takes its resolver
  from its reactor's ``nameResolver``, so the factory hands it a thin view of
  the reactor whose ``nameResolver`` is the cache; everything else is the
  reactor's own.

The TTL is the client's, not the DNS record's: ``IHostnameResolver`` does not
report record TTLs. Keep it short where addresses change often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IReactorPluggableNameResolver,
    IReactorTime,
    IResolutionReceiver,
    IStreamClientEndpoint,
)
from zope.interface import implementer

from txhttp.client._agent import ConnectTarget, EndpointFactory

__all__ = [
    "DEFAULT_DNS_CACHE_MAX_ENTRIES",
    "CachingHostnameResolver",
    "caching_endpoint_factory",
]

DEFAULT_DNS_CACHE_MAX_ENTRIES: Final = 256
"""
Host names a `CachingHostnameResolver` remembers at once.

Enough for the hosts a service talks to; a client fed endless distinct names
cannot grow it without bound.
"""

_CacheKey = tuple[str, frozenset[type[IAddress]] | None, str]


@dataclass(frozen=True, slots=True)
class _Entry:
    """A cached answer: the addresses (any port) and when they expire."""

    addresses: tuple[IAddress, ...]
    expires: float


@implementer(IHostResolution)
class _CachedResolution:
    """The ``IHostResolution`` of an answer served from the cache."""

    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:
        """Nothing to cancel: a cached answer is delivered at once."""


def _with_port(address: IAddress, port: int) -> IAddress:
    """``address`` with its port replaced (the cache is shared by all ports)."""
    if isinstance(address, IPv6Address):
        return IPv6Address(
            address.type, address.host, port, address.flowInfo, address.scopeID
        )
    if isinstance(address, IPv4Address):
        return IPv4Address(address.type, address.host, port)
    return address


@implementer(IResolutionReceiver)
class _Recorder:
    """Forwards a resolution to the caller and caches the answer when complete."""

    def __init__(
        self,
        receiver: IResolutionReceiver,
        cache: CachingHostnameResolver,
        key: _CacheKey,
    ) -> None:
        self._receiver = receiver
        self._cache = cache
        self._key = key
        self._addresses: list[IAddress] = []

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        """Pass the start on."""
        self._receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: IAddress) -> None:
        """Remember the address and pass it on."""
        self._addresses.append(address)
        self._receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        """Cache a non-empty answer, then pass the end on."""
        if self._addresses:
            self._cache._store(self._key, self._addresses)
        self._receiver.resolutionComplete()


@implementer(IHostnameResolver)
class CachingHostnameResolver:
    """
    An ``IHostnameResolver`` that reuses answers for ``ttl`` seconds.

    Args:
        resolver: Where names are really resolved (usually
            ``reactor.nameResolver``).
        clock: The time source for expiry.
        ttl: Seconds an answer is reused; must be positive.
        max_entries: Names kept at once (``DEFAULT_DNS_CACHE_MAX_ENTRIES``);
            must be at least 1.

    Attributes:
        lookups: How many names were passed to ``resolver`` (cache misses).
    """

    def __init__(
        self,
        resolver: IHostnameResolver,
        clock: IReactorTime,
        *,
        ttl: float,
        max_entries: int = DEFAULT_DNS_CACHE_MAX_ENTRIES,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, not {ttl!r}")
        if isinstance(max_entries, bool) or max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries!r}")
        self._resolver = resolver
        self._clock = clock
        self.ttl: Final = ttl
        self.max_entries: Final = max_entries
        self._entries: dict[_CacheKey, _Entry] = {}
        self.lookups = 0

    def __len__(self) -> int:
        """The number of names cached (expired ones included until purged)."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every cached answer."""
        self._entries.clear()

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        """
        Resolve ``hostName``, from the cache while its answer is fresh.

        See ``IHostnameResolver.resolveHostName``. A cached answer is
        delivered before this returns, with ``portNumber`` in each address.
        """
        key: _CacheKey = (
            hostName.lower(),
            frozenset(addressTypes) if addressTypes is not None else None,
            transportSemantics,
        )
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires > self._clock.seconds():
                resolution = _CachedResolution(hostName)
                resolutionReceiver.resolutionBegan(resolution)
                for address in entry.addresses:
                    resolutionReceiver.addressResolved(_with_port(address, portNumber))
                resolutionReceiver.resolutionComplete()
                return resolution
            del self._entries[key]
        self.lookups += 1
        return self._resolver.resolveHostName(
            _Recorder(resolutionReceiver, self, key),
            hostName,
            portNumber,
            addressTypes,
            transportSemantics,
        )

    def _store(self, key: _CacheKey, addresses: Sequence[IAddress]) -> None:
        """Cache ``addresses`` under ``key``, evicting to stay within bounds."""
        now = self._clock.seconds()
        self._entries.pop(key, None)
        if len(self._entries) >= self.max_entries:
            for stale in [k for k, e in self._entries.items() if e.expires <= now]:
                del self._entries[stale]
        while len(self._entries) >= self.max_entries:
            # Insertion order: the first entry is the oldest answer.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(tuple(addresses), now + self.ttl)


@implementer(IReactorPluggableNameResolver)
class _ResolverView:
    """A reactor whose ``nameResolver`` is replaced; all else is delegated."""

    def __init__(self, reactor: object, resolver: IHostnameResolver) -> None:
        self._reactor = reactor
        self._resolver = resolver

    @property
    def nameResolver(self) -> IHostnameResolver:
        """The resolver ``HostnameEndpoint`` will use."""
        return self._resolver

    def installNameResolver(self, resolver: IHostnameResolver) -> IHostnameResolver:
        """Replace the resolver of this view only; return the previous one."""
        previous, self._resolver = self._resolver, resolver
        return previous

    def __getattr__(self, name: str) -> object:
        return getattr(self._reactor, name)


def caching_endpoint_factory(
    reactor: IReactorTime,
    resolver: IHostnameResolver,
    *,
    connect_timeout: float,
) -> EndpointFactory:
    """
    An `EndpointFactory` for `Agent` that resolves names through ``resolver``.

    Args:
        reactor: Provides ``IReactorTCP``, ``IReactorUNIX`` and
            ``IReactorTime`` (connections and timers are the reactor's).
        resolver: The resolver for host names, typically a
            `CachingHostnameResolver`.
        connect_timeout: Seconds to connect (rounded to whole seconds, at
            least 1, as ``HostnameEndpoint`` wants).

    Returns:
        A factory making ``HostnameEndpoint`` for TCP targets and
        ``UNIXClientEndpoint`` for ``"unix"`` ones.
    """
    view = _ResolverView(reactor, resolver)
    timeout = max(1, round(connect_timeout))

    def endpoint(target: ConnectTarget) -> IStreamClientEndpoint:
        if target.scheme == "unix":
            return UNIXClientEndpoint(reactor, target.host, timeout=timeout)
        return HostnameEndpoint(
            view, target.host.encode("ascii"), target.port, timeout=timeout
        )

    return endpoint
