# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
Finding and splitting message heads: start line plus field lines.

`HeadScanner` finds where a head (or a trailer section) ends in a growing
buffer, resuming each search where the last one stopped, and enforces the
line, section and count limits as soon as the buffered bytes prove them
exceeded. `split_request_head`, `split_response_head` and `split_fields` then
cut one complete head into its parts with one compiled regex per kind of line,
and only when that fast path fails walk the lines one by one to say precisely
what is wrong. Framing is decided elsewhere (`txhttp._wire._framing`).
Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from typing import Final

from txhttp._wire._errors import (
    BadHeaderField,
    BadStartLine,
    HeaderFieldTooLarge,
    HeaderSectionTooLarge,
    RemoteProtocolError,
    StartLineTooLong,
    UnsupportedVersion,
    preview,
)
from txhttp._wire._grammar import (
    ABSOLUTE_FORM_RE,
    AUTHORITY_FORM_RE,
    BARE_CR_OR_LF_RE,
    FIELD_LINE_RE,
    FIELD_VALUE_RE,
    REQUEST_LINE_RE,
    STATUS_LINE_RE,
    TOKEN,
    TOKEN_RE,
)
from txhttp._wire._limits import Limits
from txhttp._wire._message import HTTP_1_0, HTTP_1_1

FieldList = list[tuple[bytes, bytes]]
"""Fields as the splitters build them: (name as received, trimmed value)."""

_CR: Final = 13
_LF: Final = 10
_CONNECT: Final = b"CONNECT"
_OPTIONS: Final = b"OPTIONS"
_SLASH: Final = 47
_ZERO: Final = 48
_VERSIONS: Final = {HTTP_1_1: HTTP_1_1, HTTP_1_0: HTTP_1_0}
_VERSION_RE: Final = re.compile(rb"HTTP/[0-9]\.[0-9]")
_REQUEST_LINE_CRLF_RE: Final = re.compile(
    rb"(" + TOKEN + rb") ([\x21-\x7e]+) (HTTP/1\.[01])\r\n"
)
"""
`REQUEST_LINE_RE` and the CRLF ending the line, for ``match`` at offset 0,
narrowed to the two versions served: any other goes the careful way, which
names it (`UnsupportedVersion`), so the fast path needs no version lookup.
"""
_STATUS_LINE_CRLF_RE: Final = re.compile(STATUS_LINE_RE.pattern + rb"\r\n")
"""`STATUS_LINE_RE` and the CRLF ending the line, for ``match`` at offset 0."""


