"""The external_endpoint engine against a real local HTTP server (tests/engines/scoring_server)."""

from __future__ import annotations

import copy
import json
import pickle
import re
import time
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import numpy as np
import pandas as pd
import pytest
import structlog
from pydantic import ValidationError

from mlworker.egress import EgressPolicy
from mlworker.engines import ScoringEngine, build_engine, config_of
from mlworker.engines.external_endpoint import (
    SECRET_FIELDS,
    SHORT_CIRCUITED,
    Engine,
    ExternalEndpointConfig,
    redact_secrets,
)
from tests.engines.scoring_server import (
    LOOPBACK_ALLOW,
    LOOPBACK_EGRESS,
    RecordedRequest,
    ScoringServer,
    scoring_server,
)

__all__ = ["scoring_server"]  # the fixture, imported for pytest

SEED_EXAMPLE = {
    "endpointUrl": "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/churn-model/invocations",
    "authType": "aws_sigv4",
    "authConfig": {"awsRegion": "us-east-1", "awsService": "sagemaker"},
    "scoringMode": "batch",
    "responseMapping": {"batchScoresPath": "scores", "fallbackScore": 0.5},
    "timeoutMs": 200,
}
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _candidates(count: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customerId": [f"c{i}" for i in range(count)],
            "offerId": [f"o{i % 2}" for i in range(count)],
            "age": [30.0 + i if i != 1 else np.nan for i in range(count)],
            "tier": ["gold" if i % 2 else "silver" for i in range(count)],
        }
    )


#: Loopback allowed, and the server's own AWS credentials allowed to sign for it.
SIGNING_LOOPBACK = EgressPolicy.from_entries(
    LOOPBACK_ALLOW.split(","), aws_credential_hosts=["127.0.0.1"]
)


def _engine(server: ScoringServer, egress: EgressPolicy = LOOPBACK_EGRESS, **config: Any) -> Engine:
    engine = build_engine("external_endpoint", {"endpointUrl": server.url, **config}, egress=egress)
    assert isinstance(engine, Engine)
    return engine


# -- configuration -----------------------------------------------------------------------------


