# -*- test-case-name: txhttp.test.test_client_http,txhttp.test.test_client_dns -*-
"""
The agents an `HTTPClient` sends through, built on first use.

`ClientAgents` answers "which ``IAgent`` for this URL?": the injected agent
if there is one, else txhttp's `Agent` built from `HTTPClientConfig` (pool
limits, TLS verification, connect timeout, DNS cache), one per proxy the
config picks for the URL, all sharing one `HTTPConnectionPool` and one DNS
cache. The agent layer is imported lazily, so importing the client does not
import the pool or TLS code, and no reactor is touched before the first
request. Left out: closing the pool (the client's `HTTPClient.stop`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorPluggableNameResolver, IReactorTime
from twisted.web.iweb import IAgent

from txhttp.client._config import HTTPClientConfig
from txhttp.client._url_helpers import parse_url_parts

if TYPE_CHECKING:
    from txhttp.client._dns import CachingHostnameResolver

__all__ = ["ClientAgents", "ClosablePool", "default_reactor"]


class ClosablePool(Protocol):
    """What the client needs of a connection pool: closing it."""

    def closeCachedConnections(self) -> Deferred[None]:
        """Close every connection; fire when none is left."""


def default_reactor() -> IReactorTime:
    """The global reactor, imported only when needed."""
    from twisted.internet import reactor  # noqa: PLC0415 (lazy: no global reactor at import)

    return cast(IReactorTime, reactor)


class ClientAgents:
    """
    The injected agent, or default agents per proxy, built lazily.

    Args:
        config: Returns the client's settings (pool, TLS, proxy, connect
            timeout, DNS cache), read when an agent is built.
        agent: The agent for every URL, if injected.
        pool: The pool for the default agents; built from ``config`` on
            first use when not given.
        reactor: What default agents connect with; the global reactor when
            `None`.
        clock: Returns the client's clock (for the DNS cache's TTL).
    """

    def __init__(
        self,
        config: Callable[[], HTTPClientConfig],
        *,
        agent: IAgent | None,
        pool: ClosablePool | None,
        reactor: IReactorTime | None,
        clock: Callable[[], IReactorTime],
    ) -> None:
        self._config = config
        self._given = agent
        self._pool = pool
        self._reactor = reactor
        self._clock = clock
        self._by_proxy: dict[str | None, IAgent] = {}
        self._dns_cache: CachingHostnameResolver | None = None

    @property
    def pool(self) -> ClosablePool | None:
        """The default agents' pool: the one given, or built, or `None` yet."""
        return self._pool

    @property
    def dns_cache(self) -> CachingHostnameResolver | None:
        """The default agents' DNS cache, once built (see `HTTPClient.dns_cache`)."""
        return self._dns_cache

    def agent_for(self, url: str) -> IAgent:
        """The agent for ``url``: the injected one, or a default per proxy."""
        if self._given is not None:
            return self._given
        proxy = self._config().proxy_for(url)
        agent = self._by_proxy.get(proxy)
        if agent is None:
            agent = self._by_proxy[proxy] = self._build(proxy)
        return agent

    def _build(self, proxy: str | None) -> IAgent:
        """Build the default agent (txhttp's; Twisted's if it is unavailable)."""
        reactor = self._reactor or default_reactor()
        config = self._config()
        try:
            from txhttp.client._agent import Agent  # noqa: PLC0415 (optional layer)
            from txhttp.client._pool import HTTPConnectionPool  # noqa: PLC0415
            from txhttp.client._proxy import HTTPProxy  # noqa: PLC0415
            from txhttp.client._tls import TLSPolicy  # noqa: PLC0415
        except ImportError:  # pragma: no cover - the agent layer ships with us
            return self._build_twisted(proxy, reactor)
        if self._pool is None:
            per_host = config.max_connections_per_host
            self._pool = HTTPConnectionPool(
                reactor,
                persistent=not config.force_close,
                max_connections=config.max_connections,
                max_connections_per_host=per_host,
                max_idle_per_host=min(config.max_keepalive_connections, per_host),
                idle_timeout=config.keepalive_timeout,
            )
        tls = TLSPolicy() if config.verify_tls else TLSPolicy.insecure()
        endpoint_factory = None
        resolver = self._dns_cache_for(reactor)
        if resolver is not None:
            from txhttp.client._dns import caching_endpoint_factory  # noqa: PLC0415

            endpoint_factory = caching_endpoint_factory(
                reactor, resolver, connect_timeout=config.connect_timeout
            )
        return cast(
            IAgent,
            Agent(
                reactor,
                pool=cast(HTTPConnectionPool, self._pool),
                tls_policy=tls,
                proxy=HTTPProxy.from_url(proxy) if proxy else None,
                endpoint_factory=endpoint_factory,
                connect_timeout=config.connect_timeout,
            ),
        )

    def _dns_cache_for(self, reactor: IReactorTime) -> CachingHostnameResolver | None:
        """The DNS cache shared by the default agents (built on first use)."""
        config = self._config()
        ttl = config.dns_cache_ttl
        if ttl is None or not IReactorPluggableNameResolver.providedBy(reactor):
            return None
        if self._dns_cache is None:
            from txhttp.client._dns import CachingHostnameResolver  # noqa: PLC0415

            self._dns_cache = CachingHostnameResolver(
                cast(IReactorPluggableNameResolver, reactor).nameResolver,
                self._clock(),
                ttl=ttl,
                max_entries=config.dns_cache_max_entries,
            )
        return self._dns_cache

    def _build_twisted(
        self, proxy: str | None, reactor: IReactorTime
    ) -> IAgent:  # pragma: no cover - fallback when txhttp's agent is absent
        from twisted.internet.endpoints import HostnameEndpoint  # noqa: PLC0415
        from twisted.web import client as web_client  # noqa: PLC0415

        config = self._config()
        if self._pool is None:
            pool = web_client.HTTPConnectionPool(
                reactor, persistent=not config.force_close
            )
            pool.maxPersistentPerHost = config.max_keepalive_connections
            pool.cachedConnectionTimeout = int(config.keepalive_timeout)
            self._pool = cast(ClosablePool, pool)
        if proxy:
            parts = parse_url_parts(proxy)
            endpoint = HostnameEndpoint(reactor, parts.host, parts.port)
            return cast(IAgent, web_client.ProxyAgent(endpoint, reactor, self._pool))
        return cast(
            IAgent,
            web_client.Agent(
                reactor, connectTimeout=config.connect_timeout, pool=self._pool
            ),
        )
