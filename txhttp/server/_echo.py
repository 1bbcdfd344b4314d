# -*- test-case-name: txhttp.test.test_server_echo -*-
"""
The echo handler: every request answered with what the server parsed.

A diagnostic mode (``twistd txhttp --echo``), like an httpbin for one's own
client: each request gets status 200, ``Content-Type: application/json`` and
one JSON object::

    {"impl": "txhttp", "method": "POST", "target": "/a?b=1",
     "version": "HTTP/1.1", "headers": [["Host", "x"], ...],
     "body_b64": "aGk=", "trailers": [["Checksum", "1"]]}

Field lines keep their received order, case and duplicates; trailers are
never merged into the headers; the body is the de-framed body in base64.
Every string is the received bytes decoded as latin-1, so any byte a client
sent can be seen exactly. A HEAD or CONNECT response cannot carry that body,
so it carries the same JSON, base64-encoded, in an ``X-Echo`` header (and a
CONNECT response closes the connection rather than open a tunnel). The body
is held in memory: the channel's body limit bounds it.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Final

from twisted.python.failure import Failure

from txhttp._wire import Fields, RequestHead

if TYPE_CHECKING:
    from txhttp.server._accesslog import AccessLog
    from txhttp.server._channel import HTTPChannel
    from txhttp.server._exchange import ExchangeFactory, ResponseSlot

_JSON: Final = (b"Content-Type", b"application/json")
_HEADER_ONLY_METHODS: Final = frozenset((b"HEAD", b"CONNECT"))


def _pairs(fields: Fields) -> list[list[str]]:
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in fields]


def echo_document(head: RequestHead, body: bytes, trailers: Fields) -> bytes:
    """
    Return the JSON object describing one parsed request, as bytes.

    Args:
        head: The parsed request head.
        body: The de-framed request body.
        trailers: The trailer fields (empty unless the body was chunked).
    """
    document = {
        "impl": "txhttp",
        "method": head.method.decode("latin-1"),
        "target": head.target.decode("latin-1"),
        "version": head.version.decode("latin-1"),
        "headers": _pairs(head.fields),
        "body_b64": base64.b64encode(body).decode("ascii"),
        "trailers": _pairs(trailers),
    }
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def _field(fields: Fields, wanted: bytes) -> bytes | None:
    for name, value in fields:
        if name.lower() == wanted:
            return value
    return None


class EchoExchange:
    """
    The `Exchange` that answers one request with `echo_document`.

    It reads the whole body (sending ``100 Continue`` when asked), then
    answers in one write; with an `AccessLog`, it logs the response once it
    was handed to the transport.
    """

    def __init__(
        self, head: RequestHead, slot: ResponseSlot, access_log: AccessLog | None
    ) -> None:
        """
        Args:
            head: The parsed request head.
            slot: Where the response goes.
            access_log: Where to log the response, if anywhere.
        """
        self._head = head
        self._slot = slot
        self._access_log = access_log
        self._body: list[bytes] = []
        self._sent_bytes = 0

    def start(self) -> None:
        """Ask for the body."""
        self._slot.want_body()

    def body_received(self, data: bytes) -> None:
        """Keep a piece of the body."""
        self._body.append(data)

    def body_complete(self, trailers: Fields) -> None:
        """Answer with the JSON description of the request."""
        head = self._head
        document = echo_document(head, b"".join(self._body), trailers)
        self._body = []
        if head.method in _HEADER_ONLY_METHODS:
            fields = [_JSON, (b"X-Echo", base64.b64encode(document))]
            if head.method == b"CONNECT":
                fields.append((b"Connection", b"close"))
            self._slot.finish_with_body(200, b"OK", fields, b"")
        else:
            self._sent_bytes = len(document)
            self._slot.finish_with_body(200, b"OK", [_JSON], document)

    def response_sent(self) -> None:
        """Log the response, if there is an access log."""
        if self._access_log is not None:
            head = self._head
            self._access_log.log(
                peer=self._slot.peer,
                method=head.method,
                target=head.target,
                version=head.version,
                status=200,
                body_bytes=self._sent_bytes,
                referer=_field(head.fields, b"referer"),
                user_agent=_field(head.fields, b"user-agent"),
            )

    def connection_lost(self, reason: Failure) -> None:
        """Forget the body; there is nobody left to answer."""
        self._body = []


def echo_exchange_factory(access_log: AccessLog | None = None) -> ExchangeFactory:
    """
    Return an ``exchangeFactory`` for `HTTPChannel` that builds ``EchoExchange``.

    Args:
        access_log: Where each response is logged, or ``None`` for no log.
    """

    def build(
        channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
    ) -> EchoExchange:
        return EchoExchange(head, slot, access_log)

    return build
