# -*- test-case-name: txhttp.test.test_client_metrics -*-
"""
Request metrics: what `HTTPClient` measures, and where it sends it.

`record_request` turns one finished request into two measurements, following
the OpenTelemetry semantic conventions for HTTP clients:

- ``REQUEST_DURATION`` (``"http.request.duration"``), a histogram of seconds;
- ``REQUEST_STATUS`` (``"http.request.status"``), a counter of requests;

both with the attributes ``http.request.method`` (one of the standard methods
or ``"_OTHER"``), ``server.address``, ``server.port`` (when known),
``http.response.status_code`` (when a response arrived) and ``error.type``
(the exception's class, or the status code for 4xx/5xx answers).

A `MetricsRecorder` receives them. Two ship here: `InMemoryMetricsRecorder`
keeps them in a bounded list for tests, and `OpenTelemetryMetricsRecorder`
forwards them to an OpenTelemetry ``Meter`` (install the ``otel`` extra;
``opentelemetry-api`` is imported only when that recorder is created).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider

__all__ = [
    "DEFAULT_MAX_METRIC_POINTS",
    "DURATION_BUCKETS_SECONDS",
    "REQUEST_DURATION",
    "REQUEST_STATUS",
    "AttributeValue",
    "InMemoryMetricsRecorder",
    "MetricPoint",
    "MetricsRecorder",
    "OpenTelemetryMetricsRecorder",
    "record_request",
    "request_attributes",
]

REQUEST_DURATION: Final = "http.request.duration"
"""Histogram of request durations, in seconds (unit ``"s"``)."""

REQUEST_STATUS: Final = "http.request.status"
"""Counter of finished requests, one per request, split by status attributes."""

DURATION_BUCKETS_SECONDS: Final[tuple[float, ...]] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""Histogram bucket bounds advised by the OpenTelemetry HTTP conventions."""

DEFAULT_MAX_METRIC_POINTS: Final = 10_000
"""
How many measurements `InMemoryMetricsRecorder` keeps; older ones are dropped.

Ample for any test, and a bound if one is left running in a long process.
"""

_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
"""Methods reported as is; others become ``"_OTHER"`` (bounded cardinality)."""

AttributeValue = str | int | float | bool
"""The value types an attribute may have (those OpenTelemetry accepts)."""


