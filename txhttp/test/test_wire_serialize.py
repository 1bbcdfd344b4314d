# -*- test-case-name: txhttp.test.test_wire_serialize -*-
"""Tests for the serializers: heads and chunks, and what they refuse."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import (
    HTTP_1_0,
    LocalProtocolError,
    RequestHead,
    encode_chunk,
    encode_last_chunk,
    serialize_request_head,
    serialize_response_head,
)
from txhttp.test._wire_helpers import run_request_pieces, run_response_pieces


class RequestHeadTests(SynchronousTestCase):
    """`serialize_request_head`."""

    def test_layout(self) -> None:
        """The head is method SP target SP version CRLF fields CRLF."""
        self.assertEqual(
            b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: b c\r\n\r\n",
            serialize_request_head(b"GET", b"/a", [(b"Host", b"x"), (b"X-A", b"b c")]),
        )
        self.assertEqual(
            b"OPTIONS * HTTP/1.0\r\n\r\n",
            serialize_request_head(b"OPTIONS", b"*", [], HTTP_1_0),
        )

    def test_round_trip(self) -> None:
        """What we write, our parser reads back."""
        fields = [(b"Host", b"x"), (b"Content-Length", b"2"), (b"X", b"\xff")]
        data = serialize_request_head(b"POST", b"http://x/y", fields) + b"hi"
        head = run_request_pieces([data])[0]
        assert isinstance(head, RequestHead)
        self.assertEqual(fields, list(head.fields))

    def test_refused_methods_and_targets(self) -> None:
        """Non-token methods and targets with CTL, SP or non-ASCII are refused."""
        for method, target in [
            (b"GE T", b"/"),
            (b"GET\r\n", b"/"),
            (b"", b"/"),
            (b"GET", b""),
            (b"GET", b"/ x"),
            (b"GET", b"/\r\nX: y"),
            (b"GET", b"/\x00"),
            (b"GET", b"/\xc3\xa9"),
            (b"GET", b"*"),
            (b"CONNECT", b"/"),
        ]:
            self.assertRaises(
                LocalProtocolError, serialize_request_head, method, target, []
            )

    def test_refused_version(self) -> None:
        """Only HTTP/1.0 and HTTP/1.1 are written."""
        self.assertRaises(
            LocalProtocolError, serialize_request_head, b"GET", b"/", [], b"HTTP/2"
        )

    def test_refused_fields(self) -> None:
        """Names that are not tokens and values that could inject are refused."""
        for name, value in [
            (b"X Y", b"a"),
            (b"X:", b"a"),
            (b"", b"a"),
            (b"X\r\nY", b"a"),
            (b"X", b"a\r\nY: b"),
            (b"X", b"a\nb"),
            (b"X", b"a\rb"),
            (b"X", b"a\x00"),
            (b"X", b"a\x7f"),
            (b"X", b" a"),
            (b"X", b"a\t"),
        ]:
            self.assertRaises(
                LocalProtocolError,
                serialize_request_head,
                b"GET",
                b"/",
                [(name, value)],
            )

    def test_refused_framing(self) -> None:
        """Inconsistent Content-Length / Transfer-Encoding fields are refused."""
        for fields in [
            [(b"Content-Length", b"1"), (b"Transfer-Encoding", b"chunked")],
            [(b"Content-Length", b"1"), (b"content-length", b"2")],
            [(b"Content-Length", b"-1")],
            [(b"Content-Length", b"1, 1")],
            [(b"Transfer-Encoding", b"gzip")],
            [(b"Transfer-Encoding", b"chunked, gzip")],
            [(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")],
        ]:
            self.assertRaises(
                LocalProtocolError, serialize_request_head, b"POST", b"/", fields
            )

    def test_accepted_framing(self) -> None:
        """Equal Content-Lengths and codings ending in chunked are written."""
        serialize_request_head(
            b"POST", b"/", [(b"Content-Length", b"1"), (b"Content-Length", b"1")]
        )
        data = serialize_request_head(
            b"POST", b"/", [(b"Transfer-Encoding", b"gzip, chunked")]
        )
        self.assertIn(b"gzip, chunked", data)


class ResponseHeadTests(SynchronousTestCase):
    """`serialize_response_head`."""

    def test_layout(self) -> None:
        """The head is version SP status SP reason CRLF fields CRLF."""
        self.assertEqual(
            b"HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n",
            serialize_response_head(404, b"Not Found", [(b"A", b"b")]),
        )
        self.assertEqual(
            b"HTTP/1.1 200 \r\n\r\n", serialize_response_head(200, b"", [])
        )

    def test_round_trip(self) -> None:
        """What we write, our response parser reads back."""
        data = serialize_response_head(200, b"OK", [(b"Content-Length", b"1")]) + b"x"
        self.assertEqual(b"x", run_response_pieces([data])[1])

    def test_refused(self) -> None:
        """Statuses outside 100-999 and reasons with CR/LF/CTL are refused."""
        for status, reason in [
            (99, b"x"),
            (1000, b"x"),
            (True, b"x"),
            (200, b"a\r\nb"),
            (200, b"a\x00"),
            (200, b"a\nX: y"),
        ]:
            self.assertRaises(
                LocalProtocolError, serialize_response_head, status, reason, []
            )
        self.assertRaises(
            LocalProtocolError, serialize_response_head, 200, b"OK", [(b"X", b"a\r\nb")]
        )

    def test_htab_in_reason(self) -> None:
        """HTAB and obs-text are allowed in a reason."""
        self.assertIn(b"a\tb\xff", serialize_response_head(200, b"a\tb\xff", []))


class ChunkTests(SynchronousTestCase):
    """`encode_chunk` and `encode_last_chunk`."""

    def test_chunk(self) -> None:
        """A chunk is hex size CRLF data CRLF; empty data gives nothing."""
        self.assertEqual(b"a\r\n0123456789\r\n", encode_chunk(b"0123456789"))
        self.assertEqual(b"", encode_chunk(b""))

    def test_last_chunk(self) -> None:
        """The last chunk carries trailers and the final CRLF."""
        self.assertEqual(b"0\r\n\r\n", encode_last_chunk())
        self.assertEqual(b"0\r\nA: b\r\n\r\n", encode_last_chunk([(b"A", b"b")]))

    def test_refused_trailers(self) -> None:
        """Invalid or framing trailers are refused."""
        for name, value in [
            (b"A", b"b\r\nc"),
            (b"A B", b"c"),
            (b"Content-Length", b"1"),
            (b"transfer-encoding", b"chunked"),
            (b"Host", b"x"),
        ]:
            self.assertRaises(LocalProtocolError, encode_last_chunk, [(name, value)])
