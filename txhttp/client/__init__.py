"""
txhttp's HTTP/1.1 client.

Layers, from the wire up: `HTTP11ClientProtocol` (one connection), the
`HTTPConnectionPool` and `Agent` (provides ``IAgent``), and `HTTPClient`, the
convenient layer applications use. ``HTTPClientConnection`` drives the same wire
core with plain callbacks.
"""

from txhttp.client._agent import (
    DEFAULT_TOTAL_TIMEOUT,
    Agent,
    ConnectTarget,
    EndpointFactory,
)
from txhttp.client._base_url import BaseURLHTTPClient
from txhttp.client._breaker import (
    CircuitBreaker,
    CircuitBreakerRegistry,
    CircuitPermit,
    CircuitState,
)
from txhttp.client._bulkhead import Bulkhead, BulkheadSlot
from txhttp.client._client_response import BodyStream, ClientResponse, JSONValue
from txhttp.client._config import HTTPClientConfig
from txhttp.client._connection import (
    DEFAULT_CALLBACK_CONNECT_TIMEOUT,
    DEFAULT_CALLBACK_IDLE_TIMEOUT,
    ConnectionState,
    HTTPClientConnection,
)
from txhttp.client._cookies import BasicAuth, BearerAuth
from txhttp.client._digest import DigestAuth
from txhttp.client._dns import CachingHostnameResolver
from txhttp.client._errors import (
    BodyIdleTimeout,
    CertificateVerificationFailed,
    ConnectionAborted,
    ConnectTimeout,
    HTTPTimeout,
    PoolQueueFull,
    PoolQueueTimeout,
    ProxyTunnelFailed,
    RequestGenerationFailed,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseHeadTimeout,
    ResponseNeverReceived,
    TLSHandshakeFailed,
    TotalTimeout,
    WrongBodyLength,
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
    EventDispatcher,
    FilterEvent,
    RequestCompleted,
    RequestDispatched,
    RequestRetrying,
    RequestTimedOut,
    ResponseReceived,
    RetriesExhausted,
    StoppableEvent,
)
from txhttp.client._exceptions import (
    HTTPBulkheadFullError,
    HTTPCircuitOpenError,
    HTTPClientError,
    HTTPConnectionError,
    HTTPDecompressionError,
    HTTPError,
    HTTPInterceptorError,
    HTTPResponseTooLargeError,
    HTTPRetryExhaustedError,
    HTTPStatusError,
    HTTPTimeoutError,
    HTTPTooManyRedirectsError,
)
from txhttp.client._http_client import (
    HealthCheckResult,
    HTTPClient,
    HTTPClientState,
    PreparedRequest,
    RequestBody,
    RequestOptions,
)
from txhttp.client._interceptors import (
    BaseInterceptor,
    Interceptor,
    InterceptorChain,
    RequestContext,
    ResponseContext,
)
from txhttp.client._lifecycle import (
    ConnectionFailureReason,
    HTTPClientLifecycleEventReceiver,
    LifecycleResponse,
    TimerToken,
)
from txhttp.client._metrics import (
    InMemoryMetricsRecorder,
    MetricsRecorder,
    OpenTelemetryMetricsRecorder,
    record_request,
)
from txhttp.client._multipart import MultipartProducer
from txhttp.client._pool import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_HOST,
    DEFAULT_MAX_IDLE_PER_HOST,
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_READ_BYTES,
    DEFAULT_QUEUE_TIMEOUT,
    DEFAULT_READ_LOW_WATER,
    DEFAULT_READ_LOW_WATER_DELAY,
    HostStats,
    HTTPConnectionPool,
    PoolKey,
    PoolStats,
)
from txhttp.client._producers import BytesBodyProducer
from txhttp.client._protocol import (
    DEFAULT_CLIENT_LIMITS,
    ClientInput,
    ClientState,
    HTTP11ClientProtocol,
)
from txhttp.client._proxy import ConnectTunnelEndpoint, HTTPProxy
from txhttp.client._request import (
    DEFAULT_BODY_IDLE_TIMEOUT,
    DEFAULT_EXPECT_CONTINUE_TIMEOUT,
    DEFAULT_RESPONSE_HEAD_TIMEOUT,
    ClientRequest,
)
from txhttp.client._resilience import (
    ResiliencePipeline,
    RetryableResponse,
    TimeoutPolicy,
)
from txhttp.client._response import DEFAULT_MAX_BUFFERED_BODY_BYTES, Response
from txhttp.client._retry import RetryPolicy, ScheduledRetry
from txhttp.client._sse import EventSource, ServerSentEvent, SSEParser
from txhttp.client._streaming import StreamContext, StreamingResponse
from txhttp.client._tls import TLSEndpoint, TLSPolicy
from txhttp.client._url_helpers import (
    URLParts,
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

__all__: list[str] = []
__all__ += [
    "HTTPBulkheadFullError",
    "HTTPCircuitOpenError",
    "HTTPClientError",
    "HTTPConnectionError",
    "HTTPDecompressionError",
    "HTTPError",
    "HTTPInterceptorError",
    "HTTPResponseTooLargeError",
    "HTTPRetryExhaustedError",
    "HTTPStatusError",
    "HTTPTimeoutError",
    "HTTPTooManyRedirectsError",
]
__all__ += [  # resilience, interceptors, events, metrics
    "FILTER_REQUEST",
    "FILTER_RESPONSE",
    "REQUEST_COMPLETED",
    "REQUEST_DISPATCHED",
    "REQUEST_RETRYING",
    "REQUEST_TIMED_OUT",
    "RESPONSE_RECEIVED",
    "RETRIES_EXHAUSTED",
    "BaseInterceptor",
    "Bulkhead",
    "BulkheadSlot",
    "CircuitBreaker",
    "CircuitBreakerRegistry",
    "CircuitPermit",
    "CircuitState",
    "EventDispatcher",
    "FilterEvent",
    "InMemoryMetricsRecorder",
    "Interceptor",
    "InterceptorChain",
    "MetricsRecorder",
    "OpenTelemetryMetricsRecorder",
    "RequestCompleted",
    "RequestContext",
    "RequestDispatched",
    "RequestRetrying",
    "RequestTimedOut",
    "ResiliencePipeline",
    "ResponseContext",
    "ResponseReceived",
    "RetriesExhausted",
    "RetryPolicy",
    "RetryableResponse",
    "ScheduledRetry",
    "StoppableEvent",
    "TimeoutPolicy",
    "record_request",
]
__all__ += [  # one connection: protocol, request, response, typed failures
    "DEFAULT_BODY_IDLE_TIMEOUT",
    "DEFAULT_CLIENT_LIMITS",
    "DEFAULT_EXPECT_CONTINUE_TIMEOUT",
    "DEFAULT_MAX_BUFFERED_BODY_BYTES",
    "DEFAULT_RESPONSE_HEAD_TIMEOUT",
    "BodyIdleTimeout",
    "ClientInput",
    "ClientRequest",
    "ClientState",
    "ConnectTimeout",
    "ConnectionAborted",
    "HTTP11ClientProtocol",
    "HTTPTimeout",
    "PoolQueueFull",
    "PoolQueueTimeout",
    "RequestGenerationFailed",
    "RequestNotSent",
    "RequestTransmissionFailed",
    "Response",
    "ResponseFailed",
    "ResponseHeadTimeout",
    "ResponseNeverReceived",
    "TotalTimeout",
    "WrongBodyLength",
]
__all__ += [  # HTTPClient: the convenient layer
    "BaseURLHTTPClient",
    "BasicAuth",
    "BearerAuth",
    "BodyStream",
    "CachingHostnameResolver",
    "ClientResponse",
    "DigestAuth",
    "EventSource",
    "HTTPClient",
    "HTTPClientConfig",
    "HTTPClientState",
    "HealthCheckResult",
    "JSONValue",
    "MultipartProducer",
    "PreparedRequest",
    "RequestBody",
    "RequestOptions",
    "SSEParser",
    "ServerSentEvent",
    "StreamContext",
    "StreamingResponse",
    "URLParts",
    "build_url",
    "extract_json_type",
    "format_timeout",
    "merge_headers",
    "parse_headers",
    "parse_url_parts",
    "validate_host",
    "validate_port",
    "validate_positive_int",
    "validate_timeout",
    "validate_url",
]
__all__ += [  # the callback-style connection
    "DEFAULT_CALLBACK_CONNECT_TIMEOUT",
    "DEFAULT_CALLBACK_IDLE_TIMEOUT",
    "ConnectionFailureReason",
    "ConnectionState",
    "HTTPClientConnection",
    "HTTPClientLifecycleEventReceiver",
    "LifecycleResponse",
    "TimerToken",
]
__all__ += [  # Agent, pool, TLS, proxies
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_CONNECTIONS_PER_HOST",
    "DEFAULT_MAX_IDLE_PER_HOST",
    "DEFAULT_MAX_QUEUED",
    "DEFAULT_MAX_READ_BYTES",
    "DEFAULT_QUEUE_TIMEOUT",
    "DEFAULT_READ_LOW_WATER",
    "DEFAULT_READ_LOW_WATER_DELAY",
    "DEFAULT_TOTAL_TIMEOUT",
    "Agent",
    "BytesBodyProducer",
    "CertificateVerificationFailed",
    "ConnectTarget",
    "ConnectTunnelEndpoint",
    "EndpointFactory",
    "HTTPConnectionPool",
    "HTTPProxy",
    "HostStats",
    "PoolKey",
    "PoolStats",
    "ProxyTunnelFailed",
    "TLSEndpoint",
    "TLSHandshakeFailed",
    "TLSPolicy",
]
