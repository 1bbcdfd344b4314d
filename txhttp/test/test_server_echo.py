"""
Tests for the echo handler (`txhttp.server._echo`) and the access log
(`txhttp.server._accesslog`).

The echo tests run the exchange against a recording slot and, end to end,
through a real `HTTPChannel` over a ``StringTransport``; the access-log tests
use a ``Clock`` for time and a temporary file.
"""

from __future__ import annotations

import base64
import json
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import HTTPChannel as HTTPChannelWeb
from twisted.web.http import Request
from twisted.web.test.requesthelper import DummyChannel

from txhttp.server._accesslog import (
    AccessLog,
    escape_field,
    format_combined,
    log_timestamp,
    web_log_formatter,
)
from txhttp.server._channel import HTTPChannel
from txhttp.server._echo import EchoExchange, echo_document, echo_exchange_factory
from txhttp.test.test_server_web import FakeSlot, make_head

PEER = IPv4Address("TCP", "127.0.0.7", 40000)

# 2026-11-21 01:02:03 UTC
SOME_TIME = 1795222923.0


def decode(document: bytes) -> Any:
    """Parse an echo document."""
    return json.loads(document)


class EchoDocumentTests(SynchronousTestCase):
    """The JSON object describing one request."""

    def test_all_keys(self) -> None:
        """The document has exactly the keys of the issue, in order."""
        head = make_head(b"POST", b"/p?q=1", length=2)
        document = decode(echo_document(head, b"hi", ()))
        self.assertEqual(
            ["impl", "method", "target", "version", "headers", "body_b64", "trailers"],
            list(document),
        )
        self.assertEqual("txhttp", document["impl"])
        self.assertEqual("POST", document["method"])
        self.assertEqual("/p?q=1", document["target"])
        self.assertEqual("HTTP/1.1", document["version"])
        self.assertEqual("aGk=", document["body_b64"])
        self.assertEqual([], document["trailers"])

    def test_headers_in_order_with_duplicates(self) -> None:
        """Field lines keep their order, case and duplicates."""
        fields = [
            (b"Host", b"a"),
            (b"x-One", b"1"),
            (b"Accept", b"*/*"),
            (b"X-ONE", b"2"),
        ]
        document = decode(echo_document(make_head(fields=fields), b"", ()))
        self.assertEqual(
            [["Host", "a"], ["x-One", "1"], ["Accept", "*/*"], ["X-ONE", "2"]],
            document["headers"],
        )

    def test_trailers_kept_apart(self) -> None:
        """Trailer fields are listed apart, never merged into the headers."""
        head = make_head(b"POST", chunked=True)
        document = decode(echo_document(head, b"x", [(b"Checksum", b"abc")]))
        self.assertEqual([["Checksum", "abc"]], document["trailers"])
        self.assertNotIn(["Checksum", "abc"], document["headers"])

    def test_latin1_strings(self) -> None:
        """Bytes above 0x7F come back as the latin-1 characters they are."""
        head = make_head(target=b"/caf\xe9", fields=[(b"X-Name", b"\xff\xfe")])
        document = decode(echo_document(head, b"", ()))
        self.assertEqual("/caf\xe9", document["target"])
        self.assertEqual(["X-Name", "\xff\xfe"], document["headers"][0])

    def test_binary_body(self) -> None:
        """Any body bytes survive the base64 round trip."""
        body = bytes(range(256))
        document = decode(echo_document(make_head(b"PUT", length=256), body, ()))
        self.assertEqual(body, base64.b64decode(document["body_b64"]))


