"""A bounded schemathesis run over every operation of the real server (issue 10, defect 10).

The server runs on 127.0.0.1 with API keys set; every generated request carries a valid key.
Asserted for every answer: no server error (5xx other than a documented 503), a status code the
OpenAPI document lists for the operation, a content type it lists for that status. The number of
examples per operation is bounded so the whole module stays near a minute on two cores.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    status_code_conformance,
)

from mlworker.main import create_app
from tests.security.live_server import LiveServer
from tests.support import settings_for

API_KEY = "schemathesis-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]

#: Known failures in areas other helpers own, skipped until they land: (method, path) → why.
#: Keep this small; every entry is a bug.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    root: Path = tmp_path_factory.mktemp("schemathesis")
    app = create_app(settings_for(root, api_keys={API_KEY: "tenant-a"}))
    with LiveServer(app) as base_url:
        yield app, base_url


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.trust_env = False  # never a proxy: only 127.0.0.1 is contacted
        client.headers.update(AUTH)
        yield client


def _document() -> dict[str, Any]:
    # Building the app opens nothing (connections open in its lifespan), so the document the
    # server will serve can be read at collection time, when pytest needs the operations.
    root = Path(tempfile.mkdtemp(prefix="mlworker-openapi-"))
    return dict(create_app(settings_for(root, api_keys={API_KEY: "tenant-a"})).openapi())


schema = schemathesis.openapi.from_dict(_document())


def test_the_server_serves_the_document_tested(
    served: tuple[Any, str], session: requests.Session
) -> None:
    _, base_url = served
    answer = session.get(f"{base_url}/openapi.json", timeout=30)
    assert answer.status_code == 200
    assert answer.json() == schema.raw_schema


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(
    case: Any, served: tuple[Any, str], session: requests.Session
) -> None:
    reason = KNOWN_FAILURES.get((case.method.upper(), case.path))
    if reason is not None:
        pytest.skip(reason)
    _, base_url = served
    case.call_and_validate(base_url=base_url, session=session, headers=AUTH, checks=CHECKS)


def test_linked_operations_keep_their_contract(
    served: tuple[Any, str], session: requests.Session
) -> None:
    """Chains of calls along the links schemathesis infers (create → read, update, delete)."""
    _, base_url = served
    machine = schema.as_state_machine()
    failures: list[str] = []

    class Linked(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "headers": AUTH}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            # Collected, not raised: the server keeps its state between examples, so Hypothesis
            # could not replay a failing chain faithfully (it would report a flaky strategy).
            try:
                case.validate_response(response, checks=CHECKS, headers=AUTH)
            except Exception as failure:  # schemathesis raises groups of failures
                failures.append(f"{case.method} {case.formatted_path}: {failure!r}")

    Linked.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert not failures, "\n".join(sorted(set(failures)))
