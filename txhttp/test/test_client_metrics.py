"""
Tests for `txhttp.client._metrics`: attributes, recorders, OpenTelemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from txhttp.client._exceptions import HTTPTimeoutError
from txhttp.client._metrics import (
    DURATION_BUCKETS_SECONDS,
    REQUEST_DURATION,
    REQUEST_STATUS,
    InMemoryMetricsRecorder,
    MetricPoint,
    MetricsRecorder,
    OpenTelemetryMetricsRecorder,
    record_request,
    request_attributes,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import Metric


class AttributeTests(SynchronousTestCase):
    """OpenTelemetry HTTP semantic convention attributes."""

    def test_success(self) -> None:
        """A successful request has method, address, port and status."""
        self.assertEqual(
            {
                "http.request.method": "GET",
                "server.address": "example.com",
                "server.port": 443,
                "http.response.status_code": 200,
            },
            request_attributes(method="get", host="example.com", port=443, status=200),
        )

    def test_error_status(self) -> None:
        """A 4xx/5xx status is reported as error.type."""
        attributes = request_attributes(method="POST", host="h", status=503)
        self.assertEqual("503", attributes["error.type"])
        self.assertNotIn("server.port", attributes)

    def test_exception(self) -> None:
        """A failed request reports the exception class, and no status."""
        attributes = request_attributes(
            method="GET", host="h", error=HTTPTimeoutError("slow")
        )
        self.assertEqual(
            "txhttp.client._exceptions.HTTPTimeoutError", attributes["error.type"]
        )
        self.assertNotIn("http.response.status_code", attributes)

    def test_unknown_method(self) -> None:
        """Non-standard methods become _OTHER, keeping the original."""
        attributes = request_attributes(method="PURGE", host="h")
        self.assertEqual("_OTHER", attributes["http.request.method"])
        self.assertEqual("PURGE", attributes["http.request.method_original"])


class InMemoryMetricsRecorderTests(SynchronousTestCase):
    """The recorder for tests."""

    def test_record_request(self) -> None:
        """record_request emits one duration and one status count."""
        recorder = InMemoryMetricsRecorder()
        record_request(recorder, method="GET", host="h", status=200, duration=0.25)
        record_request(recorder, method="GET", host="h", status=503, duration=1.5)
        self.assertEqual([0.25, 1.5], recorder.values(REQUEST_DURATION))
        self.assertEqual(2, recorder.counter_total(REQUEST_STATUS))
        self.assertEqual(
            1,
            recorder.counter_total(
                REQUEST_STATUS, **{"http.response.status_code": 503}
            ),
        )
        kinds = [(p.kind, p.name) for p in recorder.points]
        self.assertEqual(
            [
                ("histogram", REQUEST_DURATION),
                ("counter", REQUEST_STATUS),
                ("histogram", REQUEST_DURATION),
                ("counter", REQUEST_STATUS),
            ],
            kinds,
        )

    def test_names(self) -> None:
        """The instrument names are the documented ones."""
        self.assertEqual(
            ("http.request.duration", "http.request.status"),
            (REQUEST_DURATION, REQUEST_STATUS),
        )

    def test_bounded(self) -> None:
        """Only the latest max_points measurements are kept."""
        recorder = InMemoryMetricsRecorder(max_points=3)
        for value in range(5):
            recorder.record_histogram("x", value, {})
        self.assertEqual([2, 3, 4], recorder.values("x"))
        self.assertRaises(ValueError, InMemoryMetricsRecorder, max_points=0)

    def test_attributes_copied(self) -> None:
        """Later changes to the caller's attributes do not alter a point."""
        recorder = InMemoryMetricsRecorder()
        attributes: dict[str, str | int | float | bool] = {"a": 1}
        recorder.add_to_counter("c", 1, attributes)
        attributes["a"] = 2
        self.assertEqual(MetricPoint("counter", "c", 1, {"a": 1}), recorder.points[0])
        recorder.clear()
        self.assertEqual((), recorder.points)

    def test_satisfies_protocol(self) -> None:
        """The in-memory recorder is a MetricsRecorder."""
        memory = InMemoryMetricsRecorder()
        recorder: MetricsRecorder = memory
        record_request(recorder, method="GET", host="h", duration=0.0)
        self.assertEqual(2, len(memory.points))


class OpenTelemetryMetricsRecorderTests(SynchronousTestCase):
    """Forwarding to the OpenTelemetry SDK's in-memory reader."""

    def setUp(self) -> None:
        try:
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        except ImportError:
            raise SkipTest("opentelemetry-sdk is not installed") from None
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def collect(self) -> dict[str, Metric]:
        """Metric name -> metric, from the reader."""
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            metric.name: metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    def test_histogram_and_counter(self) -> None:
        """record_request produces a histogram in seconds and a counter."""
        from opentelemetry.sdk.metrics.export import Histogram, Sum

        recorder = OpenTelemetryMetricsRecorder(self.provider)
        record_request(
            recorder, method="GET", host="h", port=80, status=200, duration=0.2
        )
        record_request(
            recorder, method="GET", host="h", port=80, status=200, duration=0.4
        )
        metrics = self.collect()
        duration = metrics[REQUEST_DURATION]
        status = metrics[REQUEST_STATUS]
        duration_data, status_data = duration.data, status.data
        assert isinstance(duration_data, Histogram)
        assert isinstance(status_data, Sum)
        self.assertEqual("s", duration.unit)
        (point,) = duration_data.data_points
        self.assertEqual(2, point.count)
        self.assertAlmostEqual(0.6, point.sum)
        self.assertEqual(list(DURATION_BUCKETS_SECONDS), list(point.explicit_bounds))
        self.assertEqual(
            {
                "http.request.method": "GET",
                "server.address": "h",
                "server.port": 80,
                "http.response.status_code": 200,
            },
            dict(point.attributes or {}),
        )
        (count,) = status_data.data_points
        self.assertEqual(2, count.value)

    def test_other_names(self) -> None:
        """Other instrument names get plain instruments."""
        recorder = OpenTelemetryMetricsRecorder(self.provider)
        recorder.record_histogram("custom.histogram", 1.0, {"k": "v"})
        recorder.add_to_counter("custom.counter", 3, {})
        metrics = self.collect()
        self.assertIn("custom.histogram", metrics)
        self.assertIn("custom.counter", metrics)
