# -*- test-case-name: txhttp.test.test_client_http -*-
"""
Incremental, bounded decoding of ``Content-Encoding`` (RFC 9110, section 8.4).

`ContentDecoder` turns encoded body chunks into decoded ones and refuses
decompression bombs two ways: the decoded total may not pass a size cap, and
once past a grace size the decoded/encoded ratio may not pass a ratio cap.
gzip and deflate use the standard library with a bounded output per call, so a
tiny input can never expand without limit in one step; ``br`` and ``zstd`` are
used when their optional libraries (``brotli``, ``zstandard``) are installed,
fed in small slices. No I/O, no clock.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Final, Protocol

from txhttp.client._exceptions import HTTPDecompressionError

__all__ = ["ContentDecoder", "accept_encoding", "supported_encodings"]

OUTPUT_STEP_BYTES: Final = 64 * 1024
"""Most bytes one zlib call may produce; the loop checks caps between calls."""

INPUT_SLICE_BYTES: Final = 16 * 1024
"""Encoded bytes fed per decoder call, so caps are checked between slices."""


class _Step(Protocol):
    """One encoding's incremental decoder; output is produced lazily."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> bytes: ...


class _ZlibStep:
    """gzip or deflate with bounded output per call; multi-member gzip works."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        # gzip: 16 + MAX_WBITS; deflate: zlib wrapper first, raw on failure
        # (some servers send raw deflate despite RFC 9110, section 8.4.1.2).
        self._wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._obj = zlib.decompressobj(self._wbits)
        self._started = False
        self._done = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        pending = data
        while pending and not self._done:
            try:
                chunk = self._obj.decompress(pending, OUTPUT_STEP_BYTES)
            except zlib.error as e:
                if self._encoding == "deflate" and not self._started:
                    self._started = True
                    self._wbits = -zlib.MAX_WBITS
                    self._obj = zlib.decompressobj(self._wbits)
                    continue
                raise HTTPDecompressionError(
                    f"{self._encoding} body is corrupt: {e}", encoding=self._encoding
                ) from e
            self._started = True
            if chunk:
                yield chunk
            if not self._obj.eof:
                pending = self._obj.unconsumed_tail
                continue
            # A member ended; gzip may have another (RFC 1952, section 2.2).
            pending = self._obj.unused_data
            if self._encoding == "gzip" and pending.strip(b"\x00"):
                self._obj = zlib.decompressobj(self._wbits)
            else:
                self._done = True

    def flush(self) -> bytes:
        if self._done or not self._started:
            return b""
        if not self._obj.eof:
            raise HTTPDecompressionError(
                f"{self._encoding} body is truncated", encoding=self._encoding
            )
        return b""


class _SlicedStep:
    """A decoder without an output bound, fed ``INPUT_SLICE_BYTES`` at a time."""

    def __init__(self, encoding: str, process: Callable[[bytes], bytes]) -> None:
        self._encoding = encoding
        self._process = process

    def feed(self, data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), INPUT_SLICE_BYTES):
            try:
                chunk = self._process(data[start : start + INPUT_SLICE_BYTES])
            except Exception as e:
                raise HTTPDecompressionError(
                    f"{self._encoding} body is corrupt: {e}", encoding=self._encoding
                ) from e
            if chunk:
                yield chunk

    def flush(self) -> bytes:
        return b""


def _optional(module: str) -> object | None:
    """Import an optional decoder library, or `None` if it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def supported_encodings() -> tuple[str, ...]:
    """The content codings this installation can decode, preferred first."""
    found = ["gzip", "deflate"]
    if _optional("brotli") is not None:
        found.append("br")
    if _optional("zstandard") is not None:
        found.append("zstd")
    return tuple(found)


def accept_encoding() -> str:
    """The ``Accept-Encoding`` value to send by default."""
    return ", ".join(supported_encodings())