class HeadScanner:
    """
    Finds the end of a head in a buffer that grows between calls.

    The head starts at offset 0 of the buffer handed to `find_end`; the
    caller keeps the buffer between calls and calls `reset` once it removed
    a complete head. Work is linear in the bytes received: each call only
    searches bytes it has not searched before.
    """

    __slots__ = (
        "_count_limit",
        "_field_line_limit",
        "_fields",
        "_first_line_limit",
        "_has_start_line",
        "_line_start",
        "_search_from",
        "_section",
        "_section_limit",
        "_strict",
    )

    def __init__(
        self,
        *,
        strict: bool,
        has_start_line: bool,
        first_line_limit: int,
        field_line_limit: int,
        section_limit: int,
        count_limit: int,
        section: str = "header",
    ) -> None:
        """
        Args:
            strict: Lines must end in CRLF (requests, trailers); otherwise a
                bare LF also ends a line (responses, RFC 9112 section 2.2).
            has_start_line: The first line is a start line, not a field.
            first_line_limit: Longest start line (`StartLineTooLong`).
            field_line_limit: Longest field line (`HeaderFieldTooLarge`).
            section_limit: Longest section, line endings included
                (`HeaderSectionTooLarge`).
            count_limit: Most field lines (`HeaderSectionTooLarge`).
            section: ``"header"`` or ``"trailer"``, for error messages.
        """
        self._section = section
        self._strict = strict
        self._has_start_line = has_start_line
        self._first_line_limit = first_line_limit
        self._field_line_limit = field_line_limit
        self._section_limit = section_limit
        self._count_limit = count_limit
        self._line_start = 0
        self._search_from = 0
        self._fields = 0

    def is_fresh(self) -> bool:
        """True when nothing has been searched since the last `reset`."""
        return self._search_from == 0

    def reset(self) -> None:
        """Forget the head just removed from the buffer; the next starts at 0."""
        self._line_start = 0
        self._search_from = 0
        self._fields = 0

    def find_end(self, buf: bytearray) -> int:
        """
        Return the offset just past the head's final empty line, or -1.

        The error raised does not depend on how the input was cut: when
        several rules are broken, the one that the fewest bytes prove is
        reported, as if the bytes had come one at a time.

        Raises:
            StartLineTooLong: The start line is over its limit.
            HeaderFieldTooLarge: A field line is over its limit.
            HeaderSectionTooLarge: The section is over its byte or count limit.
            BadHeaderField: A bare LF ends a line where CRLF is required.
            BadStartLine: The start line is empty or ends in a bare LF.
        """
        pos = self._line_start
        search = self._search_from
        strict = self._strict
        while True:
            nl = buf.find(b"\n", search)
            if nl < 0:
                break
            # RFC 9112, section 2.2: lines end in CRLF; a recipient MAY take
            # a bare LF as a line end (we do so only for responses).
            crlf = nl > pos and buf[nl - 1] == _CR
            length = (nl - 1 if crlf else nl) - pos
            found = self._limit_error(buf, pos, length, nl + 1, final=not length)
            if found is not None and found[0] <= nl:
                raise found[1]  # proven before this line's LF arrived
            if not crlf and strict:
                raise self._bare_lf(buf, pos, nl)
            if not length and self._is_start_line(pos):
                raise BadStartLine("empty start line")
            if found is not None:
                raise found[1]
            search = nl + 1
            if not length:
                return search
            if not self._is_start_line(pos):
                self._fields += 1
            pos = search
        self._line_start = pos
        self._search_from = len(buf)
        # Nothing ends the head yet: do the bytes held prove a limit broken?
        partial = len(buf) - pos
        if partial and buf[-1] == _CR:
            partial -= 1
        found = self._limit_error(buf, pos, partial, len(buf), final=False)
        if found is not None:
            raise found[1]
        return -1

    def _is_start_line(self, pos: int) -> bool:
        return self._has_start_line and pos == 0

    def _limit_error(
        self, buf: bytearray, pos: int, length: int, held: int, *, final: bool
    ) -> tuple[int, RemoteProtocolError] | None:
        """
        The limit broken by the line at ``pos`` (``length`` bytes without its
        line ending) once ``held`` bytes are buffered, with the buffer length
        at which it was first proven; the earliest proven wins.
        """
        found: tuple[int, RemoteProtocolError] | None = None
        start = self._is_start_line(pos)
        limit = self._first_line_limit if start else self._field_line_limit
        if length > limit:
            line = preview(buf[pos : pos + length])
            if start:
                error: RemoteProtocolError = StartLineTooLong(
                    f"start line over {limit} bytes: {line}"
                )
            else:
                error = HeaderFieldTooLarge(
                    f"{self._section} field line over {limit} bytes: {line}"
                )
            found = (pos + limit + 1, error)
        counted = length and not start and self._fields >= self._count_limit
        if counted and (found is None or pos + 1 < found[0]):
            found = (
                pos + 1,
                HeaderSectionTooLarge(
                    f"more than {self._count_limit} {self._section} field lines"
                ),
            )
        section_limit = self._section_limit
        over = held > section_limit or (held == section_limit and not final)
        if over and (found is None or section_limit < found[0]):
            found = (
                section_limit,
                HeaderSectionTooLarge(
                    f"{self._section} section over {section_limit} bytes"
                ),
            )
        return found

    def _bare_lf(self, buf: bytearray, pos: int, nl: int) -> RemoteProtocolError:
        line = bytes(buf[pos : nl + 1])
        if self._is_start_line(pos):
            return BadStartLine(
                f"start line ends in a bare LF, not CRLF (RFC 9112, 2.2): "
                f"{preview(line)}"
            )
        return BadHeaderField(
            f"field line ends in a bare LF, not CRLF (RFC 9112, 2.2): {preview(line)}"
        )


# --- splitting complete heads ---------------------------------------------


def _fast_fields(
    head: bytes | bytearray, start: int, end: int, limits: Limits
) -> FieldList | None:
    """
    Fields of the CRLF-terminated lines in ``head[start:end]``, or ``None``.

    One ``findall`` over the section; it is valid exactly when every line
    matched, that is when there are as many matches as LFs (a match is one
    whole line, from a line start to its CRLF). ``None`` also when a line is
    unusual but maybe valid (trailing whitespace): the slow path decides.
    """
    fields: FieldList = FIELD_LINE_RE.findall(head, start, end)
    count = len(fields)
    if count != head.count(b"\n", start, end) or count > limits.max_header_count:
        return None
    if end - start > limits.max_field_line_bytes and _longest_line(head[start:end]) > (
        limits.max_field_line_bytes
    ):
        return None
    return fields


