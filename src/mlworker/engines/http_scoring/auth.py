"""Request authentication for scoring endpoints: API key, bearer token, AWS Signature V4.

An :class:`Authenticator` returns the headers that authenticate one request, given its method,
URL and exact body bytes (SigV4 signs all three). Secrets live only in the authenticator's
private attributes; its ``repr`` never shows them.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.session

JSON_CONTENT_TYPE = "application/json"


class AuthenticationError(RuntimeError):
    """Credentials could not be found or a request could not be signed."""


class Authenticator(Protocol):
    """Headers that authenticate one request."""

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Return the headers that authenticate ``method url`` carrying ``body``."""
        ...


class NoAuth:
    """No authentication.

    Examples
    --------
    >>> NoAuth().headers("POST", "http://model.local/score", b"{}")
    {}
    """

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Return no headers."""
        return {}


class ApiKeyAuth:
    """A static key in a header (``x-api-key`` unless configured otherwise).

    Examples
    --------
    >>> ApiKeyAuth("k-123", header_name="x-api-key").headers("POST", "http://m/s", b"")
    {'x-api-key': 'k-123'}
    >>> "k-123" in repr(ApiKeyAuth("k-123"))
    False
    """

    def __init__(self, api_key: str, *, header_name: str = "x-api-key") -> None:
        self._api_key = api_key
        self.header_name = header_name

    def __repr__(self) -> str:
        return f"ApiKeyAuth(header_name={self.header_name!r})"

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Return the key in its header."""
        return {self.header_name: self._api_key}


class BearerAuth:
    """An OAuth-style bearer token in ``Authorization``.

    Examples
    --------
    >>> BearerAuth("t-9").headers("POST", "http://m/s", b"")
    {'Authorization': 'Bearer t-9'}
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth()"

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Return ``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self._token}"}


class SigV4Auth:
    """AWS Signature Version 4 (SageMaker runtime and any AWS service endpoint).

    Signs method, path, query, ``host``, ``content-type``, ``x-amz-date`` (and
    ``x-amz-security-token`` with temporary credentials) and the SHA-256 of the body with
    botocore's signer. Without explicit keys, credentials come from botocore's default chain
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, shared config files,
    container and instance roles), resolved on the first request and refreshed by botocore
    when they are temporary, but only with ``use_server_credentials``: those are the
    server's own credentials, and the operator decides which hosts may see them
    (:meth:`~mlworker.egress.EgressPolicy.may_use_server_credentials`).

    Parameters
    ----------
    region
        Region of the credential scope (``us-east-1``).
    service
        Service of the credential scope (``sagemaker`` for SageMaker runtime).
    access_key_id, secret_access_key, session_token
        Explicit credentials; both keys or neither.
    use_server_credentials
        Without explicit keys, sign with the default chain (``True``) or refuse to sign.

    References
    ----------
    .. [1] AWS, "Create a signed AWS API request", Signature Version 4 documentation.
    """

    def __init__(
        self,
        *,
        region: str,
        service: str,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        use_server_credentials: bool = False,
    ) -> None:
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        self.region = region
        self.service = service
        self._credentials: Any = (
            botocore.credentials.Credentials(access_key_id, secret_access_key, session_token)
            if access_key_id is not None
            else None
        )
        self._use_server_credentials = use_server_credentials
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SigV4Auth(region={self.region!r}, service={self.service!r})"

    def headers(self, method: str, url: str, body: bytes) -> dict[str, str]:
        """Sign this exact request: ``Authorization``, ``X-Amz-Date``, session token."""
        credentials = self._resolved_credentials().get_frozen_credentials()
        request = botocore.awsrequest.AWSRequest(
            method=method, url=url, data=body, headers={"Content-Type": JSON_CONTENT_TYPE}
        )
        botocore.auth.SigV4Auth(credentials, self.service, self.region).add_auth(request)
        return {str(name): str(value) for name, value in request.headers.items()}

    def _resolved_credentials(self) -> Any:
        with self._lock:
            if self._credentials is None and not self._use_server_credentials:
                raise AuthenticationError(
                    "no AWS keys in authConfig, and the operator does not allow the server's "
                    "own credentials for this host (MLWORKER_EGRESS_AWS_CREDENTIAL_HOSTS)"
                )
            if self._credentials is None:
                # Looked up on first use, not at construction: the chain may read files or
                # query an instance-metadata endpoint, which a config validation must not do.
                found = botocore.session.get_session().get_credentials()
                if found is None:
                    raise AuthenticationError(
                        "no AWS credentials: set authConfig.accessKeyId/secretAccessKey or "
                        "provide them through the AWS default credential chain"
                    )
                self._credentials = found
            return self._credentials
