# -*- test-case-name: txhttp.test.test_client_http -*-
"""
How `HTTPClient` names what its agent failed with.

`wrap_agent_error` turns an ``IAgent`` failure (twisted.web's errors or
txhttp's own) into an `HTTPClientError` subclass: `HTTPTimeoutError` when a
deadline below the client passed, `HTTPError` when the agent refused the
request itself, `HTTPConnectionError` for everything else, saying whether the
request may have left. Classes are matched by name along the MRO, so neither
agent layer has to be imported here. `describe_error` is the one-line text
used in those messages and in logs. Left out: retry decisions
(`RetryPolicy` reads the wrapped errors' types).
"""

from __future__ import annotations

from typing import Final

from twisted.python.failure import Failure

from txhttp.client._exceptions import (
    HTTPClientError,
    HTTPConnectionError,
    HTTPError,
    HTTPTimeoutError,
)
from txhttp.client._retry import request_never_sent

__all__ = ["describe_error", "wrap_agent_error"]

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

_LOCAL_ERROR_NAMES: Final = frozenset({"SchemeNotSupported", "LocalProtocolError"})
"""Agent errors that mean the request itself was invalid (our caller's fault)."""


def describe_error(error: BaseException) -> str:
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


def wrap_agent_error(error: Exception, method: str, url: str) -> Exception:
    """
    Turn an agent failure into the matching `HTTPClientError` (or `HTTPError`).

    Errors that already are ours pass through unchanged; the others become
    the ``__cause__`` of the error returned.
    """
    if isinstance(error, HTTPClientError | HTTPError):
        return error
    names = {kind.__name__ for kind in type(error).__mro__}
    wrapped: Exception
    if names & _TIMEOUT_ERROR_NAMES:
        wrapped = HTTPTimeoutError(
            f"timed out below the client: {describe_error(error)}",
            phase="agent",
            method=method,
            url=url,
        )
    elif names & _LOCAL_ERROR_NAMES:
        wrapped = HTTPError(f"request refused by the agent: {describe_error(error)}")
    else:
        wrapped = HTTPConnectionError(
            f"request failed: {describe_error(error)}",
            method=method,
            url=url,
            request_sent=not request_never_sent(error),
        )
    wrapped.__cause__ = error
    return wrapped
