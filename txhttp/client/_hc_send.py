# -*- test-case-name: txhttp.test.test_client_http -*-
"""
One hop of an `HTTPClient` request: the resilience pipeline and its attempts.

`HopSender.send` runs one request (one redirect hop) through the client's
`ResiliencePipeline` (retry, circuit breaker, bulkhead), with the request's
deadline as the pipeline's total timeout. Each attempt adds the cookie jar's
cookies, runs the interceptors' request hooks, notifies
``request-dispatched``, calls the ``IAgent``, stores ``Set-Cookie``, runs the
response hooks and notifies ``response-received``; agent failures become
`HTTPClientError` subclasses (`wrap_agent_error`).

What a hop needs of its client is `ClientParts`, read afresh on each use, so
this module never imports `HTTPClient`. Left out: redirects and Digest
answers (`txhttp.client._hc_redirects`), filter events, completion events
and metrics (`txhttp.client._hc_pipeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from http.cookiejar import CookieJar
from typing import Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent

from txhttp.client._client_response import ClientResponse, Deadline
from txhttp.client._config import HTTPClientConfig
from txhttp.client._cookies import cookie_header, store_cookies
from txhttp.client._events import (
    REQUEST_DISPATCHED,
    REQUEST_RETRYING,
    RESPONSE_RECEIVED,
    EventDispatcher,
    RequestDispatched,
    RequestRetrying,
    ResponseReceived,
)
from txhttp.client._exceptions import HTTPTimeoutError
from txhttp.client._hc_errors import wrap_agent_error
from txhttp.client._hc_prepare import (
    ExchangeSettings,
    PreparedRequest,
    without_headers,
)
from txhttp.client._interceptors import (
    InterceptorChain,
    RequestContext,
    ResponseContext,
)
from txhttp.client._metrics import MetricsRecorder
from txhttp.client._resilience import ResiliencePipeline
from txhttp.client._retry import ScheduledRetry
from txhttp.client._url_helpers import parse_url_parts

__all__ = ["ClientParts", "HopSender", "deadline_expired", "notify"]


class ClientParts(Protocol):
    """What sending needs of an `HTTPClient`: its collaborators, read live."""

    @property
    def clock(self) -> IReactorTime:
        """Time for deadlines and durations."""

    @property
    def resilience(self) -> ResiliencePipeline:
        """Retry, circuit breaker and bulkhead."""

    @property
    def config(self) -> HTTPClientConfig:
        """Body size limits and other settings responses use."""

    @property
    def name(self) -> str | None:
        """The client's name, for interceptor contexts."""

    @property
    def events(self) -> EventDispatcher:
        """Where filter and notification events go."""

    @property
    def interceptors(self) -> InterceptorChain:
        """The request and response hooks."""

    @property
    def metrics(self) -> MetricsRecorder | None:
        """Where durations and statuses are recorded, if anywhere."""

    @property
    def cookie_jar(self) -> CookieJar | None:
        """The cookie jar, unless cookies are off."""


async def notify(events: EventDispatcher, name: str, event: object) -> None:
    """Notify ``name`` listeners of ``event``, if there are any."""
    if events.has_listeners(name):
        await events.notify(name, event)


def deadline_expired(request: PreparedRequest, deadline: Deadline) -> HTTPTimeoutError:
    """The error for a request whose whole-exchange ``deadline`` passed."""
    return HTTPTimeoutError(
        f"total timeout of {deadline.timeout:g} s expired",
        timeout=deadline.timeout,
        phase="total",
        method=request.method,
        url=request.url,
    )


def _to_headers(headers: Mapping[str, str]) -> Headers:
    result = Headers()
    for name, value in headers.items():
        result.addRawHeader(name, value)
    return result


