# -*- test-case-name: txhttp.test.test_client_http -*-
"""
Tests for `HTTPClient`, `ClientResponse`, `HTTPClientConfig` and
`BaseURLHTTPClient`, against `txhttp.testing.RecordingAgent` and a ``Clock``.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseFailed, ResponseNeverReceived

from txhttp.client import (
    BaseURLHTTPClient,
    BasicAuth,
    BearerAuth,
    CircuitBreakerRegistry,
    ClientResponse,
    EventDispatcher,
    FilterEvent,
    HTTPCircuitOpenError,
    HTTPClient,
    HTTPClientConfig,
    HTTPClientError,
    HTTPClientState,
    HTTPConnectionError,
    HTTPDecompressionError,
    HTTPError,
    HTTPInterceptorError,
    HTTPResponseTooLargeError,
    HTTPRetryExhaustedError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPTooManyRedirectsError,
    InMemoryMetricsRecorder,
    InterceptorChain,
    RequestContext,
    ResiliencePipeline,
    ResponseContext,
    RetryPolicy,
)
from txhttp.client._events import (
    FILTER_REQUEST,
    FILTER_RESPONSE,
    REQUEST_COMPLETED,
    REQUEST_DISPATCHED,
    REQUEST_RETRYING,
    REQUEST_TIMED_OUT,
    RESPONSE_RECEIVED,
    RETRIES_EXHAUSTED,
    RequestRetrying,
)
from txhttp.client._hc_lifecycle import (
    LIFECYCLE_TRANSITIONS,
    LifecycleInput,
    next_state,
)
from txhttp.client._metrics import REQUEST_DURATION, REQUEST_STATUS
from txhttp.testing import RecordedRequest, RecordingAgent, StubResponse, make_response

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run a coroutine the Twisted way."""
    return Deferred.fromCoroutine(coroutine)


def make_client(
    agent: RecordingAgent | None = None, **kwargs: Any
) -> tuple[HTTPClient, RecordingAgent, Clock]:
    agent = agent if agent is not None else RecordingAgent()
    clock = kwargs.pop("clock", None) or Clock()
    return HTTPClient(agent=agent, clock=clock, **kwargs), agent, clock


class ConfigTests(SynchronousTestCase):
    def test_defaults_are_valid(self) -> None:
        """The default config has bounded, positive limits."""
        config = HTTPClientConfig()
        self.assertEqual(10 * 1024 * 1024, config.max_response_body_bytes)
        self.assertTrue(config.verify_tls)
        self.assertTrue(config.cookies_enabled)

    def test_invalid_values_raise(self) -> None:
        """Bad limits are refused with HTTPError naming the setting."""
        with self.assertRaises(HTTPError) as caught:
            HTTPClientConfig(max_connections=0)
        self.assertIn("max_connections", str(caught.exception))
        self.assertRaises(HTTPError, HTTPClientConfig, timeout=-1)
        self.assertRaises(
            HTTPError, HTTPClientConfig, max_connections=2, max_connections_per_host=3
        )
        self.assertRaises(HTTPError, HTTPClientConfig, proxy_url="ftp://proxy")

    def test_proxy_url_wins(self) -> None:
        """An explicit proxy URL is used for every request."""
        config = HTTPClientConfig(proxy_url="http://proxy:3128", trust_env=True)
        self.assertEqual(
            "http://proxy:3128",
            config.proxy_for("http://a.example/", {"HTTP_PROXY": "http://other"}),
        )

    def test_trust_env_and_no_proxy(self) -> None:
        """With trust_env, *_PROXY applies unless NO_PROXY matches the host."""
        config = HTTPClientConfig(trust_env=True)
        env = {"HTTP_PROXY": "http://p:1", "no_proxy": "internal.example, .corp"}
        self.assertEqual("http://p:1", config.proxy_for("http://a.example/", env))
        self.assertIsNone(config.proxy_for("http://x.internal.example/", env))
        self.assertIsNone(config.proxy_for("http://corp/", env))
        self.assertIsNone(config.proxy_for("https://a.example/", env))

    def test_env_ignored_without_trust_env(self) -> None:
        """Without trust_env, the environment is never read."""
        config = HTTPClientConfig()
        self.assertIsNone(
            config.proxy_for("http://a.example/", {"HTTP_PROXY": "http://p:1"})
        )