def _make_step(encoding: str) -> _Step:
    """Build the decoder for one coding, or refuse an unknown one."""
    if encoding in ("gzip", "x-gzip"):
        return _ZlibStep("gzip")
    if encoding == "deflate":
        return _ZlibStep("deflate")
    if encoding == "br":
        brotli = _optional("brotli")
        if brotli is not None:
            return _SlicedStep("br", brotli.Decompressor().process)  # type: ignore[attr-defined]  # optional library without stubs
    if encoding == "zstd":
        zstandard = _optional("zstandard")
        if zstandard is not None:
            obj = zstandard.ZstdDecompressor().decompressobj()  # type: ignore[attr-defined]  # optional library without stubs
            return _SlicedStep("zstd", obj.decompress)
    raise HTTPDecompressionError(
        f"unsupported Content-Encoding {encoding!r}", encoding=encoding
    )


class ContentDecoder:
    """
    Decode a body through its content codings, with a size and a ratio cap.

    Args:
        encodings: The ``Content-Encoding`` codings in the order they were
            applied (``identity`` is skipped); decoding runs in reverse.
        max_bytes: Most decoded bytes allowed.
        max_ratio: Largest decoded/encoded ratio allowed once past
            ``grace_bytes`` decoded bytes.
        grace_bytes: Decoded bytes before the ratio is checked.
    """

    def __init__(
        self,
        encodings: list[str],
        *,
        max_bytes: int,
        max_ratio: int,
        grace_bytes: int,
    ) -> None:
        codings = [e.strip().lower() for e in encodings if e.strip()]
        codings = [e for e in codings if e != "identity"]
        self.encoding = ", ".join(codings) or "identity"
        self._steps = [_make_step(e) for e in reversed(codings)]
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._grace_bytes = grace_bytes
        self.encoded_bytes = 0
        self.decoded_bytes = 0

    @property
    def is_identity(self) -> bool:
        """True when the body has no content coding to undo."""
        return not self._steps

    def feed(self, data: bytes) -> list[bytes]:
        """
        Decode one chunk.

        Returns:
            The decoded chunks (maybe none yet).

        Raises:
            HTTPDecompressionError: Corrupt data, or a cap was passed. The
                caps are checked between bounded decoder steps, so a bomb is
                refused before it is expanded in memory.
        """
        if not self._steps:
            # Nothing to decode: the caller's own size cap applies.
            self.encoded_bytes += len(data)
            self.decoded_bytes += len(data)
            return [data] if data else []
        out = []
        # Slices keep the ratio honest: encoded bytes are counted as the
        # decoder reaches them, not all at once for a large chunk.
        for start in range(0, len(data), INPUT_SLICE_BYTES):
            piece_in = data[start : start + INPUT_SLICE_BYTES]
            self.encoded_bytes += len(piece_in)
            pieces: Iterable[bytes] = [piece_in]
            for step in self._steps:
                pieces = self._chain(step, pieces)
            for piece in pieces:
                self._count(len(piece))
                out.append(piece)
        return out

    @staticmethod
    def _chain(step: _Step, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Lazily feed each piece of the previous stage through ``step``."""
        for piece in pieces:
            yield from step.feed(piece)

    def finish(self) -> list[bytes]:
        """
        Check that every coding ended cleanly at the end of the body.

        Raises:
            HTTPDecompressionError: Truncated data.
        """
        for step in self._steps:
            step.flush()
        return []

    def _count(self, decoded: int) -> None:
        """Account decoded bytes and enforce both caps."""
        self.decoded_bytes += decoded
        if self.decoded_bytes > self._max_bytes:
            raise HTTPDecompressionError(
                f"decoded body is over {self._max_bytes} bytes "
                f"({self.encoded_bytes} bytes encoded): refused as a "
                f"decompression bomb",
                encoding=self.encoding,
            )
        if (
            self._steps
            and self.decoded_bytes > self._grace_bytes
            and self.decoded_bytes > self._max_ratio * max(self.encoded_bytes, 1)
        ):
            raise HTTPDecompressionError(
                f"decoded/encoded ratio is over {self._max_ratio} "
                f"({self.decoded_bytes}/{self.encoded_bytes} bytes): refused as a "
                f"decompression bomb",
                encoding=self.encoding,
            )
