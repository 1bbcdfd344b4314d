# -*- test-case-name: txhttp.test.test_client_response -*-
"""
Tests for `txhttp.client.Response` and the `BodyStream` carrying its body,
driven directly with a recording `BodyControl` (no connection involved).
"""

from __future__ import annotations

import gc
import weakref

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web._newclient import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers, InvalidHeaderName
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface.verify import verifyObject

from txhttp.client import ConnectionAborted, Response, ResponseFailed, _response
from txhttp.client._response import BodyControl, BodyStream, headers_from_fields
from txhttp.test import strategies
from txhttp.test.test_client_protocol import BodyCollector, make_request

strategies.load_profile()


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

    def test_deliver_body_twice_after_end_raises(self) -> None:
        """A second deliverBody raises even once the first got the whole body."""
        response, stream, _ = make_response()
        first = BodyCollector()
        response.deliverBody(first)
        stream.finish(Failure(ResponseDone()))
        second = BodyCollector()
        with self.assertRaises(RuntimeError):
            response.deliverBody(second)
        self.assertEqual(0, second.made)
        self.assertIsNotNone(first.reason)

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


class BodyStreamCycleTests(SynchronousTestCase):
    """
    A body protocol's transport is its stream; once the body ended the stream
    lets go of the protocol, so the pair needs no cyclic garbage collection.
    """

    def setUp(self) -> None:
        enabled = gc.isenabled()
        gc.disable()
        if enabled:
            self.addCleanup(gc.enable)

    def test_protocol_freed_without_collection(self) -> None:
        """After the end, dropping the last references frees the body protocol."""
        response, stream, _ = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        stream.data_received(b"ab")
        stream.finish(Failure(ResponseDone()))
        self.assertEqual(b"ab", body.body)
        self.assertIs(stream, body.transport)
        gone = weakref.ref(body)
        del body, response, stream
        self.assertIsNone(gone())

    def test_protocol_kept_while_body_arrives(self) -> None:
        """Before the end, the stream holds its body protocol (it feeds it)."""
        response, stream, _ = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        gone = weakref.ref(body)
        del body
        self.assertIsNotNone(gone())
        stream.data_received(b"late")
        kept = gone()
        assert isinstance(kept, BodyCollector)
        self.assertEqual(b"late", kept.body)
        stream.finish(Failure(ResponseDone()))
        self.assertIsNotNone(kept.reason)

    def test_protocol_freed_after_held_end(self) -> None:
        """An end held while paused lets go of the protocol once delivered."""
        response, stream, _ = make_response()
        body = BodyCollector()
        response.deliverBody(body)
        stream.pauseProducing()
        stream.finish(Failure(ResponseDone()))
        self.assertIsNone(body.reason)
        stream.resumeProducing()
        self.assertIsNotNone(body.reason)
        gone = weakref.ref(body)
        del body, response, stream
        self.assertIsNone(gone())


def _stock(fields: list[tuple[bytes, bytes]]) -> Headers:
    """What ``addRawHeader`` per field builds."""
    headers = Headers()
    for name, value in fields:
        headers.addRawHeader(name, value)
    return headers


def _layout(headers: Headers) -> list[tuple[bytes, list[bytes]]]:
    """Every stored field, in storage order (equality of Headers ignores it)."""
    return [(name, list(values)) for name, values in headers.getAllRawHeaders()]


_SPELLINGS = st.sampled_from(
    [b"content-type", b"Content-Type", b"CONTENT-TYPE", b"www-authenticate",
     b"te", b"content-md5", b"x-xss-protection", b"set-cookie", b"etag"]
)  # fmt: skip
"""Names ``Headers`` spells in unusual ways, in several cases each."""


class HeadersFromFieldsTests(SynchronousTestCase):
    """`headers_from_fields` builds what ``addRawHeader`` per field builds."""

    def test_fills_directly_on_this_twisted(self) -> None:
        """The installed Twisted keeps fields as the direct fill assumes."""
        self.assertTrue(_response._stores_as_assumed())
        self.assertTrue(_response._FILL_RAW)

    def test_other_layout_detected(self) -> None:
        """A ``Headers`` that stores fields otherwise turns the direct fill off."""

        class Elsewhere(Headers):
            __slots__ = ("_elsewhere",)

            def addRawHeader(self, name: str | bytes, value: str | bytes) -> None:
                """Keep nothing in ``_rawHeaders``."""

        self.patch(_response, "Headers", Elsewhere)
        self.assertFalse(_response._stores_as_assumed())

    @given(
        st.lists(
            st.tuples(st.one_of(strategies.field_names(), _SPELLINGS),
                      strategies.field_values()),
            max_size=8,
        )
    )  # fmt: skip
    def test_same_as_add_raw_header(self, fields: list[tuple[bytes, bytes]]) -> None:
        """Same fields, values, spellings and order as addRawHeader per field."""
        self.assertEqual(_layout(_stock(fields)), _layout(headers_from_fields(fields)))

    def test_same_without_direct_fill(self) -> None:
        """Without the direct fill, the result is the same."""
        fields = [(b"set-cookie", b"a=1"), (b"te", b"x"), (b"Set-Cookie", b"b=2")]
        self.patch(_response, "_FILL_RAW", False)
        self.assertEqual(_layout(_stock(fields)), _layout(headers_from_fields(fields)))

    def test_line_breaks_and_text_take_add_raw_header(self) -> None:
        """Values with CR or LF, and str names or values, are stored as
        addRawHeader stores them (line breaks become spaces)."""
        fields: list[tuple[bytes, bytes]] = [
            (b"X-A", b"one\r\ntwo"),
            (b"X-A", b"three\nfour"),
            ("X-B", "caf\xe9"),  # type: ignore[list-item]  # text, as Headers allows
            (b"X-B", "text value"),  # type: ignore[list-item]  # likewise
        ]
        self.assertEqual(_layout(_stock(fields)), _layout(headers_from_fields(fields)))
        self.assertEqual(
            [b"one two", b"three four"],
            headers_from_fields(fields).getRawHeaders(b"x-a"),
        )

    def test_invalid_name_refused(self) -> None:
        """A name that is not a token is refused as addRawHeader refuses it."""
        with self.assertRaises(InvalidHeaderName):
            headers_from_fields([(b"bad name", b"x")])

    def test_known_names_skip_add_raw_header(self) -> None:
        """Names already seen, with clean byte values, are stored directly."""
        headers_from_fields([(b"X-Known", b"1")])
        calls: list[object] = []
        real = Headers.addRawHeader

        def counting(self: Headers, name: str | bytes, value: str | bytes) -> None:
            calls.append(name)
            real(self, name, value)

        self.patch(Headers, "addRawHeader", counting)
        built = headers_from_fields([(b"X-Known", b"2"), (b"x-known", b"3")])
        self.assertEqual([b"x-known"], calls)  # learning a new spelling only
        self.assertEqual([b"2", b"3"], built.getRawHeaders(b"X-Known"))

    def test_names_remembered_bounded(self) -> None:
        """At most ``_MAX_CANONICAL_NAMES`` spellings are remembered."""
        self.patch(_response, "_canonical_names", {})
        limit = _response._MAX_CANONICAL_NAMES
        built = headers_from_fields([(b"x-%d" % (i,), b"v") for i in range(limit + 5)])
        self.assertLessEqual(len(_response._canonical_names), limit)
        self.assertEqual(limit + 5, len(_layout(built)))
        self.assertEqual([b"v"], built.getRawHeaders(b"X-0"))
