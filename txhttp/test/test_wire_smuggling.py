# -*- test-case-name: txhttp.test.test_wire_smuggling -*-
"""
Hostile messages the wire core must refuse: request smuggling and friends.

Each row of `HOSTILE_REQUESTS` is a byte string a front end and a back end
could read differently (RFC 9112, sections 6.3 and 11.2): CL.TE, TE.CL,
obfuscated Transfer-Encoding, conflicting Content-Length, chunk-size tricks,
bare CR and LF, obs-fold, NUL, bad versions, Host games, oversized lines. Every
row becomes one test that feeds the bytes whole, one byte at a time, split at
every offset (short rows) and split at random points, and asserts the same
error class and status each time, that no request beyond the stated number of
honest ones is ever produced, and that the parser stays dead afterwards.

`LEGAL_LOOKALIKES` holds the near misses that RFC 9112 allows and that a
parser must therefore accept (``Transfer-Encoding:\\tchunked``, ``Chunked``,
identical Content-Length values...), so strictness is not bought with
rejecting valid traffic. `HOSTILE_RESPONSES` does the same for
`ResponseParser`.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from txhttp._wire import (
    BadChunk,
    BadFraming,
    BadHeaderField,
    BadHost,
    BadStartLine,
    BodyKind,
    BodyTooLarge,
    DuplicateField,
    HeaderFieldTooLarge,
    HeaderSectionTooLarge,
    RemoteProtocolError,
    RequestParser,
    StartLineTooLong,
    UnsupportedTransferCoding,
    UnsupportedVersion,
)
from txhttp.test.strategies import (
    one_byte_pieces,
    run_requests,
    run_responses,
    split_at,
)

# Building blocks. Each hostile row spells out its bytes; these only shorten
# the honest parts.
HOST = b"Host: example.com\r\n"
GET = b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"
"""An honest request, used before a hostile one in pipelining rows."""
POST = b"POST / HTTP/1.1\r\n" + HOST
"""The start of a request head, up to and including Host."""
CHUNKED_HEAD = POST + b"Transfer-Encoding: chunked\r\n\r\n"
"""A complete, valid chunked request head; chunk rows append to it."""


def post(*lines: bytes, body: bytes = b"") -> bytes:
    """A POST head with Host, then ``lines`` as field lines, then ``body``."""
    return POST + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


def request_line(line: bytes, *lines: bytes) -> bytes:
    """``line`` as the request line, then Host and ``lines`` as fields."""
    return line + b"\r\n" + HOST + b"".join(f + b"\r\n" for f in lines) + b"\r\n"


@dataclass(frozen=True, slots=True)
class Hostile:
    """
    One hostile input and how it must be refused.

    Attributes:
        name: Identifier; the test is ``test_<name>``.
        summary: What the bytes try, for the test's docstring.
        data: The bytes, complete enough that no EOF is needed to refuse them.
        error: The error class expected; `RemoteProtocolError` itself where
            the contract leaves the class open.
        status: The status the error must carry.
        heads: Honest request heads allowed before the error (pipelined
            requests before the hostile one, or the head of a request whose
            chunked body is hostile). Never more.
    """

    name: str
    summary: str
    data: bytes
    error: type[RemoteProtocolError]
    status: int
    heads: int = 0


H = Hostile
_TE = b"Transfer-Encoding"
_CL = b"Content-Length"

HOSTILE_REQUESTS: Sequence[Hostile] = (
    # CL.TE and TE.CL: both framing fields (RFC 9112, 6.1 and 6.3).
    H(
        "cl_te",
        "Content-Length before Transfer-Encoding (CL.TE)",
        post(b"Content-Length: 6", b"Transfer-Encoding: chunked", body=b"0\r\n\r\nG"),
        BadFraming,
        400,
    ),
    H(
        "te_cl",
        "Transfer-Encoding before Content-Length (TE.CL)",
        post(
            b"Transfer-Encoding: chunked",
            b"Content-Length: 4",
            body=b"5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
        ),
        BadFraming,
        400,
    ),
    H(
        "cl_te_lowercase_names",
        "CL.TE with lower-case field names",
        post(b"content-length: 4", b"transfer-encoding: chunked", body=b"0\r\n\r\n"),
        BadFraming,
        400,
    ),
    H(
        "cl_te_upper_case_coding",
        "CL.TE with the coding spelled CHUNKED",
        post(b"Content-Length: 4", b"Transfer-Encoding: CHUNKED", body=b"0\r\n\r\n"),
        BadFraming,
        400,
    ),
    H(
        "cl_te_in_http_1_0",
        "CL.TE in an HTTP/1.0 request",
        b"POST / HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n",
        BadFraming,
        400,
    ),
    H(
        "te_in_http_1_0",
        "Transfer-Encoding in an HTTP/1.0 request (RFC 9112, 6.1)",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        BadFraming,
        400,
    ),
    H(
        "cl_te_after_honest_request",
        "CL.TE in the second of two pipelined requests",
        GET + post(b"Content-Length: 4", b"Transfer-Encoding: chunked"),
        BadFraming,
        400,
        heads=1,
    ),
    # TE.TE: obfuscated Transfer-Encoding (RFC 9112, 6.1 and 7).
    H(
        "te_chunked_then_identity",
        "Transfer-Encoding: chunked, identity (chunked not last)",
        post(b"Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"),
        BadFraming,
        400,
    ),
    H(
        "te_chunked_twice_one_line",
        "Transfer-Encoding: chunked, chunked",
        post(b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"),
        BadFraming,
        400,
    ),
    H(
        "te_chunked_twice_two_lines",
        "two Transfer-Encoding: chunked lines",
        post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"),
        BadFraming,
        400,
    ),
    H(
        "te_chunked_then_other_line",
        "Transfer-Encoding: chunked, then Transfer-Encoding: x",
        post(b"Transfer-Encoding: chunked", b"Transfer-Encoding: x"),
        BadFraming,
        400,
    ),
    H(
        "te_unknown_coding_before_chunked",
        "Transfer-Encoding: gzip, chunked (unsupported coding)",
        post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"),
        UnsupportedTransferCoding,
        501,
    ),
    H(
        "te_unknown_coding_line_before_chunked",
        "Transfer-Encoding: x and Transfer-Encoding: chunked lines",
        post(b"Transfer-Encoding: x", b"Transfer-Encoding: chunked"),
        UnsupportedTransferCoding,
        501,
    ),
    H(
        "te_space_before_colon",
        "Transfer-Encoding : chunked (whitespace before the colon, RFC 9112, 5.1)",
        post(b"Transfer-Encoding : chunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_tab_before_colon",
        "Transfer-Encoding<TAB>: chunked",
        post(b"Transfer-Encoding\t: chunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_vertical_tab_before_value",
        "Transfer-Encoding:<VT>chunked",
        post(b"Transfer-Encoding:\x0bchunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_form_feed_after_value",
        "Transfer-Encoding: chunked<FF>",
        post(b"Transfer-Encoding: chunked\x0c", body=b"0\r\n\r\n"),
        BadHeaderField,
        400,
    ),
    H(
        "te_nul_in_value",
        "Transfer-Encoding: chunked<NUL>",
        post(b"Transfer-Encoding: chunked\x00", body=b"0\r\n\r\n"),
        BadHeaderField,
        400,
    ),
    H(
        "te_nul_in_name",
        "Transfer-Encoding<NUL>: chunked",
        post(b"Transfer-Encoding\x00: chunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_obs_fold",
        "Transfer-Encoding folded onto a continuation line (obs-fold, RFC 9112, 5.2)",
        post(b"Transfer-Encoding:", b" chunked", body=b"0\r\n\r\n"),
        BadHeaderField,
        400,
    ),
    H(
        "te_line_with_leading_space",
        "a Transfer-Encoding line starting with a space after another field",
        post(
            b"X-A: b", b" Transfer-Encoding: chunked", b"Content-Length: 3", body=b"a"
        ),
        BadHeaderField,
        400,
    ),
    H(
        "te_first_field_line_indented",
        "whitespace between the request line and the first field (RFC 9112, 2.2)",
        b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + HOST + b"\r\n",
        BadHeaderField,
        400,
    ),
    H(
        "te_hidden_behind_bare_lf",
        "Transfer-Encoding after a bare LF inside another field line",
        post(b"X-A: b\nTransfer-Encoding: chunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_hidden_behind_bare_cr",
        "Transfer-Encoding after a bare CR inside another field line",
        post(b"X-A: b\rTransfer-Encoding: chunked", b"Content-Length: 3", body=b"abc"),
        BadHeaderField,
        400,
    ),
    H(
        "te_value_ends_in_bare_cr",
        "Transfer-Encoding: chunked<CR><CR><LF>",
        post(b"Transfer-Encoding: chunked\r", body=b"0\r\n\r\n"),
        BadHeaderField,
        400,
    ),
    # Content-Length: 1*DIGIT, identical duplicates only (RFC 9110, 8.6).
    H(
        "cl_two_values_one_line",
        "Content-Length: 5, 6",
        post(b"Content-Length: 5, 6", body=b"hello!"),
        RemoteProtocolError,
        400,
    ),
    H(
        "cl_two_lines_differ",
        "Content-Length: 5 and Content-Length: 6 lines",
        post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
        RemoteProtocolError,
        400,
    ),
    H(
        "cl_zero_then_length",
        "Content-Length: 0 then Content-Length: 44 (CL.CL)",
        post(b"Content-Length: 0", b"Content-Length: 44", body=b"GET / HTTP/1.1"),
        RemoteProtocolError,
        400,
    ),
    H(
        "cl_plus_sign",
        "Content-Length: +5",
        post(b"Content-Length: +5", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_negative",
        "Content-Length: -1",
        post(b"Content-Length: -1"),
        BadFraming,
        400,
    ),
    H(
        "cl_negative_zero",
        "Content-Length: -0",
        post(b"Content-Length: -0"),
        BadFraming,
        400,
    ),
    H(
        "cl_hex",
        "Content-Length: 0x5",
        post(b"Content-Length: 0x5", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_inner_space",
        "Content-Length:  5 5 (a space between digits)",
        post(b"Content-Length:  5 5", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_decimal_point",
        "Content-Length: 5.0",
        post(b"Content-Length: 5.0", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_exponent",
        "Content-Length: 1e1",
        post(b"Content-Length: 1e1", body=b"0123456789"),
        BadFraming,
        400,
    ),
    H(
        "cl_empty",
        "an empty Content-Length",
        post(b"Content-Length: "),
        BadFraming,
        400,
    ),
    H(
        "cl_trailing_comma",
        "Content-Length: 5, (an empty list member)",
        post(b"Content-Length: 5,", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_non_ascii_digit",
        "Content-Length in a full-width digit (U+FF15)",
        post(b"Content-Length: \xef\xbc\x95", body=b"hello"),
        BadFraming,
        400,
    ),
    H(
        "cl_vertical_tab",
        "Content-Length: 5<VT>",
        post(b"Content-Length: 5\x0b", body=b"hello"),
        BadHeaderField,
        400,
    ),
    H(
        "cl_nul",
        "Content-Length: 5<NUL>",
        post(b"Content-Length: 5\x00", body=b"hello"),
        BadHeaderField,
        400,
    ),
    H(
        "cl_space_before_colon",
        "Content-Length : 5",
        post(b"Content-Length : 5", body=b"hello"),
        BadHeaderField,
        400,
    ),
    H(
        "cl_over_body_limit",
        "a Content-Length over Limits.max_body_bytes",
        post(b"Content-Length: 67108865"),
        BodyTooLarge,
        413,
    ),
    H(
        "cl_huge_digit_count",
        "a Content-Length of 40 nines (overflow in fixed-width integers)",
        post(b"Content-Length: " + b"9" * 40),
        BadFraming,
        400,
    ),
    H(
        "cl_leading_zero_flood",
        "a Content-Length of 200 zeros and a 5 (digit count unbounded)",
        post(b"Content-Length: " + b"0" * 200 + b"5", body=b"hello"),
        BadFraming,
        400,
    ),
    # Chunk-size lines and chunk data (RFC 9112, 7.1); the head is valid.
    H(
        "chunk_size_hex_prefix",
        "chunk size 0x5",
        CHUNKED_HEAD + b"0x5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_negative",
        "chunk size -5",
        CHUNKED_HEAD + b"-5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_plus",
        "chunk size +5",
        CHUNKED_HEAD + b"+5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_space_then_semicolon",
        "chunk size '5 ;' (an extension without a name)",
        CHUNKED_HEAD + b"5 ;\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_trailing_space",
        "chunk size '5 ' (whitespace and no extension)",
        CHUNKED_HEAD + b"5 \r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_leading_space",
        "chunk size ' 5'",
        CHUNKED_HEAD + b" 5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_empty",
        "an empty chunk-size line",
        CHUNKED_HEAD + b"\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_not_hex",
        "chunk size g",
        CHUNKED_HEAD + b"g\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_huge_hex",
        "a chunk size of 20 hex digits (64-bit overflow)",
        CHUNKED_HEAD + b"f" * 20 + b"\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_leading_zero_flood",
        "a chunk size of 2000 zeros and a 5 (over the chunk line limit)",
        CHUNKED_HEAD + b"0" * 2000 + b"5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_data_without_crlf",
        "chunk data followed by other bytes instead of CRLF",
        CHUNKED_HEAD + b"5\r\nhelloXX\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_data_longer_than_size",
        "chunk size 3 with five bytes of data",
        CHUNKED_HEAD + b"3\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_data_then_bare_lf",
        "a bare LF after chunk data",
        CHUNKED_HEAD + b"5\r\nhello\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_data_then_bare_cr",
        "a bare CR after chunk data",
        CHUNKED_HEAD + b"5\r\nhello\r0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_line_bare_lf",
        "a chunk-size line ended by a bare LF",
        CHUNKED_HEAD + b"5\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_size_line_bare_cr",
        "a chunk-size line ended by a bare CR",
        CHUNKED_HEAD + b"5\rhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_empty_name",
        "chunk extension ';' without a name",
        CHUNKED_HEAD + b"5;\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_empty_value",
        "chunk extension 'a=' without a value",
        CHUNKED_HEAD + b"5;a=\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_unterminated_quote",
        "chunk extension with an unterminated quoted string",
        CHUNKED_HEAD + b'5;a="b\r\nhello\r\n0\r\n\r\n',
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_space_in_name",
        "chunk extension name with a space in it",
        CHUNKED_HEAD + b"5;a b\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_nul",
        "chunk extension with a NUL",
        CHUNKED_HEAD + b"5;a\x00\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "chunk_ext_too_long",
        "a 2000-byte chunk extension (over the chunk line limit)",
        CHUNKED_HEAD + b"5;a=" + b"b" * 2000 + b"\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    H(
        "trailer_obs_fold",
        "a folded trailer field",
        CHUNKED_HEAD + b"0\r\nX-T: a\r\n b\r\n\r\n",
        BadHeaderField,
        400,
        heads=1,
    ),
    H(
        "trailer_nul",
        "a trailer value with a NUL",
        CHUNKED_HEAD + b"0\r\nX-T: a\x00b\r\n\r\n",
        BadHeaderField,
        400,
        heads=1,
    ),
    H(
        "trailer_without_colon",
        "a trailer line without a colon",
        CHUNKED_HEAD + b"0\r\nX-T a\r\n\r\n",
        BadHeaderField,
        400,
        heads=1,
    ),
    H(
        "trailer_section_ended_by_bare_lf",
        "a trailer section ended by a bare LF, then a request",
        CHUNKED_HEAD + b"0\r\n\n" + GET,
        BadHeaderField,
        400,
        heads=1,
    ),
    H(
        "trailer_section_too_large",
        "40 trailer fields of 500 bytes (over the trailer limit)",
        CHUNKED_HEAD
        + b"0\r\n"
        + b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 500) for i in range(40))
        + b"\r\n",
        HeaderSectionTooLarge,
        431,
        heads=1,
    ),
    # Request line (RFC 9112, section 3) and version (RFC 9112, 2.3).
    H(
        "version_1_2",
        "HTTP/1.2",
        request_line(b"GET / HTTP/1.2"),
        UnsupportedVersion,
        505,
    ),
    H(
        "version_2_0",
        "HTTP/2.0 in an HTTP/1 request line",
        request_line(b"GET / HTTP/2.0"),
        UnsupportedVersion,
        505,
    ),
    H(
        "version_0_9_explicit",
        "HTTP/0.9 spelled out",
        request_line(b"GET / HTTP/0.9"),
        UnsupportedVersion,
        505,
    ),
    H(
        "version_trailing_space",
        "'HTTP/1.1 ' with a trailing space",
        request_line(b"GET / HTTP/1.1 "),
        BadStartLine,
        400,
    ),
    H(
        "version_lower_case",
        "http/1.1 (the name is case-sensitive)",
        request_line(b"GET / http/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "version_two_digit_minor",
        "HTTP/1.01",
        request_line(b"GET / HTTP/1.01"),
        BadStartLine,
        400,
    ),
    H(
        "version_without_minor",
        "HTTP/1",
        request_line(b"GET / HTTP/1"),
        BadStartLine,
        400,
    ),
    H(
        "version_missing",
        "a request line without a version (HTTP/0.9 style)",
        request_line(b"GET /"),
        BadStartLine,
        400,
    ),
    H(
        "version_non_ascii_digit",
        "HTTP/1.<ARABIC-INDIC DIGIT ONE>",
        request_line(b"GET / HTTP/1.\xd9\xa1"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_two_spaces",
        "two spaces between method and target",
        request_line(b"GET  / HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_tab",
        "a tab between method and target",
        request_line(b"GET\t/ HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_leading_space",
        "a space before the method",
        request_line(b" GET / HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "method_not_a_token",
        "a method with a delimiter in it",
        request_line(b"G(ET / HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "method_nul",
        "a method with a NUL in it",
        request_line(b"G\x00ET / HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "target_nul",
        "a target with a NUL in it",
        request_line(b"GET /a\x00b HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "target_del",
        "a target with a DEL in it",
        request_line(b"GET /a\x7fb HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "target_space",
        "a target with a space in it",
        request_line(b"GET /a b HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "target_bare_cr",
        "a target with a bare CR in it",
        request_line(b"GET /a\rb HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_ends_in_bare_cr",
        "a request line ended by CR CR LF",
        request_line(b"GET / HTTP/1.1\r"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_ends_in_bare_lf",
        "a request line ended by a bare LF",
        b"GET / HTTP/1.1\n" + HOST + b"\r\n",
        BadStartLine,
        400,
    ),
    H(
        "bare_lf_request_then_crlf_request",
        "a request written with bare LFs, then one with CRLFs",
        b"GET /a HTTP/1.1\nHost: example.com\n\n" + GET,
        BadStartLine,
        400,
    ),
    H(
        "leading_bare_lf",
        "a bare LF before the request line",
        b"\n" + GET,
        BadStartLine,
        400,
    ),
    H(
        "too_many_leading_empty_lines",
        "nine empty lines before the request line",
        b"\r\n" * 9 + GET,
        BadStartLine,
        400,
    ),
    H(
        "authority_form_with_get",
        "authority-form with GET (CONNECT only, RFC 9112, 3.2.3)",
        request_line(b"GET 127.0.0.1:8080 HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "asterisk_form_with_get",
        "asterisk-form with GET (OPTIONS only, RFC 9112, 3.2.4)",
        request_line(b"GET * HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "origin_form_with_connect",
        "CONNECT with an origin-form target",
        request_line(b"CONNECT / HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "relative_target",
        "a relative target (not origin, absolute, authority or asterisk form)",
        request_line(b"GET index.html HTTP/1.1"),
        BadStartLine,
        400,
    ),
    H(
        "request_line_too_long",
        "a request line over Limits.max_line_bytes",
        request_line(b"GET /" + b"a" * 9000 + b" HTTP/1.1"),
        StartLineTooLong,
        414,
    ),
    H(
        "request_line_never_ends",
        "9000 bytes of request line and no CRLF yet",
        b"GET /" + b"a" * 9000,
        StartLineTooLong,
        414,
    ),
    # Field lines (RFC 9112, section 5; RFC 9110, 5.5).
    H(
        "field_without_colon",
        "a field line without a colon",
        post(b"X-A b"),
        BadHeaderField,
        400,
    ),
    H(
        "field_empty_name",
        "a field line with an empty name",
        post(b": b"),
        BadHeaderField,
        400,
    ),
    H(
        "field_name_delimiter",
        "a field name with a delimiter in it",
        post(b"X(A): b"),
        BadHeaderField,
        400,
    ),
    H(
        "field_name_nul",
        "a field name with a NUL in it",
        post(b"X\x00A: b"),
        BadHeaderField,
        400,
    ),
    H(
        "field_name_non_ascii",
        "a field name with non-ASCII bytes",
        post(b"X-\xc3\xa9: b"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_nul",
        "a field value with a NUL in it",
        post(b"X-A: b\x00c"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_ctl",
        "a field value with a SOH in it",
        post(b"X-A: b\x01c"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_del",
        "a field value with a DEL in it",
        post(b"X-A: b\x7fc"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_vertical_tab",
        "a field value with a vertical tab in it",
        post(b"X-A: b\x0bc"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_form_feed",
        "a field value with a form feed in it",
        post(b"X-A: b\x0cc"),
        BadHeaderField,
        400,
    ),
    H(
        "field_value_bare_cr",
        "a field value with a bare CR in it",
        post(b"X-A: b\rc"),
        BadHeaderField,
        400,
    ),
    H(
        "field_line_ends_in_bare_lf",
        "a field line ended by a bare LF",
        post(b"X-A: b\nX-B: c"),
        BadHeaderField,
        400,
    ),
    H(
        "obs_fold_space",
        "obs-fold with a space",
        post(b"X-A: b", b" c"),
        BadHeaderField,
        400,
    ),
    H(
        "obs_fold_tab",
        "obs-fold with a tab",
        post(b"X-A: b", b"\tc"),
        BadHeaderField,
        400,
    ),
    H(
        "header_section_ended_by_bare_lf",
        "a header section ended by a bare LF, then a request",
        POST + b"\n" + GET,
        BadHeaderField,
        400,
    ),
    H(
        "header_section_ended_by_bare_cr",
        "a header section ended by CR CR LF, then a request",
        POST + b"\r\r\n" + GET,
        BadHeaderField,
        400,
    ),
    H(
        "field_line_too_long",
        "a field line over Limits.max_field_line_bytes",
        post(b"X-A: " + b"b" * 9000),
        HeaderFieldTooLarge,
        431,
    ),
    H(
        "field_line_never_ends",
        "9000 bytes of field line and no CRLF yet",
        POST + b"X-A: " + b"b" * 9000,
        HeaderFieldTooLarge,
        431,
    ),
    H(
        "header_section_too_large",
        "90 field lines of 800 bytes (over the header section limit)",
        post(*(b"X-%d: %s" % (i, b"v" * 800) for i in range(90))),
        HeaderSectionTooLarge,
        431,
    ),
    H(
        "too_many_fields",
        "101 field lines (over Limits.max_header_count)",
        post(*(b"X-%d: v" % i for i in range(101))),
        HeaderSectionTooLarge,
        431,
    ),
    H(
        "content_type_twice",
        "two different Content-Type values",
        post(b"Content-Type: text/plain", b"Content-Type: application/json"),
        DuplicateField,
        400,
    ),
    # Host (RFC 9112, 3.2).
    H(
        "host_missing",
        "an HTTP/1.1 request without Host",
        b"GET / HTTP/1.1\r\n\r\n",
        BadHost,
        400,
    ),
    H(
        "host_twice",
        "two different Host values",
        request_line(b"GET / HTTP/1.1", b"Host: evil.example"),
        BadHost,
        400,
    ),
    H(
        "host_twice_same_value",
        "the same Host twice",
        request_line(b"GET / HTTP/1.1", b"Host: example.com"),
        BadHost,
        400,
    ),
    H(
        "host_twice_other_case",
        "Host and host",
        request_line(b"GET / HTTP/1.1", b"host: evil.example"),
        BadHost,
        400,
    ),
    H(
        "host_twice_http_1_0",
        "two Host values in an HTTP/1.0 request",
        request_line(b"GET / HTTP/1.0", b"Host: evil.example"),
        BadHost,
        400,
    ),
    H(
        "host_with_space",
        "Host: example.com evil.example",
        b"GET / HTTP/1.1\r\nHost: example.com evil.example\r\n\r\n",
        BadHost,
        400,
    ),
    H(
        "host_list",
        "Host: example.com, evil.example",
        b"GET / HTTP/1.1\r\nHost: example.com, evil.example\r\n\r\n",
        BadHost,
        400,
    ),
    H(
        "host_with_path",
        "Host: evil.example/x",
        b"GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n",
        BadHost,
        400,
    ),
    H(
        "host_with_userinfo",
        "Host: user@evil.example",
        b"GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n",
        BadHost,
        400,
    ),
    H(
        "host_missing_in_second_request",
        "a pipelined second request without Host",
        GET + b"GET /b HTTP/1.1\r\n\r\n",
        BadHost,
        400,
        heads=1,
    ),
    H(
        "bad_version_after_body",
        "a Content-Length body, then a request line with HTTP/1.2",
        post(b"Content-Length: 5", body=b"hello") + request_line(b"GET / HTTP/1.2"),
        UnsupportedVersion,
        505,
        heads=1,
    ),
)

RANDOM_SPLITS = 4
"""Random splittings tried per row, on top of whole, 1-byte and every-offset."""

EVERY_OFFSET_UP_TO = 600
"""Rows up to this many bytes are also split in two at every offset."""


def _requests_seen(outcome: Sequence[object]) -> int:
    """How many request heads a `run_requests` outcome holds."""
    return sum(1 for e in outcome if isinstance(e, tuple) and e and e[0] == "request")


def _feedings(data: bytes, seed: str) -> list[tuple[str, list[bytes]]]:
    """Every way a row is fed: whole, by byte, at each offset, at random."""
    ways = [("whole", [data]), ("one byte at a time", one_byte_pieces(data))]
    if len(data) <= EVERY_OFFSET_UP_TO:
        ways += [(f"split at {i}", [data[:i], data[i:]]) for i in range(1, len(data))]
    rng = random.Random(zlib.crc32(seed.encode()))
    for _ in range(RANDOM_SPLITS):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 8))]
        ways.append((f"split at {sorted(set(cuts))}", split_at(data, cuts)))
    return ways


class RequestSmugglingTests(SynchronousTestCase):
    """Every row of `HOSTILE_REQUESTS` is refused the same way however it is fed."""

    def check_refused(self, row: Hostile) -> None:
        """
        Feed ``row`` every way; each must end in the row's error and status
        before any EOF, with at most ``row.heads`` request heads before it.
        """
        for how, pieces in _feedings(row.data, row.name):
            parser = RequestParser()
            outcome = run_requests(pieces, eof=False, parser=parser)
            last = outcome[-1] if outcome else None
            self.assertTrue(
                isinstance(last, tuple) and last[0] == "error",
                f"{row.name} fed {how}: accepted, events {outcome!r}",
            )
            assert isinstance(last, tuple)
            _, error, status = last
            self.assertTrue(
                issubclass(error, row.error),
                f"{row.name} fed {how}: {error.__name__}, not {row.error.__name__}",
            )
            self.assertEqual(status, row.status, f"{row.name} fed {how}: status")
            self.assertEqual(
                _requests_seen(outcome), row.heads, f"{row.name} fed {how}: heads"
            )
            with self.assertRaises(error, msg=f"{row.name} fed {how}: parser revived"):
                parser.next_event()
            with self.assertRaises(error, msg=f"{row.name} fed {how}: revived by feed"):
                parser.feed(GET)
                parser.next_event()

    def test_table_is_large_and_unique(self) -> None:
        """The table holds at least 70 rows, each with its own name and bytes."""
        self.assertGreaterEqual(len(HOSTILE_REQUESTS), 70)
        self.assertEqual(len({r.name for r in HOSTILE_REQUESTS}), len(HOSTILE_REQUESTS))
        self.assertEqual(len({r.data for r in HOSTILE_REQUESTS}), len(HOSTILE_REQUESTS))


def _refusal_test(row: Hostile) -> Callable[[RequestSmugglingTests], None]:
    def test(self: RequestSmugglingTests) -> None:
        self.check_refused(row)

    test.__name__ = f"test_{row.name}"
    test.__doc__ = (
        f"{row.summary[0].upper()}{row.summary[1:]} is refused with"
        f" {row.error.__name__} ({row.status})."
    )
    return test


for _row in HOSTILE_REQUESTS:
    setattr(RequestSmugglingTests, f"test_{_row.name}", _refusal_test(_row))
del _row


@dataclass(frozen=True, slots=True)
class Lookalike:
    """
    Bytes that look hostile but are valid HTTP/1.1, and what they parse to.

    Attributes:
        name: Identifier; the test is ``test_<name>``.
        summary: What makes it look suspicious, for the docstring.
        data: One complete request.
        kind: The framing the head must report.
        body: The de-framed body.
        field: A (name, value) pair the head must hold, value trimmed, if any.
    """

    name: str
    summary: str
    data: bytes
    kind: BodyKind
    body: bytes = b""
    field: tuple[bytes, bytes] | None = None


L = Lookalike

LEGAL_LOOKALIKES: Sequence[Lookalike] = (
    L(
        "te_tab_after_colon",
        "Transfer-Encoding:<TAB>chunked (OWS may be a tab, RFC 9110, 5.6.3)",
        post(b"Transfer-Encoding:\tchunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
        BodyKind.CHUNKED,
        b"abc",
        (_TE, b"chunked"),
    ),
    L(
        "te_surrounding_whitespace",
        "Transfer-Encoding:  chunked <TAB> (OWS on both sides is trimmed)",
        post(b"Transfer-Encoding:  chunked \t", body=b"3\r\nabc\r\n0\r\n\r\n"),
        BodyKind.CHUNKED,
        b"abc",
        (_TE, b"chunked"),
    ),
    L(
        "te_no_space_after_colon",
        "Transfer-Encoding:chunked (OWS may be empty)",
        post(b"Transfer-Encoding:chunked", body=b"0\r\n\r\n"),
        BodyKind.CHUNKED,
    ),
    L(
        "te_coding_upper_case",
        "Transfer-Encoding: CHUNKED (codings are case-insensitive, RFC 9112, 7)",
        post(b"Transfer-Encoding: CHUNKED", body=b"3\r\nabc\r\n0\r\n\r\n"),
        BodyKind.CHUNKED,
        b"abc",
    ),
    L(
        "te_name_lower_case",
        "transfer-encoding: chunked (names are case-insensitive, RFC 9110, 5.1)",
        post(b"transfer-encoding: chunked", body=b"3\r\nabc\r\n0\r\n\r\n"),
        BodyKind.CHUNKED,
        b"abc",
    ),
    L(
        "te_lookalike_name",
        "Transfer_Encoding: chunked is another field; Content-Length frames",
        post(b"Transfer_Encoding: chunked", b"Content-Length: 3", body=b"abc"),
        BodyKind.LENGTH,
        b"abc",
        (b"Transfer_Encoding", b"chunked"),
    ),
    L(
        "cl_identical_lines",
        "two identical Content-Length lines (RFC 9110, 8.6)",
        post(b"Content-Length: 3", b"Content-Length: 3", body=b"abc"),
        BodyKind.LENGTH,
        b"abc",
    ),
    L(
        "cl_identical_list",
        "Content-Length: 3, 3 (identical values, RFC 9110, 8.6)",
        post(b"Content-Length: 3, 3", body=b"abc"),
        BodyKind.LENGTH,
        b"abc",
    ),
    L(
        "cl_leading_zeros",
        "Content-Length: 003 (1*DIGIT allows leading zeros)",
        post(b"Content-Length: 003", body=b"abc"),
        BodyKind.LENGTH,
        b"abc",
    ),
    L(
        "chunk_size_upper_hex_and_zeros",
        "chunk sizes 00A and 000 (HEXDIG is case-insensitive, zeros allowed)",
        CHUNKED_HEAD + b"00A\r\n0123456789\r\n000\r\n\r\n",
        BodyKind.CHUNKED,
        b"0123456789",
    ),
    L(
        "chunk_extensions",
        "chunk extensions with token and quoted values (RFC 9112, 7.1.1)",
        CHUNKED_HEAD + b'3;a=b;c="d;\\"e"\r\nabc\r\n0;z\r\n\r\n',
        BodyKind.CHUNKED,
        b"abc",
    ),
    L(
        "one_leading_empty_line",
        "one CRLF before the request line (RFC 9112, 2.2)",
        b"\r\n" + GET,
        BodyKind.NONE,
    ),
    L(
        "obs_text_value",
        "a field value with obs-text bytes (RFC 9110, 5.5)",
        post(b"X-A: caf\xc3\xa9 \xff"),
        BodyKind.NONE,
        b"",
        (b"X-A", b"caf\xc3\xa9 \xff"),
    ),
    L(
        "empty_host",
        "an empty Host (allowed when the target has no authority, RFC 9112, 3.2)",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        BodyKind.NONE,
        b"",
        (b"Host", b""),
    ),
    L(
        "http_1_0_without_host",
        "an HTTP/1.0 request without Host",
        b"GET / HTTP/1.0\r\n\r\n",
        BodyKind.NONE,
    ),
    L(
        "asterisk_form_options",
        "OPTIONS * (asterisk-form, RFC 9112, 3.2.4)",
        request_line(b"OPTIONS * HTTP/1.1"),
        BodyKind.NONE,
    ),
    L(
        "authority_form_connect",
        "CONNECT example.com:443 (authority-form, RFC 9112, 3.2.3)",
        request_line(b"CONNECT example.com:443 HTTP/1.1"),
        BodyKind.NONE,
    ),
    L(
        "absolute_form",
        "an absolute-form target (RFC 9112, 3.2.2)",
        request_line(b"GET http://example.com/a?b HTTP/1.1"),
        BodyKind.NONE,
    ),
    L(
        "trailers",
        "trailer fields after the last chunk",
        CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        BodyKind.CHUNKED,
        b"abc",
    ),
)


class LegalLookalikeTests(SynchronousTestCase):
    """Every row of `LEGAL_LOOKALIKES` parses, the same however it is fed."""

    def check_accepted(self, row: Lookalike) -> None:
        """Feed ``row`` every way; each gives one request, the same events."""
        whole = run_requests([row.data])
        self.assertEqual(whole[-1], "closed", f"{row.name}: {whole!r}")
        self.assertEqual(_requests_seen(whole), 1)
        head = whole[0]
        assert isinstance(head, tuple)
        framing = head[5]
        self.assertEqual(framing.kind, row.kind)
        data = b"".join(e for e in whole if isinstance(e, bytes))
        self.assertEqual(data, row.body)
        if row.field is not None:
            self.assertIn(row.field, head[4])
        for how, pieces in _feedings(row.data, row.name)[1:]:
            self.assertEqual(run_requests(pieces), whole, f"{row.name} fed {how}")

    def test_table_is_unique(self) -> None:
        """Every look-alike row has its own name."""
        self.assertEqual(len({r.name for r in LEGAL_LOOKALIKES}), len(LEGAL_LOOKALIKES))


def _acceptance_test(row: Lookalike) -> Callable[[LegalLookalikeTests], None]:
    def test(self: LegalLookalikeTests) -> None:
        self.check_accepted(row)

    test.__name__ = f"test_{row.name}"
    test.__doc__ = f"{row.summary[0].upper()}{row.summary[1:]} is accepted."
    return test


for _legal in LEGAL_LOOKALIKES:
    setattr(LegalLookalikeTests, f"test_{_legal.name}", _acceptance_test(_legal))
del _legal


@dataclass(frozen=True, slots=True)
class HostileResponse:
    """
    A response `ResponseParser` must refuse, to a request with ``method``.

    Attributes mirror `Hostile`; ``heads`` counts final response heads allowed
    before the error.
    """

    name: str
    summary: str
    data: bytes
    error: type[RemoteProtocolError]
    status: int
    heads: int = 0
    method: bytes = b"GET"


R = HostileResponse
OK = b"HTTP/1.1 200 OK\r\n"
CHUNKED_RESPONSE = OK + b"Transfer-Encoding: chunked\r\n\r\n"

HOSTILE_RESPONSES: Sequence[HostileResponse] = (
    R(
        "negative_content_length",
        "Content-Length: -1",
        OK + b"Content-Length: -1\r\n\r\n",
        BadFraming,
        400,
    ),
    R(
        "plus_content_length",
        "Content-Length: +5",
        OK + b"Content-Length: +5\r\n\r\nhello",
        BadFraming,
        400,
    ),
    R(
        "differing_content_lengths",
        "Content-Length: 5 and Content-Length: 6",
        OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        RemoteProtocolError,
        400,
    ),
    R(
        "content_length_list",
        "Content-Length: 5, 6",
        OK + b"Content-Length: 5, 6\r\n\r\nhello!",
        RemoteProtocolError,
        400,
    ),
    R(
        "nul_in_value",
        "a field value with a NUL",
        OK + b"X-A: b\x00c\r\nContent-Length: 0\r\n\r\n",
        BadHeaderField,
        400,
    ),
    R(
        "bare_cr_in_value",
        "a field value with a bare CR",
        OK + b"X-A: b\rc\r\nContent-Length: 0\r\n\r\n",
        BadHeaderField,
        400,
    ),
    R(
        "ctl_in_value",
        "a field value with a vertical tab",
        OK + b"X-A: b\x0bc\r\nContent-Length: 0\r\n\r\n",
        BadHeaderField,
        400,
    ),
    R(
        "space_before_colon",
        "Transfer-Encoding : chunked",
        OK + b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc",
        BadHeaderField,
        400,
    ),
    R(
        "chunk_size_hex_prefix",
        "chunk size 0x5",
        CHUNKED_RESPONSE + b"0x5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    R(
        "chunk_size_negative",
        "chunk size -5",
        CHUNKED_RESPONSE + b"-5\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    R(
        "chunk_size_huge",
        "a chunk size of 20 hex digits",
        CHUNKED_RESPONSE + b"f" * 20 + b"\r\nhello\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    R(
        "chunk_data_without_crlf",
        "chunk data followed by other bytes instead of CRLF",
        CHUNKED_RESPONSE + b"5\r\nhelloXX\r\n0\r\n\r\n",
        BadChunk,
        400,
        heads=1,
    ),
    R(
        "status_not_three_digits",
        "a four-digit status code",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        BadStartLine,
        400,
    ),
    R(
        "status_letters",
        "a status code in letters",
        b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
        BadStartLine,
        400,
    ),
    R(
        "reason_with_nul",
        "a reason phrase with a NUL",
        b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n",
        BadStartLine,
        400,
    ),
    R(
        "bad_version",
        "HTTP/1.x in a status line",
        b"HTTP/1.x 200 OK\r\nContent-Length: 0\r\n\r\n",
        BadStartLine,
        400,
    ),
    R(
        "field_without_colon",
        "a field line without a colon",
        OK + b"X-A b\r\nContent-Length: 0\r\n\r\n",
        BadHeaderField,
        400,
    ),
)


class ResponseHostileTests(SynchronousTestCase):
    """Every row of `HOSTILE_RESPONSES` is refused the same way however it is fed."""

    def check_refused(self, row: HostileResponse) -> None:
        """Feed ``row`` every way; each ends in the row's error and status."""
        for how, pieces in _feedings(row.data, row.name):
            outcome = run_responses(pieces, [row.method], eof=False)
            last = outcome[-1] if outcome else None
            self.assertTrue(
                isinstance(last, tuple) and last[0] == "error",
                f"{row.name} fed {how}: accepted, events {outcome!r}",
            )
            assert isinstance(last, tuple)
            _, error, status = last
            self.assertTrue(
                issubclass(error, row.error),
                f"{row.name} fed {how}: {error.__name__}, not {row.error.__name__}",
            )
            self.assertEqual(status, row.status, f"{row.name} fed {how}: status")
            heads = sum(
                1 for e in outcome if isinstance(e, tuple) and e and e[0] == "response"
            )
            self.assertEqual(heads, row.heads, f"{row.name} fed {how}: heads")

    def test_cl_and_te_together(self) -> None:
        """
        A response with both Content-Length and Transfer-Encoding is refused
        (RFC 9112, 6.3 says to treat it as an error), so the bytes after the
        chunked body are never read as the next response.
        """
        data = (
            OK
            + b"Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        )
        for how, pieces in _feedings(data, "cl_and_te_together"):
            outcome = run_responses(pieces, [b"GET"], eof=False)
            self.assertEqual(
                outcome[-1], ("error", BadFraming, 400), f"fed {how}: {outcome!r}"
            )


def _response_test(row: HostileResponse) -> Callable[[ResponseHostileTests], None]:
    def test(self: ResponseHostileTests) -> None:
        self.check_refused(row)

    test.__name__ = f"test_{row.name}"
    test.__doc__ = (
        f"A response with {row.summary} is refused with"
        f" {row.error.__name__} ({row.status})."
    )
    return test


for _response in HOSTILE_RESPONSES:
    setattr(ResponseHostileTests, f"test_{_response.name}", _response_test(_response))
del _response
