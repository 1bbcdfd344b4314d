# -*- test-case-name: txhttp.test.test_server_native -*-
"""
``HTTPServerFactory``: serve a native handler with ``HTTPChannel``.

The factory is where the clock is injected and where the channel settings are
chosen once for every connection. Its channels share one ``ChannelTimers``
for their timeouts (one reactor timer for all of them, instead of one or
two ``DelayedCall`` per connection). It knows nothing of bytes or requests:
``HTTPChannel`` does the connection, ``NativeExchange`` runs the handler.
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import ServerFactory

from txhttp._wire import DEFAULT_LIMITS, Limits
from txhttp.server._channel import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LINGER_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_LENGTH,
    DEFAULT_MAX_PIPELINE,
    DEFAULT_SERVER_HEADER,
    HTTPChannel,
)
from txhttp.server._date import DateCache
from txhttp.server._native import Handler, native_exchange_factory
from txhttp.server._timers import ChannelTimers


class HTTPServerFactory(ServerFactory):
    """
    Build an ``HTTPChannel`` per connection, answering with ``handler``.

    Example::

        def hello(request, response):
            response.headers.append((b"Content-Type", b"text/plain"))
            response.finish(b"hello\\n")

        endpoint.listen(HTTPServerFactory(hello, clock=reactor))

    Args:
        handler: The native handler (see ``txhttp.server.Request``).
        clock: Time for timeouts and ``Date``; the global reactor if ``None``.
        idle_timeout: ``HTTPChannel.timeOut`` (``None``: no idle timeout).
        max_pipeline: ``HTTPChannel.maxPipeline``.
        max_header_bytes: ``HTTPChannel.maxHeaderLength``.
        header_timeout: ``HTTPChannel.header_timeout``.
        max_body_bytes: ``HTTPChannel.max_body_bytes``.
        linger_timeout: ``HTTPChannel.linger_timeout``.
        server_header: ``HTTPChannel.server_header`` (``None``: not sent).
        limits: ``HTTPChannel.limits``, the other wire limits.
    """

    protocol: type[HTTPChannel] = HTTPChannel
    """The channel class; ``__init__`` replaces it with a subclass holding the
    settings (read them there, e.g. ``factory.protocol.timeOut``)."""

    def __init__(
        self,
        handler: Handler,
        *,
        clock: IReactorTime | None = None,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_pipeline: int = DEFAULT_MAX_PIPELINE,
        max_header_bytes: int = DEFAULT_MAX_HEADER_LENGTH,
        header_timeout: float | None = DEFAULT_HEADER_TIMEOUT,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        linger_timeout: float = DEFAULT_LINGER_TIMEOUT,
        server_header: bytes | None = DEFAULT_SERVER_HEADER,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if max_pipeline < 1:
            raise ValueError(f"max_pipeline must be at least 1, not {max_pipeline}")
        if clock is None:
            # Lazy: importing the reactor installs the default one.
            from twisted.internet import reactor  # noqa: PLC0415

            clock = reactor
        assert clock is not None
        self.clock = clock
        self.handler = handler
        timers = self.timers = ChannelTimers(clock)

        # The settings are chosen once, so they live on a subclass made here
        # rather than in every channel: a connection then stores none of
        # them (see HTTPChannel.__slots__), which keeps an idle one small.
        class ConfiguredChannel(HTTPChannel):
            """`HTTPChannel` with the settings of one `HTTPServerFactory`."""

            __slots__ = ()
            exchangeFactory = staticmethod(native_exchange_factory(handler))

            def logPrefix(self) -> str:
                """Log (and name transports) as a plain ``HTTPChannel``."""
                return "HTTPChannel"

            # Every timeout (idle through TimeoutMixin, header, lingering,
            # abort) goes to the factory's timers, on its clock. The bound
            # method itself: stored on a class it stays bound to the timers.
            callLater = timers.callLater  # type: ignore[assignment]  # mypy reads it as a method; it is bound (no self), same call
            timers_reset_sooner_cheaply = True

        ConfiguredChannel.date_cache = DateCache(clock)
        ConfiguredChannel.timeOut = idle_timeout
        ConfiguredChannel.maxPipeline = max_pipeline
        ConfiguredChannel.maxHeaderLength = max_header_bytes
        ConfiguredChannel.header_timeout = header_timeout
        ConfiguredChannel.max_body_bytes = max_body_bytes
        ConfiguredChannel.linger_timeout = linger_timeout
        ConfiguredChannel.server_header = server_header
        ConfiguredChannel.limits = limits
        self.protocol = ConfiguredChannel

    timers: ChannelTimers
    """The timers every channel of this factory schedules its timeouts on."""

    def stopFactory(self) -> None:
        """
        No longer listening: drop the timers' reactor call if none is pending.

        Connections still open keep their timeouts (their lingering close
        and abort deadlines matter most while a server stops); the reactor
        call ends with the last of them.
        """
        self.timers.stop()

    def buildProtocol(self, addr: IAddress | None) -> HTTPChannel:
        """Return a channel configured with this factory's settings."""
        channel = self.protocol(clock=self.clock)
        channel.factory = self
        return channel
