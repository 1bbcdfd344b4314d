# -*- test-case-name: txhttp.test.test_client_response -*-
"""
Tests for `txhttp.client.Response` and the `BodyStream` carrying its body,
driven directly with a recording `BodyControl` (no connection involved).
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web._newclient import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface.verify import verifyObject

from txhttp.client import ConnectionAborted, Response, ResponseFailed
from txhttp.client._response import BodyControl, BodyStream
from txhttp.test.test_client_protocol import BodyCollector, make_request


class RecordingControl:
    """A `BodyControl` that records what the stream asks of its connection."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_body(self, stream: BodyStream) -> None:
        """Record a pause."""
        self.calls.append("pause")

    def resume_body(self, stream: BodyStream) -> None:
        """Record a resume."""
        self.calls.append("resume")

    def stop_body(self, stream: BodyStream) -> None:
        """Record a stop; a real connection would finish the stream."""
        self.calls.append("stop")
        stream.finish(Failure(ResponseFailed([Failure(ConnectionAborted())])))

    def abort_body(self, stream: BodyStream) -> None:
        """Record an abort."""
        self.calls.append("abort")


def make_response(
    max_buffered_bytes: int = 100,
    *,
    fields: list[tuple[bytes, bytes]] | None = None,
    length: int | str = UNKNOWN_LENGTH,
) -> tuple[Response, BodyStream, RecordingControl]:
    """A response with a stream fed by a `RecordingControl`."""
    control = RecordingControl()
    control_view: BodyControl = control
    stream = BodyStream(control_view, max_buffered_bytes)
    response = Response(
        version=(b"HTTP", 1, 1),
        code=200,
        phrase=b"OK",
        fields=fields or [],
        length=length,
        request=make_request(),
        body=stream,
    )
    return response, stream, control


class ResponseTests(SynchronousTestCase):
    def test_provides_iresponse(self) -> None:
        """A Response provides IResponse and its stream IPushProducer."""
        response, stream, _ = make_response()
        self.assertTrue(verifyObject(IResponse, response))
        self.assertTrue(verifyObject(IPushProducer, stream))

    def test_headers_keep_order_and_repeats(self) -> None:
        """Headers hold every field value in received order."""
        response, _, _ = make_response(
            fields=[(b"Set-Cookie", b"a=1"), (b"X-Y", b"z"), (b"set-cookie", b"b=2")]
        )
        self.assertEqual(
            [b"a=1", b"b=2"], response.headers.getRawHeaders(b"set-cookie")
        )
        self.assertIs(response.headers, response.headers)

    def test_set_previous_response(self) -> None:
        """setPreviousResponse records the previous response."""
        first, _, _ = make_response()
        second, _, _ = make_response()
        second.setPreviousResponse(first)
        self.assertIs(first, second.previousResponse)

    def test_deliver_body_twice_raises(self) -> None:
        """A second deliverBody raises RuntimeError and leaves the first alone."""
        response, stream, _ = make_response()
        first = BodyCollector()
        response.deliverBody(first)
        with self.assertRaises(RuntimeError):
            response.deliverBody(BodyCollector())
        stream.data_received(b"x")
        self.assertEqual(b"x", first.body)

    def test_trailers_none_until_done(self) -> None:
        """Trailers are None until the body ends, then Headers (maybe empty)."""
        response, stream, _ = make_response()
        self.assertIsNone(response.trailers)
        stream.finish(Failure(ResponseDone()), [(b"X-Sum", b"1")])
        trailers = response.trailers
        assert trailers is not None
        self.assertEqual([b"1"], trailers.getRawHeaders(b"x-sum"))

    def test_failed_body_has_no_trailers(self) -> None:
        """A body that failed exposes no trailers."""
        response, stream, _ = make_response()
        stream.finish(Failure(ResponseFailed([Failure(ValueError())])))
        self.assertIsNone(response.trailers)