class RequestOptionsTests(SynchronousTestCase):
    def test_get_sends_defaults(self) -> None:
        """A GET goes to the agent with User-Agent and Accept-Encoding."""
        client, agent, _ = make_client()
        agent.queue(make_response(body=b"hi"))
        response = self.successResultOf(client.get("http://example.com/a"))
        self.assertEqual(200, response.status)
        self.assertEqual(200, response.code)
        self.assertTrue(response.ok)
        (sent,) = agent.requests
        self.assertEqual((b"GET", b"http://example.com/a"), (sent.method, sent.uri))
        self.assertEqual(b"txhttp", sent.header("user-agent"))
        self.assertEqual(b"gzip, deflate", sent.header("accept-encoding"))
        self.assertEqual(b"hi", self.successResultOf(response.content()))

    def test_params_skip_none_and_extend_query(self) -> None:
        """Params are appended after an existing query; None values are left out."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        client.get(
            "http://example.com/s?q=1",
            params={"a": "x y", "skip": None, "n": [1, 2], "flag": True},
        )
        self.assertEqual(
            b"http://example.com/s?q=1&a=x+y&n=1&n=2&flag=true", agent.requests[0].uri
        )

    def test_json_body(self) -> None:
        """json= sends compact UTF-8 JSON with its content type."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        client.post("http://example.com/", json={"k": "é", "n": [1]})
        sent = agent.requests[0]
        self.assertEqual(b"application/json", sent.header("content-type"))
        self.assertEqual({"k": "é", "n": [1]}, json.loads(sent.body))

    def test_form_and_text_bodies(self) -> None:
        """A mapping is form-encoded; text is UTF-8; bytes are sent as is."""
        client, agent, _ = make_client()
        agent.queue(make_response(), make_response(), make_response())
        client.post("http://example.com/", data={"a": "1 2", "b": "&"})
        client.post("http://example.com/", data="héllo")
        client.post("http://example.com/", data=b"\x00raw")
        form, text, raw = agent.requests
        self.assertEqual(b"a=1+2&b=%26", form.body)
        self.assertEqual(
            b"application/x-www-form-urlencoded", form.header("content-type")
        )
        self.assertEqual("héllo".encode(), text.body)
        self.assertEqual(b"\x00raw", raw.body)
        self.assertIsNone(raw.header("content-type"))

    def test_data_and_json_refused(self) -> None:
        """Giving both data and json fails with HTTPError, nothing sent."""
        client, agent, _ = make_client()
        failure = self.failureResultOf(
            client.post("http://example.com/", data=b"x", json={}), HTTPError
        )
        self.assertIn("data and json", str(failure.value))
        self.assertEqual([], agent.requests)

    def test_invalid_method_and_url(self) -> None:
        """A bad method or URL fails the Deferred with HTTPError."""
        client, agent, _ = make_client()
        self.failureResultOf(client.request("GE T", "http://e.com/"), HTTPError)
        self.failureResultOf(client.get("ftp://e.com/"), HTTPError)
        self.failureResultOf(
            client.get("http://e.com/", headers={"X": "a\r\nB: c"}), HTTPError
        )
        self.assertEqual([], agent.requests)

    def test_headers_merge_later_wins(self) -> None:
        """Request headers override client defaults, case-insensitively."""
        client, agent, _ = make_client(headers={"X-Team": "a", "Accept": "text/*"})
        agent.queue(make_response())
        client.get("http://e.com/", headers={"x-team": "b"})
        sent = agent.requests[0]
        self.assertEqual(["b"], sent.headers.getRawHeaders("x-team"))
        self.assertEqual(b"text/*", sent.header("accept"))

    def test_auth(self) -> None:
        """Basic (tuple or object) and bearer credentials set Authorization."""
        client, agent, _ = make_client()
        agent.queue(make_response(), make_response(), make_response())
        client.get("http://e.com/", auth=("user", "pa:ss"))
        client.get("http://e.com/", auth=BasicAuth("u", "p"))
        client.get("http://e.com/", auth=BearerAuth("tok"))
        self.assertEqual(
            [b"Basic dXNlcjpwYTpzcw==", b"Basic dTpw", b"Bearer tok"],
            [r.header("authorization") for r in agent.requests],
        )
        self.assertNotIn("tok", repr(BearerAuth("tok")))

    def test_cookie_jar_round_trip(self) -> None:
        """Set-Cookie is stored and sent back with later requests to the host."""
        client, agent, _ = make_client()
        agent.queue(
            StubResponse(200, {"Set-Cookie": "sid=abc; Path=/"}),
            make_response(),
            make_response(),
        )
        self.successResultOf(client.get("http://e.com/login"))
        client.get("http://e.com/page", cookies={"extra": "1"})
        client.get("http://other.com/page")
        self.assertEqual(b"extra=1; sid=abc", agent.requests[1].header("cookie"))
        self.assertIsNone(agent.requests[2].header("cookie"))

    def test_cookie_jar_off(self) -> None:
        """With cookies disabled, Set-Cookie is ignored."""
        client, agent, _ = make_client(config=HTTPClientConfig(cookies_enabled=False))
        agent.queue(StubResponse(200, {"Set-Cookie": "sid=abc"}), make_response())
        client.get("http://e.com/")
        client.get("http://e.com/")
        self.assertIsNone(agent.requests[1].header("cookie"))
        self.assertIsNone(client.cookie_jar)

    def test_force_close(self) -> None:
        """force_close sends Connection: close."""
        client, agent, _ = make_client(config=HTTPClientConfig(force_close=True))
        agent.queue(make_response())
        client.get("http://e.com/")
        self.assertEqual(b"close", agent.requests[0].header("connection"))


