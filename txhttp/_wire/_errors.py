# -*- test-case-name: txhttp.test.test_wire_errors -*-
"""
The wire core's one small error hierarchy.

Blame is explicit: `RemoteProtocolError` means the peer sent something that is
not valid HTTP/1.1 (a server answers `ProtocolError.status` and closes; a client
fails the request with a typed exception), `LocalProtocolError` means our own
caller asked us to write something that is not valid (for example a header
value with a CR in it). Messages name the thing, the rule and the value, with
untrusted bytes shortened by `preview`, never echoed whole.
"""

from __future__ import annotations

from typing import Final

PREVIEW_BYTES: Final = 40
"""How much of an offending input an error message quotes."""


def preview(data: bytes | bytearray | memoryview, limit: int = PREVIEW_BYTES) -> str:
    """
    Quote untrusted bytes for an error message, shortened to ``limit`` bytes.

    Returns:
        The ``repr`` of at most ``limit`` bytes, followed by the count of
        bytes left out, if any.
    """
    shown = bytes(data[:limit])
    if len(data) > limit:
        return f"{shown!r}... ({len(data) - limit} more bytes)"
    return repr(shown)


class ProtocolError(Exception):
    """A message broke HTTP/1.1. ``status`` is what a server should answer."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is not valid HTTP/1.1."""


class LocalProtocolError(ProtocolError, ValueError):
    """Our caller asked to send something that is not valid HTTP/1.1."""

    status = 500


class BadStartLine(RemoteProtocolError):
    """The request line or status line is malformed (RFC 9112, sections 3, 4)."""


class StartLineTooLong(RemoteProtocolError):
    """The request line is longer than ``Limits.max_line_bytes`` (RFC 9112, 3)."""

    status = 414


class UnsupportedVersion(RemoteProtocolError):
    """A well-formed HTTP version other than 1.0 or 1.1 (RFC 9110, 15.6.6)."""

    status = 505


class BadHeaderField(RemoteProtocolError):
    """A field line is malformed: name, value, obs-fold or line ending (RFC 9112, 5)."""


class HeaderFieldTooLarge(RemoteProtocolError):
    """One field line is longer than ``Limits.max_field_line_bytes``."""

    status = 431


class HeaderSectionTooLarge(RemoteProtocolError):
    """The header (or trailer) section is over its byte or count limit."""

    status = 431


class BadHost(RemoteProtocolError):
    """Host is missing, repeated or invalid (RFC 9112, section 3.2)."""


class DuplicateField(RemoteProtocolError):
    """A field that must appear once appeared again with a different value."""


class BadFraming(RemoteProtocolError):
    """The message length cannot be decided safely (RFC 9112, section 6.3)."""


class UnsupportedTransferCoding(RemoteProtocolError):
    """A transfer coding other than chunked (RFC 9112, section 6.1)."""

    status = 501


class BadChunk(RemoteProtocolError):
    """A chunk-size line, extension or chunk terminator is malformed (RFC 9112, 7.1)."""


class BodyTooLarge(RemoteProtocolError):
    """The body is over ``Limits.max_body_bytes``."""

    status = 413


class IncompleteMessage(RemoteProtocolError):
    """The connection closed before the message was complete (truncation)."""