class EchoExchangeTests(SynchronousTestCase):
    """The exchange: reading the body, answering, logging."""

    def run_echo(
        self, head: Any, body: list[bytes], trailers: Any = ()
    ) -> tuple[EchoExchange, FakeSlot]:
        slot = FakeSlot(head)
        exchange = EchoExchange(head, slot, None)
        exchange.start()
        for piece in body:
            exchange.body_received(piece)
        exchange.body_complete(trailers)
        return exchange, slot

    def test_answer(self) -> None:
        """A request is answered 200 with the JSON document as its body."""
        head = make_head(b"POST", length=5)
        _, slot = self.run_echo(head, [b"ab", b"cde"], [])
        assert slot.framed is not None
        status, reason, fields, body = slot.framed
        self.assertEqual((200, b"OK"), (status, reason))
        self.assertEqual([(b"Content-Type", b"application/json")], fields)
        self.assertEqual(echo_document(head, b"abcde", ()), body)
        self.assertTrue(slot.body_wanted)

    def test_head_gets_header(self) -> None:
        """A HEAD response carries the document base64'd in X-Echo, no body."""
        head = make_head(b"HEAD")
        _, slot = self.run_echo(head, [])
        assert slot.framed is not None
        _, _, fields, body = slot.framed
        self.assertEqual(b"", body)
        echo = dict(fields)[b"X-Echo"]
        self.assertEqual(echo_document(head, b"", ()), base64.b64decode(echo))

    def test_connect_gets_header_and_close(self) -> None:
        """A CONNECT response has X-Echo, no body, and closes the connection."""
        head = make_head(b"CONNECT", b"example.com:443")
        _, slot = self.run_echo(head, [])
        assert slot.framed is not None
        _, _, fields, body = slot.framed
        self.assertEqual(b"", body)
        self.assertIn((b"Connection", b"close"), fields)
        document = decode(base64.b64decode(dict(fields)[b"X-Echo"]))
        self.assertEqual("example.com:443", document["target"])

    def test_connection_lost_answers_nothing(self) -> None:
        """A request cut short is not answered."""
        head = make_head(b"POST", length=10)
        slot = FakeSlot(head)
        exchange = EchoExchange(head, slot, None)
        exchange.start()
        exchange.body_received(b"abc")
        exchange.connection_lost(Failure(ConnectionError("gone")))
        self.assertIsNone(slot.framed)

    def test_access_log_line(self) -> None:
        """With an access log, the response is logged once it was sent."""
        clock = Clock()
        clock.advance(SOME_TIME)
        path = self.mktemp()
        log = AccessLog(clock, path)
        head = make_head(
            fields=[(b"Host", b"h"), (b"User-Agent", b"ua/1"), (b"Referer", b"/r")]
        )
        slot = FakeSlot(head)
        exchange = EchoExchange(head, slot, log)
        exchange.start()
        exchange.body_complete(())
        with open(path) as f:
            self.assertEqual("", f.read())
        exchange.response_sent()
        log.close()
        assert slot.framed is not None
        size = len(slot.framed[3])
        with open(path) as f:
            self.assertEqual(
                f'127.0.0.1 - - [21/Nov/2026:01:02:03 +0000] "GET / HTTP/1.1" '
                f'200 {size} "/r" "ua/1"\n',
                f.read(),
            )


