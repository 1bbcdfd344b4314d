# -*- test-case-name: txhttp.test.test_wire_parser -*-
"""
The HTTP/1.1 grammar the wire core needs, as precompiled regular expressions.

Each pattern transcribes one ABNF rule of RFC 9110 / RFC 9112 and names the
section it comes from. Parsers and serializers share them, so what we accept
and what we agree to send are the same language. Bytes patterns only: ``\\d``
and ``[0-9]`` match ASCII digits and nothing else. Standard library only.
"""

from __future__ import annotations

import re
from typing import Final

TCHAR: Final = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
"""One ``tchar`` (RFC 9110, section 5.6.2)."""

TOKEN: Final = TCHAR + rb"+"
"""``token = 1*tchar`` (RFC 9110, section 5.6.2)."""

_FIELD_VCHAR: Final = rb"[\x21-\x7e\x80-\xff]"
"""``field-vchar = VCHAR / obs-text`` (RFC 9110, section 5.5)."""

FIELD_VALUE: Final = rb"(?:" + _FIELD_VCHAR + rb"+(?:[ \t]+" + _FIELD_VCHAR + rb"+)*)?"
"""
A field value without leading or trailing whitespace (RFC 9110, section 5.5).

The two character classes are disjoint, so matching never backtracks more
than one step: linear time however many spaces a hostile value holds.
"""

QUOTED_STRING: Final = (
    rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
)
"""``quoted-string`` with ``qdtext`` and ``quoted-pair`` (RFC 9110, 5.6.4)."""

TOKEN_RE: Final = re.compile(TOKEN)
"""Use with ``fullmatch``: a method, field name or coding name."""

FIELD_VALUE_RE: Final = re.compile(FIELD_VALUE)
"""Use with ``fullmatch``: a value we agree to send (trimmed, no CTL)."""

REQUEST_LINE_RE: Final = re.compile(
    # request-line = method SP request-target SP HTTP-version (RFC 9112, 3);
    # exactly one SP between parts; the target is VCHARs only (no CTL, SP or
    # non-ASCII byte, RFC 9112 3.2 / RFC 3986); HTTP-version = HTTP-name "/"
    # DIGIT "." DIGIT (RFC 9112, 2.3), ASCII digits only.
    rb"(" + TOKEN + rb") ([\x21-\x7e]+) (HTTP/[0-9]\.[0-9])"
)

STATUS_LINE_RE: Final = re.compile(
    # status-line = HTTP-version SP status-code SP [ reason-phrase ]
    # (RFC 9112, 4); reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    # Leniency: the SP before an empty reason may be missing (RFC 9112, 4
    # lets a client ignore the reason; many servers omit it).
    rb"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([\t \x21-\x7e\x80-\xff]*))?"
)

FIELD_LINE_RE: Final = re.compile(
    # field-line = field-name ":" OWS field-value OWS, ending in CRLF
    # (RFC 9112, 5 and 2.1). No whitespace before the colon (RFC 9112, 5.1);
    # the value excludes CR, LF, NUL and other CTLs but HTAB (RFC 9110, 5.5).
    # Used with ``findall`` over a whole section: each match is one whole
    # line (anchored at a line start, so the search stays linear), groups
    # are the name and the value. The fast path only: a value with trailing
    # whitespace does not match here and is trimmed by the slow path. The
    # value class is spelled positively (HTAB, SP, VCHAR, obs-text): the
    # same set as "not a CTL other than HTAB", and a quarter faster in re.
    # One class for the whole value (the greedy OWS before it has already
    # taken any leading whitespace, and the look-behind refuses trailing
    # whitespace whichever way the engine backtracks): the same lines and
    # the same groups as "field-vchar, then more", at about 15% less time.
    rb"(?m)^(" + TOKEN + rb"):[ \t]*([\t\x20-\x7e\x80-\xff]*)(?<![ \t])\r\n"
)

ABSOLUTE_FORM_RE: Final = re.compile(
    # absolute-form = absolute-URI (RFC 9112, 3.2.2): scheme ":" hier-part,
    # scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986, 3.1).
    rb"[A-Za-z][A-Za-z0-9+.\-]*:"
)

_HOST: Final = (
    # uri-host = IP-literal / IPv4address / reg-name (RFC 3986, 3.2.2); the
    # characters of each, without checking the finer structure.
    rb"(?:\[[0-9A-Za-z:.\-_~!$&'()*+,;=%]+\]|[0-9A-Za-z.\-_~!$&'()*+,;=%]*)"
)

AUTHORITY_FORM_RE: Final = re.compile(
    # authority-form = uri-host ":" port (RFC 9112, 3.2.3): port required.
    _HOST + rb":[0-9]+"
)

HOST_VALUE_RE: Final = re.compile(
    # Host = uri-host [ ":" port ] (RFC 9110, 7.2); may be empty.
    _HOST + rb"(?::[0-9]*)?"
)

CHUNK_LINE_RE: Final = re.compile(
    # chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112, 7.1), with
    # chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ),
    # ext-val = token / quoted-string (RFC 9112, 7.1.1). At most 16 hex
    # digits, so the size always fits in 64 bits (overflow-safe).
    rb"([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*"
    + TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + TOKEN
    + rb"|"
    + QUOTED_STRING
    + rb"))?)*)"
)

CONTENT_LENGTH_RE: Final = re.compile(
    # Content-Length = 1*DIGIT (RFC 9110, 8.6), bounded to 18 digits so the
    # value is always below 2**63; no sign, space, hex or other junk.
    rb"[0-9]{1,18}"
)

BARE_CR_OR_LF_RE: Final = re.compile(
    # A CR not followed by LF, or an LF not preceded by CR (RFC 9112, 2.2).
    rb"\r(?!\n)|(?<!\r)\n"
)
