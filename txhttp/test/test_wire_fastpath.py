# -*- test-case-name: txhttp.test.test_wire_fastpath -*-
"""
Tests that the wire core's fast paths agree with its careful paths.

`fast_request_head` and `fast_response_head` split a whole head with one
regex per kind of line and return ``None`` on any doubt; the careful
splitters (`careful_request_head`, `careful_response_head`) check one rule at
a time. Whatever the fast splitters accept, the careful ones must accept with
the same result, on valid, mutated and random heads, read from offset 0 or
in place inside a larger buffer. The parsers read received ``bytes`` in place
(a receive that is all body data is handed out as the same object) and copy
anything else into a buffer: both ways must give the same events and errors.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import (
    DEFAULT_LIMITS,
    END_OF_MESSAGE,
    EndOfMessage,
    Limits,
    RemoteProtocolError,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
)
from txhttp._wire._chunked import ChunkedDecoder, ChunkState
from txhttp._wire._head import (
    careful_request_head,
    careful_response_head,
    fast_request_head,
    fast_response_head,
)
from txhttp.test.strategies import (
    SMALL_LIMITS,
    load_profile,
    mutated,
    render_request,
    render_response,
    requests,
    responses,
    run_requests,
    split_at,
)

load_profile()

HEAD_BYTES = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Y:  z \r\n\t:;@\x00\x7f\x80\xff \n\r"
"""Bytes that random heads are drawn from: the ones the grammar cares about."""

LIMITS = st.sampled_from([DEFAULT_LIMITS, SMALL_LIMITS])


def first_head(data: bytes) -> bytes | None:
    """``data`` up to its first CRLF CRLF included, or ``None``."""
    end = data.find(b"\r\n\r\n")
    return None if end < 0 else data[: end + 4]


def careful_request(head: bytes, limits: Limits) -> object:
    """`careful_request_head`'s result, or the class of the error it raises."""
    try:
        return careful_request_head(head, limits)
    except RemoteProtocolError as error:
        return type(error)


def careful_response(head: bytes) -> object:
    """`careful_response_head`'s result, or the class of the error it raises."""
    try:
        return careful_response_head(head)
    except RemoteProtocolError as error:
        return type(error)


def random_heads() -> st.SearchStrategy[bytes]:
    """Bytes that often hold a whole head, valid or nearly so."""
    return st.one_of(
        st.lists(st.sampled_from(sorted(HEAD_BYTES)), max_size=80).map(bytes),
        st.lists(
            st.sampled_from(
                [b"GET / HTTP/1.1\r\n", b"Host: a\r\n", b"A: b\r\n", b"\r\n", b" c"]
            ),
            max_size=6,
        ).map(b"".join),
    )


def request_heads() -> st.SearchStrategy[bytes]:
    """Valid request bytes, mutated ones, and random ones."""
    valid = requests().map(render_request)
    return st.one_of(valid, mutated(valid), random_heads())


def response_heads() -> st.SearchStrategy[bytes]:
    """Valid response bytes, mutated ones, and random ones."""
    valid = responses().map(render_response)
    return st.one_of(valid, mutated(valid), random_heads())


FastSplit = Callable[[bytes | bytearray, Limits, int, int], object]
"""`fast_request_head` or `fast_response_head`."""


class HeadAgreementCase(SynchronousTestCase):
    """Checks shared by the request and response agreement tests."""

    def assert_in_place(
        self, fast: FastSplit, data: bytes, prefix: bytes, suffix: bytes
    ) -> None:
        """Read in place inside a larger buffer, a head splits as on its own."""
        head = first_head(data)
        if head is None:
            return
        start = len(prefix)
        end = start + len(head)
        alone = fast(head, DEFAULT_LIMITS, 0, len(head))
        for buffer in (prefix + head + suffix, bytearray(prefix + head + suffix)):
            self.assertEqual(fast(buffer, DEFAULT_LIMITS, start, end), alone)

    def assert_agree(
        self,
        data: bytes,
        fast: Callable[[bytes], object | None],
        careful: Callable[[bytes], object],
    ) -> None:
        """If ``fast`` splits the first head of ``data``, ``careful`` agrees."""
        head = first_head(data)
        if head is None:
            return
        result = fast(head)
        if result is not None:
            self.assertEqual(careful(head), result)

    def assert_fast(self, fast: FastSplit, data: bytes) -> None:
        """The first head of ``data`` (valid) takes the fast path."""
        # Rendered empty values end in ": ", which the fast path leaves to
        # the careful one; without the SP they are plain valid heads.
        head = first_head(data.replace(b": \r\n", b":\r\n"))
        assert head is not None
        self.assertIsNotNone(fast(head, DEFAULT_LIMITS, 0, len(head)))


