"""
Client benchmark: txhttp's Agent against Twisted's, treq on each, aiohttp and
httpx, in one run, against one fast local server on 127.0.0.1.

Two workloads:

- small GETs over keep-alive (20,000 by default), one in flight and 50 in
  flight; reports requests per second and the client's CPU per request
  (``time.process_time`` of the client process, so the server's work is not
  counted), and txhttp's ratios against its peers;
- a 100 MiB download, in MB/s and CPU per MiB, txhttp (optionally at several
  pool ``max_read_bytes``) against Twisted's Agent and Python's
  ``http.client``, with the same body consumer for all: ``--consumer count``
  (add up the pieces' lengths) or ``collect`` (one ``bytes``).

Every workload runs in ``--rounds`` interleaved rounds (each round runs every
client once) and keeps each client's best round, so a busy spell on a shared
machine hits all clients alike and is then left out.

The server is nginx when it is installed (run on a free port with a config
this script writes into a temporary directory), else a minimal canned-response
Twisted server in a subprocess. Each client runs in its own subprocess, so
reactors and event loops never mix and CPU time is the client's alone.

Usage::

    python bench/bench_client.py            # full run
    python bench/bench_client.py --quick    # a few seconds, small counts
    python bench/bench_client.py --profile txhttp-agent  # cProfile one client
    python bench/bench_client.py --download-only --read-sizes 65536,0,1048576
    python bench/bench_client.py --in-memory  # no sockets: client code only
    python bench/bench_client.py --in-memory --instructions  # callgrind

``--in-memory`` drives each Agent (txhttp's and Twisted's, with their pools
and protocols), and treq on each, over an in-memory transport that is handed
a canned nginx response: no server, sockets or reactor, so it times the
clients' own code per request, steadily even on a busy machine. Its
``treq-floor`` client is treq over an agent that answers at once: treq's own
cost, the least treq on any agent can cost. ``--instructions`` counts
instructions under valgrind's callgrind instead of timing.

Goals (reported, never asserted): txhttp Agent >= 2x Twisted's Agent in
requests/s at 1 and 50 in flight, ahead of aiohttp at 50, at most half of
Twisted's client CPU per request; treq on txhttp >= 1.5x treq on Twisted; the
download at least as fast as http.client.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

SMALL_BODY = b"hello, world\n"
BIG_BYTES = 100 * 1024 * 1024
CLIENTS = (
    "txhttp-agent",
    "twisted-agent",
    "treq-txhttp",
    "treq-twisted",
    "aiohttp",
    "httpx",
)


# -- servers ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on 127.0.0.1:{port} did not start")


_NGINX_CONF = """\
worker_processes 1;
daemon off;
user root root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        location = /small {{
            default_type text/plain;
            return 200 "hello, world\\n";
        }}
        location = /big {{
            default_type application/octet-stream;
            alias {tmp}/big.bin;
        }}
    }}
}}
"""

# A canned-response server for machines without nginx: counts request heads
# (GETs without bodies only) and answers each with the same response.
_RAW_SERVER = """\
import sys
from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
small = (b"HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n"
         b"Content-Length: 13\\r\\n\\r\\nhello, world\\n")
