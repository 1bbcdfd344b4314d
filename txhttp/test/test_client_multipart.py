# -*- test-case-name: txhttp.test.test_client_multipart -*-
"""Tests for `MultipartProducer` and `HTTPClient.post_multipart`."""

from __future__ import annotations

import io
from email import message_from_bytes
from email.message import Message

from twisted.internet.interfaces import IConsumer
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer
from zope.interface.verify import verifyObject

from txhttp.client import HTTPError, MultipartProducer
from txhttp.client._multipart import CHUNK_BYTES, escape_name
from txhttp.test.test_client_http import make_client
from txhttp.testing import make_response


@implementer(IConsumer)
class PausingConsumer:
    """Collects writes and pauses the producer after each one."""

    def __init__(self, pause: bool = True) -> None:
        self.writes: list[bytes] = []
        self.producer: MultipartProducer | None = None
        self.pause = pause

    def registerProducer(self, producer: object, streaming: bool) -> None:
        """Unused: body producers are not registered by the test."""

    def unregisterProducer(self) -> None:
        """Unused."""

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        if self.pause and self.producer is not None:
            self.producer.pauseProducing()


def produce(producer: MultipartProducer) -> bytes:
    consumer = PausingConsumer(pause=False)
    done = producer.startProducing(consumer)
    results: list[object] = []
    done.addBoth(results.append)
    assert results == [None], results
    return b"".join(consumer.writes)


def parse(body: bytes, boundary: bytes) -> list[Message]:
    """The parts of a multipart body, as the standard library reads them."""
    head = b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n\r\n"
    payload = message_from_bytes(head + body).get_payload()
    assert isinstance(payload, list)
    return [part for part in payload if isinstance(part, Message)]


