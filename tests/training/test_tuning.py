"""The search: determinism, reusable best_params, pruning, failing trials, the deadline."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from mlworker.errors import InvalidInput, SearchFailed
from mlworker.training.algorithms import ALGORITHMS, Task
from mlworker.training.model import validate_hyperparams
from mlworker.training.search import create_study, prepare_search
from mlworker.training.space import sample
from mlworker.training.study_report import started_trials
from mlworker.training.trial_process import evaluate_fold
from mlworker.training.trials import Clock, run_trials
from mlworker.training.tuning import optimize
from tests.training.data import classification
from tests.training.estimators import CRASHING, FLAKY, SIGNAL

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    return frame.sample(300, random_state=0).reset_index(drop=True)


def _trials(storage: optuna.storages.BaseStorage, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def test_the_same_request_gives_the_same_best_params(cancer: pd.DataFrame) -> None:
    runs = [
        optimize(cancer, "target", algorithm="LogisticRegression", n_trials=8, random_state=7)
        for _ in range(2)
    ]
    assert runs[0].best_params == runs[1].best_params
    assert runs[0].best_score == runs[1].best_score
    assert runs[0].n_trials == runs[1].n_trials == 8
    other = optimize(cancer, "target", algorithm="LogisticRegression", n_trials=8, random_state=8)
    assert other.best_params != runs[0].best_params  # the seed matters


def test_best_params_pass_train_validation_and_reproduce_the_score(cancer: pd.DataFrame) -> None:
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        cancer,
        "target",
        algorithm="RandomForestClassifier",
        n_trials=3,
        random_state=3,
        storage=storage,
        study_name="study-000000000001",
    )
    algorithm = ALGORITHMS["RandomForestClassifier"]
    assert validate_hyperparams(algorithm, result.best_params) == result.best_params
    assert not any("|" in name or ":" in name for name in result.best_params)
    # Cross-validating the reported parameters again gives the reported score.
    search = prepare_search(cancer, "target", algorithm=algorithm, random_state=3)
    data = search.fold_data(n_jobs=1)
    scores = [
        evaluate_fold(data, algorithm, result.best_params, fold).score
        for fold in range(search.cv_folds)
    ]
    assert float(np.mean(scores)) == pytest.approx(result.best_score, abs=1e-12)


def test_boosting_reports_the_trees_early_stopping_kept(cancer: pd.DataFrame) -> None:
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        cancer,
        "target",
        algorithm="LGBMClassifier",
        n_trials=3,
        storage=storage,
        study_name="study-000000000002",
    )
    algorithm = ALGORITHMS["LGBMClassifier"]
    assert validate_hyperparams(algorithm, result.best_params)
    best = next(t for t in _trials(storage, "study-000000000002") if t.number == result.best_trial)
    sampled_cap = best.params["n_estimators"]
    assert 1 <= result.best_params["n_estimators"] <= sampled_cap


def test_median_pruner_stops_trials_that_trail_after_two_folds(cancer: pd.DataFrame) -> None:
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        cancer,
        "target",
        algorithm=SIGNAL,
        n_trials=16,
        random_state=1,
        storage=storage,
        study_name="study-000000000003",
    )
    trials = _trials(storage, "study-000000000003")
    pruned = [t for t in trials if t.state is optuna.trial.TrialState.PRUNED]
    completed = [t for t in trials if t.state is optuna.trial.TrialState.COMPLETE]
    assert result.n_pruned == len(pruned) >= 1
    for trial in pruned:
        assert sorted(trial.intermediate_values) == [0, 1]  # judged after the second fold
    # The noisier (worse) configurations are the ones stopped early.
    noise = [t.user_attrs["params"]["noise"] for t in pruned]
    kept = [t.user_attrs["params"]["noise"] for t in completed[5:]]
    assert np.mean(noise) > np.mean(kept)
    unpruned = optimize(
        cancer, "target", algorithm=SIGNAL, n_trials=16, random_state=1, pruner="none"
    )
    assert unpruned.n_pruned == 0


def test_hyperband_pruner_runs(cancer: pd.DataFrame) -> None:
    result = optimize(cancer, "target", algorithm=SIGNAL, n_trials=6, pruner="hyperband")
    assert result.n_completed >= 1


def test_a_failing_trial_is_recorded_with_its_reason_and_skipped(cancer: pd.DataFrame) -> None:
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        cancer,
        "target",
        algorithm=FLAKY,
        n_trials=12,
        random_state=0,
        storage=storage,
        study_name="study-000000000004",
    )
    failed = [t for t in _trials(storage, "study-000000000004") if t.state.name == "FAIL"]
    assert result.n_failed == len(failed) >= 1
    assert all(t.user_attrs["params"]["fail"] is True for t in failed)
    assert all("flaky estimator refused to fit" in t.user_attrs["failure"] for t in failed)
    assert result.n_completed + result.n_failed + result.n_pruned == 12
    assert result.best_params["fail"] is False


def test_a_trial_that_kills_its_process_fails_and_the_next_gets_a_fresh_one(
    cancer: pd.DataFrame,
) -> None:
    storage = optuna.storages.InMemoryStorage()
    result = optimize(
        cancer,
        "target",
        algorithm=CRASHING,
        n_trials=10,
        random_state=0,
        pruner="none",
        storage=storage,
        study_name="study-000000000005",
    )
    crashed = [t for t in _trials(storage, "study-000000000005") if t.state.name == "FAIL"]
    assert crashed and all("exit code 17" in t.user_attrs["failure"] for t in crashed)
    assert result.isolation["process_starts"] == 1 + len(crashed)
    assert result.n_completed == 10 - len(crashed)


def test_no_trial_runs_past_the_timeout_even_one_that_alone_takes_far_longer() -> None:
    # Large enough that one SVC fold alone takes far longer than the 3 s timeout even on a quiet
    # machine (at 6,000 rows a quiet machine finished a whole trial in time).
    frame = classification(24_000, features=20)
    started = time.monotonic()
    with pytest.raises(SearchFailed) as caught:
        optimize(frame, "y", algorithm="SVC", n_trials=5, timeout=3.0, cv_folds=3)
    elapsed = time.monotonic() - started
    assert elapsed <= 3.0 * 1.1, elapsed
    assert caught.value.field == "timeout"
    assert "deadline" in caught.value.message


def test_the_timeout_ends_a_search_of_cheap_trials_in_time(cancer: pd.DataFrame) -> None:
    started = time.monotonic()
    result = optimize(cancer, "target", algorithm="LogisticRegression", n_trials=10_000, timeout=4)
    elapsed = time.monotonic() - started
    assert result.stopped == "timeout" and result.n_completed >= 1
    assert elapsed <= 4 * 1.1, elapsed


def test_logistic_regression_samples_only_solver_penalty_pairs_sklearn_accepts() -> None:
    algorithm = ALGORITHMS["LogisticRegression"]
    supported = {
        "lbfgs": {"l2", None},
        "liblinear": {"l1", "l2"},
        "saga": {"l1", "l2", "elasticnet", None},
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(300):
        trial = study.ask()
        params = sample(algorithm.space, trial)
        assert params["penalty"] in supported[params["solver"]], params
        assert ("l1_ratio" in params) == (params["penalty"] == "elasticnet")
        validate_hyperparams(algorithm, params)
        seen.add((params["solver"], params["penalty"]))
        study.tell(trial, 0.0)
    assert len(seen) == sum(len(p) for p in supported.values())  # every valid pair came up


def test_multiclass_searches_leave_out_the_binary_only_solver() -> None:
    iris = load_iris(as_frame=True).frame
    search = prepare_search(iris, "target", algorithm=ALGORITHMS["LogisticRegression"])
    solver = next(p for p in search.spaces["LogisticRegression"] if p.name == "solver")
    assert "liblinear" not in solver.search.options  # type: ignore[union-attr]
    result = optimize(iris, "target", algorithm="LogisticRegression", n_trials=6)
    assert result.n_failed == 0 and result.scoring == "f1_weighted"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scoring": "r2"}, "scoring"),
        ({"scoring": "made_up"}, "scoring"),
        ({"pruner": "sometimes"}, "pruner"),
        ({"cv_folds": 200}, "cv_folds"),
    ],
)
def test_bad_requests_name_the_field(cancer: pd.DataFrame, kwargs: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        optimize(cancer, "target", algorithm="LogisticRegression", n_trials=1, **kwargs)
    assert caught.value.field == field


def test_progress_shows_the_trial_count_and_best_score(cancer: pd.DataFrame) -> None:
    messages: list[tuple[float, str]] = []
    optimize(
        cancer,
        "target",
        algorithm="LogisticRegression",
        n_trials=3,
        progress=lambda fraction, message: messages.append((fraction, message)),
    )
    assert messages[0][1].startswith("trial 1/3")
    assert any(message.startswith("trial 3/3 · best 0.") for _, message in messages)
    fractions = [fraction for fraction, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_regression_uses_r2_and_plain_kfold() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["price"] = 3 * frame["a"] - frame["b"] + rng.normal(0, 0.1, 200)
    result = optimize(frame, "price", algorithm="Ridge", n_trials=3)
    assert result.scoring == "r2" and result.task == Task.REGRESSION.value
    assert result.best_score > 0.95


def test_a_trial_created_past_the_budget_by_a_race_is_discarded_unrun(
    cancer: pd.DataFrame,
) -> None:
    storage = optuna.storages.InMemoryStorage()
    search = prepare_search(cancer, "target", algorithm=ALGORITHMS["LogisticRegression"])
    study = create_study(search, storage=storage, study_name="study-000000000006", n_trials=1)
    other = optuna.load_study(study_name="study-000000000006", storage=storage)
    taken: list[int] = []

    def another_worker_takes_the_last_slot(fraction: float, message: str) -> None:
        if not taken:  # between our count of the trials and our ask
            taken.append(other.ask().number)

    stats = run_trials(
        search,
        study,
        n_trials=1,
        clock=Clock(time.monotonic()),
        progress=another_worker_takes_the_last_slot,
    )
    assert stats.stopped == "n_trials" and taken == [0]
    everything = study.get_trials()
    assert len(everything) == 2 and everything[1].user_attrs["discarded"] is True
    assert everything[1].state.name == "FAIL" and not everything[1].intermediate_values
    assert [t.number for t in started_trials(study)] == [0]
