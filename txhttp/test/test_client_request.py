# -*- test-case-name: txhttp.test.test_client_request -*-
"""
Tests for building a `ClientRequest`: through the public constructor and
through `request_for_agent`, the `Agent`'s constructor, which share one body
(`txhttp.client._request._fill`) and so give the same object and the same
refusals with the same messages, the request-target's check aside. Also the
value object's contract: frozen, compared by identity, its repr, its
dataclass fields, pickling and subclasses. Uses of the request by the
protocol are tested in ``test_client_protocol``.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IClientRequest
from zope.interface.verify import verifyObject

from txhttp._wire import LocalProtocolError
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


class BothTestCase(SynchronousTestCase):
    """A test case comparing what both constructors made."""

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


class RequestForAgentTests(BothTestCase):
    """request_for_agent builds what ClientRequest builds."""

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


def public_outcome(*args: Any, **kwargs: Any) -> Any:
    """What ``ClientRequest(*args, **kwargs)`` makes: the request or the error."""
    try:
        return ClientRequest(*args, **kwargs)
    except Exception as e:  # the caller compares type and message
        return e


class PublicConstructorTests(BothTestCase):
    """ClientRequest(...) accepts and refuses exactly what it always did."""

    def assert_error(self, kind: type[Exception], message: str, outcome: Any) -> None:
        """``outcome`` is a ``kind`` exception saying exactly ``message``."""
        self.assertIs(kind, type(outcome), outcome)
        self.assertEqual(message, str(outcome))

    def test_accepted_cases_agree(self) -> None:
        """Each valid request is built alike by both constructors."""
        cases: list[dict[str, Any]] = [
            {},
            {"method": b"PURGE"},
            {"method": b"M-SEARCH", "persistent": False},
            {"headers": Headers({b"X-A": [b" a\tb ", b""]})},
            {"headers": Headers({b"X-A": [b"\x80\xff"]})},
            {"headers": Headers({b"Content-Length": [b"0"]})},
            {
                "method": b"PUT",
                "headers": Headers({b"Content-Length": [b" 3 "]}),
                "body": ManualProducer(3),
            },
            {"method": b"POST", "body": ManualProducer(UNKNOWN_LENGTH)},
            {"method": b"POST", "body": BytesProducer(b"")},
            {"headers": Headers({b"Connection": [b"keep-alive"]})},
            {"headers": Headers({b"Expect": [b"100-continue"]})},
            {"response_head_timeout": None, "body_idle_timeout": None},
            {"response_head_timeout": 0, "body_idle_timeout": 0.0},
            {"response_head_timeout": 1e9, "body_idle_timeout": 5},
        ]
        for case in cases:
            public, agent = both(**case)
            self.assertIsInstance(public, ClientRequest, case)
            self.assertIs(ClientRequest, type(public), case)
            self.assert_same(public, agent)

    def test_target_refusals(self) -> None:
        """A bad request-target is refused by the public constructor only."""
        message = (
            "request-target must be non-empty and hold no space or control character: "
        )
        for uri in (b"", b"/a b", b"/\r\nX: 1", b"/\x00", b"/\x7f"):
            self.assert_error(
                LocalProtocolError,
                message + repr(uri),
                public_outcome(b"GET", uri, Headers()),
            )
        self.assert_error(
            TypeError,
            "uri must be bytes, not str",
            public_outcome(b"GET", "/", Headers()),
        )

    def test_checks_run_in_order(self) -> None:
        """With two faults the first check's error is raised, as before."""
        bad_value = Headers({b"X": [b"\x00"]})
        self.assert_error(
            LocalProtocolError,
            "method is not a valid token: b'G T'",
            public_outcome(b"G T", b"/ x", {}),
        )
        self.assert_error(
            LocalProtocolError,
            "request-target must be non-empty and hold no space or control "
            "character: b'/ x'",
            public_outcome(b"GET", b"/ x", {}),
        )
        self.assert_error(
            TypeError,
            "headers must be twisted.web.http_headers.Headers, not dict",
            public_outcome(b"GET", b"/", {}, None, response_head_timeout=-1),
        )
        self.assert_error(
            LocalProtocolError,
            "value of header X holds a control character (CR, LF, NUL, ...): b'\\x00'",
            public_outcome(b"GET", b"/", bad_value, ManualProducer(-1)),
        )
        self.assert_error(
            ValueError,
            "bodyProducer.length must be UNKNOWN_LENGTH or an int >= 0, got -1",
            public_outcome(
                b"GET",
                b"/",
                Headers({b"Transfer-Encoding": [b"chunked"]}),
                ManualProducer(-1),
            ),
        )
        self.assert_error(
            LocalProtocolError,
            "Transfer-Encoding is set by the client from the body producer "
            "(UNKNOWN_LENGTH means chunked); do not set it in headers",
            public_outcome(
                b"GET",
                b"/",
                Headers({b"Transfer-Encoding": [b"chunked"]}),
                expect_continue_timeout=-1,
            ),
        )
        self.assert_error(
            ValueError,
            "response_head_timeout must be >= 0 seconds, got -1",
            public_outcome(b"GET", b"/", Headers(), None, response_head_timeout=-1),
        )
        self.assert_error(
            ValueError,
            "expect_continue_timeout must be a number of seconds, not None",
            public_outcome(b"GET", b"/", Headers(), expect_continue_timeout=None),
        )

    def test_arguments_bind_as_the_dataclass_did(self) -> None:
        """Positional and keyword arguments, and their errors, are unchanged."""
        headers = Headers()
        every = ClientRequest(
            b"PUT", b"/x", headers, None, True, b"http://a/x", None, 2.5, 0.0
        )
        self.assertEqual(
            "ClientRequest(method=b'PUT', uri=b'/x', headers=Headers({}), "
            "bodyProducer=None, persistent=True, absoluteURI=b'http://a/x', "
            "response_head_timeout=None, body_idle_timeout=2.5, "
            "expect_continue_timeout=0.0)",
            repr(every),
        )
        named = ClientRequest(
            method=b"PUT",
            uri=b"/x",
            headers=headers,
            bodyProducer=None,
            persistent=True,
            absoluteURI=b"http://a/x",
            response_head_timeout=None,
            body_idle_timeout=2.5,
            expect_continue_timeout=0.0,
        )
        self.assertEqual(repr(every), repr(named))
        errors: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
            (
                "missing 3 required positional arguments: 'method', 'uri', "
                "and 'headers'",
                (),
                {},
            ),
            ("missing 1 required positional argument: 'headers'", (b"G", b"/"), {}),
            (
                "takes from 4 to 10 positional arguments but 11 were given",
                (b"GET", b"/", headers, None, False, None, 1.0, 1.0, 1.0, 1),
                {},
            ),
            (
                "got an unexpected keyword argument '_flags'",
                (b"GET", b"/", headers),
                {"_flags": (True, True)},
            ),
            (
                "got multiple values for argument 'method'",
                (b"GET", b"/", headers),
                {"method": b"GET"},
            ),
        ]
        for message, args, kwargs in errors:
            self.assert_error(
                TypeError,
                "ClientRequest.__init__() " + message,
                public_outcome(*args, **kwargs),
            )


