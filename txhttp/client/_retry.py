# -*- test-case-name: txhttp.test.test_client_retry -*-
"""
Retry policy: which failed attempts to try again, and how long to wait first.

`RetryPolicy` is a frozen value holding the decisions; `ResiliencePipeline`
runs the attempts, sleeps on the injected clock and raises
`HTTPRetryExhaustedError` (with every attempt's error) when attempts run out.

What is retried:

- transient failures (``is_transient_error``: connection errors, lost
  connections, per-attempt timeouts) and responses whose status is in
  ``retry_statuses`` (429, 502, 503, 504 by default);
- but only for methods in ``retry_methods`` (the idempotent ones of RFC 9110,
  section 9.2.2, by default), unless the error proves the request never
  reached the server (``request_never_sent``), which makes any method safe.

Waits grow exponentially (``initial_delay * multiplier ** (attempt - 1)``,
capped by ``max_delay``) and are shortened by a random fraction of at most
``jitter`` so that many clients do not retry in lockstep. A ``Retry-After``
header (RFC 9110, section 10.2.3; seconds or an HTTP-date) lengthens the
wait, up to ``max_retry_after``. Randomness is injected (``random``) for
tests; so is time, through the ``now`` each call is given.
"""

from __future__ import annotations

import random as _random
from calendar import timegm
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Final

from twisted.web.http_headers import Headers

__all__ = [
    "DEFAULT_INITIAL_DELAY",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_MULTIPLIER",
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "NEVER_SENT_ERROR_NAMES",
    "TRANSIENT_ERROR_NAMES",
    "RetryPolicy",
    "ScheduledRetry",
    "is_transient_error",
    "parse_retry_after",
    "request_never_sent",
]

DEFAULT_MAX_ATTEMPTS: Final = 3
"""Attempts in total (the first try included): rides out a blip, not an outage."""

DEFAULT_INITIAL_DELAY: Final = 0.5
"""Seconds to wait before the second attempt (before jitter)."""

DEFAULT_MULTIPLIER: Final = 2.0
"""Each further wait is this many times the previous one."""

DEFAULT_MAX_DELAY: Final = 30.0
"""Longest backoff wait, in seconds, however many attempts came before."""

DEFAULT_JITTER: Final = 0.5
"""
Largest fraction randomly taken off each backoff wait (0 = none, 1 = "full").

Half keeps waits growing while spreading clients that failed together.
"""

DEFAULT_MAX_RETRY_AFTER: Final = 60.0
"""
Longest wait, in seconds, that a ``Retry-After`` header can ask for.

A server asking for more gets this; a hostile one cannot park the request.
"""

DEFAULT_RETRY_STATUSES: Final[frozenset[int]] = frozenset({429, 502, 503, 504})
"""Too Many Requests and the gateway/availability errors: worth trying again."""

IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}
)
"""Methods that may be repeated without changing the outcome (RFC 9110, 9.2.2)."""

TRANSIENT_ERROR_NAMES: Final[frozenset[str]] = frozenset(
    {
        # txhttp.client (HTTPClient layer)
        "HTTPConnectionError",
        "HTTPTimeoutError",
        # txhttp.client connection, pool and agent (and twisted.web's)
        "RequestNotSent",
        "RequestTransmissionFailed",
        "ResponseFailed",
        "ConnectTimeout",
        "ResponseHeadTimeout",
        "BodyIdleTimeout",
        # twisted.internet.error
        "ConnectError",
        "DNSLookupError",
        "ConnectionClosed",
    }
)
"""
Class names (matched anywhere in the error's MRO) that ``is_transient_error``
accepts. Names, not classes, so that this module imports neither the client
core nor ``twisted.web``; subclasses match too.
"""

NEVER_SENT_ERROR_NAMES: Final[frozenset[str]] = frozenset(
    {
        "RequestNotSent",
        "ConnectTimeout",
        "PoolQueueTimeout",
        "PoolQueueFull",
        "ConnectError",
        "DNSLookupError",
    }
)
"""Class names (matched in the MRO) proving a request was never sent."""


def _has_class_named(error: BaseException, names: frozenset[str]) -> bool:
    return any(kind.__name__ in names for kind in type(error).__mro__)