def _longest_line(block: bytes | bytearray) -> int:
    return max(map(len, block.split(b"\n"))) - 1


def split_fields(block: bytes, limits: Limits, *, trailers: bool = False) -> FieldList:
    """
    Split a strict field section (each line ending in CRLF) into fields.

    ``block`` holds the field lines and their CRLFs, without the final empty
    line. Line and count limits were enforced by `HeadScanner`.

    Raises:
        BadHeaderField: A line is not a valid field line.
    """
    fields = _fast_fields(block, 0, len(block), limits)
    if fields is not None:
        return fields
    return _slow_fields(block.split(b"\r\n")[:-1], trailers=trailers)


def _slow_fields(lines: list[bytes], *, trailers: bool = False) -> FieldList:
    """Check each strict field line in turn; raise for the first bad one."""
    fields = []
    for line in lines:
        check_field_line(line, strict=True, trailers=trailers)
        name, _, value = line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    return fields


def check_field_line(line: bytes, *, strict: bool, trailers: bool = False) -> None:
    """
    Raise `BadHeaderField` saying what is wrong with one field line, if any.

    Args:
        line: The line without its line ending.
        strict: obs-fold (a line starting with SP or HTAB) is an error;
            otherwise such a line is left for the caller to unfold.
        trailers: The line is in a trailer section (for the message).
    """
    section = "trailer" if trailers else "header"
    if line[:1] in (b" ", b"\t"):
        if strict:
            # RFC 9112, section 5.2: obs-fold is rejected in requests.
            raise BadHeaderField(
                f"obs-fold (line folding) in {section} section "
                f"(RFC 9112, 5.2): {preview(line)}"
            )
        return
    colon = line.find(b":")
    if colon < 0:
        raise BadHeaderField(f"{section} field line without a colon: {preview(line)}")
    name = line[:colon]
    if not name:
        raise BadHeaderField(f"{section} field with an empty name: {preview(line)}")
    if name[-1:] in (b" ", b"\t"):
        # RFC 9112, section 5.1: no whitespace between name and colon.
        raise BadHeaderField(
            f"whitespace between field name and colon (RFC 9112, 5.1): {preview(line)}"
        )
    if TOKEN_RE.fullmatch(name) is None:
        raise BadHeaderField(
            f"field name is not a token (RFC 9110, 5.1): {preview(name)}"
        )
    value = line[colon + 1 :].strip(b" \t")
    if FIELD_VALUE_RE.fullmatch(value) is None:
        bad = next(b for b in value if (b < 0x20 and b != 9) or b == 0x7F)
        raise BadHeaderField(
            f"field {preview(name)} has control character {bad:#04x} in its "
            f"value (RFC 9110, 5.5): {preview(value)}"
        )


def _check_line_endings(head: bytes) -> None:
    """Raise for the first bare CR or bare LF in a strict head."""
    bare = BARE_CR_OR_LF_RE.search(head)
    if bare is None:
        return
    first_line_end = head.find(b"\r\n")
    where = bare.start()
    what = "CR" if head[where] == _CR else "LF"
    if first_line_end < 0 or where < first_line_end:
        raise BadStartLine(
            f"bare {what} in start line (RFC 9112, 2.2): {preview(head[: where + 1])}"
        )
    line_start = head.rfind(b"\n", 0, where) + 1
    raise BadHeaderField(
        f"bare {what} in field line (RFC 9112, 2.2): "
        f"{preview(head[line_start : where + 1])}"
    )


def _target_fits_method(method: bytes, target: bytes) -> bool:
    # RFC 9112, section 3.2: the four forms of request-target.
    if method == _CONNECT:
        # authority-form, CONNECT only (RFC 9112, 3.2.3).
        return AUTHORITY_FORM_RE.fullmatch(target) is not None
    if target[0] == _SLASH:
        return True  # origin-form (RFC 9112, 3.2.1)
    if target == b"*":
        return method == _OPTIONS  # asterisk-form (RFC 9112, 3.2.4)
    return ABSOLUTE_FORM_RE.match(target) is not None  # absolute-form (3.2.2)


