# -*- test-case-name: txhttp.test.test_server_smuggling -*-
"""
Hostile requests through `HTTPChannel`: answered, closed, never resynchronised.

Every row of the wire core's `HOSTILE_REQUESTS` table (request smuggling
attempts and friends) is sent to a channel, whole and one byte at a time. Each
test asserts the status line of the last response written, that the
connection is closing, and that the handler saw only the honest requests the
row allows (never the smuggled one). `CHANNEL_ROWS` adds cases only the
channel can judge: its own size limits and garbage behind an honest request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.trial.unittest import SynchronousTestCase

from txhttp.test._server_helpers import (
    Recorder,
    is_closing,
    make_channel,
    parse_responses,
)
from txhttp.test.test_wire_smuggling import HOSTILE_REQUESTS

HOST = b"Host: a\r\n"
GET = b"GET / HTTP/1.1\r\n" + HOST + b"\r\n"

CHANNEL_ROWS: Sequence[tuple[str, str, bytes, int, int]] = (
    (
        "garbage_after_request",
        "garbage pipelined behind an honest request",
        GET + b"\x00\x01\x02 nonsense\r\n\r\n",
        400,
        1,
    ),
    (
        "body_over_channel_limit",
        "a Content-Length over the channel's max_body_bytes",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n",
        413,
        0,
    ),
    (
        "chunked_body_over_channel_limit",
        "a chunked body growing over the channel's max_body_bytes",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"400\r\n"
        + b"x" * 1024
        + b"\r\n"
        + b"400\r\n"
        + b"x" * 1024
        + b"\r\n",
        413,
        1,
    ),
    (
        "header_over_max_header_length",
        "a header section over maxHeaderLength",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 1200 + b"\r\n\r\n",
        431,
        0,
    ),
    (
        "request_line_over_max_header_length",
        "a request line longer than the whole maxHeaderLength",
        b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
        431,
        0,
    ),
    (
        "smuggled_after_cl_body",
        "a second request hidden after an honest body, then a broken one",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
        1,
    ),
)


class AnsweringRecorder(Recorder):
    """Answers each request with 200 when its body is complete."""

    def __call__(self, channel, head, slot):  # type: ignore[no-untyped-def]  # same as Recorder
        exchange = super().__call__(channel, head, slot)
        original = exchange.body_complete

        def complete(trailers):  # type: ignore[no-untyped-def]  # wraps the recorder
            original(trailers)
            if exchange.slot.is_fresh():
                exchange.respond()

        exchange.body_complete = complete  # type: ignore[method-assign]  # test hook
        return exchange


class ChannelSmugglingTests(SynchronousTestCase):
    """Each hostile request gets its status, a close, and no second request."""

    def check(self, data: bytes, status: int, honest: int) -> None:
        """Send ``data`` whole and byte by byte; check status, close, requests."""
        for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
            recorder = AnsweringRecorder()
            channel, transport, clock, _ = make_channel(
                recorder, max_body_bytes=1024, maxHeaderLength=1024
            )
            for piece in pieces:
                channel.dataReceived(piece)
            written = transport.value()
            responses = parse_responses(written)
            self.assertTrue(responses, f"nothing answered: {written[:200]!r}")
            self.assertEqual(responses[-1].status, status, written[:300])
            self.assertNotIn(b"nonsense", responses[-1].body)
            self.assertTrue(is_closing(transport), "connection left open")
            self.assertLessEqual(len(recorder.exchanges), honest)
            self.assertLessEqual(len(recorder.exchanges), 1)
            channel.dataReceived(GET)
            self.assertLessEqual(len(recorder.exchanges), honest, "resynchronised")
            channel.connectionLost()
            self.assertEqual([], clock.getDelayedCalls())

    def test_table_size(self) -> None:
        """At least 60 hostile requests are sent through the channel."""
        self.assertGreaterEqual(len(HOSTILE_REQUESTS) + len(CHANNEL_ROWS), 60)


def _make(
    name: str, summary: str, data: bytes, status: int, honest: int
) -> Callable[[ChannelSmugglingTests], None]:
    def test(self: ChannelSmugglingTests) -> None:
        self.check(data, status, honest)

    test.__name__ = f"test_{name}"
    test.__doc__ = f"{summary[0].upper()}{summary[1:]} is answered {status} and closed."
    return test


for _row in HOSTILE_REQUESTS:
    if len(_row.data) > 1000:
        continue
    setattr(
        ChannelSmugglingTests,
        f"test_{_row.name}",
        _make(_row.name, _row.summary, _row.data, _row.status, _row.heads),
    )
for _name, _summary, _data, _status, _honest in CHANNEL_ROWS:
    setattr(
        ChannelSmugglingTests,
        f"test_{_name}",
        _make(_name, _summary, _data, _status, _honest),
    )
