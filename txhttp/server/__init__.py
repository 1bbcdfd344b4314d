"""
txhttp's HTTP/1.1 server.

`HTTPChannel` is one connection; native handlers get a lean request object, and
``twisted.web.server.Site`` can run on the channel unchanged.
"""

from txhttp.server._accesslog import AccessLog, web_log_formatter
from txhttp.server._channel import ChannelState, HTTPChannel
from txhttp.server._echo import echo_exchange_factory
from txhttp.server._exchange import (
    Exchange,
    ExchangeFactory,
    RequestDropped,
    ResponseSlot,
)
from txhttp.server._factory import HTTPServerFactory
from txhttp.server._native import Handler, Headers, Request, Response
from txhttp.server._web import site_exchange_factory, use_txhttp

__all__: list[str] = [
    "AccessLog",
    "ChannelState",
    "Exchange",
    "ExchangeFactory",
    "HTTPChannel",
    "HTTPServerFactory",
    "Handler",
    "Headers",
    "Request",
    "RequestDropped",
    "Response",
    "ResponseSlot",
    "echo_exchange_factory",
    "site_exchange_factory",
    "use_txhttp",
    "web_log_formatter",
]
