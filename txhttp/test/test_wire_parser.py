# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
Tests for `txhttp._wire.RequestParser`: request heads, framing and limits.

Every case runs whole, one byte at a time and split at every offset.
"""

from __future__ import annotations

from txhttp._wire import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    BadFraming,
    BadHeaderField,
    BadHost,
    BadStartLine,
    BodyKind,
    BodyTooLarge,
    DuplicateField,
    EndOfMessage,
    Framing,
    HeaderFieldTooLarge,
    HeaderSectionTooLarge,
    IncompleteMessage,
    Limits,
    RemoteProtocolError,
    RequestHead,
    RequestParser,
    StartLineTooLong,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from txhttp._wire._message import NO_BODY
from txhttp._wire._parser import RequestState
from txhttp.test._wire_helpers import WireCase, run_request_pieces

HOST = b"Host: example.com\r\n"


def head_of(data: bytes) -> RequestHead:
    """The first event of parsing ``data`` whole, which must be a head."""
    event = run_request_pieces([data])[0]
    assert isinstance(event, RequestHead)
    return event


class RequestLineTests(WireCase):
    """The request line (RFC 9112, section 3)."""

    def test_simple_get(self) -> None:
        """A GET with Host gives its head, the end, then the clean close."""
        head = RequestHead(
            b"GET",
            b"/a?b=c",
            b"HTTP/1.1",
            [(b"Host", b"x")],
            NO_BODY,
            True,
            False,
            b"x",
        )
        self.assertRequestEvents(
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
            [head, END_OF_MESSAGE, CONNECTION_CLOSED],
        )

    def test_target_forms(self) -> None:
        """origin, absolute, authority (CONNECT) and asterisk (OPTIONS) forms parse."""
        for line in [
            b"GET /x HTTP/1.1",
            b"GET http://a.example/x HTTP/1.1",
            b"CONNECT a.example:443 HTTP/1.1",
            b"OPTIONS * HTTP/1.1",
        ]:
            head = head_of(line + b"\r\n" + HOST + b"\r\n")
            self.assertEqual(line.split(b" ")[1], head.target)

    def test_bad_target_forms(self) -> None:
        """Forms used with the wrong method, or no form at all, get 400."""
        for line in [
            b"GET * HTTP/1.1",
            b"CONNECT /x HTTP/1.1",
            b"CONNECT a.example HTTP/1.1",
            b"GET :80 HTTP/1.1",
            b"GET x HTTP/1.1",
        ]:
            self.assertRequestRejected(
                line + b"\r\n" + HOST + b"\r\n", BadStartLine, 400
            )

    def test_malformed_lines(self) -> None:
        """Extra spaces, bad tokens, CTL or non-ASCII in target get 400."""
        for line in [
            b"GET  / HTTP/1.1",
            b"GET / HTTP/1.1 ",
            b"G(T / HTTP/1.1",
            b"GET /\x7f HTTP/1.1",
            b"GET /\xc3\xa9 HTTP/1.1",
            b"GET /\tx HTTP/1.1",
            b"GET / http/1.1",
            b"GET / HTTP/1.10",
            b"GET / HTTP/1",
            b"GET /",
        ]:
            self.assertRequestRejected(
                line + b"\r\n" + HOST + b"\r\n", BadStartLine, 400
            )

    def test_versions(self) -> None:
        """HTTP/1.0 and 1.1 parse; other well-formed versions get 505."""
        self.assertEqual(b"HTTP/1.0", head_of(b"GET / HTTP/1.0\r\n\r\n").version)
        for version in [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTP/3.1"]:
            self.assertRequestRejected(
                b"GET / " + version + b"\r\n" + HOST + b"\r\n", UnsupportedVersion, 505
            )

    def test_leading_empty_lines(self) -> None:
        """Up to max_leading_empty_lines CRLFs are skipped; one more is 400."""
        limits = Limits(max_leading_empty_lines=2)
        data = b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"
        events = run_request_pieces([b"\r\n\r\n" + data], limits=limits)
        self.assertIsInstance(events[0], RequestHead)
        self.assertRequestEvents(b"\r\n\r\n" + data, events, limits=limits)
        self.assertRequestRejected(
            b"\r\n\r\n\r\n" + data, BadStartLine, 400, limits=limits
        )
        self.assertRequestRejected(b"\n" + data, BadStartLine, 400)

    def test_start_line_too_long(self) -> None:
        """A request line over max_line_bytes gets 414, even unfinished."""
        limits = Limits(max_line_bytes=20)
        self.assertRequestRejected(
            b"GET /" + b"a" * 20 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
            StartLineTooLong,
            414,
            limits=limits,
        )
        self.assertRequestRejected(
            b"GET /" + b"a" * 30, StartLineTooLong, 414, limits=limits, eof=False
        )

    def test_bare_lf_ends_nothing(self) -> None:
        """A request line or field line ending in a bare LF gets 400."""
        self.assertRequestRejected(
            b"GET / HTTP/1.1\n" + HOST + b"\r\n", BadStartLine, 400
        )
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\nHost: x\n\r\n", BadHeaderField, 400
        )

    def test_bare_cr(self) -> None:
        """A bare CR in the request line or a field gets 400."""
        self.assertRequestRejected(
            b"GET /\r HTTP/1.1\r\n" + HOST + b"\r\n", BadStartLine, 400
        )
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + b"A: b\rc\r\n\r\n", BadHeaderField, 400
        )


class FieldTests(WireCase):
    """Header field lines (RFC 9112, section 5; RFC 9110, section 5)."""

    def test_values_trimmed(self) -> None:
        """Values lose surrounding SP/HTAB only; names keep their case."""
        head = head_of(
            b"GET / HTTP/1.1\r\n" + HOST + b"X-A:  \t a b\t \r\nx-b:\r\nX-C:   \r\n\r\n"
        )
        self.assertEqual(
            [(b"Host", b"example.com"), (b"X-A", b"a b"), (b"x-b", b""), (b"X-C", b"")],
            list(head.fields),
        )
        self.assertRequestEvents(
            b"GET / HTTP/1.1\r\n" + HOST + b"X-A:  \t a b\t \r\n\r\n",
            run_request_pieces(
                [b"GET / HTTP/1.1\r\n" + HOST + b"X-A:  \t a b\t \r\n\r\n"]
            ),
        )

    def test_obs_text_allowed(self) -> None:
        """Bytes 0x80-0xFF are allowed in values (obs-text)."""
        head = head_of(b"GET / HTTP/1.1\r\n" + HOST + b"X: caf\xc3\xa9\r\n\r\n")
        self.assertEqual((b"X", b"caf\xc3\xa9"), head.fields[1])

    def test_bad_field_lines(self) -> None:
        """Bad names, whitespace before colon, obs-fold and CTLs get 400."""
        for line in [
            b"X : a",
            b"X\t: a",
            b": a",
            b"X(: a",
            b"no colon",
            b" folded",
            b"X: a\x00b",
            b"X: a\x01",
            b"X: a\x7f",
            b"X: \x0bb",
        ]:
            self.assertRequestRejected(
                b"GET / HTTP/1.1\r\n" + HOST + line + b"\r\n\r\n", BadHeaderField, 400
            )

    def test_obs_fold_rejected(self) -> None:
        """A continuation line (obs-fold) in a request gets 400."""
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + b"X: a\r\n b\r\n\r\n", BadHeaderField, 400
        )

    def test_field_line_too_long(self) -> None:
        """A field line over max_field_line_bytes gets 431, even unfinished."""
        limits = Limits(max_field_line_bytes=30)
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"a" * 28 + b"\r\n\r\n",
            HeaderFieldTooLarge,
            431,
            limits=limits,
        )
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"a" * 40,
            HeaderFieldTooLarge,
            431,
            limits=limits,
            eof=False,
        )

    def test_field_line_at_limit(self) -> None:
        """A field line of exactly max_field_line_bytes is accepted."""
        limits = Limits(max_field_line_bytes=30)
        data = b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"a" * 27 + b"\r\n\r\n"
        self.assertEqual(b"a" * 27, head_of(data).fields[1][1])
        self.assertRequestEvents(
            data, run_request_pieces([data], limits=limits), limits=limits
        )

    def test_section_too_large(self) -> None:
        """A header section over max_header_section_bytes gets 431."""
        limits = Limits(max_header_section_bytes=100)
        fields = b"".join(b"X-%d: aaaaaaaaaa\r\n" % i for i in range(10))
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + fields + b"\r\n",
            HeaderSectionTooLarge,
            431,
            limits=limits,
        )
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + fields,
            HeaderSectionTooLarge,
            431,
            limits=limits,
            eof=False,
        )

    def test_too_many_fields(self) -> None:
        """More than max_header_count field lines gets 431."""
        limits = Limits(max_header_count=3)
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n" + HOST + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
            HeaderSectionTooLarge,
            431,
            limits=limits,
        )
        data = b"GET / HTTP/1.1\r\n" + HOST + b"A: 1\r\nB: 2\r\n\r\n"
        self.assertEqual(3, len(head_of(data).fields))

    def test_first_proven_error_wins(self) -> None:
        """With two rules broken, the error is the same however input is cut."""
        self.assertRequestRejected(
            b"GET /" + b"a" * 40 + b" HTTP/1.1\n" + HOST + b"\r\n",
            StartLineTooLong,
            414,
            limits=Limits(max_line_bytes=40),
        )
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n"
            + HOST
            + b"A: 1\r\nB: 2\r\n"
            + b"C" * 40
            + b": 3\r\n\r\n",
            HeaderSectionTooLarge,
            431,
            limits=Limits(max_header_count=3, max_field_line_bytes=30),
        )

    def test_endless_line_is_cut(self) -> None:
        """An endless line is refused holding at most the limit plus one read."""
        parser = RequestParser(Limits(max_field_line_bytes=1000))
        parser.feed(b"GET / HTTP/1.1\r\nX: ")
        self.assertIsNone(parser.next_event())
        with self.assertRaises(HeaderFieldTooLarge):
            for _ in range(100):
                parser.feed(b"a" * 100)
                self.assertLess(parser.buffered_bytes, 1200)
                parser.next_event()


class HostTests(WireCase):
    """Host (RFC 9112, section 3.2)."""

    def test_missing_host(self) -> None:
        """An HTTP/1.1 request without Host gets 400; HTTP/1.0 is fine."""
        self.assertRequestRejected(b"GET / HTTP/1.1\r\n\r\n", BadHost, 400)
        self.assertIsNone(head_of(b"GET / HTTP/1.0\r\n\r\n").host)

    def test_two_hosts(self) -> None:
        """Two Host fields get 400, even with equal values, in 1.0 and 1.1."""
        for version in [b"1.1", b"1.0"]:
            self.assertRequestRejected(
                b"GET / HTTP/" + version + b"\r\nHost: a\r\nHost: a\r\n\r\n",
                BadHost,
                400,
            )

    def test_invalid_host(self) -> None:
        """A Host value that is no uri-host [":" port] gets 400."""
        for value in [b"a b", b"a/b", b"a@b", b"a:b"]:
            self.assertRequestRejected(
                b"GET / HTTP/1.1\r\nHost: " + value + b"\r\n\r\n", BadHost, 400
            )

    def test_names_any_case(self) -> None:
        """Framing and Host fields are found whatever the case of their names."""
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\nhOsT: a\r\nHOST: a\r\n\r\n", BadHost, 400
        )
        self.assertRequestRejected(
            b"POST / HTTP/1.1\r\nHost: a\r\nCONTENT-LENGTH: 1\r\n"
            b"transfer-encoding: chunked\r\n\r\n",
            BadFraming,
            400,
        )

    def test_valid_hosts(self) -> None:
        """Names, ports, IPv6 literals and the empty value are accepted."""
        for value in [b"a.example", b"a.example:8080", b"[::1]:80", b""]:
            data = b"GET / HTTP/1.1\r\nHost: " + value + b"\r\n\r\n"
            self.assertEqual(value, head_of(data).host)


class SingletonTests(WireCase):
    """Fields that must appear once."""

    def test_content_type_repeated(self) -> None:
        """Two different Content-Type values get 400; equal ones are kept."""
        self.assertRequestRejected(
            b"GET / HTTP/1.1\r\n"
            + HOST
            + b"Content-Type: a/b\r\ncontent-type: c/d\r\n\r\n",
            DuplicateField,
            400,
        )
        data = (
            b"GET / HTTP/1.1\r\n"
            + HOST
            + b"Content-Type: a/b\r\nContent-Type: a/b\r\n\r\n"
        )
        self.assertEqual(3, len(head_of(data).fields))


class FramingTests(WireCase):
    """Request framing (RFC 9112, section 6.3)."""

    def post(self, *lines: bytes, body: bytes = b"") -> bytes:
        """A POST with Host, the given field lines and body."""
        fields = b"".join(line + b"\r\n" for line in lines)
        return b"POST / HTTP/1.1\r\n" + HOST + fields + b"\r\n" + body

    def test_content_length_body(self) -> None:
        """A Content-Length body comes as data then the end."""
        data = self.post(b"Content-Length: 5", body=b"hello")
        events = run_request_pieces([data])
        head = events[0]
        assert isinstance(head, RequestHead)
        self.assertEqual(Framing(BodyKind.LENGTH, 5), head.framing)
        self.assertEqual([b"hello", END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])
        self.assertRequestEvents(data, events)

    def test_zero_length(self) -> None:
        """Content-Length: 0 gives the end right after the head."""
        events = run_request_pieces([self.post(b"Content-Length: 0")])
        self.assertEqual([END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])

    def test_identical_lengths(self) -> None:
        """Repeated identical Content-Length values, as a list or fields, are one."""
        for lines in [
            (b"Content-Length: 3, 3",),
            (b"Content-Length: 3", b"content-length: 3"),
        ]:
            events = run_request_pieces([self.post(*lines, body=b"abc")])
            self.assertEqual(b"abc", events[1])

    def test_bad_lengths(self) -> None:
        """Signs, spaces, hex, differing or too many digits get 400."""
        for value in [
            b"+5",
            b"-5",
            b"0x5",
            b"5 5",
            b"5, 6",
            b"",
            b"5,",
            b"1" * 19,
            b"\xd9\xa5",
        ]:
            self.assertRequestRejected(
                self.post(b"Content-Length: " + value), BadFraming, 400
            )
        self.assertRequestRejected(
            self.post(b"Content-Length: 5", b"Content-Length: 6"), BadFraming, 400
        )

    def test_length_over_limit(self) -> None:
        """Content-Length over max_body_bytes gets 413 at head time."""
        self.assertRequestRejected(
            self.post(b"Content-Length: 11"),
            BodyTooLarge,
            413,
            limits=Limits(max_body_bytes=10),
            eof=False,
        )

    def test_te_and_cl(self) -> None:
        """Transfer-Encoding with Content-Length gets 400."""
        self.assertRequestRejected(
            self.post(b"Content-Length: 5", b"Transfer-Encoding: chunked"),
            BadFraming,
            400,
        )

    def test_te_in_http10(self) -> None:
        """Transfer-Encoding in an HTTP/1.0 request gets 400."""
        self.assertRequestRejected(
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            BadFraming,
            400,
        )

    def test_te_not_chunked_last(self) -> None:
        """chunked missing, repeated, not last, or obfuscated gets 400."""
        for value in [
            b"gzip",
            b"chunked, gzip",
            b"chunked, chunked",
            b"chunked,",
            b", chunked",
            b"chunked;a=b",
            b'"chunked"',
        ]:
            self.assertRequestRejected(
                self.post(b"Transfer-Encoding: " + value), BadFraming, 400
            )
        self.assertRequestRejected(
            self.post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
            BadFraming,
            400,
        )

    def test_unknown_coding(self) -> None:
        """A coding other than chunked before chunked gets 501."""
        for lines in [
            (b"Transfer-Encoding: gzip, chunked",),
            (b"Transfer-Encoding: identity", b"Transfer-Encoding: chunked"),
        ]:
            self.assertRequestRejected(
                self.post(*lines), UnsupportedTransferCoding, 501
            )

    def test_chunked_case_insensitive(self) -> None:
        """Transfer-Encoding names are case-insensitive; OWS is allowed."""
        events = run_request_pieces(
            [self.post(b"Transfer-Encoding:\tChunKed ", body=b"1\r\na\r\n0\r\n\r\n")]
        )
        self.assertEqual([b"a", END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])

    def test_keep_alive(self) -> None:
        """Connection decides persistence per version (RFC 9112, 9.3)."""
        cases = [
            (b"HTTP/1.1", b"", True),
            (b"HTTP/1.1", b"Connection: close\r\n", False),
            (b"HTTP/1.1", b"Connection: foo, Close\r\n", False),
            (b"HTTP/1.0", b"", False),
            (b"HTTP/1.0", b"Connection: keep-alive\r\n", True),
        ]
        for version, line, expected in cases:
            data = b"GET / " + version + b"\r\n" + HOST + line + b"\r\n"
            self.assertEqual(expected, head_of(data).keep_alive, (version, line))

    def test_expect_continue(self) -> None:
        """Expect: 100-continue is reported for HTTP/1.1 only."""
        line = b"Expect: 100-Continue\r\n"
        self.assertTrue(
            head_of(b"GET / HTTP/1.1\r\n" + HOST + line + b"\r\n").expect_continue
        )
        self.assertFalse(
            head_of(b"GET / HTTP/1.0\r\n" + line + b"\r\n").expect_continue
        )


class StreamTests(WireCase):
    """Connection-level behaviour: pipelining, EOF, errors, leftovers."""

    def test_pipelined(self) -> None:
        """Pipelined requests come out in order with their bodies."""
        one = b"GET /1 HTTP/1.1\r\n" + HOST + b"\r\n"
        two = b"POST /2 HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\nhi"
        three = (
            b"POST /3 HTTP/1.1\r\n"
            + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n"
        )
        events = run_request_pieces([one + two + three])
        targets = [e.target for e in events if isinstance(e, RequestHead)]
        self.assertEqual([b"/1", b"/2", b"/3"], targets)
        self.assertEqual([b"hi", b"yo"], [e for e in events if isinstance(e, bytes)])
        self.assertRequestEvents(one + two + three, events)

    def test_pace_is_callers(self) -> None:
        """Bytes of a later request stay buffered until asked for."""
        parser = RequestParser()
        one = b"GET /1 HTTP/1.1\r\n" + HOST + b"\r\n"
        parser.feed(one + one)
        self.assertIsInstance(parser.next_event(), RequestHead)
        self.assertEqual(len(one), parser.buffered_bytes)
        self.assertEqual(END_OF_MESSAGE, parser.next_event())
        self.assertTrue(parser.is_between_messages())
        self.assertEqual(one, parser.take_leftover())
        self.assertEqual(0, parser.buffered_bytes)

    def test_eof_inside_message(self) -> None:
        """EOF inside a head or a body raises IncompleteMessage."""
        for data in [
            b"GET / HTTP/1.1\r\nHo",
            b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nab",
            b"POST / HTTP/1.1\r\n"
            + HOST
            + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab",
        ]:
            self.assertRequestRejected(data, IncompleteMessage, 400)

    def test_error_is_final(self) -> None:
        """After an error the parser raises the same error again."""
        parser = RequestParser()
        parser.feed(b"GET / HTTP/1.1\r\n\r\n")
        error = self.assertRaises(BadHost, parser.next_event)
        parser.feed(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
        self.assertIs(error, self.assertRaises(BadHost, parser.next_event))
        self.assertIs(RequestState.FAILED, parser.state)

    def test_feed_after_eof(self) -> None:
        """feed() after feed_eof() is a ValueError."""
        parser = RequestParser()
        parser.feed_eof()
        self.assertRaises(ValueError, parser.feed, b"x")
        self.assertIs(CONNECTION_CLOSED, parser.next_event())

    def test_errors_are_remote(self) -> None:
        """Every rejection is a RemoteProtocolError."""
        self.assertTrue(issubclass(BadHost, RemoteProtocolError))

    def test_trailers_reach_end_of_message(self) -> None:
        """Trailer fields of a chunked request come in EndOfMessage."""
        data = (
            b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
            b"0\r\nX-Sum: 1\r\n\r\n"
        )
        events = run_request_pieces([data])
        self.assertEqual(EndOfMessage(((b"X-Sum", b"1"),)), events[1])
        self.assertRequestEvents(data, events)


class TransitionTests(WireCase):
    """The state table."""

    def test_every_state_can_fail(self) -> None:
        """ERROR is legal from every state and leads to FAILED."""
        from txhttp._wire._parser import _REQUEST_TRANSITIONS, RequestInput

        for state in RequestState:
            self.assertIs(
                RequestState.FAILED, _REQUEST_TRANSITIONS[state, RequestInput.ERROR]
            )
