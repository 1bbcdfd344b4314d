"""
Tests for `txhttp.client._digest` and `HTTPClient`'s ``auth=DigestAuth(...)``.
"""

from __future__ import annotations

import hashlib

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from txhttp.client import DigestAuth, HTTPClient, HTTPError
from txhttp.client._cookies import authorization_header
from txhttp.client._digest import DigestChallenge, parse_digest_challenge
from txhttp.testing import RecordingAgent, StubResponse, make_response

# RFC 7616, section 3.9.1.
RFC7616_REALM = "http-auth@example.org"
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def md5(text: str) -> str:
    """Hex MD5 of UTF-8 ``text``."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def fields(value: str) -> dict[str, str]:
    """The parameters of a ``Digest`` Authorization value, unquoted."""
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest", value
    result: dict[str, str] = {}
    for part in rest.split(", "):
        name, _, raw = part.partition("=")
        result[name] = raw.strip('"')
    return result


def rfc7616_challenge(algorithm: str) -> str:
    """The RFC 7616 example challenge for ``algorithm``."""
    return (
        f'Digest realm="{RFC7616_REALM}", qop="auth, auth-int", '
        f'algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


class DigestAuthTests(SynchronousTestCase):
    """`DigestAuth.authorization` computes RFC 7616 answers."""

    def answer(self, challenge: str, method: str = "GET", url: str = "") -> str:
        parsed = parse_digest_challenge([challenge])
        assert parsed is not None
        auth = DigestAuth("Mufasa", "Circle of Life", cnonce=lambda: RFC7616_CNONCE)
        value = auth.authorization(
            parsed, method, url or "http://www.example.org/dir/index.html"
        )
        assert value is not None
        return value

    def test_rfc7616_md5(self) -> None:
        """The MD5 example of RFC 7616, section 3.9.1 gives its response."""
        got = fields(self.answer(rfc7616_challenge("MD5")))
        self.assertEqual("8ca523f5e9506fed4657c9700eebdbec", got["response"])
        self.assertEqual(
            {
                "username": "Mufasa",
                "realm": RFC7616_REALM,
                "uri": "/dir/index.html",
                "algorithm": "MD5",
                "nonce": RFC7616_NONCE,
                "nc": "00000001",
                "cnonce": RFC7616_CNONCE,
                "qop": "auth",
                "opaque": RFC7616_OPAQUE,
            },
            {k: v for k, v in got.items() if k != "response"},
        )

    def test_rfc7616_sha256(self) -> None:
        """The SHA-256 example of RFC 7616, section 3.9.1 gives its response."""
        got = fields(self.answer(rfc7616_challenge("SHA-256")))
        self.assertEqual(
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            got["response"],
        )
        self.assertEqual("SHA-256", got["algorithm"])

    def test_rfc2617_example(self) -> None:
        """The RFC 2617, section 3.5 example (MD5, qop=auth) gives its response."""
        challenge = parse_digest_challenge(
            [
                'Digest realm="testrealm@host.com", qop="auth,auth-int", '
                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
            ]
        )
        assert challenge is not None
        auth = DigestAuth("Mufasa", "Circle Of Life", cnonce=lambda: "0a4f113b")
        value = auth.authorization(challenge, "GET", "http://host.com/dir/index.html")
        assert value is not None
        self.assertEqual("6629fae49393a05397450978507c4ef1", fields(value)["response"])

    def test_without_qop(self) -> None:
        """A challenge without qop gets the RFC 2069 answer (no nc or cnonce)."""
        challenge = DigestChallenge(realm="r", nonce="n")
        auth = DigestAuth("u", "p", cnonce=lambda: "c")
        value = auth.authorization(challenge, "GET", "http://h/x?y=1")
        assert value is not None
        got = fields(value)
        expected = md5(f"{md5('u:r:p')}:n:{md5('GET:/x?y=1')}")
        self.assertEqual(expected, got["response"])
        self.assertEqual("/x?y=1", got["uri"])
        self.assertNotIn("nc", got)
        self.assertNotIn("cnonce", got)
        self.assertNotIn("qop", got)

    def test_session_algorithm(self) -> None:
        """MD5-sess hashes the nonce and cnonce into HA1."""
        challenge = DigestChallenge(
            realm="r", nonce="n", algorithm="MD5-sess", qop=frozenset({"auth"})
        )
        auth = DigestAuth("u", "p", cnonce=lambda: "c")
        value = auth.authorization(challenge, "POST", "http://h/")
        assert value is not None
        ha1 = md5(f"{md5('u:r:p')}:n:c")
        expected = md5(f"{ha1}:n:00000001:c:auth:{md5('POST:/')}")
        self.assertEqual(expected, fields(value)["response"])
        self.assertEqual("MD5-sess", fields(value)["algorithm"])

    def test_unsupported_not_answered(self) -> None:
        """An unknown algorithm, or auth-int alone, cannot be answered."""
        auth = DigestAuth("u", "p")
        for challenge in (
            DigestChallenge(realm="r", nonce="n", algorithm="SHA-512-256"),
            DigestChallenge(realm="r", nonce="n", qop=frozenset({"auth-int"})),
        ):
            self.assertIsNone(auth.authorization(challenge, "GET", "http://h/"))

    def test_userhash_and_unicode_username(self) -> None:
        """userhash=true hashes the name; a non-ASCII name goes in username*."""
        hashed = DigestChallenge(
            realm="r", nonce="n", qop=frozenset({"auth"}), userhash=True
        )
        value = DigestAuth("u", "p").authorization(hashed, "GET", "http://h/")
        assert value is not None
        self.assertEqual(md5("u:r"), fields(value)["username"])
        self.assertIn("userhash=true", value)
        plain = DigestChallenge(realm="r", nonce="n", qop=frozenset({"auth"}))
        value = DigestAuth("J\u00e4s\u00f8n", "p").authorization(
            plain, "GET", "http://h/"
        )
        assert value is not None
        self.assertIn("username*=UTF-8''J%C3%A4s%C3%B8n", value)

    def test_cnonce_random_by_default(self) -> None:
        """Without an injected cnonce each answer uses a fresh random one."""
        challenge = DigestChallenge(realm="r", nonce="n", qop=frozenset({"auth"}))
        auth = DigestAuth("u", "p")
        first = auth.authorization(challenge, "GET", "http://h/")
        second = auth.authorization(challenge, "GET", "http://h/")
        assert first is not None and second is not None
        self.assertNotEqual(fields(first)["cnonce"], fields(second)["cnonce"])
        self.assertEqual(32, len(fields(first)["cnonce"]))

    def test_password_not_in_repr(self) -> None:
        """The password never appears in repr."""
        self.assertNotIn("s3cret", repr(DigestAuth("u", "s3cret")))

    def test_no_header_up_front(self) -> None:
        """authorization_header refuses DigestAuth (it answers challenges)."""
        with self.assertRaises(HTTPError):
            authorization_header(DigestAuth("u", "p"))


class ParseChallengeTests(SynchronousTestCase):
    """`parse_digest_challenge` reads ``WWW-Authenticate`` values."""

    def test_among_other_schemes(self) -> None:
        """A Digest challenge is found among others, token68 ones included."""
        challenge = parse_digest_challenge(
            [
                'Negotiate YIIB4w==, Basic realm="b", '
                'Digest realm="a \\"q\\"", nonce=abc, qop="auth", stale=TRUE'
            ]
        )
        self.assertEqual(
            DigestChallenge(
                realm='a "q"', nonce="abc", qop=frozenset({"auth"}), stale=True
            ),
            challenge,
        )

    def test_supported_preferred(self) -> None:
        """An answerable challenge wins over an earlier unsupported one."""
        challenge = parse_digest_challenge(
            [
                'Digest realm="r", nonce="1", algorithm=SHA-512-256',
                'Digest realm="r", nonce="2", algorithm=SHA-256, qop=auth',
            ]
        )
        assert challenge is not None
        self.assertEqual(("2", "SHA-256"), (challenge.nonce, challenge.algorithm))

    def test_incomplete_or_absent(self) -> None:
        """No Digest challenge with realm and nonce means None."""
        self.assertIsNone(parse_digest_challenge(['Basic realm="x"']))
        self.assertIsNone(parse_digest_challenge(['Digest realm="x"']))
        self.assertIsNone(parse_digest_challenge(["", ",,, =", '"junk']))


def challenge_401(**extra: str) -> StubResponse:
    """A 401 with an MD5, qop=auth Digest challenge."""
    params = ", ".join(f"{k}={v}" for k, v in extra.items())
    value = 'Digest realm="r", nonce="n1", qop="auth", opaque="o"'
    return StubResponse(
        401,
        {"WWW-Authenticate": value + (", " + params if params else "")},
        body=[b"who are you"],
    )


class HTTPClientDigestTests(SynchronousTestCase):
    """`HTTPClient` answers a Digest challenge once and resends the request."""

    def setUp(self) -> None:
        self.agent = RecordingAgent()
        self.client = HTTPClient(agent=self.agent, clock=Clock())
        self.auth = DigestAuth("u", "p", cnonce=lambda: "c")

    def test_challenge_answered(self) -> None:
        """A 401 challenge is answered; the resent request gets the response."""
        self.agent.queue(challenge_401(), make_response(body=b"secret"))
        d = self.client.get("http://h.test/a?b=1", auth=self.auth)
        response = self.successResultOf(d)
        self.assertEqual(200, response.status)
        first, second = self.agent.requests
        self.assertIsNone(first.header("authorization"))
        answer = second.header("authorization")
        assert answer is not None
        got = fields(answer.decode())
        self.assertEqual(
            ("u", "/a?b=1", "o"), (got["username"], got["uri"], got["opaque"])
        )
        expected = md5(f"{md5('u:r:p')}:n1:00000001:c:auth:{md5('GET:/a?b=1')}")
        self.assertEqual(expected, got["response"])

    def test_body_resent(self) -> None:
        """A POST body is sent again with the answer."""
        self.agent.queue(challenge_401(), make_response())
        d = self.client.post("http://h.test/p", data=b"payload", auth=self.auth)
        self.successResultOf(d)
        self.assertEqual(
            [b"payload", b"payload"], [r.body for r in self.agent.requests]
        )
        answer = self.agent.requests[1].header("authorization")
        assert answer is not None
        expected = md5(f"{md5('u:r:p')}:n1:00000001:c:auth:{md5('POST:/p')}")
        self.assertEqual(expected, fields(answer.decode())["response"])

    def test_wrong_credentials_not_retried(self) -> None:
        """A second, non-stale challenge (wrong credentials) returns the 401."""
        self.agent.queue(challenge_401(), challenge_401())
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(401, response.status)
        self.assertEqual(2, len(self.agent.requests))

    def test_stale_nonce_answered_again(self) -> None:
        """A challenge with stale=true is answered once more."""
        self.agent.queue(challenge_401(), challenge_401(stale="true"), make_response())
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(200, response.status)
        self.assertEqual(3, len(self.agent.requests))

    def test_stale_limit(self) -> None:
        """Stale challenges are not answered forever."""
        self.agent.responder = lambda request: challenge_401(stale="true")
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(401, response.status)
        self.assertEqual(3, len(self.agent.requests))

    def test_no_digest_challenge(self) -> None:
        """A 401 without a Digest challenge is returned as it is."""
        self.agent.queue(StubResponse(401, {"WWW-Authenticate": 'Basic realm="x"'}))
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(401, response.status)
        self.assertEqual(1, len(self.agent.requests))

    def test_not_answered_for_other_origin(self) -> None:
        """After a redirect to another origin, its challenge is not answered."""
        self.agent.queue(
            StubResponse(302, {"Location": "http://elsewhere.test/"}), challenge_401()
        )
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(401, response.status)
        self.assertEqual(2, len(self.agent.requests))
        self.assertIsNone(self.agent.requests[1].header("authorization"))

    def test_same_origin_redirect_answered(self) -> None:
        """After a same-origin redirect, the new location's challenge is answered."""
        self.agent.queue(
            StubResponse(302, {"Location": "/next"}), challenge_401(), make_response()
        )
        response = self.successResultOf(
            self.client.get("http://h.test/", auth=self.auth)
        )
        self.assertEqual(200, response.status)
        answer = self.agent.requests[2].header("authorization")
        assert answer is not None
        self.assertEqual("/next", fields(answer.decode())["uri"])