def test_seed_example_validates_with_documented_defaults() -> None:
    # The seed signs with the server's own credentials: the operator must allow the host.
    sagemaker = EgressPolicy.from_entries(
        aws_credential_hosts=[".sagemaker.us-east-1.amazonaws.com"]
    )
    config = config_of("external_endpoint", SEED_EXAMPLE, egress=sagemaker)
    assert isinstance(config, ExternalEndpointConfig)
    dumped = config.model_dump(by_alias=True)
    assert dumped["authConfig"]["headerName"] == "x-api-key"
    assert dumped["responseMapping"] == {
        "batchScoresPath": "scores",
        "scorePath": "score",
        "fallbackScore": 0.5,
        "explanationPath": None,
    }
    assert dumped["cache"] == {"enabled": False, "ttlSeconds": 60, "maxEntries": 10_000}
    assert dumped["circuitBreaker"] == {"failureThreshold": 5, "resetTimeoutMs": 30_000}
    assert dumped["requestFormat"] == {
        "instancesKey": "instances",
        "singleKey": None,
        "fields": None,
    }
    minimal = config_of("external_endpoint", {"endpointUrl": "http://model:8080/predict"})
    assert minimal.model_dump(by_alias=True)["authType"] == "none"
    assert minimal.model_dump(by_alias=True)["scoringMode"] == "batch"
    assert minimal.model_dump(by_alias=True)["timeoutMs"] == 200


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "endpointUrl"),
        ({"endpointUrl": "ftp://models.example.com/x"}, "http or https"),
        ({"endpointUrl": "file:///etc/passwd"}, "http or https"),
        ({"endpointUrl": "models.example.com/score"}, "http or https"),
        ({"endpointUrl": "https:///no-host"}, "no host"),
        ({"endpointUrl": "https://user:pw@models.example.com/"}, "must not carry credentials"),
        ({"endpointUrl": "https://m.example.com:99999/"}, "invalid port"),
        ({"endpointUrl": "https://m", "authType": "api_key"}, "authConfig.apiKey"),
        ({"endpointUrl": "https://m", "authType": "bearer"}, "authConfig.token"),
        ({"endpointUrl": "https://m", "authType": "aws_sigv4"}, "authConfig.awsRegion"),
        ({"endpointUrl": "https://m", "authType": "oauth"}, "authType"),
        (
            {
                "endpointUrl": "https://m",
                "authType": "aws_sigv4",
                "authConfig": {"awsRegion": "us-east-1", "accessKeyId": "AKID"},
            },
            "go together",
        ),
        ({"endpointUrl": "https://m", "scoringMode": "stream"}, "scoringMode"),
        ({"endpointUrl": "https://m", "timeoutMs": 0}, "timeoutMs"),
        ({"endpointUrl": "https://m", "responseMapping": {"fallbackScore": 1.5}}, "fallbackScore"),
        ({"endpointUrl": "https://m", "responseMapping": {"scorePath": "a[x]"}}, "invalid path"),
        ({"endpointUrl": "https://m", "authConfig": {"apiKy": "k"}}, "apiKy"),
        ({"endpointUrl": "https://m", "cache": {"ttlSeconds": 0}}, "ttlSeconds"),
        (
            {"endpointUrl": "https://m", "circuitBreaker": {"failureThreshold": 0}},
            "failureThreshold",
        ),
    ],
)
def test_bad_config_is_refused_with_the_field_named(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config_of("external_endpoint", config)
    assert message in str(caught.value)


def test_secrets_are_marked_redactable_and_never_shown() -> None:
    assert SECRET_FIELDS == (
        "authConfig.apiKey",
        "authConfig.token",
        "authConfig.secretAccessKey",
        "authConfig.sessionToken",
    )
    raw: dict[str, Any] = {
        "endpointUrl": "https://m",
        "authType": "aws_sigv4",
        "authConfig": {
            "awsRegion": "us-east-1",
            "accessKeyId": ACCESS_KEY,
            "secretAccessKey": SECRET_KEY,
            "sessionToken": "TOKEN-XYZ",
        },
    }
    assert redact_secrets(raw)["authConfig"] == {
        "awsRegion": "us-east-1",
        "accessKeyId": ACCESS_KEY,
        "secretAccessKey": "***",
        "sessionToken": "***",
    }
    assert raw["authConfig"]["secretAccessKey"] == SECRET_KEY  # the input is not modified
    engine = build_engine("external_endpoint", raw, egress=LOOPBACK_EGRESS)
    assert isinstance(engine, Engine)
    shown = repr(engine.config) + repr(engine) + json.dumps(engine.state())
    assert SECRET_KEY not in shown and "TOKEN-XYZ" not in shown


# -- scoring -----------------------------------------------------------------------------------


def test_batch_mode_sends_every_candidate_in_one_request(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server)
    candidates = _candidates()
    scores = engine.score(candidates)
    assert scores.dtype == np.float64 and scores.shape == (3,)
    np.testing.assert_array_equal(scores, scoring_server.expected_scores(candidates))
    assert scoring_server.request_count == 1
    request = scoring_server.requests[0]
    assert request.path == "/invocations"
    assert request.header("content-type") == "application/json"
    assert request.json() == {
        "instances": [
            {"customerId": "c0", "offerId": "o0", "age": 30.0, "tier": "silver"},
            {"customerId": "c1", "offerId": "o1", "tier": "gold"},  # NaN age left out
            {"customerId": "c2", "offerId": "o0", "age": 32.0, "tier": "silver"},
        ]
    }
    assert engine.stats.calls == 1 and engine.stats.fallbacks == 0 and engine.available


def test_single_mode_sends_one_request_per_candidate(scoring_server: ScoringServer) -> None:
    scoring_server.configure(mode="single", scores_path="score")
    engine = _engine(scoring_server, scoringMode="single")
    candidates = _candidates(5)
    np.testing.assert_array_equal(
        engine.score(candidates), scoring_server.expected_scores(candidates)
    )
    bodies = sorted((r.json() for r in scoring_server.requests), key=lambda b: b["customerId"])
    assert [body["customerId"] for body in bodies] == ["c0", "c1", "c2", "c3", "c4"]
    assert bodies[0] == {"customerId": "c0", "offerId": "o0", "age": 30.0, "tier": "silver"}
    assert engine.stats.calls == 5


def test_single_mode_calls_run_concurrently(scoring_server: ScoringServer) -> None:
    scoring_server.configure(mode="single", scores_path="score", delay_s=0.25)
    engine = _engine(scoring_server, scoringMode="single", timeoutMs=5000, maxConcurrency=8)
    started = time.perf_counter()
    scores = engine.score(_candidates(8))
    elapsed = time.perf_counter() - started
    assert not engine.score_detailed(_candidates(1)).fallback.any()
    np.testing.assert_array_equal(scores, scoring_server.expected_scores(_candidates(8)))
    assert elapsed < 1.0, f"8 calls of 0.25 s took {elapsed:.2f} s: not concurrent"


def test_request_wrappers_and_field_selection(scoring_server: ScoringServer) -> None:
    scoring_server.configure(instances_key=None)
    engine = _engine(
        scoring_server, requestFormat={"instancesKey": None, "fields": ["age", "income"]}
    )
    candidates = _candidates(2)
    np.testing.assert_array_equal(
        engine.score(candidates), scoring_server.expected_scores(candidates)
    )
    assert scoring_server.requests[0].json() == [
        {"customerId": "c0", "offerId": "o0", "age": 30.0, "income": None},
        {"customerId": "c1", "offerId": "o1", "age": None, "income": None},
    ]
    scoring_server.configure(mode="single", single_key="input", scores_path="score")
    single = _engine(scoring_server, scoringMode="single", requestFormat={"singleKey": "input"})
    single.score(candidates.iloc[:1])
    assert scoring_server.requests[-1].json() == {
        "input": {"customerId": "c0", "offerId": "o0", "age": 30.0, "tier": "silver"}
    }


@pytest.mark.parametrize(
    ("mode", "server_shape", "mapping"),
    [
        (
            "batch",
            {"scores_path": "result.predictions", "score_item_path": "probability"},
            {"batchScoresPath": "result.predictions", "scorePath": "probability"},
        ),
        ("batch", {"scores_path": "out[1].p"}, {"batchScoresPath": "out[1].p"}),
        (
            "batch",
            {"scores_path": "predictions", "score_item_path": "[1]"},
            {"batchScoresPath": "predictions", "scorePath": "1"},
        ),
        ("batch", {"scores_path": ""}, {"batchScoresPath": ""}),
        ("single", {"scores_path": "predictions[0].score"}, {"scorePath": "predictions[0].score"}),
        ("single", {"scores_path": "data.items.2.p"}, {"scorePath": "data.items.2.p"}),
    ],
)
def test_nested_dot_path_mapping(
    scoring_server: ScoringServer,
    mode: str,
    server_shape: dict[str, Any],
    mapping: dict[str, Any],
) -> None:
    scoring_server.configure(mode=mode, **server_shape)
    engine = _engine(scoring_server, scoringMode=mode, responseMapping=mapping)
    candidates = _candidates(4)
    result = engine.score_detailed(candidates)
    assert not result.fallback.any(), result.reasons
    np.testing.assert_array_equal(result.scores, scoring_server.expected_scores(candidates))


def test_ids_only_unknown_columns_and_empty_frames(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server)
    ids_only = pd.DataFrame({"customerId": ["c9"], "offerId": ["new-offer"]})
    np.testing.assert_array_equal(engine.score(ids_only), scoring_server.expected_scores(ids_only))
    empty = _candidates().iloc[:0]
    assert engine.score(empty).shape == (0,)
    assert engine.explain(empty) == []
    assert scoring_server.request_count == 1  # nothing sent for the empty frame


# -- authentication ----------------------------------------------------------------------------


def test_api_key_header(scoring_server: ScoringServer) -> None:
    _engine(scoring_server, authType="api_key", authConfig={"apiKey": "key-123"}).score(
        _candidates(1)
    )
    _engine(
        scoring_server,
        authType="api_key",
        authConfig={"apiKey": "key-456", "headerName": "Ocp-Apim-Subscription-Key"},
    ).score(_candidates(1))
    first, second = scoring_server.requests
    assert first.header("x-api-key") == "key-123"
    assert second.header("ocp-apim-subscription-key") == "key-456"
    assert second.header("x-api-key") is None
    assert first.header("authorization") is None


def test_bearer_header(scoring_server: ScoringServer) -> None:
    _engine(scoring_server, authType="bearer", authConfig={"token": "tok-abc"}).score(
        _candidates(1)
    )
    assert scoring_server.requests[0].header("authorization") == "Bearer tok-abc"


def _sigv4_signature_valid(
    request: RecordedRequest, *, secret_key: str, region: str, service: str
) -> bool:
    """Recompute the signature server-side with botocore, from the request as received."""
    match = re.fullmatch(
        r"AWS4-HMAC-SHA256 Credential=([^/]+)/\d{8}/[^/]+/[^/]+/aws4_request, "
        r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
        request.header("authorization") or "",
    )
    if match is None:
        return False
    access_key, signed_names, signature = match.groups()
    signed = {name: request.header(name) or "" for name in signed_names.split(";")}
    received = botocore.awsrequest.AWSRequest(
        method=request.method,
        url=f"http://{request.header('host')}{request.path}",
        headers=signed,
        data=request.body,
    )
    received.context["timestamp"] = request.header("x-amz-date")
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(access_key, secret_key), service, region
    )
    canonical = signer.canonical_request(received)
    expected = signer.signature(signer.string_to_sign(received, canonical), received)
    return bool(expected == signature)


