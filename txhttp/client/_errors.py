# -*- test-case-name: txhttp.test.test_client_protocol -*-
"""
The typed failures of txhttp's HTTP/1.1 client connection, pool and agent.

Each failure says how far a request got, so retry code reads the *type*:

- `RequestNotSent`: nothing of the request was written (the connection was
  busy or closed); always safe to send again elsewhere.
- `RequestGenerationFailed`: our side could not produce the request (the body
  producer failed, or wrote more or fewer bytes than it declared); part of
  it may be on the wire, so the connection is closed.
- `RequestTransmissionFailed`: the network failed while the request was
  being written.
- `ResponseNeverReceived`: the request was written but not one byte of a
  response came back.
- `ResponseFailed`: some of the response arrived, then it was cut short.
- `ConnectionAborted`: our own code (``abort()``, a cancelled Deferred, a
  stopped body) ended the connection.

Where ``twisted.web`` has a class of the same name, ours subclasses it, so
treq and twisted.web code catching those keeps working; the wrapping ones
carry ``reasons``, a list of ``Failure`` with the underlying causes.

Timeouts share the `HTTPTimeout` base and say which limit fired and after how
long (`HTTPTimeout.limit_seconds`). Waiting for ``100 Continue`` is not an
error: when that wait ends the body is simply sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.error import ConnectError
from twisted.python.failure import Failure
from twisted.web import _newclient as _tw

__all__ = [
    "BodyIdleTimeout",
    "CertificateVerificationFailed",
    "ConnectTimeout",
    "ConnectionAborted",
    "HTTPTimeout",
    "PoolQueueFull",
    "PoolQueueTimeout",
    "ProxyTunnelFailed",
    "RequestGenerationFailed",
    "RequestNotSent",
    "RequestTransmissionFailed",
    "ResponseFailed",
    "ResponseHeadTimeout",
    "ResponseNeverReceived",
    "TLSHandshakeFailed",
    "TotalTimeout",
    "WrongBodyLength",
]


def _describe_reasons(reasons: Sequence[Failure]) -> str:
    """Render the reasons' types and messages, for an exception's ``str``."""
    if not reasons:
        return "no reason given"
    return "; ".join(
        f"{type(reason.value).__name__}: {reason.getErrorMessage()}"
        if isinstance(reason, Failure)
        else repr(reason)
        for reason in reasons
    )


class RequestGenerationFailed(_tw.RequestGenerationFailed):
    """
    Our side could not produce the request's bytes; the connection is closed.

    Typical reasons: the body producer's Deferred failed, it wrote more bytes
    than its declared ``length`` or finished with fewer (`WrongBodyLength`),
    or a header could not be serialized.

    Attributes:
        reasons: The underlying failures, at least one.
    """

    reasons: list[Failure]

    def __init__(self, reasons: list[Failure]) -> None:
        super().__init__(reasons)

    def __str__(self) -> str:
        return f"request could not be generated: {_describe_reasons(self.reasons)}"


class RequestTransmissionFailed(_tw.RequestTransmissionFailed):
    """
    The network failed while the request was being written.

    Attributes:
        reasons: The underlying failures (typically the connection loss).
    """

    reasons: list[Failure]

    def __init__(self, reasons: list[Failure]) -> None:
        super().__init__(reasons)

    def __str__(self) -> str:
        return f"request transmission failed: {_describe_reasons(self.reasons)}"


class ResponseFailed(_tw.ResponseFailed):
    """
    Some or all of the response was lost.

    Passed (inside a ``Failure``) to a body protocol's ``connectionLost`` when
    the body was cut short, and used to fail ``request()`` once response
    bytes had arrived.

    Attributes:
        reasons: The underlying failures.
        response: The response whose body failed, when its head had arrived.
    """

    reasons: list[Failure]

    def __init__(self, reasons: list[Failure], response: object = None) -> None:
        super().__init__(reasons, response)

    def __str__(self) -> str:
        return f"response failed: {_describe_reasons(self.reasons)}"


class ResponseNeverReceived(ResponseFailed, _tw.ResponseNeverReceived):
    """The request was sent (perhaps partly) but no response byte arrived."""

    def __str__(self) -> str:
        return f"no response received: {_describe_reasons(self.reasons)}"


class RequestNotSent(_tw.RequestNotSent):
    """
    Nothing of the request was written: this connection takes no requests.

    The connection was busy with another request, closing or closed; the
    request itself is fine and may be sent on another connection.

    Attributes:
        reasons: Underlying failures, if any (often none).
    """

    def __init__(
        self,
        message: str = "the connection cannot take a request",
        reasons: list[Failure] | None = None,
    ) -> None:
        super().__init__(message)
        self.reasons: list[Failure] = list(reasons or ())


class ConnectionAborted(_tw.ConnectionAborted):
    """
    Our own code ended the connection: ``abort()``, cancellation, a stopped body.

    Attributes:
        reasons: Underlying failures, if any.
    """

    def __init__(
        self,
        message: str = "the connection was aborted",
        reasons: list[Failure] | None = None,
    ) -> None:
        super().__init__(message)
        self.reasons: list[Failure] = list(reasons or ())


class WrongBodyLength(_tw.WrongBodyLength):
    """
    A body producer wrote more, or fewer, bytes than its declared ``length``.

    Attributes:
        declared: The producer's ``length``.
        written: Bytes it wrote (for "more", the count including the write
            that went over; those bytes were not sent).
    """

    def __init__(self, declared: int, written: int) -> None:
        if written > declared:
            message = (
                f"body producer wrote at least {written} bytes, more than its "
                f"declared length of {declared}; the excess was not sent"
            )
        else:
            message = (
                f"body producer finished after {written} bytes, fewer than "
                f"its declared length of {declared}"
            )
        super().__init__(message)
        self.declared = declared
        self.written = written


class HTTPTimeout(Exception):
    """
    A time limit fired. Subclasses say which; all say after how long.

    Attributes:
        limit_seconds: The limit that was reached, in seconds.
        target: What was waited for (a host, a URL), or ``""``.
    """

    waited_for: str = "the operation did not complete"
    """What did not happen in time, as the message's subject (set by each subclass)."""

    def __init__(self, limit_seconds: float, target: str = "") -> None:
        self.limit_seconds = float(limit_seconds)
        self.target = target
        where = f" ({target})" if target else ""
        super().__init__(f"{self.waited_for} within {self.limit_seconds} s{where}")