big_size = int(sys.argv[2])
big_head = (b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % big_size)
chunk = b"x" * (1 << 20)
class Canned(Protocol):
    buffer = b""
    def dataReceived(self, data):
        self.buffer += data
        while b"\\r\\n\\r\\n" in self.buffer:
            head, _, self.buffer = self.buffer.partition(b"\\r\\n\\r\\n")
            if head.startswith(b"GET /big"):
                self.transport.write(big_head)
                for _ in range(big_size // len(chunk)):
                    self.transport.write(chunk)
            else:
                self.transport.write(small)
reactor.listenTCP(int(sys.argv[1]), Factory.forProtocol(Canned),
                  interface="127.0.0.1")
reactor.run()
"""


@contextmanager
def local_server() -> Iterator[tuple[str, int]]:
    """Start nginx (or the canned server) on 127.0.0.1; yield (kind, port)."""
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="txhttp-bench-")
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    process: subprocess.Popen[bytes]
    try:
        if nginx is not None:
            with open(os.path.join(tmp, "big.bin"), "wb") as f:
                f.truncate(BIG_BYTES)
            conf = os.path.join(tmp, "nginx.conf")
            with open(conf, "w") as f:
                f.write(_NGINX_CONF.format(tmp=tmp, port=port))
            process = subprocess.Popen(
                [nginx, "-c", conf, "-p", tmp], stderr=subprocess.DEVNULL
            )
            kind = "nginx"
        else:
            process = subprocess.Popen(
                [sys.executable, "-c", _RAW_SERVER, str(port), str(BIG_BYTES)]
            )
            kind = "twisted-canned"
        try:
            _wait_for_port(port)
            yield kind, port
        finally:
            process.terminate()
            process.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- clients (each runs in its own subprocess) ------------------------------------


def _twisted_run(main: Callable[[Any], Any]) -> None:
    """Run ``main(reactor)`` (returning a Deferred) to completion."""
    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    failures: list[Any] = []

    def start() -> None:
        d = ensureDeferred(main(reactor))
        d.addErrback(failures.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if failures:
        failures[0].raiseException()


def _make_agent(
    name: str, reactor: Any, concurrency: int, read_size: int = 0, low_water: int = -1
) -> tuple[Any, Any]:
    """
    Return (agent, pool) for a Twisted-side client.

    ``read_size``: txhttp's pool ``max_read_bytes`` (0: the pool's default);
    ``low_water``: its ``read_low_water`` (-1: the pool's default, 0: off).
    Twisted's Agent always reads its reactor's ``bufferSize`` (64 KiB).
    """
    if name in ("txhttp-agent", "treq-txhttp"):
        from txhttp.client._agent import Agent
        from txhttp.client._pool import (
            DEFAULT_MAX_READ_BYTES,
            DEFAULT_READ_LOW_WATER,
            HTTPConnectionPool,
        )

        pool = HTTPConnectionPool(
            reactor,
            max_connections_per_host=concurrency,
            max_idle_per_host=concurrency,
            max_read_bytes=read_size or DEFAULT_MAX_READ_BYTES,
            read_low_water=DEFAULT_READ_LOW_WATER if low_water < 0 else low_water,
        )
        return Agent(reactor, pool=pool), pool
    from twisted.web.client import Agent as TwistedAgent
    from twisted.web.client import HTTPConnectionPool as TwistedPool

    tpool = TwistedPool(reactor, persistent=True)
    tpool.maxPersistentPerHost = concurrency
    return TwistedAgent(reactor, pool=tpool), tpool


def run_twisted_client(
    name: str, url: bytes, count: int, concurrency: int
) -> dict[str, float]:
    """Small GETs with an Agent or treq; returns seconds and CPU seconds."""
    result: dict[str, float] = {}

    async def main(reactor: Any) -> None:
        from twisted.internet.defer import gatherResults
        from twisted.web.client import readBody

        agent, pool = _make_agent(name, reactor, concurrency)
        if name.startswith("treq"):
            import treq
            from treq.client import HTTPClient

            client = HTTPClient(agent)

            async def one() -> None:
                response = await client.get(url)
                body = await treq.content(response)
                assert body == SMALL_BODY, body

        else:

            async def one() -> None:
                response = await agent.request(b"GET", url)
                body = await readBody(response)
                assert body == SMALL_BODY, body

        async def worker(n: int) -> None:
            for _ in range(n):
                await one()

        from twisted.internet.defer import Deferred

        # Warm up: open the connections, import lazily loaded code.
        await gatherResults(
            [Deferred.fromCoroutine(worker(2)) for _ in range(concurrency)]
        )
        share = count // concurrency
        cpu0, t0 = time.process_time(), time.perf_counter()
        await gatherResults(
            [Deferred.fromCoroutine(worker(share)) for _ in range(concurrency)]
        )
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
        result["requests"] = share * concurrency
        await pool.closeCachedConnections()

    _twisted_run(main)
    return result


def run_asyncio_client(
    name: str, url: bytes, count: int, concurrency: int
) -> dict[str, float]:
    """Small GETs with aiohttp or httpx; returns seconds and CPU seconds."""
    import asyncio

    result: dict[str, float] = {}
    text_url = url.decode()

    async def main() -> None:
        share = count // concurrency
        if name == "aiohttp":
            import aiohttp

            connector = aiohttp.TCPConnector(
                limit=concurrency, limit_per_host=concurrency
            )
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one() -> None:
                    async with session.get(text_url) as response:
                        body = await response.read()
                        assert body == SMALL_BODY, body

                await run(one, share)
        else:
            import httpx

            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            async with httpx.AsyncClient(limits=limits) as client:

                async def one() -> None:
                    response = await client.get(text_url)
                    assert response.content == SMALL_BODY, response.content

                await run(one, share)

    async def run(one: Callable[[], Any], share: int) -> None:
        async def worker(n: int) -> None:
            for _ in range(n):
                await one()

        await asyncio.gather(*(worker(2) for _ in range(concurrency)))
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(share) for _ in range(concurrency)))
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
        result["requests"] = share * concurrency

    asyncio.run(main())
    return result


def run_download(
    name: str,
    url: bytes,
    repeat: int,
    read_size: int,
    consumer: str,
    *,
    low_water: int = -1,
) -> dict[str, Any]:
    """
    Download the big body ``repeat`` times over one connection.

    ``consumer`` is the same for every client: ``"count"`` adds up the
    lengths of the pieces the client hands over (http.client: ``read`` of
    256 KiB at a time; the Agents: a body protocol's ``dataReceived``), and
    ``"collect"`` builds the whole body as one ``bytes`` (http.client:
    ``read()``; the Agents: ``readBody``). ``read_size`` and ``low_water``
    tune txhttp's pool (`_make_agent`). Returns the lists of wall and CPU
    seconds per download, the bytes of the last one, and the number of
    pieces the body came in (the reads that carried body bytes).
    """
    seconds: list[float] = []
    cpus: list[float] = []
    result: dict[str, Any] = {"seconds": seconds, "cpu": cpus}
    if name == "http.client":
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url.decode())
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
        for _ in range(repeat):
            cpu0, t0 = time.process_time(), time.perf_counter()
            connection.request("GET", parts.path)
            response = connection.getresponse()
            if consumer == "collect":
                total = len(response.read())
            else:
                total = 0
                while chunk := response.read(256 * 1024):
                    total += len(chunk)
            seconds.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - cpu0)
            result["bytes"] = total
        connection.close()
        return result

    async def main(reactor: Any) -> None:
        from twisted.internet.defer import Deferred
        from twisted.internet.protocol import Protocol
        from twisted.web.client import readBody

        agent, pool = _make_agent(
            "txhttp-agent" if name == "txhttp-agent" else "twisted-agent",
            reactor,
            1,
            read_size=read_size,
            low_water=low_water,
        )

        class Counter(Protocol):
            def __init__(self) -> None:
                self.total = 0
                self.pieces = 0
                self.done: Deferred[None] = Deferred()

            def dataReceived(self, data: bytes) -> None:
                self.total += len(data)
                self.pieces += 1

            def connectionLost(self, reason: Any = None) -> None:
                self.done.callback(None)

        # As with http.client (which connects lazily), the first download
        # includes the connect and the later ones reuse the connection.
        for _ in range(repeat):
            cpu0, t0 = time.process_time(), time.perf_counter()
            response = await agent.request(b"GET", url)
            if consumer == "collect":
                total = len(await readBody(response))
            else:
                counter = Counter()
                response.deliverBody(counter)
                await counter.done
                total = counter.total
                result["pieces"] = counter.pieces
            seconds.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - cpu0)
            result["bytes"] = total
        await pool.closeCachedConnections()

    _twisted_run(main)
    return result


_CANNED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
    b"Date: Sat, 21 Nov 2026 02:00:00 GMT\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 13\r\nConnection: keep-alive\r\n\r\n" + SMALL_BODY
)
"""What nginx answers to GET /small, byte for byte but for the date."""


class _NoProtocol:
    """Swallows the canned response bytes (treq-floor has no connection)."""

    def dataReceived(self, data: bytes) -> None:
        pass


class _CannedResponse:
    """The least an ``IResponse`` can cost: nginx's head, a ready body."""

    version = (b"HTTP", 1, 1)
    code = 200
    phrase = b"OK"
    length = len(SMALL_BODY)
    request = None
    previousResponse = None

    def __init__(self, headers: Any) -> None:
        self.headers = headers

    def deliverBody(self, protocol: Any) -> None:
        from twisted.python.failure import Failure
        from twisted.web.client import ResponseDone

        protocol.makeConnection(None)
        protocol.dataReceived(SMALL_BODY)
        protocol.connectionLost(Failure(ResponseDone()))

    def setPreviousResponse(self, response: Any) -> None:
        self.previousResponse = response


class _CannedAgent:
    """
    An ``IAgent`` answering at once with `_CannedResponse`: treq on it costs
    treq's own work (and the twisted.web agents treq wraps) and nothing else.
    """

    def __init__(self) -> None:
        from twisted.web.http_headers import Headers

        head = _CANNED_RESPONSE.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
        self._headers = Headers()
        for line in head:
            name, _, value = line.partition(b": ")
            self._headers.addRawHeader(name, value)

    def request(self, method: bytes, uri: bytes, headers: Any = None,
                bodyProducer: Any = None) -> Any:  # fmt: skip
        from twisted.internet.defer import succeed

        return succeed(_CannedResponse(self._headers))


def run_in_memory(name: str, count: int) -> dict[str, float]:
    """
    ``count`` GETs through an Agent, or treq on one, in memory.

    One connection, reused: each request's bytes are dropped and the canned
    response is fed to the protocol at once; ``readBody`` (treq:
    ``treq.content``) collects the body. ``treq-floor`` has no connection.
    Returns the CPU seconds (``time.process_time``) of the timed loop.
    """
    from twisted.internet.defer import succeed
    from twisted.internet.interfaces import IStreamClientEndpoint
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport
    from twisted.web.client import readBody

    class Transport(StringTransport):
        def setTcpNoDelay(self, enabled: bool) -> None:
            pass

        def abortConnection(self) -> None:
            self.loseConnection()

    connections: list[tuple[Any, StringTransport]] = []

    class Endpoint:
        def connect(self, factory: Any) -> Any:
            protocol = factory.buildProtocol(None)
            transport = Transport()
            protocol.makeConnection(transport)
            connections.append((protocol, transport))
            return succeed(protocol)

    clock = Clock()
    agent: Any
    if name in ("txhttp-agent", "treq-txhttp"):
        from txhttp.client._agent import Agent
        from txhttp.client._pool import HTTPConnectionPool

        agent = Agent(
            clock,
            pool=HTTPConnectionPool(clock),
            endpoint_factory=lambda _: cast(IStreamClientEndpoint, Endpoint()),
        )
    elif name == "treq-floor":
        agent = _CannedAgent()
        connections.append((_NoProtocol(), Transport()))
    else:
        from twisted.web.client import Agent as TwistedAgent
        from twisted.web.client import HTTPConnectionPool as TwistedPool

        class Endpoints:
            def endpointForURI(self, uri: Any) -> Endpoint:
                return Endpoint()

        agent = TwistedAgent.usingEndpointFactory(
            clock, Endpoints(), TwistedPool(clock)
        )
    url = b"http://127.0.0.1:8080/small"
    bodies: list[bytes] = []
    if name.startswith("treq"):
        import treq
        from treq.client import HTTPClient

        client = HTTPClient(agent)
        text_url = url.decode()

        def one() -> None:
            requested = client.get(text_url)
            protocol, transport = connections[0]
            transport.clear()
            protocol.dataReceived(_CANNED_RESPONSE)
            requested.addCallback(treq.content).addCallback(bodies.append)
            assert bodies.pop() == SMALL_BODY

    else:

        def one() -> None:
            requested = agent.request(b"GET", url)
            protocol, transport = connections[0]
            transport.clear()
            protocol.dataReceived(_CANNED_RESPONSE)
            requested.addCallback(readBody).addCallback(bodies.append)
            assert bodies.pop() == SMALL_BODY

    for _ in range(200):  # warm up: connect, import lazily loaded code
        one()
    cpu0 = time.process_time()
    for _ in range(count):
        one()
    return {"cpu": time.process_time() - cpu0, "requests": count}


def _worker_main(args: argparse.Namespace) -> None:
    url = args.url.encode()
    if args.mode == "memory":
        out = run_in_memory(args.client, args.count)
    elif args.mode == "download":
        out = run_download(
            args.client,
            url,
            args.count,
            args.read_size,
            args.consumer,
            low_water=args.low_water,
        )
    elif args.client in ("aiohttp", "httpx"):
        out = run_asyncio_client(args.client, url, args.count, args.concurrency)
    else:
        out = run_twisted_client(args.client, url, args.count, args.concurrency)
    print(json.dumps(out))


def _spawn(*argv: str, profile: bool = False) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--worker", *argv]
    if profile:
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-s",
            "tottime",
            os.path.abspath(__file__),
            "--worker",
            *argv,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=True)
        print(completed.stdout[:6000])
        return {}
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{completed.stderr[-3000:]}")
    last = completed.stdout.strip().splitlines()[-1]
    parsed: dict[str, Any] = json.loads(last)
    return parsed


# -- the run ------------------------------------------------------------------------


def _instructions(client: str, count: int) -> int:
    """Instructions callgrind counts for one in-memory worker run."""
    with tempfile.TemporaryDirectory(prefix="txhttp-cg-") as tmp:
        completed = subprocess.run(
            [
                "valgrind", "--tool=callgrind",
                f"--callgrind-out-file={tmp}/out",
                sys.executable, os.path.abspath(__file__), "--worker",
                "--mode", "memory", "--client", client, "--count", str(count),
            ],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    for line in completed.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1].strip())
    raise RuntimeError(f"no callgrind total for {client}:\n{completed.stderr}")