class ResponseTests(SynchronousTestCase):
    def get(
        self, response: StubResponse, config: HTTPClientConfig | None = None
    ) -> ClientResponse:
        client, agent, _ = make_client(config=config)
        agent.queue(response)
        return self.successResultOf(client.get("http://e.com/x"))

    def test_text_uses_charset(self) -> None:
        """text() decodes with the Content-Type charset, UTF-8 otherwise."""
        latin = self.get(
            StubResponse(
                200,
                {"Content-Type": "text/plain; charset=latin-1"},
                ["é".encode("latin-1")],
            )
        )
        self.assertEqual("é", self.successResultOf(latin.text()))
        plain = self.get(StubResponse(200, body=["é".encode()]))
        self.assertEqual("é", self.successResultOf(plain.text()))

    def test_json_and_errors(self) -> None:
        """json() parses the body; invalid JSON fails with HTTPClientError."""
        good = self.get(
            StubResponse(200, {"Content-Type": "application/json"}, [b'{"a":', b"1}"])
        )
        self.assertTrue(good.is_json)
        self.assertEqual({"a": 1}, self.successResultOf(good.json()))
        bad = self.get(StubResponse(200, body=[b"{nope"]))
        self.failureResultOf(bad.json(), HTTPClientError)

    def test_content_is_cached(self) -> None:
        """content() can be called again and returns the same bytes."""
        response = self.get(StubResponse(200, body=[b"ab", b"cd"]))
        self.assertEqual(b"abcd", self.successResultOf(response.content()))
        self.assertEqual(b"abcd", self.successResultOf(response.content()))
        self.assertEqual("abcd", self.successResultOf(response.text()))

    def test_body_over_limit_aborts(self) -> None:
        """A body past max_response_body_bytes fails and stops the transport."""
        fake = StubResponse(
            200, body=[b"x" * 60, b"y" * 60], length=None, complete=False
        )
        response = self.get(fake, HTTPClientConfig(max_response_body_bytes=100))
        failure = self.failureResultOf(response.content(), HTTPResponseTooLargeError)
        self.assertEqual(100, failure.value.limit)
        self.assertTrue(fake.stopped)

    def test_content_length_over_limit_fails_at_once(self) -> None:
        """An announced Content-Length past the limit fails without reading."""
        fake = StubResponse(200, body=[b"x" * 10], length=1000)
        response = self.get(fake, HTTPClientConfig(max_response_body_bytes=100))
        failure = self.failureResultOf(response.content(), HTTPResponseTooLargeError)
        self.assertIn("1000", str(failure.value))

    def test_raise_for_status(self) -> None:
        """raise_for_status passes 2xx and fails 4xx with a bounded excerpt."""
        good = self.get(StubResponse(204))
        self.assertIs(good, self.successResultOf(good.raise_for_status()))
        bad = self.get(
            StubResponse(404, {"X-Why": "gone"}, [b"e" * 5000], phrase=b"Not Found")
        )
        failure = self.failureResultOf(bad.raise_for_status(), HTTPStatusError)
        error = failure.value
        self.assertEqual(404, error.status)
        self.assertEqual(["gone"], error.headers.getRawHeaders("x-why"))
        self.assertEqual(1024, len(error.body_excerpt))
        self.assertTrue(error.truncated)
        self.assertIn("404", str(error))
        self.assertIn("http://e.com/x", str(error))

    def test_gzip_and_deflate_are_decoded(self) -> None:
        """gzip and deflate bodies are decompressed, split anywhere."""
        body = b"hello " * 1000
        packed = gzip.compress(body)
        response = self.get(
            StubResponse(
                200,
                {"Content-Encoding": "gzip"},
                [packed[i : i + 7] for i in range(0, len(packed), 7)],
            )
        )
        self.assertEqual(body, self.successResultOf(response.content()))
        deflated = self.get(
            StubResponse(200, {"Content-Encoding": "deflate"}, [zlib.compress(body)])
        )
        self.assertEqual(body, self.successResultOf(deflated.content()))

    def test_gzip_bomb_refused(self) -> None:
        """A body that expands past the ratio cap fails and aborts."""
        bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
        fake = StubResponse(200, {"Content-Encoding": "gzip"}, [bomb])
        response = self.get(
            fake, HTTPClientConfig(max_response_body_bytes=50 * 1024 * 1024)
        )
        failure = self.failureResultOf(response.content(), HTTPDecompressionError)
        self.assertIn("ratio", str(failure.value))
        self.assertTrue(fake.stopped)

    def test_decompressed_size_capped(self) -> None:
        """The size cap applies to the decoded body, not the encoded one."""
        packed = gzip.compress(b"a" * 5000)
        fake = StubResponse(200, {"Content-Encoding": "gzip"}, [packed])
        response = self.get(fake, HTTPClientConfig(max_response_body_bytes=1000))
        self.failureResultOf(response.content(), HTTPDecompressionError)

    def test_decompress_off(self) -> None:
        """decompress=False neither asks for nor decodes content codings."""
        client, agent, _ = make_client()
        packed = gzip.compress(b"x")
        agent.queue(StubResponse(200, {"Content-Encoding": "gzip"}, [packed]))
        response = self.successResultOf(client.get("http://e.com/", decompress=False))
        self.assertIsNone(agent.requests[0].header("accept-encoding"))
        self.assertEqual(packed, self.successResultOf(response.content()))

    def test_cut_short_body(self) -> None:
        """A body that ends with ResponseFailed fails with HTTPConnectionError."""
        fake = StubResponse(200, body=[b"part"], complete=False)
        response = self.get(fake)
        reading = response.content()
        fake.fail(ResponseFailed([Failure(ConnectionRefusedError())]))
        failure = self.failureResultOf(reading, HTTPConnectionError)
        self.assertIn("cut short", str(failure.value))

    def test_release_drains(self) -> None:
        """release() reads and drops a short body without aborting."""
        fake = StubResponse(200, body=[b"abc"])
        response = self.get(fake)
        response.release()
        self.assertFalse(fake.stopped)
        self.assertTrue(fake.delivered)
        self.assertRaises(RuntimeError, response.iter_body)

    def test_forged_response(self) -> None:
        """ClientResponse.forged builds a readable in-memory response."""
        response = ClientResponse.forged(
            201, b'{"a": 1}', {"Content-Type": "application/json"}
        )
        self.assertEqual(201, response.status)
        self.assertEqual({"a": 1}, self.successResultOf(response.json()))


