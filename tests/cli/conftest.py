"""CLI fixtures: invoke ``mlworker`` in this process with a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mlworker.cli import app


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("MLWORKER_URL", "MLWORKER_API_KEY", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"COLUMNS": "120"})

    yield invoke
