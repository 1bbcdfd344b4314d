# -*- test-case-name: txhttp.test.test_tap -*-
"""
``twistd txhttp``: command-line options and the service they describe.

``twisted/plugins/txhttp_plugin.py`` only points here. The service listens on
one or more endpoint strings (``tcp:8080``, ``ssl:8443:privateKey=...``,
``unix:/run/app.sock``) and serves, on txhttp's channel, one of: a folder
(``twisted.web.static.File``, the default: the current directory), a
twisted.web resource, a WSGI application, or the echo diagnostic mode. It
writes a Combined Log Format access log to a file or to the twistd log.

Stopping (SIGTERM, or SIGINT) is graceful: the listening ports close first,
idle connections close at once, connections with a request in flight close
as soon as their responses are sent, and whatever is left when the
``--grace`` period ends is cut. Reverse proxying is not offered here.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final, cast

from twisted.application import strports
from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorCore,
    IReactorTime,
)
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.python.reflect import namedAny
from twisted.web.resource import IResource
from twisted.web.server import Site
from twisted.web.static import File
from twisted.web.wsgi import WSGIResource
from zope.interface import implementer

from txhttp._wire import Fields, RequestHead
from txhttp.server._accesslog import AccessLog, web_log_formatter
from txhttp.server._channel import ChannelState, HTTPChannel
from txhttp.server._echo import echo_exchange_factory
from txhttp.server._web import site_exchange_factory

if TYPE_CHECKING:
    from txhttp.server._exchange import Exchange, ExchangeFactory, ResponseSlot

DEFAULT_LISTEN: Final = "tcp:8080"
"""Where the server listens when no ``--listen`` is given."""

DEFAULT_GRACE_SECONDS: Final = 10.0
"""How long a stopping server lets in-flight requests finish before cutting
them. Load balancers commonly wait 30 s for a draining target; 10 s keeps a
restart quick while letting ordinary requests complete."""

_log: Final = Logger(namespace="txhttp.tap")

# Command-line name -> (HTTPChannel attribute, converter, help text). Each
# default is the channel's own documented default.
CHANNEL_OPTIONS: Final[Mapping[str, tuple[str, Callable[[str], object], str]]] = {
    "idle-timeout": (
        "timeOut",
        float,
        "Seconds a connection may stay idle before it is closed.",
    ),
    "header-timeout": (
        "header_timeout",
        float,
        "Seconds a client has to send a whole request head.",
    ),
    "max-pipeline": (
        "maxPipeline",
        int,
        "Requests in progress on one connection before input is paused.",
    ),
    "max-header-bytes": (
        "maxHeaderLength",
        int,
        "Largest request header section accepted, in bytes (larger: 431).",
    ),
    "max-body-bytes": (
        "max_body_bytes",
        int,
        "Largest request body accepted, in bytes (larger: 413).",
    ),
    "linger-timeout": (
        "linger_timeout",
        float,
        "Seconds a closing connection keeps reading (and discarding) input "
        "after its last response, so the client sees that response.",
    ),
}


class Options(usage.Options):
    """The command line of ``twistd txhttp``."""

    synopsis = (
        "[--listen ENDPOINT]... "
        "[--path DIR | --resource DOTTED.NAME | --wsgi DOTTED.NAME | --echo] "
        "[options]"
    )
    longdesc = (
        "Serve HTTP/1.1 on txhttp's channel: the current directory by default "
        "(on tcp:8080), or a folder, a twisted.web resource, a WSGI "
        "application, or an echo mode that answers every request with a JSON "
        "description of what was parsed. TLS: --listen "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem. SIGTERM stops "
        "gracefully."
    )
    optFlags = [
        [
            "echo",
            None,
            "Answer every request with a JSON description of what was parsed.",
        ],
    ]
    optParameters = [
        ["path", None, None, "Serve the files under DIR (default: the current "
         "directory)."],
        ["resource", None, None, "Serve the twisted.web resource DOTTED.NAME: "
         "an IResource, or a callable returning one (e.g. app.resource for a "
         "Klein app)."],
        ["wsgi", None, None, "Serve the WSGI application DOTTED.NAME."],
        ["access-log", None, None, "Append the access log (Combined Log "
         "Format) to FILE instead of the twistd log."],
        ["grace", None, DEFAULT_GRACE_SECONDS, "Seconds in-flight requests get "
         "to finish when the server stops.", float],
        *[[name, None, None, text, convert]
          for name, (_, convert, text) in CHANNEL_OPTIONS.items()],
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Listen on ENDPOINT, a server endpoint string (repeatable;
        default tcp:8080)."""
        self["listen"].append(endpoint)

    def postOptions(self) -> None:
        """Check that at most one thing to serve was named; fill defaults."""
        chosen = [
            name for name in ("path", "resource", "wsgi") if self[name] is not None
        ]
        if self["echo"]:
            chosen.append("echo")
        if len(chosen) > 1:
            raise usage.UsageError(
                "choose one of --path, --resource, --wsgi and --echo, not "
                + " and ".join(f"--{name}" for name in chosen)
            )
        if not chosen:
            self["path"] = os.getcwd()
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["grace"] < 0:
            raise usage.UsageError(f"--grace must not be negative: {self['grace']}")
        for name in CHANNEL_OPTIONS:
            value = self[name]
            if value is not None and value <= 0:
                raise usage.UsageError(f"--{name} must be positive: {value}")

    def channel_settings(self) -> dict[str, object]:
        """The HTTPChannel attributes given on the command line."""
        return {
            attribute: self[name]
            for name, (attribute, _, _) in CHANNEL_OPTIONS.items()
            if self[name] is not None
        }


