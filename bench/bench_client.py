"""
Client benchmark: txhttp's Agent against Twisted's, treq on each, aiohttp and
httpx, in one run, against one fast local server on 127.0.0.1.

Two workloads:

- small GETs over keep-alive (20,000 by default), one in flight and 50 in
  flight; reports requests per second and the client's CPU seconds
  (``time.process_time`` of the client process, so the server's work is not
  counted), and txhttp's ratios against its peers;
- one 100 MiB download, in MB/s, txhttp against Python's ``http.client``.

The server is nginx when it is installed (run on a free port with a config
this script writes into a temporary directory), else a minimal canned-response
Twisted server in a subprocess. Each client runs in its own subprocess, so
reactors and event loops never mix and CPU time is the client's alone.

Usage::

    python bench/bench_client.py            # full run
    python bench/bench_client.py --quick    # a few seconds, small counts
    python bench/bench_client.py --profile txhttp-agent  # cProfile one client
    python bench/bench_client.py --in-memory  # no sockets: client code only

``--in-memory`` drives each Agent (txhttp's and Twisted's, with their pools
and protocols) over an in-memory transport that is handed a canned nginx
response: no server, sockets or reactor, so it times the clients' own code
per request, steadily even on a busy machine.

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


def _make_agent(name: str, reactor: Any, concurrency: int) -> tuple[Any, Any]:
    """Return (agent, pool) for a Twisted-side client."""
    if name in ("txhttp-agent", "treq-txhttp"):
        from txhttp.client._agent import Agent
        from txhttp.client._pool import HTTPConnectionPool

        pool = HTTPConnectionPool(
            reactor,
            max_connections_per_host=concurrency,
            max_idle_per_host=concurrency,
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


def run_download(name: str, url: bytes) -> dict[str, float]:
    """Download the big body once, counting bytes; returns seconds and bytes."""
    result: dict[str, float] = {}
    if name == "http.client":
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url.decode())
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
        cpu0, t0 = time.process_time(), time.perf_counter()
        connection.request("GET", parts.path)
        response = connection.getresponse()
        total = 0
        while chunk := response.read(256 * 1024):
            total += len(chunk)
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
        result["bytes"] = total
        connection.close()
        return result

    async def main(reactor: Any) -> None:
        from twisted.internet.defer import Deferred
        from twisted.internet.protocol import Protocol

        agent, pool = _make_agent(
            "txhttp-agent" if name == "txhttp-agent" else "twisted-agent", reactor, 1
        )

        class Counter(Protocol):
            def __init__(self) -> None:
                self.total = 0
                self.done: Deferred[None] = Deferred()

            def dataReceived(self, data: bytes) -> None:
                self.total += len(data)

            def connectionLost(self, reason: Any = None) -> None:
                self.done.callback(None)

        cpu0, t0 = time.process_time(), time.perf_counter()
        response = await agent.request(b"GET", url)
        counter = Counter()
        response.deliverBody(counter)
        await counter.done
        result["seconds"] = time.perf_counter() - t0
        result["cpu"] = time.process_time() - cpu0
        result["bytes"] = counter.total
        await pool.closeCachedConnections()

    _twisted_run(main)
    return result


_CANNED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
    b"Date: Sat, 21 Nov 2026 02:00:00 GMT\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 13\r\nConnection: keep-alive\r\n\r\n" + SMALL_BODY
)
"""What nginx answers to GET /small, byte for byte but for the date."""


def run_in_memory(name: str, count: int) -> dict[str, float]:
    """
    ``count`` GETs through an Agent over an in-memory transport.

    One connection, reused: each request's bytes are dropped and the canned
    response is fed to the protocol at once; ``readBody`` collects the body.
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
    if name == "txhttp-agent":
        from txhttp.client._agent import Agent
        from txhttp.client._pool import HTTPConnectionPool

        agent = Agent(
            clock,
            pool=HTTPConnectionPool(clock),
            endpoint_factory=lambda _: cast(IStreamClientEndpoint, Endpoint()),
        )
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
        out = run_download(args.client, url)
    elif args.client in ("aiohttp", "httpx"):
        out = run_asyncio_client(args.client, url, args.count, args.concurrency)
    else:
        out = run_twisted_client(args.client, url, args.count, args.concurrency)
    print(json.dumps(out))


def _spawn(*argv: str, profile: bool = False) -> dict[str, float]:
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
    parsed: dict[str, float] = json.loads(last)
    return parsed


