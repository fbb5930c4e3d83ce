"""One JSON POST to a scoring endpoint, every way it can fail turned into one error.

Timeouts, connection errors, non-2xx answers, redirects, bodies that are not JSON and
credentials that cannot be found all raise :class:`EndpointCallError` with a short reason that
names no secret and no request data, so the reason can be logged and shown to operators.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from mlworker.engines.http_scoring.auth import (
    JSON_CONTENT_TYPE,
    AuthenticationError,
    Authenticator,
)


class EndpointCallError(Exception):
    """A call to the scoring endpoint failed; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    max_keepalive
        Idle connections kept open for reuse. Concurrent calls are not limited: waiting for a
        pooled connection would fail calls (and trip the breaker) over local contention.
    """

    def __init__(
        self, url: str, *, timeout_s: float, authenticator: Authenticator, max_keepalive: int
    ) -> None:
        # Signed and sent from the same normalised form, so the signature covers what goes out.
        self.url = str(httpx.URL(url))
        self.timeout_s = timeout_s
        self._authenticator = authenticator
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max_keepalive),
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
            raise EndpointCallError(str(error)) from error
        headers = {"Content-Type": JSON_CONTENT_TYPE, **auth_headers}
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._client.stream("POST", self.url, content=body, headers=headers) as response:
                if not response.is_success:
                    raise EndpointCallError(
                        f"endpoint answered HTTP {response.status_code} "
                        f"{response.reason_phrase}".rstrip()
                    )
                content = self._read_until(response, deadline)
        except httpx.TimeoutException as error:
            raise self._timed_out(type(error).__name__) from error
        except httpx.HTTPError as error:
            raise EndpointCallError(f"request failed: {type(error).__name__}") from error
        except RuntimeError as error:
            # httpx refuses to send on a client closed by another thread (Engine.close).
            raise EndpointCallError(f"request failed: {error}") from error
        try:
            return json.loads(content)
        except ValueError as error:
            raise EndpointCallError("endpoint answered with a body that is not JSON") from error

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def _read_until(self, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise EndpointCallError(
                    f"endpoint answer exceeds {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB"
                )
            if time.monotonic() > deadline:
                raise self._timed_out("deadline")
            chunks.append(chunk)
        return b"".join(chunks)

    def _timed_out(self, how: str) -> EndpointCallError:
        return EndpointCallError(f"timed out after {self.timeout_s * 1000:g} ms ({how})")
