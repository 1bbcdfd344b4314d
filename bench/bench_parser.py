"""
Request parsing speed: txhttp's wire core against h11, httptools and Twisted.

Three runs, side by side in one process:

1. one typical browser GET head (8 fields), parsed 100,000 times; then
   wrk's head (request line and Host only), with txhttp's whole-request
   lane (``parse_whole_request``, what the server tries first on an idle
   connection) as one more row, and a small POST with Content-Length and
   its body, each parsed 100,000 times;
2. a buffer of 100 pipelined copies of the browser head, parsed whole;
3. heads of about 400 B, 4 KiB and 40 KiB fed one byte at a time to txhttp
   (and h11), in microseconds per byte: the figure must stay flat as the head
   grows, or the parser rescans its buffer;
4. response bodies of 100 MiB fed in 64 KiB pieces, the way a reactor hands
   out a download, to txhttp's `ResponseParser`, h11 and httptools, in MB/s:
   a Content-Length body, and a chunked body of 64 KiB chunks (so every
   piece holds the end of one chunk, its framing and the start of the next).

Each library parses on one long-lived connection object, the way a server
does: txhttp's `RequestParser`, httptools' C parser with Python callbacks
that keep the URL, method, version and header pairs, and Twisted's own
``HTTPChannel`` over a ``StringTransport`` with a request factory that only
marks each request done (so Twisted's request objects, rendering and
response writing are not timed). h11 cannot read a second request on a
connection before a response to the first is sent, so it gets a fresh
``h11.Connection`` per request (the cheaper of the ways to let it go on; see
bench/README.md). Garbage collection is off while timing, as in timeit, and
the best of several runs is kept.

Usage: ``python bench/bench_parser.py [--quick] [--profile] [--body]``.
``--quick`` runs a few thousand parses and 8 MiB bodies (a smoke test that
finishes in seconds); ``--body`` runs only the body throughput part;
``--profile`` prints txhttp's hot spots under cProfile. Standard library,
txhttp and the libraries compared only; nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

import h11
import httptools
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel, Request
from twisted.web.http_headers import Headers

from txhttp._wire import (
    DEFAULT_LIMITS,
    EndOfMessage,
    Limits,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
)
from txhttp._wire._parser import parse_whole_request

BROWSER_GET = (
    b"GET /static/js/app.min.js?v=3.2.1 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101"
    b" Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/articles/2024/11/parsing\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=4f6c2a9e1b7d3c58; theme=dark; consent=1\r\n"
    b"\r\n"
)
"""A typical browser GET head: request line and 8 fields, about 500 bytes."""

WRK_GET = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
"""The head wrk sends (request line and Host): the server benchmarks' load."""

POST_JSON = (
    b"POST /api/items HTTP/1.1\r\n"
    b"Host: api.example.com\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 29\r\n"
    b"\r\n"
    b'{"name": "widget", "qty": 12}'
)
"""A small POST: three fields, a Content-Length body of 29 bytes."""

PIPELINE_DEPTH = 100
"""Requests in the pipelined buffer."""

Parse = Callable[[bytes], int]
"""Parses the bytes given on a long-lived connection; returns requests seen."""


# --- one driver per library ---------------------------------------------------


def txhttp_parser(limits: Limits | None = None) -> Parse:
    """txhttp's `RequestParser`: feed, then pull events until it needs more."""
    parser = RequestParser(limits) if limits is not None else RequestParser()
    feed = parser.feed
    next_event = parser.next_event

    def parse(data: bytes) -> int:
        feed(data)
        count = 0
        while (event := next_event()) is not None:
            if type(event) is RequestHead:
                count += 1
        return count

    return parse


def txhttp_whole_parser() -> Parse:
    """
    txhttp's whole-request lane: ``parse_whole_request`` on each receive.

    What ``HTTPChannel`` tries first when an idle connection receives bytes;
    it takes exactly one whole head without a body, so only the bodiless
    runs use it.
    """
    limits = DEFAULT_LIMITS

    def parse(data: bytes) -> int:
        return 0 if parse_whole_request(data, limits) is None else 1

    return parse


