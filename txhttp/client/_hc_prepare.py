# -*- test-case-name: txhttp.test.test_client_http,txhttp.test.test_client_multipart -*-
"""
From ``client.request(method, url, **options)`` to a `PreparedRequest`.

`prepare_request` checks the method, builds the URL with its query
parameters, merges the automatic headers (``User-Agent``,
``Accept-Encoding``, credentials, cookies) with the client's defaults and the
caller's, and encodes the body: bytes, text, a form, JSON, multipart fields
or an ``IBodyProducer``, as a `RequestBody` that makes a fresh producer for
each attempt. What says how to run the request (timeout, redirects,
decompression, Digest credentials) goes in `ExchangeSettings`.

Pure preparation: nothing here sends, waits or reads the clock; invalid
options raise `HTTPError` before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final, TypedDict, cast
from urllib.parse import urlencode

from twisted.web.iweb import IBodyProducer

from txhttp.client._client_response import Deadline
from txhttp.client._config import HTTPClientConfig
from txhttp.client._cookies import Auth, authorization_header
from txhttp.client._decompress import accept_encoding
from txhttp.client._digest import DigestAuth
from txhttp.client._exceptions import HTTPError
from txhttp.client._multipart import Fields, MultipartProducer
from txhttp.client._producers import BytesBodyProducer
from txhttp.client._url_helpers import (
    HeaderInput,
    ParamsInput,
    build_url,
    dumps_json,
    merge_headers,
    validate_timeout,
)

__all__ = [
    "ExchangeSettings",
    "PreparedRequest",
    "RequestBody",
    "RequestOptions",
    "encode_body",
    "prepare_request",
    "without_headers",
]

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
"""An HTTP method is a token (RFC 9110, section 9.1)."""


class _Unset(Enum):
    """Marks an option that was not given (``None`` has its own meaning)."""

    UNSET = auto()


_UNSET: Final = _Unset.UNSET


class RequestOptions(TypedDict, total=False):
    """
    The keyword options of `HTTPClient.request` and the verb methods.

    Attributes:
        headers: Extra request headers (a later value wins over the
            client's defaults, names compared case-insensitively).
        params: Query parameters appended to the URL; `None` values are
            left out, a list repeats the name.
        data: The body: bytes, text (UTF-8), a mapping (sent as
            ``application/x-www-form-urlencoded``, or as multipart fields
            with ``files``) or an ``IBodyProducer`` (sent once: no retry or
            307/308 redirect replays it).
        json: A value sent as a JSON body (``application/json``).
        files: Multipart fields (see `HTTPClient.post_multipart`); ``data``'s mapping
            fields are sent first.
        timeout: Seconds for the whole exchange: redirects, retries and
            their waits, the response head and reading the body with
            ``content()``, ``text()``, ``json()`` (not streams); `None` for
            no deadline; the client's ``timeout`` by default.
        auth: ``(user, password)``, `BasicAuth` or `BearerAuth` (sent with
            the request), or `DigestAuth` (sent only in answer to a ``401``
            with a ``Digest`` challenge from the request's origin).
        cookies: Cookies sent with this request (besides the jar's).
        allow_redirects: Follow redirects (default ``True``).
        max_redirects: Redirects followed (the config's by default).
        decompress: Ask for and undo gzip/deflate (br/zstd if installed);
            default ``True``.
    """

    headers: HeaderInput
    params: ParamsInput
    data: object
    json: object
    files: Fields | None
    timeout: float | None
    auth: Auth | None
    cookies: Mapping[str, str] | None
    allow_redirects: bool
    max_redirects: int
    decompress: bool


class RequestBody:
    """
    A request body that can be produced again for each attempt.

    Attributes:
        make: Returns a fresh ``IBodyProducer`` for one attempt.
        content_type: The ``Content-Type`` the body implies, if any.
    """

    __slots__ = ("content_type", "make")

    def __init__(
        self, make: Callable[[], IBodyProducer], content_type: str | None
    ) -> None:
        self.make = make
        self.content_type = content_type

    @classmethod
    def of_bytes(cls, body: bytes, content_type: str | None) -> RequestBody:
        """A body of fixed bytes: every attempt sends them again."""
        return cls(lambda: BytesBodyProducer(body), content_type)

    @classmethod
    def once(cls, producer: IBodyProducer) -> RequestBody:
        """
        A body only ``producer`` can send, so only once.

        A second `make` (a retry, or a 307/308 redirect) raises `HTTPError`.
        """
        used = [False]

        def make() -> IBodyProducer:
            if used[0]:
                raise HTTPError(
                    "an IBodyProducer given as data can be sent only once "
                    "(retry or redirect needed it again)"
                )
            used[0] = True
            return producer

        return cls(make, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedRequest:
    """
    A request ready to send, as filter listeners see it.

    A ``filter-request`` listener may replace ``event.request`` with a changed
    copy (``dataclasses.replace``).

    Attributes:
        method: The method, upper case.
        url: The absolute URL, query included.
        headers: The headers to send (before per-attempt cookies).
        body: The body, if any (opaque).
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: RequestBody | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """
    How to run a prepared request, from its options and the client's config.

    Attributes:
        timeout: Seconds for the whole exchange, or `None`.
        allow_redirects: Whether redirects are followed.
        max_redirects: How many redirects are followed at most.
        decompress: Whether content codings are undone.
        deadline: The running exchange's deadline (set when it starts).
        digest: Credentials that answer ``Digest`` challenges, if given.
    """

    timeout: float | None
    allow_redirects: bool
    max_redirects: int
    decompress: bool
    deadline: Deadline | None = None
    digest: DigestAuth | None = None


def prepare_request(
    method: str,
    url: str,
    options: RequestOptions,
    *,
    config: HTTPClientConfig,
    default_headers: Mapping[str, str],
) -> tuple[PreparedRequest, ExchangeSettings]:
    """
    Check and apply ``options`` to a request for ``method`` and ``url``.

    Headers are merged in this order, a later layer winning: the automatic
    ones, ``default_headers``, then ``options["headers"]``.

    Raises:
        HTTPError: The method, URL, a header, the body or an option is
            invalid.
    """
    if not isinstance(method, str) or not _TOKEN.match(method):
        raise HTTPError(f"method must be an HTTP token, got {method!r}")
    method = method.upper()
    full_url = build_url(url, None, options.get("params"))
    decompress = options.get("decompress", True)
    automatic: dict[str, str] = {"User-Agent": config.user_agent}
    if decompress:
        automatic["Accept-Encoding"] = accept_encoding()
    if config.force_close:
        automatic["Connection"] = "close"
    body = encode_body(options)
    if body is not None and body.content_type is not None:
        automatic["Content-Type"] = body.content_type
    auth = options.get("auth")
    digest: DigestAuth | None = None
    if isinstance(auth, DigestAuth):
        digest = auth
    elif auth is not None:
        automatic["Authorization"] = authorization_header(auth)
    cookies = options.get("cookies")
    if cookies:
        automatic["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    headers = merge_headers(automatic, default_headers, options.get("headers"))
    timeout: float | _Unset | None = options.get("timeout", _UNSET)
    if timeout is _UNSET:
        timeout = config.timeout
    timeout = validate_timeout(timeout)
    max_redirects = options.get("max_redirects", config.max_redirects)
    if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
        raise HTTPError("max_redirects must be an int")
    settings = ExchangeSettings(
        timeout=timeout,
        allow_redirects=bool(options.get("allow_redirects", True)),
        max_redirects=max_redirects,
        decompress=bool(decompress),
        digest=digest,
    )
    return PreparedRequest(
        method=method, url=full_url, headers=headers, body=body
    ), settings


def encode_body(options: RequestOptions) -> RequestBody | None:
    """
    The body ``data``, ``json`` and ``files`` describe, or `None`.

    Raises:
        HTTPError: The options conflict or ``data`` has an unsupported type.
    """
    data = options.get("data")
    has_json = "json" in options and options["json"] is not None
    files = options.get("files")
    given = [
        n for n, v in (("data", data), ("json", has_json or None)) if v is not None
    ]
    if len(given) > 1:
        raise HTTPError("give at most one of data and json")
    if files is not None:
        if has_json:
            raise HTTPError("json cannot be combined with files (multipart)")
        fields: list[tuple[str, object]] = []
        if isinstance(data, Mapping):
            fields.extend(data.items())
        elif data is not None:
            raise HTTPError("with files, data must be a mapping of form fields")
        fields.extend(files.items() if isinstance(files, Mapping) else files)
        return _multipart_body(cast(Fields, fields))
    if has_json:
        return RequestBody.of_bytes(dumps_json(options["json"]), "application/json")
    if data is None:
        return None
    if isinstance(data, bytes):
        return RequestBody.of_bytes(data, None)
    if isinstance(data, str):
        return RequestBody.of_bytes(data.encode("utf-8"), "text/plain; charset=utf-8")
    if isinstance(data, Mapping):
        encoded = urlencode(list(data.items())).encode("ascii")
        return RequestBody.of_bytes(encoded, "application/x-www-form-urlencoded")
    if IBodyProducer.providedBy(data):
        return RequestBody.once(data)
    raise HTTPError(
        f"data must be bytes, str, a mapping or an IBodyProducer, "
        f"not {type(data).__name__}"
    )


def _multipart_body(fields: Fields) -> RequestBody:
    """A multipart body whose every attempt uses the same boundary."""
    first = MultipartProducer(fields)
    boundary = first.boundary.decode("ascii")
    producers = [first]

    def make_multipart() -> IBodyProducer:
        if producers:
            return producers.pop()
        # A fresh producer per retry; files are rewound by position.
        again = MultipartProducer(fields, boundary=boundary)
        again._produced_once = True
        return again

    return RequestBody(make_multipart, first.content_type)


def without_headers(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """A copy of ``headers`` without ``names`` (compared case-insensitively)."""
    drop = {n.lower() for n in names}
    return {k: v for k, v in headers.items() if k.lower() not in drop}