def _cause_chain(error: BaseException) -> list[BaseException]:
    """``error`` and its ``__cause__``s, outermost first (cycles cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__
    return chain


def is_transient_error(error: BaseException) -> bool:
    """
    Whether ``error`` is a failure that another attempt may not meet.

    ``True`` for connection failures, lost connections and timeouts (see
    ``TRANSIENT_ERROR_NAMES``); ``False`` for everything else, notably
    `HTTPStatusError`, `HTTPCircuitOpenError`, `HTTPBulkheadFullError`,
    `HTTPInterceptorError`, cancellation and programming errors.
    """
    return _has_class_named(error, TRANSIENT_ERROR_NAMES)


def request_never_sent(error: BaseException) -> bool:
    """
    Whether ``error`` proves that no byte of the request reached the server.

    ``True`` if ``error`` or one of its ``__cause__``s has a ``request_sent``
    attribute that is ``False`` (`HTTPConnectionError`, `HTTPCircuitOpenError`,
    `HTTPBulkheadFullError`), or is one of ``NEVER_SENT_ERROR_NAMES``
    (``RequestNotSent``, connection and DNS failures, pool queue refusals).
    ``ResponseNeverReceived`` is *not* proof: the request was written.
    """
    for link in _cause_chain(error):
        if getattr(link, "request_sent", None) is False:
            return True
        if _has_class_named(link, NEVER_SENT_ERROR_NAMES):
            return True
    return False


def parse_retry_after(value: bytes | str, now: float) -> float | None:
    """
    Seconds to wait according to a ``Retry-After`` field value.

    Args:
        value: The field value: delay-seconds or an HTTP-date (RFC 9110,
            section 10.2.3; the obsolete date formats are accepted too).
        now: The current time, in seconds since the epoch.

    Returns:
        The wait (0 for a date in the past), or ``None`` if the value is not
        valid (it is then ignored).
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    # HTTP-dates are always GMT; asctime dates come without a zone.
    seconds = timegm(when.utctimetuple()) if when.tzinfo else timegm(when.timetuple())
    return max(0.0, seconds - now)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """
    When to try a request again and how long to wait first.

    Attributes:
        max_attempts: Attempts in total, the first included
            (``DEFAULT_MAX_ATTEMPTS``); 1 disables retries.
        initial_delay: Seconds before the second attempt
            (``DEFAULT_INITIAL_DELAY``).
        multiplier: Growth of each further wait (``DEFAULT_MULTIPLIER``).
        max_delay: Longest backoff wait in seconds (``DEFAULT_MAX_DELAY``).
        jitter: Largest random fraction taken off a wait, 0 to 1
            (``DEFAULT_JITTER``).
        max_retry_after: Longest wait a ``Retry-After`` header may impose, in
            seconds (``DEFAULT_MAX_RETRY_AFTER``).
        retry_statuses: Response statuses to retry
            (``DEFAULT_RETRY_STATUSES``).
        retry_methods: Methods retried after the request may have reached the
            server (``IDEMPOTENT_METHODS``); compared in upper case.
        retry_on_timeout: Whether per-attempt timeouts are retried.
        fail_on_exhausted_status: When attempts run out on a retryable status,
            fail with `HTTPRetryExhaustedError` (``True``, the default) or
            deliver that last response (``False``).
        random: Returns a float in [0, 1); the jitter source.
        is_retryable_error: Decides which errors are worth another attempt
            (``is_transient_error``).
        never_sent: Decides which errors prove the request never reached the
            server (``request_never_sent``).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_delay: float = DEFAULT_INITIAL_DELAY
    multiplier: float = DEFAULT_MULTIPLIER
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: float = DEFAULT_JITTER
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    retry_methods: frozenset[str] = IDEMPOTENT_METHODS
    retry_on_timeout: bool = True
    fail_on_exhausted_status: bool = True
    random: Callable[[], float] = field(default=_random.random, repr=False)
    is_retryable_error: Callable[[BaseException], bool] = field(
        default=is_transient_error, repr=False
    )
    never_sent: Callable[[BaseException], bool] = field(
        default=request_never_sent, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(
                f"max_attempts must be at least 1, not {self.max_attempts!r}"
            )
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must not be negative, not {value!r}")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter!r}")

    def allows_method(self, method: str) -> bool:
        """Whether ``method`` may be retried after reaching the server."""
        return method.upper() in self.retry_methods

    def should_retry_error(self, method: str, error: BaseException) -> bool:
        """
        Whether an attempt that failed with ``error`` deserves another.

        Ignores the attempt count: the caller checks ``max_attempts``.
        """
        if not self.is_retryable_error(error):
            return False
        if not self.retry_on_timeout and _has_class_named(
            error, frozenset({"HTTPTimeoutError", "HTTPTimeout"})
        ):
            return False
        return self.allows_method(method) or self.never_sent(error)

    def should_retry_status(self, method: str, status: int) -> bool:
        """
        Whether an attempt answered with ``status`` deserves another.

        The server saw the request, so only ``retry_methods`` qualify.
        """
        return status in self.retry_statuses and self.allows_method(method)

    def backoff(self, attempt: int) -> float:
        """
        Seconds to wait after attempt number ``attempt`` (1-based) failed.

        ``min(max_delay, initial_delay * multiplier ** (attempt - 1))``, less
        up to ``jitter`` of it at random.
        """
        exponent = max(0, attempt - 1)
        try:
            delay = min(self.max_delay, self.initial_delay * self.multiplier**exponent)
        except OverflowError:
            delay = self.max_delay
        return delay * (1.0 - self.jitter * self.random())

    def delay(self, attempt: int, *, headers: Headers | None, now: float) -> float:
        """
        Seconds to wait before the attempt after ``attempt``.

        The ``backoff``, or the response's ``Retry-After`` if longer (capped at
        ``max_retry_after``).

        Args:
            attempt: The number of the attempt that failed (1-based).
            headers: The failed attempt's response headers, if any.
            now: The current time in seconds since the epoch (the clock's
                ``seconds()``), for ``Retry-After`` dates.
        """
        wait = self.backoff(attempt)
        if headers is not None:
            values = headers.getRawHeaders(b"retry-after")
            if values:
                asked = parse_retry_after(values[-1], now)
                if asked is not None:
                    wait = max(wait, min(asked, self.max_retry_after))
        return wait


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledRetry:
    """
    A retry about to happen, as reported to a pipeline's ``on_retry`` hook.

    Attributes:
        attempt: The number of the attempt about to be made (2 for the
            first retry).
        delay: Seconds the pipeline waits before making it.
        error: Why the previous attempt failed: its error, or a retried
            status as `HTTPStatusError`.
    """

    attempt: int
    delay: float
    error: BaseException
