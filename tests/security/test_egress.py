"""Issue 10, defects 1 and 2: the egress policy of calls made on a tenant's behalf.

Every probe of the review is a case here. Tests never send traffic off this machine:

- private, link-local and metadata targets are only validated and refused; a process-wide audit
  hook (:func:`connections`) records every ``socket.connect`` and the tests assert that a refused
  call made none at all;
- what must be reachable is a real listener on loopback (127.0.0.1, 127.0.0.2, ::1) that counts
  the connections it accepts: zero when denied, more when the operator allow-lists it;
- DNS answers come from an injected resolver (rebinding cases), never from the network;
- ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` point at a dead loopback port throughout.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import structlog
from pydantic import ValidationError

from mlworker.config import Settings
from mlworker.egress import (
    EgressDenied,
    EgressPolicy,
    address_denial,
    normalise_host,
    parse_address_literal,
)
from mlworker.engines import build_engine, config_of
from mlworker.engines.external_endpoint import Engine
from mlworker.engines.http_scoring.auth import NoAuth, SigV4Auth
from mlworker.engines.http_scoring.transport import (
    CREDENTIALS_UNAVAILABLE,
    HTTP_ERROR,
    INVALID_RESPONSE,
    MAX_RESPONSE_BYTES,
    REFUSED_BY_EGRESS_POLICY,
    EndpointCallError,
    JsonEndpoint,
)
from tests.engines.scoring_server import LOOPBACK_ALLOW, LOOPBACK_EGRESS, ScoringServer
from tests.support import free_port

# --- connection audit ---------------------------------------------------------------------------

_AUDIT_LOCK = threading.Lock()
_RECORDING: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _RECORDING:
        address = args[1]
        host = address[0] if isinstance(address, tuple) else str(address)
        with _AUDIT_LOCK:
            for recording in _RECORDING:
                recording.append(str(host))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only inside connections()


class connections:  # noqa: N801 - used like a function: ``with connections() as made``
    """Record the hosts of every ``socket.connect`` the process makes inside the block."""

    def __enter__(self) -> list[str]:
        self.made: list[str] = []
        with _AUDIT_LOCK:
            _RECORDING.append(self.made)
        return self.made

    def __exit__(self, *exc: object) -> None:
        with _AUDIT_LOCK:
            _RECORDING.remove(self.made)


@pytest.fixture(autouse=True)
def _dead_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy from the environment would defeat the address check: point it nowhere."""
    dead = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


@pytest.fixture
def listener() -> Iterator[ScoringServer]:
    with ScoringServer() as server:
        yield server


@pytest.fixture
def listener6() -> Iterator[ScoringServer]:
    with ScoringServer(host="::1") as server:
        yield server


# --- the probes of the review -------------------------------------------------------------------

#: ``host[:port]`` templates; ``{p}`` is the IPv4 loopback listener's port, ``{p6}`` the IPv6 one.
PROBES = [
    "http://127.0.0.1:{p}/invocations",
    "http://localhost:{p}/invocations",
    "http://[::1]:{p6}/invocations",
    "http://0.0.0.0:{p}/invocations",
    "http://2130706433:{p}/invocations",
    "http://127.1:{p}/invocations",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/score",
    "https://127.0.0.1:{p}/invocations",
    # other spellings of the same targets
    "http://0x7f.0.0.1:{p}/invocations",
    "http://0177.0.0.1:{p}/invocations",
    "http://0x7f000001:{p}/invocations",
    "http://127.0.0.1.:{p}/invocations",
    "http://LOCALHOST.:{p}/invocations",
    "http://api.localhost:{p}/invocations",
    "http://[::ffff:127.0.0.1]:{p}/invocations",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[::127.0.0.1]:{p}/invocations",
    "http://[::]:{p6}/invocations",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://metadata/computeMetadata/v1/",
    "http://metadata.google.internal./computeMetadata/v1/",
    "http://instance-data/latest/meta-data/",
    "http://instance-data.ec2.internal/latest/",
]


def _url(template: str, listener: ScoringServer, listener6: ScoringServer) -> str:
    return template.format(p=listener.port, p6=listener6.port)


@pytest.mark.parametrize("template", PROBES)
def test_every_probe_is_refused_when_saved(template: str) -> None:
    url = template.format(p=8080, p6=8080)
    with connections() as made:
        with pytest.raises(ValidationError) as refused:
            config_of("external_endpoint", {"endpointUrl": url}, egress=EgressPolicy())
    assert refused.value.errors()[0]["loc"] == ("endpointUrl",)
    assert "egress policy" in str(refused.value)
    assert made == []


