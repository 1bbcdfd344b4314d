# -*- test-case-name: txhttp.test.test_client_http -*-
"""
`HTTPClient`: the convenient client layer applications use.

It turns ``client.get(url, params=..., json=...)`` into ``IAgent.request``
calls and wraps what comes back in a `ClientResponse`. Around each request it
runs, in this order:

1. option handling: URL and params, merged headers, body (bytes, form, JSON,
   multipart), credentials, cookies, ``Accept-Encoding``;
2. the ``filter-request`` event (a listener may answer without the network);
3. the per-request deadline (``timeout``), covering everything below and
   the whole-body reads (`ClientResponse.content`, ``text()``, ``json()``);
4. redirects (each hop is a full exchange; credentials are stripped when the
   origin changes);
5. per hop, the `ResiliencePipeline` (retry, circuit breaker, bulkhead), and
   per attempt the interceptors' request hooks, the agent call, the cookie
   jar and the interceptors' response hooks;
6. the ``filter-response`` event, notifications and metrics.

Every collaborator is injected (agent or pool, resilience parts, interceptors,
events, metrics, clock); all have defaults. The client talks to the network
only through ``IAgent``: by default txhttp's `Agent` with its
`HTTPConnectionPool`, built lazily from `HTTPClientConfig`. Methods return
Deferreds, so ``async def`` code run by ``Deferred.fromCoroutine`` can await
them; failures are `HTTPClientError` subclasses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum, auto
from http.cookiejar import CookieJar
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, TypedDict, cast
from urllib.parse import urlencode, urljoin
from weakref import WeakSet

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    fail,
    gatherResults,
    succeed,
)
from twisted.internet.interfaces import IReactorPluggableNameResolver, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from typing_extensions import Unpack

from txhttp.client._breaker import CircuitBreakerRegistry, CircuitState
from txhttp.client._bulkhead import Bulkhead
from txhttp.client._client_response import ClientResponse, Deadline
from txhttp.client._config import HTTPClientConfig
from txhttp.client._cookies import (
    Auth,
    authorization_header,
    cookie_header,
    store_cookies,
)
from txhttp.client._decompress import accept_encoding
from txhttp.client._digest import DigestAuth, parse_digest_challenge
from txhttp.client._events import (
    FILTER_REQUEST,
    FILTER_RESPONSE,
    REQUEST_COMPLETED,
    REQUEST_DISPATCHED,
    REQUEST_RETRYING,
    REQUEST_TIMED_OUT,
    RESPONSE_RECEIVED,
    RETRIES_EXHAUSTED,
    EventDispatcher,
    FilterEvent,
    RequestCompleted,
    RequestDispatched,
    RequestRetrying,
    RequestTimedOut,
    ResponseReceived,
    RetriesExhausted,
)
from txhttp.client._exceptions import (
    HTTPClientError,
    HTTPConnectionError,
    HTTPError,
    HTTPRetryExhaustedError,
    HTTPTimeoutError,
    HTTPTooManyRedirectsError,
)
from txhttp.client._interceptors import (
    Interceptor,
    InterceptorChain,
    RequestContext,
    ResponseContext,
)
from txhttp.client._metrics import MetricsRecorder, record_request
from txhttp.client._multipart import Fields, MultipartProducer
from txhttp.client._producers import BytesBodyProducer
from txhttp.client._resilience import ResiliencePipeline
from txhttp.client._retry import RetryPolicy, ScheduledRetry, request_never_sent
from txhttp.client._sse import (
    DEFAULT_MAX_RECONNECTS,
    DEFAULT_RECONNECT_DELAY,
    EventSource,
)
from txhttp.client._streaming import StreamContext, StreamingResponse
from txhttp.client._url_helpers import (
    HeaderInput,
    ParamsInput,
    build_url,
    merge_headers,
    parse_url_parts,
    validate_timeout,
)

if TYPE_CHECKING:
    from txhttp.client._dns import CachingHostnameResolver

__all__ = [
    "REDIRECT_STATUSES",
    "SENSITIVE_HEADERS",
    "HTTPClient",
    "HTTPClientState",
    "HealthCheckResult",
    "PreparedRequest",
    "RequestBody",
    "RequestOptions",
]

_log = Logger()

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
"""Statuses followed when ``allow_redirects`` is on (RFC 9110, section 15.4)."""

SENSITIVE_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Request headers dropped when a redirect leaves the original origin."""

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_TIMEOUT_ERROR_NAMES: Final = frozenset(
    {
        "ConnectTimeout",
        "ResponseHeadTimeout",
        "BodyIdleTimeout",
        "TotalTimeout",
        "PoolQueueTimeout",
        "TimeoutError",
    }
)
"""Agent errors (matched by class name in the MRO) that mean a deadline passed."""

_MAX_DIGEST_ANSWERS: Final = 2
"""
Digest challenges answered per request hop: the first, and one more if the
server says the nonce was ``stale`` (so wrong credentials cost one retry).
"""

_LOCAL_ERROR_NAMES: Final = frozenset({"SchemeNotSupported", "LocalProtocolError"})
"""Agent errors that mean the request itself was invalid (our caller's fault)."""


class _Unset(Enum):
    """Marks an option that was not given (``None`` has its own meaning)."""

    UNSET = auto()


_UNSET: Final = _Unset.UNSET