# -- the run ------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--profile", default=None, help="cProfile one client")
    parser.add_argument("--no-download", action="store_true")
    parser.add_argument(
        "--in-memory", action="store_true", help="time the Agents without sockets"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="small", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_main(args)
        return

    count = args.requests or (1000 if args.quick else 20_000)
    if args.in_memory:
        print(f"in memory (no sockets): {count} GETs per run, best of 3")
        memory_cpu: dict[str, float] = {}
        for client in ("txhttp-agent", "twisted-agent"):
            runs = [
                _spawn("--mode", "memory", "--client", client, "--count", str(count))
                for _ in range(3)
            ]
            memory_cpu[client] = min(r["cpu"] / r["requests"] for r in runs) * 1e6
            print(f"  {client:<16}{memory_cpu[client]:>8.1f} CPU us/req")
        ratio = memory_cpu["txhttp-agent"] / memory_cpu["twisted-agent"]
        print(f"  txhttp-agent / twisted-agent CPU/req: {ratio:.2f}  [<= 0.5]")
        return
    clients = [c for c in args.clients.split(",") if c]
    with local_server() as (kind, port):
        small = f"http://127.0.0.1:{port}/small"
        big = f"http://127.0.0.1:{port}/big"
        print(f"server: {kind} on 127.0.0.1:{port}; {count} GETs per run")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        if args.profile:
            for concurrency in (1, 50):
                print(f"--- cProfile {args.profile}, {concurrency} in flight")
                _spawn(
                    "--client", args.profile, "--url", small,
                    "--count", str(count), "--concurrency", str(concurrency),
                    profile=True,
                )  # fmt: skip
            return
        table: dict[tuple[str, int], dict[str, float]] = {}
        for concurrency in (1, 50):
            for client in clients:
                table[client, concurrency] = _spawn(
                    "--client", client, "--url", small,
                    "--count", str(count), "--concurrency", str(concurrency),
                )  # fmt: skip
        print(
            f"{'client':<16}{'in flight':>10}{'req/s':>12}{'CPU s':>10}{'CPU us/req':>12}"  # noqa: E501
        )
        for (client, concurrency), r in table.items():
            speed = r["requests"] / r["seconds"]
            per = r["cpu"] / r["requests"] * 1e6
            print(
                f"{client:<16}{concurrency:>10}{speed:>12,.0f}{r['cpu']:>10.2f}{per:>12.1f}"
            )

        def rps(client: str, concurrency: int) -> float | None:
            r = table.get((client, concurrency))
            return r["requests"] / r["seconds"] if r else None

        def cpu(client: str, concurrency: int) -> float | None:
            r = table.get((client, concurrency))
            return r["cpu"] / r["requests"] if r else None

        print("\nratios (goal in brackets):")
        for concurrency in (1, 50):
            pairs = [
                ("txhttp-agent / twisted-agent req/s", rps, "txhttp-agent", "twisted-agent", ">= 2"),  # noqa: E501
                ("txhttp-agent / aiohttp req/s", rps, "txhttp-agent", "aiohttp", "> 1 at 50"),  # noqa: E501
                ("txhttp-agent / httpx req/s", rps, "txhttp-agent", "httpx", "-"),
                ("treq-txhttp / treq-twisted req/s", rps, "treq-txhttp", "treq-twisted", ">= 1.5"),  # noqa: E501
                ("txhttp-agent / twisted-agent CPU/req", cpu, "txhttp-agent", "twisted-agent", "<= 0.5"),  # noqa: E501
            ]  # fmt: skip
            for label, fn, a, b, goal in pairs:
                x, y = fn(a, concurrency), fn(b, concurrency)
                if x and y:
                    print(
                        f"  {concurrency:>2} in flight: {label:<40} {x / y:6.2f}  [{goal}]"  # noqa: E501
                    )

        if not args.no_download:
            print(f"\ndownload of {BIG_BYTES >> 20} MiB:")
            speeds = {}
            # Warm the server's page cache first: the first read of the file
            # is slower whoever makes it.
            _spawn("--mode", "download", "--client", "http.client", "--url", big)
            for client in ("txhttp-agent", "twisted-agent", "http.client"):
                runs = [
                    _spawn("--mode", "download", "--client", client, "--url", big)
                    for _ in range(3)
                ]
                for r in runs:
                    assert int(r["bytes"]) == BIG_BYTES, r
                best = min(runs, key=lambda r: r["seconds"])
                speeds[client] = best["bytes"] / best["seconds"] / 1e6
                print(
                    f"  {client:<16}{speeds[client]:>10,.0f} MB/s  "
                    f"CPU {best['cpu']:.3f} s  (best of 3)"
                )
            print(
                f"  txhttp / http.client: {speeds['txhttp-agent'] / speeds['http.client']:.2f}"  # noqa: E501
                "  [>= 1]"
            )


if __name__ == "__main__":
    main()
