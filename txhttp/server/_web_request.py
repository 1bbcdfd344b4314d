# -*- test-case-name: txhttp.test.test_server_web -*-
"""
``WebRequest``: twisted.web's stock ``Request``, with cheaper bookkeeping.

A ``twisted.web.server.Site`` whose ``requestFactory`` is the stock
``twisted.web.server.Request`` gets this subclass instead when it runs on
txhttp's channel (`txhttp.server.use_txhttp`). It gives the same head, body,
access log line and request attributes as the stock class (the tests drive
both side by side); it only does less work per request:

- the access log line: when the Site logs with twisted.web's own
  ``HTTPFactory.log`` and ``combinedLogFormatter`` (the defaults), the line is
  built by `combined_log_line`, which gives the same text with a fraction of
  the calls (printable fields skip ``repr`` and are remembered, bounded);
  any other Site, ``log`` or formatter is called as before;
- ``process``: the ``Date`` value is made once a second (`http_date`), and
  the two fields it sets are set without ``setHeader``'s extra call;
- `Headers`: a subclass of twisted.web's ``Headers`` whose byte-string fast
  paths skip the per-call conversions, used only after checking at import
  that the installed Twisted stores fields the way it assumes;
- ``requestReceived``: a request other than POST does not look up its
  ``Content-Type`` (only a form POST reads it; POST takes the base method);
- ``gotLength``: no ``AttributeError`` raised and caught for a Site without
  ``getContentFile``;
- the first ``write``: the framing fields are looked up once for both of
  the checks the two base classes make.

Two differences remain, both documented in the server guide: ``repr`` names
``WebRequest``, and an exception that is not an ``Exception``
(``KeyboardInterrupt``, ``SystemExit``) raised while rendering is not turned
into a 500 page. Sites with their own ``requestFactory`` keep it: nothing
here is used for them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from io import BytesIO
from time import time
from typing import TYPE_CHECKING, Any, AnyStr, Final, TypeVar
from urllib.parse import unquote_to_bytes

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.python.failure import Failure
from twisted.web import server as _site_module
from twisted.web.http import (
    NO_BODY_CODES,
    NO_CONTENT,
    NOT_MODIFIED,
    HTTPFactory,
    combinedLogFormatter,
    datetimeToString,
    parse_qs,
    toChunk,
)
from twisted.web.http import Request as HTTPRequest
from twisted.web.http_headers import Headers as _StockHeaders
from twisted.web.resource import _IEncodingResource
from twisted.web.server import Request as SiteRequest

# twisted.web.http is wrapped in a deprecation proxy: every ``http.name``
# lookup is a Python call, so the names used per request are imported once.

if TYPE_CHECKING:
    from twisted.web.iweb import IAccessLogFormatter

_PLAIN_LOG_TEXT: Final = re.compile(rb"[ !#-&(-\[\]-~]*")
"""Bytes that twisted.web's access log escaping leaves as they are: printable
ASCII but the two quotes and the backslash."""

MAX_LOG_TEXT_CACHE: Final = 1024
"""Escaped access log fields remembered (methods, versions, agents...)."""
MAX_CACHED_LOG_TEXT_BYTES: Final = 256
"""Longer fields are escaped every time, not remembered."""

_log_texts: dict[bytes | str, str] = {}

_NO_BODY_CODES: Final = (NOT_MODIFIED, NO_CONTENT)
"""Statuses that get no default ``Content-Type`` (as ``server.Request.write``)."""

_HTTP_1_1: Final = b"HTTP/1.1"
_WRITE_AFTER_FINISH: Final = (
    "Request.write called on a request after Request.finish was called."
)


def _log_text(value: bytes | str) -> str:
    """
    Escape one access log field as twisted.web's combined format does.

    The text is the field's bytes as Python writes them inside a
    ``b'...'`` literal, with ``"`` escaped and ``'`` not, as if the literal
    used double quotes; printable ASCII other than the quotes and backslash
    comes out as it went in.
    """
    text = _log_texts.get(value)
    if text is not None:
        return text
    data = value.encode("ascii") if isinstance(value, str) else value
    if _PLAIN_LOG_TEXT.fullmatch(data):
        text = data.decode("ascii")
    else:
        literal = repr(data)  # b'...', or b"..." when it holds ' and no ".
        text = literal[2:-1]
        if literal[1] == "'":
            text = text.replace('"', '\\"').replace("\\'", "'")
    if len(data) <= MAX_CACHED_LOG_TEXT_BYTES:
        if len(_log_texts) >= MAX_LOG_TEXT_CACHE:
            _log_texts.clear()
        _log_texts[value] = text  # str (an address) and bytes keys never meet.
    return text


def combined_log_line(timestamp: str | None, request: Any) -> str:
    """
    Return ``request``'s access log line in the Combined Log Format.

    The same text as ``twisted.web.http.combinedLogFormatter`` for the same
    arguments; a client address other than IPv4 or IPv6 (a UNIX socket, a
    proxied address) is handed to that formatter itself.

    Args:
        timestamp: The Site's cached log time (``HTTPFactory`` keeps it).
        request: The finished ``twisted.web.http.Request``.
    """
    if type(request) is WebRequest:
        # Its getClientAddress and getHeader are the base class's: read
        # what they would return directly.
        client = request.client
        get = request.requestHeaders.getRawHeaders
        referrers = get(b"referer")
        agents = get(b"user-agent")
        referrer = (referrers[-1] if referrers else None) or b"-"
        agent = (agents[-1] if agents else None) or b"-"
    else:
        client = request.getClientAddress()
        referrer = request.getHeader(b"referer") or b"-"
        agent = request.getHeader(b"user-agent") or b"-"
    method = request.method
    uri = request.uri
    version = request.clientproto
    if (
        (type(client) is not IPv4Address and type(client) is not IPv6Address)
        or type(method) is not bytes
        or type(uri) is not bytes
        or type(version) is not bytes
        or type(referrer) is not bytes
        or type(agent) is not bytes
    ):
        return str(combinedLogFormatter(timestamp, request))
    texts = _log_texts
    # Most fields repeat from request to request: look them up inline.
    host = client.host
    ip = texts.get(host) or _log_text(host)
    method_text = texts.get(method) or _log_text(method)
    uri_text = texts.get(uri) or _log_text(uri)
    version_text = texts.get(version) or _log_text(version)
    referrer_text = texts.get(referrer) or _log_text(referrer)
    agent_text = texts.get(agent) or _log_text(agent)
    length = request.sentLength or "-"
    return (
        f'"{ip}" - - {timestamp} "{method_text} {uri_text} {version_text}" '
        f'{request.code:d} {length} "{referrer_text}" "{agent_text}"'
    )


_STOCK_LOG: Final = HTTPFactory.log
_STOCK_FORMATTER: Final[IAccessLogFormatter] = combinedLogFormatter


def log_request(factory: Any, request: HTTPRequest) -> None:
    """
    Write ``request``'s access log line through ``factory`` (the Site).

    A Site using twisted.web's ``HTTPFactory.log`` with the default
    ``combinedLogFormatter`` gets the line from `combined_log_line` and
    written as that method writes it (to the Site's open log file, with the
    Site's cached timestamp); any other Site, or one with its own formatter,
    has its ``log`` called as usual.
    """
    try:
        fast = (
            type(factory).log is _STOCK_LOG
            and factory._logFormatter is _STOCK_FORMATTER
            and "log" not in factory.__dict__
        )
        log_file = factory._logFile
        timestamp = factory._logDateTime
    except AttributeError:  # Not an HTTPFactory as this Twisted has it.
        fast = False
    if not fast:
        factory.log(request)
    elif log_file is not None:
        log_file.write(combined_log_line(timestamp, request) + "\n")


_stock_date: Final = datetimeToString
_date_second = -1
_date_value = b""


def http_date() -> bytes:
    """
    The ``Date`` value twisted.web's ``Request.process`` sets, made once a second.

    The same text as ``datetimeToString()`` for the current second; if
    ``twisted.web.server.datetimeToString`` was replaced (to freeze time in
    tests, say), the replacement is called instead.
    """
    global _date_second, _date_value  # noqa: PLW0603 (a one-entry cache)
    current = getattr(_site_module, "datetimeToString", _stock_date)
    if current is not _stock_date:
        return bytes(current())
    now = int(time())
    if now != _date_second:
        _date_value = _stock_date(now)
        _date_second = now
    return _date_value


_T = TypeVar("_T")

MAX_CANONICAL_NAMES: Final = 1024
"""Header names whose canonical spelling `Headers` remembers."""

_canonical: dict[bytes | str, bytes] = {}


def _canonical_name(name: bytes | str) -> bytes:
    """
    The spelling twisted.web's ``Headers`` stores ``name`` under.

    Learnt from a stock ``Headers`` (which also validates the name, raising
    as it does) and remembered; only bytes and str names are remembered.
    """
    known = _canonical.get(name)
    if known is not None:
        return known
    probe = _StockHeaders()
    probe.setRawHeaders(name, [b""])
    ((canonical, _),) = probe.getAllRawHeaders()
    if type(name) is bytes or type(name) is str:
        if len(_canonical) >= MAX_CANONICAL_NAMES:
            _canonical.clear()
        _canonical[name] = canonical
    return canonical


def _clean_value(value: bytes) -> bytes:
    """A header value as ``Headers`` stores it: line breaks become spaces."""
    # Integer membership: ``b"\r" in value`` costs several times as much.
    if 13 in value or 10 in value:
        return b" ".join(value.splitlines())
    return value


def _stock_layout() -> bool:
    """Whether this Twisted's ``Headers`` keeps the layout `Headers` assumes."""
    probe = _StockHeaders()
    probe.setRawHeaders(b"x-probe", [b"1"])
    probe.addRawHeader("X-PROBE", "2")
    return getattr(probe, "_rawHeaders", None) == {b"X-Probe": [b"1", b"2"]}


class Headers(_StockHeaders):
    """
    twisted.web's ``Headers``, with its hot methods made cheaper.

    Same storage, results and errors as the base class (name validation and
    canonical spelling come from it, remembered per name); byte string
    names and values skip the base class's per-call conversions. Anything
    else takes the base class's path.
    """

    __slots__ = ()

    def setRawHeaders(self, name: str | bytes, values: Sequence[str | bytes]) -> None:
        """Set ``name``'s values (as the base class does)."""
        if type(values) is list and len(values) == 1:
            value = values[0]
            if type(value) is bytes and 13 not in value and 10 not in value:
                key = _canonical.get(name)
                if key is None:
                    key = _canonical_name(name)
                self._rawHeaders[key] = [value]
                return
        super().setRawHeaders(name, values)

    def addRawHeader(self, name: str | bytes, value: str | bytes) -> None:
        """Add one value for ``name`` (as the base class does)."""
        if type(value) is not bytes:
            super().addRawHeader(name, value)
            return
        key = _canonical.get(name)
        if key is None:
            key = _canonical_name(name)
        if 13 in value or 10 in value:
            value = _clean_value(value)
        raw = self._rawHeaders
        values = raw.get(key)
        if values is None:
            raw[key] = [value]
        else:
            values.append(value)

    def getRawHeaders(  # type: ignore[override]
        self, name: AnyStr, default: _T | None = None
    ) -> Sequence[AnyStr] | _T | None:
        """``name``'s values, or ``default`` (as the base class does)."""
        if type(name) is not bytes:
            return super().getRawHeaders(name, default)
        key = _canonical.get(name)
        if key is None:
            key = _canonical_name(name)
        values = self._rawHeaders.get(key)
        if not values:
            return default
        return values

    def hasHeader(self, name: AnyStr) -> bool:
        """Whether ``name`` has a value (as the base class says)."""
        return _canonical_name(name) in self._rawHeaders


_FAST_HEADERS: Final = _stock_layout()
"""Whether `Headers` can be used with the installed Twisted."""


class WebRequest(SiteRequest):
    """
    ``twisted.web.server.Request`` as txhttp runs it for a stock Site.

    Same attributes, methods and results as the base class; see the module
    docstring for what is done more cheaply. Only `WebExchange` (the
    channel each request sees on txhttp) builds it.
    """

    _encoder: Any  # The resource's encoder, once process found one.

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        if args or kwargs or not _FAST_HEADERS:
            super().__init__(channel, *args, **kwargs)
            if _FAST_HEADERS:
                self.requestHeaders = Headers()
                self.responseHeaders = Headers()
            return
        # What the three base initialisers set (server.Request, http.Request,
        # Componentized), in one step; a test compares the two objects.
        self.notifications = []
        self.channel = channel
        self.client = channel.getPeer()
        self.host = channel.getHost()
        self.requestHeaders = Headers()
        self.received_cookies = {}
        self.responseHeaders = Headers()
        self.cookies = []
        self.transport = channel.transport
        self.queued = False
        self._parsePOSTFormSubmission = channel.site._parsePOSTFormSubmission
        self._adapterCache = {}

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        The request is complete: fill in its line and process it.

        As ``http.Request.requestReceived``; a POST (whose form body may be
        parsed into ``args``) is handed to it unchanged.
        """
        if command == b"POST":
            HTTPRequest.requestReceived(self, command, path, version)
            return
        # gotLength opened it; twisted.web types it as optional.
        self.content.seek(0, 0)  # type: ignore[union-attr]
        self.args = {}
        self.method = command
        self.uri = path
        self.clientproto = version
        query = path.find(b"?")
        if query < 0:
            self.path = path
        else:
            self.path = path[:query]
            self.args = parse_qs(path[query + 1 :], 1)
        self.process()

    def process(self) -> None:
        """
        Find the resource and render it, as ``server.Request.process`` does.

        Sets ``Server`` (``twisted.web.server.version``, read now) and
        ``Date`` (`http_date`), fills ``prepath`` and ``postpath``, answers
        ``*`` itself, applies the resource's encoder, renders; a failure
        while rendering becomes the Site's error page. The one difference:
        an exception that is not an ``Exception`` (``KeyboardInterrupt``,
        ``SystemExit``) is not turned into an error page.
        """
        # The channel is a WebExchange, which has the Site.
        site = self.site = self.channel.site  # type: ignore[attr-defined]
        # setHeader's own steps (this class does not override it).
        headers = self.responseHeaders
        headers.setRawHeaders(b"Server", [_site_module.version])
        headers.setRawHeaders(b"Date", [http_date()])
        self.prepath = []
        path = self.path
        # 37 is "%": a segment without one unquotes to itself.
        self.postpath = [
            unquote_to_bytes(part) if 37 in part else part
            for part in path[1:].split(b"/")
        ]
        if path == b"*":
            self._handleStar()
            return
        try:
            resource = site.getResourceFor(self)
            if _IEncodingResource.providedBy(resource):
                encoder = resource.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(resource)
        except Exception:
            self.processingFailed(Failure())

    def gotLength(self, length: int | None) -> None:
        """Open the body file: the Site's ``getContentFile`` if it has one."""
        site = self.channel.site  # type: ignore[attr-defined]
        get_content_file = getattr(site, "getContentFile", None)
        if get_content_file is not None:
            self.content = get_content_file(length)
        elif length == 0:
            self.content = BytesIO()  # What the base class opens for no body.
        else:
            HTTPRequest.gotLength(self, length)

    def write(self, data: bytes) -> None:
        """
        Write body bytes; the first call sends the head as well.

        As ``server.Request.write`` then ``http.Request.write``: a default
        ``Content-Type`` unless the status has no body or a zero
        ``Content-Length`` was set; chunked framing for HTTP/1.1 without a
        ``Content-Length``; ``Last-Modified``, ``ETag`` and ``Set-Cookie``
        from their attributes; nothing after the head for HEAD, 204 and 304.
        """
        if self.startedWriting:
            if self._inFakeHead:
                return
            if self._encoder:
                data = self._encoder.encode(data)
            if self.finished:
                raise RuntimeError(_WRITE_AFTER_FINISH)
            if self._disconnected:
                return
        else:
            headers = self.responseHeaders
            length = headers.getRawHeaders(b"Content-Length")
            if (
                self.code not in _NO_BODY_CODES
                and self.defaultContentType is not None
                and not (length and length[0] == b"0")
                and headers.getRawHeaders(b"Content-Type") is None
            ):
                headers.setRawHeaders(b"Content-Type", [self.defaultContentType])
            if self._inFakeHead:
                return
            encoder = self._encoder
            if encoder:
                data = encoder.encode(data)
                # An encoder may have changed the fields; read them again.
                length = headers.getRawHeaders(b"Content-Length")
            if not self._send_head(length is None):
                return
        self.sentLength = self.sentLength + len(data)
        if data:
            if self.chunked:
                self.channel.writeSequence(toChunk(data))
            else:
                self.channel.write(data)

    def _send_head(self, no_length: bool) -> bool:
        """
        The first-write half of ``http.Request.write``: send the head.

        Returns:
            Whether body bytes may follow (not after a lost connection, nor
            for HEAD, 204 or 304).
        """
        if self.finished:
            raise RuntimeError(_WRITE_AFTER_FINISH)
        if self._disconnected:
            return False
        self.startedWriting = 1
        headers = self.responseHeaders
        code = self.code
        if (
            no_length
            and self.clientproto == _HTTP_1_1
            and self.method != b"HEAD"
            and code not in NO_BODY_CODES
        ):
            headers.setRawHeaders(b"Transfer-Encoding", [b"chunked"])
            self.chunked = 1
        if self.lastModified is not None:
            if headers.hasHeader(b"Last-Modified"):
                self._log.info(
                    "Warning: last-modified specified both in"
                    " header list and lastModified attribute."
                )
            else:
                headers.setRawHeaders(
                    b"Last-Modified", [datetimeToString(self.lastModified)]
                )
        if self.etag is not None:
            headers.setRawHeaders(b"ETag", [self.etag])
        if self.cookies:
            headers.setRawHeaders(b"Set-Cookie", self.cookies)
        self.channel.writeHeaders(
            self.clientproto, b"%d" % (code,), self.code_message, headers
        )
        if self.method == b"HEAD" or code in NO_BODY_CODES:
            # As the base class does: every later write is silently dropped.
            self.write = _drop  # type: ignore[method-assign]
            return False
        return True

    def finish(self) -> None:
        """
        End the response, as ``server.Request.finish`` does.

        The encoder's tail is written, then the base class's steps: refuse
        after a lost connection, warn on a second call, send the head if
        nothing was written, end the chunked body, log, clean up. Only the
        log line is made differently (`log_request`).
        """
        if self._encoder:
            tail = self._encoder.finish()
            if tail:
                HTTPRequest.write(self, tail)
        if self._disconnected:
            raise RuntimeError(
                "Request.finish called on a request after its connection was "
                "lost; use Request.notifyFinish to keep track of this."
            )
        if self.finished:
            warnings.warn("Warning! request.finish called twice.", stacklevel=2)
            return
        if not self.startedWriting:
            self.write(b"")
        if self.chunked:
            self.channel.write(b"0\r\n\r\n")
        factory = getattr(self.channel, "factory", None)
        if factory is not None:
            log_request(factory, self)
        self.finished = 1
        if not self.queued:
            self._cleanup()


def _drop(data: bytes) -> None:
    """What ``write`` becomes once a bodiless response's head is sent."""