class RequestOptions(TypedDict, total=False):
    """
    The keyword options of `HTTPClient.request` and the verb methods.

    Attributes:
        headers: Extra request headers (a later value wins over the
            client's defaults, names compared case-insensitively).
        params: Query parameters appended to the URL; `None` values are
            left out, a list repeats the name.
        data: The body: bytes, text (UTF-8), a mapping (sent as
            ``application/x-www-form-urlencoded``, or as multipart fields
            with ``files``) or an ``IBodyProducer`` (sent once: no retry or
            307/308 redirect replays it).
        json: A value sent as a JSON body (``application/json``).
        files: Multipart fields (see `HTTPClient.post_multipart`); ``data``'s mapping
            fields are sent first.
        timeout: Seconds for the whole exchange: redirects, retries and
            their waits, the response head and reading the body with
            ``content()``, ``text()``, ``json()`` (not streams); `None` for
            no deadline; the client's ``timeout`` by default.
        auth: ``(user, password)``, `BasicAuth` or `BearerAuth` (sent with
            the request), or `DigestAuth` (sent only in answer to a ``401``
            with a ``Digest`` challenge from the request's origin).
        cookies: Cookies sent with this request (besides the jar's).
        allow_redirects: Follow redirects (default ``True``).
        max_redirects: Redirects followed (the config's by default).
        decompress: Ask for and undo gzip/deflate (br/zstd if installed);
            default ``True``.
    """

    headers: HeaderInput
    params: ParamsInput
    data: object
    json: object
    files: Fields | None
    timeout: float | None
    auth: Auth | None
    cookies: Mapping[str, str] | None
    allow_redirects: bool
    max_redirects: int
    decompress: bool


