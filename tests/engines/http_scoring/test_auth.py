"""Authentication headers; SigV4 checked against an independent implementation of the spec.

The reference implementation below follows AWS's "Create a signed AWS API request" step by
step and is itself pinned to the published ``get-vanilla`` vector of the SigV4 test suite.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import urlsplit

import pytest

from mlworker.engines.http_scoring.auth import (
    ApiKeyAuth,
    AuthenticationError,
    BearerAuth,
    NoAuth,
    SigV4Auth,
)

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def reference_signature(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    secret_key: str,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """SigV4 signature of a request whose ``headers`` are exactly the signed ones."""
    parts = urlsplit(url)
    canonical_headers = "".join(
        f"{name.lower()}:{' '.join(value.split())}\n"
        for name, value in sorted(headers.items(), key=lambda item: item[0].lower())
    )
    signed_headers = ";".join(sorted(name.lower() for name in headers))
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical_request = "\n".join(
        [
            method,
            parts.path or "/",
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_reference_matches_the_published_get_vanilla_vector() -> None:
    signature = reference_signature(
        method="GET",
        url="https://example.amazonaws.com/",
        headers={"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
        body=b"",
        secret_key=SECRET_KEY,
        amz_date="20150830T123600Z",
        region="us-east-1",
        service="service",
    )
    assert signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"


AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@pytest.mark.parametrize("session_token", [None, "FQoGZXIvYXdzEXAMPLETOKEN"])
def test_sigv4_headers_match_the_reference(session_token: str | None) -> None:
    url = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/churn-model/invocations"
    body = b'{"instances":[{"customerId":"c1","offerId":"o1"}]}'
    signer = SigV4Auth(
        region="eu-west-1",
        service="sagemaker",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        session_token=session_token,
    )
    headers = signer.headers("POST", url, body)
    match = AUTH_HEADER.fullmatch(headers["Authorization"])
    assert match is not None, headers["Authorization"]
    assert (match["key"], match["region"], match["service"]) == (
        ACCESS_KEY,
        "eu-west-1",
        "sagemaker",
    )
    amz_date = headers["X-Amz-Date"]
    assert match["date"] == amz_date[:8]
    signed = {
        "Content-Type": "application/json",
        "Host": "runtime.sagemaker.eu-west-1.amazonaws.com",
        "X-Amz-Date": amz_date,
    }
    if session_token is not None:
        assert headers["X-Amz-Security-Token"] == session_token
        signed["X-Amz-Security-Token"] = session_token
    else:
        assert "X-Amz-Security-Token" not in headers
    assert match["signed"] == ";".join(sorted(name.lower() for name in signed))
    expected = reference_signature(
        method="POST",
        url=url,
        headers=signed,
        body=body,
        secret_key=SECRET_KEY,
        amz_date=amz_date,
        region="eu-west-1",
        service="sagemaker",
    )
    assert match["signature"] == expected
    # The signature covers the body: another body signs differently.
    other = reference_signature(
        method="POST",
        url=url,
        headers=signed,
        body=body + b" ",
        secret_key=SECRET_KEY,
        amz_date=amz_date,
        region="eu-west-1",
        service="sagemaker",
    )
    assert other != expected


def test_sigv4_uses_the_default_chain_only_when_the_operator_allows_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    headers = SigV4Auth(
        region="us-east-1", service="sagemaker", use_server_credentials=True
    ).headers("POST", "https://example.com/x", b"{}")
    assert "Credential=AKIDFROMENV/" in headers["Authorization"]
    with pytest.raises(AuthenticationError, match="does not allow the server's own"):
        SigV4Auth(region="us-east-1", service="sagemaker").headers(
            "POST", "https://example.com/x", b"{}"
        )


def test_sigv4_without_any_credentials_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    signer = SigV4Auth(region="us-east-1", service="sagemaker", use_server_credentials=True)
    with pytest.raises(AuthenticationError, match="no AWS credentials"):
        signer.headers("POST", "https://example.com/x", b"{}")


def test_sigv4_refuses_half_a_key_pair() -> None:
    with pytest.raises(ValueError, match="both"):
        SigV4Auth(region="us-east-1", service="sagemaker", access_key_id=ACCESS_KEY)


def test_simple_schemes_and_their_reprs_hide_secrets() -> None:
    assert NoAuth().headers("POST", "http://m", b"") == {}
    assert ApiKeyAuth("k1").headers("POST", "http://m", b"") == {"x-api-key": "k1"}
    assert ApiKeyAuth("k1", header_name="Ocp-Apim-Subscription-Key").headers(
        "POST", "http://m", b""
    ) == {"Ocp-Apim-Subscription-Key": "k1"}
    assert BearerAuth("t1").headers("POST", "http://m", b"") == {"Authorization": "Bearer t1"}
    signer = SigV4Auth(
        region="r", service="s", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    )
    for authenticator, secret in [
        (ApiKeyAuth("k1"), "k1"),
        (BearerAuth("t1"), "t1"),
        (signer, SECRET_KEY),
    ]:
        assert secret not in repr(authenticator)