def fast_request_head(
    head: bytes | bytearray, limits: Limits, start: int = 0, end: int = -1
) -> tuple[bytes, bytes, bytes, FieldList] | None:
    """
    Split a common, valid request head with one regex per kind of line.

    The head is ``head[start:end]`` (``end`` -1: to the end), from the
    request line to the final CRLF CRLF included; a parser passes its buffer
    and offsets, so the head is never copied out first. Returns ``None`` on
    any doubt (invalid, over a limit, or merely unusual): then `HeadScanner`
    and `split_request_head` take over and decide.
    """
    if end < 0:
        end = len(head)
    # The request line and its CRLF in one match: no separate find.
    match = _REQUEST_LINE_CRLF_RE.match(head, start, end)
    if match is None:
        return None
    line_end = match.end()
    if line_end - start - 2 > limits.max_line_bytes:
        return None
    method, target, received_version = match.groups()
    # The regex took only HTTP/1.1 or HTTP/1.0: one compare picks the
    # shared constant.
    version = HTTP_1_1 if received_version == HTTP_1_1 else HTTP_1_0
    if (target[0] != _SLASH or method == _CONNECT) and not _target_fits_method(
        method, target
    ):
        return None
    # _fast_fields, inlined: this is the hottest path of the server.
    end -= 2
    fields: FieldList = FIELD_LINE_RE.findall(head, line_end, end)
    count = len(fields)
    if count != head.count(b"\n", line_end, end) or count > limits.max_header_count:
        return None
    if end - line_end > limits.max_field_line_bytes and _longest_line(
        head[line_end:end]
    ) > (limits.max_field_line_bytes):
        return None
    return method, target, version, fields


def split_request_head(
    head: bytes, limits: Limits
) -> tuple[bytes, bytes, bytes, FieldList]:
    """
    Split a complete request head into method, target, version and fields.

    ``head`` runs from the request line to the final empty line included,
    and `HeadScanner` has checked its line endings and limits. Strict: every
    line ends in CRLF, no obs-fold (RFC 9112, sections 2.2 and 5.2).

    Raises:
        BadStartLine: The request line is malformed.
        UnsupportedVersion: A well-formed version other than 1.0 and 1.1.
        BadHeaderField: A field line is malformed.
        StartLineTooLong: The request line is over its limit.
        HeaderFieldTooLarge: A field line is over its limit.
        HeaderSectionTooLarge: Too many fields.
    """
    result = fast_request_head(head, limits)
    if result is not None:
        return result
    return careful_request_head(head, limits)


def careful_request_head(
    head: bytes, limits: Limits
) -> tuple[bytes, bytes, bytes, FieldList]:
    """
    `split_request_head` without its fast path: every check, one at a time.

    Whatever `fast_request_head` accepts, this accepts with the same result;
    it also accepts the valid heads that are merely unusual (trailing
    whitespace in a value), and says precisely why it refuses the others.
    Tests hold the two to that.

    Raises:
        RemoteProtocolError: The subclass `split_request_head` names for the
            first rule broken.
    """
    _check_line_endings(head)
    eol = head.find(b"\r\n")
    line = head[:eol]
    if eol > limits.max_line_bytes:
        raise StartLineTooLong(
            f"request line over {limits.max_line_bytes} bytes: {preview(line)}"
        )
    match = REQUEST_LINE_RE.fullmatch(line)
    if match is None:
        raise BadStartLine(_request_line_problem(line))
    method, target, received_version = match.groups()
    version = _VERSIONS.get(received_version)
    if version is None:
        # RFC 9110, section 15.6.6: a version we do not support.
        raise UnsupportedVersion(
            f"HTTP version not supported: {preview(received_version)}"
        )
    if not _target_fits_method(method, target):
        raise BadStartLine(
            f"request-target {preview(target)} is not a valid form for "
            f"method {preview(method)} (RFC 9112, 3.2)"
        )
    lines = head[eol + 2 : -4].split(b"\r\n") if len(head) > eol + 4 else []
    _check_field_limits(lines, limits)
    return method, target, version, _slow_fields(lines)


def _check_field_limits(lines: list[bytes], limits: Limits) -> None:
    if len(lines) > limits.max_header_count:
        raise HeaderSectionTooLarge(f"more than {limits.max_header_count} field lines")
    for line in lines:
        if len(line) > limits.max_field_line_bytes:
            raise HeaderFieldTooLarge(
                f"field line over {limits.max_field_line_bytes} bytes: {preview(line)}"
            )


