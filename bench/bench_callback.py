"""
Callback client benchmark: a load generator written on `HTTPClientConnection`,
side by side with the same loop written on txhttp's `Agent`.

The load generator opens N connections to a local server on 127.0.0.1 and
sends M small GETs on each, one at a time per connection (the next request
goes out from ``on_response_complete``), after a short warm-up. It reports
requests per second, the client's CPU per request (``time.process_time`` of
the client process only) and latency percentiles (from ``send_request`` to
``on_response_complete``). The Agent loop does the same with N coroutines,
each awaiting ``agent.request`` and ``readBody`` M times over a pool of N
connections. Both loops get the same N and M and the same time bound.

Steadiness on a shared machine:

- one server for both loops: nginx when installed (1 worker, on a free port,
  config written to a temporary directory), else a canned-response Twisted
  server in a subprocess;
- with 2 or more CPUs the server is pinned to one CPU and each client
  process to another (``os.sched_setaffinity``), so client and server never
  fight over a core;
- ``--rounds`` interleaved rounds: each round runs both loops at each N back
  to back (alternating which goes first), and each loop's best round is kept
  (best requests/s, best CPU per request); the table shows the requests/s
  range over the rounds, and the ratio of each round's pair (the two loops
  ran seconds apart) is shown as a range too.

``--in-memory`` runs both loops without sockets, server or reactor: one
connection over an in-memory transport fed nginx's canned response, timing
the clients' own Python code per request. ``--profile callback`` (or
``agent``) prints a cProfile of one worker's timed loop (add ``--in-memory``
for the in-memory loop).

Usage::

    python bench/bench_callback.py            # N = 1 and 50, 20,000 requests each
    python bench/bench_callback.py --quick    # a few seconds
    python bench/bench_callback.py --connections 10 --requests 500
    python bench/bench_callback.py --in-memory
    python bench/bench_callback.py --profile callback --in-memory

Goal (reported, never asserted): the callback loop drives at least 1.5x the
requests/s of the Agent loop.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.bench_client import (  # noqa: E402
    _CANNED_RESPONSE,
    SMALL_BODY,
    local_server,
    run_in_memory,
)

WARMUP_PER_CONNECTION = 2
"""Untimed requests per connection before the clock starts."""

CLIENTS = ("callback", "agent")

_Profiler = cProfile.Profile | None


def _percentiles(latencies: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``latencies`` (seconds), in milliseconds."""
    if not latencies:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(latencies)

    def at(fraction: float) -> float:
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return ordered[index] * 1000

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": ordered[-1] * 1000,
    }


def _profile_report(profiler: _Profiler) -> str:
    """The 45 costliest functions (own time) of ``profiler``, as text."""
    if profiler is None:
        return ""
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(45)
    return out.getvalue()


# -- CPUs and the server ------------------------------------------------------


def _cpu_plan(mode: str) -> tuple[int | None, int | None]:
    """
    (server CPU, client CPU) for the ``--pin`` mode: ``split`` puts them on
    two different CPUs this process may use, ``same`` on one CPU, ``none``
    (or ``split`` with fewer than two CPUs) pins nothing: (None, None).
    """
    allowed = sorted(os.sched_getaffinity(0))
    if mode == "same":
        return allowed[-1], allowed[-1]
    if mode == "none" or len(allowed) < 2:
        return None, None
    return allowed[0], allowed[1]


