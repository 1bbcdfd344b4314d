# -*- test-case-name: txhttp.test.test_wire_serialize -*-
"""Tests for the serializers: heads and chunks, and what they refuse."""

from __future__ import annotations

from typing import cast

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
from txhttp._wire._serialize import (
    ACCEPTED_NAMES,
    ACCEPTED_STATUS_LINES,
    ACCEPTED_VALUES,
    MAX_ACCEPTED_MEMO_ENTRIES,
    MAX_ACCEPTED_VALUE_BYTES,
    accepted_status_line,
    is_accepted_field,
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


class AcceptedMemoTests(SynchronousTestCase):
    """The bounded memo of pieces the serializers accepted."""

    def test_accepted_pieces_remembered(self) -> None:
        """Names, values and HTTP/1.1 status lines that passed are remembered."""
        self.assertFalse(is_accepted_field(b"X-Memo-A", b"memo value a"))
        self.assertIsNone(accepted_status_line(299, b"Memo A"))
        head = serialize_response_head(299, b"Memo A", [(b"X-Memo-A", b"memo value a")])
        self.assertTrue(is_accepted_field(b"X-Memo-A", b"memo value a"))
        self.assertIn(b"X-Memo-A", ACCEPTED_NAMES)
        self.assertIn(b"memo value a", ACCEPTED_VALUES)
        line = accepted_status_line(299, b"Memo A")
        self.assertEqual(line, b"HTTP/1.1 299 Memo A\r\n")
        assert line is not None
        self.assertTrue(head.startswith(line))

    def test_request_fields_remembered(self) -> None:
        """Request heads add their fields too (for the client's use)."""
        serialize_request_head(b"GET", b"/", [(b"X-Memo-R", b"memo r")])
        self.assertTrue(is_accepted_field(b"X-Memo-R", b"memo r"))

    def test_refused_pieces_not_remembered(self) -> None:
        """Nothing from a refused field is remembered."""
        for name, value in [(b"X-Memo-B", b"b\r\nX: y"), (b"X Memo", b"memo b")]:
            self.assertRaises(
                LocalProtocolError, serialize_response_head, 200, b"OK", [(name, value)]
            )
            self.assertFalse(is_accepted_field(name, value))
        self.assertNotIn(b"b\r\nX: y", ACCEPTED_VALUES)
        self.assertNotIn(b"X Memo", ACCEPTED_NAMES)

    def test_http10_status_lines_not_remembered(self) -> None:
        """Only HTTP/1.1 status lines are kept (the only ones joined by hand)."""
        serialize_response_head(298, b"Memo C", [], HTTP_1_0)
        self.assertIsNone(accepted_status_line(298, b"Memo C"))

    def test_mutable_and_long_values_not_remembered(self) -> None:
        """Bytearrays and values over the size bound are checked every time."""
        long_value = b"v" * (MAX_ACCEPTED_VALUE_BYTES + 1)
        # Callers may pass any bytes-like value; a bytearray on purpose.
        mutable = cast(bytes, bytearray(b"memo d"))
        serialize_response_head(
            200,
            b"OK",
            [(b"X-Memo-D", mutable), (b"X-Memo-E", long_value)],
        )
        self.assertFalse(is_accepted_field(b"X-Memo-D", b"memo d"))
        self.assertFalse(is_accepted_field(b"X-Memo-D", mutable))
        self.assertFalse(is_accepted_field(b"X-Memo-E", long_value))
        self.assertIsNone(accepted_status_line(200, cast(bytes, bytearray(b"OK"))))

    def test_bounded(self) -> None:
        """Each memo holds at most MAX_ACCEPTED_MEMO_ENTRIES and keeps working."""
        for i in range(MAX_ACCEPTED_MEMO_ENTRIES + 10):
            serialize_response_head(
                200 + i % 700, b"R%d" % i, [(b"X-Bound-%d" % i, b"bound %d" % i)]
            )
            self.assertLessEqual(len(ACCEPTED_NAMES), MAX_ACCEPTED_MEMO_ENTRIES)
            self.assertLessEqual(len(ACCEPTED_VALUES), MAX_ACCEPTED_MEMO_ENTRIES)
            self.assertLessEqual(len(ACCEPTED_STATUS_LINES), MAX_ACCEPTED_MEMO_ENTRIES)
        last = MAX_ACCEPTED_MEMO_ENTRIES + 9
        self.assertTrue(is_accepted_field(b"X-Bound-%d" % last, b"bound %d" % last))
        self.assertIsNotNone(accepted_status_line(200 + last % 700, b"R%d" % last))
