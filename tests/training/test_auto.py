"""``algorithm: "auto"``: candidates, cheapest warm starts first, halving, leaderboard."""

from __future__ import annotations

import time

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from sklearn.datasets import load_diabetes, load_iris

from mlworker.training import auto
from mlworker.training.algorithms import ALGORITHMS, Task, available_algorithms
from mlworker.training.model import validate_hyperparams
from mlworker.training.tuning import optimize
from tests.training.data import churn

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_candidates_are_the_installed_algorithms_of_the_task_cheapest_first() -> None:
    for task in Task:
        found = auto.candidates(task)
        expected = {n for n, a in available_algorithms().items() if a.task is task}
        assert {a.name for a in found} == expected
        costs = [a.cost for a in found]
        assert costs == sorted(costs)
    assert auto.candidates(Task.CLASSIFICATION)[0].name == "LogisticRegression"


@pytest.mark.parametrize("name", sorted(auto.WARM_STARTS))
def test_every_warm_start_is_valid_for_train(name: str) -> None:
    algorithm = ALGORITHMS[name]
    if not algorithm.available:
        pytest.skip(f"{name} is not installed")
    assert validate_hyperparams(algorithm, auto.warm_start(algorithm))


def _trial(
    number: int, algorithm: str, value: float | None, seconds: float, warm: bool
) -> optuna.trial.FrozenTrial:
    trial = create_trial(
        state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
        value=value,
        params={f"{algorithm}:x": 0.5},
        distributions={f"{algorithm}:x": FloatDistribution(0, 1)},
        user_attrs={"algorithm": algorithm, "warm_start": warm},
    )
    trial.number = number
    trial.datetime_complete = trial.datetime_start + pd.Timedelta(seconds=seconds)  # type: ignore[operator]
    return trial


def test_successive_halving_tunes_the_leaders_and_passes_over_slow_algorithms() -> None:
    names = ["LogisticRegression", "LGBMClassifier", "RandomForestClassifier", "SVC"]
    algorithms = [ALGORITHMS[n] for n in names]
    scores = {
        "LogisticRegression": 0.80,
        "LGBMClassifier": 0.90,
        "RandomForestClassifier": 0.88,
        "SVC": 0.70,
    }
    trials = [_trial(i, n, scores[n], 1.0, True) for i, n in enumerate(names)]
    # Round 0: every algorithm gets tuned trials, best first.
    assert auto.choose(trials, algorithms, remaining=100).name == "LGBMClassifier"
    for name in names * 3:  # 12 tuned trials: round 0 (4 x 3) is over
        trials.append(_trial(len(trials), name, scores[name] - 0.01, 1.0, False))
    assert {auto.choose(trials, algorithms, remaining=100).name} <= {
        "LGBMClassifier",
        "RandomForestClassifier",
    }
    # An algorithm whose trials take more than a third of the time left is passed over.
    slow = [
        _trial(i, n, scores[n], 50.0 if n == "LGBMClassifier" else 1.0, True)
        for i, n in enumerate(names)
    ]
    assert auto.choose(slow, algorithms, remaining=30).name != "LGBMClassifier"
    # Before any warm start finished, the one with the fewest trials goes next.
    assert auto.choose([], algorithms, remaining=None).name == "LogisticRegression"


def test_auto_starts_with_the_cheapest_baseline_and_reports_a_leaderboard() -> None:
    iris = load_iris(as_frame=True).frame
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        iris, "target", algorithm="auto", n_trials=12, timeout=30, storage=storage, study_name="s"
    )
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    order = [t.user_attrs["algorithm"] for t in trials if t.user_attrs.get("warm_start")]
    candidates = [a.name for a in auto.candidates(Task.CLASSIFICATION)]
    assert order == candidates[: len(order)] and order[0] == "LogisticRegression"
    assert trials[0].state is TrialState.COMPLETE  # the baseline exists before anything else
    assert result.requested == "auto" and result.algorithm in candidates
    board = result.leaderboard
    assert board is not None and board[0]["algorithm"] == result.algorithm
    assert board[0]["best_score"] == pytest.approx(result.best_score)
    assert sum(row["trials"] for row in board) == result.n_trials == 12
    assert validate_hyperparams(ALGORITHMS[result.algorithm], result.best_params)
    assert not any(":" in name for name in result.best_params)


def test_auto_infers_regression_from_the_target() -> None:
    diabetes = load_diabetes(as_frame=True).frame
    result = optimize(diabetes, "target", algorithm="auto", n_trials=4, timeout=30)
    assert result.task == "regression" and result.scoring == "r2"
    assert ALGORITHMS[result.algorithm].task is Task.REGRESSION


def test_auto_keeps_within_its_budget_on_a_messy_table() -> None:
    frame = churn(600)
    started = time.monotonic()
    result = optimize(frame, "Churn", algorithm="auto", n_trials=1000, timeout=8)
    assert time.monotonic() - started <= 8 * 1.1
    assert result.stopped == "timeout" and result.n_completed >= 2
    assert result.scoring == "roc_auc" and result.best_score > 0.75
    assert result.leaderboard is not None and len(result.leaderboard) >= 2
