"""One JSON POST to a scoring endpoint through the egress policy; every failure one error.

Connections go through :class:`EgressTransport`: the host is resolved by the
:class:`~mlworker.egress.EgressPolicy`, every address is checked, and the connection is opened
to a vetted address (TLS still verifies, and SNI and ``Host`` still name, the host of the URL).
Proxies from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``) and ``.netrc``
credentials are never used: a proxy would connect on the service's behalf to an address the
policy never saw, and netrc would hand the server's own credentials to a tenant's URL.
Redirects are not followed, and answers are read up to :data:`MAX_RESPONSE_BYTES`.

Timeouts, refusals by the policy, connection errors, non-2xx answers, bodies that are not JSON
and credentials that cannot be used all raise :class:`EndpointCallError`. Its ``reason`` is a
short stable category (:data:`FAILURE_CATEGORIES`), the only thing a tenant ever sees; its
``detail`` (names no secret and no request data) is for the server log.
"""

from __future__ import annotations

import json
import time
import typing
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from mlworker.egress import EgressDenied, EgressPolicy, EgressUnresolvable
from mlworker.engines.http_scoring.auth import (
    JSON_CONTENT_TYPE,
    AuthenticationError,
    Authenticator,
)

REFUSED_BY_EGRESS_POLICY = "endpoint_refused_by_egress_policy"
UNREACHABLE = "endpoint_unreachable"
TIMEOUT = "endpoint_timeout"
HTTP_ERROR = "endpoint_http_error"
INVALID_RESPONSE = "endpoint_invalid_response"
CREDENTIALS_UNAVAILABLE = "endpoint_credentials_unavailable"

#: Every reason a call can fail with, as tenants see it.
FAILURE_CATEGORIES = (
    REFUSED_BY_EGRESS_POLICY,
    UNREACHABLE,
    TIMEOUT,
    HTTP_ERROR,
    INVALID_RESPONSE,
    CREDENTIALS_UNAVAILABLE,
)


class EndpointCallError(Exception):
    """A call to the scoring endpoint failed.

    Attributes
    ----------
    reason
        One of :data:`FAILURE_CATEGORIES`: what a tenant may see.
    detail
        What happened, for the server log only.
    """

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason


class _VettedNetwork(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses the egress policy vetted for the host."""

    def __init__(self, policy: EgressPolicy) -> None:
        self._policy = policy
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.vetted_addresses(host, port)
        except EgressUnresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._sockets.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise EgressDenied("unix sockets are not an egress target")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class EgressTransport(httpx.HTTPTransport):
    """An httpx transport whose every new connection passes the egress policy.

    Reusable by any outbound client the service runs for a tenant (``httpx.Client(transport=
    EgressTransport(policy, ...), trust_env=False)``).

    Parameters
    ----------
    policy
        Decides which addresses may be connected to.
    limits
        Connection-pool limits.
    """

    def __init__(self, policy: EgressPolicy, *, limits: httpx.Limits) -> None:
        # SSL_CERT_FILE / SSL_CERT_DIR still apply: a private model server may use a private CA.
        ssl_context = httpx.create_ssl_context(trust_env=True)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        # httpx builds its pool without a network-backend hook: rebuild it with the same
        # options and the vetting backend (httpx.HTTPTransport keeps the pool in ``_pool``).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_VettedNetwork(policy),
        )


#: Answers larger than this are refused rather than buffered (a scoring answer is kilobytes).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class JsonEndpoint:
    """A synchronous JSON-over-HTTP endpoint with a connection pool.

    Thread-safe: concurrent :meth:`post` calls share the pool.

    Parameters
    ----------
    url
        ``http`` or ``https`` URL the requests are POSTed to.
    timeout_s
        Deadline in seconds for the whole call, from sending to the last byte of the answer.
        httpx applies it to connecting, to sending and to each read; the answer is read in
        chunks and abandoned once the deadline passes, so a server that trickles bytes cannot
        hold a call much longer than the deadline either.
    authenticator
        Adds the authentication headers of each request.
    egress
        The operator's egress policy; every connection is opened through it.
    max_keepalive
        Idle connections kept open for reuse. Concurrent calls are not limited: waiting for a
        pooled connection would fail calls (and trip the breaker) over local contention.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        authenticator: Authenticator,
        egress: EgressPolicy,
        max_keepalive: int,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        # Signed and sent from the same normalised form, so the signature covers what goes out.
        self.url = str(httpx.URL(url))
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._authenticator = authenticator
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=max_keepalive)
        self._client = httpx.Client(
            transport=EgressTransport(egress, limits=limits),
            trust_env=False,
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            headers={"Accept": JSON_CONTENT_TYPE, "User-Agent": "mlworker-external-endpoint"},
        )

    @property
    def display_url(self) -> str:
        """The URL without its query string, which may carry a key (Azure's ``?code=``)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def post(self, payload: Any) -> Any:
        """POST ``payload`` as JSON and return the decoded JSON answer.

        Raises
        ------
        EndpointCallError
            The call failed or the answer was not 2xx JSON.
        """
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
        try:
            auth_headers = self._authenticator.headers("POST", self.url, body)
        except AuthenticationError as error:
            raise EndpointCallError(CREDENTIALS_UNAVAILABLE, str(error)) from error
        headers = {"Content-Type": JSON_CONTENT_TYPE, **auth_headers}
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", self.url, content=body, headers=headers) as response:
                if not response.is_success:
                    # Redirects land here too: they are never followed, wherever they point.
                    raise EndpointCallError(
                        HTTP_ERROR,
                        f"endpoint answered HTTP {response.status_code} "
                        f"{response.reason_phrase}".rstrip(),
                    )
                content = self._read_until(response, deadline)
        except EgressDenied as error:
            raise EndpointCallError(REFUSED_BY_EGRESS_POLICY, str(error)) from error
        except httpx.TimeoutException as error:
            raise self._timed_out(type(error).__name__) from error
        except httpx.HTTPError as error:
            raise EndpointCallError(UNREACHABLE, f"{type(error).__name__}: {error}") from error
        except RuntimeError as error:
            # httpx refuses to send on a client closed by another thread (Engine.close).
            raise EndpointCallError(UNREACHABLE, f"request failed: {error}") from error
        try:
            return json.loads(content)
        except ValueError as error:
            raise EndpointCallError(
                INVALID_RESPONSE, "endpoint answered with a body that is not JSON"
            ) from error

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def _read_until(self, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise EndpointCallError(
                    INVALID_RESPONSE, f"endpoint answer exceeds {self.max_response_bytes} bytes"
                )
            if time.monotonic() > deadline:
                raise self._timed_out("deadline")
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self, how: str) -> EndpointCallError:
        return EndpointCallError(TIMEOUT, f"timed out after {self.timeout_s * 1000:g} ms ({how})")