@pytest.mark.parametrize("template", PROBES)
def test_every_probe_is_refused_at_connect_time_before_any_connection(
    template: str, listener: ScoringServer, listener6: ScoringServer
) -> None:
    # Past the static check (a URL stored before the policy existed, or a config built
    # without it), the transport itself must refuse: nothing may reach the listeners.
    url = _url(template, listener, listener6)
    with connections() as made:
        try:
            endpoint = JsonEndpoint(
                url,
                timeout_s=2.0,
                authenticator=NoAuth(),
                egress=EgressPolicy(resolver=_resolver_never_called),
                max_keepalive=1,
            )
        except httpx.InvalidURL:  # httpx cannot even parse it: nothing can be connected to
            assert made == []
            return
        with pytest.raises(EndpointCallError) as refused:
            endpoint.post({"instances": []})
        endpoint.close()
    assert refused.value.reason == REFUSED_BY_EGRESS_POLICY
    assert made == []
    assert listener.accepted_connections == 0 and listener6.accepted_connections == 0


def _resolver_never_called(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} was resolved; a denied name must be refused unresolved")


def test_old_behaviour_is_reproduced_only_through_the_allow_list(
    listener: ScoringServer, listener6: ScoringServer
) -> None:
    """The operator path: loopback allow-listed, the same listeners are reached."""
    for url in (listener.url, f"http://[::1]:{listener6.port}/invocations"):
        engine = build_engine("external_endpoint", {"endpointUrl": url}, egress=LOOPBACK_EGRESS)
        assert not engine.score_detailed(_candidates()).fallback.any()  # type: ignore[attr-defined]
    assert listener.accepted_connections == 1 and listener6.accepted_connections == 1


