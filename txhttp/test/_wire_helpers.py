# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
Helpers for the wire-core unit tests: feed pieces, collect events.

Every wire-core case runs whole, one byte at a time and split at every
offset (`pieces_variants`); `run_request_pieces` and `run_response_pieces`
gather the events with adjacent body data joined, so results compare equal
however the input was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import (
    CONNECTION_CLOSED,
    DEFAULT_LIMITS,
    Limits,
    RemoteProtocolError,
    RequestEvent,
    RequestParser,
    ResponseEvent,
    ResponseParser,
)

Event = RequestEvent | ResponseEvent
MAX_EVERY_OFFSET = 600
"""Inputs up to this size are also split at every offset (two pieces)."""


def pieces_variants(data: bytes) -> Iterator[list[bytes]]:
    """Yield ``data`` whole, one byte at a time, and cut at each offset."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    if len(data) <= MAX_EVERY_OFFSET:
        for cut in range(1, len(data)):
            yield [data[:cut], data[cut:]]


def _merge(events: list[Event]) -> list[Event]:
    merged: list[Event] = []
    for event in events:
        if isinstance(event, bytes):
            if not event:
                raise AssertionError("empty body data event")
            if merged and isinstance(merged[-1], bytes):
                merged[-1] = merged[-1] + event
                continue
        merged.append(event)
    return merged


def _drain(next_event: Callable[[], Event], out: list[Event]) -> None:
    while True:
        event = next_event()
        if event is None:
            return
        out.append(event)
        if event is CONNECTION_CLOSED:
            return


def run_request_pieces(
    pieces: Sequence[bytes], *, limits: Limits = DEFAULT_LIMITS, eof: bool = True
) -> list[Event]:
    """Feed ``pieces`` to a new `RequestParser`; return the merged events."""
    parser = RequestParser(limits)
    out: list[Event] = []
    for piece in pieces:
        parser.feed(piece)
        _drain(parser.next_event, out)
    if eof:
        parser.feed_eof()
        _drain(parser.next_event, out)
    return _merge(out)


def run_response_pieces(
    pieces: Sequence[bytes],
    *,
    methods: Sequence[bytes] = (b"GET",),
    limits: Limits = DEFAULT_LIMITS,
    eof: bool = True,
) -> list[Event]:
    """
    Feed ``pieces`` to a new `ResponseParser` expecting one response per
    method, in order; return the merged events.
    """
    parser = ResponseParser(limits)
    pending = list(methods)
    out: list[Event] = []

    def step() -> Event:
        if parser.is_between_messages() and pending and parser.state.name == "IDLE":
            parser.expect_response(pending.pop(0))
        return parser.next_event()

    for piece in pieces:
        parser.feed(piece)
        _drain(step, out)
    if eof:
        parser.feed_eof()
        _drain(step, out)
    return _merge(out)


class WireCase(SynchronousTestCase):
    """A test case with split-invariant assertions for both parsers."""

    def assertRequestEvents(
        self,
        data: bytes,
        expected: list[Event],
        *,
        limits: Limits = DEFAULT_LIMITS,
        eof: bool = True,
    ) -> None:
        """However ``data`` is cut, a `RequestParser` yields ``expected``."""
        for pieces in pieces_variants(data):
            self.assertEqual(
                expected, run_request_pieces(pieces, limits=limits, eof=eof), pieces
            )

    def assertResponseEvents(
        self,
        data: bytes,
        expected: list[Event],
        *,
        methods: Sequence[bytes] = (b"GET",),
        limits: Limits = DEFAULT_LIMITS,
        eof: bool = True,
    ) -> None:
        """However ``data`` is cut, a `ResponseParser` yields ``expected``."""
        for pieces in pieces_variants(data):
            self.assertEqual(
                expected,
                run_response_pieces(pieces, methods=methods, limits=limits, eof=eof),
                pieces,
            )

    def assertRequestRejected(
        self,
        data: bytes,
        error: type[RemoteProtocolError],
        status: int,
        *,
        limits: Limits = DEFAULT_LIMITS,
        eof: bool = True,
    ) -> None:
        """However ``data`` is cut, parsing it raises ``error`` with ``status``."""
        for pieces in pieces_variants(data):
            raised = self.assertRaises(
                RemoteProtocolError,
                run_request_pieces,
                pieces,
                limits=limits,
                eof=eof,
            )
            self.assertIs(type(raised), error, (pieces, raised))
            self.assertEqual(status, raised.status)

    def assertResponseRejected(
        self,
        data: bytes,
        error: type[RemoteProtocolError],
        status: int = 400,
        *,
        methods: Sequence[bytes] = (b"GET",),
        limits: Limits = DEFAULT_LIMITS,
        eof: bool = True,
    ) -> None:
        """However ``data`` is cut, parsing it raises ``error`` with ``status``."""
        for pieces in pieces_variants(data):
            raised = self.assertRaises(
                RemoteProtocolError,
                run_response_pieces,
                pieces,
                methods=methods,
                limits=limits,
                eof=eof,
            )
            self.assertIs(type(raised), error, (pieces, raised))
            self.assertEqual(status, raised.status)