def load_resource(name: str) -> IResource:
    """
    Import ``name``; return the resource it is, or that calling it returns.

    Raises:
        usage.UsageError: The name cannot be imported, or is no resource.
    """
    try:
        found = namedAny(name)
    except (ImportError, AttributeError, ValueError) as e:
        raise usage.UsageError(f"cannot import {name!r}: {e}") from e
    if not IResource.providedBy(found) and callable(found):
        found = found()
    if not IResource.providedBy(found):
        raise usage.UsageError(f"{name!r} is not a twisted.web resource: {found!r}")
    return found


def load_wsgi(name: str) -> Callable[..., Any]:
    """
    Import the WSGI application ``name``.

    Raises:
        usage.UsageError: The name cannot be imported, or is not callable.
    """
    try:
        found = namedAny(name)
    except (ImportError, AttributeError, ValueError) as e:
        raise usage.UsageError(f"cannot import {name!r}: {e}") from e
    if not callable(found):
        raise usage.UsageError(f"{name!r} is not a WSGI application: {found!r}")
    return cast("Callable[..., Any]", found)


_CLOSE_POLL_SECONDS: Final = 0.05
"""How often a stopping server checks whether drained connections closed."""


def _is_open(channel: HTTPChannel) -> bool:
    return channel.state is not ChannelState.CLOSED


def _close(channel: HTTPChannel) -> None:
    transport = channel.transport
    if _is_open(channel) and transport is not None:
        transport.loseConnection()


class _TrackedExchange:
    """Forwards to an exchange; tells the drain when its request is over."""

    __slots__ = ("_channel", "_drain", "_inner", "_open")

    def __init__(self, inner: Exchange, drain: Drain, channel: HTTPChannel) -> None:
        self._inner = inner
        self._drain = drain
        self._channel = channel
        self._open = True

    def start(self) -> None:
        self._inner.start()

    def body_received(self, data: bytes) -> None:
        self._inner.body_received(data)

    def body_complete(self, trailers: Fields) -> None:
        self._inner.body_complete(trailers)

    def response_sent(self) -> None:
        self._inner.response_sent()
        self._end()

    def connection_lost(self, reason: Failure) -> None:
        self._inner.connection_lost(reason)
        self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self._drain.request_ended(self._channel)