def _in_memory_instructions(clients: tuple[str, ...], count: int) -> None:
    """
    Instructions per request under callgrind: steady on a busy machine.

    Each client runs twice, with ``count`` and ``5 * count`` requests; the
    difference divided by ``4 * count`` leaves out start-up and imports.
    """
    print(f"in memory, callgrind instructions per request ({count} vs {5 * count})")
    per: dict[str, float] = {}
    for client in clients:
        small = _instructions(client, count)
        large = _instructions(client, 5 * count)
        per[client] = (large - small) / (4 * count)
        print(f"  {client:<16}{per[client]:>12,.0f} instructions/req")
    print(
        "  txhttp-agent / twisted-agent: "
        f"{per['txhttp-agent'] / per['twisted-agent']:.2f}  [<= 0.5]"
    )
    floor = per["treq-floor"]
    print(
        f"  treq-txhttp / treq-twisted (inverted): "
        f"{per['treq-twisted'] / per['treq-txhttp']:.2f}  [>= 1.5]; "
        f"txhttp under treq {per['treq-txhttp'] - floor:,.0f}, "
        f"Twisted under treq {per['treq-twisted'] - floor:,.0f}, "
        f"treq's own {floor:,.0f}"
    )


def _in_memory(args: argparse.Namespace, count: int) -> None:
    """Agents and treq without sockets, interleaved rounds, best CPU/request."""
    clients = (
        "txhttp-agent",
        "twisted-agent",
        "treq-txhttp",
        "treq-twisted",
        "treq-floor",
    )
    if args.instructions:
        _in_memory_instructions(clients, args.requests or 500)
        return
    if args.profile:
        _spawn(
            "--mode", "memory", "--client", args.profile, "--count", str(count),
            profile=True,
        )  # fmt: skip
        return
    print(f"in memory (no sockets): {count} GETs per run, best of {args.rounds}")
    runs: dict[str, list[float]] = {client: [] for client in clients}
    for _ in range(args.rounds):
        for client in clients:
            r = _spawn("--mode", "memory", "--client", client, "--count", str(count))
            runs[client].append(r["cpu"] / r["requests"] * 1e6)
    for client in clients:
        print(f"  {client:<16}{min(runs[client]):>8.1f} CPU us/req")
    ratio = min(runs["txhttp-agent"]) / min(runs["twisted-agent"])
    print(f"  txhttp-agent / twisted-agent CPU/req: {ratio:.2f}  [<= 0.5]")
    ratio = min(runs["treq-twisted"]) / min(runs["treq-txhttp"])
    print(
        f"  treq-txhttp / treq-twisted speed (CPU/req inverted): {ratio:.2f}  [>= 1.5]"
    )
    floor = min(runs["treq-floor"])
    print(
        f"  treq's own work (treq-floor: an agent that costs nothing): "
        f"{floor:.1f} us; best possible treq-txhttp / treq-twisted: "
        f"{min(runs['treq-twisted']) / floor:.2f}; txhttp under treq: "
        f"{min(runs['treq-txhttp']) - floor:.1f} us, Twisted's: "
        f"{min(runs['treq-twisted']) - floor:.1f} us"
    )