def _pin(cpu: int | None) -> None:
    """Run the calling process (and what it starts later) on ``cpu`` only."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


@contextmanager
def pinned_server(cpu: int | None) -> Iterator[tuple[str, int]]:
    """
    `bench_client.local_server` (nginx, or the canned Twisted server) pinned
    to ``cpu``: it inherits this process's CPU set when it starts (nginx's
    worker from its master), so this process is pinned for the start, then
    let go. Yields (kind, port).
    """
    allowed = os.sched_getaffinity(0)
    _pin(cpu)
    try:
        with local_server() as (kind, port):
            os.sched_setaffinity(0, allowed)
            yield kind, port
    finally:
        os.sched_setaffinity(0, allowed)


# -- the load generator on the callback API ----------------------------------


def run_callback(
    port: int, connections: int, requests: int, seconds: float, profile: bool
) -> dict[str, Any]:
    """N connections, M requests each, on `HTTPClientConnection`."""
    from twisted.internet import reactor

    from txhttp.client import (
        ConnectionFailureReason,
        HTTPClientConnection,
        HTTPClientLifecycleEventReceiver,
    )

    request = HTTPClientConnection.build_request(b"GET", b"/small")
    latencies: list[float] = []
    failures: list[str] = []
    clock = time.perf_counter
    run: dict[str, float] = {"warm": 0, "closed": 0, "t0": 0.0, "deadline": 0.0}
    profiler = cProfile.Profile() if profile else None
    expected = len(SMALL_BODY)

    class Load(HTTPClientLifecycleEventReceiver):
        """Sends ``requests`` GETs one after another, then closes."""

        def __init__(self) -> None:
            self.connection: HTTPClientConnection | None = None
            self.left = WARMUP_PER_CONNECTION
            self.timed = False
            self.sent_at = 0.0
            self.body = 0

        def send(self) -> None:
            assert self.connection is not None
            self.sent_at = clock()
            self.connection.send_request(request)

        def start_timed(self) -> None:
            self.timed = True
            self.left = requests
            self.send()

        def on_connected(self, connection: HTTPClientConnection) -> None:
            self.connection = connection
            self.send()

        def on_connection_failure(self, reason: ConnectionFailureReason) -> None:
            failures.append(reason.name)
            reactor.stop()

        def on_body_chunk(self, data: bytes) -> None:
            self.body += len(data)

        def on_response_complete(self) -> None:
            now = clock()
            if self.body != expected:
                failures.append(f"body of {self.body} bytes")
            self.body = 0
            self.left -= 1
            if self.timed:
                latencies.append(now - self.sent_at)
                if self.left and now < run["deadline"]:
                    self.send()
                else:
                    assert self.connection is not None
                    self.connection.close()
            elif self.left:
                self.send()
            else:
                run["warm"] += 1
                if run["warm"] == connections:
                    begin()

        def on_parse_error(self, error: Exception) -> None:
            failures.append(repr(error))

        def on_closed(self) -> None:
            run["closed"] += 1
            if run["closed"] == connections:
                run["seconds"] = clock() - run["t0"]
                run["cpu"] = time.process_time() - run["cpu0"]
                if profiler is not None:
                    profiler.disable()
                reactor.stop()

    loads = [Load() for _ in range(connections)]

    def begin() -> None:
        if profiler is not None:
            profiler.enable()
        run["cpu0"] = time.process_time()
        run["t0"] = clock()
        run["deadline"] = run["t0"] + seconds
        for load in loads:
            load.start_timed()

    def start() -> None:
        for load in loads:
            HTTPClientConnection(reactor, "127.0.0.1", port, load).connect()

    reactor.callWhenRunning(start)
    reactor.run()
    if failures:
        raise RuntimeError(f"callback client failed: {failures[:5]}")
    return {
        "requests": len(latencies),
        "seconds": run["seconds"],
        "cpu": run["cpu"],
        "profile": _profile_report(profiler),
        **_percentiles(latencies),
    }


# -- the same loop on the Agent ----------------------------------------------


def run_agent(
    port: int, connections: int, requests: int, seconds: float, profile: bool
) -> dict[str, Any]:
    """N coroutines, M requests each, on txhttp's `Agent`."""
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
    from twisted.web.client import readBody

    from txhttp.client import Agent, HTTPConnectionPool

    url = f"http://127.0.0.1:{port}/small".encode()
    latencies: list[float] = []
    clock = time.perf_counter
    result: dict[str, Any] = {}
    failures: list[Any] = []
    profiler = cProfile.Profile() if profile else None

    async def main() -> None:
        pool = HTTPConnectionPool(
            reactor,
            max_connections_per_host=connections,
            max_idle_per_host=connections,
        )
        agent = Agent(reactor, pool=pool)

        async def worker(count: int, timed: bool, deadline: float) -> None:
            for _ in range(count):
                sent = clock()
                response = await agent.request(b"GET", url)
                body = await readBody(response)
                if body != SMALL_BODY:
                    raise AssertionError(body)
                now = clock()
                if timed:
                    latencies.append(now - sent)
                    if now >= deadline:
                        return

        await gatherResults(
            [
                Deferred.fromCoroutine(worker(WARMUP_PER_CONNECTION, False, 0.0))
                for _ in range(connections)
            ]
        )
        if profiler is not None:
            profiler.enable()
        cpu0, t0 = time.process_time(), clock()
        await gatherResults(
            [
                Deferred.fromCoroutine(worker(requests, True, t0 + seconds))
                for _ in range(connections)
            ]
        )
        result["seconds"] = clock() - t0
        result["cpu"] = time.process_time() - cpu0
        if profiler is not None:
            profiler.disable()
        await pool.closeCachedConnections()

    def start() -> None:
        d = ensureDeferred(main())
        d.addErrback(failures.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if failures:
        failures[0].raiseException()
    return {
        "requests": len(latencies),
        **result,
        "profile": _profile_report(profiler),
        **_percentiles(latencies),
    }


# -- in memory: the clients' own code -------------------------------------------


def run_callback_memory(count: int, profile: bool) -> dict[str, Any]:
    """
    ``count`` GETs on one `HTTPClientConnection` over an in-memory transport.

    Each request's bytes are dropped and nginx's canned response is fed to
    the connection at once; the receiver counts body bytes. No sockets, no
    reactor (a `Clock` stands in). The same shape as the in-memory Agent
    loop of `bench_client.run_in_memory`, which this compares against.
    """
    from twisted.internet.defer import Deferred, succeed
    from twisted.internet.interfaces import IProtocol, IStreamClientEndpoint
    from twisted.internet.protocol import Factory
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from txhttp.client import HTTPClientConnection, HTTPClientLifecycleEventReceiver

    made: list[tuple[IProtocol, StringTransport]] = []

    class Endpoint:
        def connect(self, factory: Factory) -> Deferred[IProtocol]:
            protocol = factory.buildProtocol(None)
            assert protocol is not None
            transport = StringTransport()
            protocol.makeConnection(transport)
            made.append((protocol, transport))
            return succeed(protocol)

    class Count(HTTPClientLifecycleEventReceiver):
        def __init__(self) -> None:
            self.body = 0
            self.done = 0

        def on_body_chunk(self, data: bytes) -> None:
            self.body += len(data)

        def on_response_complete(self) -> None:
            self.done += 1

    receiver = Count()
    connection = HTTPClientConnection(
        Clock(),
        "127.0.0.1",
        8080,
        receiver,
        endpoint=cast(IStreamClientEndpoint, Endpoint()),
    )
    connection.connect()
    protocol, transport = made[0]
    request = HTTPClientConnection.build_request(b"GET", b"/small")
    send = connection.send_request
    feed = protocol.dataReceived
    clear = transport.clear
    response = _CANNED_RESPONSE

    def loop(n: int) -> None:
        for _ in range(n):
            send(request)
            clear()
            feed(response)

    loop(200)  # warm up
    receiver.body = receiver.done = 0
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    cpu0 = time.process_time()
    loop(count)
    cpu = time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
    if receiver.done != count or receiver.body != count * len(SMALL_BODY):
        raise RuntimeError(f"in-memory callback loop: {receiver.done} of {count}")
    return {"cpu": cpu, "requests": count, "profile": _profile_report(profiler)}


def run_agent_memory(count: int, profile: bool) -> dict[str, Any]:
    """``count`` GETs through txhttp's Agent in memory (`bench_client`'s loop)."""
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    out: dict[str, Any] = dict(run_in_memory("txhttp-agent", count))
    if profiler is not None:
        profiler.disable()
    out["profile"] = _profile_report(profiler)
    return out


# -- the run ------------------------------------------------------------------


def _spawn(*argv: str, limit: float, profile: bool = False) -> dict[str, Any]:
    """Run one client in its own process; return what it printed as JSON."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", *argv]
    if profile:
        command.append("--profile-worker")
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=limit
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{completed.stderr[-3000:]}")
    lines = completed.stdout.strip().splitlines()
    if profile:
        print("\n".join(lines[:-1]))
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def _worker_main(args: argparse.Namespace, seconds: float) -> None:
    _pin(args.cpu if args.cpu >= 0 else None)
    profile = bool(args.profile_worker)
    out: dict[str, Any]
    if args.mode == "memory":
        memory = run_callback_memory if args.client == "callback" else run_agent_memory
        out = memory(args.requests, profile)
    else:
        runner = run_callback if args.client == "callback" else run_agent
        n = int(args.connections)
        out = runner(args.port, n, args.requests, seconds, profile)
    report = out.pop("profile", "")
    if report:
        print(report)
    print(json.dumps(out))


def _in_memory(args: argparse.Namespace, client_cpu: int | None) -> None:
    """Both loops without sockets, interleaved rounds, best CPU per request."""
    count = args.requests or (5_000 if args.quick else 20_000)
    cpu = str(client_cpu if client_cpu is not None else -1)
    if args.profile:
        _spawn(
            "--mode", "memory", "--client", args.profile, "--requests", str(count),
            "--cpu", cpu, limit=600, profile=True,
        )  # fmt: skip
        return
    print(
        f"in memory (no sockets): {count} GETs per run, best of {args.rounds} "
        f"interleaved rounds; client pinned to CPU {client_cpu}"
    )
    runs: dict[str, list[float]] = {client: [] for client in CLIENTS}
    for round_ in range(args.rounds):
        order = CLIENTS if round_ % 2 == 0 else CLIENTS[::-1]
        for client in order:
            r = _spawn(
                "--mode", "memory", "--client", client, "--requests", str(count),
                "--cpu", cpu, limit=600,
            )  # fmt: skip
            runs[client].append(r["cpu"] / r["requests"] * 1e6)
    for client in CLIENTS:
        values = runs[client]
        print(
            f"  {client:<10}{min(values):>8.1f} CPU us/req"
            f"   (range {min(values):.1f}-{max(values):.1f})"
        )
    ratio = min(runs["agent"]) / min(runs["callback"])
    print(f"  agent / callback CPU per request: {ratio:.2f}x")


def _row(
    client: str, n: int, m: int, rs: list[dict[str, Any]]
) -> tuple[str, float, float]:
    """One table line for ``client`` at N = ``n``: best req/s, best CPU/req."""
    speeds = [r["requests"] / r["seconds"] for r in rs]
    best = max(range(len(rs)), key=lambda i: speeds[i])
    cpu = min(r["cpu"] / r["requests"] for r in rs) * 1e6
    r = rs[best]
    cut = "*" if any(x["requests"] < n * m for x in rs) else " "
    spread = f"{min(speeds):,.0f}-{max(speeds):,.0f}"
    line = (
        f"{client:<10}{n:>4}{m:>7}{cut}{speeds[best]:>9,.0f}{cpu:>12.1f}"
        f"{r['p50']:>9.3f}{r['p90']:>9.3f}{r['p99']:>9.3f}{spread:>19}"
    )
    return line, speeds[best], cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="5,000 requests per N, 3 rounds"
    )
    parser.add_argument(
        "--connections", default=None, help="comma-separated N values (1,50)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="M per connection (20,000 / N; quick 5,000 / N); in memory, the "
        "requests per run (20,000; quick 5,000)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="time bound per run (60; quick 10); a run cut short is marked *",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds; each loop's best round is kept (5; quick 3)",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="no sockets: time each client's own code per request",
    )
    parser.add_argument(
        "--profile",
        choices=CLIENTS,
        default=None,
        help="print a cProfile of one worker's timed loop instead of the table",
    )
    parser.add_argument(
        "--pin",
        choices=("split", "same", "none"),
        default="split",
        help="server and client on two different CPUs (split, the default), "
        "both on one CPU (same), or wherever the scheduler puts them (none)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="socket", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="callback", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    if args.worker:
        _worker_main(args, seconds)
        return

    rounds = args.rounds or (3 if args.quick else 5)
    args.rounds = rounds
    server_cpu, client_cpu = _cpu_plan(args.pin)
    if args.in_memory:
        _in_memory(args, client_cpu)
        return
    total = 5_000 if args.quick else 20_000
    counts = [int(n) for n in (args.connections or "1,50").split(",") if n]
    cpu = str(client_cpu if client_cpu is not None else -1)
    with pinned_server(server_cpu) as (kind, port):
        pinning = (
            f"server on CPU {server_cpu}, client on CPU {client_cpu}"
            if client_cpu is not None
            else "not pinned to CPUs"
        )
        print(
            f"server: {kind} on 127.0.0.1:{port}; {pinning}; "
            f"time bound {seconds:.0f} s per run"
        )
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

        def spawn(client: str, n: int, m: int) -> dict[str, Any]:
            return _spawn(
                "--client", client, "--port", str(port), "--connections", str(n),
                "--requests", str(m), "--seconds", str(seconds), "--cpu", cpu,
                limit=seconds + 120, profile=bool(args.profile),
            )  # fmt: skip

        if args.profile:
            for n in counts:
                m = args.requests or max(1, total // n)
                print(f"\n--- cProfile of {args.profile}, N={n}, M={m}")
                spawn(args.profile, n, m)
            return
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for round_ in range(rounds):
            for n in counts:
                m = args.requests or max(1, total // n)
                order = CLIENTS if round_ % 2 == 0 else CLIENTS[::-1]
                for client in order:
                    runs.setdefault((client, n), []).append(spawn(client, n, m))
        print(f"best of {rounds} interleaved rounds (latency: the best round's)\n")
        print(
            f"{'client':<10}{'N':>4}{'M':>7}{'req/s':>10}{'CPU us/req':>12}"
            f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'req/s range':>19}"
        )
        summary: list[str] = []
        for n in counts:
            m = args.requests or max(1, total // n)
            best: dict[str, tuple[float, float]] = {}
            for client in CLIENTS:
                line, speed, per = _row(client, n, m, runs[client, n])
                print(line)
                best[client] = (speed, per)
            paired = sorted(
                (a["requests"] / a["seconds"]) / (b["requests"] / b["seconds"])
                for a, b in zip(runs["callback", n], runs["agent", n], strict=True)
            )
            summary.append(
                f"  N={n:<4} req/s {best['callback'][0] / best['agent'][0]:5.2f}x"
                f"  (round pairs {paired[0]:.2f}/{paired[len(paired) // 2]:.2f}"
                f"/{paired[-1]:.2f})"
                f"   CPU/req agent / callback "
                f"{best['agent'][1] / best['callback'][1]:5.2f}x"
            )
        print(
            "\ncallback / agent, best against best (goal >= 1.5 in req/s); "
            "round pairs min/median/max:"
        )
        print("\n".join(summary))


if __name__ == "__main__":
    main()