def test_aws_sigv4_signature_is_valid_on_the_server(scoring_server: ScoringServer) -> None:
    engine = _engine(
        scoring_server,
        authType="aws_sigv4",
        authConfig={
            "awsRegion": "eu-central-1",
            "awsService": "sagemaker",
            "accessKeyId": ACCESS_KEY,
            "secretAccessKey": SECRET_KEY,
            "sessionToken": "SESSION-TOKEN",
        },
    )
    candidates = _candidates()
    np.testing.assert_array_equal(
        engine.score(candidates), scoring_server.expected_scores(candidates)
    )
    request = scoring_server.requests[0]
    authorization = request.header("authorization") or ""
    date = (request.header("x-amz-date") or "")[:8]
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{date}/eu-central-1/sagemaker/aws4_request, "
    )
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in authorization
    assert request.header("x-amz-security-token") == "SESSION-TOKEN"
    assert _sigv4_signature_valid(
        request, secret_key=SECRET_KEY, region="eu-central-1", service="sagemaker"
    )
    # The check can fail: a wrong key, scope or a tampered body does not verify.
    assert not _sigv4_signature_valid(
        request, secret_key="wrong", region="eu-central-1", service="sagemaker"
    )
    assert not _sigv4_signature_valid(
        request, secret_key=SECRET_KEY, region="us-east-1", service="sagemaker"
    )
    tampered = RecordedRequest(request.method, request.path, request.headers, request.body + b" ")
    assert not _sigv4_signature_valid(
        tampered, secret_key=SECRET_KEY, region="eu-central-1", service="sagemaker"
    )


