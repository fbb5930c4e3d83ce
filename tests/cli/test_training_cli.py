"""``mlworker train`` and ``mlworker optimize``: in this process and against a live server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import SettingsFactory
from tests.support import live_server
from tests.training.data import churn

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "churn.csv"
    churn(300).to_csv(path, index=False)
    return path


def out(result: Result) -> str:
    return _ANSI.sub("", result.stdout)


def err(result: Result) -> str:
    return " ".join(_ANSI.sub("", result.stderr).replace("│", " ").split())


def test_help_lists_train_and_optimize(cli: Any) -> None:
    text = out(cli("--help"))
    assert "train" in text and "optimize" in text
    assert "--local" in out(cli("optimize", "--help"))


def test_train_locally_prints_the_held_out_metrics(cli: Any, table: Path) -> None:
    result = cli(
        "train",
        str(table),
        "--target",
        "Churn",
        "--algorithm",
        "LogisticRegression",
        "--hyperparams",
        '{"C": 0.5}',
        "--local",
    )
    assert result.exit_code == 0, result.output
    text = out(result)
    assert re.search(r"model-[0-9a-f]{12}\s+LogisticRegression", text)
    assert "held-out metrics" in text and re.search(r"roc_auc\s+0\.\d{4}", text)
    assert "customerID" in text  # the warning about the identifier column


def test_optimize_locally_shows_progress_and_the_best_parameters(cli: Any, table: Path) -> None:
    result = cli(
        "optimize",
        str(table),
        "--target",
        "Churn",
        "--algorithm",
        "LogisticRegression",
        "--trials",
        "3",
        "--local",
    )
    assert result.exit_code == 0, result.output
    text = out(result)
    assert "100%" in text  # the progress bar ran to the end
    assert re.search(r"study-[0-9a-f]{12}\s+best LogisticRegression\s+roc_auc 0\.\d{4}", text)
    assert "3 trials: 3 completed" in text and "best parameters" in text
    assert re.search(r"solver\s+\w+", text)


def test_optimize_against_a_server_uploads_and_prints_the_leaderboard(
    cli: Any, table: Path, make_settings: SettingsFactory
) -> None:
    with live_server(make_settings()) as url:
        result = cli(
            "optimize",
            str(table),
            "--target",
            "Churn",
            "--trials",
            "5",
            "--timeout",
            "30",
            "--train-best",
            "--url",
            url,
        )
    assert result.exit_code == 0, result.output
    text = out(result)
    assert "leaderboard" in text and "LogisticRegression" in text
    assert re.search(r"model model-[0-9a-f]{12}", text)


def test_train_against_a_server_reports_its_refusal(
    cli: Any, table: Path, make_settings: SettingsFactory
) -> None:
    with live_server(make_settings()) as url:
        result = cli("train", str(table), "--target", "Churn", "--algorithm", "Nope", "--url", url)
    assert result.exit_code == 1
    assert "unknown algorithm 'Nope'" in err(result)


@pytest.mark.parametrize("value", ["{not json", "[1, 2]"])
def test_bad_hyperparams_exit_2(cli: Any, table: Path, value: str) -> None:
    result = cli("train", str(table), "--target", "Churn", "--hyperparams", value, "--local")
    assert result.exit_code == 2
    assert "--hyperparams" in err(result)


def test_a_failed_local_search_exits_1_with_the_reason(cli: Any, table: Path) -> None:
    result = cli("optimize", str(table), "--target", "Churn", "--scoring", "r2", "--local")
    assert result.exit_code == 1
    assert "scoring" in err(result)
