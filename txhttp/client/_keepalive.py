# -*- test-case-name: txhttp.test.test_client_exchange -*-
"""
The keep-alive rule for one client exchange (RFC 9112, section 9.3).

`exchange_allows_reuse` says, from the request and the final response head,
whether the connection may carry another request afterwards. `ClientExchange`
applies it for both client connections (`HTTPClientConnection` and
`HTTP11ClientProtocol`), together with what only the exchange can see: bytes
received beyond the response, a request body not finished when the response
ended, and a final status received instead of ``100 Continue``.
"""

from __future__ import annotations

from txhttp._wire import BodyKind, ResponseHead
from txhttp.client._request import ClientRequest

__all__ = ["exchange_allows_reuse"]


def exchange_allows_reuse(request: ClientRequest, head: ResponseHead) -> bool:
    """
    Whether the connection may be reused once this exchange is complete.

    Args:
        request: The request that was sent.
        head: The final response head received for it.

    Returns:
        False when the request asked to close (not ``persistent``, or
        ``Connection: close``), the server did (``Connection: close``, or
        HTTP/1.0 without keep-alive), the body is read until the connection
        closes, or the connection became a tunnel; else True.
    """
    if not head.keep_alive or request.asks_to_close():
        return False
    kind = head.framing.kind
    return kind is not BodyKind.UNTIL_CLOSE and kind is not BodyKind.TUNNEL
