"""``mlworker analyze``: in this process and against a live server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.analysis_support import creatives, customers
from tests.cli.test_training_cli import err, out
from tests.conftest import SettingsFactory
from tests.support import live_server


def test_segments_locally_print_the_segments_and_their_rules(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    customers(n=300)[0].to_csv(path, index=False)
    result = cli("analyze", "segments", str(path), "--config", '{"maxClusters": 5}', "--local")
    assert result.exit_code == 0, result.output
    text = out(result)
    assert "k = 3" in text and "precision / recall" in text
    assert "Gold" in text  # the planted tier names a segment


def test_content_against_a_server_prints_json(
    cli: Any, tmp_path: Path, make_settings: SettingsFactory
) -> None:
    path = tmp_path / "creatives.csv"
    creatives(n=300).to_csv(path, index=False)
    with live_server(make_settings()) as url:
        result = cli("analyze", "content", str(path), "--json", "--url", url)
    assert result.exit_code == 0, result.output
    text = out(result)
    answer = json.loads(text[text.index("{\n") :])  # after the progress bar
    assert answer["creativeCount"] == 300 and answer["featureImportance"]


@pytest.mark.parametrize("value", ["{nope", "[1]"])
def test_bad_config_exits_2(cli: Any, tmp_path: Path, value: str) -> None:
    path = tmp_path / "c.csv"
    customers(n=30)[0].to_csv(path, index=False)
    result = cli("analyze", "segments", str(path), "--config", value, "--local")
    assert result.exit_code == 2
    assert "--config" in err(result)


def test_an_invalid_config_exits_1_naming_the_field(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    customers(n=30)[0].to_csv(path, index=False)
    result = cli("analyze", "segments", str(path), "--config", '{"maxClusters": 1}', "--local")
    assert result.exit_code == 1
    assert "maxClusters" in err(result)