class RedirectTests(SynchronousTestCase):
    def test_follows_and_records_history(self) -> None:
        """A 302 is followed with GET; history holds the redirect."""
        client, agent, _ = make_client()
        agent.queue(
            StubResponse(302, {"Location": "/next"}), make_response(body=b"done")
        )
        response = self.successResultOf(client.get("http://e.com/start"))
        self.assertEqual(b"http://e.com/next", agent.requests[1].uri)
        self.assertEqual("http://e.com/next", response.url)
        self.assertEqual([302], [r.status for r in response.history])

    def test_303_turns_post_into_get(self) -> None:
        """After a 303 the body and its Content-Type are dropped."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(303, {"Location": "http://e.com/r"}), make_response())
        self.successResultOf(client.post("http://e.com/", json={"a": 1}))
        second = agent.requests[1]
        self.assertEqual(b"GET", second.method)
        self.assertIsNone(second.body_producer)
        self.assertIsNone(second.header("content-type"))

    def test_307_keeps_method_and_body(self) -> None:
        """A 307 repeats the method with the same body."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(307, {"Location": "/again"}), make_response())
        self.successResultOf(client.put("http://e.com/", data=b"payload"))
        second = agent.requests[1]
        self.assertEqual(b"PUT", second.method)
        self.assertEqual(b"payload", second.body)

    def test_cross_origin_strips_credentials(self) -> None:
        """Authorization, Cookie and Proxy-Authorization do not cross origins."""
        client, agent, _ = make_client()
        agent.queue(
            StubResponse(302, {"Location": "/same"}),
            StubResponse(302, {"Location": "https://evil.example/"}),
            make_response(),
        )
        self.successResultOf(
            client.get(
                "http://e.com/",
                auth=("u", "p"),
                cookies={"s": "1"},
                headers={"Proxy-Authorization": "Basic x", "X-Keep": "1"},
            )
        )
        same, other = agent.requests[1], agent.requests[2]
        self.assertIsNotNone(same.header("authorization"))
        self.assertEqual(b"s=1", same.header("cookie"))
        for name in ("authorization", "cookie", "proxy-authorization"):
            self.assertIsNone(other.header(name), name)
        self.assertEqual(b"1", other.header("x-keep"))

    def test_redirect_limit(self) -> None:
        """More redirects than allowed fail with HTTPTooManyRedirectsError."""
        client, agent, _ = make_client()
        agent.responder = lambda request: StubResponse(301, {"Location": "/loop"})
        failure = self.failureResultOf(
            client.get("http://e.com/", max_redirects=3), HTTPTooManyRedirectsError
        )
        self.assertEqual(4, len(failure.value.history))
        self.assertEqual(4, len(agent.requests))

    def test_redirects_off(self) -> None:
        """allow_redirects=False returns the redirect itself."""
        client, agent, _ = make_client()
        agent.queue(StubResponse(302, {"Location": "/x"}))
        response = self.successResultOf(
            client.get("http://e.com/", allow_redirects=False)
        )
        self.assertEqual(302, response.status)
        self.assertEqual(1, len(agent.requests))


