# -*- test-case-name: txhttp.test.test_wire_response -*-
"""
Tests for `txhttp._wire.ResponseParser`: status lines, framing, leniency.

Every case runs whole, one byte at a time and split at every offset.
"""

from __future__ import annotations

from collections.abc import Sequence

from txhttp._wire import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    BadFraming,
    BadHeaderField,
    BadStartLine,
    BodyKind,
    BodyTooLarge,
    EndOfMessage,
    IncompleteMessage,
    Limits,
    ResponseHead,
    ResponseParser,
    UnsupportedVersion,
)
from txhttp.test._wire_helpers import WireCase, run_response_pieces


def heads(events: Sequence[object]) -> list[ResponseHead]:
    """The response heads among ``events``."""
    return [e for e in events if isinstance(e, ResponseHead)]


class StatusLineTests(WireCase):
    """The status line (RFC 9112, section 4)."""

    def test_simple(self) -> None:
        """Version, status and reason are reported; the body follows."""
        data = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        events = run_response_pieces([data])
        head = heads(events)[0]
        self.assertEqual(
            (b"HTTP/1.1", 200, b"OK"), (head.version, head.status, head.reason)
        )
        self.assertEqual([b"hi", END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])
        self.assertResponseEvents(data, events)

    def test_missing_reason(self) -> None:
        """An empty reason, with or without its SP, is accepted."""
        for line in [b"HTTP/1.1 204 ", b"HTTP/1.1 204"]:
            head = heads(run_response_pieces([line + b"\r\n\r\n"]))[0]
            self.assertEqual((204, b""), (head.status, head.reason))

    def test_bad_status_lines(self) -> None:
        """Malformed status lines get BadStartLine."""
        for line in [
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 099 Low",
            b"HTTP/1.1 abc OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1 200 O\x00K",
            b"HTTP/1.1 200 O\rK",
            b"http/1.1 200 OK",
            b"ICY 200 OK",
        ]:
            self.assertResponseRejected(line + b"\r\n\r\n", BadStartLine)

    def test_other_versions(self) -> None:
        """A well-formed version other than 1.0 and 1.1 is UnsupportedVersion."""
        self.assertResponseRejected(b"HTTP/2.0 200 OK\r\n\r\n", UnsupportedVersion, 505)


class LeniencyTests(WireCase):
    """Where a client may be lenient (RFC 9112, sections 2.2 and 5.2)."""

    def test_bare_lf(self) -> None:
        """Bare LF line endings in the head are accepted."""
        data = b"HTTP/1.1 200 OK\nContent-Length: 1\nX: y\n\nz"
        events = run_response_pieces([data])
        self.assertEqual(
            [(b"Content-Length", b"1"), (b"X", b"y")], list(heads(events)[0].fields)
        )
        self.assertResponseEvents(data, events)

    def test_obs_fold_unfolded(self) -> None:
        """obs-fold in a response is replaced by one SP."""
        data = b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\tc\r\nContent-Length: 0\r\n\r\n"
        events = run_response_pieces([data])
        self.assertEqual((b"X", b"a b c"), heads(events)[0].fields[0])
        self.assertResponseEvents(data, events)

    def test_still_strict(self) -> None:
        """Control characters, bare CR and bad names are still refused."""
        for line in [b"X: a\x00", b"X: a\rb", b"X : a", b" X: a", b"X\x01: a"]:
            self.assertResponseRejected(
                b"HTTP/1.1 200 OK\r\n" + line + b"\r\n\r\n", BadHeaderField
            )


