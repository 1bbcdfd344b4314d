# -*- test-case-name: txhttp.test.test_client_highlevel_integration -*-
"""
`HTTPClient` end to end over loopback: txhttp's default agent against a real
twisted.web server on 127.0.0.1. Covers SSE with reconnection, NDJSON,
multipart upload, a refused gzip bomb and credential stripping on a
cross-origin redirect (a second server on another port is another origin).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Coroutine
from email import message_from_bytes
from email.message import Message
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from txhttp.client import (
    HTTPClient,
    HTTPClientConfig,
    HTTPDecompressionError,
)

_reactor: IReactorTCP = reactor

BOMB_BYTES = 64 * 1024 * 1024
"""Decoded size of the gzip bomb: far over the client's limits."""


class TrackingFactory(WrappingFactory):
    """Wraps a Site and tells when every connection it accepted is closed."""

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.closed: list[Deferred[None]] = []
        self._open: dict[object, Deferred[None]] = {}

    def registerProtocol(self, p: ProtocolWrapper) -> None:
        super().registerProtocol(p)
        done: Deferred[None] = Deferred()
        self._open[p] = done
        self.closed.append(done)

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)
        self._open.pop(p).callback(None)


class Leaf(Resource):
    """A resource answering every path with a function of the request."""

    isLeaf = True

    def __init__(self, handler: Any) -> None:
        super().__init__()
        self.handler = handler

    def render(self, request: Request) -> bytes | int:
        result: bytes | int = self.handler(request)
        return result


class Server:
    """Routes by path to handlers; counts SSE connections."""

    def __init__(self) -> None:
        self.sse_requests: list[dict[str, str]] = []
        self.seen_headers: list[dict[str, str]] = []
        self.other_port = 0

    def __call__(self, request: Request) -> bytes | int:
        path = request.path.decode()
        headers = {
            k.decode().lower(): v[0].decode()
            for k, v in request.requestHeaders.getAllRawHeaders()
        }
        if path == "/sse":
            return self.sse(request, headers)
        if path == "/ndjson":
            request.setHeader(b"content-type", b"application/x-ndjson")
            for piece in (b'{"n": 1}\n{"n"', b": 2}\r\n", b"\n", b'{"n": 3}'):
                request.write(piece)
            request.finish()
            return NOT_DONE_YET
        if path == "/upload":
            assert request.content is not None
            body = request.content.read()
            content_type = request.getHeader(b"content-type") or b""
            message = message_from_bytes(
                b"Content-Type: " + content_type + b"\r\n\r\n" + body
            )
            payload = message.get_payload()
            assert isinstance(payload, list)
            fields = {
                part.get_param("name", header="content-disposition"): [
                    part.get_filename(),
                    len(part.get_payload(decode=True) or b""),
                ]
                for part in payload
                if isinstance(part, Message)
            }
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(
                {
                    "fields": fields,
                    "length": (request.getHeader(b"content-length") or b"").decode(),
                }
            ).encode()
        if path == "/bomb":
            request.setHeader(b"content-encoding", b"gzip")
            return gzip.compress(b"\0" * BOMB_BYTES, compresslevel=9)
        if path == "/redirect-away":
            request.redirect(f"http://127.0.0.1:{self.other_port}/echo".encode())
            return b""
        if path == "/echo":
            self.seen_headers.append(headers)
            return b"ok"
        request.setResponseCode(404)
        return b"no such path"

    def sse(self, request: Request, headers: dict[str, str]) -> int:
        self.sse_requests.append(headers)
        request.setHeader(b"content-type", b"text/event-stream")
        if len(self.sse_requests) == 1:
            request.write(b": hello\nretry: 50\nid: 1\ndata: first\n\n")
            request.write(b"id: 2\ndata: sec")
            request.write(b"ond\ndata: line\n\n")
            request.finish()
        else:
            request.write(b"id: 3\ndata: after reconnect\n\n")
        return NOT_DONE_YET


