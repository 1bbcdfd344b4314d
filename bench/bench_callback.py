"""
Callback client benchmark: a load generator written on `HTTPClientConnection`,
side by side with the same loop written on txhttp's `Agent`.

The load generator opens N connections to a local server on 127.0.0.1 and
sends M small GETs on each, one at a time per connection (the next request
goes out from ``on_response_complete``), after a short warm-up. It stops
sending when the time bound passes and reports requests per second, the
client's CPU seconds (``time.process_time`` of the client process only) and
latency percentiles (from send to ``on_response_complete``). The Agent loop
does the same with N coroutines, each awaiting ``agent.request`` and
``readBody`` M times over a pool of N connections.

The server is the one `bench_client` starts (nginx when installed, else its
canned Twisted server in a subprocess). Each client runs in its own process.

Usage::

    python bench/bench_callback.py            # N = 1 and 50, 20,000 requests each
    python bench/bench_callback.py --quick    # a few seconds
    python bench/bench_callback.py --connections 10 --requests 500

Goal (reported, never asserted): the callback loop drives at least 1.5x the
requests/s of the Agent loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.bench_client import SMALL_BODY, local_server  # noqa: E402

WARMUP_PER_CONNECTION = 2
"""Untimed requests per connection before the clock starts."""


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


# -- the load generator on the callback API ----------------------------------


def run_callback(
    port: int, connections: int, requests: int, seconds: float
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
            if self.body != len(SMALL_BODY):
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
                reactor.stop()

    loads = [Load() for _ in range(connections)]

    def begin() -> None:
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
        **_percentiles(latencies),
    }


# -- the same loop on the Agent ----------------------------------------------


def run_agent(
    port: int, connections: int, requests: int, seconds: float
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
        cpu0, t0 = time.process_time(), clock()
        await gatherResults(
            [
                Deferred.fromCoroutine(worker(requests, True, t0 + seconds))
                for _ in range(connections)
            ]
        )
        result["seconds"] = clock() - t0
        result["cpu"] = time.process_time() - cpu0
        await pool.closeCachedConnections()

    def start() -> None:
        d = ensureDeferred(main())
        d.addErrback(failures.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if failures:
        failures[0].raiseException()
    return {"requests": len(latencies), **result, **_percentiles(latencies)}


# -- the run ------------------------------------------------------------------


def _spawn(*argv: str, limit: float) -> dict[str, Any]:
    """Run one client in its own process; return what it printed as JSON."""
    command = [sys.executable, os.path.abspath(__file__), *argv]
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=limit
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{completed.stderr[-3000:]}")
    parsed: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts")
    parser.add_argument(
        "--connections", default=None, help="comma-separated N values (1,50)"
    )
    parser.add_argument(
        "--requests", type=int, default=None, help="M per connection (20000 / N)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="time bound per run (60; quick 10)"
    )
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    if args.worker:
        runner = run_callback if args.worker == "callback" else run_agent
        n = int(args.connections)
        print(json.dumps(runner(args.port, n, args.requests, seconds)))
        return

    total = 1_000 if args.quick else 20_000
    counts = [int(n) for n in (args.connections or "1,50").split(",") if n]
    with local_server() as (kind, port):
        print(f"server: {kind} on 127.0.0.1:{port}; time bound {seconds:.0f} s per run")
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
        header = (
            f"{'client':<10}{'N':>4}{'M':>7}{'req/s':>10}{'CPU us/req':>12}"
            f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        )
        print(header)
        ratios = []
        for n in counts:
            m = args.requests or max(1, total // n)
            rows = {}
            for client in ("callback", "agent"):
                r = rows[client] = _spawn(
                    "--worker", client, "--port", str(port), "--connections", str(n),
                    "--requests", str(m), "--seconds", str(seconds),
                    limit=seconds + 120,
                )  # fmt: skip
                speed = r["requests"] / r["seconds"]
                per = r["cpu"] / r["requests"] * 1e6
                print(
                    f"{client:<10}{n:>4}{m:>7}{speed:>10,.0f}{per:>12.1f}"
                    f"{r['p50']:>9.3f}{r['p90']:>9.3f}{r['p99']:>9.3f}{r['max']:>9.3f}"
                )
            fast, slow = rows["callback"], rows["agent"]
            ratio = (fast["requests"] / fast["seconds"]) / (
                slow["requests"] / slow["seconds"]
            )
            ratios.append((n, ratio))
        print("\ncallback / agent req/s (goal >= 1.5):")
        for n, ratio in ratios:
            print(f"  N={n:<4} {ratio:5.2f}x")


if __name__ == "__main__":
    main()