class RequestHeadAgreementTests(HeadAgreementCase):
    """`fast_request_head` accepts only what `careful_request_head` accepts."""

    @given(data=request_heads(), limits=LIMITS)
    @example(data=b"GET / HTTP/1.1\r\nA: b \r\n\r\n", limits=DEFAULT_LIMITS)
    @example(data=b"GET / HTTP/1.1\r\n@@A: b\r\n\r\n", limits=DEFAULT_LIMITS)
    @example(data=b"GET / HTTP/1.1\r\nA:\tb\t\r\n\r\n", limits=DEFAULT_LIMITS)
    @example(data=b"GET / HTTP/2.0\r\n\r\n", limits=DEFAULT_LIMITS)
    def test_same_result(self, data: bytes, limits: Limits) -> None:
        """A head the fast splitter accepts splits the same the careful way."""
        self.assert_agree(
            data,
            lambda head: fast_request_head(head, limits),
            lambda head: careful_request(head, limits),
        )

    @given(data=request_heads(), prefix=st.binary(max_size=8), suffix=st.binary())
    def test_in_place(self, data: bytes, prefix: bytes, suffix: bytes) -> None:
        """Read in place inside a larger buffer, a head splits as on its own."""
        self.assert_in_place(fast_request_head, data, prefix, suffix)

    @given(data=requests().map(render_request))
    def test_valid_heads_are_fast(self, data: bytes) -> None:
        """Every generated valid request head takes the fast path."""
        self.assert_fast(fast_request_head, data)


class ResponseHeadAgreementTests(HeadAgreementCase):
    """`fast_response_head` accepts only what `careful_response_head` accepts."""

    @given(data=response_heads(), limits=LIMITS)
    @example(data=b"HTTP/1.1 200 OK\r\nA: b \r\n\r\n", limits=DEFAULT_LIMITS)
    @example(data=b"HTTP/1.1 099 OK\r\n\r\n", limits=DEFAULT_LIMITS)
    @example(data=b"HTTP/1.1 200\r\n\r\n", limits=DEFAULT_LIMITS)
    def test_same_result(self, data: bytes, limits: Limits) -> None:
        """A head the fast splitter accepts splits the same the careful way."""
        self.assert_agree(
            data, lambda head: fast_response_head(head, limits), careful_response
        )

    @given(data=response_heads(), prefix=st.binary(max_size=8), suffix=st.binary())
    def test_in_place(self, data: bytes, prefix: bytes, suffix: bytes) -> None:
        """Read in place inside a larger buffer, a head splits as on its own."""
        self.assert_in_place(fast_response_head, data, prefix, suffix)

    @given(data=responses().map(render_response))
    def test_valid_heads_are_fast(self, data: bytes) -> None:
        """Every generated valid response head takes the fast path."""
        self.assert_fast(fast_response_head, data)