class TimeoutAndErrorTests(SynchronousTestCase):
    def test_timeout_cancels_request(self) -> None:
        """The per-request timeout fails with HTTPTimeoutError and cancels."""
        client, agent, clock = make_client()
        timed_out: list[object] = []
        client.events.add_listener(REQUEST_TIMED_OUT, timed_out.append)
        d = client.get("http://e.com/", timeout=5)
        clock.advance(4.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        failure = self.failureResultOf(d, HTTPTimeoutError)
        self.assertEqual(5, failure.value.timeout)
        self.assertTrue(agent.requests[0].cancelled)
        self.assertEqual(1, len(timed_out))
        self.assertEqual([], clock.getDelayedCalls())

    def test_default_timeout_from_config(self) -> None:
        """Without a timeout option the config's timeout applies."""
        client, _agent, clock = make_client(config=HTTPClientConfig(timeout=2))
        d = client.get("http://e.com/")
        clock.advance(2)
        self.failureResultOf(d, HTTPTimeoutError)

    def test_no_timeout(self) -> None:
        """timeout=None sets no deadline."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=None)
        self.assertEqual([], clock.getDelayedCalls())
        agent.requests[0].respond(make_response())
        self.successResultOf(d)

    def test_connection_errors_are_wrapped(self) -> None:
        """Agent failures become HTTPConnectionError saying if the request left."""
        client, agent, _ = make_client()
        agent.queue(
            ConnectionRefusedError(), ResponseNeverReceived([Failure(ValueError())])
        )
        refused = self.failureResultOf(client.get("http://e.com/"), HTTPConnectionError)
        self.assertFalse(refused.value.request_sent)
        self.assertIsInstance(refused.value.__cause__, ConnectionRefusedError)
        lost = self.failureResultOf(client.get("http://e.com/"), HTTPConnectionError)
        self.assertTrue(lost.value.request_sent)
        self.assertIn("ResponseNeverReceived", str(lost.value))

    def test_cancel_aborts(self) -> None:
        """Cancelling the request Deferred cancels the agent's request."""
        client, agent, _ = make_client()
        d = client.get("http://e.com/")
        d.cancel()
        self.assertTrue(agent.requests[0].cancelled)
        self.failureResultOf(d)


class WholeExchangeTimeoutTests(SynchronousTestCase):
    """The per-request ``timeout`` covers redirects, retries and body reads."""

    def test_body_read_times_out(self) -> None:
        """content() fails with HTTPTimeoutError at the deadline, aborting the body."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=5)
        clock.advance(1)
        raw = StubResponse(200, body=[b"partial"], complete=False)
        agent.requests[0].respond(raw)
        response = self.successResultOf(d)
        body = response.content()
        clock.advance(3.9)
        self.assertNoResult(body)
        clock.advance(0.1)
        failure = self.failureResultOf(body, HTTPTimeoutError)
        self.assertEqual(("total", 5), (failure.value.phase, failure.value.timeout))
        self.assertEqual("http://e.com/", failure.value.url)
        self.assertTrue(raw.stopped)
        self.assertEqual([], clock.getDelayedCalls())

    def test_text_and_json_bounded_too(self) -> None:
        """text() and json() read through content(), so the deadline holds."""
        for read in (ClientResponse.text, ClientResponse.json):
            client, agent, clock = make_client()
            d = client.get("http://e.com/", timeout=2)
            agent.requests[0].respond(StubResponse(200, complete=False))
            reading = read(self.successResultOf(d))
            clock.advance(2)
            self.failureResultOf(reading, HTTPTimeoutError)

    def test_body_in_time_leaves_no_timer(self) -> None:
        """A body that ends before the deadline is delivered; its timer is gone."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=5)
        raw = StubResponse(200, complete=False)
        agent.requests[0].respond(raw)
        body = self.successResultOf(d).content()
        clock.advance(4)
        raw.write(b"all")
        raw.finish()
        self.assertEqual(b"all", self.successResultOf(body))
        self.assertEqual([], clock.getDelayedCalls())

    def test_deadline_passed_before_reading(self) -> None:
        """Reading after the deadline fails at once and aborts the body."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=5)
        raw = StubResponse(200, body=[b"x"], complete=False)
        agent.requests[0].respond(raw)
        response = self.successResultOf(d)
        clock.advance(6)
        self.failureResultOf(response.json(), HTTPTimeoutError)
        self.assertTrue(raw.stopped)

    def test_no_timeout_no_body_deadline(self) -> None:
        """With timeout=None, reading the body has no deadline."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=None)
        raw = StubResponse(200, complete=False)
        agent.requests[0].respond(raw)
        body = self.successResultOf(d).content()
        self.assertEqual([], clock.getDelayedCalls())
        clock.advance(10_000)
        raw.write(b"late")
        raw.finish()
        self.assertEqual(b"late", self.successResultOf(body))

    def test_streams_not_bounded(self) -> None:
        """iter_body() streams are not cut by the request timeout."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/", timeout=1)
        raw = StubResponse(200, complete=False)
        agent.requests[0].respond(raw)
        stream = self.successResultOf(d).iter_body()
        clock.advance(100)
        raw.write(b"chunk")
        self.assertEqual(b"chunk", self.successResultOf(stream.next_chunk()))

    def test_redirects_share_the_deadline(self) -> None:
        """Time spent on a redirect hop counts; the error names the request timeout."""
        client, agent, clock = make_client()
        d = client.get("http://e.com/a", timeout=5)
        clock.advance(3)
        agent.requests[0].respond(StubResponse(302, {"Location": "/b"}))
        self.assertEqual(2, len(agent.requests))
        clock.advance(1.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        failure = self.failureResultOf(d, HTTPTimeoutError)
        self.assertEqual(("total", 5), (failure.value.phase, failure.value.timeout))
        self.assertTrue(agent.requests[1].cancelled)
        self.assertEqual([], clock.getDelayedCalls())

    def test_timeout_covers_retry_waits(self) -> None:
        """The request timeout goes through the pipeline and cuts a backoff wait."""
        policy = RetryPolicy(max_attempts=3, initial_delay=10.0, jitter=0.0)
        client, agent, clock = make_client(retry_policy=policy)
        agent.queue(StubResponse(503))
        d = client.get("http://e.com/", timeout=4)
        clock.advance(4)
        failure = self.failureResultOf(d, HTTPTimeoutError)
        self.assertEqual(4, failure.value.timeout)
        self.assertEqual(1, len(agent.requests))
        self.assertEqual([], clock.getDelayedCalls())

    def test_pipeline_shorter_total_timeout_wins(self) -> None:
        """A pipeline's own shorter total timeout still applies."""
        clock = Clock()
        pipeline = ResiliencePipeline.from_parts(clock=clock, timeout=1.0)
        client, agent, _ = make_client(clock=clock, resilience=pipeline)
        d = client.get("http://e.com/", timeout=5)
        clock.advance(1)
        failure = self.failureResultOf(d, HTTPTimeoutError)
        self.assertEqual(1.0, failure.value.timeout)
        self.assertTrue(agent.requests[0].cancelled)

    def test_request_timeout_beats_longer_pipeline_timeout(self) -> None:
        """A request timeout shorter than the pipeline's fires first."""
        clock = Clock()
        pipeline = ResiliencePipeline.from_parts(clock=clock, timeout=60.0)
        client, _agent, _ = make_client(clock=clock, resilience=pipeline)
        d = client.get("http://e.com/", timeout=2)
        clock.advance(2)
        self.assertEqual(2, self.failureResultOf(d, HTTPTimeoutError).value.timeout)
        self.assertEqual([], clock.getDelayedCalls())


class ResilienceIntegrationTests(SynchronousTestCase):
    def test_retrying_event(self) -> None:
        """Each retry dispatches request-retrying with the attempt and delay."""
        policy = RetryPolicy(max_attempts=3, initial_delay=1.0, jitter=0.0)
        client, agent, clock = make_client(retry_policy=policy)
        retrying: list[RequestRetrying] = []
        client.events.add_listener(REQUEST_RETRYING, retrying.append)
        agent.queue(
            ConnectionRefusedError(), StubResponse(503), make_response(body=b"fine")
        )
        d = client.get("http://e.com/x")
        self.assertEqual([(2, 1.0)], [(e.attempt, e.delay) for e in retrying])
        self.assertIsInstance(retrying[0].error, HTTPConnectionError)
        self.assertEqual(
            ("GET", "http://e.com/x"), (retrying[0].method, retrying[0].url)
        )
        clock.advance(1)
        self.assertEqual([2, 3], [e.attempt for e in retrying])
        self.assertEqual(2.0, retrying[1].delay)
        self.assertIsInstance(retrying[1].error, HTTPStatusError)
        clock.advance(2)
        self.assertEqual(200, self.successResultOf(d).status)
        self.assertEqual(2, len(retrying))

    def test_retry_on_status_then_success(self) -> None:
        """A 503 is retried after the backoff delay, on the client's clock."""
        policy = RetryPolicy(max_attempts=3, initial_delay=1.0, jitter=0.0)
        client, agent, clock = make_client(retry_policy=policy)
        agent.queue(StubResponse(503, body=[b"busy"]), make_response(body=b"fine"))
        d = client.get("http://e.com/")
        self.assertEqual(1, len(agent.requests))
        clock.advance(0.99)
        self.assertEqual(1, len(agent.requests))
        clock.advance(0.01)
        response = self.successResultOf(d)
        self.assertEqual(b"fine", self.successResultOf(response.content()))

    def test_retry_exhausted(self) -> None:
        """When attempts run out the failure carries every attempt's error."""
        policy = RetryPolicy(max_attempts=2, initial_delay=1.0, jitter=0.0)
        client, agent, clock = make_client(retry_policy=policy)
        exhausted: list[object] = []
        client.events.add_listener(RETRIES_EXHAUSTED, exhausted.append)
        agent.queue(ConnectionRefusedError(), StubResponse(503))
        d = client.get("http://e.com/")
        clock.advance(1)
        failure = self.failureResultOf(d, HTTPRetryExhaustedError)
        self.assertEqual(2, failure.value.attempts)
        self.assertIsInstance(failure.value.errors[0], HTTPConnectionError)
        self.assertIsInstance(failure.value.errors[1], HTTPStatusError)
        self.assertEqual(1, len(exhausted))

    def test_circuit_opens(self) -> None:
        """After the failure threshold the breaker fails fast without sending."""
        clock = Clock()
        breakers = CircuitBreakerRegistry(clock, failure_threshold=2)
        client, agent, _ = make_client(clock=clock, circuit_breaker=breakers)
        agent.responder = lambda request: ConnectionRefusedError()
        for _ in range(2):
            self.failureResultOf(client.get("http://e.com/"), HTTPConnectionError)
        failure = self.failureResultOf(
            client.get("http://e.com/"), HTTPCircuitOpenError
        )
        self.assertEqual("e.com:80", failure.value.host)
        self.assertEqual(2, len(agent.requests))
        health = self.successResultOf(client.health_check())
        self.assertEqual(("e.com:80",), health.open_circuits)

    def test_pipeline_replaces_parts(self) -> None:
        """A given ResiliencePipeline is used instead of retry_policy."""
        clock = Clock()
        pipeline = ResiliencePipeline.from_parts(clock=clock)
        client, agent, _ = make_client(
            clock=clock,
            resilience=pipeline,
            retry_policy=RetryPolicy(max_attempts=5),
        )
        agent.queue(StubResponse(503))
        response = self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(503, response.status)
        self.assertIs(pipeline, client.resilience)


class Recorder:
    """An interceptor that records its calls and tags requests."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def intercept_request(self, context: RequestContext) -> RequestContext:
        self.log.append(f"request:{self.name}")
        context.headers.addRawHeader("x-seen", self.name)
        return context

    def intercept_response(self, context: ResponseContext) -> ResponseContext:
        self.log.append(f"response:{self.name}:{context.status}")
        return context


class InterceptorAndEventTests(SynchronousTestCase):
    def test_interceptor_order(self) -> None:
        """Request hooks run in order, response hooks in reverse; headers arrive."""
        log: list[str] = []
        chain = InterceptorChain([Recorder("a", log), Recorder("b", log)])
        client, agent, _ = make_client(interceptors=chain, name="svc")
        agent.queue(make_response())
        self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(
            ["request:a", "request:b", "response:b:200", "response:a:200"], log
        )
        self.assertEqual(["a", "b"], agent.requests[0].headers.getRawHeaders("x-seen"))

    def test_failing_interceptor(self) -> None:
        """A failing hook fails the request with HTTPInterceptorError naming it."""

        class Broken:
            name = "broken"

            def intercept_request(self, context: RequestContext) -> RequestContext:
                raise KeyError("boom")

            def intercept_response(self, context: ResponseContext) -> ResponseContext:
                return context

        client, agent, _ = make_client(interceptors=[Broken()])
        failure = self.failureResultOf(
            client.get("http://e.com/"), HTTPInterceptorError
        )
        self.assertEqual("broken", failure.value.interceptor)
        self.assertEqual([], agent.requests)

    def test_forged_response_skips_network(self) -> None:
        """A filter-request listener that sets a response skips the agent."""
        client, agent, _ = make_client()

        def forge(event: FilterEvent[Any, Any]) -> None:
            event.response = ClientResponse.forged(200, b"cached")

        client.events.add_listener(FILTER_REQUEST, forge)
        response = self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(b"cached", self.successResultOf(response.content()))
        self.assertEqual([], agent.requests)

    def test_filter_response_replaces(self) -> None:
        """A filter-response listener may replace the real response; async is fine."""
        client, agent, _ = make_client()
        agent.queue(make_response(body=b"real"))
        seen: list[object] = []

        async def replace(event: FilterEvent[Any, Any]) -> None:
            seen.append(event.request.url)
            await succeed(None)
            event.response = ClientResponse.forged(299, b"new")

        client.events.add_listener(FILTER_RESPONSE, replace)
        response = self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(299, response.status)
        self.assertEqual(["http://e.com/"], seen)

    def test_stop_propagation_spans_both_phases(self) -> None:
        """Stopping propagation in filter-request skips filter-response too."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        calls: list[str] = []

        def stopper(event: FilterEvent[Any, Any]) -> None:
            calls.append("request")
            event.stop_propagation()

        client.events.add_listener(FILTER_REQUEST, stopper)
        client.events.add_listener(FILTER_REQUEST, lambda e: calls.append("later"))
        client.events.add_listener(FILTER_RESPONSE, lambda e: calls.append("response"))
        self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(["request"], calls)
        self.assertEqual(1, len(agent.requests))

    def test_notification_order(self) -> None:
        """Dispatched, received, completed are notified in that order."""
        events = EventDispatcher()
        client, agent, _ = make_client(events=events)
        agent.queue(make_response())
        order: list[str] = []

        def listener_for(name: str) -> Callable[[object], None]:
            return lambda event: order.append(name)

        for name in (REQUEST_DISPATCHED, RESPONSE_RECEIVED, REQUEST_COMPLETED):
            events.add_listener(name, listener_for(name))
        self.successResultOf(client.get("http://e.com/"))
        self.assertEqual(
            [REQUEST_DISPATCHED, RESPONSE_RECEIVED, REQUEST_COMPLETED], order
        )

    def test_metrics(self) -> None:
        """Duration and status are recorded with method, host and status."""
        metrics = InMemoryMetricsRecorder()
        client, agent, clock = make_client(metrics=metrics)
        d = client.get("http://e.com:8080/")
        clock.advance(0.25)
        agent.requests[0].respond(StubResponse(404))
        self.successResultOf(d)
        self.assertEqual([0.25], metrics.values(REQUEST_DURATION))
        (point,) = [p for p in metrics.points if p.name == REQUEST_STATUS]
        self.assertEqual("GET", point.attributes["http.request.method"])
        self.assertEqual("e.com", point.attributes["server.address"])
        self.assertEqual(8080, point.attributes["server.port"])
        self.assertEqual(404, point.attributes["http.response.status_code"])


class FakePool:
    """A pool whose closing the test controls."""

    def __init__(self) -> None:
        self.closing: Deferred[None] | None = None

    def closeCachedConnections(self) -> Deferred[None]:
        self.closing = Deferred()
        return self.closing


class LifecycleTests(SynchronousTestCase):
    def test_lazy_start(self) -> None:
        """A client starts on its first request."""
        client, agent, _ = make_client()
        self.assertIs(HTTPClientState.NEW, client.state)
        agent.queue(make_response())
        client.get("http://e.com/")
        self.assertIs(HTTPClientState.RUNNING, client.state)

    def test_stop_cancels_and_waits_for_pool(self) -> None:
        """stop() cancels requests and fires when the pool has closed."""
        pool = FakePool()
        client, agent, _ = make_client(pool=pool)
        pending = client.get("http://e.com/")
        stopping = client.stop()
        self.assertTrue(agent.requests[0].cancelled)
        self.failureResultOf(pending)
        self.assertNoResult(stopping)
        self.assertIs(HTTPClientState.STOPPING, client.state)
        assert pool.closing is not None
        pool.closing.callback(None)
        self.successResultOf(stopping)
        self.assertIs(HTTPClientState.STOPPED, client.state)
        self.successResultOf(client.stop())
        self.failureResultOf(client.get("http://e.com/"), HTTPClientError)

    def test_async_context_manager(self) -> None:
        """async with starts the client and stops it on exit."""
        client, agent, _ = make_client()
        agent.queue(make_response(body=b"x"))

        async def use() -> bytes:
            async with client as c:
                response = await c.get("http://e.com/")
                return await response.content()

        self.assertEqual(b"x", self.successResultOf(run(use())))
        self.assertIs(HTTPClientState.STOPPED, client.state)

    def test_warm_up_swallows_errors(self) -> None:
        """warm_up sends HEAD to each URL and counts those that answered."""
        client, agent, _ = make_client()
        agent.queue(make_response(), ConnectionRefusedError())
        count = self.successResultOf(client.warm_up(["http://a.com/", "http://b.com/"]))
        self.assertEqual(1, count)
        self.assertEqual([b"HEAD", b"HEAD"], [r.method for r in agent.requests])
        self.flushLoggedErrors()

    def test_health_check(self) -> None:
        """health_check reports state; with a URL it probes it."""
        client, agent, _clock = make_client()
        plain = self.successResultOf(client.health_check())
        self.assertTrue(plain.healthy)
        self.assertEqual("NEW", plain.state)
        agent.queue(StubResponse(500))
        probed = self.successResultOf(client.health_check("http://e.com/health"))
        self.assertFalse(probed.healthy)
        self.assertEqual(500, probed.status)
        agent.queue(ConnectionRefusedError())
        failed = self.successResultOf(client.health_check("http://e.com/health"))
        self.assertFalse(failed.healthy)
        self.assertIn("ConnectionRefusedError", failed.error or "")


class LifecycleTableTests(SynchronousTestCase):
    """The client's lifecycle moves only as `LIFECYCLE_TRANSITIONS` says."""

    def test_every_state_and_input(self) -> None:
        """Each (state, input) pair moves as the table says or is refused."""
        for state in HTTPClientState:
            for event in LifecycleInput:
                expected = LIFECYCLE_TRANSITIONS.get((state, event))
                if expected is None:
                    self.assertRaises(HTTPClientError, next_state, state, event)
                else:
                    self.assertIs(expected, next_state(state, event))

    def test_stop_without_pool_ends_stopped(self) -> None:
        """A running client with an injected agent stops at once, via the table."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        self.successResultOf(client.get("http://e.com/"))
        self.successResultOf(client.stop())
        self.assertIs(HTTPClientState.STOPPED, client.state)
        self.failureResultOf(client.start(), HTTPClientError)


class ModuleLayoutTests(SynchronousTestCase):
    """`HTTPClient`'s parts are importable as before and import no client."""

    def test_old_import_path(self) -> None:
        """Every name ``_http_client`` exported is still there, the same object."""
        import txhttp.client
        from txhttp.client import _http_client

        self.assertIn("HTTPClient", _http_client.__all__)
        for name in _http_client.__all__:
            value = getattr(_http_client, name)
            self.assertIs(value, getattr(txhttp.client, name, value), name)

    def test_parts_do_not_import_the_client(self) -> None:
        """No ``_hc_*`` module imports ``_http_client`` or the package root."""
        import ast
        from pathlib import Path

        import txhttp.client

        parts = sorted(Path(txhttp.client.__file__).parent.glob("_hc_*.py"))
        self.assertGreater(len(parts), 3)
        for path in parts:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    self.assertNotIn(
                        node.module,
                        ("txhttp.client", "txhttp.client._http_client"),
                        path.name,
                    )


class BaseURLHTTPClientTests(SynchronousTestCase):
    def test_joins_paths(self) -> None:
        """Relative paths join the base; absolute URLs pass through."""
        client, agent, _ = make_client()
        agent.responder = lambda request: make_response()
        api = BaseURLHTTPClient("http://api.example/v1/", client=client)
        api.get("users")
        api.get("/root")
        api.get("https://other.example/x")
        self.assertEqual(
            [
                b"http://api.example/v1/users",
                b"http://api.example/root",
                b"https://other.example/x",
            ],
            [r.uri for r in agent.requests],
        )

    def test_default_headers_and_timeout(self) -> None:
        """Default headers merge (request wins) and the default timeout applies."""
        client, agent, clock = make_client()
        api = BaseURLHTTPClient(
            "http://api.example",
            client=client,
            headers={"X-A": "1", "X-B": "1"},
            timeout=3,
        )
        d = api.get("/x", headers={"x-b": "2"})
        sent = agent.requests[0]
        self.assertEqual(b"1", sent.header("x-a"))
        self.assertEqual(["2"], sent.headers.getRawHeaders("x-b"))
        clock.advance(3)
        self.failureResultOf(d, HTTPTimeoutError)

    def test_close_only_owned_client(self) -> None:
        """close() stops a client it built, never a shared one."""
        shared, _, _ = make_client()
        api = BaseURLHTTPClient("http://api.example", client=shared)
        self.successResultOf(api.close())
        self.assertIs(HTTPClientState.NEW, shared.state)
        owned = BaseURLHTTPClient("http://api.example", name="svc")
        self.successResultOf(owned.close())
        self.assertIs(HTTPClientState.STOPPED, owned.client.state)
        self.assertEqual("svc", owned.name)

    def test_bad_base_url(self) -> None:
        """An invalid base URL is refused."""
        self.assertRaises(HTTPError, BaseURLHTTPClient, "not a url")


class MultipartRequestTests(SynchronousTestCase):
    def test_body_of_multipart_request(self) -> None:
        """post_multipart sends a multipart body with its boundary."""
        client, agent, _ = make_client()
        agent.queue(make_response())
        client.post_multipart("http://e.com/", {"a": "1"})
        sent: RecordedRequest = agent.requests[0]
        content_type = (sent.header("content-type") or b"").decode("latin-1")
        self.assertTrue(content_type.startswith("multipart/form-data; boundary="))
        boundary = content_type.split("=", 1)[1].encode()
        self.assertIn(b"--" + boundary + b"--\r\n", sent.body)