class HopSender:
    """
    Sends one hop of a request through the resilience pipeline.

    Args:
        client: The client's collaborators.
        agent_for: The ``IAgent`` to send a URL through.
    """

    def __init__(self, client: ClientParts, agent_for: Callable[[str], IAgent]) -> None:
        self._client = client
        self._agent_for = agent_for

    async def send(
        self,
        request: PreparedRequest,
        settings: ExchangeSettings,
        history: Sequence[ClientResponse],
    ) -> ClientResponse:
        """
        One hop: the request through the resilience pipeline.

        Raises:
            HTTPTimeoutError: The request's deadline passed (reported with
                the request's own timeout), or a pipeline timeout did.
            HTTPClientError: What the pipeline or the last attempt failed
                with.
        """
        client = self._client
        parts = parse_url_parts(request.url)
        host = f"{parts.host}:{parts.port}"
        start_time = client.clock.seconds()

        def attempt(number: int) -> Deferred[ClientResponse]:
            return Deferred.fromCoroutine(
                self._attempt(request, settings, history, number, start_time)
            )

        def retrying(scheduled: ScheduledRetry) -> Deferred[RequestRetrying] | None:
            if not client.events.has_listeners(REQUEST_RETRYING):
                return None
            return client.events.notify(
                REQUEST_RETRYING,
                RequestRetrying(
                    method=request.method,
                    url=request.url,
                    attempt=scheduled.attempt,
                    delay=scheduled.delay,
                    error=scheduled.error,
                ),
            )

        pipeline = client.resilience
        deadline = settings.deadline
        timeout: float | None = None
        if deadline is not None:
            # The request's deadline, as the pipeline's total timeout for this
            # hop; the pipeline's own total timeout still applies if shorter.
            timeout = deadline.remaining()
            if timeout <= 0:
                raise deadline_expired(request, deadline)
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
            raise deadline_expired(request, deadline) from error

    async def _attempt(
        self,
        request: PreparedRequest,
        settings: ExchangeSettings,
        history: Sequence[ClientResponse],
        number: int,
        start_time: float,
    ) -> ClientResponse:
        """One attempt: interceptors, the agent, cookies."""
        client = self._client
        headers = dict(request.headers)
        if client.cookie_jar is not None:
            jar_cookies = cookie_header(client.cookie_jar, request.url, request.method)
            if jar_cookies:
                own = headers.get("Cookie")
                headers = without_headers(headers, ("cookie",))
                headers["Cookie"] = f"{own}; {jar_cookies}" if own else jar_cookies
        context = RequestContext(
            method=request.method,
            url=request.url,
            headers=_to_headers(headers),
            service_name=client.name,
            attempt=number,
            start_time=start_time,
        )
        if len(client.interceptors):
            context = await client.interceptors.run_request(context)
        await notify(
            client.events,
            REQUEST_DISPATCHED,
            RequestDispatched(method=context.method, url=context.url, attempt=number),
        )
        sent_at = client.clock.seconds()
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
            wrapped = wrap_agent_error(failure, context.method, context.url)
            if len(client.interceptors):
                await client.interceptors.run_response(
                    ResponseContext(
                        request=context,
                        duration=client.clock.seconds() - sent_at,
                        error=wrapped,
                    )
                )
            raise wrapped from failure
        response = ClientResponse(
            raw,
            method=context.method,
            url=context.url,
            config=client.config,
            history=history,
            decompress=settings.decompress,
            deadline=settings.deadline,
        )
        if client.cookie_jar is not None:
            store_cookies(
                client.cookie_jar, context.url, response.headers, context.method
            )
        if len(client.interceptors):
            try:
                await client.interceptors.run_response(
                    ResponseContext(
                        request=context,
                        status=response.status,
                        headers=response.headers,
                        content_length=response.content_length,
                        duration=client.clock.seconds() - sent_at,
                    )
                )
            except Exception:
                response.release()
                raise
        await notify(
            client.events,
            RESPONSE_RECEIVED,
            ResponseReceived(
                method=context.method,
                url=context.url,
                status=response.status,
                attempt=number,
            ),
        )
        return response