def _request_line_problem(line: bytes) -> str:
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        return (
            "request line is not method SP request-target SP HTTP-version "
            f"(RFC 9112, 3): {preview(line)}"
        )
    method, target, version = parts
    if TOKEN_RE.fullmatch(method) is None:
        return f"method is not a token (RFC 9110, 9.1): {preview(method)}"
    if _VERSION_RE.fullmatch(version) is None:
        return f"malformed HTTP version (RFC 9112, 2.3): {preview(version)}"
    return (
        "request-target has a control, space or non-ASCII byte "
        f"(RFC 9112, 3.2): {preview(target)}"
    )


def fast_response_head(
    head: bytes | bytearray, limits: Limits, start: int = 0, end: int = -1
) -> tuple[bytes, int, bytes, FieldList] | None:
    """
    Split a common, valid response head with one regex per kind of line.

    ``head[start:end]`` is the head, and ``None`` means doubt, as for
    `fast_request_head`.
    """
    if end < 0:
        end = len(head)
    # The status line and its CRLF in one match: no separate find.
    match = _STATUS_LINE_CRLF_RE.match(head, start, end)
    if match is None:
        return None
    line_end = match.end()
    if line_end - start - 2 > limits.max_line_bytes:
        return None
    received_version, status, reason = match.groups()
    version = _VERSIONS.get(received_version)
    if version is None or status[0] == _ZERO:  # "0xx" is no status code
        return None
    fields = _fast_fields(head, line_end, end - 2, limits)
    if fields is None:
        return None
    return version, int(status), reason or b"", fields


def split_response_head(
    head: bytes, limits: Limits
) -> tuple[bytes, int, bytes, FieldList]:
    """
    Split a complete response head into version, status, reason and fields.

    Lenient only where RFC 9112 lets a recipient be: a bare LF ends a line
    (section 2.2) and obs-fold is replaced by one SP (section 5.2). Control
    characters, bare CRs and malformed names are still rejected. Limits were
    enforced by `HeadScanner`.

    Raises:
        BadStartLine: The status line is malformed.
        UnsupportedVersion: A well-formed version other than 1.0 and 1.1.
        BadHeaderField: A field line is malformed.
    """
    if head.endswith(b"\r\n\r\n"):
        result = fast_response_head(head, limits)
        if result is not None:
            return result
    return careful_response_head(head)


def careful_response_head(head: bytes) -> tuple[bytes, int, bytes, FieldList]:
    """
    `split_response_head` without its fast path (see `careful_request_head`).

    Raises:
        RemoteProtocolError: The subclass `split_response_head` names for the
            first rule broken.
    """
    lines = [
        line[:-1] if line[-1:] == b"\r" else line for line in head.split(b"\n")[:-2]
    ]
    status_line = lines[0]
    match = STATUS_LINE_RE.fullmatch(status_line)
    if match is None:
        received_version = status_line[:8]
        if (
            _VERSION_RE.fullmatch(received_version) is not None
            and received_version not in _VERSIONS
            and status_line[8:9] == b" "
        ):
            raise UnsupportedVersion(
                f"HTTP version not supported: {preview(received_version)}"
            )
        raise BadStartLine(
            f"status line is not HTTP-version SP status-code SP reason "
            f"(RFC 9112, 4): {preview(status_line)}"
        )
    received_version, status, reason = match.groups()
    version = _VERSIONS.get(received_version)
    if version is None:
        raise UnsupportedVersion(
            f"HTTP version not supported: {preview(received_version)}"
        )
    if status[0] == _ZERO:
        raise BadStartLine(f"status code below 100 (RFC 9110, 15): {preview(status)}")
    fields: FieldList = []
    for line in lines[1:]:
        check_field_line(line, strict=False)
        if line[:1] in (b" ", b"\t"):
            if not fields:
                # RFC 9112, section 2.2: whitespace before the first field.
                raise BadHeaderField(
                    f"whitespace-preceded line before the first field "
                    f"(RFC 9112, 2.2): {preview(line)}"
                )
            folded = line.strip(b" \t")
            if FIELD_VALUE_RE.fullmatch(folded) is None:
                raise BadHeaderField(
                    f"control character in folded field value: {preview(line)}"
                )
            # RFC 9112, section 5.2: replace each obs-fold with SP.
            name, value = fields[-1]
            fields[-1] = (name, value + b" " + folded if value else folded)
            continue
        name, _, value = line.partition(b":")
        fields.append((name, value.strip(b" \t")))
    return version, int(status), reason or b"", fields
