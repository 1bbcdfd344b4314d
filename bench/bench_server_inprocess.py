"""
Server CPU per request without sockets: twisted.web's Site on txhttp and stock.

Four servers answer ``GET /`` with a 14-byte ``text/plain`` body, each on
one long-lived keep-alive connection over the same minimal fake transport
(its writes are discarded, its producer calls do nothing), so that only the
server's own Python code is timed:

- ``site-twisted``: a ``twisted.web.server.Site`` on twisted.web's own
  ``HTTPChannel`` (as ``Site.buildProtocol`` makes it);
- ``site-txhttp``: the same kind of Site through `txhttp.server.use_txhttp`;
- ``native``: a txhttp native handler (`txhttp.server.HTTPServerFactory`);
- ``raw``: a bare Twisted protocol answering every request head with a
  canned response (the ceiling, as in ``bench_server.py``).

Both Sites write their access log (Combined Log Format, through a
``twisted.python.logfile.LogFile`` as ``Site`` opens for its ``logPath``)
to ``os.devnull``, with rotation off. Every server uses the global reactor as its clock
without running it: timers are created and cancelled as in production, and
``reactor.runUntilCurrent()`` is called every `TIMER_FLUSH` requests (as
the reactor's loop would) so that cancelled timers do not pile up.

Loads, each a sequence of ``dataReceived`` calls on one connection, each
call given a new bytes object (made before the timing), as a socket gives:
a memo keyed by the received bytes pays for hashing them every time.

- ``keep-alive``: one request per call, a head like wrk's (``Host`` only);
- ``keep-alive-8``: one request per call, a browser-like head of 8 fields;
- ``pipelined``: 16 wrk-like requests per call;
- ``keep-alive-varied``: one request per call, each with another target
  (`VARIED_TARGETS` of them, cycled): no memo of a whole request can help;
- ``close``: one wrk-like request with ``Connection: close`` per
  connection, each a new connection (built, connected, fed, lost). Like
  wrk's 50 connections, `CLOSE_CONCURRENCY` connections are open at once:
  each one is lost (``connectionLost``) only after that many newer ones
  were made, so the servers' timers run with others pending, as they do
  under load. Its figure is CPU per connection.
- ``close-tcp``: the ``close`` load over Twisted's real TCP transport
  (``twisted.internet.tcp.Server``) on a socket stand-in (`NullSocket`:
  its sends take every byte, its shutdown and close do nothing) and a
  reactor stand-in (`NullReactor`) whose write turn the bench runs itself
  after each receive. Everything Python does for a connection under wrk is
  timed (the transport's own set-up, write and close paths, and txhttp's
  close at the end of the receive, ``close_now``), without the system calls.
  Its figure is CPU per connection.

Each round runs every load on every server in turn (interleaved), timing
``time.process_time()`` around the whole batch after a ``gc.collect()``;
the best round of each pair is kept, and the ratios printed are
requests per CPU-second of one server over another. Before timing, every
server's answers to a few requests are parsed and checked, so a broken
server cannot look fast.

Usage: ``python bench/bench_server_inprocess.py [--requests N] [--rounds R]
[--quick] [--profile SERVER [--load LOAD]]``. ``--profile`` runs one server
under cProfile and prints its top functions by own time instead of timing.
Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IConsumer,
    IProtocol,
    IPushProducer,
    IReactorFDSet,
    ITransport,
)
from twisted.internet.protocol import ServerFactory
from twisted.internet.tcp import Port
from twisted.internet.tcp import Server as TCPServer
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface import implementer

from txhttp._wire import EndOfMessage, ResponseHead, ResponseParser
from txhttp.server import HTTPServerFactory, use_txhttp
from txhttp.server import Request as NativeRequest
from txhttp.server import Response as NativeResponse

BODY: Final = b"Hello, world!\n"
TIMER_FLUSH: Final = 64
"""Requests between two ``reactor.runUntilCurrent()`` calls."""
PIPELINE_DEPTH: Final = 16

WRK_GET: Final = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER_GET: Final = (
    b"GET / HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101"
    b" Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/articles/2024/11/parsing\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=0123456789abcdef; theme=dark\r\n"
    b"\r\n"
)

CLOSE_GET: Final = WRK_GET[:-2] + b"Connection: close\r\n\r\n"

VARIED_TARGETS: Final = 4096
"""Distinct requests of the ``keep-alive-varied`` load (more than any memo
of txhttp keeps: each one is parsed afresh)."""
VARIED_GETS: Final = tuple(
    b"GET /item?id=%d HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n" % index
    for index in range(VARIED_TARGETS)
)
CLOSE_CONCURRENCY: Final = 50
"""Connections open at once under the ``close`` load (wrk's count)."""

SERVERS: Final = ("site-twisted", "site-txhttp", "native", "raw")
LOADS: Final[dict[str, tuple[bytes, int]]] = {
    # name: (bytes of one dataReceived call, requests in it)
    "keep-alive": (WRK_GET, 1),
    "keep-alive-8": (BROWSER_GET, 1),
    "pipelined": (WRK_GET * PIPELINE_DEPTH, PIPELINE_DEPTH),
    "close": (CLOSE_GET, 1),
    "close-tcp": (CLOSE_GET, 1),
    "keep-alive-varied": (VARIED_GETS[0], 1),
}
VARIED_LOADS: Final[dict[str, tuple[bytes, ...]]] = {"keep-alive-varied": VARIED_GETS}
"""Loads whose calls cycle through these requests instead of repeating one."""
PER_CONNECTION_LOADS: Final = frozenset({"close", "close-tcp"})
"""Loads that open a new connection for every ``dataReceived`` call."""


# --- the fake transport -----------------------------------------------------


@implementer(ITransport, IConsumer, IPushProducer)
class NullTransport:
    """
    The cheapest transport both channels accept: writes vanish.

    It declares ``IPushProducer`` (as TCP transports do) so that both channels
    take the same path: they register with it and pause or resume it.
    Setting `record` keeps the bytes written, for the correctness check.
    """

    disconnecting = False

    def __init__(self, record: bool = False) -> None:
        self.peer = IPv4Address("TCP", "127.0.0.1", 40000)
        self.host = IPv4Address("TCP", "127.0.0.1", 8080)
        self.written: list[bytes] | None = [] if record else None
        self.closed = False

    def write(self, data: bytes) -> None:
        """Discard (or record) ``data``."""
        if self.written is not None:
            self.written.append(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """Discard (or record) ``data``."""
        if self.written is not None:
            self.written.extend(data)

    def loseConnection(self) -> None:
        """Remember the close (no connection to lose)."""
        self.closed = True

    def abortConnection(self) -> None:
        """Remember the close (no connection to abort)."""
        self.closed = True

    def loseWriteConnection(self) -> None:
        """Remember the close (no connection to half-close)."""
        self.closed = True

    def getPeer(self) -> IPv4Address:
        """The fixed client address."""
        return self.peer

    def getHost(self) -> IPv4Address:
        """The fixed server address."""
        return self.host

    def registerProducer(self, producer: object, streaming: bool) -> None:
        """Accept the channel as producer; nothing to do."""

    def unregisterProducer(self) -> None:
        """Nothing to do."""

    def pauseProducing(self) -> None:
        """Nothing to do: no reading to pause."""

    def resumeProducing(self) -> None:
        """Nothing to do."""

    def stopProducing(self) -> None:
        """Nothing to do."""


# --- the servers ------------------------------------------------------------


class NullSocket:
    """
    What ``tcp.Server`` needs of a socket: sends take every byte (kept when
    `record` is set), options and closes do nothing.
    """

    def __init__(self, record: bool = False) -> None:
        self.sent: list[bytes] | None = [] if record else None
        self.closed = False

    def fileno(self) -> int:
        """A descriptor number no one uses (the reactor is `NullReactor`)."""
        return -1

    def setblocking(self, flag: bool) -> None:
        """Nothing to do."""

    def send(self, data: bytes) -> int:
        """Take all of ``data``."""
        if self.sent is not None:
            self.sent.append(bytes(data))
        return len(data)

    def shutdown(self, how: int) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Remember the close."""
        self.closed = True

    def setsockopt(self, *args: object) -> None:
        """Nothing to do."""

    def getsockname(self) -> tuple[str, int]:
        """The server's address."""
        return ("127.0.0.1", 8080)

    def getpeername(self) -> tuple[str, int]:
        """The client's address."""
        return _CLIENT


class NullReactor:
    """
    What ``tcp.Server`` needs of a reactor: readers are ignored, writers are
    remembered for `run_write_turn`; time and timers are the global reactor's.
    """

    def __init__(self) -> None:
        self.writers: set[TCPServer] = set()

    def addReader(self, reader: object) -> None:
        """Nothing to do: the bench delivers the bytes itself."""

    def removeReader(self, reader: object) -> None:
        """Nothing to do."""

    def addWriter(self, writer: TCPServer) -> None:
        """Remember ``writer`` for the next write turn."""
        self.writers.add(writer)

    def removeWriter(self, writer: TCPServer) -> None:
        """Forget ``writer``."""
        self.writers.discard(writer)

    def run_write_turn(self) -> None:
        """Do what the reactor does for each writer: ``doWrite``, close if told."""
        for writer in list(self.writers):
            why = writer.doWrite()
            if why:
                self.writers.discard(writer)
                writer.connectionLost(Failure(why))


class _Port:
    """The listening port a ``tcp.Server`` names in its ``repr``."""

    _realPortNumber = 8080


_CLIENT: Final = ("127.0.0.1", 40000)


def _tcp_connection(
    protocol: _Connection, number: int, reactor: NullReactor, sock: NullSocket
) -> TCPServer:
    """Connect ``protocol`` to a ``tcp.Server`` on ``sock`` (as a Port does)."""
    transport = TCPServer(
        cast(socket.socket, sock),
        cast(IProtocol, protocol),
        _CLIENT,
        cast(Port, _Port()),
        number,
        cast(IReactorFDSet, reactor),
    )
    protocol.makeConnection(cast(NullTransport, transport))
    return transport


class _Connection(Protocol):
    """What the bench calls on a server connection."""

    def makeConnection(self, transport: NullTransport) -> None: ...
    def dataReceived(self, data: bytes) -> None: ...
    def connectionLost(self, reason: Failure) -> None: ...


class Hello(Resource):
    """The hello-world resource of ``bench_server.py``."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        """Answer with `BODY` as plain text."""
        request.setHeader(b"content-type", b"text/plain")
        return BODY


def _native_hello(request: NativeRequest, response: NativeResponse) -> None:
    response.headers.append((b"Content-Type", b"text/plain"))
    response.finish(BODY)


def _reactor() -> object:
    from twisted.internet import reactor

    return reactor


def _site(on_txhttp: bool) -> Site:
    site = Site(Hello())
    if on_txhttp:
        use_txhttp(site)
    site.doStart()
    # The access log goes through the LogFile a Site opens for ``logPath``,
    # without rotation: ``Site(logPath=os.devnull)`` would rotate (rename)
    # the device itself after 1 MB of log when run as root.
    site.logFile = LogFile(
        os.path.basename(os.devnull), os.path.dirname(os.devnull), rotateLength=None
    )
    return site


def connection_factory(kind: str) -> Callable[[], _Connection]:
    """Return a function building a new connection of server ``kind``."""
    address = IPv4Address("TCP", "127.0.0.1", 40000)
    if kind == "native":
        factory = HTTPServerFactory(_native_hello, clock=_reactor())  # type: ignore[arg-type]

        def native() -> _Connection:
            return factory.buildProtocol(address)

        return native
    if kind == "raw":
        # bench_server.py's ceiling protocol. Appended to the path, not put
        # first: txhttp stays the one already imported (PYTHONPATH may name
        # another tree to compare).
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        if root not in sys.path:
            sys.path.append(root)
        from bench.bench_server import _raw_factory

        raw = cast(ServerFactory, _raw_factory())

        def ceiling() -> _Connection:
            return cast(_Connection, raw.buildProtocol(address))

        return ceiling
    site = _site(on_txhttp=kind == "site-txhttp")

    def web() -> _Connection:
        protocol = site.buildProtocol(address)
        assert protocol is not None
        # Site.buildProtocol's protocols all have these two methods.
        return cast(_Connection, protocol)

    return web


# --- running ----------------------------------------------------------------


def _flush_timers() -> None:
    reactor = _reactor()
    reactor.runUntilCurrent()  # type: ignore[attr-defined]


def drive(build: Callable[[], _Connection], load: str, requests: int) -> float:
    """Push ``requests`` requests of ``load`` through a new connection.

    Returns:
        CPU seconds (``time.process_time``) spent doing it.
    """
    data, per_call = LOADS[load]
    calls = max(1, requests // per_call)
    flush_every = max(1, TIMER_FLUSH // per_call)
    if load == "close-tcp":
        return _drive_tcp_connections(build, data, calls)
    if load in PER_CONNECTION_LOADS:
        return _drive_connections(build, data, calls)
    protocol = build()
    protocol.makeConnection(NullTransport())
    receive = protocol.dataReceived
    flush = _flush_timers
    sequence = _received(load, data, calls)
    gc.collect()
    start = time.process_time()
    for i, received in enumerate(sequence):
        receive(received)
        if i % flush_every == 0:
            flush()
    return time.process_time() - start


def _received(load: str, data: bytes, calls: int) -> list[bytes]:
    """
    What each call of ``load`` receives: a new bytes object each time, as a
    socket gives (so no memo keyed by the bytes finds their hash cached).
    """
    varied = VARIED_LOADS.get(load, (data,))
    return [bytes(bytearray(varied[i % len(varied)])) for i in range(calls)]


def _drive_connections(
    build: Callable[[], _Connection], data: bytes, connections: int
) -> float:
    """One new connection per request, `CLOSE_CONCURRENCY` open at once."""
    transport = NullTransport()
    reason = Failure(ConnectionDone())
    open_: deque[_Connection] = deque()
    flush = _flush_timers
    # The connections open when the timing starts (and still open when it
    # stops) are made outside it, so each timed step is one whole life.
    for _ in range(CLOSE_CONCURRENCY):
        protocol = build()
        protocol.makeConnection(transport)
        protocol.dataReceived(data)
        open_.append(protocol)
    sequence = _received("close", data, connections)
    gc.collect()
    start = time.process_time()
    for i, received in enumerate(sequence):
        protocol = build()
        protocol.makeConnection(transport)
        protocol.dataReceived(received)
        open_.append(protocol)
        open_.popleft().connectionLost(reason)
        if i % TIMER_FLUSH == 0:
            flush()
    elapsed = time.process_time() - start
    for protocol in open_:
        protocol.connectionLost(reason)
    flush()
    return elapsed


def _drive_tcp_connections(
    build: Callable[[], _Connection], data: bytes, connections: int
) -> float:
    """`_drive_connections` over ``tcp.Server`` transports (``close-tcp``)."""
    reactor = NullReactor()
    sock = NullSocket()
    flush = _flush_timers
    waiting: deque[TCPServer] = deque(
        _tcp_connection(build(), -n, reactor, sock) for n in range(CLOSE_CONCURRENCY)
    )
    sequence = _received("close", data, connections)
    gc.collect()
    start = time.process_time()
    for i, received in enumerate(sequence):
        # A new connection is accepted; the oldest one waiting gets its request.
        waiting.append(_tcp_connection(build(), i, reactor, sock))
        waiting.popleft()._dataReceived(received)
        if reactor.writers:
            reactor.run_write_turn()
        if i % TIMER_FLUSH == 0:
            flush()
    elapsed = time.process_time() - start
    for transport in waiting:
        transport._dataReceived(data)
    reactor.run_write_turn()
    flush()
    return elapsed


def _check_tcp(kind: str, build: Callable[[], _Connection]) -> None:
    """``close-tcp``: one request answered with BODY, then the socket closed."""
    reactor = NullReactor()
    sock = NullSocket(record=True)
    transport = _tcp_connection(build(), 0, reactor, sock)
    transport._dataReceived(CLOSE_GET)
    reactor.run_write_turn()
    assert sock.sent is not None
    parser = ResponseParser()
    parser.feed(b"".join(sock.sent))
    parser.expect_response(b"GET")
    body = b""
    status = None
    while (event := parser.next_event()) is not None:
        if isinstance(event, ResponseHead):
            status = event.status
        elif isinstance(event, bytes):
            body += event
        elif isinstance(event, EndOfMessage):
            break
    if status != 200 or body != BODY or not sock.closed:
        raise SystemExit(
            f"{kind} close-tcp: answered {status} {body!r}, closed: {sock.closed}"
        )


def check(kind: str, build: Callable[[], _Connection]) -> None:
    """Make sure ``kind`` answers every request of every load with BODY."""
    _check_tcp(kind, build)
    for load, (data, per_call) in LOADS.items():
        if load == "close-tcp":
            continue
        transport = NullTransport(record=True)
        protocol = build()
        protocol.makeConnection(transport)
        protocol.dataReceived(data)
        closing = load in PER_CONNECTION_LOADS
        if closing:
            # One request, then the server closes: a second connection.
            protocol.connectionLost(Failure(ConnectionDone()))
            if not transport.closed:
                raise SystemExit(f"{kind} {load}: connection left open")
            transport.closed = False
            protocol = build()
            protocol.makeConnection(transport)
        protocol.dataReceived(data)
        if closing:
            protocol.connectionLost(Failure(ConnectionDone()))
        assert transport.written is not None
        parser = ResponseParser()
        parser.feed(b"".join(transport.written))
        statuses: list[int] = []
        body = b""
        for _ in range(2 * per_call):
            parser.expect_response(b"GET")
            while (event := parser.next_event()) is not None:
                if isinstance(event, ResponseHead):
                    statuses.append(event.status)
                elif isinstance(event, bytes):
                    body += event
                elif isinstance(event, EndOfMessage):
                    break
            if body != BODY:
                raise SystemExit(f"{kind} {load}: wrong body {body!r}")
            body = b""
        if statuses != [200] * (2 * per_call) or transport.closed is not closing:
            raise SystemExit(
                f"{kind} {load}: answered {statuses}, closed: {transport.closed}"
            )


@dataclass
class Result:
    """The best CPU time of one server under one load."""

    seconds: float
    requests: int

    @property
    def us_per_request(self) -> float:
        """CPU microseconds per request."""
        return self.seconds / self.requests * 1e6


def run(
    servers: Sequence[str], loads: Sequence[str], requests: int, rounds: int
) -> dict[tuple[str, str], Result]:
    """Time every (server, load) pair ``rounds`` times, interleaved; keep the best."""
    builders = {kind: connection_factory(kind) for kind in servers}
    for kind, build in builders.items():
        check(kind, build)
        for load in loads:
            drive(build, load, max(1, requests // 10))  # Warm-up.
    best: dict[tuple[str, str], Result] = {}
    for _ in range(rounds):
        for load in loads:
            per_call = LOADS[load][1]
            count = max(1, requests // per_call) * per_call
            for kind in servers:
                seconds = drive(builders[kind], load, requests)
                previous = best.get((kind, load))
                if previous is None or seconds < previous.seconds:
                    best[kind, load] = Result(seconds, count)
    return best


def report(
    results: dict[tuple[str, str], Result],
    servers: Sequence[str],
    loads: Sequence[str],
) -> None:
    """Print CPU per request and the ratios of issue 4."""
    print("CPU microseconds per request (best round; close: per connection)")
    widths = [max(14, len(load) + 2) for load in loads]
    print(
        f"  {'server':<14}"
        + "".join(f"{load:>{width}}" for load, width in zip(loads, widths, strict=True))
    )
    for kind in servers:
        cells = "".join(
            f"{results[kind, load].us_per_request:>{width}.2f}"
            for load, width in zip(loads, widths, strict=True)
        )
        print(f"  {kind:<14}{cells}")
    print()
    print("ratios, requests per CPU second (goal in brackets)")
    pairs = [
        ("site-txhttp", "site-twisted", ">= 1.3 at keep-alive"),
        ("native", "site-twisted", ">= 2 at keep-alive"),
        ("native", "site-txhttp", "-"),
        ("native", "raw", "- (wrk: >= 0.9 at close, with sockets)"),
    ]
    for top, bottom, goal in pairs:
        if top not in servers or bottom not in servers:
            continue
        for load in loads:
            ratio = results[bottom, load].seconds / results[bottom, load].requests
            ratio /= results[top, load].seconds / results[top, load].requests
            label = f"{top} / {bottom} {load}"
            print(f"  {label:<42}{ratio:>6.2f}x   [{goal}]")


def profile(kind: str, load: str, requests: int) -> None:
    """Run ``kind`` under cProfile and print its top functions by own time."""
    build = connection_factory(kind)
    check(kind, build)
    drive(build, load, max(1, requests // 10))
    profiler = cProfile.Profile()
    profiler.enable()
    drive(build, load, requests)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run, print."""
    options = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[1])
    options.add_argument("--requests", type=int, default=20_000)
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--quick", action="store_true", help="a short smoke run")
    options.add_argument("--servers", default=",".join(SERVERS))
    options.add_argument("--loads", default=",".join(LOADS))
    options.add_argument("--profile", choices=SERVERS, help="cProfile one server")
    options.add_argument("--load", choices=tuple(LOADS), default="keep-alive")
    args = options.parse_args(argv)
    requests, rounds = args.requests, args.rounds
    if args.quick:
        requests, rounds = 2_000, 1
    if args.profile:
        profile(args.profile, args.load, requests)
        return 0
    servers = [s for s in args.servers.split(",") if s]
    loads = [load for load in args.loads.split(",") if load]
    for name in servers:
        if name not in SERVERS:
            options.error(f"unknown server {name!r}")
    for name in loads:
        if name not in LOADS:
            options.error(f"unknown load {name!r}")
    print(
        f"in-process server benchmark: Python {platform.python_version()}"
        f" ({platform.python_implementation()}), {os.cpu_count()} CPUs;"
        f" {requests} requests per run, best of {rounds}"
    )
    results = run(servers, loads, requests, rounds)
    report(results, servers, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