def _isolate_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_aws_sigv4_default_credential_chain(
    scoring_server: ScoringServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _isolate_aws_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    engine = _engine(
        scoring_server,
        SIGNING_LOOPBACK,
        authType="aws_sigv4",
        authConfig={"awsRegion": "us-west-2"},
    )
    assert not engine.score_detailed(_candidates(1)).fallback.any()
    request = scoring_server.requests[0]
    assert "Credential=AKIDFROMENVIRONMENT/" in (request.header("authorization") or "")
    assert "/us-west-2/sagemaker/aws4_request" in (request.header("authorization") or "")
    assert _sigv4_signature_valid(
        request, secret_key=SECRET_KEY, region="us-west-2", service="sagemaker"
    )


def test_aws_sigv4_without_credentials_falls_back_without_calling(
    scoring_server: ScoringServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _isolate_aws_environment(monkeypatch, tmp_path)
    engine = _engine(
        scoring_server,
        SIGNING_LOOPBACK,
        authType="aws_sigv4",
        authConfig={"awsRegion": "us-east-1"},
    )
    with structlog.testing.capture_logs() as logs:
        np.testing.assert_array_equal(engine.score(_candidates(2)), [0.5, 0.5])
    assert scoring_server.request_count == 0
    assert engine.last_error == "endpoint_credentials_unavailable"
    assert "no AWS credentials" in logs[0]["detail"]


# -- failures and fallback ---------------------------------------------------------------------


def test_timeout_falls_back_quickly(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server, timeoutMs=100, responseMapping={"fallbackScore": 0.37})
    engine.score(_candidates(1))  # connect once, so the timing below is the read timeout
    scoring_server.configure(delay_s=2.0)
    started = time.perf_counter()
    result = engine.score_detailed(_candidates())
    elapsed = time.perf_counter() - started
    np.testing.assert_array_equal(result.scores, [0.37, 0.37, 0.37])
    assert result.fallback.all()
    assert elapsed < 1.0, f"timed-out call took {elapsed:.2f} s against a 2 s delay"
    assert engine.last_error == "endpoint_timeout"
    assert engine.stats.failures == 1 and engine.stats.fallbacks == 3


def test_a_trickling_answer_is_cut_off_at_the_deadline(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server, timeoutMs=200)
    engine.score(_candidates(1))
    # Ten pieces 0.15 s apart: no single read waits 200 ms, the whole answer takes 1.5 s.
    scoring_server.configure(drip_s=0.15)
    started = time.perf_counter()
    result = engine.score_detailed(_candidates())
    elapsed = time.perf_counter() - started
    assert result.fallback.all()
    assert elapsed < 0.8, f"trickled answer held the call {elapsed:.2f} s"
    assert engine.last_error == "endpoint_timeout"


@pytest.mark.parametrize(
    ("behaviour", "reason", "detail"),
    [
        ({"status": 500}, "endpoint_http_error", "HTTP 500"),
        ({"status": 404}, "endpoint_http_error", "HTTP 404"),
        ({"raw_body": b"<html>oops</html>"}, "endpoint_invalid_response", "not JSON"),
        ({"extra_scores": -1}, "endpoint_invalid_response", "2 scores for 3 instances"),
        ({"extra_scores": 1}, "endpoint_invalid_response", "4 scores for 3 instances"),
        ({"model": lambda instance: 1.7}, "endpoint_invalid_response", "outside [0, 1]"),
        ({"model": lambda instance: -0.2}, "endpoint_invalid_response", "outside [0, 1]"),
        ({"model": lambda i: "0.5"}, "endpoint_invalid_response", "a string, not a number"),
        ({"model": lambda i: None}, "endpoint_invalid_response", "null, not a number"),
        ({"model": lambda i: True}, "endpoint_invalid_response", "a boolean, not a number"),
        ({"scores_path": "predictions"}, "endpoint_invalid_response", "no 'scores'"),
    ],
)
def test_bad_answers_fall_back_and_count_as_failures(
    scoring_server: ScoringServer, behaviour: dict[str, Any], reason: str, detail: str
) -> None:
    scoring_server.configure(**behaviour)
    engine = _engine(scoring_server, responseMapping={"fallbackScore": 0.37})
    with structlog.testing.capture_logs() as logs:
        result = engine.score_detailed(_candidates())
    np.testing.assert_array_equal(result.scores, [0.37, 0.37, 0.37])
    assert result.fallback.all()
    # The tenant sees a category; what the answer held is only in the server log.
    assert result.reasons == [reason] * 3
    assert engine.last_error == reason
    assert detail in logs[0]["detail"]
    assert engine.stats.failures == 1 and engine.stats.calls == 1
    explanation = engine.explain(_candidates(1))[0]
    assert explanation.score == 0.37 and explanation.details[0]["fallback"] is True


def test_connection_refused_falls_back() -> None:
    with ScoringServer() as server:
        url = server.url
    engine = build_engine("external_endpoint", {"endpointUrl": url}, egress=LOOPBACK_EGRESS)
    assert isinstance(engine, Engine)
    np.testing.assert_array_equal(engine.score(_candidates(2)), [0.5, 0.5])
    assert engine.last_error == "endpoint_unreachable"


def test_redirects_are_not_followed(scoring_server: ScoringServer) -> None:
    scoring_server.configure(status=307)
    engine = _engine(scoring_server)
    with structlog.testing.capture_logs() as logs:
        np.testing.assert_array_equal(engine.score(_candidates(1)), [0.5])
    assert engine.last_error == "endpoint_http_error"
    assert "HTTP 307" in logs[0]["detail"]


def test_one_failing_call_in_single_mode_falls_back_for_its_candidate_only(
    scoring_server: ScoringServer,
) -> None:
    failing_customer = "c1"

    def model(instance: dict[str, Any]) -> Any:
        return "broken" if instance["customerId"] == failing_customer else 0.8

    scoring_server.configure(mode="single", scores_path="score", model=model)
    engine = _engine(scoring_server, scoringMode="single", responseMapping={"fallbackScore": 0.1})
    result = engine.score_detailed(_candidates(3))
    np.testing.assert_array_equal(result.scores, [0.8, 0.1, 0.8])
    np.testing.assert_array_equal(result.fallback, [False, True, False])
    assert engine.stats.failures == 1 and engine.stats.calls == 3


def test_errors_and_logs_never_carry_secrets(scoring_server: ScoringServer) -> None:
    scoring_server.configure(status=401)
    engine = _engine(scoring_server, authType="bearer", authConfig={"token": "tok-SECRET"})
    with structlog.testing.capture_logs() as logs:
        engine.score(_candidates(1))
    assert logs and logs[0]["event"] == "external endpoint call failed"
    assert "tok-SECRET" not in repr(logs) + (engine.last_error or "") + repr(engine.stats)
    assert logs[0]["reason"] == "endpoint_http_error"
    assert logs[0]["detail"] == "endpoint answered HTTP 401 Unauthorized"


# -- circuit breaker ---------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_stops_calling(
    scoring_server: ScoringServer,
) -> None:
    scoring_server.configure(status=503)
    engine = _engine(scoring_server, circuitBreaker={"failureThreshold": 3})
    for _ in range(3):
        assert engine.available
        engine.score(_candidates())
    assert scoring_server.request_count == 3
    assert not engine.available and engine.stats.circuit_state == "open"
    scoring_server.configure(status=200)
    result = engine.score_detailed(_candidates())
    np.testing.assert_array_equal(result.scores, [0.5, 0.5, 0.5])
    assert result.reasons == [SHORT_CIRCUITED] * 3
    assert scoring_server.request_count == 3  # the open breaker sent nothing
    assert engine.stats.short_circuits == 1 and engine.stats.failures == 3


def test_breaker_half_opens_after_reset_timeout_and_closes_on_success(
    scoring_server: ScoringServer,
) -> None:
    scoring_server.fail_next(2, status=500)
    engine = _engine(scoring_server, circuitBreaker={"failureThreshold": 2, "resetTimeoutMs": 150})
    engine.score(_candidates())
    engine.score(_candidates())
    assert not engine.available
    time.sleep(0.2)
    assert engine.available and engine.stats.circuit_state == "half_open"
    candidates = _candidates()
    np.testing.assert_array_equal(
        engine.score(candidates), scoring_server.expected_scores(candidates)
    )
    assert scoring_server.request_count == 3  # exactly one trial call
    assert engine.stats.circuit_state == "closed" and engine.last_error is None


def test_failed_trial_reopens_the_breaker(scoring_server: ScoringServer) -> None:
    scoring_server.configure(status=500)
    engine = _engine(scoring_server, circuitBreaker={"failureThreshold": 2, "resetTimeoutMs": 150})
    engine.score(_candidates())
    engine.score(_candidates())
    time.sleep(0.2)
    engine.score(_candidates())  # the trial fails
    assert scoring_server.request_count == 3
    assert not engine.available
    engine.score(_candidates())
    assert scoring_server.request_count == 3
    time.sleep(0.2)
    scoring_server.configure(status=200)
    assert not engine.score_detailed(_candidates()).fallback.any()
    assert engine.available


def test_breaker_stops_single_mode_calls_part_way(scoring_server: ScoringServer) -> None:
    scoring_server.configure(mode="single", scores_path="score", status=500)
    engine = _engine(
        scoring_server,
        scoringMode="single",
        maxConcurrency=1,
        circuitBreaker={"failureThreshold": 3},
    )
    result = engine.score_detailed(_candidates(10))
    assert scoring_server.request_count == 3
    assert result.fallback.all()
    assert result.reasons.count(SHORT_CIRCUITED) == 7
    assert engine.stats.short_circuits == 7


# -- cache -------------------------------------------------------------------------------------


def test_cache_avoids_repeated_calls_and_expires(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server, cache={"enabled": True, "ttlSeconds": 0.6})
    candidates = _candidates()
    first = engine.score(candidates)
    second = engine.score(candidates)
    np.testing.assert_array_equal(first, second)
    assert scoring_server.request_count == 1
    assert engine.stats.cache_hits == 3
    # A partly new batch asks only for the instances not cached.
    changed = candidates.copy()
    changed.loc[2, "tier"] = "platinum"
    engine.score(changed)
    assert scoring_server.requests[-1].json()["instances"] == [
        {"customerId": "c2", "offerId": "o0", "age": 32.0, "tier": "platinum"}
    ]
    time.sleep(0.65)
    engine.score(candidates)
    assert scoring_server.request_count == 3
    assert len(scoring_server.requests[-1].json()["instances"]) == 3


def test_cache_deduplicates_and_never_keeps_fallbacks(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server, cache={"enabled": True})
    twice = pd.concat([_candidates(2), _candidates(2)], ignore_index=True)
    scoring_server.configure(status=500)
    np.testing.assert_array_equal(engine.score(twice), [0.5] * 4)
    assert len(scoring_server.requests[-1].json()["instances"]) == 2
    scoring_server.configure(status=200)
    scores = engine.score(twice)
    np.testing.assert_array_equal(scores, scoring_server.expected_scores(twice))
    assert scoring_server.request_count == 2  # the failure was not cached


def test_without_cache_every_score_calls(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server)
    engine.score(_candidates())
    engine.score(_candidates())
    assert scoring_server.request_count == 2 and engine.stats.cache_hits == 0


# -- explanations ------------------------------------------------------------------------------


def _explainer(instance: dict[str, Any]) -> dict[str, float]:
    return {"age": 0.25, "tier": -0.5 if instance.get("tier") == "gold" else 0.5}


def test_explanations_from_the_batch_answer(scoring_server: ScoringServer) -> None:
    scoring_server.configure(explanations_path="explanations", explainer=_explainer)
    engine = _engine(scoring_server, responseMapping={"explanationPath": "explanations"})
    candidates = _candidates(2)
    explanations = engine.explain(candidates)
    assert [e.score for e in explanations] == scoring_server.expected_scores(candidates)
    assert explanations[1].engine == "external_endpoint"
    assert explanations[1].details == [
        {"field": "age", "contribution": 0.25},
        {"field": "tier", "contribution": -0.5},
    ]
    assert explanations[1].confidence is None


def test_explanations_in_single_mode_and_when_absent(scoring_server: ScoringServer) -> None:
    scoring_server.configure(
        mode="single",
        scores_path="result.score",
        explanations_path="result.why",
        explainer=lambda instance: [{"reason": f"likes {instance['offerId']}"}],
    )
    engine = _engine(
        scoring_server,
        scoringMode="single",
        responseMapping={"scorePath": "result.score", "explanationPath": "result.why"},
    )
    assert engine.explain(_candidates(1))[0].details == [{"reason": "likes o0"}]
    plain = _engine(
        scoring_server, scoringMode="single", responseMapping={"scorePath": "result.score"}
    )
    assert plain.explain(_candidates(1))[0].details == []
    misconfigured = _engine(
        scoring_server,
        scoringMode="single",
        responseMapping={"scorePath": "result.score", "explanationPath": "result.nothing"},
    )
    explanation = misconfigured.explain(_candidates(1))[0]
    assert explanation.score == scoring_server.expected_scores(_candidates(1))[0]
    assert explanation.details == [{"error": "explanation_unavailable"}]


# -- engine contract ---------------------------------------------------------------------------


def test_contract_basics(scoring_server: ScoringServer) -> None:
    engine = _engine(scoring_server)
    assert isinstance(engine, ScoringEngine)
    assert engine.is_trained
    assert engine.fit(_candidates(), np.array([1, 0, 1])) is engine
    with pytest.raises(ValueError):
        engine.fit(_candidates(), np.array([1, 0]))
    assert engine.state() == {}
    assert engine.load_state(json.loads(json.dumps(engine.state()))) is engine
    with pytest.raises(ValueError, match="keeps no model state"):
        engine.load_state({"weights": [1.0]})
    assert scoring_server.request_count == 0  # nothing above calls the endpoint


def test_copies_and_pickles_start_fresh_and_close_releases(scoring_server: ScoringServer) -> None:
    scoring_server.configure(status=500)
    engine = _engine(scoring_server, circuitBreaker={"failureThreshold": 1})
    engine.score(_candidates())
    assert not engine.available
    for clone in (copy.deepcopy(engine), pickle.loads(pickle.dumps(engine))):
        assert clone.available and clone.stats.calls == 0
        assert clone.config == engine.config
    scoring_server.configure(status=200)
    with engine:
        assert not engine.available
    assert engine.available and engine.stats.calls == 0  # closed: fresh breaker and counters
    candidates = _candidates()
    np.testing.assert_array_equal(
        engine.score(candidates), scoring_server.expected_scores(candidates)
    )
    engine.close()
