# -*- test-case-name: txhttp.test.test_client_helpers -*-
"""
Small, pure helpers for URLs, headers and argument validation.

Used by `HTTPClient` and `BaseURLHTTPClient`, and exported for applications
that build requests themselves. Each function either returns a value or raises
`HTTPError` (a `ValueError`) whose message names the argument, the rule and the
offending value. No I/O, no Twisted reactor, no clock.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from txhttp.client._exceptions import HTTPError

__all__ = [
    "HeaderInput",
    "ParamsInput",
    "URLParts",
    "build_url",
    "extract_json_type",
    "format_timeout",
    "merge_headers",
    "parse_headers",
    "parse_url_parts",
    "validate_host",
    "validate_port",
    "validate_positive_int",
    "validate_timeout",
    "validate_url",
]

MAX_URL_LENGTH: Final = 8 * 1024
"""Longest URL accepted; common servers refuse request lines near 8 KiB."""

MAX_HOSTNAME_LENGTH: Final = 253
"""Longest DNS name (RFC 1035, section 2.3.4, without the trailing dot)."""

MAX_LABEL_LENGTH: Final = 63
"""Longest DNS label (RFC 1035, section 2.3.4)."""

_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BAD_VALUE_CHARS: Final = re.compile(r"[\r\n\x00]")

HeaderInput = (
    Mapping[str, str] | Mapping[bytes, bytes] | Iterable[tuple[str, str]] | None
)
"""What callers may pass as headers: a mapping or ``(name, value)`` pairs."""

ParamsInput = (
    Mapping[str, "str | int | float | bool | Iterable[str | int | float] | None"]
    | Iterable[tuple[str, "str | int | float | bool | None"]]
    | None
)
"""Query parameters: a mapping or pairs; `None` values are left out."""


def _shorten(value: object, limit: int = 60) -> str:
    """``repr`` of a value, shortened for messages."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class URLParts:
    """
    The pieces of an absolute http(s) URL, with the port made explicit.

    Attributes:
        scheme: ``"http"`` or ``"https"``, lower case.
        host: The host name or address, lower case, IPv6 without brackets.
        port: The explicit port, or the scheme's default.
        path: The path, ``"/"`` when empty.
        query: The query string without ``?`` (maybe empty).
        fragment: The fragment without ``#`` (maybe empty).
    """

    scheme: str
    host: str
    port: int
    path: str
    query: str
    fragment: str

    @property
    def origin(self) -> tuple[str, str, int]:
        """``(scheme, host, port)``: two URLs share an origin iff these match."""
        return (self.scheme, self.host, self.port)

    @property
    def netloc(self) -> str:
        """``host[:port]`` as written in a ``Host`` header (port if not default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if _DEFAULT_PORTS[self.scheme] == self.port:
            return host
        return f"{host}:{self.port}"


def _split(url: str) -> SplitResult:
    """`urlsplit` that turns its `ValueError` into ours."""
    try:
        return urlsplit(url)
    except ValueError as e:
        raise HTTPError(f"url is not a valid URL: {_shorten(url)} ({e})") from e


def validate_url(url: str) -> str:
    """
    Check that ``url`` is an absolute http or https URL with a valid host.

    Returns:
        The URL, unchanged.

    Raises:
        HTTPError: Not a string, too long, not http(s), no host, a bad host
            or port, or control characters.
    """
    if not isinstance(url, str):
        raise HTTPError(f"url must be a str, not {type(url).__name__}")
    if not url:
        raise HTTPError("url must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise HTTPError(f"url is longer than {MAX_URL_LENGTH} characters")
    if re.search(r"[\x00-\x20\x7f]", url):
        raise HTTPError(f"url contains whitespace or control chars: {_shorten(url)}")
    parts = _split(url)
    if parts.scheme.lower() not in _SCHEMES:
        raise HTTPError(
            f"url scheme must be http or https, not {parts.scheme!r}: {_shorten(url)}"
        )
    if not parts.hostname:
        raise HTTPError(f"url has no host: {_shorten(url)}")
    validate_host(parts.hostname)
    try:
        port = parts.port
    except ValueError as e:
        raise HTTPError(f"url has an invalid port: {_shorten(url)}") from e
    if port is not None:
        validate_port(port)
    return url


def validate_host(host: str) -> str:
    """
    Check a host: a DNS name, an IPv4 address or an IPv6 address.

    IPv6 may be given with or without brackets. Names follow RFC 1123 labels
    (letters, digits, hyphen, and underscore as used in service names); one
    trailing dot is allowed.

    Returns:
        The host, unchanged.

    Raises:
        HTTPError: If ``host`` is none of these.
    """
    if not isinstance(host, str):
        raise HTTPError(f"host must be a str, not {type(host).__name__}")
    if not host:
        raise HTTPError("host must not be empty")
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in candidate:
        try:
            ipaddress.IPv6Address(candidate.split("%", 1)[0])
        except ValueError as e:
            raise HTTPError(f"host is not a valid IPv6 address: {host!r}") from e
        return host
    if candidate != host:
        raise HTTPError(f"host has brackets but is not IPv6: {host!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError as e:
            raise HTTPError(f"host is not a valid IPv4 address: {host!r}") from e
        return host
    name = host[:-1] if host.endswith(".") else host
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise HTTPError(f"host is not a valid name: {_shorten(host)}") from e
    if len(ascii_name) > MAX_HOSTNAME_LENGTH:
        raise HTTPError(f"host is longer than {MAX_HOSTNAME_LENGTH} characters")
    for label in ascii_name.split("."):
        if not _LABEL.match(label):
            raise HTTPError(
                f"host label {label!r} is not 1-{MAX_LABEL_LENGTH} letters, digits "
                f"or inner hyphens: {_shorten(host)}"
            )
    return host


def validate_port(port: int) -> int:
    """
    Check a TCP port number.

    Returns:
        The port, unchanged.

    Raises:
        HTTPError: Not an `int` (a `bool` is refused) or outside 1-65535.
    """
    if isinstance(port, bool) or not isinstance(port, int):
        raise HTTPError(f"port must be an int, not {type(port).__name__}")
    if not 1 <= port <= 65535:
        raise HTTPError(f"port must be in 1-65535, got {port}")
    return port


def validate_timeout(timeout: float | None, *, name: str = "timeout") -> float | None:
    """
    Check a timeout in seconds: a finite number above zero, or `None` (no limit).

    Returns:
        The timeout as a `float`, or `None`.

    Raises:
        HTTPError: Not a number, not finite, or zero or less.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise HTTPError(f"{name} must be a number, not {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise HTTPError(f"{name} must be a finite number above 0, got {timeout!r}")
    return float(timeout)


def validate_positive_int(value: int, *, name: str = "value") -> int:
    """
    Check an integer count that must be at least 1.

    Returns:
        The value, unchanged.

    Raises:
        HTTPError: Not an `int` (a `bool` is refused) or below 1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise HTTPError(f"{name} must be at least 1, got {value}")
    return value


def format_timeout(timeout: float | None) -> str:
    """
    Render a timeout for logs and messages: ``"1.5s"``, ``"250ms"``, ``"none"``.

    Raises:
        HTTPError: If ``timeout`` is not valid (see `validate_timeout`).
    """
    checked = validate_timeout(timeout)
    if checked is None:
        return "none"
    if checked < 1:
        return f"{checked * 1000:g}ms"
    return f"{checked:g}s"


def parse_url_parts(url: str) -> URLParts:
    """
    Split an absolute http(s) URL into its parts, with the default port filled in.

    Raises:
        HTTPError: If the URL is not valid (see `validate_url`).
    """
    validate_url(url)
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]
    return URLParts(
        scheme=scheme,
        host=host,
        port=port,
        path=parts.path or "/",
        query=parts.query,
        fragment=parts.fragment,
    )


def _param_pairs(params: ParamsInput) -> list[tuple[str, str]]:
    """Flatten params to ``(name, value)`` string pairs, dropping `None`."""
    if params is None:
        return []
    items: Iterable[tuple[str, object]]
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[str, str]] = []
    for name, value in items:
        if not isinstance(name, str):
            raise HTTPError(f"param names must be str, not {type(name).__name__}")
        if value is None:
            continue
        if isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            pairs.append((name, str(value)))
        elif isinstance(value, Iterable):
            pairs.extend((name, str(item)) for item in value if item is not None)
        else:
            raise HTTPError(
                f"param {name!r} has an unsupported value type {type(value).__name__}"
            )
    return pairs


def build_url(base: str, path: str | None = None, params: ParamsInput = None) -> str:
    """
    Join a base URL with a path and append query parameters.

    ``path`` is joined the way `BaseURLHTTPClient` needs: an absolute URL
    passes through unchanged, ``"/x"`` replaces the base's path, and ``"x"``
    is appended to the base's path (a missing ``/`` between them is added).
    Parameters whose value is `None` are left out; a list value repeats the
    name; existing query parameters are kept and new ones come after.

    Returns:
        The absolute URL.

    Raises:
        HTTPError: If the result is not a valid http(s) URL.
    """
    if path is not None and not isinstance(path, str):
        raise HTTPError(f"path must be a str, not {type(path).__name__}")
    if path and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", path):
        url = path
    else:
        validate_url(base)
        split = _split(base)
        if not path:
            new_path, query = split.path, split.query
        else:
            rel = _split(path)
            if rel.path.startswith("/"):
                new_path = rel.path
            else:
                new_path = split.path.rstrip("/") + "/" + rel.path
            query = rel.query
        url = urlunsplit((split.scheme, split.netloc, new_path, query, ""))
    pairs = _param_pairs(params)
    if pairs:
        split = _split(url)
        extra = urlencode(pairs)
        query = f"{split.query}&{extra}" if split.query else extra
        url = urlunsplit(
            (split.scheme, split.netloc, split.path, query, split.fragment)
        )
    return validate_url(url)


def _header_pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    """Normalise header input into ``(name, value)`` str pairs, checked."""
    if headers is None:
        return []
    items: Iterable[tuple[object, object]]
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs: list[tuple[str, str]] = []
    for raw_name, raw_value in items:
        name = raw_name.decode("latin-1") if isinstance(raw_name, bytes) else raw_name
        value = (
            raw_value.decode("latin-1") if isinstance(raw_value, bytes) else raw_value
        )
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise HTTPError(f"header name is not a valid token: {_shorten(raw_name)}")
        if not isinstance(value, str):
            raise HTTPError(
                f"header {name!r} value must be str or bytes, "
                f"not {type(raw_value).__name__}"
            )
        if _BAD_VALUE_CHARS.search(value):
            raise HTTPError(
                f"header {name!r} value contains CR, LF or NUL: {_shorten(value)}"
            )
        pairs.append((name, value))
    return pairs


def merge_headers(*layers: HeaderInput) -> dict[str, str]:
    """
    Merge header layers; a later layer wins, names compared case-insensitively.

    The first spelling of a name is dropped in favour of the later one, so the
    result keeps the casing of the layer that set the value. A value of
    ``""`` is kept (it is a valid empty field value).

    Returns:
        A new `dict` from name to value.

    Raises:
        HTTPError: A name is not a token, or a value has CR, LF or NUL.
    """
    merged: dict[str, str] = {}
    folded: dict[str, str] = {}
    for layer in layers:
        for name, value in _header_pairs(layer):
            key = name.lower()
            previous = folded.get(key)
            if previous is not None:
                del merged[previous]
            folded[key] = name
            merged[name] = value
    return merged


def parse_headers(text: str | bytes) -> dict[str, str]:
    """
    Parse ``"Name: value"`` lines (as in a config file or CLI) into a `dict`.

    Lines are separated by LF or CRLF; blank lines are skipped; the value is
    stripped of surrounding whitespace; a repeated name is combined with
    ``", "`` as RFC 9110, section 5.3 allows.

    Raises:
        HTTPError: A line has no colon, or a bad name or value.
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    result: dict[str, str] = {}
    folded: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(f"header line {number} has no colon: {_shorten(line)}")
        ((name, value),) = _header_pairs([(name, value.strip())])
        key = name.lower()
        if key in folded:
            result[folded[key]] += ", " + value
        else:
            folded[key] = name
            result[name] = value
    return result


def extract_json_type(content_type: str | bytes | None) -> bool:
    """
    Tell whether a ``Content-Type`` value denotes JSON.

    True for ``application/json`` and any ``+json`` structured syntax suffix
    (RFC 6839), such as ``application/problem+json``, parameters ignored.
    """
    if content_type is None:
        return False
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or ("/" in media and media.endswith("+json"))


def dumps_json(value: object) -> bytes:
    """
    Encode a value as compact UTF-8 JSON for a request body.

    Raises:
        HTTPError: If the value cannot be encoded (with the reason).
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as e:
        raise HTTPError(f"json body cannot be encoded: {e}") from e
