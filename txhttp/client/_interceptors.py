# -*- test-case-name: txhttp.test.test_client_interceptors -*-
"""
Interceptors: code that sees (and may change) every request and response.

An `Interceptor` has two hooks. `InterceptorChain.run_request` passes a
`RequestContext` through every interceptor's ``intercept_request`` in the
order they were added; `InterceptorChain.run_response` passes a
`ResponseContext` through every ``intercept_response`` in *reverse* order, so
the first interceptor added is the outermost layer (it sees the request
first and the response last), as with nested middleware.

A hook returns the context (changed or not, usually with
`dataclasses.replace`), a Deferred of it, or is a coroutine function. A hook
that raises or fails makes the whole run fail with `HTTPInterceptorError`
naming the interceptor and the phase, with the original exception as
``__cause__``; later interceptors do not run.

`HTTPClient` runs the request hooks once per attempt, before sending, and the
response hooks once per attempt, after the response head (or the failure)
arrived. This module knows nothing of the network; ``start_time`` and
``duration`` come from the client's clock.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.web.http_headers import Headers

from ._exceptions import HTTPInterceptorError

__all__ = [
    "BaseInterceptor",
    "Interceptor",
    "InterceptorChain",
    "RequestContext",
    "ResponseContext",
]

C = TypeVar("C")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestContext:
    """
    What request interceptors see of one attempt of a request.

    Frozen: an interceptor that changes something returns a new context,
    for example ``dataclasses.replace(context, url=new_url)``. The ``headers``
    object belongs to this attempt alone, so adding a header in place
    (``context.headers.addRawHeader(...)``) is also fine.

    Attributes:
        method: The request method, for example ``"GET"``.
        url: The full request URL.
        headers: The request headers that will be sent.
        service_name: A name for the remote service (the client's name), for
            logs and metrics; ``None`` if the client has none.
        attempt: The attempt number, 1 for the first try.
        start_time: When the request (its first attempt) started, in seconds
            of the client's clock.
        attributes: Free-form values interceptors pass to each other and to
            their response hook (for example a span or a token id).
    """

    method: str
    url: str
    headers: Headers = field(default_factory=Headers)
    service_name: str | None = None
    attempt: int = 1
    start_time: float = 0.0
    attributes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseContext:
    """
    What response interceptors see of the outcome of one attempt.

    Attributes:
        request: The request context as it was sent (after the request hooks).
        status: The status code, or ``None`` when no response arrived.
        headers: The response headers, or ``None`` when no response arrived.
        content_length: The announced body length, or ``None`` if unknown.
        duration: Seconds from sending to the response head (or failure),
            by the client's clock.
        error: The exception the attempt failed with, or ``None``.
    """

    request: RequestContext
    status: int | None = None
    headers: Headers | None = None
    content_length: int | None = None
    duration: float = 0.0
    error: BaseException | None = None

    @property
    def success(self) -> bool:
        """``True`` when a response arrived, without error, with status below 400."""
        return self.error is None and self.status is not None and self.status < 400


class Interceptor(Protocol):
    """
    Sees every request before it is sent and every response after it arrives.

    Each hook returns the context to pass on (the same one, or a changed
    copy), a Deferred firing with it, or is a coroutine function. An
    exception fails the request with `HTTPInterceptorError`. Subclass
    `BaseInterceptor` to implement only one hook.
    """

    def intercept_request(
        self, context: RequestContext
    ) -> RequestContext | Awaitable[RequestContext]:
        """Inspect or change a request about to be sent."""

    def intercept_response(
        self, context: ResponseContext
    ) -> ResponseContext | Awaitable[ResponseContext]:
        """Inspect or change the outcome of an attempt."""


class BaseInterceptor:
    """
    An `Interceptor` whose hooks pass contexts through unchanged.

    Subclass it and override the hook you need. Set the class attribute
    ``name`` to choose how `HTTPInterceptorError` names it.
    """

    name: str | None = None
    """How errors name this interceptor; ``None`` means the class name."""

    def intercept_request(
        self, context: RequestContext
    ) -> RequestContext | Awaitable[RequestContext]:
        """Return ``context`` unchanged."""
        return context

    def intercept_response(
        self, context: ResponseContext
    ) -> ResponseContext | Awaitable[ResponseContext]:
        """Return ``context`` unchanged."""
        return context


def interceptor_name(interceptor: object) -> str:
    """
    How errors and logs name ``interceptor``.

    Its ``name`` attribute when that is a non-empty string, else its class
    name.
    """
    name = getattr(interceptor, "name", None)
    if isinstance(name, str) and name:
        return name
    return type(interceptor).__name__


async def _resolve(value: C | Awaitable[C]) -> C:
    """Wait for ``value`` if it is a Deferred or another awaitable."""
    if isinstance(value, Deferred):
        return cast("C", await value)
    if inspect.iscoroutine(value):
        return await Deferred.fromCoroutine(value)
    if inspect.isawaitable(value):
        return await cast("Awaitable[C]", value)
    return value


class InterceptorChain:
    """
    An ordered list of interceptors and the two passes through them.

    Request hooks run in the order interceptors were added; response hooks
    in reverse order. Adding or removing while a pass runs affects later
    passes only.
    """

    def __init__(self, interceptors: list[Interceptor] | None = None) -> None:
        self._interceptors: list[Interceptor] = list(interceptors or ())

    def add(self, interceptor: Interceptor) -> None:
        """Append ``interceptor``: its request hook runs after the others'."""
        self._interceptors.append(interceptor)

    def remove(self, interceptor: Interceptor) -> None:
        """
        Remove ``interceptor`` (its first occurrence).

        Raises:
            ValueError: ``interceptor`` is not in the chain.
        """
        try:
            self._interceptors.remove(interceptor)
        except ValueError:
            raise ValueError(
                f"interceptor {interceptor_name(interceptor)!r} is not in the chain"
            ) from None

    def __len__(self) -> int:
        return len(self._interceptors)

    def __contains__(self, interceptor: object) -> bool:
        return interceptor in self._interceptors

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        """The interceptors, in request order."""
        return tuple(self._interceptors)

    def run_request(self, context: RequestContext) -> Deferred[RequestContext]:
        """
        Pass ``context`` through every request hook, first added first.

        Returns:
            A Deferred firing with the context the last hook returned, or
            failing with `HTTPInterceptorError` naming the first hook that
            failed (phase ``"request"``).
        """
        chain = tuple(self._interceptors)
        return Deferred.fromCoroutine(
            self._run(
                context,
                [(i, i.intercept_request) for i in chain],
                "request",
                RequestContext,
            )
        )

    def run_response(self, context: ResponseContext) -> Deferred[ResponseContext]:
        """
        Pass ``context`` through every response hook, last added first.

        Returns:
            A Deferred firing with the context the last hook returned, or
            failing with `HTTPInterceptorError` naming the first hook that
            failed (phase ``"response"``).
        """
        chain = tuple(reversed(self._interceptors))
        return Deferred.fromCoroutine(
            self._run(
                context,
                [(i, i.intercept_response) for i in chain],
                "response",
                ResponseContext,
            )
        )

    @staticmethod
    def _run(
        context: C,
        hooks: list[tuple[Interceptor, Callable[[C], C | Awaitable[C]]]],
        phase: str,
        expected: type[C],
    ) -> Coroutine[Deferred[object], object, C]:
        def failed(name: str, context: object, message: str) -> HTTPInterceptorError:
            where = getattr(context, "request", context)
            sent = where if isinstance(where, RequestContext) else None
            return HTTPInterceptorError(
                message,
                interceptor=name,
                phase=phase,
                method=sent.method if sent else None,
                url=sent.url if sent else None,
            )

        async def run(context: C) -> C:
            for interceptor, hook in hooks:
                name = interceptor_name(interceptor)
                try:
                    result = await _resolve(hook(context))
                except CancelledError:
                    raise
                except Exception as error:
                    raise failed(
                        name,
                        context,
                        f"interceptor {name!r} failed in its {phase} hook: "
                        f"{type(error).__name__}: {error}",
                    ) from error
                if not isinstance(result, expected):
                    raise failed(
                        name,
                        context,
                        f"interceptor {name!r} returned {type(result).__name__} "
                        f"from its {phase} hook, not {expected.__name__}",
                    )
                context = result
            return context

        return run(context)