class BodyStreamTests(SynchronousTestCase):
    def test_data_flows_straight_through(self) -> None:
        """With a body protocol attached, data goes straight to it."""
        response, stream, control = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(1, body.made)
        self.assertIs(stream, body.transport)
        stream.data_received(b"ab")
        stream.data_received(b"cd")
        self.assertEqual([b"ab", b"cd"], body.data)
        self.assertEqual([], control.calls)

    def test_held_data_then_end_on_attach(self) -> None:
        """Data and the end before deliverBody are given in order on attach."""
        response, stream, _ = make_response()
        stream.data_received(b"ab")
        stream.finish(Failure(PotentialDataLoss()))
        stream.data_received(b"late")
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(b"ab", body.body)
        assert body.reason is not None
        self.assertTrue(body.reason.check(PotentialDataLoss))

    def test_buffer_limit_pauses_then_attach_resumes(self) -> None:
        """Holding over the limit asks for a pause; attaching asks to resume."""
        response, stream, control = make_response(max_buffered_bytes=4)
        stream.data_received(b"abc")
        self.assertEqual([], control.calls)
        stream.data_received(b"de")
        self.assertEqual(["pause"], control.calls)
        self.assertTrue(stream.is_paused())
        body = BodyCollector()
        response.deliverBody(body)
        self.assertEqual(["pause", "resume"], control.calls)
        self.assertEqual(b"abcde", body.body)

    def test_consumer_pause_holds_data_and_end(self) -> None:
        """While the body protocol is paused, data and the end are held."""
        response, stream, control = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        stream.pauseProducing()
        self.assertEqual(["pause"], control.calls)
        stream.data_received(b"a")
        stream.finish(Failure(ResponseDone()))
        self.assertEqual(b"", body.body)
        self.assertIsNone(body.reason)
        stream.resumeProducing()
        self.assertEqual(b"a", body.body)
        self.assertIsNotNone(body.reason)
        self.assertEqual(["pause"], control.calls)

    def test_pause_and_resume_are_idempotent(self) -> None:
        """Repeated pauses or resumes reach the connection once each."""
        response, stream, control = make_response()
        response.deliverBody(BodyCollector())
        stream.pauseProducing()
        stream.pauseProducing()
        stream.resumeProducing()
        stream.resumeProducing()
        self.assertEqual(["pause", "resume"], control.calls)

    def test_pause_during_drain_stops_the_drain(self) -> None:
        """A body protocol pausing inside dataReceived gets no more until resumed."""
        response, stream, _ = make_response()
        stream.data_received(b"a")
        stream.data_received(b"b")

        class PauseOnFirst(BodyCollector):
            def dataReceived(self, data: bytes) -> None:
                super().dataReceived(data)
                stream.pauseProducing()

        body = PauseOnFirst()
        response.deliverBody(body)
        self.assertEqual(b"a", body.body)
        stream.resumeProducing()
        self.assertEqual(b"ab", body.body)

    def test_stop_producing_asks_the_connection(self) -> None:
        """stopProducing asks the connection to stop; the body then fails."""
        response, stream, control = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        stream.stopProducing()
        self.assertEqual(["stop"], control.calls)
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseFailed))
        stream.stopProducing()
        self.assertEqual(["stop"], control.calls)

    def test_abort_connection_asks_the_connection(self) -> None:
        """abortConnection is passed to the connection, until the body ends."""
        response, stream, control = make_response()
        response.deliverBody(BodyCollector())
        stream.abortConnection()
        self.assertEqual(["abort"], control.calls)
        stream.finish(Failure(ResponseDone()))
        stream.abortConnection()
        self.assertEqual(["abort"], control.calls)

    def test_finish_once(self) -> None:
        """Only the first finish counts."""
        response, stream, _ = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        stream.finish(Failure(ResponseDone()))
        stream.finish(Failure(ResponseFailed([])))
        assert body.reason is not None
        self.assertTrue(body.reason.check(ResponseDone))
        self.assertTrue(stream.is_finished())
