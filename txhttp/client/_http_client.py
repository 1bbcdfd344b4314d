# -*- test-case-name: txhttp.test.test_client_http -*-
"""
`HTTPClient`: the convenient client layer applications use.

It turns ``client.get(url, params=..., json=...)`` into ``IAgent.request``
calls and wraps what comes back in a `ClientResponse`. Around each request it
runs, in this order:

1. option handling: URL and params, merged headers, body (bytes, form, JSON,
   multipart), credentials, cookies, ``Accept-Encoding``
   (`txhttp.client._hc_prepare`);
2. the ``filter-request`` event (a listener may answer without the network);
3. the per-request deadline (``timeout``), covering everything below and
   the whole-body reads (`ClientResponse.content`, ``text()``, ``json()``);
4. redirects (each hop is a full exchange; credentials are stripped when the
   origin changes) and Digest answers (`txhttp.client._hc_redirects`);
5. per hop, the `ResiliencePipeline` (retry, circuit breaker, bulkhead), and
   per attempt the interceptors' request hooks, the agent call, the cookie
   jar and the interceptors' response hooks (`txhttp.client._hc_send`);
6. the ``filter-response`` event, notifications and metrics (2, 3 and 6 are
   `txhttp.client._hc_pipeline`).

This module holds the client itself: its collaborators, its lifecycle
(`txhttp.client._hc_lifecycle`), the verbs, streams, SSE, warm-up and
health checks. Every collaborator is injected (agent or pool, resilience
parts, interceptors, events, metrics, clock); all have defaults. The client
talks to the network only through ``IAgent``: by default txhttp's `Agent`
with its `HTTPConnectionPool`, built lazily from `HTTPClientConfig`
(`txhttp.client._hc_agents`). Methods return Deferreds, so ``async def``
code run by ``Deferred.fromCoroutine`` can await them; failures are
`HTTPClientError` subclasses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http.cookiejar import CookieJar
from types import TracebackType
from typing import TYPE_CHECKING, cast
from weakref import WeakSet

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    fail,
    gatherResults,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IAgent
from typing_extensions import Unpack

from txhttp.client._breaker import CircuitBreakerRegistry, CircuitState
from txhttp.client._bulkhead import Bulkhead
from txhttp.client._client_response import ClientResponse
from txhttp.client._config import HTTPClientConfig
from txhttp.client._events import EventDispatcher
from txhttp.client._exceptions import HTTPClientError, HTTPError
from txhttp.client._hc_agents import ClientAgents, ClosablePool, default_reactor
from txhttp.client._hc_errors import describe_error
from txhttp.client._hc_lifecycle import (
    HealthCheckResult,
    HTTPClientState,
    LifecycleInput,
    next_state,
)
from txhttp.client._hc_pipeline import run_request
from txhttp.client._hc_prepare import (
    PreparedRequest,
    RequestBody,
    RequestOptions,
    prepare_request,
)
from txhttp.client._hc_redirects import REDIRECT_STATUSES, SENSITIVE_HEADERS
from txhttp.client._hc_send import HopSender
from txhttp.client._interceptors import Interceptor, InterceptorChain
from txhttp.client._metrics import MetricsRecorder
from txhttp.client._multipart import Fields
from txhttp.client._resilience import ResiliencePipeline
from txhttp.client._retry import RetryPolicy
from txhttp.client._sse import (
    DEFAULT_MAX_RECONNECTS,
    DEFAULT_RECONNECT_DELAY,
    EventSource,
)
from txhttp.client._streaming import StreamContext, StreamingResponse
from txhttp.client._url_helpers import HeaderInput, merge_headers

if TYPE_CHECKING:
    from txhttp.client._dns import CachingHostnameResolver

# The request model, lifecycle and redirect constants moved to _hc_* modules;
# they stay importable from here, as before the split.
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
        pool: ClosablePool | None = None,
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
        self._agents = ClientAgents(
            lambda: self.config,
            agent=agent,
            pool=pool,
            reactor=reactor,
            clock=lambda: self.clock,
        )
        self._sender = HopSender(self, self._agents.agent_for)
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

    # -- collaborators -------------------------------------------------------

    @property
    def clock(self) -> IReactorTime:
        """The time source (the reactor unless one was injected)."""
        if self._clock is None:
            self._clock = self._reactor or default_reactor()
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

    def _advance(self, event: LifecycleInput) -> None:
        self._state = next_state(self._state, event)

    @property
    def dns_cache(self) -> CachingHostnameResolver | None:
        """
        The default agent's DNS cache, once built (``None`` before, when
        ``config.dns_cache_ttl`` is ``None``, or with an injected agent).
        """
        return self._agents.dns_cache

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Deferred[None]:
        """
        Make the client ready; requests call it on first use (lazy start).

        Returns:
            A Deferred that has fired. Fails with `HTTPClientError` if the
            client was stopped.
        """
        try:
            self._advance(LifecycleInput.START)
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
        self._advance(LifecycleInput.STOP)
        pool = self._agents.pool
        for stream in list(self._streams):
            stream.close()
        for source in list(self._event_sources):
            source.close()
        for request in list(self._in_flight):
            request.cancel()
        if previous is HTTPClientState.NEW or pool is None:
            if self._state is HTTPClientState.STOPPING:
                self._advance(LifecycleInput.CLOSED)
            self._stopped = succeed(None)
        else:
            closing = pool.closeCachedConnections()

            def closed(result: object) -> None:
                if self._state is HTTPClientState.STOPPING:
                    self._advance(LifecycleInput.CLOSED)

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
            self._advance(LifecycleInput.START)

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
                    error=describe_error(error),
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
                    error=describe_error(error),
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
            prepared, settings = prepare_request(
                method,
                url,
                options,
                config=self.config,
                default_headers=self._default_headers,
            )
        except (HTTPClientError, HTTPError) as error:
            return fail(error)
        return self._track(
            Deferred.fromCoroutine(
                run_request(self, self._sender.send, prepared, settings)
            )
        )

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

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<HTTPClient{label} {self._state.name.lower()}>"