# --- normalisation and the policy as a value -----------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("１２７.０.０.１", "127.0.0.1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_literal_spellings_are_normalised(spelling: str, address: str) -> None:
    assert parse_address_literal(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["models.example.com", "256.1.1.1", "1.2.3.4.5", "08.1.1.1", "127.0.0.1x", "1..1"]
)
def test_names_are_not_mistaken_for_addresses(host: str) -> None:
    assert parse_address_literal(host) is None


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("100.64.0.1", "shared-address-space"),
        ("10.0.0.1", "private"),
        ("192.0.2.1", "private"),
        ("240.0.0.1", "reserved"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("fc00::1", "private"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_categories(address: str, why: str | None) -> None:
    assert address_denial(ipaddress.ip_address(address)) == why


def test_public_targets_pass_the_static_check_without_any_lookup() -> None:
    policy = EgressPolicy(resolver=_resolver_never_called)
    with connections() as made:
        policy.check_url("https://models.example.com/score")
        policy.check_url("https://8.8.8.8/score")
        config_of(
            "external_endpoint", {"endpointUrl": "https://models.example.com/s"}, egress=policy
        )
    assert made == []


def test_allow_list_networks_hosts_and_suffixes() -> None:
    policy = EgressPolicy.from_entries(
        ["127.0.0.1/32", "10.20.0.0/16", "models.internal", ".corp.example"],
        resolver=lambda host, port: ["10.99.0.1"],
    )
    policy.check_url("http://127.0.0.1:9/x")
    policy.check_url("http://[::ffff:127.0.0.1]:9/x")  # the same address, mapped
    policy.check_url("http://10.20.3.4/x")
    with pytest.raises(EgressDenied):
        policy.check_url("http://127.0.0.2/x")
    with pytest.raises(EgressDenied):
        policy.check_url("http://10.21.0.1/x")
    # An allow-listed name may resolve to whatever its operator points it at.
    assert policy.vetted_addresses("models.internal", 80) == [ipaddress.ip_address("10.99.0.1")]
    assert policy.vetted_addresses("gpu.corp.example", 80) == [ipaddress.ip_address("10.99.0.1")]
    with pytest.raises(EgressDenied):
        policy.vetted_addresses("other.example", 80)


@pytest.mark.parametrize("entry", ["http://models/", "10.0.0.0/33", "a b", "models:8080"])
def test_bad_allow_list_entries_fail_at_startup(entry: str) -> None:
    with pytest.raises(ValidationError, match="egress"):
        Settings(_env_file=None, egress_allow=entry)  # type: ignore[call-arg]


def test_settings_build_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLWORKER_EGRESS_ALLOW", "127.0.0.1/32, models.internal")
    monkeypatch.setenv("MLWORKER_EGRESS_AWS_CREDENTIAL_HOSTS", ".sagemaker.amazonaws.com")
    policy = Settings(_env_file=None).egress_policy  # type: ignore[call-arg]
    assert policy.allow_networks == (ipaddress.ip_network("127.0.0.1/32"),)
    assert policy.allow_hosts == ("models.internal",)
    assert policy.may_use_server_credentials("runtime.sagemaker.amazonaws.com")
    assert not Settings(_env_file=None, egress_allow="").egress_policy.allow_networks  # type: ignore[call-arg]


def test_normalise_host() -> None:
    assert normalise_host(" Metadata.Google.Internal. ") == "metadata.google.internal"


# --- DNS rebinding: every resolved address, at connect time --------------------------------------


class ScriptedResolver:
    """Answers each lookup with the next scripted list of addresses; records the lookups."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self._answers = list(answers)
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return list(self._answers.pop(0) if len(self._answers) > 1 else self._answers[0])


def _candidates(count: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"customerId": [f"c{i}" for i in range(count)], "offerId": ["o"] * count})


def _rebinding_engine(policy: EgressPolicy, port: int) -> Engine:
    engine = build_engine(
        "external_endpoint",
        {"endpointUrl": f"http://scores.rebind.test:{port}/invocations", "timeoutMs": 2000},
        egress=policy,
    )
    assert isinstance(engine, Engine)
    return engine


def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(
    listener: ScoringServer,
) -> None:
    resolver = ScriptedResolver(["127.0.0.1"])
    engine = _rebinding_engine(EgressPolicy(resolver=resolver), listener.port)
    with connections() as made:
        result = engine.score_detailed(_candidates())
    assert result.reasons == [REFUSED_BY_EGRESS_POLICY] * 2
    assert resolver.lookups == ["scores.rebind.test"]
    assert made == [] and listener.accepted_connections == 0


def test_a_name_that_resolves_to_public_and_internal_addresses_is_refused_unconnected() -> None:
    resolver = ScriptedResolver(["93.184.216.34", "127.0.0.1"])
    with pytest.raises(EgressDenied, match="loopback"):
        EgressPolicy(resolver=resolver).vetted_addresses("scores.rebind.test", 443)
    # Through the transport: refused before any socket is opened, public address included.
    endpoint = JsonEndpoint(
        "https://scores.rebind.test/invocations",
        timeout_s=1.0,
        authenticator=NoAuth(),
        egress=EgressPolicy(resolver=ScriptedResolver(["93.184.216.34", "169.254.169.254"])),
        max_keepalive=1,
    )
    with connections() as made, pytest.raises(EndpointCallError) as refused:
        endpoint.post({})
    assert refused.value.reason == REFUSED_BY_EGRESS_POLICY and made == []


def test_one_denied_address_among_allowed_ones_refuses_the_name() -> None:
    with ScoringServer() as denied, ScoringServer(host="127.0.0.2") as allowed:
        policy = EgressPolicy.from_entries(
            ["127.0.0.2/32"], resolver=ScriptedResolver(["127.0.0.2", "127.0.0.1"])
        )
        # Both listeners on one port number would be needed for a real mix; the check refuses
        # before choosing an address, so neither is ever contacted.
        engine = _rebinding_engine(policy, allowed.port)
        with connections() as made:
            result = engine.score_detailed(_candidates())
        assert result.reasons == [REFUSED_BY_EGRESS_POLICY] * 2 and made == []
        assert denied.accepted_connections == 0 and allowed.accepted_connections == 0


def test_rebinding_after_a_good_answer_is_caught_on_the_next_connection() -> None:
    with ScoringServer(host="127.0.0.2") as good, ScoringServer() as internal:
        # 127.0.0.2 stands in for a permitted (public) address: allow-listed, loopback-only.
        resolver = ScriptedResolver(["127.0.0.2"], ["127.0.0.1"])
        policy = EgressPolicy.from_entries(["127.0.0.2/32"], resolver=resolver)
        engine = _rebinding_engine(policy, good.port)
        assert not engine.score_detailed(_candidates()).fallback.any()
        assert good.accepted_connections == 1
        engine.close()  # the next call opens a new connection and resolves again
        with connections() as made:
            result = engine.score_detailed(_candidates())
        assert result.reasons == [REFUSED_BY_EGRESS_POLICY] * 2
        assert resolver.lookups == ["scores.rebind.test"] * 2
        assert made == [] and internal.accepted_connections == 0


def test_the_connection_goes_to_the_vetted_address_with_the_name_in_host() -> None:
    with ScoringServer() as server:
        resolver = ScriptedResolver(["127.0.0.1"])
        policy = EgressPolicy.from_entries(["models.internal"], resolver=resolver)
        engine = build_engine(
            "external_endpoint",
            {"endpointUrl": f"http://models.internal:{server.port}/invocations"},
            egress=policy,
        )
        with connections() as made:
            assert not engine.score_detailed(_candidates()).fallback.any()  # type: ignore[attr-defined]
        assert made == ["127.0.0.1"] and resolver.lookups == ["models.internal"]
        assert server.requests[0].header("host") == f"models.internal:{server.port}"


# --- redirects, response size, proxies -----------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://127.0.0.1:{p}/x"],
)
def test_redirects_are_never_followed(listener: ScoringServer, location: str) -> None:
    with ScoringServer() as target:
        listener.configure(status=302, location=location.format(p=target.port))
        engine = build_engine(
            "external_endpoint", {"endpointUrl": listener.url}, egress=LOOPBACK_EGRESS
        )
        with connections() as made, structlog.testing.capture_logs() as logs:
            result = engine.score_detailed(_candidates())  # type: ignore[attr-defined]
        assert result.reasons == [HTTP_ERROR] * 2
        assert "HTTP 302" in logs[0]["detail"]
        assert made == ["127.0.0.1"]  # the listener only
        assert target.accepted_connections == 0 and listener.request_count == 1


def test_answers_are_bounded(listener: ScoringServer) -> None:
    assert MAX_RESPONSE_BYTES == 16 * 1024 * 1024
    listener.configure(raw_body=b'{"scores": [' + b"0.5, " * 2000 + b"0.5]}")
    endpoint = JsonEndpoint(
        listener.url,
        timeout_s=2.0,
        authenticator=NoAuth(),
        egress=LOOPBACK_EGRESS,
        max_keepalive=1,
        max_response_bytes=4096,
    )
    with pytest.raises(EndpointCallError) as refused:
        endpoint.post({"instances": []})
    assert refused.value.reason == INVALID_RESPONSE and "4096 bytes" in refused.value.detail
    endpoint.close()


def test_environment_proxies_are_not_used(listener: ScoringServer) -> None:
    # The autouse fixture points every proxy variable at a dead port: a client that trusted
    # them would fail here instead of reaching the (allow-listed) listener directly.
    engine = build_engine(
        "external_endpoint", {"endpointUrl": listener.url}, egress=LOOPBACK_EGRESS
    )
    with connections() as made:
        assert not engine.score_detailed(_candidates()).fallback.any()  # type: ignore[attr-defined]
    assert made == ["127.0.0.1"] and listener.accepted_connections == 1


def test_netrc_credentials_are_not_sent(
    listener: ScoringServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login server-user password server-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    engine = build_engine(
        "external_endpoint", {"endpointUrl": listener.url}, egress=LOOPBACK_EGRESS
    )
    engine.score(_candidates())
    assert listener.requests[0].header("authorization") is None


# --- the server's own AWS credentials ------------------------------------------------------------

FAKE_KEY_ID = "AKIAFAKESERVERKEY123"
FAKE_SECRET = "fake/server/secret/key/0123456789abcdefghij"
FAKE_TOKEN = "FAKE-SERVER-SESSION-TOKEN"


@pytest.fixture
def server_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The process has AWS credentials in its environment, as a deployed server would."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _server_credentials_seen(server: ScoringServer) -> bool:
    seen = repr([request.headers for request in server.requests])
    return FAKE_KEY_ID in seen or FAKE_TOKEN in seen


SIGV4_NO_KEYS = {"authType": "aws_sigv4", "authConfig": {"awsRegion": "us-east-1"}}


@pytest.mark.usefixtures("server_aws_credentials")
def test_sigv4_without_keys_is_refused_when_saved(listener: ScoringServer) -> None:
    for url in (listener.url, "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/x"):
        with pytest.raises(ValidationError) as refused:
            config_of(
                "external_endpoint", {"endpointUrl": url, **SIGV4_NO_KEYS}, egress=LOOPBACK_EGRESS
            )
        assert refused.value.errors()[0]["loc"] == ("authConfig",)
        assert "accessKeyId" in str(refused.value)
    assert listener.accepted_connections == 0


@pytest.mark.usefixtures("server_aws_credentials")
def test_sigv4_without_keys_never_signs_with_the_server_credentials_at_call_time(
    listener: ScoringServer,
) -> None:
    endpoint = JsonEndpoint(
        listener.url,
        timeout_s=2.0,
        authenticator=SigV4Auth(region="us-east-1", service="sagemaker"),
        egress=LOOPBACK_EGRESS,
        max_keepalive=1,
    )
    with pytest.raises(EndpointCallError) as refused:
        endpoint.post({"instances": []})
    endpoint.close()
    assert refused.value.reason == CREDENTIALS_UNAVAILABLE
    assert listener.accepted_connections == 0 and not _server_credentials_seen(listener)


@pytest.mark.usefixtures("server_aws_credentials")
def test_tenant_keys_sign_and_server_credentials_stay_home(listener: ScoringServer) -> None:
    engine = build_engine(
        "external_endpoint",
        {
            "endpointUrl": listener.url,
            "authType": "aws_sigv4",
            "authConfig": {
                "awsRegion": "us-east-1",
                "accessKeyId": "AKIATENANTKEY0000000",
                "secretAccessKey": "tenant-secret",
            },
        },
        egress=LOOPBACK_EGRESS,
    )
    assert not engine.score_detailed(_candidates()).fallback.any()  # type: ignore[attr-defined]
    assert "Credential=AKIATENANTKEY0000000/" in (
        listener.requests[0].header("authorization") or ""
    )
    assert not _server_credentials_seen(listener)


@pytest.mark.usefixtures("server_aws_credentials")
def test_server_credentials_sign_only_for_hosts_the_operator_lists(listener: ScoringServer) -> None:
    listed = EgressPolicy.from_entries(
        LOOPBACK_ALLOW.split(","), aws_credential_hosts=["127.0.0.1"]
    )
    engine = build_engine(
        "external_endpoint", {"endpointUrl": listener.url, **SIGV4_NO_KEYS}, egress=listed
    )
    assert not engine.score_detailed(_candidates()).fallback.any()  # type: ignore[attr-defined]
    assert _server_credentials_seen(listener)  # the operator's explicit choice
    listener.clear()
    # The same stored config under a policy without the listing: never signed, never sent.
    unlisted = build_engine("external_endpoint", engine.config, egress=LOOPBACK_EGRESS)  # type: ignore[attr-defined]
    result = unlisted.score_detailed(_candidates())  # type: ignore[attr-defined]
    assert result.reasons == [CREDENTIALS_UNAVAILABLE] * 2 and listener.request_count == 0


# --- what a tenant sees -------------------------------------------------------------------------


def test_tenant_visible_reasons_are_categories_and_do_not_scan_ports() -> None:
    open_port = ScoringServer().start()
    closed = free_port()
    try:
        reasons: dict[str, Any] = {}
        for name, port in (("open", open_port.port), ("closed", closed)):
            engine = build_engine(
                "external_endpoint",
                {"endpointUrl": f"http://scores.rebind.test:{port}/x"},
                egress=EgressPolicy(resolver=ScriptedResolver(["127.0.0.1"])),
            )
            explained = engine.explain(_candidates(1))
            reasons[name] = explained[0].details
            assert engine.last_error == REFUSED_BY_EGRESS_POLICY  # type: ignore[attr-defined]
        assert (
            reasons["open"]
            == reasons["closed"]
            == [{"fallback": True, "reason": REFUSED_BY_EGRESS_POLICY}]
        )
        assert open_port.accepted_connections == 0
    finally:
        open_port.stop()


def test_an_allow_listed_answer_field_is_explained_but_failures_are_not_described(
    listener: ScoringServer,
) -> None:
    listener.configure(
        explanations_path="internal",
        explainer=lambda instance: {"token": "internal-answer-content"},
    )
    engine = build_engine(
        "external_endpoint",
        {"endpointUrl": listener.url, "responseMapping": {"explanationPath": "nothing.here"}},
        egress=LOOPBACK_EGRESS,
    )
    details = engine.explain(_candidates(1))[0].details
    assert details == [{"error": "explanation_unavailable"}]
    assert "internal-answer-content" not in repr(details)
    np.testing.assert_array_equal(
        engine.score(_candidates(1)), listener.expected_scores(_candidates(1))
    )