class Drain:
    """
    Knows which connections have requests in flight, to stop gracefully.

    `wrap` an exchange factory and `track` each connection; `drain` then
    closes idle connections at once, tells busy ones to read no further
    request (``HTTPChannel.setReadPersistent(False)``: they close after the
    responses they owe), and aborts whatever is left when the grace period
    ends.
    """

    def __init__(self, clock: IReactorTime) -> None:
        """
        Args:
            clock: Where the grace period is timed.
        """
        self._clock = clock
        self._channels: weakref.WeakSet[HTTPChannel] = weakref.WeakSet()
        self._in_flight: dict[HTTPChannel, int] = {}
        self._done: Deferred[None] | None = None
        self._draining: weakref.WeakSet[HTTPChannel] = weakref.WeakSet()
        self._poll: IDelayedCall | None = None

    def track(self, channel: HTTPChannel) -> None:
        """Remember a new connection (for as long as it is referenced)."""
        self._channels.add(channel)

    def wrap(self, factory: ExchangeFactory) -> ExchangeFactory:
        """Return an exchange factory that counts requests in flight."""

        def build(
            channel: HTTPChannel, head: RequestHead, slot: ResponseSlot
        ) -> Exchange:
            self._in_flight[channel] = self._in_flight.get(channel, 0) + 1
            return _TrackedExchange(factory(channel, head, slot), self, channel)

        return build

    def in_flight(self) -> int:
        """How many requests are in flight, on all connections."""
        return sum(self._in_flight.values())

    def request_ended(self, channel: HTTPChannel) -> None:
        """A request's response was sent, or its connection went away."""
        left = self._in_flight.get(channel, 1) - 1
        if left > 0:
            self._in_flight[channel] = left
            return
        self._in_flight.pop(channel, None)
        if self._done is not None:
            # Outside the channel's own call stack: close once written.
            self._clock.callLater(0, _close, channel)
            if not self._in_flight:
                self._wait_closed()

    def _wait_closed(self) -> None:
        """Fire once every drained connection has written out and closed.

        The reactor drops unwritten bytes when it stops, so the stop waits
        (polling every `_CLOSE_POLL_SECONDS`, within the grace period) until
        the transports that owed responses are really gone.
        """
        if self._done is None:
            return
        if any(_is_open(channel) for channel in self._draining):
            self._poll = self._clock.callLater(_CLOSE_POLL_SECONDS, self._wait_closed)
            return
        done, self._done = self._done, None
        done.callback(None)

    def drain(self, grace_seconds: float) -> Deferred[None]:
        """
        Let every connection finish the requests it has, then close.

        Returns:
            A Deferred that fires once no request is in flight and those
            connections, and any that were closing already (a response may
            still be in their buffer), closed; or when ``grace_seconds``
            have passed (the rest are then aborted).
        """
        for channel in list(self._channels):
            state = channel.state
            if state is ChannelState.CLOSED or state is ChannelState.UNCONNECTED:
                continue
            if channel in self._in_flight:
                if state is ChannelState.OPEN:
                    channel.setReadPersistent(False)
                self._draining.add(channel)
            elif state is ChannelState.OPEN:
                if channel.transport is not None:
                    channel.transport.loseConnection()
            else:
                # Closing already, maybe with a response still buffered:
                # the stop waits for it too (the reactor would drop it).
                self._draining.add(channel)
        if not self._in_flight and not any(
            _is_open(channel) for channel in self._draining
        ):
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._done = done
        timer = self._clock.callLater(grace_seconds, self._cut)
        if not self._in_flight:
            self._wait_closed()

        def cancel_timers(result: None) -> None:
            for call in (timer, self._poll):
                if call is not None and call.active():
                    call.cancel()

        done.addCallback(cancel_timers)
        return done

    def _cut(self) -> None:
        left = list(self._in_flight)
        _log.warn(
            "grace period over: aborting {count} connection(s) with requests in flight",
            count=len(left),
        )
        self._in_flight.clear()
        for channel in {*left, *(c for c in self._draining if _is_open(c))}:
            transport = channel.transport
            if transport is not None:
                transport.abortConnection()  # type: ignore[attr-defined]
        if self._done is not None:
            done, self._done = self._done, None
            done.callback(None)


@implementer(IProtocolFactory)
class _TrackingFactory:
    """Builds connections with another factory and tells the drain of each."""

    def __init__(self, wrapped: IProtocolFactory, drain: Drain) -> None:
        self._wrapped = wrapped
        self._drain = drain

    def doStart(self) -> None:
        """Start the wrapped factory."""
        self._wrapped.doStart()

    def doStop(self) -> None:
        """Stop the wrapped factory."""
        self._wrapped.doStop()

    def buildProtocol(self, addr: IAddress | None) -> IProtocol | None:
        """Build a connection with the wrapped factory; track it."""
        protocol = self._wrapped.buildProtocol(addr)  # type: ignore[arg-type]
        # The interface says IProtocol; the drain wants the channel class.
        built: object = protocol
        if isinstance(built, HTTPChannel):
            self._drain.track(built)
        return protocol


def _build_channel(
    exchanges: ExchangeFactory, clock: IReactorTime, settings: Mapping[str, object]
) -> HTTPChannel:
    channel = HTTPChannel(clock=clock)
    channel.exchangeFactory = exchanges
    for attribute, value in settings.items():
        setattr(channel, attribute, value)
    return channel


