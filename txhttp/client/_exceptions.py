# -*- test-case-name: txhttp.test.test_client_http -*-
"""
The errors of `HTTPClient`, the convenient client layer.

Two roots, on purpose:

- `HTTPError` is a `ValueError`: the caller handed a helper (``build_url``,
  ``validate_host``, ...) something that is not valid. It is raised
  synchronously, never delivered through a Deferred.
- `HTTPClientError` is the base of everything a request can fail with. Its
  subclasses say how far the request got and why it stopped; resilience code
  (retry, circuit breaker) reads the *type* and the attributes, never the
  message.

Failures coming from below (the agent, the connection) are wrapped with
``raise ... from`` or carry the original as ``__cause__`` so nothing is lost.
This module imports nothing from Twisted: it is safe to import anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from twisted.web.http_headers import Headers

__all__ = [
    "DEFAULT_STATUS_EXCERPT_BYTES",
    "HTTPBulkheadFullError",
    "HTTPCircuitOpenError",
    "HTTPClientError",
    "HTTPConnectionError",
    "HTTPDecompressionError",
    "HTTPError",
    "HTTPInterceptorError",
    "HTTPResponseTooLargeError",
    "HTTPRetryExhaustedError",
    "HTTPStatusError",
    "HTTPTimeoutError",
    "HTTPTooManyRedirectsError",
]

DEFAULT_STATUS_EXCERPT_BYTES: Final = 1024
"""
How much of an error response's body `HTTPStatusError` keeps.

Enough to show a server's error message or a JSON problem document, small
enough that logging the exception never prints a hostile server's megabytes.
"""


def _describe(method: str | None, url: str | None) -> str:
    """Render ``"GET http://..."`` for messages, or ``""`` if unknown."""
    if method and url:
        return f"{method} {url}"
    return url or method or ""


class HTTPError(ValueError):
    """
    A helper was given invalid input.

    Raised synchronously by ``validate_url``, ``validate_host``,
    ``validate_port``, ``validate_timeout``, ``validate_positive_int``,
    ``build_url``, ``parse_headers`` and friends, and by `HTTPClient` methods
    when an option is malformed (for example both ``data`` and ``json``). The
    message names the argument, the rule and the offending value.
    """


class HTTPClientError(Exception):
    """
    Base of every failure a request made through `HTTPClient` can end with.

    Attributes:
        method: The request method, when known.
        url: The request URL, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = _describe(self.method, self.url)
        return f"{self.message} ({where})" if where else self.message


class HTTPConnectionError(HTTPClientError):
    """
    The request could not be completed because of the connection.

    Happens when the host cannot be resolved or connected to, TLS fails, or
    the connection is lost before the whole response head arrived. The
    original failure is the ``__cause__``.

    Attributes:
        request_sent: ``False`` only when the request provably never reached
            the server (no connection, or the agent refused to send it); such
            a request is safe to retry whatever its method. ``True`` means some
            or all of it may have been written.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.request_sent = request_sent


class HTTPTimeoutError(HTTPClientError):
    """
    A deadline passed before the request finished.

    Raised when the per-request ``timeout`` (or the configured default)
    expires; the request is cancelled and its connection aborted, so no late
    response is ever delivered.

    Attributes:
        timeout: The deadline that passed, in seconds.
        phase: What was being waited for (``"response"``, ``"body"``,
            ``"connect"``, ``"total"``...), for messages and metrics.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: float | None = None,
        phase: str = "total",
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.timeout = timeout
        self.phase = phase


