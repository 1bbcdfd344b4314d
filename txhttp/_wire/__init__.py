# -*- test-case-name: txhttp.test -*-
"""
The sans-IO HTTP/1.1 core: bytes in, events out, and back (RFC 9110, 9112).

Standard library only: no sockets, reactor, clock, Deferred or logging. The
client and the server both build on what this package exports.
"""

from txhttp._wire._errors import (
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
    StartLineTooLong,
    UnsupportedTransferCoding,
    UnsupportedVersion,
    preview,
)
from txhttp._wire._limits import DEFAULT_LIMITS, Limits
from txhttp._wire._message import (
    CONNECTION_CLOSED,
    END_OF_MESSAGE,
    HTTP_1_0,
    HTTP_1_1,
    BodyKind,
    ConnectionClosed,
    EndOfMessage,
    Fields,
    Framing,
    RequestHead,
    ResponseHead,
)
from txhttp._wire._parser import (
    RequestEvent,
    RequestParser,
    ResponseEvent,
    ResponseParser,
)
from txhttp._wire._serialize import (
    encode_chunk,
    encode_last_chunk,
    serialize_request_head,
    serialize_response_head,
)

__all__ = [
    "CONNECTION_CLOSED",
    "DEFAULT_LIMITS",
    "END_OF_MESSAGE",
    "HTTP_1_0",
    "HTTP_1_1",
    "BadChunk",
    "BadFraming",
    "BadHeaderField",
    "BadHost",
    "BadStartLine",
    "BodyKind",
    "BodyTooLarge",
    "ConnectionClosed",
    "DuplicateField",
    "EndOfMessage",
    "Fields",
    "Framing",
    "HeaderFieldTooLarge",
    "HeaderSectionTooLarge",
    "IncompleteMessage",
    "Limits",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestEvent",
    "RequestHead",
    "RequestParser",
    "ResponseEvent",
    "ResponseHead",
    "ResponseParser",
    "StartLineTooLong",
    "UnsupportedTransferCoding",
    "UnsupportedVersion",
    "encode_chunk",
    "encode_last_chunk",
    "preview",
    "serialize_request_head",
    "serialize_response_head",
]