class RequestBody:
    """
    A request body that can be produced again for each attempt.

    Attributes:
        make: Returns a fresh ``IBodyProducer`` for one attempt.
        content_type: The ``Content-Type`` the body implies, if any.
    """

    __slots__ = ("content_type", "make")

    def __init__(
        self, make: Callable[[], IBodyProducer], content_type: str | None
    ) -> None:
        self.make = make
        self.content_type = content_type

    @classmethod
    def of_bytes(cls, body: bytes, content_type: str | None) -> RequestBody:
        return cls(lambda: BytesBodyProducer(body), content_type)

    @classmethod
    def once(cls, producer: IBodyProducer) -> RequestBody:
        used = [False]

        def make() -> IBodyProducer:
            if used[0]:
                raise HTTPError(
                    "an IBodyProducer given as data can be sent only once "
                    "(retry or redirect needed it again)"
                )
            used[0] = True
            return producer

        return cls(make, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """
    A request ready to send, as filter listeners see it.

    A ``filter-request`` listener may replace ``event.request`` with a changed
    copy (``dataclasses.replace``).

    Attributes:
        method: The method, upper case.
        url: The absolute URL, query included.
        headers: The headers to send (before per-attempt cookies).
        body: The body, if any (opaque).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: RequestBody | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HealthCheckResult:
    """
    What `HTTPClient.health_check` found.

    Attributes:
        healthy: The client is usable and, if a URL was probed, it answered
            below 400.
        state: The client's lifecycle state name.
        in_flight: Requests in progress.
        open_circuits: Hosts whose circuit breaker is not closed.
        status: The probe's status, when a URL was probed.
        latency: The probe's duration in seconds, by the client's clock.
        error: Why the probe failed, if it did.
    """

    healthy: bool
    state: str
    in_flight: int
    open_circuits: tuple[str, ...] = ()
    status: int | None = None
    latency: float | None = None
    error: str | None = None


class HTTPClientState(Enum):
    """Lifecycle of an `HTTPClient`."""

    NEW = auto()
    RUNNING = auto()
    STOPPING = auto()
    STOPPED = auto()


class _LifecycleInput(Enum):
    """What moves an `HTTPClient` between `HTTPClientState` values."""

    START = auto()
    STOP = auto()
    CLOSED = auto()


_TRANSITIONS: Final[
    Mapping[tuple[HTTPClientState, _LifecycleInput], HTTPClientState]
] = {
    (HTTPClientState.NEW, _LifecycleInput.START): HTTPClientState.RUNNING,
    (HTTPClientState.RUNNING, _LifecycleInput.START): HTTPClientState.RUNNING,
    (HTTPClientState.NEW, _LifecycleInput.STOP): HTTPClientState.STOPPED,
    (HTTPClientState.RUNNING, _LifecycleInput.STOP): HTTPClientState.STOPPING,
    (HTTPClientState.STOPPING, _LifecycleInput.STOP): HTTPClientState.STOPPING,
    (HTTPClientState.STOPPED, _LifecycleInput.STOP): HTTPClientState.STOPPED,
    (HTTPClientState.STOPPING, _LifecycleInput.CLOSED): HTTPClientState.STOPPED,
}


class _Pool(Protocol):
    """What the client needs of a connection pool: closing it."""

    def closeCachedConnections(self) -> Deferred[None]:
        """Close every connection; fire when none is left."""


def _describe_error(error: BaseException) -> str:
    """A readable one-line description, looking inside twisted.web wrappers."""
    reasons = getattr(error, "reasons", None)
    if isinstance(reasons, list) and reasons:
        inner = "; ".join(
            f"{type(r.value).__name__}: {r.value}"
            if isinstance(r, Failure)
            else repr(r)
            for r in reasons
        )
        return f"{type(error).__name__}({inner})"
    return f"{type(error).__name__}: {error}"


def _wrap_agent_error(error: Exception, method: str, url: str) -> Exception:
    """Turn an agent failure into the matching `HTTPClientError` (or `HTTPError`)."""
    if isinstance(error, HTTPClientError | HTTPError):
        return error
    names = {kind.__name__ for kind in type(error).__mro__}
    wrapped: Exception
    if names & _TIMEOUT_ERROR_NAMES:
        wrapped = HTTPTimeoutError(
            f"timed out below the client: {_describe_error(error)}",
            phase="agent",
            method=method,
            url=url,
        )
    elif names & _LOCAL_ERROR_NAMES:
        wrapped = HTTPError(f"request refused by the agent: {_describe_error(error)}")
    else:
        wrapped = HTTPConnectionError(
            f"request failed: {_describe_error(error)}",
            method=method,
            url=url,
            request_sent=not request_never_sent(error),
        )
    wrapped.__cause__ = error
    return wrapped


def _to_headers(headers: Mapping[str, str]) -> Headers:
    result = Headers()
    for name, value in headers.items():
        result.addRawHeader(name, value)
    return result


def _without(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    drop = {n.lower() for n in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _default_reactor() -> IReactorTime:
    from twisted.internet import reactor  # noqa: PLC0415 (lazy: no global reactor at import)

    return cast(IReactorTime, reactor)


class HTTPClient:
    """
    A configurable HTTP client: verbs, JSON, redirects, retries and more.

    Every argument is optional; each has a documented default.

    Args:
        config: Pool, timeout, TLS, proxy, cookie and size settings.
        agent: The ``IAgent`` to send through. Default: txhttp's `Agent`
            over a pool built from ``config`` (one per proxy in use).
        pool: A pool for the default agent (ignored with ``agent``); closed
            by `stop`.
        retry_policy: Retry decisions; default: no retries.
        circuit_breaker: Circuit breakers per host; default: none.
        bulkhead: Bounded concurrency; default: none.
        interceptors: An `InterceptorChain`, or interceptors to put in one.
        resilience: A whole `ResiliencePipeline`; when given it replaces
            ``retry_policy``, ``circuit_breaker`` and ``bulkhead``.
        metrics: Receives ``http.request.duration`` and
            ``http.request.status``; default: none.
        events: The `EventDispatcher` for filter and notification events;
            default: a new, empty one (the ``events`` attribute).
        clock: Time for deadlines, durations and SSE reconnection delays;
            default: the reactor.
        reactor: The reactor the default agent connects with; default: the
            global reactor (imported lazily).
        cookie_jar: The jar used when ``config.cookies_enabled``; default: a
            new ``http.cookiejar.CookieJar``.
        headers: Default headers sent with every request.
        name: Names the client in logs, interceptor contexts and health
            checks.
    """

    def __init__(
        self,
        config: HTTPClientConfig | None = None,
        *,
        agent: IAgent | None = None,
        pool: _Pool | None = None,
        retry_policy: RetryPolicy | None = None,
        circuit_breaker: CircuitBreakerRegistry | None = None,
        bulkhead: Bulkhead | None = None,
        interceptors: InterceptorChain | Sequence[Interceptor] | None = None,
        resilience: ResiliencePipeline | None = None,
        metrics: MetricsRecorder | None = None,
        events: EventDispatcher | None = None,
        clock: IReactorTime | None = None,
        reactor: IReactorTime | None = None,
        cookie_jar: CookieJar | None = None,
        headers: HeaderInput = None,
        name: str | None = None,
    ) -> None:
        self.config = config if config is not None else HTTPClientConfig()
        self._reactor = reactor
        self._clock: IReactorTime | None = clock
        self._given_agent = agent
        self._pool = pool
        self._agents: dict[str | None, IAgent] = {}
        if agent is not None:
            self._agents[None] = agent
        self.name = name
        if isinstance(interceptors, InterceptorChain):
            self.interceptors = interceptors
        else:
            self.interceptors = InterceptorChain(list(interceptors or ()))
        self.events = events if events is not None else EventDispatcher()
        self.metrics = metrics
        self._resilience = resilience
        self._retry_policy = retry_policy
        self._breakers = circuit_breaker
        self._bulkhead = bulkhead
        self.cookie_jar: CookieJar | None = (
            (cookie_jar if cookie_jar is not None else CookieJar())
            if self.config.cookies_enabled
            else None
        )
        self._default_headers = merge_headers(headers)
        self._state = HTTPClientState.NEW
        self._in_flight: set[Deferred[object]] = set()
        self._streams: set[StreamingResponse] = set()
        self._event_sources: WeakSet[EventSource] = WeakSet()
        self._stopped: Deferred[None] | None = None
        self._dns_cache: CachingHostnameResolver | None = None

    # -- collaborators -------------------------------------------------------

    @property
    def clock(self) -> IReactorTime:
        """The time source (the reactor unless one was injected)."""
        if self._clock is None:
            self._clock = self._reactor or _default_reactor()
        return self._clock

    @property
    def resilience(self) -> ResiliencePipeline:
        """The pipeline requests run through (built from the parts if needed)."""
        if self._resilience is None:
            self._resilience = ResiliencePipeline.from_parts(
                clock=self.clock,
                retry=self._retry_policy,
                breaker_registry=self._breakers,
                bulkhead=self._bulkhead,
            )
        return self._resilience

    @property
    def state(self) -> HTTPClientState:
        """The lifecycle state."""
        return self._state

    def _advance(self, event: _LifecycleInput) -> None:
        try:
            self._state = _TRANSITIONS[self._state, event]
        except KeyError:
            raise HTTPClientError(
                f"client cannot {event.name.lower()} while {self._state.name.lower()}"
            ) from None

    def _agent_for(self, url: str) -> IAgent:
        """The agent for ``url``: the injected one, or a default per proxy."""
        if self._given_agent is not None:
            return self._given_agent
        proxy = self.config.proxy_for(url)
        agent = self._agents.get(proxy)
        if agent is None:
            agent = self._agents[proxy] = self._build_agent(proxy)
        return agent

    def _build_agent(self, proxy: str | None) -> IAgent:
        """Build the default agent (txhttp's; Twisted's if it is unavailable)."""
        reactor = self._reactor or _default_reactor()
        config = self.config
        try:
            from txhttp.client._agent import Agent  # noqa: PLC0415 (optional layer)
            from txhttp.client._pool import HTTPConnectionPool  # noqa: PLC0415
            from txhttp.client._proxy import HTTPProxy  # noqa: PLC0415
            from txhttp.client._tls import TLSPolicy  # noqa: PLC0415
        except ImportError:  # pragma: no cover - the agent layer ships with us
            return self._build_twisted_agent(proxy, reactor)
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

    @property
    def dns_cache(self) -> CachingHostnameResolver | None:
        """
        The default agent's DNS cache, once built (``None`` before, when
        ``config.dns_cache_ttl`` is ``None``, or with an injected agent).
        """
        return self._dns_cache

    def _dns_cache_for(self, reactor: IReactorTime) -> CachingHostnameResolver | None:
        """The client's DNS cache, shared by its agents (built on first use)."""
        ttl = self.config.dns_cache_ttl
        if ttl is None or not IReactorPluggableNameResolver.providedBy(reactor):
            return None
        if self._dns_cache is None:
            from txhttp.client._dns import CachingHostnameResolver  # noqa: PLC0415

            self._dns_cache = CachingHostnameResolver(
                cast(IReactorPluggableNameResolver, reactor).nameResolver,
                self.clock,
                ttl=ttl,
                max_entries=self.config.dns_cache_max_entries,
            )
        return self._dns_cache

    def _build_twisted_agent(
        self, proxy: str | None, reactor: IReactorTime
    ) -> IAgent:  # pragma: no cover - fallback when txhttp's agent is absent
        from twisted.internet.endpoints import HostnameEndpoint  # noqa: PLC0415
        from twisted.web import client as web_client  # noqa: PLC0415

        if self._pool is None:
            pool = web_client.HTTPConnectionPool(
                reactor, persistent=not self.config.force_close
            )
            pool.maxPersistentPerHost = self.config.max_keepalive_connections
            pool.cachedConnectionTimeout = int(self.config.keepalive_timeout)
            self._pool = cast(_Pool, pool)
        if proxy:
            parts = parse_url_parts(proxy)
            endpoint = HostnameEndpoint(reactor, parts.host, parts.port)
            return cast(IAgent, web_client.ProxyAgent(endpoint, reactor, self._pool))
        return cast(
            IAgent,
            web_client.Agent(
                reactor,
                connectTimeout=self.config.connect_timeout,
                pool=self._pool,
            ),
        )

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Deferred[None]:
        """
        Make the client ready; requests call it on first use (lazy start).

        Returns:
            A Deferred that has fired. Fails with `HTTPClientError` if the
            client was stopped.
        """
        try:
            self._advance(_LifecycleInput.START)
        except HTTPClientError as error:
            return fail(error)
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """
        Stop: cancel requests in progress, close open streams and connections.

        Returns:
            A Deferred firing once every connection of the client's pool is
            closed (at once if the agent was injected: its owner closes it).
            Calling it again returns a Deferred for the same moment.
        """
        if self._stopped is not None:
            return self._when_stopped()
        previous = self._state
        self._advance(_LifecycleInput.STOP)
        for stream in list(self._streams):
            stream.close()
        for source in list(self._event_sources):
            source.close()
        for request in list(self._in_flight):
            request.cancel()
        if previous is HTTPClientState.NEW or self._pool is None:
            self._state = HTTPClientState.STOPPED
            self._stopped = succeed(None)
        else:
            closing = self._pool.closeCachedConnections()

            def closed(result: object) -> None:
                if self._state is HTTPClientState.STOPPING:
                    self._advance(_LifecycleInput.CLOSED)

            closing.addBoth(closed)
            self._stopped = closing
        return self._when_stopped()

    def _when_stopped(self) -> Deferred[None]:
        """A new Deferred firing (with `None`) once the stop completed."""
        assert self._stopped is not None
        done: Deferred[None] = Deferred()

        def relay(result: object) -> object:
            done.callback(None)
            return None

        self._stopped.addBoth(relay)
        return done

    def close(self) -> Deferred[None]:
        """Same as `stop`."""
        return self.stop()

    async def __aenter__(self) -> HTTPClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _check_usable(self) -> None:
        if self._state in (HTTPClientState.STOPPING, HTTPClientState.STOPPED):
            raise HTTPClientError(f"client is {self._state.name.lower()}")
        if self._state is HTTPClientState.NEW:
            self._advance(_LifecycleInput.START)

    def warm_up(self, urls: Iterable[str]) -> Deferred[int]:
        """
        Open connections ahead of time by sending ``HEAD`` to each URL.

        Errors are logged and swallowed: warming up is an optimisation.

        Returns:
            A Deferred firing with how many URLs answered (any status).
        """

        async def one(url: str) -> int:
            try:
                response = await self.request(
                    "HEAD", url, allow_redirects=False, decompress=False
                )
            except CancelledError:
                return 0
            except Exception as error:
                _log.warn(
                    "warm-up of {url} failed: {error}",
                    url=url,
                    error=_describe_error(error),
                )
                return 0
            response.release()
            return 1

        warming = [Deferred.fromCoroutine(one(url)) for url in urls]
        return gatherResults(warming).addCallback(sum)

    def health_check(self, url: str | None = None) -> Deferred[HealthCheckResult]:
        """
        Report on the client; with ``url``, also probe it with a ``GET``.

        Returns:
            A Deferred firing with a `HealthCheckResult`; it never fails.
        """
        open_circuits: tuple[str, ...] = ()
        breakers = (
            self._resilience.breaker_registry
            if self._resilience is not None
            else self._breakers
        )
        if breakers is not None:
            open_circuits = tuple(
                sorted(
                    host
                    for host, state in breakers.states().items()
                    if state is not CircuitState.CLOSED
                )
            )
        usable = self._state in (HTTPClientState.NEW, HTTPClientState.RUNNING)

        def result(**extra: object) -> HealthCheckResult:
            return HealthCheckResult(
                healthy=bool(extra.pop("healthy", usable)),
                state=self._state.name,
                in_flight=len(self._in_flight),
                open_circuits=open_circuits,
                status=cast("int | None", extra.get("status")),
                latency=cast("float | None", extra.get("latency")),
                error=cast("str | None", extra.get("error")),
            )

        if url is None or not usable:
            return succeed(result())

        async def probe() -> HealthCheckResult:
            started = self.clock.seconds()
            try:
                response = await self.request("GET", url)
            except Exception as error:
                return result(
                    healthy=False,
                    error=_describe_error(error),
                    latency=self.clock.seconds() - started,
                )
            response.release()
            return result(
                healthy=response.ok,
                status=response.status,
                latency=self.clock.seconds() - started,
            )

        return Deferred.fromCoroutine(probe())

    # -- requests --------------------------------------------------------------

    def request(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """
        Send a request; see `RequestOptions` for the options.

        Returns:
            A Deferred firing with the `ClientResponse` once its head arrived
            (the body is read on demand), or failing with
            `HTTPConnectionError`, `HTTPTimeoutError`,
            `HTTPRetryExhaustedError`, `HTTPCircuitOpenError`,
            `HTTPBulkheadFullError`, `HTTPInterceptorError`,
            `HTTPTooManyRedirectsError`, or `HTTPError` for invalid options.
            Error statuses are responses, not failures (see
            `ClientResponse.raise_for_status`). Cancelling it aborts the
            request.
        """
        try:
            self._check_usable()
            prepared, settings = self._prepare(method, url, options)
        except (HTTPClientError, HTTPError) as error:
            return fail(error)
        return self._track(Deferred.fromCoroutine(self._run(prepared, settings)))

    def _track(self, deferred: Deferred[ClientResponse]) -> Deferred[ClientResponse]:
        as_object = cast("Deferred[object]", deferred)
        self._in_flight.add(as_object)

        def forget(result: object) -> object:
            self._in_flight.discard(as_object)
            return result

        deferred.addBoth(forget)
        return deferred

    def get(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``GET``; see `request`."""
        return self.request("GET", url, **options)

    def post(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``POST``; see `request`."""
        return self.request("POST", url, **options)

    def put(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``PUT``; see `request`."""
        return self.request("PUT", url, **options)

    def patch(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``PATCH``; see `request`."""
        return self.request("PATCH", url, **options)

    def delete(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``DELETE``; see `request`."""
        return self.request("DELETE", url, **options)

    def head(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a ``HEAD``; see `request`."""
        return self.request("HEAD", url, **options)

    def options(
        self, url: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send an ``OPTIONS``; see `request`."""
        return self.request("OPTIONS", url, **options)

    def post_multipart(
        self, url: str, fields: Fields, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """
        ``POST`` a ``multipart/form-data`` body, streamed part by part.

        Args:
            url: Where to send it.
            fields: Each value is text, bytes, or ``(filename, data)`` /
                ``(filename, data, content_type)`` where data is bytes, text
                or a binary file object (read in chunks, never whole).
            options: As for `request`.
        """
        options["files"] = fields
        return self.request("POST", url, **options)

    def stream(
        self, method: str, url: str, **options: Unpack[RequestOptions]
    ) -> StreamContext:
        """
        A request whose body is read as it arrives, for ``async with``.

        ``async with client.stream("GET", url) as response:`` sends the
        request and yields a `StreamingResponse` once the head arrived; its
        `~StreamingResponse.aiter_bytes` and `~StreamingResponse.aiter_lines`
        read the body with backpressure. Leaving the block aborts an
        unfinished body.
        """

        def send() -> Deferred[ClientResponse]:
            return self.request(method, url, **options)

        return StreamContext(
            send,
            max_line_bytes=self.config.max_line_bytes,
            open_streams=self._streams,
        )

    def sse(
        self,
        url: str,
        *,
        reconnect: bool = False,
        last_event_id: str = "",
        reconnect_delay: float = DEFAULT_RECONNECT_DELAY,
        max_reconnects: int = DEFAULT_MAX_RECONNECTS,
        **options: Unpack[RequestOptions],
    ) -> EventSource:
        """
        Server-Sent Events from ``url``, as an async iterator of events.

        Args:
            url: The event stream.
            reconnect: Reconnect when the stream ends or breaks, sending
                ``Last-Event-ID`` and waiting the server's ``retry`` (or
                ``reconnect_delay`` seconds) on the client's clock.
            last_event_id: Resume after this event ID from the start.
            reconnect_delay: Seconds to wait when the server set no retry.
            max_reconnects: Reconnections in a row without an event before
                giving up with `HTTPConnectionError`.
            options: As for `request` (``headers`` are merged).
        """
        base_headers = options.get("headers")
        options.setdefault("decompress", False)

        def open_stream(extra: Mapping[str, str]) -> Deferred[ClientResponse]:
            each: RequestOptions = {**options}
            each["headers"] = merge_headers(base_headers, extra)
            return self.request("GET", url, **each)

        source = EventSource(
            open_stream,
            clock=self.clock,
            reconnect=reconnect,
            reconnect_delay=reconnect_delay,
            max_reconnects=max_reconnects,
            last_event_id=last_event_id,
            max_line_bytes=self.config.max_line_bytes,
            max_event_bytes=self.config.max_sse_event_bytes,
        )
        self._event_sources.add(source)
        return source

    # -- preparing ---------------------------------------------------------------

    def _prepare(
        self, method: str, url: str, options: RequestOptions
    ) -> tuple[PreparedRequest, _Settings]:
        if not isinstance(method, str) or not _TOKEN.match(method):
            raise HTTPError(f"method must be an HTTP token, got {method!r}")
        method = method.upper()
        full_url = build_url(url, None, options.get("params"))
        decompress = options.get("decompress", True)
        automatic: dict[str, str] = {"User-Agent": self.config.user_agent}
        if decompress:
            automatic["Accept-Encoding"] = accept_encoding()
        if self.config.force_close:
            automatic["Connection"] = "close"
        body = self._body(options)
        if body is not None and body.content_type is not None:
            automatic["Content-Type"] = body.content_type
        auth = options.get("auth")
        digest: DigestAuth | None = None
        if isinstance(auth, DigestAuth):
            digest = auth
        elif auth is not None:
            automatic["Authorization"] = authorization_header(auth)
        cookies = options.get("cookies")
        if cookies:
            automatic["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        headers = merge_headers(
            automatic, self._default_headers, options.get("headers")
        )
        timeout: float | _Unset | None = options.get("timeout", _UNSET)
        if timeout is _UNSET:
            timeout = self.config.timeout
        timeout = validate_timeout(timeout)
        max_redirects = options.get("max_redirects", self.config.max_redirects)
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise HTTPError("max_redirects must be an int")
        settings = _Settings(
            timeout=timeout,
            allow_redirects=bool(options.get("allow_redirects", True)),
            max_redirects=max_redirects,
            decompress=bool(decompress),
            digest=digest,
        )
        return PreparedRequest(
            method=method, url=full_url, headers=headers, body=body
        ), settings

    def _body(self, options: RequestOptions) -> RequestBody | None:
        data = options.get("data")
        has_json = "json" in options and options["json"] is not None
        files = options.get("files")
        given = [
            n for n, v in (("data", data), ("json", has_json or None)) if v is not None
        ]
        if len(given) > 1:
            raise HTTPError("give at most one of data and json")
        if files is not None:
            if has_json:
                raise HTTPError("json cannot be combined with files (multipart)")
            fields: list[tuple[str, object]] = []
            if isinstance(data, Mapping):
                fields.extend(data.items())
            elif data is not None:
                raise HTTPError("with files, data must be a mapping of form fields")
            fields.extend(files.items() if isinstance(files, Mapping) else files)
            first = MultipartProducer(cast(Fields, fields))
            boundary = first.boundary.decode("ascii")
            producers = [first]

            def make_multipart() -> IBodyProducer:
                if producers:
                    return producers.pop()
                # A fresh producer per retry; files are rewound by position.
                again = MultipartProducer(cast(Fields, fields), boundary=boundary)
                again._produced_once = True
                return again

            return RequestBody(make_multipart, first.content_type)
        if has_json:
            from txhttp.client._url_helpers import dumps_json  # noqa: PLC0415

            return RequestBody.of_bytes(dumps_json(options["json"]), "application/json")
        if data is None:
            return None
        if isinstance(data, bytes):
            return RequestBody.of_bytes(data, None)
        if isinstance(data, str):
            return RequestBody.of_bytes(
                data.encode("utf-8"), "text/plain; charset=utf-8"
            )
        if isinstance(data, Mapping):
            encoded = urlencode(list(data.items())).encode("ascii")
            return RequestBody.of_bytes(encoded, "application/x-www-form-urlencoded")
        if IBodyProducer.providedBy(data):
            return RequestBody.once(data)
        raise HTTPError(
            f"data must be bytes, str, a mapping or an IBodyProducer, "
            f"not {type(data).__name__}"
        )

    # -- running -------------------------------------------------------------------

    async def _run(
        self, request: PreparedRequest, settings: _Settings
    ) -> ClientResponse:
        started = self.clock.seconds()
        response: ClientResponse | None = None
        error: BaseException | None = None
        event: FilterEvent[PreparedRequest, ClientResponse | IResponse] = FilterEvent(
            request
        )
        if settings.timeout is not None:
            settings = replace(
                settings,
                deadline=Deadline(
                    self.clock, started + settings.timeout, settings.timeout
                ),
            )
        try:
            if self.events.has_listeners(FILTER_REQUEST):
                await self.events.dispatch(FILTER_REQUEST, event)
                request = event.request
            if event.response is not None:
                response = self._adopt(event.response, request)
            else:
                response = await self._follow(request, settings)
            if self.events.has_listeners(FILTER_RESPONSE):
                event.response = response
                await self.events.dispatch(FILTER_RESPONSE, event)
                if event.response is not response:
                    replaced = event.response
                    response.release()
                    response = self._adopt(replaced, request)
            return response
        except CancelledError:
            raise
        except HTTPTimeoutError as timed_out:
            error = timed_out
            await self._notify(
                REQUEST_TIMED_OUT,
                RequestTimedOut(
                    method=request.method,
                    url=request.url,
                    timeout=timed_out.timeout or 0.0,
                    phase=timed_out.phase,
                ),
            )
            raise
        except HTTPRetryExhaustedError as exhausted:
            error = exhausted
            await self._notify(
                RETRIES_EXHAUSTED,
                RetriesExhausted(
                    method=request.method,
                    url=request.url,
                    attempts=exhausted.attempts,
                    errors=tuple(exhausted.errors),
                ),
            )
            raise
        except Exception as failed:
            error = failed
            raise
        finally:
            duration = self.clock.seconds() - started
            status = response.status if response is not None else None
            self._record(request, status, duration, error)
            if self.events.has_listeners(REQUEST_COMPLETED):
                self.events.notify(
                    REQUEST_COMPLETED,
                    RequestCompleted(
                        method=request.method,
                        url=request.url,
                        status=status,
                        duration=duration,
                        error=error,
                    ),
                )

    def _adopt(
        self, response: ClientResponse | IResponse, request: PreparedRequest
    ) -> ClientResponse:
        """A listener's response as a `ClientResponse`."""
        if isinstance(response, ClientResponse):
            return response
        if IResponse.providedBy(response):
            return ClientResponse(
                response, method=request.method, url=request.url, config=self.config
            )
        raise HTTPError(
            f"a filter listener set a response of type {type(response).__name__}, "
            f"not ClientResponse or IResponse"
        )

    def _record(
        self,
        request: PreparedRequest,
        status: int | None,
        duration: float,
        error: BaseException | None,
    ) -> None:
        if self.metrics is None:
            return
        try:
            parts = parse_url_parts(request.url)
            record_request(
                self.metrics,
                method=request.method,
                host=parts.host,
                port=parts.port,
                duration=duration,
                status=status,
                error=error,
            )
        except Exception:
            _log.failure("metrics recorder failed")

    async def _notify(self, name: str, event: object) -> None:
        if self.events.has_listeners(name):
            await self.events.notify(name, event)

    async def _follow(
        self, request: PreparedRequest, settings: _Settings
    ) -> ClientResponse:
        """Exchange, following redirects within the limit."""
        history: list[ClientResponse] = []
        visited = [request.url]
        current = request
        while True:
            response = await self._exchange(current, settings, history)
            if settings.digest is not None and response.status == 401:
                response = await self._answer_digest(
                    request, current, response, settings, history
                )
            location = response.header("location")
            if (
                not settings.allow_redirects
                or response.status not in REDIRECT_STATUSES
                or location is None
            ):
                return response
            response.release()
            if len(history) >= settings.max_redirects:
                raise HTTPTooManyRedirectsError(
                    f"more than {settings.max_redirects} redirects",
                    history=visited,
                    method=request.method,
                    url=request.url,
                )
            history.append(response)
            current = self._redirected(current, response.status, location)
            visited.append(current.url)

    async def _answer_digest(
        self,
        original: PreparedRequest,
        current: PreparedRequest,
        response: ClientResponse,
        settings: _Settings,
        history: Sequence[ClientResponse],
    ) -> ClientResponse:
        """
        Answer a ``Digest`` challenge in a 401 and send the request again.

        Only for the origin the request was made to (never after a redirect
        elsewhere). A second challenge is answered only if it says
        ``stale=true``, up to ``_MAX_DIGEST_ANSWERS``; otherwise, or when the
        challenge cannot be answered, the 401 is returned as it is.
        """
        auth = settings.digest
        assert auth is not None
        origin = parse_url_parts(original.url).origin
        answered = 0
        while response.status == 401 and answered < _MAX_DIGEST_ANSWERS:
            if parse_url_parts(current.url).origin != origin:
                break
            challenge = parse_digest_challenge(
                response.headers.getRawHeaders("www-authenticate", [])
            )
            if challenge is None or (answered and not challenge.stale):
                break
            value = auth.authorization(challenge, current.method, current.url)
            if value is None:
                break
            response.release()
            headers = _without(current.headers, ("authorization",))
            headers["Authorization"] = value
            current = replace(current, headers=headers)
            response = await self._exchange(current, settings, history)
            answered += 1
        return response

    def _redirected(
        self, request: PreparedRequest, status: int, location: str
    ) -> PreparedRequest:
        """The request to send after a redirect (RFC 9110, section 15.4)."""
        target = urljoin(request.url, location.strip())
        target = target.split("#", 1)[0]
        try:
            new_parts = parse_url_parts(target)
        except HTTPError as error:
            raise HTTPClientError(
                f"redirect to an unsupported URL: {target!r}",
                method=request.method,
                url=request.url,
            ) from error
        headers = dict(request.headers)
        body = request.body
        method = request.method
        if (status == 303 and method != "HEAD") or (
            status in (301, 302) and method == "POST"
        ):
            method, body = "GET", None
            headers = _without(headers, ("content-type", "content-length"))
        if parse_url_parts(request.url).origin != new_parts.origin:
            headers = _without(headers, SENSITIVE_HEADERS)
        return PreparedRequest(method=method, url=target, headers=headers, body=body)

    async def _exchange(
        self,
        request: PreparedRequest,
        settings: _Settings,
        history: Sequence[ClientResponse],
    ) -> ClientResponse:
        """One hop: the request through the resilience pipeline."""
        parts = parse_url_parts(request.url)
        host = f"{parts.host}:{parts.port}"
        start_time = self.clock.seconds()

        def attempt(number: int) -> Deferred[ClientResponse]:
            return Deferred.fromCoroutine(
                self._attempt(request, settings, history, number, start_time)
            )

        def retrying(scheduled: ScheduledRetry) -> Deferred[RequestRetrying] | None:
            if not self.events.has_listeners(REQUEST_RETRYING):
                return None
            return self.events.notify(
                REQUEST_RETRYING,
                RequestRetrying(
                    method=request.method,
                    url=request.url,
                    attempt=scheduled.attempt,
                    delay=scheduled.delay,
                    error=scheduled.error,
                ),
            )

        pipeline = self.resilience
        deadline = settings.deadline
        timeout: float | None = None
        if deadline is not None:
            # The request's deadline, as the pipeline's total timeout for this
            # hop; the pipeline's own total timeout still applies if shorter.
            timeout = deadline.remaining()
            if timeout <= 0:
                raise self._expired(request, deadline)
            own = pipeline.timeouts.total_timeout
            if own is not None and own < timeout:
                timeout = None
        try:
            return await pipeline.run(
                attempt,
                method=request.method,
                host=host,
                url=request.url,
                timeout=timeout,
                on_retry=retrying,
            )
        except HTTPTimeoutError as error:
            if timeout is None or error.phase != "total" or deadline is None:
                raise
            # Report the request's timeout, not what was left of it.
            raise self._expired(request, deadline) from error

    @staticmethod
    def _expired(request: PreparedRequest, deadline: Deadline) -> HTTPTimeoutError:
        return HTTPTimeoutError(
            f"total timeout of {deadline.timeout:g} s expired",
            timeout=deadline.timeout,
            phase="total",
            method=request.method,
            url=request.url,
        )

    async def _attempt(
        self,
        request: PreparedRequest,
        settings: _Settings,
        history: Sequence[ClientResponse],
        number: int,
        start_time: float,
    ) -> ClientResponse:
        """One attempt: interceptors, the agent, cookies."""
        headers = dict(request.headers)
        if self.cookie_jar is not None:
            jar_cookies = cookie_header(self.cookie_jar, request.url, request.method)
            if jar_cookies:
                own = headers.get("Cookie")
                headers = _without(headers, ("cookie",))
                headers["Cookie"] = f"{own}; {jar_cookies}" if own else jar_cookies
        context = RequestContext(
            method=request.method,
            url=request.url,
            headers=_to_headers(headers),
            service_name=self.name,
            attempt=number,
            start_time=start_time,
        )
        if len(self.interceptors):
            context = await self.interceptors.run_request(context)
        await self._notify(
            REQUEST_DISPATCHED,
            RequestDispatched(method=context.method, url=context.url, attempt=number),
        )
        sent_at = self.clock.seconds()
        producer = request.body.make() if request.body is not None else None
        try:
            raw = await self._agent_for(context.url).request(
                context.method.encode("ascii"),
                context.url.encode("ascii"),
                context.headers,
                producer,
            )
        except CancelledError:
            raise
        except Exception as failure:
            wrapped = _wrap_agent_error(failure, context.method, context.url)
            if len(self.interceptors):
                await self.interceptors.run_response(
                    ResponseContext(
                        request=context,
                        duration=self.clock.seconds() - sent_at,
                        error=wrapped,
                    )
                )
            raise wrapped from failure
        response = ClientResponse(
            raw,
            method=context.method,
            url=context.url,
            config=self.config,
            history=history,
            decompress=settings.decompress,
            deadline=settings.deadline,
        )
        if self.cookie_jar is not None:
            store_cookies(
                self.cookie_jar, context.url, response.headers, context.method
            )
        if len(self.interceptors):
            try:
                await self.interceptors.run_response(
                    ResponseContext(
                        request=context,
                        status=response.status,
                        headers=response.headers,
                        content_length=response.content_length,
                        duration=self.clock.seconds() - sent_at,
                    )
                )
            except Exception:
                response.release()
                raise
        await self._notify(
            RESPONSE_RECEIVED,
            ResponseReceived(
                method=context.method,
                url=context.url,
                status=response.status,
                attempt=number,
            ),
        )
        return response

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<HTTPClient{label} {self._state.name.lower()}>"


@dataclass(frozen=True, slots=True)
class _Settings:
    """How to run a prepared request."""

    timeout: float | None
    allow_redirects: bool
    max_redirects: int
    decompress: bool
    deadline: Deadline | None = None
    digest: DigestAuth | None = None