def h11_parser(max_event_bytes: int = 16 * 1024) -> Parse:
    """
    h11, one fresh server ``Connection`` per request.

    h11 pauses after each request until a response is sent; starting a new
    connection with the bytes it had not parsed yet is its cheaper way on.
    """

    def parse(data: bytes) -> int:
        count = 0
        while data:
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_event_bytes)
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if type(event) is h11.Request:
                    count += 1
                elif event is h11.NEED_DATA or event is h11.PAUSED:
                    break
            data = conn.trailing_data[0]
            if event is h11.NEED_DATA:
                break
        return count

    return parse


def h11_cycling_parser(max_event_bytes: int = 16 * 1024) -> Parse:
    """h11 on one ``Connection``, sending a minimal response per request."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_event_bytes)
    response = h11.Response(status_code=204, headers=[])
    end = h11.EndOfMessage()

    def parse(data: bytes) -> int:
        conn.receive_data(data)
        count = 0
        while True:
            event = conn.next_event()
            if type(event) is h11.Request:
                count += 1
            elif type(event) is h11.EndOfMessage:
                conn.send(response)
                conn.send(end)
                conn.start_next_cycle()
            elif event is h11.NEED_DATA:
                return count

    return parse


class _HttptoolsCallbacks:
    """Keeps what a server needs from each request, as the others do."""

    __slots__ = ("count", "headers", "method", "parser", "url", "version")

    def __init__(self) -> None:
        self.count = 0
        self.url = b""
        self.method = b""
        self.version = ""
        self.headers: list[tuple[bytes, bytes]] = []
        self.parser: httptools.HttpRequestParser | None = None

    def on_message_begin(self) -> None:
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.method = self.parser.get_method()
        self.version = self.parser.get_http_version()

    def on_message_complete(self) -> None:
        self.count += 1


def httptools_parser() -> Parse:
    """httptools' C parser (llhttp) with the Python callbacks above."""
    callbacks = _HttptoolsCallbacks()
    parser = httptools.HttpRequestParser(callbacks)
    callbacks.parser = parser

    def parse(data: bytes) -> int:
        before = callbacks.count
        parser.feed_data(data)
        return callbacks.count - before

    return parse


class _DoneRequest:
    """
    A request factory for ``HTTPChannel`` that does nothing but finish.

    The channel parses the request line and fields, fills ``requestHeaders``
    and calls `requestReceived`; this marks the request done at once, so the
    channel reads the next one. No rendering, no response.
    """

    def __init__(self, channel: _CountingChannel, queued: int = 0) -> None:
        self.channel = channel
        self.requestHeaders = Headers()
        self.responseHeaders = Headers()

    def parseCookies(self) -> None:
        """Leave cookies unparsed (twisted.web parses them lazily anyway)."""

    def gotLength(self, length: int | None) -> None:
        """Ignore the body length."""

    def handleContentChunk(self, data: bytes) -> None:
        """Ignore body data (the benchmark requests have none)."""

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """Count the request and let the channel go on to the next one."""
        self.channel.count += 1
        self.channel.requestDone(self)


class _CountingChannel(HTTPChannel):
    """``HTTPChannel`` with a request count and no idle timeout."""

    count = 0
    timeOut = None
    # A stand-in with only the methods HTTPChannel calls, not a Request.
    requestFactory = cast("type[Request]", _DoneRequest)


def twisted_parser() -> Parse:
    """Twisted's ``HTTPChannel`` over a ``StringTransport``."""
    channel = _CountingChannel()
    channel.makeConnection(StringTransport())

    def parse(data: bytes) -> int:
        before = channel.count
        channel.dataReceived(data)
        return channel.count - before

    return parse


