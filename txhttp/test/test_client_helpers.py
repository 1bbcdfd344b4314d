# -*- test-case-name: txhttp.test.test_client_helpers -*-
"""
Tests for the URL, header and validation helpers, the exceptions and the
content decoder.
"""

from __future__ import annotations

import gzip
import zlib

from twisted.trial.unittest import SynchronousTestCase

from txhttp.client import (
    HTTPClientError,
    HTTPConnectionError,
    HTTPError,
    HTTPRetryExhaustedError,
    HTTPStatusError,
    build_url,
    extract_json_type,
    format_timeout,
    merge_headers,
    parse_headers,
    parse_url_parts,
    validate_host,
    validate_port,
    validate_positive_int,
    validate_timeout,
    validate_url,
)
from txhttp.client._decompress import ContentDecoder
from txhttp.client._exceptions import HTTPDecompressionError


class ValidateTests(SynchronousTestCase):
    def test_urls(self) -> None:
        """Absolute http(s) URLs pass; others raise HTTPError with a reason."""
        self.assertEqual("https://a.b/c?d", validate_url("https://a.b/c?d"))
        validate_url("http://[::1]:8080/")
        for bad, reason in [
            ("", "empty"),
            ("ftp://a/", "scheme"),
            ("http:///path", "no host"),
            ("http://a b/", "whitespace"),
            ("http://a:99999/", "port"),
            ("http://a\r\n/", "control"),
        ]:
            with self.assertRaises(HTTPError) as caught:
                validate_url(bad)
            self.assertIn(reason, str(caught.exception))
        self.assertRaises(HTTPError, validate_url, 42)

    def test_hosts(self) -> None:
        """Names, IPv4 and IPv6 (bracketed or not) are accepted."""
        for good in (
            "example.com",
            "a-b.c",
            "localhost",
            "127.0.0.1",
            "::1",
            "[fe80::1]",
        ):
            self.assertEqual(good, validate_host(good))
        for bad in (
            "",
            "-a.com",
            "a..b",
            "300.1.1.1",
            "[a.b]",
            "x" * 64 + ".com",
            "::g",
        ):
            self.assertRaises(HTTPError, validate_host, bad)

    def test_ports_and_numbers(self) -> None:
        """Ports are 1-65535 ints; counts at least 1; bools are refused."""
        self.assertEqual(443, validate_port(443))
        for bad in (0, 65536, True, "80"):
            self.assertRaises(HTTPError, validate_port, bad)
        self.assertEqual(3, validate_positive_int(3, name="n"))
        with self.assertRaises(HTTPError) as caught:
            validate_positive_int(0, name="retries")
        self.assertIn("retries", str(caught.exception))

    def test_timeouts(self) -> None:
        """Timeouts are finite positive numbers or None."""
        self.assertIsNone(validate_timeout(None))
        self.assertEqual(1.0, validate_timeout(1))
        for bad in (0, -1, float("inf"), float("nan"), "1", True):
            self.assertRaises(HTTPError, validate_timeout, bad)
        self.assertEqual("250ms", format_timeout(0.25))
        self.assertEqual("1.5s", format_timeout(1.5))
        self.assertEqual("none", format_timeout(None))


class URLTests(SynchronousTestCase):
    def test_build_url(self) -> None:
        """Paths join like a base URL client expects; params append."""
        self.assertEqual("http://a/v1/x", build_url("http://a/v1", "x"))
        self.assertEqual("http://a/v1/x", build_url("http://a/v1/", "x"))
        self.assertEqual("http://a/x", build_url("http://a/v1/", "/x"))
        self.assertEqual("http://b/y", build_url("http://a/v1/", "http://b/y"))
        self.assertEqual(
            "http://a/p?k=1&z=a+b", build_url("http://a/p?k=1", params={"z": "a b"})
        )
        self.assertEqual("http://a/p", build_url("http://a/p", params={"z": None}))
        self.assertEqual(
            "http://a/p?x=1&x=2", build_url("http://a/p", params=[("x", 1), ("x", 2)])
        )
        self.assertRaises(HTTPError, build_url, "nope", "x")

    def test_parse_url_parts(self) -> None:
        """Parts are lower-cased with the default port filled in."""
        parts = parse_url_parts("HTTPS://Example.COM/a?b#c")
        self.assertEqual(("https", "example.com", 443), parts.origin)
        self.assertEqual(("/a", "b", "c"), (parts.path, parts.query, parts.fragment))
        self.assertEqual("example.com", parts.netloc)
        v6 = parse_url_parts("http://[::1]:81")
        self.assertEqual(("::1", 81, "/"), (v6.host, v6.port, v6.path))
        self.assertEqual("[::1]:81", v6.netloc)