class EchoChannelTests(SynchronousTestCase):
    """The echo handler behind a real channel, over a StringTransport."""

    def connect(self) -> tuple[HTTPChannel, StringTransport]:
        channel = HTTPChannel(clock=Clock())
        channel.exchangeFactory = echo_exchange_factory()
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionError("done")))
        return channel, transport

    def test_chunked_request_with_trailers(self) -> None:
        """The de-chunked body and the trailers are reported apart."""
        channel, transport = self.connect()
        channel.dataReceived(
            b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\nChecksum: 9\r\n\r\n"
        )
        head, _, body = transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"Content-Type: application/json", head)
        document = decode(body)
        self.assertEqual("abcde", base64.b64decode(document["body_b64"]).decode())
        self.assertEqual([["Checksum", "9"]], document["trailers"])
        self.assertEqual(
            [["Host", "x"], ["Transfer-Encoding", "chunked"]], document["headers"]
        )

    def test_pipelined_requests_answered_in_order(self) -> None:
        """Two requests in one segment get two answers, in order."""
        channel, transport = self.connect()
        channel.dataReceived(
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        output = transport.value()
        self.assertLess(output.index(b'"target":"/1"'), output.index(b'"target":"/2"'))


class EscapeFieldTests(SynchronousTestCase):
    """`escape_field` keeps log lines single and their quoting intact."""

    def test_plain(self) -> None:
        """Printable ASCII passes through."""
        self.assertEqual("/a?b=c", escape_field(b"/a?b=c"))

    def test_empty(self) -> None:
        """Missing and empty values become a dash."""
        self.assertEqual("-", escape_field(None))
        self.assertEqual("-", escape_field(b""))

    def test_quotes_and_backslashes(self) -> None:
        """Quotes and backslashes are escaped with a backslash."""
        self.assertEqual('a\\"b\\\\c', escape_field(b'a"b\\c'))

    def test_line_breaks_and_controls(self) -> None:
        """CR, LF and other controls become \\xHH: no forged log line."""
        self.assertEqual("a\\x0d\\x0ab\\x00", escape_field(b"a\r\nb\x00"))

    def test_non_ascii(self) -> None:
        """Bytes above 0x7E become \\xHH."""
        self.assertEqual("caf\\xe9\\x7f", escape_field(b"caf\xe9\x7f"))


class CombinedFormatTests(SynchronousTestCase):
    """The layout of a Combined Log Format line."""

    def test_timestamp(self) -> None:
        """Times are UTC, in the bracketed Apache layout."""
        self.assertEqual("[21/Nov/2026:01:02:03 +0000]", log_timestamp(SOME_TIME))

    def test_line(self) -> None:
        """Every field is in its place."""
        line = format_combined(
            peer=PEER,
            timestamp="[t]",
            method=b"GET",
            target=b'/x"y',
            version=b"HTTP/1.0",
            status=404,
            body_bytes=0,
            referer=None,
            user_agent=b"curl/8",
        )
        self.assertEqual(
            '127.0.0.7 - - [t] "GET /x\\"y HTTP/1.0" 404 - "-" "curl/8"', line
        )

    def test_unknown_peer(self) -> None:
        """A peer without a host is logged as a dash."""
        line = format_combined(
            peer=None,
            timestamp="[t]",
            method=b"GET",
            target=b"/",
            version=b"HTTP/1.1",
            status=200,
            body_bytes=5,
            referer=None,
            user_agent=None,
        )
        self.assertTrue(line.startswith("- - - [t]"))

    def test_twisted_web_request(self) -> None:
        """web_log_formatter reads a twisted.web request the same way."""
        # DummyChannel is Twisted's own test stand-in for its HTTPChannel.
        request = Request(cast(HTTPChannelWeb, DummyChannel()))
        request.method = b"POST"
        request.uri = b"/form"
        request.clientproto = b"HTTP/1.1"
        request.code = 201
        request.sentLength = 12
        request.requestHeaders.addRawHeader(b"user-agent", b'bot "1"')
        line = web_log_formatter("[t]", request)
        self.assertTrue(
            line.endswith(' [t] "POST /form HTTP/1.1" 201 12 "-" "bot \\"1\\""'),
            line,
        )


class AccessLogTests(SynchronousTestCase):
    """Where `AccessLog` writes."""

    def test_to_file(self) -> None:
        """Lines are appended to the file, one per response."""
        clock = Clock()
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("old\n")
        log = AccessLog(clock, path)
        self.addCleanup(log.close)
        for status in (200, 404):
            log.log(
                peer=PEER,
                method=b"GET",
                target=b"/",
                version=b"HTTP/1.1",
                status=status,
                body_bytes=1,
                referer=None,
                user_agent=None,
            )
        with open(path) as f:
            lines = f.read().splitlines()
        self.assertEqual(3, len(lines))
        self.assertEqual("old", lines[0])
        self.assertIn('"GET / HTTP/1.1" 404 1', lines[2])

    def test_time_from_clock(self) -> None:
        """The timestamp follows the injected clock, second by second."""
        clock = Clock()
        clock.advance(SOME_TIME)
        log = AccessLog(clock)
        with capturedLogs() as events:
            for _ in range(2):
                log.log(
                    peer=PEER,
                    method=b"GET",
                    target=b"/",
                    version=b"HTTP/1.1",
                    status=200,
                    body_bytes=0,
                    referer=None,
                    user_agent=None,
                )
                clock.advance(1)
        lines = [event["line"] for event in events]
        self.assertIn("[21/Nov/2026:01:02:03 +0000]", lines[0])
        self.assertIn("[21/Nov/2026:01:02:04 +0000]", lines[1])

    def test_to_twistd_log(self) -> None:
        """Without a path, lines go to the log in the txhttp.access namespace."""
        log = AccessLog(Clock())
        with capturedLogs() as events:
            log.log(
                peer=PEER,
                method=b"GET",
                target=b"/",
                version=b"HTTP/1.1",
                status=200,
                body_bytes=0,
                referer=None,
                user_agent=None,
            )
        self.assertEqual(1, len(events))
        self.assertEqual("txhttp.access", events[0]["log_namespace"])
        self.assertIn('"GET / HTTP/1.1" 200 -', events[0]["line"])
