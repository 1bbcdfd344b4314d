# -*- test-case-name: txhttp.test.test_client_http -*-
"""
Cookies and credentials for `HTTPClient`.

Cookies: the standard library's `http.cookiejar.CookieJar` decides which
cookies to store and send (domain, path, secure, expiry rules). It speaks
``urllib`` objects, so `cookie_header` and `store_cookies` adapt a URL and
response headers to it. Time for expiry comes from the jar's policy (wall
clock), which only matters for cookies with ``Expires``/``Max-Age``.

Credentials: `BasicAuth` (RFC 7617) and `BearerAuth` (RFC 6750) turn into an
``Authorization`` value; `DigestAuth` (RFC 7616, in ``_digest``) answers a
challenge instead, so it has no value of its own.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from urllib.parse import urlsplit

from twisted.web.http_headers import Headers

from txhttp.client._digest import DigestAuth
from txhttp.client._exceptions import HTTPError

__all__ = [
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "authorization_header",
    "cookie_header",
    "store_cookies",
]


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials (RFC 7617); the password is never shown in repr."""

    username: str
    password: str = field(repr=False, default="")

    def header_value(self) -> str:
        """The ``Authorization`` value: ``Basic base64(user:password)``."""
        if ":" in self.username:
            raise HTTPError("basic auth username must not contain ':' (RFC 7617)")
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class BearerAuth:
    """An OAuth 2.0 bearer token (RFC 6750); never shown in repr."""

    token: str = field(repr=False)

    def header_value(self) -> str:
        """The ``Authorization`` value: ``Bearer <token>``."""
        if not self.token or any(c in self.token for c in "\r\n\x00 "):
            raise HTTPError("bearer token must be non-empty, without spaces or CR/LF")
        return "Bearer " + self.token


Auth = BasicAuth | BearerAuth | DigestAuth | tuple[str, str]
"""What ``auth=`` accepts: a credentials object or ``(username, password)``."""


def authorization_header(auth: Auth) -> str:
    """
    The ``Authorization`` value for ``auth``.

    Raises:
        HTTPError: ``auth`` is of an unsupported type or invalid.
    """
    if isinstance(auth, tuple):
        if len(auth) != 2 or not all(isinstance(p, str) for p in auth):
            raise HTTPError("auth tuple must be (username: str, password: str)")
        return BasicAuth(auth[0], auth[1]).header_value()
    if isinstance(auth, BasicAuth | BearerAuth):
        return auth.header_value()
    if isinstance(auth, DigestAuth):
        raise HTTPError("DigestAuth answers a challenge; it has no header up front")
    raise HTTPError(
        f"auth must be BasicAuth, BearerAuth, DigestAuth or (username, password), "
        f"not {type(auth).__name__}"
    )


class _JarRequest:
    """The slice of ``urllib.request.Request`` that `CookieJar` uses."""

    def __init__(self, url: str, method: str) -> None:
        self._url = url
        self._method = method
        parts = urlsplit(url)
        self.type = parts.scheme
        self.host = parts.netloc
        self.origin_req_host = parts.hostname or ""
        self.unverifiable = False
        self.headers: dict[str, str] = {}

    def get_full_url(self) -> str:
        return self._url

    def get_host(self) -> str:
        return self.host

    def get_type(self) -> str:
        return self.type

    def get_origin_req_host(self) -> str:
        return self.origin_req_host

    def is_unverifiable(self) -> bool:
        return self.unverifiable

    def has_header(self, name: str) -> bool:
        return name.lower() in {k.lower() for k in self.headers}

    def get_header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default

    def header_items(self) -> list[tuple[str, str]]:
        return list(self.headers.items())

    def add_unredirected_header(self, name: str, value: str) -> None:
        self.headers[name] = value


class _JarHeaders:
    """The slice of `email.message.Message` that `CookieJar` reads."""

    def __init__(self, headers: Headers) -> None:
        self._headers = headers

    def get_all(self, name: str, default: list[str] | None = None) -> list[str]:
        values = self._headers.getRawHeaders(name)
        return list(values) if values else (default if default is not None else [])


class _JarResponse:
    """The slice of a ``urllib`` response that `CookieJar` reads."""

    def __init__(self, headers: Headers) -> None:
        self._info = _JarHeaders(headers)

    def info(self) -> _JarHeaders:
        return self._info


def cookie_header(jar: CookieJar, url: str, method: str = "GET") -> str | None:
    """The ``Cookie`` value the jar holds for ``url``, or `None`."""
    request = _JarRequest(url, method)
    jar.add_cookie_header(request)  # type: ignore[arg-type]  # duck-typed urllib request
    return request.get_header("Cookie")


def store_cookies(
    jar: CookieJar, url: str, headers: Headers, method: str = "GET"
) -> None:
    """Store the ``Set-Cookie`` fields of a response to ``url`` in the jar."""
    if not headers.hasHeader("set-cookie"):
        return
    jar.extract_cookies(
        _JarResponse(headers),  # type: ignore[arg-type]  # duck-typed urllib response
        _JarRequest(url, method),  # type: ignore[arg-type]  # duck-typed urllib request
    )
