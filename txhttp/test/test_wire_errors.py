# -*- test-case-name: txhttp.test.test_wire_errors -*-
"""Tests for the wire core's error hierarchy and `preview`."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txhttp import _wire
from txhttp._wire import (
    BadChunk,
    BadFraming,
    BadHeaderField,
    BadHost,
    BadStartLine,
    BodyTooLarge,
    DuplicateField,
    HeaderFieldTooLarge,
    HeaderSectionTooLarge,
    IncompleteMessage,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    RequestParser,
    StartLineTooLong,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    preview,
)


class HierarchyTests(SynchronousTestCase):
    """Each error's place and status."""

    def test_statuses(self) -> None:
        """Each remote error carries the status a server answers."""
        expected = {
            BadStartLine: 400,
            StartLineTooLong: 414,
            UnsupportedVersion: 505,
            BadHeaderField: 400,
            HeaderFieldTooLarge: 431,
            HeaderSectionTooLarge: 431,
            BadHost: 400,
            DuplicateField: 400,
            BadFraming: 400,
            UnsupportedTransferCoding: 501,
            BadChunk: 400,
            BodyTooLarge: 413,
            IncompleteMessage: 400,
        }
        for cls, status in expected.items():
            self.assertTrue(issubclass(cls, RemoteProtocolError), cls)
            self.assertEqual(status, cls("x").status)

    def test_local(self) -> None:
        """LocalProtocolError is a ProtocolError and a ValueError, status 500."""
        error = LocalProtocolError("x")
        self.assertIsInstance(error, ProtocolError)
        self.assertIsInstance(error, ValueError)
        self.assertNotIsInstance(error, RemoteProtocolError)
        self.assertEqual(500, error.status)

    def test_status_override(self) -> None:
        """A status given to the constructor wins."""
        self.assertEqual(418, BadStartLine("x", status=418).status)

    def test_all_exported(self) -> None:
        """Every name in __all__ exists."""
        for name in _wire.__all__:
            self.assertTrue(hasattr(_wire, name), name)


class PreviewTests(SynchronousTestCase):
    """`preview` and error messages never echo unbounded input."""

    def test_short(self) -> None:
        """Short input is shown whole."""
        self.assertEqual("b'abc'", preview(b"abc"))

    def test_long(self) -> None:
        """Long input is cut and the rest counted."""
        self.assertEqual("b'aaaa'... (6 more bytes)", preview(b"a" * 10, 4))

    def test_messages_are_bounded(self) -> None:
        """An error about a huge line quotes only a bounded preview of it."""
        parser = RequestParser()
        parser.feed(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n")
        error = self.assertRaises(StartLineTooLong, parser.next_event)
        self.assertLess(len(str(error)), 300)
        self.assertIn("8192", str(error))