@implementer(IProtocolFactory)
class _ChannelFactory:
    """Builds `HTTPChannel` connections with the given exchanges and settings."""

    def __init__(
        self,
        exchanges: ExchangeFactory,
        clock: IReactorTime,
        settings: Mapping[str, object],
    ) -> None:
        self._exchanges = exchanges
        self._clock = clock
        self._settings = settings

    def doStart(self) -> None:
        """Nothing to set up."""

    def doStop(self) -> None:
        """Nothing to tear down."""

    def buildProtocol(self, addr: IAddress | None) -> HTTPChannel:
        """Build one connection."""
        channel = _build_channel(self._exchanges, self._clock, self._settings)
        channel.factory = self
        return channel


class HTTPService(MultiService):
    """
    The ``twistd txhttp`` service: listening ports plus a graceful stop.

    Stopping closes the ports, then lets in-flight requests finish for up to
    ``grace_seconds`` (see `Drain`), then closes the access log.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        endpoints: list[str],
        *,
        drain: Drain,
        grace_seconds: float,
        reactor: IReactorCore,
        access_log: AccessLog | None = None,
    ) -> None:
        """
        Args:
            factory: Builds the connections.
            endpoints: Server endpoint strings to listen on.
            drain: Tracks in-flight requests of ``factory``'s connections.
            grace_seconds: How long a stop waits for in-flight requests.
            reactor: The reactor the endpoints listen with.
            access_log: Closed when the service stops.
        """
        super().__init__()
        self.factory = factory
        self.drain = drain
        self.grace_seconds = grace_seconds
        self.access_log = access_log
        tracking = _TrackingFactory(factory, drain)
        for description in endpoints:
            strports.service(description, tracking, reactor=reactor).setServiceParent(
                self
            )

    def stopService(self) -> Deferred[None]:
        """Stop listening, drain in-flight requests, close the access log."""
        stopped = super().stopService()
        assert isinstance(stopped, Deferred)

        def drain(ignored: object) -> Deferred[None]:
            return self.drain.drain(self.grace_seconds)

        def close_log(result: object) -> object:
            if self.access_log is not None:
                self.access_log.close()
            return result

        return cast("Deferred[None]", stopped.addCallback(drain).addBoth(close_log))


def make_factory(
    options: Options, reactor: IReactorCore, drain: Drain
) -> tuple[IProtocolFactory, AccessLog | None]:
    """
    Build the connection factory that ``options`` describe.

    Returns:
        The factory, and the access log to close at stop (echo mode only:
        a Site manages its own log).
    """
    clock = cast(IReactorTime, reactor)
    settings = options.channel_settings()
    if options["echo"]:
        access_log = AccessLog(clock, options["access-log"])
        exchanges = drain.wrap(echo_exchange_factory(access_log))

        return _ChannelFactory(exchanges, clock, settings), access_log

    if options["wsgi"] is not None:
        application = load_wsgi(options["wsgi"])
        pool = reactor.getThreadPool()  # type: ignore[attr-defined]
        resource: IResource = WSGIResource(reactor, pool, application)
    elif options["resource"] is not None:
        resource = load_resource(options["resource"])
    else:
        resource = File(os.path.abspath(options["path"]))
    site = Site(
        resource,
        logPath=options["access-log"],
        logFormatter=web_log_formatter,
        reactor=clock,
    )
    if "timeOut" in settings:
        site.timeOut = cast(float, settings["timeOut"])
    exchanges = drain.wrap(site_exchange_factory(site))

    # What use_txhttp does, with the drain's counting exchange factory;
    # like it, with writes batched per reactor turn (see use_txhttp).
    site_settings = {**settings, "batch_writes": True}
    site.protocol = partial(_build_channel, exchanges, clock, site_settings)  # type: ignore[assignment]
    return site, None


def makeService(options: Options) -> IService:
    """Build the ``twistd txhttp`` service (twistd's plugin entry point)."""
    # twistd has installed the reactor by now; importing it earlier would not.
    from twisted.internet import reactor  # noqa: PLC0415

    core = cast(IReactorCore, reactor)
    drain = Drain(cast(IReactorTime, reactor))
    factory, access_log = make_factory(options, core, drain)
    return HTTPService(
        factory,
        options["listen"],
        drain=drain,
        grace_seconds=options["grace"],
        reactor=core,
        access_log=access_log,
    )