LIBRARIES: Sequence[tuple[str, Callable[[], Parse]]] = (
    ("txhttp", txhttp_parser),
    ("h11", h11_parser),
    ("httptools", httptools_parser),
    ("twisted", twisted_parser),
)


# --- timing -------------------------------------------------------------------


def best_time(run: Callable[[], object], repeat: int) -> float:
    """
    The shortest time of ``repeat`` calls, garbage collection off.

    CPU time of this process (`time.process_time`), not wall time: on a
    shared machine, time spent waiting for a core while others run is not
    parsing time and would make the figures depend on the neighbours.
    """
    best = float("inf")
    for _ in range(repeat):
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.process_time()
            run()
            elapsed = time.process_time() - start
        finally:
            if enabled:
                gc.enable()
        best = min(best, elapsed)
    return best


@dataclass(frozen=True)
class Result:
    """One library's rate in one scenario."""

    library: str
    rate: float


def print_table(title: str, results: Sequence[Result]) -> None:
    """Print rates and txhttp's ratio to each library."""
    ours = next(r.rate for r in results if r.library == "txhttp")
    print(title)
    print(f"  {'library':<12}{'requests/s':>14}{'txhttp is':>14}")
    for result in results:
        ratio = ours / result.rate
        print(f"  {result.library:<12}{result.rate:>14,.0f}{ratio:>13.2f}x")
    print()


def interleaved_rates(
    data: bytes,
    per_call: int,
    calls: int,
    repeat: int,
    libraries: Sequence[tuple[str, Callable[[], Parse]]] = LIBRARIES,
) -> list[Result]:
    """
    Requests per second for each library, best of ``repeat`` rounds.

    The rounds are interleaved (every library once per round) rather than
    one library's runs back to back, so load from other processes on a
    shared machine falls on all libraries alike and the ratios hold.
    """
    runs = []
    for name, make in libraries:
        parse = make()
        seen = parse(data)
        if seen != per_call:
            raise SystemExit(f"{name}: parsed {seen} requests, not {per_call}")

        def run(parse: Parse = parse) -> None:
            for _ in range(calls):
                parse(data)

        runs.append((name, run))
    best = dict.fromkeys((name for name, _ in runs), float("inf"))
    for _ in range(repeat):
        for name, run in runs:
            best[name] = min(best[name], best_time(run, 1))
    return [Result(name, per_call * calls / best[name]) for name, _ in runs]


def bench_single(calls: int, repeat: int) -> list[Result]:
    """The browser GET head, parsed ``calls`` times by each library."""
    return interleaved_rates(BROWSER_GET, 1, calls, repeat)


def bench_wrk(calls: int, repeat: int) -> list[Result]:
    """wrk's head, parsed ``calls`` times by each library and txhttp's lane."""
    return interleaved_rates(
        WRK_GET, 1, calls, repeat, (*LIBRARIES, ("txhttp-whole", txhttp_whole_parser))
    )


def bench_post(calls: int, repeat: int) -> list[Result]:
    """The small POST and its body, parsed ``calls`` times by each library."""
    return interleaved_rates(POST_JSON, 1, calls, repeat)


def bench_pipelined(calls: int, repeat: int) -> list[Result]:
    """A buffer of `PIPELINE_DEPTH` heads, parsed ``calls`` times by each."""
    return interleaved_rates(
        BROWSER_GET * PIPELINE_DEPTH, PIPELINE_DEPTH, calls, repeat
    )


def big_head(size: int) -> bytes:
    """A valid GET head of about ``size`` bytes, in fields of up to 400 bytes."""
    head = bytearray(b"GET /big HTTP/1.1\r\nHost: www.example.com\r\n")
    number = 0
    while len(head) < size - 2:
        room = min(400, size - 2 - len(head))
        line = b"X-Field-%03d: " % number
        head += line + b"v" * max(1, room - len(line) - 2) + b"\r\n"
        number += 1
    return bytes(head + b"\r\n")