class MetricsRecorder(Protocol):
    """
    Receives measurements by instrument name.

    `record_request` calls ``record_histogram`` with ``REQUEST_DURATION`` and
    ``add_to_counter`` with ``REQUEST_STATUS``. Implementations must not raise
    and should not block: they run on the reactor thread for every request.
    """

    def record_histogram(
        self, name: str, value: float, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Record ``value`` in the histogram ``name``."""

    def add_to_counter(
        self, name: str, amount: int, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Add ``amount`` to the counter ``name``."""


def request_attributes(
    *,
    method: str,
    host: str,
    port: int | None = None,
    status: int | None = None,
    error: BaseException | None = None,
) -> dict[str, AttributeValue]:
    """
    The OpenTelemetry HTTP client attributes of one request.

    Args:
        method: The request method; a non-standard one is reported as
            ``"_OTHER"`` with the original in ``http.request.method_original``.
        host: The server's host name or address (``server.address``).
        port: The server's port (``server.port``), if known.
        status: The response status (``http.response.status_code``), or
            ``None`` if no response arrived.
        error: The exception the request failed with, if any.

    Returns:
        The attributes; ``error.type`` is the exception's qualified class
        name, else the status code as a string for a status of 400 or more.
    """
    upper = method.upper()
    attributes: dict[str, AttributeValue] = {"server.address": host}
    if upper in _KNOWN_METHODS:
        attributes["http.request.method"] = upper
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
    if port is not None:
        attributes["server.port"] = port
    if status is not None:
        attributes["http.response.status_code"] = status
    if error is not None:
        kind = type(error)
        attributes["error.type"] = f"{kind.__module__}.{kind.__qualname__}"
    elif status is not None and status >= 400:
        attributes["error.type"] = str(status)
    return attributes


def record_request(
    recorder: MetricsRecorder,
    *,
    method: str,
    host: str,
    duration: float,
    port: int | None = None,
    status: int | None = None,
    error: BaseException | None = None,
) -> None:
    """
    Report one finished request to ``recorder``.

    Records ``duration`` (seconds) in ``REQUEST_DURATION`` and adds one to
    ``REQUEST_STATUS``, both with ``request_attributes``.
    """
    attributes = request_attributes(
        method=method, host=host, port=port, status=status, error=error
    )
    recorder.record_histogram(REQUEST_DURATION, duration, attributes)
    recorder.add_to_counter(REQUEST_STATUS, 1, attributes)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """
    One measurement kept by `InMemoryMetricsRecorder`.

    Attributes:
        kind: ``"histogram"`` or ``"counter"``.
        name: The instrument name.
        value: The recorded value (histogram) or amount added (counter).
        attributes: The measurement's attributes.
    """

    kind: Literal["histogram", "counter"]
    name: str
    value: float
    attributes: Mapping[str, AttributeValue]


class InMemoryMetricsRecorder:
    """
    A `MetricsRecorder` that keeps measurements in memory, for tests.

    Keeps the latest ``max_points`` measurements (``DEFAULT_MAX_METRIC_POINTS``
    by default).
    """

    def __init__(self, max_points: int = DEFAULT_MAX_METRIC_POINTS) -> None:
        if max_points < 1:
            raise ValueError(f"max_points must be at least 1, not {max_points!r}")
        self._points: deque[MetricPoint] = deque(maxlen=max_points)

    def record_histogram(
        self, name: str, value: float, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Keep a histogram measurement."""
        self._points.append(MetricPoint("histogram", name, value, dict(attributes)))

    def add_to_counter(
        self, name: str, amount: int, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Keep a counter increment."""
        self._points.append(MetricPoint("counter", name, amount, dict(attributes)))

    @property
    def points(self) -> Sequence[MetricPoint]:
        """Every kept measurement, oldest first."""
        return tuple(self._points)

    def values(self, name: str, **attributes: AttributeValue) -> list[float]:
        """
        The values recorded under ``name`` whose attributes include ``attributes``.

        Attribute names contain dots, so pass them with ``**{...}``:
        ``recorder.values(REQUEST_DURATION, **{"server.address": "a"})``.
        """
        return [
            point.value
            for point in self._points
            if point.name == name
            and all(point.attributes.get(k) == v for k, v in attributes.items())
        ]

    def counter_total(self, name: str, **attributes: AttributeValue) -> float:
        """The sum added to counter ``name`` with matching ``attributes``."""
        return sum(self.values(name, **attributes))

    def clear(self) -> None:
        """Forget every measurement."""
        self._points.clear()


class OpenTelemetryMetricsRecorder:
    """
    A `MetricsRecorder` that forwards to OpenTelemetry instruments.

    Needs ``opentelemetry-api`` (the ``otel`` extra); without an SDK
    configured, OpenTelemetry discards the measurements. Instruments are
    created on first use, one per name: ``REQUEST_DURATION`` as a histogram in
    seconds with ``DURATION_BUCKETS_SECONDS``, ``REQUEST_STATUS`` as a counter.

    Args:
        meter_provider: Where to get the meter; the global provider if
            ``None``.
        meter_name: The instrumentation scope name.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        meter_name: str = "txhttp",
    ) -> None:
        try:
            from opentelemetry import metrics  # noqa: PLC0415 (optional extra)
        except ImportError as error:
            raise ImportError(
                "OpenTelemetryMetricsRecorder needs opentelemetry-api: "
                "pip install 'txhttp[otel]'"
            ) from error
        provider = meter_provider or metrics.get_meter_provider()
        self._meter: Meter = provider.get_meter(meter_name)
        self._histograms: dict[str, Histogram] = {}
        self._counters: dict[str, Counter] = {}

    def record_histogram(
        self, name: str, value: float, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Record ``value`` in the OpenTelemetry histogram ``name``."""
        histogram = self._histograms.get(name)
        if histogram is None:
            if name == REQUEST_DURATION:
                histogram = self._meter.create_histogram(
                    name,
                    unit="s",
                    description="Duration of HTTP client requests.",
                    explicit_bucket_boundaries_advisory=DURATION_BUCKETS_SECONDS,
                )
            else:
                histogram = self._meter.create_histogram(name)
            self._histograms[name] = histogram
        histogram.record(value, dict(attributes))

    def add_to_counter(
        self, name: str, amount: int, attributes: Mapping[str, AttributeValue]
    ) -> None:
        """Add ``amount`` to the OpenTelemetry counter ``name``."""
        counter = self._counters.get(name)
        if counter is None:
            if name == REQUEST_STATUS:
                counter = self._meter.create_counter(
                    name,
                    unit="{request}",
                    description="HTTP client requests, by response status.",
                )
            else:
                counter = self._meter.create_counter(name)
            self._counters[name] = counter
        counter.add(amount, dict(attributes))