class RequestValueTests(SynchronousTestCase):
    """A ClientRequest, however built, is the same frozen value object."""

    def requests(self) -> list[ClientRequest]:
        """One request from each constructor."""
        public, agent = both(headers=Headers({b"Connection": [b"close"]}))
        assert isinstance(public, ClientRequest)
        assert isinstance(agent, ClientRequest)
        return [public, agent]

    def test_frozen(self) -> None:
        """No field can be assigned or deleted, the hidden flags included."""
        for request in self.requests():
            for name in ("method", "uri", "headers", "persistent", "_flags"):
                with self.assertRaises(FrozenInstanceError) as caught:
                    setattr(request, name, b"x")
                self.assertEqual(
                    f"cannot assign to field {name!r}", str(caught.exception)
                )
                with self.assertRaises(FrozenInstanceError) as caught:
                    delattr(request, name)
                self.assertEqual(f"cannot delete field {name!r}", str(caught.exception))
            self.assertEqual(b"GET", request.method)
            self.assertTrue(request.asks_to_close())

    def test_compared_by_identity(self) -> None:
        """Requests equal only themselves and hash by identity (eq=False)."""
        public, agent = self.requests()
        twin = ClientRequest(
            public.method,
            public.uri,
            public.headers,
            persistent=True,
            absoluteURI=public.absoluteURI,
        )
        self.assertEqual(repr(public), repr(twin))
        self.assertNotEqual(public, twin)
        self.assertNotEqual(public, agent)
        self.assertEqual(public, public)
        self.assertEqual(object.__hash__(public), hash(public))
        self.assertEqual(object.__hash__(agent), hash(agent))
        self.assertEqual(2, len({public, twin}))

    def test_repr(self) -> None:
        """The repr names every public field, in order, and hides the flags."""
        public, agent = self.requests()
        expected = (
            "ClientRequest(method=b'GET', uri=b'/a', "
            "headers=Headers({b'Connection': [b'close']}), bodyProducer=None, "
            "persistent=True, absoluteURI=b'http://example.com/a', "
            "response_head_timeout=30.0, body_idle_timeout=30.0, "
            "expect_continue_timeout=1.0)"
        )
        self.assertEqual(expected, repr(public))
        self.assertEqual(expected, repr(agent))

    def test_dataclass_fields_and_replace(self) -> None:
        """dataclasses.fields lists the fields; replace builds a checked copy."""
        names = [f.name for f in dataclasses.fields(ClientRequest)]
        self.assertEqual(
            [
                "method",
                "uri",
                "headers",
                "bodyProducer",
                "persistent",
                "absoluteURI",
                "response_head_timeout",
                "body_idle_timeout",
                "expect_continue_timeout",
                "_flags",
            ],
            names,
        )
        for request in self.requests():
            kept = dataclasses.replace(request, persistent=False, uri=b"/b")
            self.assertIs(ClientRequest, type(kept))
            self.assertEqual((b"/b", False), (kept.uri, kept.persistent))
            self.assertTrue(kept.asks_to_close())
            with self.assertRaises(LocalProtocolError):
                dataclasses.replace(request, uri=b"/ b")
            with self.assertRaises(ValueError):
                dataclasses.replace(request, _flags=(False, False))

    def test_pickle_and_copy(self) -> None:
        """Pickled and copied requests keep their fields and flags."""
        for request in self.requests():
            for clone in (
                pickle.loads(pickle.dumps(request)),
                copy.copy(request),
                copy.deepcopy(request),
            ):
                self.assertIs(ClientRequest, type(clone))
                self.assertIsNot(request, clone)
                self.assertEqual(repr(request), repr(clone))
                self.assertTrue(clone.asks_to_close())
                with self.assertRaises(FrozenInstanceError):
                    clone.uri = b"/x"  # type: ignore[misc]  # frozen, on purpose

    def test_subclasses(self) -> None:
        """Subclasses, dataclasses or not, are checked and frozen alike."""

        class Plain(ClientRequest):
            """A subclass with a ``__dict__``."""

        @dataclass(frozen=True)
        class Tagged(ClientRequest):
            """A dataclass subclass: its generated __init__ is not ours."""

            tag: int = 0

        close = Headers({b"Connection": [b"close"]})
        plain = Plain(b"GET", b"/", close, None, True)
        tagged = Tagged(b"GET", b"/", close, None, True, tag=7)
        for request in (plain, tagged):
            self.assertTrue(request.asks_to_close())
            self.assertEqual(b"/", request.uri)
            with self.assertRaises(FrozenInstanceError):
                request.method = b"PUT"  # type: ignore[misc]  # frozen, on purpose
        self.assertIs(Plain, type(plain))
        self.assertEqual(7, tagged.tag)
        for kind in (Plain, Tagged):
            with self.assertRaises(LocalProtocolError):
                kind(b"G T", b"/", Headers())
            with self.assertRaises(LocalProtocolError):
                kind(b"GET", b"/", Headers({b"X": [b"\x00"]}))
