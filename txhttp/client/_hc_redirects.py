# -*- test-case-name: txhttp.test.test_client_http,txhttp.test.test_client_digest -*-
"""
The hops of one `HTTPClient` request: redirects and Digest answers.

`follow` sends a request through a `Hop` and, while the answer says so,
sends another: a ``Digest`` challenge in a ``401`` from the request's own
origin is answered (`answer_digest`), and a redirect in
`REDIRECT_STATUSES` is followed up to ``max_redirects`` times
(RFC 9110, section 15.4), with the method and body rewritten as the status
demands (`redirected_request`) and credentials dropped when the origin
changes. Each hop is a full exchange (retries included); the responses
passed over are released and kept as the final response's ``history``.
Left out: how a hop is sent (`txhttp.client._hc_send`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Final
from urllib.parse import urljoin

from txhttp.client._client_response import ClientResponse
from txhttp.client._digest import parse_digest_challenge
from txhttp.client._exceptions import (
    HTTPClientError,
    HTTPError,
    HTTPTooManyRedirectsError,
)
from txhttp.client._hc_prepare import (
    ExchangeSettings,
    PreparedRequest,
    without_headers,
)
from txhttp.client._url_helpers import parse_url_parts

__all__ = [
    "REDIRECT_STATUSES",
    "SENSITIVE_HEADERS",
    "Hop",
    "answer_digest",
    "follow",
    "redirected_request",
]

REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
"""Statuses followed when ``allow_redirects`` is on (RFC 9110, section 15.4)."""

SENSITIVE_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Request headers dropped when a redirect leaves the original origin."""

_MAX_DIGEST_ANSWERS: Final = 2
"""
Digest challenges answered per request hop: the first, and one more if the
server says the nonce was ``stale`` (so wrong credentials cost one retry).
"""

Hop = Callable[
    [PreparedRequest, ExchangeSettings, Sequence[ClientResponse]],
    Awaitable[ClientResponse],
]
"""Sends one hop: the request, how to run it, and the responses before it."""


async def follow(
    send: Hop, request: PreparedRequest, settings: ExchangeSettings
) -> ClientResponse:
    """
    Exchange ``request`` through ``send``, following redirects within the limit.

    Raises:
        HTTPTooManyRedirectsError: More than ``settings.max_redirects``
            redirects.
        HTTPClientError: A redirect points to a URL the client cannot use.
    """
    history: list[ClientResponse] = []
    visited = [request.url]
    current = request
    while True:
        response = await send(current, settings, history)
        if settings.digest is not None and response.status == 401:
            response = await answer_digest(
                send,
                response,
                original=request,
                current=current,
                settings=settings,
                history=history,
            )
        location = response.header("location")
        if (
            not settings.allow_redirects
            or response.status not in REDIRECT_STATUSES
            or location is None
        ):
            return response
        response.release()
        if len(history) >= settings.max_redirects:
            raise HTTPTooManyRedirectsError(
                f"more than {settings.max_redirects} redirects",
                history=visited,
                method=request.method,
                url=request.url,
            )
        history.append(response)
        current = redirected_request(current, response.status, location)
        visited.append(current.url)


async def answer_digest(
    send: Hop,
    response: ClientResponse,
    *,
    original: PreparedRequest,
    current: PreparedRequest,
    settings: ExchangeSettings,
    history: Sequence[ClientResponse],
) -> ClientResponse:
    """
    Answer a ``Digest`` challenge in a 401 and send the request again.

    Only for the origin the request was made to (never after a redirect
    elsewhere). A second challenge is answered only if it says
    ``stale=true``, up to ``_MAX_DIGEST_ANSWERS``; otherwise, or when the
    challenge cannot be answered, the 401 is returned as it is.
    """
    auth = settings.digest
    assert auth is not None
    origin = parse_url_parts(original.url).origin
    answered = 0
    while response.status == 401 and answered < _MAX_DIGEST_ANSWERS:
        if parse_url_parts(current.url).origin != origin:
            break
        challenge = parse_digest_challenge(
            response.headers.getRawHeaders("www-authenticate", [])
        )
        if challenge is None or (answered and not challenge.stale):
            break
        value = auth.authorization(challenge, current.method, current.url)
        if value is None:
            break
        response.release()
        headers = without_headers(current.headers, ("authorization",))
        headers["Authorization"] = value
        current = replace(current, headers=headers)
        response = await send(current, settings, history)
        answered += 1
    return response


def redirected_request(
    request: PreparedRequest, status: int, location: str
) -> PreparedRequest:
    """
    The request to send after a redirect (RFC 9110, section 15.4).

    A 303 (except for ``HEAD``), or a 301/302 answering a ``POST``, becomes a
    ``GET`` without body or body headers; leaving the origin drops
    `SENSITIVE_HEADERS`.

    Raises:
        HTTPClientError: ``location`` resolves to an unsupported URL.
    """
    target = urljoin(request.url, location.strip())
    target = target.split("#", 1)[0]
    try:
        new_parts = parse_url_parts(target)
    except HTTPError as error:
        raise HTTPClientError(
            f"redirect to an unsupported URL: {target!r}",
            method=request.method,
            url=request.url,
        ) from error
    headers = dict(request.headers)
    body = request.body
    method = request.method
    if (status == 303 and method != "HEAD") or (
        status in (301, 302) and method == "POST"
    ):
        method, body = "GET", None
        headers = without_headers(headers, ("content-type", "content-length"))
    if parse_url_parts(request.url).origin != new_parts.origin:
        headers = without_headers(headers, SENSITIVE_HEADERS)
    return PreparedRequest(method=method, url=target, headers=headers, body=body)
