# -*- test-case-name: txhttp.test.test_client_producers -*-
"""Tests for the in-memory request body producer."""

from __future__ import annotations

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.iweb import IBodyProducer
from zope.interface.verify import verifyObject

from txhttp.client import BytesBodyProducer


class BytesBodyProducerTests(SynchronousTestCase):
    def test_provides_body_producer(self) -> None:
        """It provides IBodyProducer and declares the body's length."""
        producer = BytesBodyProducer(b"hello")
        self.assertTrue(verifyObject(IBodyProducer, producer))
        self.assertEqual(5, producer.length)

    def test_writes_whole_body_and_can_be_sent_again(self) -> None:
        """Each start writes the whole body once and fires at once."""
        producer = BytesBodyProducer(b"hello")
        for _ in range(2):
            consumer = StringTransport()
            self.assertIsNone(self.successResultOf(producer.startProducing(consumer)))
            self.assertEqual(b"hello", consumer.value())

    def test_empty_body_writes_nothing(self) -> None:
        """An empty body writes no bytes at all (not even an empty write)."""
        writes: list[bytes] = []

        class Consumer(StringTransport):
            def write(self, data: bytes) -> None:
                writes.append(data)

        producer = BytesBodyProducer(b"")
        self.successResultOf(producer.startProducing(Consumer()))
        self.assertEqual([], writes)
        self.assertEqual(0, producer.length)
