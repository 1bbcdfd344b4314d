# -*- test-case-name: txhttp.test.test_client_http -*-
"""
The lifecycle of an `HTTPClient`, and what its health check reports.

`HTTPClientState` moves NEW -> RUNNING -> STOPPING -> STOPPED (or straight
from NEW to STOPPED) as `LifecycleInput` events arrive; the legal moves are
written once, in `LIFECYCLE_TRANSITIONS`, and `next_state` refuses the rest
with `HTTPClientError`. `HealthCheckResult` is the value
`HTTPClient.health_check` fires with. Side effects (cancelling requests,
closing the pool) stay with the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from txhttp.client._exceptions import HTTPClientError

__all__ = [
    "LIFECYCLE_TRANSITIONS",
    "HTTPClientState",
    "HealthCheckResult",
    "LifecycleInput",
    "next_state",
]


class HTTPClientState(Enum):
    """Lifecycle of an `HTTPClient`."""

    NEW = auto()
    RUNNING = auto()
    STOPPING = auto()
    STOPPED = auto()


class LifecycleInput(Enum):
    """What moves an `HTTPClient` between `HTTPClientState` values."""

    START = auto()
    STOP = auto()
    CLOSED = auto()


LIFECYCLE_TRANSITIONS: Final[
    Mapping[tuple[HTTPClientState, LifecycleInput], HTTPClientState]
] = {
    (HTTPClientState.NEW, LifecycleInput.START): HTTPClientState.RUNNING,
    (HTTPClientState.RUNNING, LifecycleInput.START): HTTPClientState.RUNNING,
    (HTTPClientState.NEW, LifecycleInput.STOP): HTTPClientState.STOPPED,
    (HTTPClientState.RUNNING, LifecycleInput.STOP): HTTPClientState.STOPPING,
    (HTTPClientState.STOPPING, LifecycleInput.STOP): HTTPClientState.STOPPING,
    (HTTPClientState.STOPPED, LifecycleInput.STOP): HTTPClientState.STOPPED,
    (HTTPClientState.STOPPING, LifecycleInput.CLOSED): HTTPClientState.STOPPED,
}
"""Every legal ``(state, input)`` move; anything else is refused."""


def next_state(state: HTTPClientState, event: LifecycleInput) -> HTTPClientState:
    """
    The state ``event`` leads to from ``state``.

    Raises:
        HTTPClientError: The move is not legal (starting a stopped client).
    """
    try:
        return LIFECYCLE_TRANSITIONS[state, event]
    except KeyError:
        raise HTTPClientError(
            f"client cannot {event.name.lower()} while {state.name.lower()}"
        ) from None


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
