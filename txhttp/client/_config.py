# -*- test-case-name: txhttp.test.test_client_http -*-
"""
`HTTPClientConfig`: the settings of one `HTTPClient`, with named defaults.

A frozen value object: pool sizes, timeouts, TLS and proxy choices, cookie
handling and the limits that protect memory from a hostile server (body size,
decompression size and ratio, line and event lengths). Every limit has a
default here, with its reason; nothing is unlimited by default. The config is
checked once, when built, and raises `HTTPError` on a bad value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from txhttp.client._exceptions import HTTPError
from txhttp.client._url_helpers import (
    validate_positive_int,
    validate_timeout,
    validate_url,
)

__all__ = ["HTTPClientConfig"]

DEFAULT_MAX_CONNECTIONS: Final = 100
"""Open connections across all hosts; more requests wait for a free one."""

DEFAULT_MAX_CONNECTIONS_PER_HOST: Final = 10
"""Open connections to one host; keeps one client from flooding one server."""

DEFAULT_MAX_KEEPALIVE_CONNECTIONS: Final = 10
"""Idle keep-alive connections kept per host for reuse."""

DEFAULT_KEEPALIVE_TIMEOUT: Final = 60.0
"""Seconds an idle keep-alive connection is kept before it is closed."""

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds allowed to open a TCP (and TLS) connection."""

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds allowed per request: redirects, retries, head and body read."""

DEFAULT_DNS_CACHE_TTL: Final = 300.0
"""
Seconds a resolved host name is reused by the default agent's DNS cache
(``CachingHostnameResolver``); ``None`` in the config turns the cache off.
"""

DEFAULT_DNS_CACHE_MAX_ENTRIES: Final = 256
"""Host names the DNS cache holds at once; the oldest answer goes first."""

DEFAULT_MAX_RESPONSE_BODY_BYTES: Final = 10 * 1024 * 1024
"""Largest body read into memory by ``content()``; past it the read fails."""

DEFAULT_MAX_DECOMPRESSION_RATIO: Final = 200
"""Decoded-to-encoded ratio beyond which a compressed body is a bomb."""

DEFAULT_DECOMPRESSION_RATIO_GRACE_BYTES: Final = 1024 * 1024
"""Decoded bytes allowed before the ratio is checked (small bodies compress well)."""

DEFAULT_MAX_REDIRECTS: Final = 10
"""Redirects followed per request, as browsers roughly do (20) but tighter."""

DEFAULT_MAX_LINE_BYTES: Final = 1024 * 1024
"""Longest NDJSON or SSE line; a longer one fails the stream."""

DEFAULT_MAX_SSE_EVENT_BYTES: Final = 4 * 1024 * 1024
"""Largest SSE event (all its data lines together)."""

DEFAULT_USER_AGENT: Final = "txhttp"
"""The ``User-Agent`` sent unless a request sets its own."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPClientConfig:
    """
    Settings of an `HTTPClient`. All have documented defaults.

    Attributes:
        max_connections: Open connections in total.
        max_connections_per_host: Open connections per host.
        max_keepalive_connections: Idle connections kept per host.
        keepalive_timeout: Seconds before an idle connection is closed.
        connect_timeout: Seconds to connect.
        timeout: Default per-request timeout in seconds, for the whole
            exchange including reading the body (not streams); `None`
            disables it.
        dns_cache_ttl: Seconds a DNS answer is reused by the default agent
            (each client has its own bounded cache); `None` resolves every
            new connection's host name. Ignored with an injected ``agent``.
        dns_cache_max_entries: Host names the DNS cache holds at once.
        force_close: Send ``Connection: close`` and never reuse connections.
        verify_tls: Verify server certificates (turn off only in tests).
        proxy_url: An ``http://`` proxy for every request, or `None`.
        trust_env: Read ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``NO_PROXY`` from
            the environment when ``proxy_url`` is not set.
        cookies_enabled: Keep a cookie jar: store ``Set-Cookie`` and send the
            matching cookies.
        max_response_body_bytes: Largest response body held in memory
            (after decompression).
        max_decompression_ratio: Largest decoded/encoded size ratio.
        decompression_ratio_grace_bytes: Decoded bytes before the ratio is
            enforced.
        max_redirects: Redirects followed per request.
        max_line_bytes: Longest NDJSON / SSE line.
        max_sse_event_bytes: Largest SSE event.
        user_agent: Default ``User-Agent``.
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_host: int = DEFAULT_MAX_CONNECTIONS_PER_HOST
    max_keepalive_connections: int = DEFAULT_MAX_KEEPALIVE_CONNECTIONS
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    timeout: float | None = DEFAULT_TIMEOUT
    dns_cache_ttl: float | None = DEFAULT_DNS_CACHE_TTL
    dns_cache_max_entries: int = DEFAULT_DNS_CACHE_MAX_ENTRIES
    force_close: bool = False
    verify_tls: bool = True
    proxy_url: str | None = None
    trust_env: bool = False
    cookies_enabled: bool = True
    max_response_body_bytes: int = DEFAULT_MAX_RESPONSE_BODY_BYTES
    max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO
    decompression_ratio_grace_bytes: int = DEFAULT_DECOMPRESSION_RATIO_GRACE_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_sse_event_bytes: int = DEFAULT_MAX_SSE_EVENT_BYTES
    user_agent: str = DEFAULT_USER_AGENT

    def __post_init__(self) -> None:
        for name in (
            "max_connections",
            "max_connections_per_host",
            "max_keepalive_connections",
            "max_response_body_bytes",
            "max_decompression_ratio",
            "decompression_ratio_grace_bytes",
            "max_line_bytes",
            "max_sse_event_bytes",
            "dns_cache_max_entries",
        ):
            validate_positive_int(getattr(self, name), name=name)
        if isinstance(self.max_redirects, bool) or not isinstance(
            self.max_redirects, int
        ):
            raise HTTPError("max_redirects must be an int")
        if self.max_redirects < 0:
            raise HTTPError(
                f"max_redirects must be 0 or more, got {self.max_redirects}"
            )
        if self.max_connections_per_host > self.max_connections:
            raise HTTPError(
                f"max_connections_per_host ({self.max_connections_per_host}) "
                f"exceeds max_connections ({self.max_connections})"
            )
        for name in ("keepalive_timeout", "connect_timeout", "dns_cache_ttl"):
            validate_timeout(getattr(self, name), name=name)
        validate_timeout(self.timeout, name="timeout")
        if self.proxy_url is not None:
            validate_url(self.proxy_url)

    def proxy_for(
        self, url: str, environ: Mapping[str, str] | None = None
    ) -> str | None:
        """
        The proxy to use for ``url``, or `None` to connect directly.

        ``proxy_url`` wins when set. Otherwise, with ``trust_env``, the
        scheme's ``<SCHEME>_PROXY`` variable (upper or lower case) is used
        unless the host matches ``NO_PROXY`` (comma-separated names, each
        matching the host or its subdomains; ``*`` matches every host).

        Args:
            url: The absolute request URL.
            environ: The environment to read; ``os.environ`` by default.
        """
        if self.proxy_url is not None:
            return self.proxy_url
        if not self.trust_env:
            return None
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()

        def read(name: str) -> str:
            return env.get(name.lower()) or env.get(name.upper()) or ""

        for entry in read("no_proxy").split(","):
            pattern = entry.strip().lower().lstrip(".")
            if not pattern:
                continue
            pattern = pattern.split(":", 1)[0] if "]" not in pattern else pattern
            if pattern in ("*", host) or host.endswith("." + pattern):
                return None
        proxy = read(f"{scheme}_proxy")
        return proxy or None
