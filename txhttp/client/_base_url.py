# -*- test-case-name: txhttp.test.test_client_http -*-
"""
`BaseURLHTTPClient`: an `HTTPClient` bound to one service.

It joins relative paths to a base URL (absolute URLs pass through), merges
its default headers into each request (the request's own win), applies its own
default timeout and carries a name used in logs and interceptor contexts. It
owns the `HTTPClient` it builds (and stops it on `close`); one given to it is
shared and left running.
"""

from __future__ import annotations

from types import TracebackType

from twisted.internet.defer import Deferred, succeed
from typing_extensions import Unpack

from txhttp.client._client_response import ClientResponse
from txhttp.client._exceptions import HTTPError
from txhttp.client._http_client import HTTPClient, RequestOptions
from txhttp.client._multipart import Fields
from txhttp.client._sse import EventSource
from txhttp.client._streaming import StreamContext
from txhttp.client._url_helpers import (
    HeaderInput,
    build_url,
    merge_headers,
    validate_timeout,
    validate_url,
)

__all__ = ["BaseURLHTTPClient"]


class BaseURLHTTPClient:
    """
    Requests relative to a base URL, with defaults for one service.

    Args:
        base_url: An absolute http(s) URL; relative paths are joined to it
            (``"users"`` appends to its path, ``"/users"`` replaces it).
        client: The `HTTPClient` to send through; a new one (owned, stopped
            by `close`) if `None`.
        headers: Default headers for every request (a request's own win).
        timeout: Default timeout in seconds for requests that set none;
            `None` keeps the client's default.
        name: Names the service in logs and interceptor contexts.

    Raises:
        HTTPError: ``base_url`` or ``timeout`` is invalid.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: HTTPClient | None = None,
        headers: HeaderInput = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> None:
        self.base_url = validate_url(base_url)
        self.name = name or base_url
        self._owns_client = client is None
        self.client = client if client is not None else HTTPClient(name=self.name)
        self.headers = merge_headers(headers)
        self.timeout = validate_timeout(timeout)

    def url_for(self, path: str) -> str:
        """The absolute URL for ``path`` (absolute URLs are returned as is)."""
        if not isinstance(path, str):
            raise HTTPError(f"path must be a str, not {type(path).__name__}")
        return build_url(self.base_url, path)

    def _options(self, options: RequestOptions) -> RequestOptions:
        merged: RequestOptions = {**options}
        merged["headers"] = merge_headers(self.headers, options.get("headers"))
        if "timeout" not in options and self.timeout is not None:
            merged["timeout"] = self.timeout
        return merged

    def request(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """Send a request to ``path``; see `HTTPClient.request`."""
        try:
            url = self.url_for(path)
        except HTTPError as error:
            from twisted.internet.defer import fail  # noqa: PLC0415

            return fail(error)
        return self.client.request(method, url, **self._options(options))

    def get(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``GET`` ``path``."""
        return self.request("GET", path, **options)

    def post(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``POST`` to ``path``."""
        return self.request("POST", path, **options)

    def put(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``PUT`` to ``path``."""
        return self.request("PUT", path, **options)

    def patch(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``PATCH`` ``path``."""
        return self.request("PATCH", path, **options)

    def delete(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``DELETE`` ``path``."""
        return self.request("DELETE", path, **options)

    def head(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``HEAD`` ``path``."""
        return self.request("HEAD", path, **options)

    def options(
        self, path: str, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``OPTIONS`` ``path``."""
        return self.request("OPTIONS", path, **options)

    def post_multipart(
        self, path: str, fields: Fields, **options: Unpack[RequestOptions]
    ) -> Deferred[ClientResponse]:
        """``POST`` multipart ``fields`` to ``path`` (`HTTPClient.post_multipart`)."""
        options["files"] = fields
        return self.request("POST", path, **options)

    def stream(
        self, method: str, path: str, **options: Unpack[RequestOptions]
    ) -> StreamContext:
        """Stream the response of a request to ``path``; see `HTTPClient.stream`."""
        return self.client.stream(method, self.url_for(path), **self._options(options))

    def sse(
        self,
        path: str,
        *,
        reconnect: bool = False,
        last_event_id: str = "",
        **options: Unpack[RequestOptions],
    ) -> EventSource:
        """Server-Sent Events from ``path``; see `HTTPClient.sse`."""
        return self.client.sse(
            self.url_for(path),
            reconnect=reconnect,
            last_event_id=last_event_id,
            **self._options(options),
        )

    def start(self) -> Deferred[None]:
        """Start the underlying client (requests also start it lazily)."""
        return self.client.start()

    def close(self) -> Deferred[None]:
        """Stop the client if this object created it; fires when closed."""
        if self._owns_client:
            return self.client.stop()
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """Same as `close`."""
        return self.close()

    async def __aenter__(self) -> BaseURLHTTPClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<BaseURLHTTPClient {self.name!r} {self.base_url}>"