class InPlaceAgreementTests(SynchronousTestCase):
    """Bytes read in place and bytes copied to the buffer parse the same."""

    @given(data=request_heads(), cuts=st.lists(st.integers(0, 4096), max_size=6))
    def test_bytes_or_bytearray(self, data: bytes, cuts: list[int]) -> None:
        """Received ``bytes`` (kept) and ``bytearray`` (copied) agree."""
        pieces = split_at(data, cuts)
        kept = run_requests(pieces)
        copied = [bytearray(piece) for piece in pieces]
        # Callers hand bytes; a bytearray must still work (and be copied).
        self.assertEqual(run_requests(copied), kept)  # type: ignore[arg-type]

    @given(
        data=request_heads(),
        cuts=st.lists(st.integers(0, 4096), max_size=6),
        limits=LIMITS,
    )
    def test_fast_or_careful(
        self, data: bytes, cuts: list[int], limits: Limits
    ) -> None:
        """Whole (fast path) and one byte at a time (careful path) agree."""
        whole = run_requests([data], limits=limits)
        bytewise = run_requests(
            [data[i : i + 1] for i in range(len(data))], limits=limits
        )
        self.assertEqual(bytewise, whole)
        self.assertEqual(run_requests(split_at(data, cuts), limits=limits), whole)


POST = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"


def events(parser: RequestParser | ResponseParser) -> list[object]:
    """Every event ready now."""
    out: list[object] = []
    while (event := parser.next_event()) is not None:
        out.append(event)
    return out


