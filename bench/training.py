"""Search quality and storage speed: ``algorithm: "auto"`` against FLAML and a plain RF-TPE loop.

For each dataset the rows are split once (75 % train, 25 % test, stratified for classes, seed 0)
and three searches get the same training rows, the same wall-clock budget and the same metric
(the task's default: ROC AUC for binary, weighted F1 for multiclass, R² for regression):

ours
    :func:`mlworker.training.tuning.optimize` with ``algorithm="auto"`` on the service's SQLite
    storage; the best parameters are then fitted on all training rows.
FLAML
    ``flaml.AutoML`` (benchmark-only dependency), its default estimators and evaluation.
RF-TPE
    The seed's approach: Optuna's TPE over the RandomForest space, 5-fold ``cross_val_score``
    (on our preprocessing, so messy tables load), best parameters refitted.

Each is scored once on the held-out rows; the table prints the scores and the ratios
ours / FLAML and ours / RF-TPE. Every method fits with ``--threads`` threads (default 1: on
a small machine OpenMP threads slow small fits down). A second part runs one fixed study (Ridge
on diabetes, 40 trials: cheap fits, so the storage shows) on in-memory, SQLite and PostgreSQL
storage and prints trials per second and the trial-process overhead. The last line is one JSON
document with every figure.

Examples
--------
::

    .venv/bin/python bench/training.py                 # 60 s per search, every dataset
    .venv/bin/python bench/training.py --budget 10 --datasets iris,wine
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn import datasets as skd
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline

from mlworker.config import Settings
from mlworker.store.optuna_storage import open_storage
from mlworker.training.algorithms import ALGORITHMS, Task
from mlworker.training.model import build_estimator, build_preprocessor, fit_model
from mlworker.training.space import sample
from mlworker.training.trainer import prepare_data
from mlworker.training.tuning import optimize

POSTGRES_URL = os.environ.get(
    "MLWORKER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Dataset:
    """A benchmark table and its target."""

    name: str
    frame: pd.DataFrame
    target: str
    task: Task


def _sklearn(name: str, loader: Callable[..., Any], task: Task) -> Dataset:
    frame = loader(as_frame=True).frame
    return Dataset(name, frame, "target", task)


def churn(rows: int = 3000, random_state: int = 0) -> pd.DataFrame:
    """Generate a churn-like table: ids, categoricals, blank numeric strings, a Yes/No target."""
    rng = np.random.default_rng(random_state)
    tenure = rng.integers(0, 72, rows)
    monthly = rng.uniform(20, 120, rows).round(2)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["DSL", "Fiber optic", "No"], rows, p=[0.35, 0.45, 0.2])
    payment = rng.choice(["Electronic check", "Mailed check", "Bank transfer", "Card"], rows)
    senior = rng.choice([0, 1], rows, p=[0.84, 0.16])
    support = np.where(internet == "No", "No internet service", rng.choice(["Yes", "No"], rows))
    score = (
        -0.045 * tenure
        + 0.015 * monthly
        + np.where(contract == "Month-to-month", 1.3, np.where(contract == "One year", -0.2, -1.2))
        + np.where(internet == "Fiber optic", 0.6, 0.0)
        + np.where(payment == "Electronic check", 0.5, 0.0)
        + np.where(support == "Yes", -0.5, 0.0)
        + 0.3 * senior
        + 0.02 * tenure * (contract == "Month-to-month")
        + rng.logistic(0, 1, rows)
    )
    total = (tenure * monthly).round(2).astype(str)
    total[tenure == 0] = " "  # new customers: blank, as in the public Telco export
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-{rng.integers(10**4, 10**5)}" for i in range(rows)],
            "gender": rng.choice(["Female", "Male"], rows),
            "SeniorCitizen": senior,
            "tenure": tenure,
            "Contract": contract,
            "InternetService": internet,
            "TechSupport": support,
            "PaymentMethod": payment,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Churn": np.where(score > np.quantile(score, 0.73), "Yes", "No"),
        }
    )


def all_datasets() -> list[Dataset]:
    return [
        _sklearn("breast_cancer", skd.load_breast_cancer, Task.CLASSIFICATION),
        _sklearn("iris", skd.load_iris, Task.CLASSIFICATION),
        _sklearn("wine", skd.load_wine, Task.CLASSIFICATION),
        _sklearn("digits", skd.load_digits, Task.CLASSIFICATION),
        _sklearn("diabetes", skd.load_diabetes, Task.REGRESSION),
        Dataset("churn", churn(), "Churn", Task.CLASSIFICATION),
    ]


def _metric(dataset: Dataset) -> str:
    if dataset.task is Task.REGRESSION:
        return "r2"
    return "roc_auc" if dataset.frame[dataset.target].nunique() == 2 else "f1_weighted"


def _score(metric: str, truth: np.ndarray, predicted: np.ndarray, proba: Any) -> float:
    if metric == "roc_auc":
        return float(roc_auc_score(truth, np.asarray(proba)[:, 1]))
    if metric == "f1_weighted":
        return float(f1_score(truth, predicted, average="weighted"))
    return float(r2_score(truth, predicted))


def _split(dataset: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    stratify = dataset.frame[dataset.target] if dataset.task is Task.CLASSIFICATION else None
    train, test = train_test_split(dataset.frame, test_size=0.25, random_state=0, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def run_ours(
    dataset: Dataset,
    train: pd.DataFrame,
    test: pd.DataFrame,
    budget: float,
    threads: int,
    storage: Any,
) -> dict[str, Any]:
    metric = _metric(dataset)
    started = time.monotonic()
    result = optimize(
        train,
        dataset.target,
        algorithm="auto",
        n_trials=100_000,
        timeout=budget,
        scoring=metric,
        n_jobs=threads,
        storage=storage,
    )
    searched = time.monotonic() - started
    data = prepare_data(train, dataset.target, task=Task(result.task))
    model = fit_model(
        ALGORITHMS[result.algorithm],
        result.best_params,
        target=data.target,
        plan=data.plan,
        features=data.features,
        codes=data.codes,
        random_state=42,
        n_jobs=threads,
    )
    truth = data.target.encode(test[dataset.target])
    predicted, proba = model.predict_codes(test.drop(columns=[dataset.target]))
    return {
        "score": _score(metric, truth, predicted, proba),
        "cv_score": result.best_score,
        "algorithm": result.algorithm,
        "trials": result.n_trials,
        "search_seconds": round(searched, 1),
        "leaderboard": result.leaderboard,
    }


def run_flaml(
    dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame, budget: float, threads: int
) -> dict[str, Any]:
    flaml = importlib.import_module("flaml")  # benchmark-only dependency
    metric = _metric(dataset)
    X, y = train.drop(columns=[dataset.target]), train[dataset.target]
    X_test, y_test = test.drop(columns=[dataset.target]), test[dataset.target]
    automl: Any = flaml.AutoML()
    flaml_metric: Any = metric
    if metric == "f1_weighted":

        def flaml_metric(
            X_val: Any, y_val: Any, estimator: Any, *args: Any, **kwargs: Any
        ) -> tuple[float, dict[str, float]]:
            score = f1_score(y_val, estimator.predict(X_val), average="weighted")
            return 1 - score, {"f1_weighted": score}

    started = time.monotonic()
    automl.fit(
        X,
        y,
        task="regression" if dataset.task is Task.REGRESSION else "classification",
        time_budget=budget,
        metric=flaml_metric,
        n_jobs=threads,
        seed=0,
        verbose=0,
    )
    searched = time.monotonic() - started
    truth = np.asarray(y_test)
    proba = automl.predict_proba(X_test) if metric == "roc_auc" else None
    if proba is not None:  # column order follows the model's classes
        classes = list(automl.classes_)
        truth = (np.asarray(y_test) == classes[1]).astype(int)
    return {
        "score": _score(metric, truth, np.asarray(automl.predict(X_test)), proba),
        "algorithm": automl.best_estimator,
        "search_seconds": round(searched, 1),
    }


def run_rf_tpe(
    dataset: Dataset, train: pd.DataFrame, test: pd.DataFrame, budget: float, threads: int
) -> dict[str, Any]:
    metric = _metric(dataset)
    regression = dataset.task is Task.REGRESSION
    algorithm = ALGORITHMS["RandomForestRegressor" if regression else "RandomForestClassifier"]
    data = prepare_data(train, dataset.target, task=dataset.task)

    def pipeline(params: dict[str, Any]) -> Pipeline:
        estimator = build_estimator(algorithm, params, random_state=42, n_jobs=threads)
        return Pipeline(
            [("prep", build_preprocessor(data.plan, scale=False)), ("model", estimator)]
        )

    def objective(trial: optuna.Trial) -> float:
        params = sample(algorithm.space, trial)
        scores = cross_val_score(pipeline(params), data.features, data.codes, cv=5, scoring=metric)
        return float(np.mean(scores))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=42))
    started = time.monotonic()
    study.optimize(objective, timeout=budget)
    searched = time.monotonic() - started
    model = pipeline(study.best_params).fit(data.features, data.codes)
    truth = data.target.encode(test[dataset.target])
    features = test.drop(columns=[dataset.target])
    proba = model.predict_proba(features) if metric == "roc_auc" else None
    return {
        "score": _score(metric, truth, model.predict(features), proba),
        "trials": len(study.trials),
        "search_seconds": round(searched, 1),
    }


def storage_speed(root: Path, threads: int) -> dict[str, Any]:
    """Trials per second of one fixed study on each storage, and the trial-process overhead."""
    frame = skd.load_diabetes(as_frame=True).frame
    storages: dict[str, Callable[[], Any]] = {
        "memory": optuna.storages.InMemoryStorage,
        "sqlite": lambda: open_storage(
            Settings(_env_file=None, database_url=f"sqlite:///{root}/speed.db")
        ),
        "postgresql": lambda: open_storage(
            Settings(_env_file=None, database_url=POSTGRES_URL, database_schema="mlw_bench")
        ),
    }
    figures: dict[str, Any] = {}
    for name, make in storages.items():
        try:
            storage = make()
        except Exception as exc:  # PostgreSQL not reachable: reported, not fatal
            figures[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            continue
        result = optimize(
            frame,
            "target",
            algorithm="Ridge",
            n_trials=40,
            n_jobs=threads,
            storage=storage,
            study_name=f"study-speed{int(time.time() * 1000) % 10**7:07d}",
        )
        figures[name] = {
            "trials_per_second": round(result.trials_per_second, 3),
            "seconds": round(result.elapsed, 2),
            "isolation": result.isolation,
        }
    return figures


def _ratio(ours: float | None, other: float | None) -> float | None:
    if ours is None or other is None or other == 0:
        return None
    return round(ours / other, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per search")
    parser.add_argument("--datasets", default="", help="comma-separated subset")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per model fit, for every method alike"
    )
    parser.add_argument("--skip-flaml", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("flaml").setLevel(logging.ERROR)
    chosen = {name for name in args.datasets.split(",") if name}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        storage = open_storage(
            Settings(_env_file=None, database_url=f"sqlite:///{root}/mlworker.db")
        )
        for dataset in all_datasets():
            if chosen and dataset.name not in chosen:
                continue
            train, test = _split(dataset)
            row: dict[str, Any] = {"dataset": dataset.name, "metric": _metric(dataset)}
            row["ours"] = run_ours(dataset, train, test, args.budget, args.threads, storage)
            row["rf_tpe"] = run_rf_tpe(dataset, train, test, args.budget, args.threads)
            if not args.skip_flaml:
                row["flaml"] = run_flaml(dataset, train, test, args.budget, args.threads)
            ours = row["ours"]["score"]
            row["ours_vs_flaml"] = _ratio(ours, row.get("flaml", {}).get("score"))
            row["ours_vs_rf_tpe"] = _ratio(ours, row["rf_tpe"]["score"])
            rows.append(row)
            print(
                f"{dataset.name:<14} {row['metric']:<12} ours {ours:.4f} "
                f"({row['ours']['algorithm']}, {row['ours']['trials']} trials)  "
                f"flaml {row.get('flaml', {}).get('score', float('nan')):.4f}  "
                f"rf-tpe {row['rf_tpe']['score']:.4f}",
                flush=True,
            )
        speed = storage_speed(root, args.threads)
    print()
    header = f"{'dataset':<14} {'metric':<12} {'ours':>7} {'FLAML':>7} {'RF-TPE':>7} "
    print(header + f"{'ours/FLAML':>11} {'ours/RF-TPE':>12}  best (trials)")
    for row in rows:
        flaml = row.get("flaml", {}).get("score")
        print(
            f"{row['dataset']:<14} {row['metric']:<12} {row['ours']['score']:>7.4f} "
            f"{flaml if flaml is not None else float('nan'):>7.4f} "
            f"{row['rf_tpe']['score']:>7.4f} "
            f"{row['ours_vs_flaml'] or float('nan'):>11.4f} {row['ours_vs_rf_tpe']:>12.4f}  "
            f"{row['ours']['algorithm']} ({row['ours']['trials']})"
        )
    print()
    for name, figures in speed.items():
        if "error" in figures:
            print(f"storage {name:<10} unavailable: {figures['error']}")
            continue
        isolation = figures["isolation"]
        print(
            f"storage {name:<10} {figures['trials_per_second']:>7.2f} trials/s  "
            f"trial process: {isolation['process_starts']} start(s) "
            f"{isolation['start_seconds']:.3f} s, "
            f"{isolation['overhead_ms_per_request']:.2f} ms per fold request"
        )
    summary = {
        "budget_seconds": args.budget,
        "threads": args.threads,
        "datasets": rows,
        "storage": speed,
    }
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
