# -*- test-case-name: txhttp.test.test_client_digest -*-
"""
HTTP Digest access authentication (RFC 7616) for `HTTPClient`.

`DigestAuth` holds the credentials. Unlike Basic, they are never sent
up front: the client makes the request without them, and when the server
answers ``401`` with a ``WWW-Authenticate: Digest ...`` challenge (RFC 9110,
section 11.6.1) it answers the challenge once and sends the request again
(see the ``auth`` option of `HTTPClient`).

What is supported:

- algorithms ``MD5``, ``SHA-256`` and their ``-sess`` variants (RFC 7616,
  section 3.4.2); a challenge naming another algorithm (``SHA-512-256``, or
  an unknown one) is not answered, and the ``401`` is returned as is;
- ``qop=auth``, and challenges without ``qop`` (the RFC 2069 form, still
  met on old devices); ``auth-int`` alone is not supported (the 401 is
  returned);
- ``opaque`` echoed back, ``userhash=true`` (RFC 7616, section 3.4.4) and
  user names outside ASCII sent as ``username*`` (RFC 8187).

Each challenge is answered with a fresh client nonce from ``cnonce``
(``os.urandom`` by default; injectable for tests) and ``nc=00000001``; the
nonce is not reused for later requests, so each request with `DigestAuth`
costs one round trip more than the request alone.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote, urlsplit

__all__ = [
    "DIGEST_ALGORITHMS",
    "DigestAuth",
    "DigestChallenge",
    "parse_digest_challenge",
]

DIGEST_ALGORITHMS: Final[dict[str, Callable[[bytes], str]]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
"""The hash functions by algorithm name (``-sess`` variants use the same)."""

MAX_CHALLENGE_PARAMS: Final = 32
"""Parameters read from one ``WWW-Authenticate`` field; the rest are ignored."""

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68_VALUE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z/=-]*")
_TOKEN68: Final = re.compile(r"[A-Za-z0-9._~+/-]+=*(?=[ \t]*(?:,|\Z))")
_QUOTED: Final = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_UNESCAPE: Final = re.compile(r"\\(.)", re.DOTALL)


def _random_cnonce() -> str:
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class DigestAuth:
    """
    Credentials answered to a ``Digest`` challenge (RFC 7616).

    Attributes:
        username: The user name (any Unicode; sent as UTF-8).
        password: The password; never shown in repr.
        cnonce: Makes the client nonce for each answer; random by default.
    """

    username: str
    password: str = field(repr=False)
    cnonce: Callable[[], str] = field(default=_random_cnonce, repr=False, compare=False)

    def authorization(
        self, challenge: DigestChallenge, method: str, url: str
    ) -> str | None:
        """
        The ``Authorization`` value answering ``challenge`` for a request.

        Args:
            challenge: The server's challenge.
            method: The request method.
            url: The request URL; its path and query form the digest ``uri``.

        Returns:
            The field value, or ``None`` if the challenge cannot be answered
            (unsupported algorithm or ``qop``).
        """
        name = challenge.algorithm.upper()
        session = name.endswith("-SESS")
        digest = DIGEST_ALGORITHMS.get(name.removesuffix("-SESS"))
        if digest is None:
            return None
        if challenge.qop is None:
            qop = None
        elif "auth" in challenge.qop:
            qop = "auth"
        else:
            return None

        def h(*parts: str) -> str:
            return digest(":".join(parts).encode("utf-8"))

        parts = urlsplit(url)
        uri = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        cnonce = self.cnonce()
        nc = "00000001"
        ha1 = h(self.username, challenge.realm, self.password)
        if session:
            ha1 = h(ha1, challenge.nonce, cnonce)
        ha2 = h(method, uri)
        if qop is None:
            response = h(ha1, challenge.nonce, ha2)
        else:
            response = h(ha1, challenge.nonce, nc, cnonce, qop, ha2)
        fields: list[str] = []
        if challenge.userhash:
            fields.append(f'username="{h(self.username, challenge.realm)}"')
        elif _quotable(self.username):
            fields.append(f'username="{self.username}"')
        else:
            fields.append(f"username*=UTF-8''{quote(self.username, safe='')}")
        fields += [
            f'realm="{_escape(challenge.realm)}"',
            f'uri="{_escape(uri)}"',
            f"algorithm={challenge.algorithm}",
            f'nonce="{_escape(challenge.nonce)}"',
        ]
        if qop is not None:
            fields += [f"nc={nc}", f'cnonce="{_escape(cnonce)}"', f"qop={qop}"]
        fields.append(f'response="{response}"')
        if challenge.opaque is not None:
            fields.append(f'opaque="{_escape(challenge.opaque)}"')
        if challenge.userhash:
            fields.append("userhash=true")
        return "Digest " + ", ".join(fields)


def _quotable(text: str) -> bool:
    """Whether ``text`` can be sent as a quoted-string as is (printable ASCII)."""
    return all(" " <= c <= "~" and c not in '"\\' for c in text)


def _escape(text: str) -> str:
    """``text`` escaped for a quoted-string (RFC 9110, section 5.6.4)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """
    A ``Digest`` challenge from ``WWW-Authenticate``.

    Attributes:
        realm: The protection space.
        nonce: The server nonce.
        algorithm: As given (``MD5`` when absent).
        qop: The offered quality-of-protection values, lower case, or
            ``None`` when the challenge has no ``qop`` (RFC 2069 form).
        opaque: Echoed back unchanged, if given.
        stale: The previous answer used an expired nonce; the credentials
            were right.
        userhash: The server wants the user name hashed.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: frozenset[str] | None = None
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False


def _parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """
    Split one ``WWW-Authenticate`` value into ``(scheme, params)`` pairs.

    RFC 9110, section 11.6.1: challenges are comma-separated, each a scheme
    followed by auth-params (``name=token`` or ``name="quoted"``) or a
    token68, which is skipped. Scheme and parameter names are lower-cased.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    current: dict[str, str] | None = None
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and value[pos] in " \t,":
            pos += 1
        match = _TOKEN.match(value, pos)
        if match is None:
            # Not a token: skip to the next element.
            comma = value.find(",", pos)
            pos = end if comma < 0 else comma + 1
            continue
        name, pos = match.group().lower(), match.end()
        after = pos
        while after < end and value[after] in " \t":
            after += 1
        if after < end and value[after] == "=":
            pos = after + 1
            while pos < end and value[pos] in " \t":
                pos += 1
            quoted = _QUOTED.match(value, pos)
            if quoted is not None:
                param = _UNESCAPE.sub(r"\1", quoted.group(1))
                pos = quoted.end()
            else:
                plain = _TOKEN68_VALUE.match(value, pos)
                param = plain.group() if plain is not None else ""
                pos = plain.end() if plain is not None else pos
            if current is not None and len(current) < MAX_CHALLENGE_PARAMS:
                current.setdefault(name, param)
            continue
        current = {}
        challenges.append((name, current))
        token68 = _TOKEN68.match(value, after)
        pos = token68.end() if token68 is not None else after
    return challenges


