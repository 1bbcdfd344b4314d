"""
Tests for `txhttp.client._retry`: retry decisions, backoff and Retry-After.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from txhttp.client._errors import (
    ConnectTimeout,
    RequestNotSent,
    ResponseFailed,
    ResponseNeverReceived,
)
from txhttp.client._exceptions import (
    HTTPBulkheadFullError,
    HTTPCircuitOpenError,
    HTTPConnectionError,
    HTTPInterceptorError,
    HTTPStatusError,
    HTTPTimeoutError,
)
from txhttp.client._retry import (
    DEFAULT_RETRY_STATUSES,
    IDEMPOTENT_METHODS,
    RetryPolicy,
    is_transient_error,
    parse_retry_after,
    request_never_sent,
)

# Sun, 06 Nov 1994 08:49:37 GMT, in seconds since the epoch.
RFC_DATE_EPOCH = 784111777.0


def fixed(value: float) -> RetryPolicy:
    """A policy whose jitter source always returns ``value``."""
    return RetryPolicy(random=lambda: value)


class DefaultsTests(SynchronousTestCase):
    """The defaults match the documented behaviour."""

    def test_default_statuses(self) -> None:
        """429, 502, 503 and 504 are retried by default, and nothing else."""
        self.assertEqual(frozenset({429, 502, 503, 504}), DEFAULT_RETRY_STATUSES)

    def test_idempotent_methods(self) -> None:
        """The idempotent methods of RFC 9110 are the default retry methods."""
        self.assertEqual(
            frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"}),
            IDEMPOTENT_METHODS,
        )
        self.assertEqual(IDEMPOTENT_METHODS, RetryPolicy().retry_methods)

    def test_invalid_settings_refused(self) -> None:
        """Out-of-range settings raise ValueError naming the setting."""
        for kwargs, name in [
            ({"max_attempts": 0}, "max_attempts"),
            ({"initial_delay": -1.0}, "initial_delay"),
            ({"max_delay": -1.0}, "max_delay"),
            ({"max_retry_after": -0.5}, "max_retry_after"),
            ({"multiplier": 0.5}, "multiplier"),
            ({"jitter": 1.5}, "jitter"),
            ({"jitter": -0.1}, "jitter"),
        ]:
            with self.assertRaises(ValueError) as caught:
                RetryPolicy(**kwargs)  # type: ignore[arg-type]  # mixed kwargs
            self.assertIn(name, str(caught.exception))


class ErrorClassificationTests(SynchronousTestCase):
    """Which errors are transient, and which prove the request was not sent."""

    def test_transient_errors(self) -> None:
        """Connection failures, lost connections and timeouts are transient."""
        for error in [
            HTTPConnectionError("boom"),
            HTTPTimeoutError("slow", phase="attempt"),
            ConnectionRefusedError(),
            ConnectionLost(),
            RequestNotSent(),
            ResponseFailed([]),
            ResponseNeverReceived([]),
            ConnectTimeout(5.0),
        ]:
            self.assertTrue(is_transient_error(error), repr(error))

    def test_permanent_errors(self) -> None:
        """Local refusals, status errors, interceptors and bugs are not."""
        for error in [
            HTTPStatusError("500", status=500),
            HTTPCircuitOpenError("open", host="h"),
            HTTPBulkheadFullError("full", bulkhead="b", reason="queue-full"),
            HTTPInterceptorError("bad", interceptor="i", phase="request"),
            ValueError("bug"),
        ]:
            self.assertFalse(is_transient_error(error), repr(error))

    def test_never_sent_by_type(self) -> None:
        """RequestNotSent and connection failures prove nothing was sent."""
        self.assertTrue(request_never_sent(RequestNotSent()))
        self.assertTrue(request_never_sent(ConnectionRefusedError()))
        self.assertTrue(request_never_sent(ConnectTimeout(1.0)))

    def test_never_sent_by_attribute(self) -> None:
        """A request_sent attribute of False is proof; True is not."""
        self.assertTrue(
            request_never_sent(HTTPConnectionError("x", request_sent=False))
        )
        self.assertFalse(
            request_never_sent(HTTPConnectionError("x", request_sent=True))
        )

    def test_never_sent_through_cause(self) -> None:
        """A wrapping error whose cause proves it counts as never sent."""
        wrapper = HTTPConnectionError("x")
        wrapper.__cause__ = RequestNotSent()
        self.assertTrue(request_never_sent(wrapper))

    def test_response_never_received_is_not_proof(self) -> None:
        """The request was written when no response came: not proof."""
        self.assertFalse(request_never_sent(ResponseNeverReceived([])))
        self.assertFalse(request_never_sent(ConnectionLost()))

    def test_cause_cycle_terminates(self) -> None:
        """A cycle of causes does not loop forever."""
        first, second = ValueError("a"), ValueError("b")
        first.__cause__, second.__cause__ = second, first
        self.assertFalse(request_never_sent(first))


class DecisionTests(SynchronousTestCase):
    """`RetryPolicy.should_retry_error` and `should_retry_status`."""

    def test_idempotent_method_retried_after_sending(self) -> None:
        """A lost connection is retried for GET but not for POST."""
        policy = RetryPolicy()
        self.assertTrue(policy.should_retry_error("GET", ConnectionLost()))
        self.assertTrue(policy.should_retry_error("put", ConnectionLost()))
        self.assertFalse(policy.should_retry_error("POST", ConnectionLost()))
        self.assertFalse(policy.should_retry_error("PATCH", ResponseNeverReceived([])))

    def test_unsent_post_retried(self) -> None:
        """A POST that provably never reached the server is retried."""
        policy = RetryPolicy()
        self.assertTrue(policy.should_retry_error("POST", RequestNotSent()))
        self.assertTrue(policy.should_retry_error("POST", ConnectionRefusedError()))

    def test_local_refusals_not_retried(self) -> None:
        """Never-sent but non-transient errors (open circuit) are not retried."""
        policy = RetryPolicy()
        self.assertFalse(
            policy.should_retry_error("GET", HTTPCircuitOpenError("o", host="h"))
        )

    def test_timeouts_configurable(self) -> None:
        """retry_on_timeout=False stops retrying timeouts only."""
        policy = RetryPolicy(retry_on_timeout=False)
        self.assertFalse(policy.should_retry_error("GET", HTTPTimeoutError("t")))
        self.assertFalse(policy.should_retry_error("GET", ConnectTimeout(1.0)))
        self.assertTrue(policy.should_retry_error("GET", ConnectionLost()))

    def test_custom_predicates(self) -> None:
        """The error predicates are injectable."""
        policy = RetryPolicy(
            is_retryable_error=lambda e: isinstance(e, KeyError),
            never_sent=lambda e: True,
        )
        self.assertTrue(policy.should_retry_error("POST", KeyError()))
        self.assertFalse(policy.should_retry_error("GET", ConnectionLost()))

    def test_statuses(self) -> None:
        """Configured statuses are retried for idempotent methods only."""
        policy = RetryPolicy()
        for status in (429, 502, 503, 504):
            self.assertTrue(policy.should_retry_status("GET", status))
            self.assertFalse(policy.should_retry_status("POST", status))
        for status in (200, 404, 500):
            self.assertFalse(policy.should_retry_status("GET", status))
        custom = RetryPolicy(retry_statuses=frozenset({500}))
        self.assertTrue(custom.should_retry_status("GET", 500))
        self.assertFalse(custom.should_retry_status("GET", 503))


class BackoffTests(SynchronousTestCase):
    """Exponential backoff with injected jitter."""

    def test_exponential_without_jitter(self) -> None:
        """With no jitter, waits are 0.5, 1, 2, 4... seconds."""
        policy = RetryPolicy(jitter=0.0)
        self.assertEqual(
            [0.5, 1.0, 2.0, 4.0, 8.0], [policy.backoff(n) for n in range(1, 6)]
        )

    def test_capped_by_max_delay(self) -> None:
        """No wait exceeds max_delay, even for huge attempt numbers."""
        policy = RetryPolicy(jitter=0.0, max_delay=3.0)
        self.assertEqual(2.0, policy.backoff(3))
        self.assertEqual(3.0, policy.backoff(4))
        self.assertEqual(3.0, policy.backoff(10_000))

    def test_jitter_takes_random_fraction(self) -> None:
        """The random value scales how much jitter is taken off."""
        self.assertEqual(1.0, fixed(0.0).backoff(2))
        self.assertEqual(0.75, fixed(0.5).backoff(2))
        full = RetryPolicy(jitter=1.0, random=lambda: 0.25)
        self.assertEqual(0.75, full.backoff(2))

    def test_delay_without_headers_is_backoff(self) -> None:
        """With no response, the delay is the backoff."""
        self.assertEqual(1.0, fixed(0.0).delay(2, headers=None, now=0.0))


class RetryAfterTests(SynchronousTestCase):
    """Retry-After values and how they combine with backoff."""

    def test_parse_seconds(self) -> None:
        """Delay-seconds are read as a number of seconds."""
        self.assertEqual(120.0, parse_retry_after(b"120", now=0.0))
        self.assertEqual(3.0, parse_retry_after(" 3 ", now=0.0))

    def test_parse_dates(self) -> None:
        """IMF-fixdate, RFC 850 and asctime dates are relative to now."""
        for value in [
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sunday, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 1994",
        ]:
            self.assertEqual(
                7.0, parse_retry_after(value, now=RFC_DATE_EPOCH - 7), value
            )

    def test_past_date_is_zero(self) -> None:
        """A date in the past means no wait."""
        self.assertEqual(
            0.0, parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", now=2e9)
        )

    def test_invalid_ignored(self) -> None:
        """Garbage, negative and fractional values are ignored."""
        values: list[bytes | str] = [b"soon", b"-5", b"1.5", b"", "\u0663"]
        for value in values:
            self.assertIsNone(parse_retry_after(value, now=0.0), value)

    def test_longer_retry_after_wins(self) -> None:
        """A Retry-After longer than the backoff sets the wait."""
        headers = Headers({b"Retry-After": [b"10"]})
        self.assertEqual(10.0, fixed(0.0).delay(1, headers=headers, now=0.0))

    def test_shorter_retry_after_ignored(self) -> None:
        """A Retry-After shorter than the backoff does not shorten it."""
        headers = Headers({b"Retry-After": [b"0"]})
        self.assertEqual(2.0, fixed(0.0).delay(3, headers=headers, now=0.0))

    def test_retry_after_capped(self) -> None:
        """Retry-After cannot impose more than max_retry_after."""
        policy = RetryPolicy(random=lambda: 0.0, max_retry_after=5.0)
        headers = Headers({b"Retry-After": [b"3600"]})
        self.assertEqual(5.0, policy.delay(1, headers=headers, now=0.0))

    def test_retry_after_date(self) -> None:
        """An HTTP-date Retry-After is measured from the given now."""
        headers = Headers({b"Retry-After": [b"Sun, 06 Nov 1994 08:49:37 GMT"]})
        self.assertEqual(
            30.0, fixed(0.0).delay(1, headers=headers, now=RFC_DATE_EPOCH - 30)
        )