BIG_LIMITS = Limits(max_header_count=200)
"""Room for the 40 KiB head's field count; every other limit is the default."""


def us_per_byte(
    make: Callable[[], Parse], head: bytes, heads: int, repeat: int
) -> float:
    """Feed ``heads`` copies of ``head`` one byte at a time; microseconds per byte."""
    pieces = [head[i : i + 1] for i in range(len(head))]
    parse = make()

    def run() -> None:
        seen = 0
        for _ in range(heads):
            for piece in pieces:
                seen += parse(piece)
        if seen != heads:
            raise SystemExit(f"{make.__name__}: parsed {seen} of {heads} heads")

    return best_time(run, repeat) / (heads * len(head)) * 1e6


def bench_bytewise(total_bytes: int, repeat: int) -> None:
    """Print microseconds per byte for growing heads fed one byte at a time."""
    makers: list[tuple[str, Callable[[], Parse]]] = [
        ("txhttp", lambda: txhttp_parser(BIG_LIMITS)),
        ("h11", lambda: h11_cycling_parser(64 * 1024)),
    ]
    sizes = [400, 4 * 1024, 40 * 1024]
    print("one byte at a time (microseconds per byte; flat means linear)")
    print(f"  {'library':<12}" + "".join(f"{f'{s:,} B':>12}" for s in sizes))
    for name, make in makers:
        cells = []
        for size in sizes:
            head = big_head(size)
            heads = max(1, total_bytes // len(head))
            cells.append(us_per_byte(make, head, heads, repeat))
        print(f"  {name:<12}" + "".join(f"{c:>12.3f}" for c in cells))
    print()


# --- response bodies ----------------------------------------------------------

BODY_BYTES = 100 * 1024 * 1024
"""Size of the response body in the throughput runs."""

PIECE_BYTES = 64 * 1024
"""Bytes per receive, as a reactor reads them (and the chunk size)."""

NO_BODY_LIMIT = Limits(max_body_bytes=None)
"""A download's limits: the caller streams the body and bounds it itself."""


def length_pieces(total: int) -> list[bytes]:
    """A Content-Length response: its head, then ``total`` bytes in pieces."""
    block = b"x" * PIECE_BYTES
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total
    return [head] + [block] * (total // PIECE_BYTES)


def chunked_pieces(total: int) -> list[bytes]:
    """A chunked response of `PIECE_BYTES` chunks, cut into receives."""
    stream = bytearray(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n" % PIECE_BYTES + b"x" * PIECE_BYTES + b"\r\n"
    for _ in range(total // PIECE_BYTES):
        stream += chunk
    stream += b"0\r\n\r\n"
    return [
        bytes(stream[i : i + PIECE_BYTES]) for i in range(0, len(stream), PIECE_BYTES)
    ]


Download = Callable[[Sequence[bytes]], int]
"""Parses one whole response from the pieces given; returns body bytes seen."""


def txhttp_download(pieces: Sequence[bytes]) -> int:
    """txhttp's `ResponseParser`, body events counted as they come."""
    parser = ResponseParser(NO_BODY_LIMIT)
    parser.expect_response(b"GET")
    feed = parser.feed
    next_event = parser.next_event
    seen = 0
    done = False
    for piece in pieces:
        feed(piece)
        while (event := next_event()) is not None:
            if type(event) is bytes:
                seen += len(event)
            elif type(event) is EndOfMessage:
                done = True
            elif type(event) is not ResponseHead:
                raise SystemExit(f"txhttp: unexpected event {event!r}")
    return seen if done else -1


def h11_download(pieces: Sequence[bytes]) -> int:
    """h11's client ``Connection`` after sending a GET."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    conn.send(h11.EndOfMessage())
    seen = 0
    done = False
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if type(event) is h11.Data:
                seen += len(event.data)
            elif type(event) is h11.EndOfMessage:
                done = True
            elif event is h11.NEED_DATA or event is h11.PAUSED:
                break
    return seen if done else -1


class _BodyCounter:
    """httptools callbacks that count body bytes and see the end."""

    __slots__ = ("done", "seen")

    def __init__(self) -> None:
        self.seen = 0
        self.done = False

    def on_body(self, data: bytes) -> None:
        self.seen += len(data)

    def on_message_complete(self) -> None:
        self.done = True


def httptools_download(pieces: Sequence[bytes]) -> int:
    """httptools' C response parser with an ``on_body`` callback."""
    counter = _BodyCounter()
    parser = httptools.HttpResponseParser(counter)
    for piece in pieces:
        parser.feed_data(piece)
    return counter.seen if counter.done else -1


DOWNLOADERS: Sequence[tuple[str, Download]] = (
    ("txhttp", txhttp_download),
    ("h11", h11_download),
    ("httptools", httptools_download),
)


def bench_body(total: int, repeat: int) -> None:
    """Print MB/s for a Content-Length and a chunked body of ``total`` bytes."""
    print(
        f"response body of {total // (1024 * 1024)} MiB in {PIECE_BYTES // 1024} KiB"
        " pieces (MB/s, 1 MB = 10**6 bytes)"
    )
    print(f"  {'library':<12}{'length':>12}{'chunked':>12}")
    cases = [length_pieces(total), chunked_pieces(total)]
    best = {name: [float("inf")] * len(cases) for name, _ in DOWNLOADERS}
    for _ in range(repeat):
        for index, pieces in enumerate(cases):
            for name, download in DOWNLOADERS:
                seen: list[int] = []

                def run(
                    seen: list[int] = seen,
                    download: Download = download,
                    pieces: list[bytes] = pieces,
                ) -> None:
                    seen.append(download(pieces))

                elapsed = best_time(run, 1)
                if seen[0] != total:
                    raise SystemExit(f"{name}: {seen[0]} body bytes, not {total}")
                best[name][index] = min(best[name][index], elapsed)
    for name, _ in DOWNLOADERS:
        cells = "".join(f"{total / 1e6 / t:>12,.0f}" for t in best[name])
        print(f"  {name:<12}{cells}")
    print()


def profile_txhttp(calls: int) -> None:
    """Print txhttp's top functions by own time while parsing the GET head."""
    parse = txhttp_parser()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        parse(BROWSER_GET)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring for the options."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    options.add_argument("--quick", action="store_true", help="a short smoke run")
    options.add_argument("--profile", action="store_true", help="cProfile txhttp")
    options.add_argument("--body", action="store_true", help="body throughput only")
    args = options.parse_args(argv)
    if args.quick:
        single, pipelined, bytewise, repeat = 3_000, 30, 20_000, 1
        body = 8 * 1024 * 1024
    else:
        single, pipelined, bytewise, repeat = 100_000, 1_000, 400_000, 3
        body = BODY_BYTES
    print(
        f"txhttp parser benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}), {platform.machine()},"
        f" {os.cpu_count()} CPUs, best of {repeat}" + (" [quick]" if args.quick else "")
    )
    print(f"head: {len(BROWSER_GET)} bytes, 8 fields\n")
    if args.profile:
        profile_txhttp(single)
        return 0
    if args.body:
        bench_body(body, repeat)
        return 0
    print_table(
        f"one browser GET head, parsed {single:,} times",
        bench_single(single, repeat),
    )
    print_table(
        f"wrk's GET head ({len(WRK_GET)} bytes, Host only), parsed {single:,} times",
        bench_wrk(single, repeat),
    )
    print_table(
        f"a POST with Content-Length ({len(POST_JSON)} bytes with its body),"
        f" parsed {single:,} times",
        bench_post(single, repeat),
    )
    print_table(
        f"{PIPELINE_DEPTH} pipelined heads in one buffer, parsed {pipelined:,} times",
        bench_pipelined(pipelined, repeat),
    )
    bench_bytewise(bytewise, repeat)
    bench_body(body, repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