class ConnectTimeout(HTTPTimeout):
    """The connection (TCP, TLS handshake, proxy tunnel) was not set up in time."""

    waited_for = "no connection"


class ResponseHeadTimeout(HTTPTimeout):
    """The final response head did not arrive in time after the request was sent."""

    waited_for = "no response head"


class BodyIdleTimeout(HTTPTimeout):
    """No response body byte arrived for too long while reading the body."""

    waited_for = "no response body data"


class TotalTimeout(HTTPTimeout):
    """The whole request, from the call to the end of the body, took too long."""

    waited_for = "request not complete"


class PoolQueueTimeout(HTTPTimeout):
    """A request waited too long in the pool's queue for a free connection."""

    waited_for = "no free connection"


class PoolQueueFull(Exception):
    """
    The pool's request queue is full; the request was refused at once.

    Attributes:
        max_queued: The queue's limit.
        target: Which pool key the request was for.
    """

    def __init__(self, max_queued: int, target: str = "") -> None:
        self.max_queued = max_queued
        self.target = target
        where = f" ({target})" if target else ""
        super().__init__(f"pool queue full: {max_queued} requests waiting{where}")


# Appended by the agent/pool helper: failures while setting up a connection
# (TLS, proxy tunnel). They subclass Twisted's ConnectError, so code that
# treats "could not connect" as "request never sent" keeps doing so.
class TLSHandshakeFailed(ConnectError):
    """
    The TLS handshake with the server failed; no request byte was sent.

    Attributes:
        host: The server's host name or address.
        port: The server's port.
        detail: What went wrong (OpenSSL's words, or ours).
    """

    def __init__(self, host: str, port: int, detail: str) -> None:
        super().__init__(string=detail)
        self.host = host
        self.port = port
        self.detail = detail

    def __str__(self) -> str:
        return f"TLS handshake with {self.host}:{self.port} failed: {self.detail}"


class CertificateVerificationFailed(TLSHandshakeFailed):
    """
    The server's certificate was refused; no request byte was sent.

    Attributes:
        reason: A short, stable code for programs: ``"hostname-mismatch"``,
            ``"expired"``, ``"not-yet-valid"``, ``"self-signed"``,
            ``"untrusted"``, ``"revoked"``, ``"bad-signature"``,
            ``"bad-purpose"`` or ``"other"``.
        verify_code: OpenSSL's ``X509_V_ERR_*`` number, when OpenSSL
            refused the chain (``None`` for a host name mismatch).
    """

    def __init__(
        self,
        host: str,
        port: int,
        detail: str,
        *,
        reason: str,
        verify_code: int | None = None,
    ) -> None:
        super().__init__(host, port, detail)
        self.reason = reason
        self.verify_code = verify_code

    def __str__(self) -> str:
        return (
            f"certificate of {self.host}:{self.port} refused ({self.reason}): "
            f"{self.detail}"
        )


class ProxyTunnelFailed(ConnectError):
    """
    The proxy refused or broke the ``CONNECT`` tunnel; nothing reached the origin.

    Attributes:
        proxy: The proxy, as ``host:port``.
        authority: The ``host:port`` the tunnel was asked for.
        status: The proxy's status code, or ``None`` if it sent no valid
            response (407 means its credentials were missing or wrong).
        detail: What went wrong.
    """

    def __init__(
        self, proxy: str, authority: str, status: int | None, detail: str
    ) -> None:
        super().__init__(string=detail)
        self.proxy = proxy
        self.authority = authority
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return (
            f"proxy {self.proxy} did not open a tunnel to {self.authority}: "
            f"{self.detail}"
        )
