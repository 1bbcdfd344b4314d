# -*- test-case-name: txhttp.test.test_wire_chunked -*-
"""
Incremental decoding of chunked message bodies (RFC 9112, section 7.1).

`ChunkedDecoder` takes bytes from the front of the caller's buffer and turns
them into body data and, at the end, an `EndOfMessage` carrying the trailer
fields; whatever follows the last chunk stays in the buffer for the next
message. Chunk-size lines, their extensions, the data total and the trailer
section are bounded by `Limits`. Sans-IO: standard library only, no notion
of time.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, auto
from typing import Final

from txhttp._wire._errors import BadChunk, BadHeaderField, BodyTooLarge, preview
from txhttp._wire._grammar import CHUNK_LINE_RE
from txhttp._wire._head import HeadScanner, split_fields
from txhttp._wire._limits import Limits
from txhttp._wire._message import END_OF_MESSAGE, EndOfMessage

_CR: Final = 13

FORBIDDEN_TRAILERS: Final = frozenset(
    (b"content-length", b"transfer-encoding", b"host", b"trailer")
)
"""
Trailer fields refused with `BadHeaderField` (RFC 9110, section 6.5.1).

Framing and routing are decided by the head alone; a trailer claiming to
change them is either an attack or a bug, and a careless consumer merging
trailers into the header section could be misled, so we refuse it instead of
passing it on. Other trailer fields are returned as received.
"""


class ChunkState(Enum):
    """Where the decoder is within a chunked body."""

    __hash__ = object.__hash__  # C-level hash: cheap transition lookups.

    SIZE_LINE = auto()
    """Reading ``chunk-size [ chunk-ext ] CRLF``."""
    DATA = auto()
    """Reading the data of a chunk."""
    DATA_END = auto()
    """Expecting the CRLF that closes a chunk's data."""
    TRAILERS = auto()
    """After the last chunk: reading the trailer section."""
    DONE = auto()
    """The body ended; the decoder takes no more input."""


class ChunkInput(Enum):
    """What the decoder just read."""

    __hash__ = object.__hash__

    SIZE = auto()
    LAST_SIZE = auto()
    DATA_READ = auto()
    CRLF = auto()
    TRAILERS_READ = auto()


_TRANSITIONS: Final[Mapping[tuple[ChunkState, ChunkInput], ChunkState]] = {
    (ChunkState.SIZE_LINE, ChunkInput.SIZE): ChunkState.DATA,
    (ChunkState.SIZE_LINE, ChunkInput.LAST_SIZE): ChunkState.TRAILERS,
    (ChunkState.DATA, ChunkInput.DATA_READ): ChunkState.DATA_END,
    (ChunkState.DATA_END, ChunkInput.CRLF): ChunkState.SIZE_LINE,
    (ChunkState.TRAILERS, ChunkInput.TRAILERS_READ): ChunkState.DONE,
}


