# -*- test-case-name: txhttp.test.test_client_multipart -*-
"""
``multipart/form-data`` request bodies (RFC 7578) as a streaming producer.

`MultipartProducer` provides ``IBodyProducer``: it writes each part as the
consumer accepts it, reading file objects in `CHUNK_BYTES` pieces, so a large
upload is never held in memory. Its length is known in advance when every file
is seekable (so the request gets a ``Content-Length``), else it is sent
chunked. Field names and file names are escaped as RFC 7578, section 2 and the
HTML form encoding algorithm do (``"`` -> ``%22``, CR -> ``%0D``, LF ->
``%0A``), the rest left as UTF-8. Nothing here knows about URLs or agents.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Final

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IConsumer
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from txhttp.client._exceptions import HTTPError

__all__ = [
    "CHUNK_BYTES",
    "FieldValue",
    "Fields",
    "MultipartProducer",
    "escape_name",
]

CHUNK_BYTES: Final = 64 * 1024
"""How much of a file is read and written at a time."""

DEFAULT_FILE_CONTENT_TYPE: Final = "application/octet-stream"
"""Content type of a file part given without one (RFC 7578, section 4.4)."""

FileData = bytes | str | IO[bytes]
"""A file part's data: bytes, text (sent as UTF-8) or a binary file object."""

FieldValue = str | bytes | tuple[str, FileData] | tuple[str, FileData, str]
"""
A form field: text, bytes, or a file as ``(filename, data)`` or
``(filename, data, content_type)``.
"""

Fields = Mapping[str, FieldValue] | Sequence[tuple[str, FieldValue]]
"""Fields as a mapping, or as ``(name, value)`` pairs to repeat a name."""


def escape_name(name: str) -> bytes:
    """
    Escape a field or file name for a ``Content-Disposition`` quoted string.

    As RFC 7578, section 2 refers to the HTML form algorithm: ``"``, CR and
    LF become ``%22``, ``%0D`` and ``%0A``; the rest is UTF-8.
    """
    escaped = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    return escaped.encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Part:
    """One part: its header block and its payload."""

    head: bytes
    payload: bytes | IO[bytes]
    start: int  # where a file payload starts, to rewind for a retry
    size: int | None


def _file_size(handle: IO[bytes]) -> tuple[int, int | None]:
    """Where a file is now and how many bytes remain, if seekable."""
    try:
        if not handle.seekable():
            return (0, None)
        start = handle.tell()
        end = handle.seek(0, 2)
        handle.seek(start)
    except (OSError, ValueError, AttributeError):
        return (0, None)
    return (start, end - start)


def _make_part(name: str, value: FieldValue) -> _Part:
    """Build a part from one field, checking its type."""
    if not isinstance(name, str):
        raise HTTPError(f"multipart field names must be str, not {type(name).__name__}")
    disposition = b'form-data; name="' + escape_name(name) + b'"'
    headers: list[bytes]
    payload: bytes | IO[bytes]
    if isinstance(value, str):
        headers = [b"Content-Disposition: " + disposition]
        payload = value.encode("utf-8")
    elif isinstance(value, bytes):
        headers = [b"Content-Disposition: " + disposition]
        payload = value
    elif isinstance(value, tuple) and len(value) in (2, 3):
        filename, data = value[0], value[1]
        content_type = value[2] if len(value) == 3 else DEFAULT_FILE_CONTENT_TYPE
        if not isinstance(filename, str) or not isinstance(content_type, str):
            raise HTTPError(
                f"multipart file {name!r} needs a str filename and content type"
            )
        if any(c in content_type for c in "\r\n\x00"):
            raise HTTPError(
                f"multipart file {name!r} content type has CR, LF or NUL: "
                f"{content_type!r}"
            )
        disposition += b'; filename="' + escape_name(filename) + b'"'
        headers = [
            b"Content-Disposition: " + disposition,
            b"Content-Type: " + content_type.encode("utf-8"),
        ]
        if isinstance(data, str):
            payload = data.encode("utf-8")
        elif isinstance(data, bytes) or hasattr(data, "read"):
            payload = data
        else:
            raise HTTPError(
                f"multipart file {name!r} data must be bytes, str or a binary "
                f"file, not {type(data).__name__}"
            )
    else:
        raise HTTPError(
            f"multipart field {name!r} must be str, bytes or (filename, data"
            f"[, content_type]), not {type(value).__name__}"
        )
    head = b"\r\n".join(headers) + b"\r\n\r\n"
    if isinstance(payload, bytes):
        return _Part(head, payload, 0, len(payload))
    start, size = _file_size(payload)
    return _Part(head, payload, start, size)


