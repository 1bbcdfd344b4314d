# -*- test-case-name: txhttp.test.test_wire_chunked -*-
"""
Tests for chunked bodies (RFC 9112, section 7.1) through `RequestParser`.

Every case runs whole, one byte at a time and split at every offset.
"""

from __future__ import annotations

from txhttp._wire import (
    CONNECTION_CLOSED,
    DEFAULT_LIMITS,
    END_OF_MESSAGE,
    BadChunk,
    BadHeaderField,
    BodyTooLarge,
    EndOfMessage,
    HeaderFieldTooLarge,
    HeaderSectionTooLarge,
    Limits,
    RequestHead,
)
from txhttp._wire._chunked import ChunkedDecoder, ChunkState
from txhttp.test._wire_helpers import Event, WireCase, run_request_pieces

HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


class ChunkedBodyTests(WireCase):
    """Valid chunked bodies."""

    def body_events(self, body: bytes, limits: Limits = DEFAULT_LIMITS) -> list[Event]:
        """Events after the head for a chunked request with ``body``."""
        events = run_request_pieces([HEAD + body], limits=limits)
        self.assertIsInstance(events[0], RequestHead)
        self.assertRequestEvents(HEAD + body, events, limits=limits)
        return events[1:]

    def test_chunks(self) -> None:
        """Chunk data is joined in order; hex sizes in either case."""
        events = self.body_events(b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n")
        self.assertEqual([b"abc0123456789", END_OF_MESSAGE, CONNECTION_CLOSED], events)
        events = self.body_events(b"a\r\n0123456789\r\n00\r\n\r\n")
        self.assertEqual(b"0123456789", events[0])

    def test_extensions(self) -> None:
        """Extensions with token or quoted values and BWS are accepted."""
        events = self.body_events(
            b'1;a\r\nx\r\n1 ; b = c\r\ny\r\n1;q="a \\" b";r=s\r\nz\r\n0;end\r\n\r\n'
        )
        self.assertEqual(b"xyz", events[0])

    def test_trailers(self) -> None:
        """Trailer fields come in EndOfMessage, trimmed, in order."""
        events = self.body_events(b"0\r\nA: 1 \r\nb:2\r\n\r\n")
        self.assertEqual(
            [EndOfMessage(((b"A", b"1"), (b"b", b"2"))), CONNECTION_CLOSED], events
        )

    def test_next_request_kept(self) -> None:
        """Bytes after the last chunk are the next request."""
        nxt = b"GET /n HTTP/1.1\r\nHost: a\r\n\r\n"
        events = run_request_pieces([HEAD + b"0\r\n\r\n" + nxt])
        nxt_head = events[2]
        assert isinstance(nxt_head, RequestHead)
        self.assertEqual(b"/n", nxt_head.target)

    def test_limit_at_size_line(self) -> None:
        """A chunk that would pass max_body_bytes is refused at its size line."""
        self.assertRequestRejected(
            HEAD + b"6\r\n",
            BodyTooLarge,
            413,
            limits=Limits(max_body_bytes=5),
            eof=False,
        )
        self.assertRequestRejected(
            HEAD + b"3\r\nabc\r\n3\r\n",
            BodyTooLarge,
            413,
            limits=Limits(max_body_bytes=5),
            eof=False,
        )


class BadChunkTests(WireCase):
    """Malformed chunks are refused with 400."""

    def test_bad_size_lines(self) -> None:
        """Signs, prefixes, spaces, junk and overflowing sizes are BadChunk."""
        for line in [
            b"-1",
            b"+1",
            b"0x1",
            b" 1",
            b"1 ",
            b"g",
            b"",
            b"1;",
            b"1;a=",
            b"1;a b",
            b'1;a="x',
            b"1;a=\x00",
            b"1" * 17,
            b"1;a=b c",
        ]:
            self.assertRequestRejected(
                HEAD + line + b"\r\nx\r\n0\r\n\r\n", BadChunk, 400
            )

    def test_bare_lf_size_line(self) -> None:
        """A size line ending in a bare LF is BadChunk."""
        self.assertRequestRejected(HEAD + b"1\nx\r\n0\r\n\r\n", BadChunk, 400)

    def test_data_not_followed_by_crlf(self) -> None:
        """Anything but CRLF right after the data is BadChunk."""
        for after in [b"x\r\n", b"\n", b"\rx", b"\n\r"]:
            self.assertRequestRejected(
                HEAD + b"1\r\na" + after + b"0\r\n\r\n", BadChunk, 400
            )

    def test_size_line_too_long(self) -> None:
        """A size line over max_chunk_line_bytes is refused, even unfinished."""
        limits = Limits(max_chunk_line_bytes=10)
        self.assertRequestRejected(
            HEAD + b"1;aaaaaaaaaa\r\nx\r\n0\r\n\r\n", BadChunk, 400, limits=limits
        )
        self.assertRequestRejected(
            HEAD + b"1;aaaaaaaaaaaaa", BadChunk, 400, limits=limits, eof=False
        )

    def test_bad_trailers(self) -> None:
        """Malformed trailers and framing trailers are BadHeaderField."""
        for line in [
            b"X : a",
            b" X: a",
            b"X: a\x00",
            b"no colon",
            b"Content-Length: 5",
            b"Transfer-Encoding: chunked",
            b"host: a",
            b"Trailer: x",
        ]:
            self.assertRequestRejected(
                HEAD + b"0\r\n" + line + b"\r\n\r\n", BadHeaderField, 400
            )
        self.assertRequestRejected(HEAD + b"0\r\nX: a\n\r\n", BadHeaderField, 400)

    def test_trailer_limits(self) -> None:
        """Trailer lines, section and count are bounded (431)."""
        self.assertRequestRejected(
            HEAD + b"0\r\nX: " + b"a" * 20 + b"\r\n\r\n",
            HeaderFieldTooLarge,
            431,
            limits=Limits(max_field_line_bytes=10),
        )
        self.assertRequestRejected(
            HEAD + b"0\r\n" + b"X: aaaa\r\n" * 5 + b"\r\n",
            HeaderSectionTooLarge,
            431,
            limits=Limits(max_trailer_section_bytes=30),
        )
        self.assertRequestRejected(
            HEAD + b"0\r\n" + b"X: a\r\n" * 5 + b"\r\n",
            HeaderSectionTooLarge,
            431,
            limits=Limits(max_header_count=4),
        )


class DecoderTests(WireCase):
    """`ChunkedDecoder` on its own."""

    def test_consumes_only_its_bytes(self) -> None:
        """The decoder leaves bytes after the body in the buffer."""
        decoder = ChunkedDecoder(Limits())
        buf = bytearray(b"2\r\nab\r\n0\r\n\r\nNEXT")
        self.assertEqual(b"ab", decoder.step(buf))
        self.assertIs(END_OF_MESSAGE, decoder.step(buf))
        self.assertEqual(bytearray(b"NEXT"), buf)
        self.assertIs(ChunkState.DONE, decoder.state)
        self.assertRaises(RuntimeError, decoder.step, buf)