def _small_gets(
    args: argparse.Namespace, clients: list[str], small: str, count: int
) -> None:
    """
    Small GETs, interleaved rounds; best requests/s and best CPU per request.

    Each round runs every client once at each concurrency, one after the
    other, so a busy spell on the machine hits every client alike; the best
    round of each client is kept (the least disturbed one). Every other round
    runs the clients in reverse order, so none always runs first or last.
    """
    concurrencies = [int(c) for c in args.in_flight.split(",")]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for round_number in range(args.rounds):
        for concurrency in concurrencies:
            for client in clients if round_number % 2 == 0 else clients[::-1]:
                runs.setdefault((client, concurrency), []).append(
                    _spawn(
                        "--client", client, "--url", small,
                        "--count", str(count), "--concurrency", str(concurrency),
                    )
                )  # fmt: skip
    print(f"best of {args.rounds} interleaved rounds")
    print(
        f"{'client':<16}{'in flight':>10}{'req/s':>12}{'CPU us/req':>12}"
        f"{'req/s range':>22}"
    )
    best_rps: dict[tuple[str, int], float] = {}
    best_cpu: dict[tuple[str, int], float] = {}
    for (client, concurrency), rs in runs.items():
        speeds = [r["requests"] / r["seconds"] for r in rs]
        best_rps[client, concurrency] = max(speeds)
        best_cpu[client, concurrency] = min(r["cpu"] / r["requests"] for r in rs)
        spread = f"{min(speeds):,.0f}-{max(speeds):,.0f}"
        print(
            f"{client:<16}{concurrency:>10}{max(speeds):>12,.0f}"
            f"{best_cpu[client, concurrency] * 1e6:>12.1f}{spread:>22}"
        )

    print("\nratios (goal in brackets):")
    pairs = [
        ("txhttp-agent / twisted-agent req/s", best_rps, "txhttp-agent", "twisted-agent", ">= 2"),  # noqa: E501
        ("txhttp-agent / aiohttp req/s", best_rps, "txhttp-agent", "aiohttp", "> 1 at 50"),  # noqa: E501
        ("txhttp-agent / httpx req/s", best_rps, "txhttp-agent", "httpx", "-"),
        ("treq-txhttp / treq-twisted req/s", best_rps, "treq-txhttp", "treq-twisted", ">= 1.5"),  # noqa: E501
        ("txhttp-agent / twisted-agent CPU/req", best_cpu, "txhttp-agent", "twisted-agent", "<= 0.5"),  # noqa: E501
        ("treq-txhttp / treq-twisted CPU/req", best_cpu, "treq-txhttp", "treq-twisted", "-"),  # noqa: E501
    ]  # fmt: skip
    for concurrency in concurrencies:
        for label, table, a, b, goal in pairs:
            x, y = table.get((a, concurrency)), table.get((b, concurrency))
            if x and y:
                print(
                    f"  {concurrency:>2} in flight: {label:<40} {x / y:6.2f}  [{goal}]"
                )


