"""
Tests for `txhttp._tap` (``twistd txhttp``) and its plugin.

Options, loading and the service are tested in memory (``MemoryReactorClock``
and ``StringTransport``). `TwistdTests` runs the real command in a child
process on 127.0.0.1 and stops it with SIGTERM while a request is in flight.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from typing import Any

from twisted.application.service import IServiceMaker
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IProtocolFactory
from twisted.internet.protocol import ProcessProtocol, connectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import File
from twisted.web.wsgi import WSGIResource

from txhttp import _tap
from txhttp.server._channel import ChannelState, HTTPChannel

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


class Pending(Resource):
    """Holds every request open until the test finishes it."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []

    def render_GET(self, request: Request) -> int:
        self.requests.append(request)
        return NOT_DONE_YET


CREATED: list[Pending] = []


def make_pending() -> Pending:
    """A resource factory named on the command line (``--resource``)."""
    resource = Pending()
    CREATED.append(resource)
    return resource


PLAIN = Resource()
"""A resource instance named on the command line."""

NOT_A_RESOURCE = 42


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A WSGI application named on the command line."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]


def parse(*argv: str) -> _tap.Options:
    """Parse a ``twistd txhttp`` command line."""
    options = _tap.Options()
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """The command line."""

    def test_defaults(self) -> None:
        """With no options: the current directory, on tcp:8080."""
        options = parse()
        self.assertEqual(["tcp:8080"], options["listen"])
        self.assertEqual(os.getcwd(), options["path"])
        self.assertFalse(options["echo"])
        self.assertEqual(_tap.DEFAULT_GRACE_SECONDS, options["grace"])
        self.assertEqual({}, options.channel_settings())

    def test_listen_repeatable(self) -> None:
        """--listen may be given several times; all are kept, in order."""
        options = parse("--listen", "tcp:1", "--listen", "ssl:2:privateKey=k")
        self.assertEqual(["tcp:1", "ssl:2:privateKey=k"], options["listen"])

    def test_one_thing_to_serve(self) -> None:
        """Naming two things to serve is a usage error that names both."""
        with self.assertRaises(usage.UsageError) as caught:
            parse("--echo", "--path", "/tmp")
        self.assertIn("--path", str(caught.exception))
        self.assertIn("--echo", str(caught.exception))

    def test_echo_only(self) -> None:
        """--echo leaves no path to serve."""
        options = parse("--echo")
        self.assertTrue(options["echo"])
        self.assertIsNone(options["path"])

    def test_channel_settings(self) -> None:
        """Channel options map to HTTPChannel attributes, converted."""
        options = parse(
            "--idle-timeout",
            "5",
            "--header-timeout",
            "2.5",
            "--max-pipeline",
            "4",
            "--max-header-bytes",
            "1000",
            "--max-body-bytes",
            "2000",
            "--linger-timeout",
            "1",
        )
        self.assertEqual(
            {
                "timeOut": 5.0,
                "header_timeout": 2.5,
                "maxPipeline": 4,
                "maxHeaderLength": 1000,
                "max_body_bytes": 2000,
                "linger_timeout": 1.0,
            },
            options.channel_settings(),
        )
        for attribute in options.channel_settings():
            self.assertTrue(hasattr(HTTPChannel, attribute), attribute)

    def test_bad_numbers(self) -> None:
        """Zero or negative settings, and a negative grace, are refused."""
        for argv in (
            ("--max-pipeline", "0"),
            ("--idle-timeout", "-1"),
            ("--grace", "-1"),
        ):
            with self.assertRaises(usage.UsageError):
                parse(*argv)


class LoadTests(SynchronousTestCase):
    """Finding the resource or application named on the command line."""

    def test_resource_instance(self) -> None:
        """A name that is a resource is used as it is."""
        self.assertIs(PLAIN, _tap.load_resource(f"{__name__}.PLAIN"))

    def test_resource_factory(self) -> None:
        """A name that is a callable is called for the resource."""
        resource = _tap.load_resource(f"{__name__}.make_pending")
        self.assertIsInstance(resource, Pending)

    def test_not_a_resource(self) -> None:
        """Anything else is a usage error."""
        with self.assertRaises(usage.UsageError):
            _tap.load_resource(f"{__name__}.NOT_A_RESOURCE")

    def test_missing(self) -> None:
        """A name that does not import is a usage error."""
        with self.assertRaises(usage.UsageError):
            _tap.load_resource("txhttp.test.no_such_module.thing")
        with self.assertRaises(usage.UsageError):
            _tap.load_wsgi(f"{__name__}.no_such_app")

    def test_wsgi(self) -> None:
        """A WSGI application is found; a non-callable is refused."""
        self.assertIs(wsgi_app, _tap.load_wsgi(f"{__name__}.wsgi_app"))
        with self.assertRaises(usage.UsageError):
            _tap.load_wsgi(f"{__name__}.NOT_A_RESOURCE")