def parse_digest_challenge(values: Iterable[str]) -> DigestChallenge | None:
    """
    The first usable ``Digest`` challenge among ``WWW-Authenticate`` values.

    Challenges are tried in order; one with a supported algorithm and
    ``qop`` comes before the others (servers commonly offer ``SHA-256``
    first and ``MD5`` second, RFC 7616, section 3.7).

    Returns:
        The challenge, or ``None`` if no ``Digest`` challenge has a realm and
        a nonce.
    """
    found: list[DigestChallenge] = []
    for value in values:
        for scheme, params in _parse_challenges(value):
            if scheme != "digest" or "realm" not in params or "nonce" not in params:
                continue
            qop = params.get("qop")
            found.append(
                DigestChallenge(
                    realm=params["realm"],
                    nonce=params["nonce"],
                    algorithm=params.get("algorithm", "MD5"),
                    qop=(
                        frozenset(q.strip().lower() for q in qop.split(","))
                        if qop is not None
                        else None
                    ),
                    opaque=params.get("opaque"),
                    stale=params.get("stale", "").lower() == "true",
                    userhash=params.get("userhash", "").lower() == "true",
                )
            )
    for challenge in found:
        supported = challenge.algorithm.upper().removesuffix("-SESS")
        if supported in DIGEST_ALGORITHMS and (
            challenge.qop is None or "auth" in challenge.qop
        ):
            return challenge
    return found[0] if found else None