def _download(args: argparse.Namespace, big: str) -> None:
    """
    The big download: interleaved rounds, each client in a fresh process.

    Variants: ``txhttp-agent@N`` is txhttp's Agent with a pool reading N
    bytes per ``recv`` (``--read-sizes``; 0 means the pool's default), and
    ``txhttp-agent@N/L`` one whose ``read_low_water`` is L (``--low-waters``;
    0 turns it off).
    """
    consumer = args.consumer
    low_waters = (
        [int(x) for x in args.low_waters.split(",")] if args.low_waters else [-1]
    )
    variants: list[tuple[str, str, int, int]] = []
    for size in (int(x) for x in args.read_sizes.split(",")):
        for low in low_waters:
            label = "txhttp-agent"
            if size or low >= 0:
                label += f"@{size}" if size else "@default"
            if low >= 0:
                label += f"/{low}"
            variants.append((label, "txhttp-agent", size, low))
    variants += [
        ("twisted-agent", "twisted-agent", 0, -1),
        ("http.client", "http.client", 0, -1),
    ]
    repeat = args.download_repeat
    if args.profile:
        size = int(args.read_sizes.split(",")[0])
        _spawn(
            "--mode", "download", "--client", args.profile, "--url", big,
            "--count", str(repeat), "--read-size", str(size),
            "--consumer", consumer, profile=True,
        )  # fmt: skip
        return
    print(
        f"\ndownload of {BIG_BYTES >> 20} MiB, consumer {consumer!r}: "
        f"{args.rounds} interleaved rounds of {repeat} downloads per process"
    )
    # Warm the server's page cache first: the first read of the file is
    # slower whoever makes it.
    _spawn("--mode", "download", "--client", "http.client", "--url", big)
    seconds: dict[str, list[float]] = {label: [] for label, *_ in variants}
    cpus: dict[str, list[float]] = {label: [] for label, *_ in variants}
    pieces: dict[str, list[int]] = {label: [] for label, *_ in variants}
    for _ in range(args.rounds):
        for label, client, size, low in variants:
            r = _spawn(
                "--mode", "download", "--client", client, "--url", big,
                "--count", str(repeat), "--read-size", str(size),
                "--low-water", str(low), "--consumer", consumer,
            )  # fmt: skip
            assert int(r["bytes"]) == BIG_BYTES, r
            seconds[label] += r["seconds"]
            cpus[label] += r["cpu"]
            if "pieces" in r:
                pieces[label].append(int(r["pieces"]))
    mib = BIG_BYTES / (1 << 20)
    print(
        f"  {'client':<28}{'MB/s':>10}{'CPU us/MiB':>12}{'median':>9}"
        f"{'pieces/MiB':>12}   (best of each; medians)"
    )
    speed: dict[str, float] = {}
    cpu_per: dict[str, float] = {}
    for label, *_ in variants:
        speed[label] = BIG_BYTES / min(seconds[label]) / 1e6
        cpu_per[label] = min(cpus[label]) / mib * 1e6
        median = sorted(cpus[label])[len(cpus[label]) // 2] / mib * 1e6
        counts = sorted(pieces[label])
        per = f"{counts[len(counts) // 2] / mib:.1f}" if counts else "-"
        print(
            f"  {label:<28}{speed[label]:>10,.0f}{cpu_per[label]:>12.1f}"
            f"{median:>9.1f}{per:>12}"
        )
    base = "http.client"
    for label, client, *_ in variants:
        if client == "txhttp-agent":
            print(
                f"  {label} / http.client: MB/s {speed[label] / speed[base]:.2f}"
                f" [>= 1], CPU/MiB {cpu_per[label] / cpu_per[base]:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument(
        "--in-flight", default="1,50", help="concurrencies for small GETs (1,50)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds; the best of each client is kept (3)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="cProfile one client (of the small GETs, or with --download-only "
        "or --in-memory, of that workload)",
    )
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument(
        "--download-only", action="store_true", help="only the big download"
    )
    parser.add_argument(
        "--consumer",
        choices=("count", "collect"),
        default="count",
        help="download body consumer, the same for every client: count the "
        "bytes of each piece, or collect one bytes object (count)",
    )
    parser.add_argument(
        "--read-sizes",
        default="0",
        help="txhttp pool max_read_bytes values to compare in the download, "
        "comma separated; 0 is the pool's default (0)",
    )
    parser.add_argument(
        "--low-waters",
        default="",
        help="txhttp pool read_low_water values to compare in the download "
        "(each with each --read-sizes value), comma separated; 0 turns it "
        "off (the pool's default)",
    )
    parser.add_argument(
        "--download-repeat",
        type=int,
        default=3,
        help="downloads per client process, one connection (3)",
    )
    parser.add_argument(
        "--in-memory", action="store_true", help="time the Agents without sockets"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="with --in-memory: count instructions per request under valgrind's "
        "callgrind instead of timing (slow, but steady on a busy machine); "
        "--requests sets the smaller of the two counts (500)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="small", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--read-size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--low-water", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args)
        return

    count = args.requests or (1000 if args.quick else 20_000)
    if args.in_memory:
        _in_memory(args, count)
        return
    clients = [c for c in args.clients.split(",") if c]
    with local_server() as (kind, port):
        small = f"http://127.0.0.1:{port}/small"
        big = f"http://127.0.0.1:{port}/big"
        print(f"server: {kind} on 127.0.0.1:{port}; {count} GETs per run")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        if args.download_only:
            _download(args, big)
            return
        if args.profile:
            for concurrency in (int(c) for c in args.in_flight.split(",")):
                print(f"--- cProfile {args.profile}, {concurrency} in flight")
                _spawn(
                    "--client", args.profile, "--url", small,
                    "--count", str(count), "--concurrency", str(concurrency),
                    profile=True,
                )  # fmt: skip
            return
        _small_gets(args, clients, small, count)
        if not args.no_download:
            _download(args, big)


if __name__ == "__main__":
    main()
