"""
Tests for `txhttp.client._interceptors`: the chain, its order and its errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers

from txhttp.client._exceptions import HTTPInterceptorError
from txhttp.client._interceptors import (
    BaseInterceptor,
    Interceptor,
    InterceptorChain,
    RequestContext,
    ResponseContext,
    interceptor_name,
)


class Recorder(BaseInterceptor):
    """Appends its name to a shared log in both hooks."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.label = name
        self.log = log

    def intercept_request(
        self, context: RequestContext
    ) -> RequestContext | Awaitable[RequestContext]:
        """Log and tag the request with a header."""
        self.log.append(f"request:{self.label}")
        context.headers.addRawHeader(b"x-seen", self.label.encode())
        return context

    def intercept_response(
        self, context: ResponseContext
    ) -> ResponseContext | Awaitable[ResponseContext]:
        """Log the response."""
        self.log.append(f"response:{self.label}")
        return context


class Failing(BaseInterceptor):
    """Raises in the request hook."""

    name = "auth"

    def intercept_request(
        self, context: RequestContext
    ) -> RequestContext | Awaitable[RequestContext]:
        """Fail."""
        raise KeyError("no token")


def request() -> RequestContext:
    """A GET request context."""
    return RequestContext(method="GET", url="http://h/", service_name="svc")


class ContextTests(SynchronousTestCase):
    """The context value objects."""

    def test_request_fields(self) -> None:
        """A request context carries the documented fields."""
        context = RequestContext(
            method="PUT",
            url="http://h/x",
            headers=Headers({b"a": [b"b"]}),
            service_name="svc",
            attempt=2,
            start_time=12.5,
        )
        self.assertEqual(
            ("PUT", "http://h/x", "svc", 2, 12.5),
            (
                context.method,
                context.url,
                context.service_name,
                context.attempt,
                context.start_time,
            ),
        )
        self.assertEqual([b"b"], context.headers.getRawHeaders(b"a"))

    def test_request_frozen(self) -> None:
        """Contexts are frozen; changes go through dataclasses.replace."""
        context = request()
        with self.assertRaises(dataclasses.FrozenInstanceError):
            context.url = "x"  # type: ignore[misc]  # asserting frozenness
        self.assertEqual("x", dataclasses.replace(context, url="x").url)

    def test_response_success(self) -> None:
        """success is true only for a status below 400 and no error."""
        req = request()
        self.assertTrue(ResponseContext(request=req, status=204).success)
        self.assertTrue(ResponseContext(request=req, status=302).success)
        self.assertFalse(ResponseContext(request=req, status=404).success)
        self.assertFalse(ResponseContext(request=req).success)
        self.assertFalse(
            ResponseContext(request=req, status=200, error=KeyError()).success
        )

    def test_interceptor_name(self) -> None:
        """The name attribute wins; otherwise the class name."""
        self.assertEqual("auth", interceptor_name(Failing()))
        self.assertEqual("BaseInterceptor", interceptor_name(BaseInterceptor()))


