"""
Server throughput and idle-connection memory: txhttp against its peers.

Each server answers ``GET /`` with a 14-byte ``text/plain`` body. For every
server, `wrk` runs three loads at 50 connections: keep-alive, pipelined (16
requests per write, through a small Lua script) and ``Connection: close``.
The server runs in its own process pinned to CPU 0 (``taskset -c 0``) and
`wrk` is pinned to CPU 1, everything on 127.0.0.1. Then, for the servers
built on Twisted, 1,000 idle keep-alive connections are opened (each after
one request) and the growth of the server's resident set is read from
``/proc``.

Servers:

- ``native``: a txhttp handler on txhttp's channel (the fast path);
- ``site-txhttp``: a ``twisted.web.server.Site`` on txhttp's channel
  (`txhttp.server.use_txhttp`);
- ``site-twisted``: the same Site on twisted.web's own channel;
- ``aiohttp``: an aiohttp application on asyncio's default loop;
- ``raw``: a bare Twisted protocol that answers every request head with a
  canned response; the ceiling of the reactor itself.

All servers are started at once (idle ones cost nothing) and the loads run
interleaved, ``--rounds`` times (server by server within each load), keeping
each server's best round: on a shared machine, background load then hurts
every server alike instead of whichever happened to run during it. Every
other round runs the servers in reverse order: each ``Connection: close``
load leaves tens of thousands of sockets in TIME_WAIT on 127.0.0.1 for a
minute, which slows the close loads run after it, so no server should
always run last. Besides
requests per second, the server process's CPU time (user + system, from
``/proc/PID/stat``) per request is reported: it measures the server's own
cost, however busy the machine is.

Run ``python bench/bench_server.py`` (5 s per load, 2 rounds) or ``--quick``
(1 s, 1 round). `wrk` is installed with apt-get when missing. Nothing is
asserted: the goals of issue 4 are printed beside the measured ratios.

``--memory`` measures instead, in this process and without sockets, what one
idle native channel allocates (``tracemalloc`` over 1,000 channels on fake
transports, with a real reactor's timers): just connected, and after one
request. RSS figures include the transport, the socket and allocator slack;
this one is the channel's own, and is not disturbed by other processes.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from twisted.web.server import Site

BODY: Final = b"Hello, world!\n"
CONNECTIONS: Final = 50
PIPELINE_DEPTH: Final = 16
IDLE_CONNECTIONS: Final = 1000
SERVER_CPU: Final = "0"
CLIENT_CPU: Final = "1"

SERVERS: Final = ("native", "site-txhttp", "site-twisted", "aiohttp", "raw")
LOADS: Final = ("keep-alive", "pipelined", "close")
RSS_SERVERS: Final = ("native", "site-txhttp", "site-twisted", "raw")

PIPELINE_LUA: Final = f"""
init = function(args)
  local r = {{}}
  for i = 1, {PIPELINE_DEPTH} do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
