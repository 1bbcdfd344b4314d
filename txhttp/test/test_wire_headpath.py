# -*- test-case-name: txhttp.test.test_wire_headpath -*-
"""
Tests for the request-head hot path's shortcuts.

The server's hottest code splits a head (`fast_request_head`), decides its
framing (`build_request_head`) and, on an idle connection, takes a whole
request at once (`parse_whole_request`). Each takes a shortcut that must not
change what it returns: the request-line regex admits only the versions
served, a head is made without the dataclass ``__init__``, a lone
Content-Length is framed without `request_framing`, and one whole request is
recognised by its end alone. These tests hold each shortcut to the general
way it replaces.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import (
    DEFAULT_LIMITS,
    HTTP_1_0,
    HTTP_1_1,
    BadFraming,
    BodyKind,
    BodyTooLarge,
    Framing,
    Limits,
    RemoteProtocolError,
    RequestHead,
    RequestParser,
    UnsupportedVersion,
)
from txhttp._wire._framing import build_request_head, request_framing
from txhttp._wire._head import careful_request_head, fast_request_head
from txhttp._wire._parser import RequestState, parse_whole_request
from txhttp.test.strategies import RequestSpec, load_profile, render_request, requests

load_profile()


def _head(line: bytes, *fields: bytes) -> bytes:
    return b"\r\n".join([line, *fields]) + b"\r\n\r\n"


class RequestLineTests(SynchronousTestCase):
    """The fast request line admits only HTTP/1.0 and HTTP/1.1."""

    def test_versions_served_are_shared_constants(self) -> None:
        """Both versions come back as the module's constants, not copies."""
        for version in (HTTP_1_1, HTTP_1_0):
            parts = fast_request_head(
                _head(b"GET / " + version, b"Host: h"), DEFAULT_LIMITS
            )
            assert parts is not None
            self.assertIs(parts[2], version)

    def test_other_versions_go_the_careful_way(self) -> None:
        """Another well-formed version: no fast result; 505 the careful way."""
        for version in (b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/3.1"):
            head = _head(b"GET / " + version, b"Host: h")
            self.assertIsNone(fast_request_head(head, DEFAULT_LIMITS), version)
            self.assertRaises(
                UnsupportedVersion, careful_request_head, head, DEFAULT_LIMITS
            )


class BuiltHeadTests(SynchronousTestCase):
    """`build_request_head` makes the same head as the constructor would."""

    def test_every_attribute_is_set(self) -> None:
        """Each dataclass field of the head is set, to what it decided."""
        head = build_request_head(
            b"POST",
            b"/p",
            HTTP_1_1,
            [(b"Host", b"h"), (b"Content-Length", b"3")],
            DEFAULT_LIMITS,
        )
        values = {f.name: getattr(head, f.name) for f in dataclasses.fields(head)}
        self.assertEqual(RequestHead(**values), head)
        self.assertEqual(
            (b"POST", b"/p", HTTP_1_1, b"h", True, False, 3),
            (
                head.method,
                head.target,
                head.version,
                head.host,
                head.keep_alive,
                head.expect_continue,
                head.framing.length,
            ),
        )

    def test_equal_to_a_constructed_head(self) -> None:
        """Equality and repr are the dataclass's, as for a constructed head."""
        fields = [(b"Host", b"h"), (b"Expect", b"100-continue")]
        built = build_request_head(b"GET", b"/", HTTP_1_1, fields, DEFAULT_LIMITS)
        made = RequestHead(
            b"GET", b"/", HTTP_1_1, fields, built.framing, True, True, b"h"
        )
        self.assertEqual(made, built)
        self.assertEqual(repr(made), repr(built))
        self.assertNotEqual(dataclasses.replace(made, target=b"/x"), built)


CONTENT_LENGTHS = [
    [b"0"],
    [b"12"],
    [b"000012"],
    [b"12", b"12"],
    [b"12, 12"],
    [b"12", b"13"],
    [b"12, 13"],
    [b"1" * 18],
    [b"1" * 19],
    [b"-1"],
    [b"+1"],
    [b"0x10"],
    [b"1 2"],
    [b""],
    [b"12,"],
    [b"\xd9\xa1"],
    [b"2000"],
]
"""Content-Length values, alone or repeated, valid and not."""


class LoneContentLengthTests(SynchronousTestCase):
    """A Content-Length without Transfer-Encoding: `request_framing`'s answer."""

    def framing(self, values: list[bytes], limits: Limits) -> Framing:
        """The framing `build_request_head` decides for these values."""
        fields = [(b"Host", b"h")] + [(b"Content-Length", v) for v in values]
        return build_request_head(b"POST", b"/", HTTP_1_1, fields, limits).framing

    def framing_or_error(self, values: list[bytes], limits: Limits) -> object:
        """`framing`, or the class of the error it raises."""
        try:
            return self.framing(values, limits)
        except RemoteProtocolError as error:
            return type(error)

    def expected(self, values: list[bytes], limits: Limits) -> object:
        """What `request_framing` decides for the same values."""
        try:
            return request_framing(HTTP_1_1, values, [], limits)
        except RemoteProtocolError as error:
            return type(error)

    def test_agrees_with_request_framing(self) -> None:
        """Every listed value is framed or refused as `request_framing` does."""
        limits = Limits(max_body_bytes=1000)
        for values in CONTENT_LENGTHS:
            self.assertEqual(
                self.expected(values, limits),
                self.framing_or_error(values, limits),
                values,
            )

    def test_refusals(self) -> None:
        """Values that differ are bad framing; a length over the limit is 413."""
        limits = Limits(max_body_bytes=1000)
        self.assertIs(BadFraming, self.framing_or_error([b"1", b"2"], limits))
        self.assertIs(BodyTooLarge, self.framing_or_error([b"1001"], limits))
        self.assertEqual(
            Framing(BodyKind.LENGTH, 1000), self.framing([b"1000"], limits)
        )


class WholeRequestTests(SynchronousTestCase):
    """`parse_whole_request` takes one head only when it ends the data."""

    @given(
        spec=requests(),
        tail=st.binary(min_size=1, max_size=40)
        | st.sampled_from([b"\r\n", b"\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"]),
    )
    def test_anything_after_a_head_is_refused(
        self, spec: RequestSpec, tail: bytes
    ) -> None:
        """A head followed by any bytes at all is left to the parser."""
        data = render_request(spec)
        head = data[: data.find(b"\r\n\r\n") + 4]
        self.assertIsNone(parse_whole_request(head + tail, DEFAULT_LIMITS))

    @given(spec=requests())
    def test_a_lone_head_is_the_parsers(self, spec: RequestSpec) -> None:
        """A head alone: the parser's head, or left to it (body, doubt)."""
        data = render_request(spec)
        head = data[: data.find(b"\r\n\r\n") + 4]
        whole = parse_whole_request(head, DEFAULT_LIMITS)
        parser = RequestParser()
        parser.feed(head)
        event = parser.next_event()
        self.assertIsInstance(event, RequestHead)
        if whole is None:
            # A body follows, or the fast path doubts (the careful way took it).
            self.assertTrue(
                parser.state is not RequestState.BODY_DONE
                or fast_request_head(head, DEFAULT_LIMITS) is None,
                head,
            )
        else:
            self.assertEqual(event, whole)
            self.assertIs(parser.state, RequestState.BODY_DONE)

    def test_empty_lines_inside_or_first(self) -> None:
        """An empty line first, or one inside the data, is not one head."""
        get = _head(b"GET / HTTP/1.1", b"Host: h")
        for data in (
            b"\r\n" + get,
            b"\n" + get,
            b"GET / HTTP/1.1\r\n\r\nHost: h\r\n\r\n",
            get[:-2] + b"\r\n\r\n",
            get + get,
            b"\r\n\r\n",
            b"",
        ):
            self.assertIsNone(parse_whole_request(data, DEFAULT_LIMITS), data)