def connect(factory: IProtocolFactory) -> tuple[HTTPChannel, StringTransport]:
    """Build a connection with ``factory`` over a StringTransport."""
    built: object = factory.buildProtocol(PEER)
    assert isinstance(built, HTTPChannel)
    channel = built
    transport = StringTransport(peerAddress=PEER)
    channel.makeConnection(transport)
    return channel, transport


class PooledReactor(MemoryReactorClock):
    """A memory reactor with a thread pool that is never started."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = ThreadPool()

    def getThreadPool(self) -> ThreadPool:
        return self.pool


class MakeFactoryTests(SynchronousTestCase):
    """What each mode serves."""

    def make(self, *argv: str) -> IProtocolFactory:
        clock = PooledReactor()
        factory, access_log = _tap.make_factory(parse(*argv), clock, _tap.Drain(clock))
        if access_log is not None:
            self.addCleanup(access_log.close)
        return factory

    def test_path_serves_files(self) -> None:
        """--path serves a folder with static.File through a Site."""
        folder = self.mktemp()
        os.mkdir(folder)
        with open(os.path.join(folder, "a.txt"), "wb") as f:
            f.write(b"file body")
        factory = self.make("--path", folder)
        assert isinstance(factory, Site)
        self.assertIsInstance(factory.resource, File)
        channel, transport = connect(factory)
        channel.dataReceived(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(transport.value().endswith(b"\r\n\r\nfile body"))
        channel.connectionLost(Failure(ConnectionError("done")))

    def test_resource(self) -> None:
        """--resource serves the named resource."""
        factory = self.make("--resource", f"{__name__}.PLAIN")
        assert isinstance(factory, Site)
        self.assertIs(PLAIN, factory.resource)

    def test_wsgi(self) -> None:
        """--wsgi wraps the application in a WSGIResource."""
        factory = self.make("--wsgi", f"{__name__}.wsgi_app")
        assert isinstance(factory, Site)
        self.assertIsInstance(factory.resource, WSGIResource)

    def test_settings_reach_channels(self) -> None:
        """Channel options are set on every connection, Site or echo."""
        for mode in (("--echo",), ("--resource", f"{__name__}.PLAIN")):
            factory = self.make(*mode, "--max-pipeline", "3", "--idle-timeout", "9")
            channel: object = factory.buildProtocol(PEER)
            assert isinstance(channel, HTTPChannel)
            self.assertEqual(3, channel.maxPipeline)
            self.assertEqual(9.0, channel.timeOut)

    def test_echo(self) -> None:
        """--echo answers with the JSON description of the request."""
        channel, transport = connect(self.make("--echo"))
        channel.dataReceived(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        body = transport.value().partition(b"\r\n\r\n")[2]
        self.assertEqual("/x", json.loads(body)["target"])
        channel.connectionLost(Failure(ConnectionError("done")))

    def test_site_access_log_to_file(self) -> None:
        """--access-log makes the Site write Combined Log Format to the file."""
        path = self.mktemp()
        factory = self.make(
            "--resource", f"{__name__}.make_pending", "--access-log", path
        )
        factory.doStart()
        channel, _ = connect(factory)
        channel.dataReceived(b"GET /p HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n")
        CREATED[-1].requests[0].finish()
        factory.doStop()
        with open(path) as f:
            line = f.read()
        self.assertRegex(
            line, r'^127\.0\.0\.1 - - \[.*\] "GET /p HTTP/1\.1" 200 - "-" "t"\n$'
        )
        channel.connectionLost(Failure(ConnectionError("done")))


class ServiceTests(SynchronousTestCase):
    """The service: listening, and stopping gracefully."""

    def start(self, *argv: str) -> tuple[_tap.HTTPService, MemoryReactorClock]:
        clock = MemoryReactorClock()
        options = parse(*argv)
        drain = _tap.Drain(clock)
        factory, access_log = _tap.make_factory(options, clock, drain)
        service = _tap.HTTPService(
            factory,
            options["listen"],
            drain=drain,
            grace_seconds=options["grace"],
            reactor=clock,
            access_log=access_log,
        )
        service.startService()
        return service, clock

    def test_listens_on_every_endpoint(self) -> None:
        """Each --listen endpoint gets a listening port."""
        _, clock = self.start("--echo", "--listen", "tcp:8001", "--listen", "tcp:8002")
        self.assertEqual([8001, 8002], [port[0] for port in clock.tcpServers])

    def test_stop_closes_idle_connections(self) -> None:
        """Stopping closes connections with nothing in flight at once."""
        service, clock = self.start("--echo", "--listen", "tcp:8001")
        channel, transport = connect(clock.tcpServers[0][1])
        stopped = service.stopService()
        self.assertTrue(transport.disconnecting)
        self.successResultOf(stopped)
        channel.connectionLost(Failure(ConnectionError("done")))

    def test_stop_waits_for_requests_in_flight(self) -> None:
        """A request in flight is answered; then the connection closes."""
        service, clock = self.start(
            "--resource", f"{__name__}.make_pending", "--listen", "tcp:8001"
        )
        channel, transport = connect(clock.tcpServers[0][1])
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        stopped = service.stopService()
        self.assertNoResult(stopped)
        self.assertFalse(transport.disconnecting)
        # No further request is read while draining.
        channel.dataReceived(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        request = CREATED[-1].requests[0]
        self.assertEqual(1, len(CREATED[-1].requests))
        request.write(b"done")
        request.finish()
        self.assertIn(b"\r\n\r\n4\r\ndone\r\n0\r\n\r\n", transport.value())
        self.assertNotEqual(ChannelState.OPEN, channel.state)
        # The stop waits until the connection that owed a response is gone.
        clock.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertNoResult(stopped)
        channel.connectionLost(Failure(ConnectionError("done")))
        clock.advance(_tap._CLOSE_POLL_SECONDS)
        self.successResultOf(stopped)
        self.assertEqual([], clock.getDelayedCalls())

    def test_grace_period_cuts(self) -> None:
        """Requests still in flight when the grace period ends are aborted."""
        service, clock = self.start(
            "--resource",
            f"{__name__}.make_pending",
            "--listen",
            "tcp:8001",
            "--grace",
            "3",
        )
        channel, transport = connect(clock.tcpServers[0][1])
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        stopped = service.stopService()
        clock.advance(2.9)
        self.assertNoResult(stopped)
        clock.advance(0.1)
        self.successResultOf(stopped)
        self.assertTrue(transport.disconnecting)
        channel.connectionLost(Failure(ConnectionError("cut")))
        self.flushLoggedErrors()


class PluginTests(SynchronousTestCase):
    """Twisted finds the plugin."""

    def test_found(self) -> None:
        """``twistd txhttp`` is an IServiceMaker pointing at txhttp._tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("txhttp", makers)
        maker = makers["txhttp"]
        self.assertIs(_tap.Options, maker.options)
        self.assertIs(_tap.makeService, maker.makeService)

    def test_make_service(self) -> None:
        """makeService builds one listening child per endpoint."""
        service = _tap.makeService(parse("--echo", "--listen", "tcp:0"))
        self.assertIsInstance(service, _tap.HTTPService)
        assert isinstance(service, _tap.HTTPService)
        self.assertEqual(1, len(list(service)))