"""


# --- the servers (run in a child process with --serve KIND) ---------------


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _hello_resource() -> object:
    from twisted.web.resource import Resource
    from twisted.web.server import Request

    class Hello(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            request.setHeader(b"content-type", b"text/plain")
            return BODY

    return Hello()


def _raw_factory() -> object:
    from twisted.internet.protocol import Factory, Protocol

    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    keep = head % len(BODY) + b"\r\n" + BODY
    close = head % len(BODY) + b"Connection: close\r\n\r\n" + BODY

    class Raw(Protocol):
        """Counts request heads; answers each with a canned response."""

        buffer = b""

        def dataReceived(self, data: bytes) -> None:
            buffer = self.buffer + data
            count = buffer.count(b"\r\n\r\n")
            if not count:
                self.buffer = buffer
                return
            self.buffer = buffer[buffer.rindex(b"\r\n\r\n") + 4 :]
            if b"Connection: close" in buffer:
                self.transport.write(close)  # type: ignore[union-attr]
                self.transport.loseConnection()  # type: ignore[union-attr]
            else:
                self.transport.write(keep * count)  # type: ignore[union-attr]

    return Factory.forProtocol(Raw)


def _native_factory() -> object:
    from twisted.internet import reactor

    from txhttp.server import HTTPServerFactory, Request, Response

    fields = [(b"Content-Type", b"text/plain")]

    def hello(request: Request, response: Response) -> None:
        response.headers.extend(fields)
        response.finish(BODY)

    return HTTPServerFactory(hello, clock=reactor)


def _quiet_site(site: Site) -> Site:
    """
    ``site`` with its access log written to ``os.devnull`` without rotation.

    A Site opens ``logPath`` as a ``LogFile`` that rotates (renames) its file
    after 1 MB: run as root, that would rename the ``/dev/null`` device.
    """
    from twisted.python.logfile import LogFile

    def open_log(path: str) -> LogFile:
        return LogFile(os.path.basename(path), os.path.dirname(path), rotateLength=None)

    site._openLogFile = open_log  # type: ignore[method-assign]
    return site


def serve(kind: str) -> None:
    """Run one server on an ephemeral port; print ``PORT n`` once listening."""
    _raise_fd_limit()
    if kind == "aiohttp":
        _serve_aiohttp()
        return
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor
    from twisted.web.server import Site

    factory: object
    if kind == "raw":
        factory = _raw_factory()
    elif kind == "site-twisted":
        factory = _quiet_site(Site(_hello_resource(), logPath=os.devnull))
    elif kind == "site-txhttp":
        from txhttp.server import use_txhttp

        factory = use_txhttp(_quiet_site(Site(_hello_resource(), logPath=os.devnull)))
    elif kind == "native":
        factory = _native_factory()
    else:
        raise SystemExit(f"unknown server {kind!r}")
    # The factories are built above by kind; any of them fits listenTCP.
    port = reactor.listenTCP(0, factory, interface="127.0.0.1", backlog=1024)  # type: ignore[arg-type]
    print(f"PORT {port.getHost().port}", flush=True)  # type: ignore[attr-defined]
    reactor.run()


def _serve_aiohttp() -> None:
    import asyncio

    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="text/plain")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        sockets = server.sockets  # type: ignore[attr-defined]
        print(f"PORT {sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the harness -----------------------------------------------------------


@dataclass
class Server:
    """A server process and the port it listens on."""

    kind: str
    process: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        """User plus system CPU time used by the server so far, from /proc."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of the whole line.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        """The server's resident set size, from /proc."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def stop(self) -> None:
        """Terminate the process and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(kind: str) -> Server:
    """Start ``kind`` pinned to the server CPU and wait for its port."""
    command = [sys.executable, os.path.abspath(__file__), "--serve", kind]
    if shutil.which("taskset"):
        command = ["taskset", "-c", SERVER_CPU, *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.match(r"PORT (\d+)", line)
    if match is None:
        process.kill()
        process.wait()
        raise RuntimeError(f"server {kind} did not start (said {line!r})")
    return Server(kind, process, int(match.group(1)))


def ensure_wrk() -> str:
    """Return the path of wrk, installing it with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
    if subprocess.call(["apt-get", "install", "-y", "wrk"]) != 0:
        subprocess.check_call(["apt-get", "update"])
        subprocess.check_call(["apt-get", "install", "-y", "wrk"])
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


@dataclass
class Measure:
    """One wrk run: requests per second and server CPU per request."""

    rate: float
    cpu_us: float


def run_wrk(wrk: str, port: int, load: str, seconds: float, lua: str) -> float:
    """Run one wrk load against ``port``; return requests per second."""
    return run_wrk_counted(wrk, port, load, seconds, lua)[0]


def measure(wrk: str, server: Server, load: str, seconds: float, lua: str) -> Measure:
    """Run one load against ``server``; return its rate and CPU per request."""
    before = server.cpu_seconds()
    rate, count = run_wrk_counted(wrk, server.port, load, seconds, lua)
    used = server.cpu_seconds() - before
    return Measure(rate, used * 1e6 / count if count else float("nan"))


def run_wrk_counted(
    wrk: str, port: int, load: str, seconds: float, lua: str
) -> tuple[float, int]:
    """Run one wrk load; return requests per second and requests completed."""
    command = [
        wrk,
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
    ]
    if load == "pipelined":
        command += ["-s", lua]
    elif load == "close":
        command += ["-H", "Connection: close"]
    command.append(f"http://127.0.0.1:{port}/")
    if shutil.which("taskset"):
        command = ["taskset", "-c", CLIENT_CPU, *command]
    output = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if match is None or count is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        print(f"    ({errors.group(1)} non-2xx responses)", file=sys.stderr)
    return float(match.group(1)), int(count.group(1))