class HighLevelLoopbackTests(TestCase):
    """Real sockets on 127.0.0.1, txhttp's agent, twisted.web's server."""

    timeout = 30

    def setUp(self) -> None:
        self.handler = Server()
        self.sites = [
            TrackingFactory(Site(Leaf(self.handler))),
            TrackingFactory(Site(Leaf(self.handler))),
        ]
        self.ports: list[IListeningPort] = [
            _reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[arg-type]  # a WrappingFactory is a ServerFactory
            for site in self.sites
        ]
        self.handler.other_port = self.ports[1].getHost().port  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{self.ports[0].getHost().port}"  # type: ignore[attr-defined]
        self.client = HTTPClient(
            HTTPClientConfig(max_response_body_bytes=8 * 1024 * 1024, timeout=10),
            reactor=reactor,
        )

        self.addCleanup(self.clean_up)

    def clean_up(self) -> Deferred[None]:
        """Stop the client, wait for every server connection, stop listening."""

        async def clean() -> None:
            await self.client.stop()
            await gatherResults([d for site in self.sites for d in site.closed])
            await gatherResults([p.stopListening() for p in self.ports])  # type: ignore[misc]

        return Deferred.fromCoroutine(clean())

    def run_async(self, coroutine: Coroutine[Any, Any, None]) -> Deferred[None]:
        return Deferred.fromCoroutine(coroutine)

    def test_sse_reconnects(self) -> None:
        """Events arrive, and after the server closes the client resumes from id 2."""

        async def go() -> None:
            events = []
            async with self.client.sse(f"{self.base}/sse", reconnect=True) as source:
                async for event in source:
                    events.append((event.id, event.data))
                    if len(events) == 3:
                        break
            self.assertEqual(
                [("1", "first"), ("2", "second\nline"), ("3", "after reconnect")],
                events,
            )
            self.assertEqual(2, len(self.handler.sse_requests))
            self.assertEqual("2", self.handler.sse_requests[1].get("last-event-id"))
            self.assertEqual(
                "text/event-stream", self.handler.sse_requests[0].get("accept")
            )

        return self.run_async(go())  # type: ignore[return-value]

    def test_ndjson(self) -> None:
        """NDJSON lines split across writes parse into values."""

        async def go() -> None:
            async with self.client.stream("GET", f"{self.base}/ndjson") as response:
                values = [value async for value in response.aiter_ndjson()]
            self.assertEqual([{"n": 1}, {"n": 2}, {"n": 3}], values)

        return self.run_async(go())  # type: ignore[return-value]

    def test_multipart_upload(self) -> None:
        """A multipart upload with a file arrives whole, with a Content-Length."""

        async def go() -> None:
            import io

            blob = bytes(range(256)) * 1024
            response = await self.client.post_multipart(
                f"{self.base}/upload",
                {
                    "title": "x",
                    "file": ("blob.bin", io.BytesIO(blob), "application/octet-stream"),
                },
            )
            answer = await response.json()
            assert isinstance(answer, dict)
            self.assertEqual(
                {"title": [None, 1], "file": ["blob.bin", len(blob)]}, answer["fields"]
            )
            self.assertNotEqual("", answer["length"])

        return self.run_async(go())  # type: ignore[return-value]

    def test_gzip_bomb_refused(self) -> None:
        """A gzip bomb is refused with HTTPDecompressionError."""

        async def go() -> None:
            response = await self.client.get(f"{self.base}/bomb")
            with self.assertRaises(HTTPDecompressionError):
                await response.content()

        return self.run_async(go())  # type: ignore[return-value]

    def test_redirect_strips_credentials(self) -> None:
        """A redirect to another origin does not carry Authorization or Cookie."""

        async def go() -> None:
            response = await self.client.get(
                f"{self.base}/redirect-away",
                auth=("user", "secret"),
                cookies={"session": "s1"},
                headers={"X-Trace": "t"},
            )
            self.assertEqual(b"ok", await response.content())
            (seen,) = self.handler.seen_headers
            self.assertNotIn("authorization", seen)
            self.assertNotIn("cookie", seen)
            self.assertEqual("t", seen.get("x-trace"))
            self.assertEqual(1, len(response.history))

        return self.run_async(go())  # type: ignore[return-value]