class ResponseFramingTests(WireCase):
    """Response framing (RFC 9112, section 6.3)."""

    def test_no_body_statuses(self) -> None:
        """204 and 304 have no body whatever Content-Length says."""
        for status in [b"204", b"304"]:
            data = b"HTTP/1.1 " + status + b" X\r\nContent-Length: 5\r\n\r\n"
            events = run_response_pieces([data])
            self.assertIs(BodyKind.NONE, heads(events)[0].framing.kind)
            self.assertEqual([END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])

    def test_head_response(self) -> None:
        """A response to HEAD has no body."""
        data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        events = run_response_pieces([data], methods=[b"HEAD"])
        self.assertEqual([END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])

    def test_interim_then_final(self) -> None:
        """1xx heads come first, without body events, then the final head."""
        data = (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
        )
        events = run_response_pieces([data])
        self.assertEqual([100, 103, 200], [h.status for h in heads(events)])
        self.assertEqual([b"x", END_OF_MESSAGE, CONNECTION_CLOSED], events[3:])
        self.assertResponseEvents(data, events)

    def test_tunnels(self) -> None:
        """101 and 2xx to CONNECT are tunnels; their bytes stay as leftover."""
        for method, line in [
            (b"GET", b"HTTP/1.1 101 Switching"),
            (b"CONNECT", b"HTTP/1.1 200 OK"),
        ]:
            parser = ResponseParser()
            parser.expect_response(method)
            parser.feed(line + b"\r\nContent-Length: 3\r\n\r\nraw bytes")
            head = parser.next_event()
            assert isinstance(head, ResponseHead)
            self.assertIs(BodyKind.TUNNEL, head.framing.kind)
            self.assertIsNone(parser.next_event())
            self.assertEqual(b"raw bytes", parser.take_leftover())

    def test_until_close(self) -> None:
        """Without framing fields the body runs until the close, then ends."""
        data = b"HTTP/1.1 200 OK\r\n\r\nsome body"
        events = run_response_pieces([data])
        self.assertIs(BodyKind.UNTIL_CLOSE, heads(events)[0].framing.kind)
        self.assertFalse(heads(events)[0].keep_alive)
        self.assertEqual([b"some body", END_OF_MESSAGE, CONNECTION_CLOSED], events[1:])
        self.assertResponseEvents(data, events)

    def test_te_not_chunked_is_until_close(self) -> None:
        """Transfer-Encoding not ending in chunked reads until close (rule 4)."""
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz"
        events = run_response_pieces([data])
        self.assertIs(BodyKind.UNTIL_CLOSE, heads(events)[0].framing.kind)
        self.assertEqual(b"zz", events[1])

    def test_chunked(self) -> None:
        """A chunked response gives its data and trailers."""
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\nT: v\r\n\r\n"
        )
        events = run_response_pieces([data])
        self.assertEqual(
            [b"abc", EndOfMessage(((b"T", b"v"),)), CONNECTION_CLOSED], events[1:]
        )
        self.assertResponseEvents(data, events)

    def test_ambiguous_framing(self) -> None:
        """TE with CL, TE in HTTP/1.0, bad or differing lengths are BadFraming."""
        for fields in [
            b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            b"Content-Length: 3\r\nContent-Length: 4\r\n",
            b"Content-Length: -3\r\n",
            b"Transfer-Encoding: chunked, chunked\r\n",
        ]:
            self.assertResponseRejected(
                b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n", BadFraming
            )
        self.assertResponseRejected(
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", BadFraming
        )

    def test_truncated_length_body(self) -> None:
        """A Content-Length body cut by the close is IncompleteMessage."""
        self.assertResponseRejected(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", IncompleteMessage
        )

    def test_close_before_head(self) -> None:
        """A close before any head is IncompleteMessage."""
        self.assertResponseRejected(b"HTTP/1.1 200", IncompleteMessage)

    def test_until_close_limit(self) -> None:
        """A body read until close is bounded by max_body_bytes."""
        self.assertResponseRejected(
            b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 11,
            BodyTooLarge,
            413,
            limits=Limits(max_body_bytes=10),
        )

    def test_keep_alive(self) -> None:
        """HTTP/1.1 persists unless Connection: close; 1.0 needs keep-alive."""
        for line, expected in [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                False,
            ),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                b"Content-Length: 0\r\n\r\n",
                True,
            ),
        ]:
            self.assertEqual(expected, heads(run_response_pieces([line]))[0].keep_alive)

    def test_two_responses(self) -> None:
        """Bytes after one response are kept for the next one."""
        one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
        two = b"HTTP/1.1 404 No\r\nContent-Length: 1\r\n\r\nb"
        events = run_response_pieces([one + two], methods=[b"GET", b"GET"])
        self.assertEqual([200, 404], [h.status for h in heads(events)])
        self.assertResponseEvents(one + two, events, methods=[b"GET", b"GET"])


class ParserStateTests(WireCase):
    """expect_response and idleness."""

    def test_expect_twice(self) -> None:
        """expect_response while a response is expected is a ValueError."""
        parser = ResponseParser()
        parser.expect_response(b"GET")
        self.assertFalse(parser.is_between_messages())
        self.assertRaises(ValueError, parser.expect_response, b"GET")

    def test_idle_bytes_held(self) -> None:
        """Bytes that arrive while idle are held, not parsed."""
        parser = ResponseParser()
        parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        self.assertIsNone(parser.next_event())
        self.assertEqual(19, parser.buffered_bytes)
        self.assertTrue(parser.is_between_messages())