def idle_rss_per_connection(server: Server) -> float:
    """Open many keep-alive connections, one request each; bytes of RSS each."""
    _raise_fd_limit()
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    warm = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    for sock in warm:
        sock.sendall(request)
        _read_response(sock)
    time.sleep(0.5)
    before = server.rss_kib()
    sockets: list[socket.socket] = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(request)
            _read_response(sock)
            sockets.append(sock)
        time.sleep(1.0)
        after = server.rss_kib()
    finally:
        for sock in sockets + warm:
            sock.close()
    return (after - before) * 1024 / IDLE_CONNECTIONS


def idle_channel_bytes(count: int = IDLE_CONNECTIONS) -> tuple[float, float]:
    """
    Bytes ``tracemalloc`` sees per idle native channel, on fake transports.

    Returns:
        The bytes per channel just after ``connectionMade``, and after one
        keep-alive request was answered. The fake transports are not counted.
    """
    import gc
    import tracemalloc

    from twisted.internet.address import IPv4Address
    from twisted.internet.epollreactor import EPollReactor
    from twisted.internet.interfaces import ITCPTransport
    from zope.interface import implementer

    from txhttp.server import HTTPServerFactory, Request, Response

    address = IPv4Address("TCP", "127.0.0.1", 8080)

    @implementer(ITCPTransport)
    class Fake:
        """Just enough of a TCP transport; writes are dropped."""

        __slots__ = ()

        def write(self, data: bytes) -> None:
            pass

        def writeSequence(self, data: object) -> None:
            pass

        def loseConnection(self) -> None:
            pass

        abortConnection = loseWriteConnection = loseConnection
        pauseProducing = resumeProducing = unregisterProducer = loseConnection

        def registerProducer(self, producer: object, streaming: bool) -> None:
            pass

        def setTcpNoDelay(self, enabled: bool) -> None:
            pass

        setTcpKeepAlive = setTcpNoDelay

        def getTcpNoDelay(self) -> bool:
            return True

        getTcpKeepAlive = getTcpNoDelay

        def getPeer(self) -> IPv4Address:
            return address

        getHost = getPeer

    def hello(request: Request, response: Response) -> None:
        response.headers.append((b"Content-Type", b"text/plain"))
        response.finish(BODY)

    # A reactor object is only the clock here: it is never run.
    factory = HTTPServerFactory(hello, clock=EPollReactor())
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    results = []
    for requests in (0, 1):
        transports = [Fake() for _ in range(count)]
        channels = []
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for transport in transports:
            channel = factory.buildProtocol(address)
            channel.makeConnection(transport)
            for _ in range(requests):
                channel.dataReceived(request)
            channels.append(channel)
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        results.append((used - sys.getsizeof(channels)) / count)
        del channels
    return results[0], results[1]


def _read_response(sock: socket.socket) -> None:
    data = b""
    while not data.endswith(BODY):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"connection closed early after {data!r}")
        data += chunk


def _ratio(
    results: dict[tuple[str, str], float], a: tuple[str, str], b: tuple[str, str]
) -> str:
    if a in results and b in results and results[b]:
        return f"{results[a] / results[b]:.2f}x"
    return "n/a"


GOALS: Final = [
    ("native keep-alive / site-twisted", ("native", "keep-alive"),
     ("site-twisted", "keep-alive"), ">= 2x"),
    ("native keep-alive / raw", ("native", "keep-alive"),
     ("raw", "keep-alive"), ">= 0.8x"),
    ("native pipelined / site-twisted", ("native", "pipelined"),
     ("site-twisted", "pipelined"), ">= 3x"),
    ("native close / raw", ("native", "close"), ("raw", "close"), ">= 0.9x"),
    ("site-txhttp / site-twisted keep-alive", ("site-txhttp", "keep-alive"),
     ("site-twisted", "keep-alive"), ">= 1.3x"),
    ("site-txhttp / site-twisted pipelined", ("site-txhttp", "pipelined"),
     ("site-twisted", "pipelined"), "-"),
    ("site-txhttp / site-twisted close", ("site-txhttp", "close"),
     ("site-twisted", "close"), "-"),
    ("native keep-alive / aiohttp", ("native", "keep-alive"),
     ("aiohttp", "keep-alive"), "-"),
]  # fmt: skip
"""The ratios issue 4 sets goals for (higher is better for the first server)."""