class HeaderTests(SynchronousTestCase):
    def test_merge_later_wins(self) -> None:
        """Later layers win, case-insensitively, keeping the later spelling."""
        self.assertEqual(
            {"accept": "b", "X": "1"},
            merge_headers({"Accept": "a", "X": "1"}, None, [("accept", "b")]),
        )
        self.assertEqual({"A": "v"}, merge_headers({b"A": b"v"}))

    def test_merge_refuses_injection(self) -> None:
        """Names must be tokens and values free of CR, LF and NUL."""
        self.assertRaises(HTTPError, merge_headers, {"Bad Name": "x"})
        self.assertRaises(HTTPError, merge_headers, {"X": "a\nb"})
        self.assertRaises(HTTPError, merge_headers, {"X": 1})

    def test_parse_headers(self) -> None:
        """Lines parse into a dict; repeats combine with a comma."""
        self.assertEqual(
            {"A": "1, 2", "B": "x: y"},
            parse_headers("A: 1\r\n\nB:  x: y \na: 2\n"),
        )
        with self.assertRaises(HTTPError) as caught:
            parse_headers("A: 1\nno colon")
        self.assertIn("line 2", str(caught.exception))

    def test_extract_json_type(self) -> None:
        """application/json and +json types are JSON; others are not."""
        self.assertTrue(extract_json_type("application/json; charset=utf-8"))
        self.assertTrue(extract_json_type(b"application/problem+json"))
        self.assertFalse(extract_json_type("text/html"))
        self.assertFalse(extract_json_type(None))


class ExceptionTests(SynchronousTestCase):
    def test_tree(self) -> None:
        """HTTPError is a ValueError; client errors share HTTPClientError."""
        self.assertTrue(issubclass(HTTPError, ValueError))
        self.assertFalse(issubclass(HTTPError, HTTPClientError))
        self.assertTrue(issubclass(HTTPStatusError, HTTPClientError))

    def test_messages_name_the_request(self) -> None:
        """str() appends the method and URL when known."""
        error = HTTPConnectionError("refused", method="GET", url="http://a/")
        self.assertEqual("refused (GET http://a/)", str(error))
        self.assertTrue(error.request_sent)

    def test_retry_exhausted_keeps_errors(self) -> None:
        """Every attempt's error is kept, in order."""
        first, second = ValueError("1"), KeyError("2")
        error = HTTPRetryExhaustedError("gave up", [first, second])
        self.assertEqual((first, second), tuple(error.errors))
        self.assertEqual(2, error.attempts)
        self.assertIs(second, error.last_error)

    def test_status_excerpt_bounded(self) -> None:
        """HTTPStatusError keeps a bounded excerpt of the body."""
        error = HTTPStatusError("bad", status=500, body=b"x" * 10, max_excerpt_bytes=4)
        self.assertEqual(
            (b"xxxx", True, 500), (error.body_excerpt, error.truncated, error.code)
        )


class DecoderTests(SynchronousTestCase):
    def decoder(self, *codings: str, max_bytes: int = 10**7) -> ContentDecoder:
        return ContentDecoder(
            list(codings), max_bytes=max_bytes, max_ratio=100, grace_bytes=1024
        )

    def test_multi_member_gzip(self) -> None:
        """Concatenated gzip members decode to the concatenated data."""
        data = gzip.compress(b"one") + gzip.compress(b"two")
        decoder = self.decoder("gzip")
        self.assertEqual(b"onetwo", b"".join(decoder.feed(data)))
        decoder.finish()

    def test_raw_deflate(self) -> None:
        """Raw deflate (no zlib header), which some servers send, decodes."""
        compressor = zlib.compressobj(wbits=-15)
        raw = compressor.compress(b"raw data") + compressor.flush()
        self.assertEqual(b"raw data", b"".join(self.decoder("deflate").feed(raw)))

    def test_truncated_and_corrupt(self) -> None:
        """A truncated or corrupt body fails with HTTPDecompressionError."""
        truncated = self.decoder("gzip")
        truncated.feed(gzip.compress(b"x" * 100)[:20])
        self.assertRaises(HTTPDecompressionError, truncated.finish)
        self.assertRaises(
            HTTPDecompressionError, self.decoder("gzip").feed, b"notgzip!" * 3
        )

    def test_stacked_and_unknown(self) -> None:
        """Codings are undone in reverse order; unknown ones are refused."""
        data = gzip.compress(zlib.compress(b"both"))
        self.assertEqual(b"both", b"".join(self.decoder("deflate", "gzip").feed(data)))
        self.assertRaises(HTTPDecompressionError, self.decoder, "compress")
        self.assertTrue(self.decoder("identity").is_identity)

    def test_ratio_cap_stops_early(self) -> None:
        """A bomb is refused long before it is fully expanded."""
        bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
        decoder = self.decoder("gzip")
        self.assertRaises(HTTPDecompressionError, decoder.feed, bomb)
        self.assertLess(decoder.decoded_bytes, 2 * 1024 * 1024)