class HTTPRetryExhaustedError(HTTPClientError):
    """
    Every attempt allowed by the retry policy failed.

    The error of each attempt is kept, in order, so the reason of the first
    failure is not hidden behind the last one. The last error is also the
    ``__cause__`` when raised with ``from``.

    Attributes:
        errors: One exception per attempt, first attempt first. An attempt
            that ended with a retryable status carries an `HTTPStatusError`.
    """

    def __init__(
        self,
        message: str,
        errors: Iterable[BaseException],
        *,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.errors: Sequence[BaseException] = tuple(errors)

    @property
    def attempts(self) -> int:
        """How many attempts were made."""
        return len(self.errors)

    @property
    def last_error(self) -> BaseException | None:
        """The error of the final attempt, or `None` if there was none."""
        return self.errors[-1] if self.errors else None


class HTTPCircuitOpenError(HTTPClientError):
    """
    The circuit breaker for the target host is open: the call failed fast.

    No connection was attempted, so the request never reached the server.

    Attributes:
        host: The host (breaker key) whose circuit is open.
        retry_after: Seconds until the breaker lets a trial call through,
            when known.
    """

    request_sent: Final = False

    def __init__(
        self,
        message: str,
        *,
        host: str,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.host = host
        self.retry_after = retry_after


class HTTPBulkheadFullError(HTTPClientError):
    """
    The bulkhead refused the call: too many running and the queue full, or the
    call waited in the queue longer than allowed.

    The request never reached the server (``request_sent`` is ``False``).

    Attributes:
        bulkhead: The bulkhead's name (with the host for per-host ones).
        reason: ``"queue-full"`` or ``"queue-timeout"``.
    """

    request_sent: Final = False

    def __init__(
        self,
        message: str,
        *,
        bulkhead: str,
        reason: str,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.bulkhead = bulkhead
        self.reason = reason


class HTTPInterceptorError(HTTPClientError):
    """
    An interceptor raised or failed while handling a request or a response.

    The interceptor's own exception is the ``__cause__``.

    Attributes:
        interceptor: The failing interceptor's name (its ``name`` attribute
            or class name).
        phase: ``"request"`` or ``"response"``.
    """

    def __init__(
        self,
        message: str,
        *,
        interceptor: str,
        phase: str,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.interceptor = interceptor
        self.phase = phase


class HTTPStatusError(HTTPClientError):
    """
    The server answered with an error status (4xx or 5xx).

    Raised by ``raise_for_status()``, and recorded per attempt by retries on
    a retryable status. The body is kept only as a bounded excerpt.

    Attributes:
        status: The response status code.
        headers: The response headers (a twisted ``Headers``), or `None`.
        body_excerpt: At most ```DEFAULT_STATUS_EXCERPT_BYTES``` bytes of the
            body (or the excerpt size given), possibly empty.
        truncated: ``True`` if the body was longer than the excerpt.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        headers: Headers | None = None,
        body: bytes = b"",
        method: str | None = None,
        url: str | None = None,
        max_excerpt_bytes: int = DEFAULT_STATUS_EXCERPT_BYTES,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.headers = headers
        self.body_excerpt = body[:max_excerpt_bytes]
        self.truncated = len(body) > max_excerpt_bytes

    @property
    def code(self) -> int:
        """Alias of `status`, as twisted.web names it."""
        return self.status


class HTTPResponseTooLargeError(HTTPClientError):
    """
    A response body exceeded the configured maximum size.

    Raised while reading a body (``content()``, ``text()``, ``json()``,
    streaming) once more than ``limit`` bytes arrived, measured after
    decompression; the connection is aborted rather than drained.

    Attributes:
        limit: The maximum number of bytes allowed.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.limit = limit


class HTTPDecompressionError(HTTPClientError):
    """
    A compressed body could not be decoded or looked like a decompression bomb.

    Raised when the ``Content-Encoding`` data is corrupt or unsupported, or
    when the decoded size passes the size cap or the decoded-to-encoded ratio
    cap of `HTTPClientConfig`.

    Attributes:
        encoding: The content coding (``"gzip"``, ``"deflate"``, ``"br"``...).
    """

    def __init__(
        self,
        message: str,
        *,
        encoding: str,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.encoding = encoding


class HTTPTooManyRedirectsError(HTTPClientError):
    """
    A chain of redirects was longer than the allowed maximum, or looped.

    Attributes:
        history: The URLs visited, in order, the first one being the
            original request.
    """

    def __init__(
        self,
        message: str,
        *,
        history: Sequence[str],
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.history: Sequence[str] = tuple(history)