def _table(
    values: dict[tuple[str, str], float], fmt: str, out: Callable[[str], None]
) -> None:
    out(f"{'server':<14}" + "".join(f"{load:>14}" for load in LOADS))
    for kind in SERVERS:
        cells = [values.get((kind, load)) for load in LOADS]
        if all(cell is None for cell in cells):
            continue
        out(
            f"{kind:<14}"
            + "".join(f"{cell:>14{fmt}}" if cell else f"{'-':>14}" for cell in cells)
        )


def report(
    results: dict[tuple[str, str], Measure],
    rss: dict[str, float],
    out: Callable[[str], None] = print,
) -> None:
    """Print requests/s, CPU per request, the ratios against the goals, RSS."""
    rates = {key: m.rate for key, m in results.items()}
    # Inverted, so that a ratio of CPU costs reads like a ratio of rates.
    per_cpu_second = {key: 1e6 / m.cpu_us for key, m in results.items() if m.cpu_us}
    out("")
    out("requests per second (best round)")
    _table(rates, ",.0f", out)
    out("")
    out("server CPU per request, microseconds (best round)")
    _table({key: m.cpu_us for key, m in results.items()}, ",.1f", out)
    out("")
    out(f"{'ratio':<40}{'by rate':>10}{'by CPU':>10}{'goal':>10}")
    for name, a, b, goal in GOALS:
        out(
            f"{name:<40}{_ratio(rates, a, b):>10}"
            f"{_ratio(per_cpu_second, a, b):>10}{goal:>10}"
        )
    if rss:
        out("")
        out(f"RSS per idle keep-alive connection ({IDLE_CONNECTIONS} connections)")
        for kind, value in rss.items():
            out(f"  {kind:<14}{value / 1024:>8.2f} KiB   (goal for native: < 1.5)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--serve``, one server)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per load, 1 round")
    parser.add_argument("--seconds", type=float, help="seconds per load")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (best kept)")
    parser.add_argument("--servers", help="comma-separated subset of servers")
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS test")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="only measure tracemalloc bytes per idle channel, in process",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.memory:
        fresh, used = idle_channel_bytes()
        print(f"tracemalloc bytes per idle native channel ({IDLE_CONNECTIONS})")
        print(f"  just connected        {fresh:>8.0f}")
        print(f"  after one request     {used:>8.0f}")
        return 0
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 2)
    kinds = args.servers.split(",") if args.servers else list(SERVERS)
    wrk = ensure_wrk()
    results: dict[tuple[str, str], Measure] = {}
    rss: dict[str, float] = {}
    servers: list[Server] = []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(PIPELINE_LUA)
    try:
        for kind in kinds:
            try:
                servers.append(start_server(kind))
            except RuntimeError as e:
                print(f"{kind}: skipped ({e})", file=sys.stderr)
        if not args.quick:
            for server in servers:
                run_wrk(wrk, server.port, "keep-alive", 1.0, lua.name)
        for round_ in range(1, rounds + 1):
            # Reversed every other round: see the module docstring.
            order = servers if round_ % 2 else servers[::-1]
            for load in LOADS:
                for server in order:
                    m = measure(wrk, server, load, seconds, lua.name)
                    print(
                        f"round {round_}  {server.kind:<14}{load:<12}"
                        f"{m.rate:>12,.0f} requests/s{m.cpu_us:>10.1f} us CPU/request"
                    )
                    best = results.get((server.kind, load))
                    if best is None:
                        results[server.kind, load] = m
                    else:
                        best.rate = max(best.rate, m.rate)
                        best.cpu_us = min(best.cpu_us, m.cpu_us)
        if not args.no_rss:
            for server in servers:
                if server.kind in RSS_SERVERS:
                    rss[server.kind] = idle_rss_per_connection(server)
    finally:
        for server in servers:
            server.stop()
        os.unlink(lua.name)
    report(results, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
