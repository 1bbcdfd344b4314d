# -*- test-case-name: txhttp.test.test_client_treq -*-
"""
treq on txhttp: ``treq.client.HTTPClient(txhttp.client.Agent(reactor, pool=...))``
against a real twisted.web server on 127.0.0.1.

Covers the verbs, JSON, form data, multipart files, query parameters,
cookies, redirects and streaming with ``treq.collect``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import treq
from treq.client import HTTPClient
from twisted.internet import reactor as _global_reactor
from twisted.internet.interfaces import IListeningPort, IReactorTCP, IReactorTime
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.util import Redirect

from txhttp.client import Agent, HTTPConnectionPool

reactor: IReactorTCP = _global_reactor

STREAM_CHUNKS = 64
STREAM_CHUNK = b"0123456789abcdef" * 1024  # 16 KiB


def _text(values: Sequence[bytes]) -> list[str]:
    return [v.decode("utf-8", "replace") for v in values]


class _Echo(Resource):
    """Answers every method with what it received, as JSON."""

    isLeaf = True

    def render(self, request: Request) -> bytes:
        assert request.content is not None
        body = request.content.read()
        headers = {
            k.decode().lower(): _text(v)
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        args = {k.decode(): _text(v) for k, v in (request.args or {}).items()}
        request.setHeader(b"content-type", b"application/json")
        if request.method == b"HEAD":
            return b""
        return json.dumps(
            {
                "method": request.method.decode(),
                "path": request.path.decode(),
                "args": args,
                "headers": headers,
                "body": body.decode("utf-8", "replace"),
            }
        ).encode()


class _SetCookie(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.addCookie(b"flavour", b"oatmeal", path=b"/")
        return b"set"


class _Stream(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:
        request.setHeader(
            b"content-length", b"%d" % (STREAM_CHUNKS * len(STREAM_CHUNK))
        )
        for _ in range(STREAM_CHUNKS):
            request.write(STREAM_CHUNK)
        request.finish()
        return NOT_DONE_YET  # finished above


class TreqOnTxhttpTests(TestCase):
    """treq's HTTPClient over txhttp's Agent, against twisted.web."""

    timeout = 30

    def setUp(self) -> None:
        root = Resource()
        root.putChild(b"echo", _Echo())
        root.putChild(b"redirect", Redirect(b"/echo"))
        root.putChild(b"set-cookie", _SetCookie())
        root.putChild(b"stream", _Stream())
        self.port: IListeningPort = reactor.listenTCP(
            0,
            Site(root),  # type: ignore[arg-type]  # Site is a ServerFactory
            interface="127.0.0.1",
        )
        self.addCleanup(self.port.stopListening)
        clock: IReactorTime = _global_reactor
        self.pool = HTTPConnectionPool(clock)
        self.addCleanup(self.pool.closeCachedConnections)
        self.client = HTTPClient(Agent(clock, pool=self.pool))
        port: int = self.port.getHost().port  # type: ignore[attr-defined]  # IPv4Address
        self.base = f"http://127.0.0.1:{port}"

    async def echo(self, method: str, path: str = "/echo", **kwargs: Any) -> Any:
        response = await self.client.request(method, self.base + path, **kwargs)
        self.assertEqual(200, response.code)
        return await response.json()

    async def test_get(self) -> None:
        """treq GET reaches the server and returns its body."""
        result = await self.echo("GET")
        self.assertEqual(("GET", "/echo"), (result["method"], result["path"]))

    async def test_post_data(self) -> None:
        """POST with form data arrives form-encoded."""
        result = await self.echo("POST", data={"a": "1", "b": "two"})
        self.assertEqual({"a": ["1"], "b": ["two"]}, result["args"])
        self.assertEqual(
            ["application/x-www-form-urlencoded"], result["headers"]["content-type"]
        )

    async def test_put_json(self) -> None:
        """PUT with json= sends a JSON body with its content type."""
        result = await self.echo("PUT", json={"x": [1, 2]})
        self.assertEqual({"x": [1, 2]}, json.loads(result["body"]))
        self.assertTrue(
            result["headers"]["content-type"][0].startswith("application/json")
        )

    async def test_delete(self) -> None:
        """DELETE works."""
        result = await self.echo("DELETE")
        self.assertEqual("DELETE", result["method"])

    async def test_head(self) -> None:
        """HEAD returns the head and no body."""
        response = await self.client.head(self.base + "/echo")
        self.assertEqual(200, response.code)
        self.assertEqual(b"", await response.content())

    async def test_params(self) -> None:
        """params= becomes the query string."""
        result = await self.echo("GET", params={"q": "twisted web", "n": "1"})
        self.assertEqual({"q": ["twisted web"], "n": ["1"]}, result["args"])

    async def test_files(self) -> None:
        """files= sends multipart/form-data the server can parse."""
        upload = ("notes.txt", "text/plain", io.BytesIO(b"file contents"))
        result = await self.echo("POST", data={"field": "v"}, files={"doc": upload})
        self.assertTrue(
            result["headers"]["content-type"][0].startswith("multipart/form-data")
        )
        self.assertEqual(["file contents"], result["args"]["doc"])
        self.assertEqual(["v"], result["args"]["field"])

    async def test_cookies(self) -> None:
        """Cookies set by the server are sent back; cookies= are sent too."""
        response = await self.client.get(self.base + "/set-cookie")
        await response.content()
        result = await self.echo("GET", cookies={"extra": "1"})
        cookie = result["headers"]["cookie"][0]
        self.assertIn("flavour=oatmeal", cookie)
        self.assertIn("extra=1", cookie)

    async def test_redirect(self) -> None:
        """Redirects are followed to the final response."""
        response = await self.client.get(self.base + "/redirect")
        self.assertEqual(200, response.code)
        result = await response.json()
        self.assertEqual("/echo", result["path"])
        self.assertEqual(302, response.previousResponse.code)

    async def test_streaming_collect(self) -> None:
        """treq.collect streams the body in pieces, all of it, in order."""
        response = await self.client.get(self.base + "/stream", unbuffered=True)
        pieces: list[bytes] = []
        await treq.collect(response, pieces.append)
        self.assertEqual(STREAM_CHUNKS * STREAM_CHUNK, b"".join(pieces))
        self.assertGreater(len(pieces), 1)

    async def test_streaming_with_small_reads(self) -> None:
        """A pool's max_read_bytes caps each piece; the body still arrives whole."""
        pool = HTTPConnectionPool(_global_reactor, max_read_bytes=4096)
        self.addCleanup(pool.closeCachedConnections)
        client = HTTPClient(Agent(_global_reactor, pool=pool))
        response = await client.get(self.base + "/stream", unbuffered=True)
        pieces: list[bytes] = []
        await treq.collect(response, pieces.append)
        self.assertEqual(STREAM_CHUNKS * STREAM_CHUNK, b"".join(pieces))
        self.assertLessEqual(max(map(len, pieces)), 4096)

    async def test_connection_reused(self) -> None:
        """Sequential treq requests share one pooled connection."""
        for _ in range(3):
            await self.echo("GET")
        stats = self.pool.stats()
        self.assertEqual(1, stats.idle)
        self.assertEqual(1, stats.connections)
