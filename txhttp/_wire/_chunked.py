# -*- test-case-name: txhttp.test.test_wire_chunked -*-
"""
Incremental decoding of chunked message bodies (RFC 9112, section 7.1).

`ChunkedDecoder` takes bytes from the front of the caller's buffer (or from
an offset of a received ``bytes`` object) and turns them into body data and,
at the end, an `EndOfMessage` carrying the trailer fields; whatever follows
the last chunk stays with the caller for the next message. Chunk-size lines,
their extensions, the data total and the trailer section are bounded by
`Limits`. Sans-IO: standard library only, no notion of time.
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
_LF: Final = 10

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

# Module-level aliases: a global lookup instead of an Enum attribute access
# on the per-chunk path.
_SIZE_LINE: Final = ChunkState.SIZE_LINE
_DATA: Final = ChunkState.DATA
_DATA_END: Final = ChunkState.DATA_END
_TRAILERS: Final = ChunkState.TRAILERS
# The three moves made per chunk, looked up once from the table (which stays
# the only definition of what is legal).
_AFTER_SIZE: Final = _TRANSITIONS[_SIZE_LINE, ChunkInput.SIZE]
_AFTER_DATA: Final = _TRANSITIONS[_DATA, ChunkInput.DATA_READ]
_AFTER_CRLF: Final = _TRANSITIONS[_DATA_END, ChunkInput.CRLF]


class ChunkedDecoder:
    """
    Decodes one chunked body from a buffer, a step at a time.

    Two ways to drive it, which may be mixed. `step` takes bytes from the
    front of a ``bytearray`` the caller owns and deletes exactly the bytes it
    used. `step_from` reads any bytes-like object from an offset and returns
    the offset after what it used, deleting nothing: a receive that is all
    chunk data comes back as the very same ``bytes`` object, and a receive
    holding many chunks costs one slice per chunk, no buffer copy. Both apply
    the same checks in the same order. Work is linear in the input: an
    incomplete line is never searched twice.
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
        event, used = self.step_from(buf, 0)
        if used:
            del buf[:used]
        if event is None and self._state is _TRAILERS:
            return self._trailers(buf)
        return event

    def step_from(
        self, data: bytes | bytearray, pos: int
    ) -> tuple[bytes | EndOfMessage | None, int]:
        """
        Use bytes of ``data`` from offset ``pos``; delete nothing.

        Returns:
            The event (as for `step`) and the offset just past the bytes
            used. The event is ``None`` when more bytes are needed, or when
            a trailer section starts: then the caller moves
            ``data[offset:]`` to the front of a ``bytearray`` and goes on
            with `step`, which resumes exactly where this stopped.

        Raises:
            BadChunk, BodyTooLarge: As for `step`.
        """
        while True:
            state = self._state
            if state is _DATA:
                available = len(data) - pos
                if not available:
                    return None, pos
                remaining = self._remaining
                if available <= remaining:
                    # The rest of the input is chunk data: for ``bytes`` at
                    # offset 0 this is the object received, not a copy.
                    end = len(data)
                    if type(data) is bytes:
                        chunk = data[pos:]
                    else:
                        chunk = bytes(data[pos:] if pos else data)
                else:
                    end = pos + remaining
                    piece = data[pos:end]
                    chunk = piece if type(piece) is bytes else bytes(piece)
                self._remaining = remaining = remaining - len(chunk)
                if not remaining:
                    self._state = _AFTER_DATA
                return chunk, end
            if state is _SIZE_LINE:
                end = self._size_line(data, pos)
                if end < 0:
                    return None, pos
            elif state is _DATA_END:
                if len(data) - pos >= 2 and data[pos] == _CR and data[pos + 1] == _LF:
                    self._state = _AFTER_CRLF
                    end = pos + 2
                else:
                    self._check_data_end(data, pos)
                    return None, pos  # a CR, or nothing yet
            elif state is _TRAILERS:
                # The common empty trailer section; anything else is left
                # to `step` and its scanner.
                if (
                    self._scanner.is_fresh()
                    and len(data) - pos >= 2
                    and data[pos] == _CR
                    and data[pos + 1] == _LF
                ):
                    self._advance(ChunkInput.TRAILERS_READ)
                    return END_OF_MESSAGE, pos + 2
                return None, pos
            else:
                raise RuntimeError("bug: step called after the end of the body")
            pos = end

    def _size_line(self, data: bytes | bytearray, pos: int) -> int:
        """Read a chunk-size line at ``pos``; the offset past it, or -1."""
        limit = self._limits.max_chunk_line_bytes
        nl = data.find(b"\n", pos + self._search_from)
        if nl < 0:
            held = len(data) - pos
            if held > limit + 1 or (held == limit + 1 and data[-1] != _CR):
                raise BadChunk(
                    f"chunk-size line over {limit} bytes (RFC 9112, 7.1): "
                    f"{preview(data[pos:])}"
                )
            self._search_from = held
            return -1
        self._search_from = 0
        if nl == pos or data[nl - 1] != _CR:
            raise BadChunk(
                f"chunk-size line must end in CRLF (RFC 9112, 7.1): "
                f"{preview(data[pos : nl + 1])}"
            )
        if nl - 1 - pos > limit:
            raise BadChunk(
                f"chunk-size line over {limit} bytes (RFC 9112, 7.1): "
                f"{preview(data[pos:nl])}"
            )
        match = CHUNK_LINE_RE.fullmatch(data, pos, nl - 1)
        if match is None:
            raise BadChunk(
                f"malformed chunk-size line: hex size, then extensions "
                f"(RFC 9112, 7.1): {preview(data[pos : nl - 1])}"
            )
        size = int(match.group(1), 16)
        max_body = self._limits.max_body_bytes
        self._total += size
        if max_body is not None and self._total > max_body:
            raise BodyTooLarge(f"chunked body over the {max_body} byte body limit")
        if size:
            self._remaining = size
            self._state = _AFTER_SIZE
        else:
            self._advance(ChunkInput.LAST_SIZE)
        return nl + 1

    def _check_data_end(self, data: bytes | bytearray, pos: int) -> None:
        """
        Raise unless the bytes at ``pos`` may still begin the CRLF after
        chunk data (the caller found that they are not a whole CRLF).
        """
        # RFC 9112, section 7.1: chunk = chunk-size [ ext ] CRLF chunk-data
        # CRLF; anything but exactly CRLF after the data is refused.
        held = len(data) - pos
        if held >= 2 or (held == 1 and data[pos] != _CR):
            raise BadChunk(
                f"chunk data not followed by CRLF (RFC 9112, 7.1): "
                f"{preview(data[pos : pos + 2])}"
            )

    def _trailers(self, buf: bytearray) -> EndOfMessage | None:
        # RFC 9112, section 7.1.2: trailer-section = *( field-line CRLF ),
        # then the final CRLF. The empty section at the front of a fresh
        # scan was handled by `step_from`.
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