@implementer(IBodyProducer)
class MultipartProducer:
    """
    Produces a ``multipart/form-data`` body, part by part.

    Can be produced more than once (a retry, a 307 redirect) when every file
    is seekable: files are rewound to where they were when the producer was
    built.

    Args:
        fields: The form fields, in order.
        boundary: The boundary to use; a random one (32 hex digits) by
            default. Tests pass a fixed one.

    Attributes:
        boundary: The boundary, as bytes.
        length: The body size, or ``UNKNOWN_LENGTH`` if a file is not seekable.
    """

    def __init__(self, fields: Fields, *, boundary: str | None = None) -> None:
        items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        self.boundary = (boundary or secrets.token_hex(16)).encode("ascii")
        if not 1 <= len(self.boundary) <= 70:
            raise HTTPError("multipart boundary must be 1-70 characters (RFC 2046)")
        self._parts = [_make_part(name, value) for name, value in items]
        sizes = [part.size for part in self._parts]
        self.length: int | str
        if any(size is None for size in sizes):
            self.length = UNKNOWN_LENGTH
        else:
            self.length = sum(
                len(self._delimiter(i)) + len(part.head) + (part.size or 0)
                for i, part in enumerate(self._parts)
            ) + len(self._closing())
        self._consumer: IConsumer | None = None
        self._chunks: Iterator[bytes] | None = None
        self._finished: Deferred[None] | None = None
        self._paused = False
        self._stopped = False
        self._running = False
        self._produced_once = False

    @property
    def content_type(self) -> str:
        """The request's ``Content-Type`` value, with the boundary."""
        return "multipart/form-data; boundary=" + self.boundary.decode("ascii")

    def _delimiter(self, index: int) -> bytes:
        prefix = b"" if index == 0 else b"\r\n"
        return prefix + b"--" + self.boundary + b"\r\n"

    def _closing(self) -> bytes:
        return (b"\r\n" if self._parts else b"") + b"--" + self.boundary + b"--\r\n"

    def _generate(self) -> Iterator[bytes]:
        for index, part in enumerate(self._parts):
            yield self._delimiter(index) + part.head
            if isinstance(part.payload, bytes):
                if part.payload:
                    yield part.payload
                continue
            while True:
                data = part.payload.read(CHUNK_BYTES)
                if not data:
                    break
                yield data
        yield self._closing()

    def _rewind(self) -> None:
        """Seek files back to their start, for a second production."""
        for part in self._parts:
            if isinstance(part.payload, bytes):
                continue
            if part.size is None:
                raise HTTPError(
                    "a multipart body with an unseekable file cannot be sent "
                    "twice (retry or redirect)"
                )
            part.payload.seek(part.start)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        """Write the body to ``consumer``; the Deferred fires at the end."""
        if self._produced_once:
            self._rewind()
        self._produced_once = True
        self._consumer = consumer
        self._chunks = self._generate()
        self._paused = False
        self._stopped = False
        self._finished = Deferred(lambda _: self.stopProducing())
        finished = self._finished
        self._run()
        return finished

    def _run(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            while not self._paused and not self._stopped:
                assert self._chunks is not None and self._consumer is not None
                try:
                    data = next(self._chunks)
                except StopIteration:
                    self._complete(None)
                    return
                except OSError as error:
                    self._complete(error)
                    return
                self._consumer.write(data)
        finally:
            self._running = False

    def _complete(self, error: Exception | None) -> None:
        finished, self._finished = self._finished, None
        self._stopped = True
        if finished is None:
            return
        if error is None:
            finished.callback(None)
        else:
            finished.errback(error)

    def pauseProducing(self) -> None:
        """Stop writing until `resumeProducing`."""
        self._paused = True

    def resumeProducing(self) -> None:
        """Continue writing."""
        self._paused = False
        if self._finished is not None:
            self._run()

    def stopProducing(self) -> None:
        """Stop for good; the `startProducing` Deferred never fires."""
        self._stopped = True
        self._finished = None