class HeldBytesTests(SynchronousTestCase):
    """Received ``bytes`` are used in place, never copied when all body."""

    def test_length_body_same_object(self) -> None:
        """A receive that is all Content-Length body is the event itself."""
        parser = RequestParser()
        parser.feed(POST % 10)
        self.assertIsInstance(parser.next_event(), RequestHead)
        piece = b"0123456789"
        parser.feed(piece)
        self.assertIs(piece, parser.next_event())
        self.assertIs(END_OF_MESSAGE, parser.next_event())

    def test_length_body_then_next_request(self) -> None:
        """Body and the next head in one receive: a slice, then the head."""
        parser = RequestParser()
        parser.feed(POST % 3 + b"abcGET / HTTP/1.1\r\nHost: b\r\n\r\n")
        found = events(parser)
        self.assertEqual(b"abc", found[1])
        self.assertIs(END_OF_MESSAGE, found[2])
        head = found[3]
        assert isinstance(head, RequestHead)
        self.assertEqual(b"b", head.host)
        self.assertEqual(0, parser.buffered_bytes)

    def test_chunk_data_same_object(self) -> None:
        """A receive that is all chunk data is the event itself."""
        parser = RequestParser()
        parser.feed(CHUNKED + b"a\r\n")
        self.assertIsInstance(parser.next_event(), RequestHead)
        self.assertIsNone(parser.next_event())
        piece = b"01234"
        parser.feed(piece)
        self.assertIs(piece, parser.next_event())
        parser.feed(b"56789\r\n0\r\n\r\n")
        self.assertEqual([b"56789", END_OF_MESSAGE], events(parser))

    def test_until_close_same_object(self) -> None:
        """A receive of a body read until close is the event itself."""
        parser = ResponseParser()
        parser.expect_response(b"GET")
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertIsInstance(parser.next_event(), ResponseHead)
        piece = b"data"
        parser.feed(piece)
        self.assertIs(piece, parser.next_event())
        parser.feed_eof()
        self.assertIs(END_OF_MESSAGE, parser.next_event())

    def test_response_length_same_object(self) -> None:
        """Response Content-Length bodies are handed out uncopied too."""
        parser = ResponseParser()
        parser.expect_response(b"GET")
        parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
        self.assertIsInstance(parser.next_event(), ResponseHead)
        first, second = b"abcd", b"efgh"
        parser.feed(first)
        self.assertIs(first, parser.next_event())
        parser.feed(second)
        self.assertIs(second, parser.next_event())
        self.assertIs(END_OF_MESSAGE, parser.next_event())

    def test_bytearray_is_copied(self) -> None:
        """A mutable receive is copied: changing it later changes nothing."""
        parser = RequestParser()
        parser.feed(POST % 4)
        parser.next_event()
        piece = bytearray(b"abcd")
        parser.feed(piece)  # type: ignore[arg-type]  # a mutable receive, on purpose
        piece[:] = b"wxyz"
        self.assertEqual(b"abcd", parser.next_event())

    def test_buffered_and_leftover(self) -> None:
        """Held bytes count as buffered and come back from take_leftover."""
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest")
        self.assertEqual(31, parser.buffered_bytes)
        self.assertIsInstance(parser.next_event(), RequestHead)
        self.assertEqual(4, parser.buffered_bytes)
        self.assertEqual(b"rest", parser.take_leftover())
        self.assertEqual(0, parser.buffered_bytes)

    def test_feed_while_held(self) -> None:
        """A second receive joins the unused part of the first, in order."""
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HT")
        self.assertIsInstance(parser.next_event(), RequestHead)
        parser.feed(b"TP/1.1\r\nHost: a\r\n\r\n")
        found = events(parser)
        head = found[1]
        assert isinstance(head, RequestHead)
        self.assertEqual(b"/2", head.target)

    def test_empty_lines_before_heads(self) -> None:
        """Empty lines before a head held in place are dropped, then it parses."""
        requests = RequestParser()
        requests.feed(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        head = requests.next_event()
        assert isinstance(head, RequestHead)
        self.assertEqual(b"/a", head.target)
        responses = ResponseParser()
        responses.expect_response(b"GET")
        responses.feed(b"\r\n\nHTTP/1.1 204 No Content\r\n\r\n")
        response = responses.next_event()
        assert isinstance(response, ResponseHead)
        self.assertEqual(204, response.status)
        self.assertIs(END_OF_MESSAGE, responses.next_event())

    def test_error_drops_held(self) -> None:
        """After an error nothing received is held any more."""
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\n")
        parser.next_event()
        parser.next_event()
        self.assertRaises(RemoteProtocolError, parser.next_event)
        self.assertEqual(0, parser.buffered_bytes)


class StepFromTests(SynchronousTestCase):
    """`ChunkedDecoder.step_from` reads in place, as `step` reads a buffer."""

    def test_offsets(self) -> None:
        """Each event comes with the offset after the bytes it used."""
        decoder = ChunkedDecoder(Limits())
        data = b"xx3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT"
        self.assertEqual((b"abc", 8), decoder.step_from(data, 2))
        self.assertEqual((b"de", 15), decoder.step_from(data, 8))
        self.assertEqual((END_OF_MESSAGE, 22), decoder.step_from(data, 15))
        self.assertIs(ChunkState.DONE, decoder.state)

    def test_whole_data_same_object(self) -> None:
        """All chunk data from offset 0 comes back as the very object."""
        decoder = ChunkedDecoder(Limits())
        self.assertEqual((None, 3), decoder.step_from(b"9\r\n", 0))
        data = b"123456789"
        event, used = decoder.step_from(data, 0)
        self.assertIs(data, event)
        self.assertEqual(9, used)

    def test_incomplete_then_step(self) -> None:
        """Where step_from stops, step on the rest resumes exactly."""
        decoder = ChunkedDecoder(Limits())
        data = b"3\r\nabc\r\n1"
        self.assertEqual((b"abc", 6), decoder.step_from(data, 0))
        event, used = decoder.step_from(data, 6)
        self.assertEqual((None, 8), (event, used))
        buf = bytearray(data[used:]) + b"\r\nz\r\n0\r\nA: b\r\n\r\n"
        self.assertEqual(b"z", decoder.step(buf))
        self.assertEqual(EndOfMessage(((b"A", b"b"),)), decoder.step(buf))
        self.assertEqual(bytearray(), buf)

    def test_trailers_left_to_step(self) -> None:
        """A non-empty trailer section is left to `step` and its scanner."""
        decoder = ChunkedDecoder(Limits())
        data = b"0\r\nA: b\r\n\r\n"
        event, used = decoder.step_from(data, 0)
        self.assertEqual((None, 3), (event, used))
        self.assertIs(ChunkState.TRAILERS, decoder.state)
        buf = bytearray(data[used:])
        self.assertEqual(EndOfMessage(((b"A", b"b"),)), decoder.step(buf))