class _Twistd(ProcessProtocol):
    """Watches a twistd child: its port, its output, its end."""

    def __init__(self) -> None:
        self.output = b""
        self.port: Deferred[int] = Deferred()
        self.ended: Deferred[Exception] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        match = re.search(rb"starting on (\d+)", self.output)
        if match and not self.port.called:
            self.port.callback(int(match.group(1)))

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        if not self.port.called:
            self.port.errback(reason)
        value = reason.value
        assert isinstance(value, Exception)
        self.ended.callback(value)


class TwistdTests(TestCase):
    """The real command, in a child process, on 127.0.0.1."""

    timeout = 30

    @inlineCallbacks
    def test_sigterm_finishes_requests_in_flight(self) -> Any:
        """SIGTERM stops listening but lets a request in flight complete."""
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
        from twisted.internet.protocol import Protocol

        process = _Twistd()
        argv = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "--nodaemon",
            "--pidfile=",
            "--logfile=-",
            "txhttp",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--resource",
            "txhttp.test.test_tap.slow_root",
            "--grace",
            "20",
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.dirname(_tap.__file__)))]
            + [p for p in [env.get("PYTHONPATH")] if p]
        )
        transport = reactor.spawnProcess(process, sys.executable, argv, env=env)
        try:
            port = yield process.port
        except Exception:
            self.fail(
                f"twistd did not start: {process.output.decode(errors='replace')}"
            )

        class Client(Protocol):
            def __init__(self) -> None:
                self.data = b""
                self.done: Deferred[bytes] = Deferred()

            def dataReceived(self, data: bytes) -> None:
                self.data += data
                if b"slept" in self.data:
                    self.transport.write(b"")  # type: ignore[union-attr]

            def connectionLost(self, reason: Failure = connectionDone) -> None:
                self.done.callback(self.data)

        client = Client()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        client.transport.write(  # type: ignore[union-attr]
            b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        # Let the server start the request, then ask it to stop.
        yield deferLater(0.3)
        transport.signalProcess(signal.SIGTERM)
        data = yield client.done
        reason = yield process.ended
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), process.output)
        self.assertTrue(data.endswith(b"slept"), data)
        # twistd re-raises the signal it stopped on, once stopped cleanly.
        self.assertIsInstance(reason, (ProcessDone, ProcessTerminated))
        self.assertIn(b"Main loop terminated", process.output)


def deferLater(seconds: float) -> Deferred[None]:
    """Wait ``seconds`` on the global reactor (loopback tier only)."""
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)  # loopback


class _Slow(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:
        from twisted.internet import reactor as running

        def answer() -> None:
            request.setHeader(b"content-length", b"5")
            request.write(b"slept")
            request.finish()

        running.callLater(1.0, answer)
        return NOT_DONE_YET


def slow_root() -> Resource:
    """For the twistd child: a resource that answers after one second."""
    return _Slow()
