# -*- test-case-name: txhttp.test.test_client_http,txhttp.test.test_client_events -*-
"""
The whole run of one `HTTPClient` request, around its hops.

`run_request` starts the request's deadline (its ``timeout``, which then
also bounds the hops and the body reads), dispatches ``filter-request`` (a
listener may change the request or answer it without the network), follows
the hops (`txhttp.client._hc_redirects.follow`), dispatches
``filter-response`` (a listener may replace the response), and whatever the
outcome notifies ``request-timed-out`` / ``retries-exhausted`` and
``request-completed`` and records ``http.request.duration`` and
``http.request.status``. A failing metrics recorder is logged, never fatal.
Left out: preparing the request (`txhttp.client._hc_prepare`) and sending a
hop (`txhttp.client._hc_send`).
"""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.defer import CancelledError
from twisted.logger import Logger
from twisted.web.iweb import IResponse

from txhttp.client._client_response import ClientResponse, Deadline
from txhttp.client._config import HTTPClientConfig
from txhttp.client._events import (
    FILTER_REQUEST,
    FILTER_RESPONSE,
    REQUEST_COMPLETED,
    REQUEST_TIMED_OUT,
    RETRIES_EXHAUSTED,
    FilterEvent,
    RequestCompleted,
    RequestTimedOut,
    RetriesExhausted,
)
from txhttp.client._exceptions import (
    HTTPError,
    HTTPRetryExhaustedError,
    HTTPTimeoutError,
)
from txhttp.client._hc_prepare import ExchangeSettings, PreparedRequest
from txhttp.client._hc_redirects import Hop, follow
from txhttp.client._hc_send import ClientParts, notify
from txhttp.client._metrics import record_request
from txhttp.client._url_helpers import parse_url_parts

__all__ = ["run_request"]

_log = Logger()


async def run_request(
    client: ClientParts,
    send: Hop,
    request: PreparedRequest,
    settings: ExchangeSettings,
) -> ClientResponse:
    """
    Run ``request`` to its final response, with events, deadline and metrics.

    Raises:
        HTTPClientError: Whatever a hop, a listener or the deadline failed
            with (``CancelledError`` passes through).
    """
    clock = client.clock
    events = client.events
    started = clock.seconds()
    response: ClientResponse | None = None
    error: BaseException | None = None
    event: FilterEvent[PreparedRequest, ClientResponse | IResponse] = FilterEvent(
        request
    )
    if settings.timeout is not None:
        settings = replace(
            settings,
            deadline=Deadline(clock, started + settings.timeout, settings.timeout),
        )
    try:
        if events.has_listeners(FILTER_REQUEST):
            await events.dispatch(FILTER_REQUEST, event)
            request = event.request
        if event.response is not None:
            response = _adopt(event.response, request, client.config)
        else:
            response = await follow(send, request, settings)
        if events.has_listeners(FILTER_RESPONSE):
            event.response = response
            await events.dispatch(FILTER_RESPONSE, event)
            if event.response is not response:
                replaced = event.response
                response.release()
                response = _adopt(replaced, request, client.config)
        return response
    except CancelledError:
        raise
    except HTTPTimeoutError as timed_out:
        error = timed_out
        await notify(
            events,
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
        await notify(
            events,
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
        duration = clock.seconds() - started
        status = response.status if response is not None else None
        _record(client, request, status, duration, error)
        if events.has_listeners(REQUEST_COMPLETED):
            events.notify(
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
    response: ClientResponse | IResponse,
    request: PreparedRequest,
    config: HTTPClientConfig,
) -> ClientResponse:
    """A listener's response as a `ClientResponse`."""
    if isinstance(response, ClientResponse):
        return response
    if IResponse.providedBy(response):
        return ClientResponse(
            response, method=request.method, url=request.url, config=config
        )
    raise HTTPError(
        f"a filter listener set a response of type {type(response).__name__}, "
        f"not ClientResponse or IResponse"
    )


def _record(
    client: ClientParts,
    request: PreparedRequest,
    status: int | None,
    duration: float,
    error: BaseException | None,
) -> None:
    """Record the request's duration and status, if the client has metrics."""
    metrics = client.metrics
    if metrics is None:
        return
    try:
        parts = parse_url_parts(request.url)
        record_request(
            metrics,
            method=request.method,
            host=parts.host,
            port=parts.port,
            duration=duration,
            status=status,
            error=error,
        )
    except Exception:
        _log.failure("metrics recorder failed")
