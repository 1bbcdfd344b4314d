# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
The wire core's limits, each named once with its reason.

Every buffer the parsers keep is bounded by one of these; exceeding one raises
the matching `RemoteProtocolError` subclass (with the status a server answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_LINE_BYTES: Final = 8 * 1024
"""Longest request or status line. Common servers cap near 8 KiB; longer gets 414."""

DEFAULT_MAX_FIELD_LINE_BYTES: Final = 8 * 1024
"""Longest single field line (name, colon and value); longer gets 431."""

DEFAULT_MAX_HEADER_SECTION_BYTES: Final = 64 * 1024
"""Whole header section, start line included; larger gets 431."""

DEFAULT_MAX_HEADER_COUNT: Final = 100
"""Field lines in one header or trailer section; more gets 431."""

DEFAULT_MAX_CHUNK_LINE_BYTES: Final = 1024
"""A chunk-size line with its extensions. Sizes need 16 hex digits at most."""

DEFAULT_MAX_TRAILER_SECTION_BYTES: Final = 16 * 1024
"""Trailer fields after the last chunk; larger gets 431."""

DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024 * 1024
"""Largest de-framed body, decided at the head for Content-Length; larger gets 413.
Clients that stream large downloads set their own limit (or ``None``) explicitly."""

DEFAULT_MAX_LEADING_EMPTY_LINES: Final = 8
"""Empty lines tolerated before a request line (RFC 9112, section 2.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """
    Bounds on what a parser accepts; every field has a documented default.

    ``max_body_bytes=None`` turns off the body cap; only a caller that streams
    the body and bounds it some other way should do so, and it must say so.
    """

    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_field_line_bytes: int = DEFAULT_MAX_FIELD_LINE_BYTES
    max_header_section_bytes: int = DEFAULT_MAX_HEADER_SECTION_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    max_chunk_line_bytes: int = DEFAULT_MAX_CHUNK_LINE_BYTES
    max_trailer_section_bytes: int = DEFAULT_MAX_TRAILER_SECTION_BYTES
    max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES
    max_leading_empty_lines: int = DEFAULT_MAX_LEADING_EMPTY_LINES


DEFAULT_LIMITS: Final = Limits()
"""The limits used when a caller passes none."""