class MultipartProducerTests(SynchronousTestCase):
    def test_provides_body_producer(self) -> None:
        """MultipartProducer provides IBodyProducer."""
        self.assertTrue(verifyObject(IBodyProducer, MultipartProducer({"a": "b"})))

    def test_exact_bytes(self) -> None:
        """Text, bytes and file parts are framed as RFC 7578 says."""
        producer = MultipartProducer(
            [("a", "1"), ("b", b"\x00"), ("f", ("x.txt", b"data", "text/plain"))],
            boundary="BOUND",
        )
        body = produce(producer)
        self.assertEqual(
            b"--BOUND\r\n"
            b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
            b"--BOUND\r\n"
            b'Content-Disposition: form-data; name="b"\r\n\r\n\x00\r\n'
            b"--BOUND\r\n"
            b'Content-Disposition: form-data; name="f"; filename="x.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\ndata\r\n"
            b"--BOUND--\r\n",
            body,
        )
        self.assertEqual(len(body), producer.length)
        self.assertEqual("multipart/form-data; boundary=BOUND", producer.content_type)

    def test_parses_back(self) -> None:
        """The standard library's MIME parser reads the same fields back."""
        producer = MultipartProducer(
            {"name": "välue", "up": ("a.bin", b"\r\n--x\r\n")}, boundary="zz"
        )
        parts = parse(produce(producer), b"zz")
        self.assertEqual(
            "name", parts[0].get_param("name", header="content-disposition")
        )
        self.assertEqual("välue".encode(), parts[0].get_payload(decode=True))
        self.assertEqual(b"\r\n--x\r\n", parts[1].get_payload(decode=True))
        self.assertEqual("application/octet-stream", parts[1].get_content_type())

    def test_escapes_names(self) -> None:
        """Quotes, CR and LF in names are percent-escaped; UTF-8 kept."""
        self.assertEqual(b"a%22b%0D%0Ac\xc3\xa9", escape_name('a"b\r\nc\u00e9'))
        body = produce(
            MultipartProducer(
                {'evil"\r\nX-Injected: 1': ("f\r\n.txt", b"")}, boundary="b"
            )
        )
        self.assertNotIn(b"\r\nX-Injected", body)
        self.assertIn(
            b'name="evil%22%0D%0AX-Injected: 1"; filename="f%0D%0A.txt"', body
        )

    def test_file_is_streamed_in_chunks(self) -> None:
        """A file is read CHUNK_BYTES at a time; pausing stops reading."""
        data = b"z" * (CHUNK_BYTES * 3 + 5)
        handle = io.BytesIO(data)
        producer = MultipartProducer({"f": ("big", handle)}, boundary="b")
        consumer = PausingConsumer()
        consumer.producer = producer
        done = producer.startProducing(consumer)
        self.assertEqual(1, len(consumer.writes))
        self.assertEqual(0, handle.tell())
        producer.resumeProducing()
        self.assertEqual(CHUNK_BYTES, handle.tell())
        while not done.called:
            producer.resumeProducing()
        self.assertEqual(len(data), sum(len(w) for w in consumer.writes[1:-1]))
        self.assertLessEqual(max(len(w) for w in consumer.writes), CHUNK_BYTES)
        self.assertEqual(producer.length, len(b"".join(consumer.writes)))

    def test_unseekable_file_has_unknown_length(self) -> None:
        """A file that cannot seek makes the length unknown (chunked upload)."""

        class Pipe(io.RawIOBase):
            def __init__(self) -> None:
                self._left = [b"abc"]

            def readable(self) -> bool:
                return True

            def seekable(self) -> bool:
                return False

            def read(self, size: int = -1) -> bytes:
                return self._left.pop() if self._left else b""

        producer = MultipartProducer({"p": ("p", Pipe())}, boundary="b")  # type: ignore[dict-item]  # RawIOBase reads bytes
        self.assertEqual(UNKNOWN_LENGTH, producer.length)
        self.assertIn(b"abc", produce(producer))
        self.assertRaises(HTTPError, producer.startProducing, PausingConsumer())

    def test_rewinds_for_second_production(self) -> None:
        """A seekable file is rewound so a retry sends the same body."""
        handle = io.BytesIO(b"skip|payload")
        handle.seek(5)
        producer = MultipartProducer({"f": ("n", handle)}, boundary="b")
        first = produce(producer)
        self.assertEqual(first, produce(producer))
        self.assertIn(b"\r\n\r\npayload\r\n", first)

    def test_stop_never_fires(self) -> None:
        """After stopProducing the finished Deferred never fires."""
        producer = MultipartProducer({"f": ("n", io.BytesIO(b"x" * 10))}, boundary="b")
        consumer = PausingConsumer()
        consumer.producer = producer
        done = producer.startProducing(consumer)
        producer.stopProducing()
        producer.resumeProducing()
        self.assertNoResult(done)

    def test_invalid_fields(self) -> None:
        """Bad values, content types with CR/LF and long boundaries are refused."""
        self.assertRaises(HTTPError, MultipartProducer, {"a": 1})
        self.assertRaises(
            HTTPError, MultipartProducer, {"a": ("f", b"", "text/x\r\nA: b")}
        )
        self.assertRaises(HTTPError, MultipartProducer, {"a": ("f", 3)})
        self.assertRaises(HTTPError, MultipartProducer, {"a": "b"}, boundary="x" * 71)


class PostMultipartTests(SynchronousTestCase):
    def test_post_multipart_sends_fields(self) -> None:
        """post_multipart sends a parseable body with a Content-Length."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        client.post_multipart(
            "http://e.com/up",
            {"t": "text", "f": ("a.txt", io.BytesIO(b"file"), "text/plain")},
        )
        sent = agent.requests[0]
        content_type = (sent.header("content-type") or b"").decode("latin-1")
        boundary = content_type.split("boundary=", 1)[1].encode()
        parts = parse(sent.body, boundary)
        self.assertEqual(
            [b"text", b"file"], [p.get_payload(decode=True) for p in parts]
        )
        assert sent.body_producer is not None
        self.assertEqual(len(sent.body), sent.body_producer.length)

    def test_data_fields_and_files_combine(self) -> None:
        """data's mapping fields come first, then files."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        client.post("http://e.com/", data={"a": "1"}, files=[("b", ("n", b"2"))])
        body = agent.requests[0].body
        self.assertLess(body.index(b'name="a"'), body.index(b'name="b"'))
