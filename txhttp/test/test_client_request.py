# -*- test-case-name: txhttp.test.test_client_request -*-
"""
Tests for `request_for_agent`, the `Agent`'s constructor of `ClientRequest`:
the same object, and the same refusals with the same messages, as the
public constructor (whose own tests are in ``test_client_protocol``), the
request-target's check aside.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IClientRequest
from zope.interface.verify import verifyObject

from txhttp.client._request import (
    DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    ClientRequest,
    request_for_agent,
)
from txhttp.test.strategies import load_profile
from txhttp.test.test_client_protocol import BytesProducer, ManualProducer

load_profile()

_URL = b"http://example.com/a"

_NAMES: list[bytes] = [b"X-A", b"X-B", b"Accept", b"Connection", b"Expect"]
_NAMES += [b"Content-Length", b"Transfer-Encoding", b"Bad Name", b""]
"""Field names for the property test: plain, special and invalid ones."""

_VALUES: list[bytes] = [b"1", b"3", b"close", b"keep-alive, Close", b"100-continue"]
_VALUES += [b"chunked", b"a b\tc", b"", b"a\x00b", b"\r\nX: 1", b"\x7f"]
"""Field values for the property test: valid ones, then invalid ones."""


def both(
    method: bytes = b"GET",
    headers: Headers | None = None,
    body: IBodyProducer | None = None,
    *,
    persistent: bool = True,
    response_head_timeout: float | None = 30.0,
    body_idle_timeout: float | None = 30.0,
) -> tuple[Any, Any]:
    """
    What the public constructor and `request_for_agent` each make of the
    same arguments: the request, or the exception raised.
    """
    options: dict[str, Any] = {
        "persistent": persistent,
        "absoluteURI": _URL,
        "response_head_timeout": response_head_timeout,
        "body_idle_timeout": body_idle_timeout,
    }
    sent = Headers() if headers is None else headers
    outcomes: list[Any] = []
    for build in (ClientRequest, request_for_agent):
        try:
            outcomes.append(build(method, b"/a", sent, body, **options))
        except Exception as e:  # compared by the caller, type and message
            outcomes.append(e)
    return outcomes[0], outcomes[1]


def raw_headers(fields: list[tuple[Any, Any]]) -> Headers:
    """``Headers`` holding ``fields`` exactly, bypassing its own checks."""
    headers = Headers()
    for name, value in fields:
        headers._rawHeaders.setdefault(name, []).append(value)
    return headers


class RequestForAgentTests(SynchronousTestCase):
    """request_for_agent builds what ClientRequest builds."""

    def assert_same(self, public: Any, agent: Any) -> None:
        """Both built the same request, or both raised the same error."""
        if isinstance(public, Exception):
            self.assertIs(type(public), type(agent))
            self.assertEqual(str(public), str(agent))
            return
        self.assertIs(ClientRequest, type(agent))
        self.assertEqual(repr(public), repr(agent))
        self.assertEqual(public.field_lines(), agent.field_lines())
        self.assertEqual(public.asks_to_close(), agent.asks_to_close())
        self.assertEqual(public.expects_continue(), agent.expects_continue())

    def test_same_request(self) -> None:
        """The fields, repr, flags and field lines match the public constructor's."""
        headers = Headers({b"X-A": [b"1", b"2"], b"Host": [b"example.com"]})
        public, agent = both(b"POST", headers, BytesProducer(b"abc"))
        self.assert_same(public, agent)
        self.assertEqual(b"POST", agent.method)
        self.assertEqual(b"/a", agent.uri)
        self.assertIs(headers, agent.headers)
        self.assertTrue(agent.persistent)
        self.assertEqual(_URL, agent.absoluteURI)
        self.assertEqual(DEFAULT_EXPECT_CONTINUE_TIMEOUT, agent.expect_continue_timeout)
        self.assertTrue(verifyObject(IClientRequest, agent))

    def test_frozen(self) -> None:
        """The request cannot be changed, as a public one cannot."""
        _, agent = both()
        with self.assertRaises(FrozenInstanceError):
            agent.method = b"POST"
        with self.assertRaises(FrozenInstanceError):
            del agent.uri

    def test_flags(self) -> None:
        """Connection: close and Expect: 100-continue are found as in the public one."""
        headers = Headers({b"Connection": [b"close"], b"Expect": [b"100-continue"]})
        public, agent = both(b"PUT", headers, ManualProducer(3))
        self.assert_same(public, agent)
        self.assertTrue(agent.asks_to_close())
        self.assertTrue(agent.expects_continue())
        public, agent = both(persistent=False)
        self.assert_same(public, agent)
        self.assertTrue(agent.asks_to_close())

    def test_same_refusals(self) -> None:
        """Every check of the public constructor runs, with the same error."""
        cases: list[dict[str, Any]] = [
            {"method": b"GE T"},
            {"method": b"G\x00T"},
            {"method": "GET"},
            {"headers": Headers({b"X-A": [b"a\x00b"]})},
            {"headers": Headers({b"X-A": [b"a\x7f"]})},
            {"headers": raw_headers([(b"Bad Name", b"1")])},
            {"headers": raw_headers([(b"X-A", b"a\r\nInjected: 1")])},
            {"headers": raw_headers([(b"X-A", "text")])},
            {"headers": raw_headers([("X-A", b"1")])},
            {"headers": {}},
            {"headers": Headers({b"Transfer-Encoding": [b"chunked"]})},
            {
                "headers": Headers({b"Content-Length": [b"4"]}),
                "body": ManualProducer(3),
            },
            {
                "headers": Headers({b"Content-Length": [b"3"]}),
                "body": ManualProducer(UNKNOWN_LENGTH),
            },
            {"body": BytesProducer(b"", length=-1)},
            {"body": BytesProducer(b"", length="1")},
            {"response_head_timeout": -1.0},
            {"body_idle_timeout": float("nan")},
        ]
        for case in cases:
            public, agent = both(**case)
            self.assertIsInstance(public, Exception, case)
            self.assert_same(public, agent)

    @given(
        st.sampled_from([b"GET", b"POST", b"PURGE", b"BAD METHOD"]),
        st.lists(
            st.tuples(
                st.sampled_from(_NAMES),
                st.sampled_from(_VALUES),
            ),
            max_size=4,
        ),
        st.sampled_from([None, 0, 3, UNKNOWN_LENGTH]),
        st.booleans(),
    )
    def test_agrees_with_public_constructor(
        self,
        method: bytes,
        fields: list[tuple[bytes, bytes]],
        length: int | None,
        persistent: bool,
    ) -> None:
        """For any method, fields and body, both give the same request or error."""
        body = None if length is None else ManualProducer(length)
        public, agent = both(method, raw_headers(fields), body, persistent=persistent)
        self.assert_same(public, agent)