class InterceptorChainTests(SynchronousTestCase):
    """Order, asynchronous hooks, errors."""

    def test_request_order_then_reverse_response(self) -> None:
        """Request hooks run in order, response hooks in reverse order."""
        log: list[str] = []
        chain = InterceptorChain([Recorder("a", log)])
        chain.add(Recorder("b", log))
        chain.add(Recorder("c", log))
        sent = self.successResultOf(chain.run_request(request()))
        self.successResultOf(chain.run_response(ResponseContext(request=sent)))
        self.assertEqual(
            [
                "request:a",
                "request:b",
                "request:c",
                "response:c",
                "response:b",
                "response:a",
            ],
            log,
        )
        self.assertEqual([b"a", b"b", b"c"], sent.headers.getRawHeaders(b"x-seen"))

    def test_remove(self) -> None:
        """A removed interceptor no longer runs; removing a stranger fails."""
        log: list[str] = []
        a, b = Recorder("a", log), Recorder("b", log)
        chain = InterceptorChain()
        chain.add(a)
        chain.add(b)
        chain.remove(a)
        self.assertEqual(1, len(chain))
        self.assertNotIn(a, chain)
        self.successResultOf(chain.run_request(request()))
        self.assertEqual(["request:b"], log)
        with self.assertRaises(ValueError) as caught:
            chain.remove(a)
        self.assertIn("'a'", str(caught.exception))

    def test_replacing_context(self) -> None:
        """A hook may return a new context, which later hooks receive."""
        seen: list[str] = []

        class Rewrite(BaseInterceptor):
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                return dataclasses.replace(context, url="http://other/")

        class Look(BaseInterceptor):
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                seen.append(context.url)
                return context

        chain = InterceptorChain([Rewrite(), Look()])
        result = self.successResultOf(chain.run_request(request()))
        self.assertEqual("http://other/", result.url)
        self.assertEqual(["http://other/"], seen)

    def test_deferred_hook_waited_for(self) -> None:
        """A hook returning a Deferred holds the chain until it fires."""
        log: list[str] = []
        gate: Deferred[RequestContext] = Deferred()

        class Slow(BaseInterceptor):
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                log.append("slow")
                return gate

        chain = InterceptorChain([Slow(), Recorder("after", log)])
        result = chain.run_request(request())
        self.assertNoResult(result)
        self.assertEqual(["slow"], log)
        gate.callback(request())
        self.successResultOf(result)
        self.assertEqual(["slow", "request:after"], log)

    def test_coroutine_hook(self) -> None:
        """A coroutine-function hook is awaited."""

        class Async(BaseInterceptor):
            async def intercept_response(
                self, context: ResponseContext
            ) -> ResponseContext:
                await succeed(None)
                return dataclasses.replace(context, status=299)

        chain = InterceptorChain([Async()])
        result = self.successResultOf(
            chain.run_response(ResponseContext(request=request(), status=200))
        )
        self.assertEqual(299, result.status)

    def test_failure_names_interceptor(self) -> None:
        """A raising hook fails the run with HTTPInterceptorError naming it."""
        log: list[str] = []
        chain = InterceptorChain([Failing(), Recorder("later", log)])
        failure = self.failureResultOf(
            chain.run_request(request()), HTTPInterceptorError
        )
        error = failure.value
        self.assertEqual("auth", error.interceptor)
        self.assertEqual("request", error.phase)
        self.assertEqual("GET", error.method)
        self.assertIsInstance(error.__cause__, KeyError)
        self.assertIn("'auth'", str(error))
        self.assertEqual([], log)

    def test_failure_reports_url_as_rewritten(self) -> None:
        """The error names the URL as earlier hooks left it."""

        class Rewrite(BaseInterceptor):
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                return dataclasses.replace(context, url="http://other/")

        chain = InterceptorChain([Rewrite(), Failing()])
        failure = self.failureResultOf(
            chain.run_request(request()), HTTPInterceptorError
        )
        self.assertEqual("http://other/", failure.value.url)

    def test_failed_deferred_names_interceptor(self) -> None:
        """A hook whose Deferred fails is named too, in the response phase."""

        class Broken(BaseInterceptor):
            def intercept_response(
                self, context: ResponseContext
            ) -> ResponseContext | Awaitable[ResponseContext]:
                d: Deferred[ResponseContext] = Deferred()
                d.errback(ValueError("bad"))
                return d

        chain = InterceptorChain([Broken()])
        failure = self.failureResultOf(
            chain.run_response(ResponseContext(request=request())),
            HTTPInterceptorError,
        )
        self.assertEqual("Broken", failure.value.interceptor)
        self.assertEqual("response", failure.value.phase)

    def test_wrong_return_type(self) -> None:
        """A hook returning something else than a context is an error."""

        class Forgetful(BaseInterceptor):
            def intercept_request(  # type: ignore[override]  # deliberate misuse
                self, context: RequestContext
            ) -> None:
                return None

        failure = self.failureResultOf(
            # The misuse is the point of the test.
            InterceptorChain([Forgetful()]).run_request(request()),  # type: ignore[list-item]
            HTTPInterceptorError,
        )
        self.assertIn("NoneType", str(failure.value))

    def test_cancel_propagates(self) -> None:
        """Cancelling a run cancels the hook being waited for, unwrapped."""
        cancelled: list[bool] = []

        class Waiting(BaseInterceptor):
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                return Deferred(lambda _: cancelled.append(True))

        result = InterceptorChain([Waiting()]).run_request(request())
        result.cancel()
        self.failureResultOf(result, CancelledError)
        self.assertEqual([True], cancelled)

    def test_protocol_satisfied_by_plain_class(self) -> None:
        """Any object with both hooks is an Interceptor."""

        class Plain:
            def intercept_request(
                self, context: RequestContext
            ) -> RequestContext | Awaitable[RequestContext]:
                return context

            def intercept_response(
                self, context: ResponseContext
            ) -> ResponseContext | Awaitable[ResponseContext]:
                return context

        plain: Interceptor = Plain()
        chain = InterceptorChain()
        chain.add(plain)
        self.assertEqual((plain,), chain.interceptors)
        self.successResultOf(chain.run_request(request()))