class ChunkedDecoder:
    """
    Decodes one chunked body from the front of a buffer, a step at a time.

    The caller owns the buffer, appends received bytes to it and calls
    `step`; the decoder deletes from its front exactly the bytes it used.
    Work is linear in the input: an incomplete line is never searched twice.
    """

    __slots__ = (
        "_limits",
        "_remaining",
        "_scanner",
        "_search_from",
        "_state",
        "_total",
    )

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state = ChunkState.SIZE_LINE
        self._remaining = 0
        self._total = 0
        self._search_from = 0
        self._scanner = HeadScanner(
            strict=True,
            has_start_line=False,
            first_line_limit=0,
            field_line_limit=limits.max_field_line_bytes,
            section_limit=limits.max_trailer_section_bytes,
            count_limit=limits.max_header_count,
            section="trailer",
        )

    @property
    def state(self) -> ChunkState:
        """The current state (for tests and diagnostics)."""
        return self._state

    def _advance(self, event: ChunkInput) -> None:
        try:
            self._state = _TRANSITIONS[self._state, event]
        except KeyError:
            raise RuntimeError(
                f"bug: {event.name} is not valid in state {self._state.name}"
            ) from None

    def step(self, buf: bytearray) -> bytes | EndOfMessage | None:
        """
        Use bytes from the front of ``buf``; return data, the end, or ``None``.

        Returns:
            Non-empty body data; the `EndOfMessage` (with any trailers) once
            the last chunk and trailer section are read; or ``None`` when
            more bytes are needed.

        Raises:
            BadChunk: A malformed chunk-size line, extension or terminator.
            BodyTooLarge: The data would exceed `Limits.max_body_bytes`.
            BadHeaderField: A malformed or forbidden trailer field.
            HeaderFieldTooLarge, HeaderSectionTooLarge: Trailer limits.
        """
        while True:
            state = self._state
            if state is ChunkState.DATA:
                return self._data(buf)
            if state is ChunkState.SIZE_LINE:
                if not self._size_line(buf):
                    return None
            elif state is ChunkState.DATA_END:
                if not self._data_end(buf):
                    return None
            elif state is ChunkState.TRAILERS:
                return self._trailers(buf)
            else:
                raise RuntimeError("bug: step called after the end of the body")

    def _data(self, buf: bytearray) -> bytes | None:
        available = len(buf)
        if not available:
            return None
        remaining = self._remaining
        if available <= remaining:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:remaining])
            del buf[:remaining]
        self._remaining = remaining = remaining - len(data)
        if not remaining:
            self._advance(ChunkInput.DATA_READ)
        return data

    def _size_line(self, buf: bytearray) -> bool:
        limit = self._limits.max_chunk_line_bytes
        nl = buf.find(b"\n", self._search_from)
        if nl < 0:
            held = len(buf)
            if held > limit + 1 or (held == limit + 1 and buf[-1] != _CR):
                raise BadChunk(
                    f"chunk-size line over {limit} bytes (RFC 9112, 7.1): "
                    f"{preview(buf)}"
                )
            self._search_from = held
            return False
        self._search_from = 0
        if nl == 0 or buf[nl - 1] != _CR:
            raise BadChunk(
                f"chunk-size line must end in CRLF (RFC 9112, 7.1): "
                f"{preview(buf[: nl + 1])}"
            )
        if nl - 1 > limit:
            raise BadChunk(
                f"chunk-size line over {limit} bytes (RFC 9112, 7.1): "
                f"{preview(buf[:nl])}"
            )
        match = CHUNK_LINE_RE.fullmatch(buf, 0, nl - 1)
        if match is None:
            raise BadChunk(
                f"malformed chunk-size line: hex size, then extensions "
                f"(RFC 9112, 7.1): {preview(buf[: nl - 1])}"
            )
        size = int(match.group(1), 16)
        del buf[: nl + 1]
        max_body = self._limits.max_body_bytes
        self._total += size
        if max_body is not None and self._total > max_body:
            raise BodyTooLarge(f"chunked body over the {max_body} byte body limit")
        if size:
            self._remaining = size
            self._advance(ChunkInput.SIZE)
        else:
            self._advance(ChunkInput.LAST_SIZE)
        return True

    def _data_end(self, buf: bytearray) -> bool:
        # RFC 9112, section 7.1: chunk = chunk-size [ ext ] CRLF chunk-data
        # CRLF; anything but exactly CRLF after the data is refused.
        held = len(buf)
        if held >= 2:
            if buf[0] != _CR or buf[1] != 10:
                raise BadChunk(
                    f"chunk data not followed by CRLF (RFC 9112, 7.1): "
                    f"{preview(buf[:2])}"
                )
            del buf[:2]
            self._advance(ChunkInput.CRLF)
            return True
        if held == 1 and buf[0] != _CR:
            raise BadChunk(
                f"chunk data not followed by CRLF (RFC 9112, 7.1): {preview(buf)}"
            )
        return False

    def _trailers(self, buf: bytearray) -> EndOfMessage | None:
        # RFC 9112, section 7.1.2: trailer-section = *( field-line CRLF ),
        # then the final CRLF.
        if self._scanner.is_fresh() and buf[:2] == b"\r\n":
            del buf[:2]
            self._advance(ChunkInput.TRAILERS_READ)
            return END_OF_MESSAGE
        end = self._scanner.find_end(buf)
        if end < 0:
            return None
        block = bytes(buf[: end - 2])
        del buf[:end]
        self._scanner.reset()
        trailers = split_fields(block, self._limits, trailers=True)
        for name, _ in trailers:
            if name.lower() in FORBIDDEN_TRAILERS:
                raise BadHeaderField(
                    f"{preview(name)} is not allowed in a trailer section "
                    f"(RFC 9110, 6.5.1)"
                )
        self._advance(ChunkInput.TRAILERS_READ)
        return EndOfMessage(tuple(trailers)) if trailers else END_OF_MESSAGE
