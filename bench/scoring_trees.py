"""Tree-JSON scoring against LightGBM's own ``predict``: same model, same rows, same threads.

A ``gradient_boosted`` engine is trained on a synthetic propensity table (default 50K rows x 20
features: 18 numeric with 2 % missing values, 2 categorical strings with 16 values each, a
planted label with interactions) with the seed's defaults (100 trees, 31 leaves). The same
booster is trained again with the engine's parameters, so LightGBM and the exported tree JSON
describe one model. On ``--rows`` fresh rows (with unseen categories) the script measures:

batch throughput (rows/s)
    our compiled kernel (``Engine.score_matrix``) and ``booster.predict`` at 1 thread and at
    every core (``--threads``), and their ratio (target >= 1.0x); ``Engine.score`` from a
    DataFrame (encoding included) for context;
reference walkers
    the NumPy level-by-level walker and the naive Python walk on fewer rows;
single record (µs)
    p50/p99 of ``Engine.score_row`` and of ``booster.predict`` on one row (target <= 10 µs p50);
parity
    max |ours - booster.predict| over all rows (acceptance <= 1e-9).

Throughputs are the best of ``--repeats`` runs (timings on a shared machine are noisy). The
kernel is warmed up first; the first call's time (numba cache load, or compilation on a cold
cache) is printed separately. The last line is one JSON document with every figure.

Examples
--------
::

    .venv/bin/python bench/scoring_trees.py
    .venv/bin/python bench/scoring_trees.py --rows 200000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from mlworker.engines.gradient_boosted import Engine, GradientBoostedConfig, train_booster
from mlworker.engines.trees import walker

TARGET_RATIO = 1.0
TARGET_P50_US = 10.0
PARITY = 1e-9
CATEGORIES = [f"level{i:02d}" for i in range(16)]


def synthetic(rows: int, features: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Build a propensity table: numeric columns with 2 % NaN, two categoricals, a label."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, features - 2))
    numeric[rng.random(numeric.shape) < 0.02] = np.nan
    frame = pd.DataFrame(numeric, columns=[f"x{i:02d}" for i in range(features - 2)])
    # Scoring rows also carry values never seen in training (the "unseen" levels).
    pool = CATEGORIES if seed == 0 else [*CATEGORIES, "unseen1", "unseen2"]
    frame["segment"] = rng.choice(pool, rows)
    frame["channel"] = rng.choice(pool[:8] + pool[16:], rows)
    x = np.nan_to_num(numeric)
    segment_effect = np.array([CATEGORIES.index(s) % 5 - 2.0 if s in CATEGORIES else 0.0
                               for s in frame["segment"]])  # fmt: skip
    margin = x[:, 0] + 0.8 * x[:, 1] * x[:, 2] - np.abs(x[:, 3]) + 0.5 * segment_effect
    outcomes = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(np.float64)
    return frame, outcomes


def best_seconds(run: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def latencies_us(run: Callable[[], Any], calls: int) -> tuple[float, float]:
    samples = np.empty(calls)
    for index in range(calls):
        started = time.perf_counter_ns()
        run()
        samples[index] = time.perf_counter_ns() - started
    return float(np.percentile(samples, 50)) / 1e3, float(np.percentile(samples, 99)) / 1e3


def measure(args: argparse.Namespace) -> dict[str, Any]:
    config = GradientBoostedConfig(n_estimators=args.trees, num_leaves=args.leaves)
    train, outcomes = synthetic(args.train_rows, args.features, seed=0)
    started = time.perf_counter()
    engine = Engine(config, random_state=args.seed).fit(train, outcomes)
    fit_seconds = time.perf_counter() - started
    assert engine.ensemble_ is not None
    encoder = engine.ensemble_.encoder
    booster = train_booster(
        encoder.transform(train),
        outcomes,
        encoder.categorical_indices,
        config,
        random_state=args.seed,
    )
    frame, _ = synthetic(args.rows, args.features, seed=1)
    matrix = engine.encode(frame)

    started = time.perf_counter()
    engine.score_matrix(matrix[:10])
    first_call = time.perf_counter() - started
    engine.score_matrix(matrix[:10_000], num_threads=args.threads)  # parallel kernel warm-up
    engine.score_row(matrix[0])

    ours = engine.score_matrix(matrix, num_threads=args.threads)
    theirs = booster.predict(matrix, num_threads=args.threads)
    figures: dict[str, Any] = {
        "trainRows": args.train_rows,
        "rows": args.rows,
        "features": args.features,
        "trees": len(engine.ensemble_.trees),
        "leaves": args.leaves,
        "fitSeconds": fit_seconds,
        "firstCallSeconds": first_call,
        "parityMaxAbsDiff": float(np.abs(ours - theirs).max()),
        "threads": {},
    }
    for threads in sorted({1, args.threads}):
        ours_s = best_seconds(
            partial(engine.score_matrix, matrix, num_threads=threads), args.repeats
        )
        theirs_s = best_seconds(partial(booster.predict, matrix, num_threads=threads), args.repeats)
        figures["threads"][str(threads)] = {
            "oursRowsPerSecond": args.rows / ours_s,
            "lightgbmRowsPerSecond": args.rows / theirs_s,
            "ratio": theirs_s / ours_s,
        }
    frame_s = best_seconds(lambda: engine.score(frame), max(1, args.repeats - 1))
    figures["frameRowsPerSecond"] = args.rows / frame_s

    ensemble = engine.ensemble_
    numpy_rows = matrix[: args.numpy_rows]
    numpy_s = best_seconds(lambda: walker.numpy_margins(ensemble, numpy_rows), 1)
    naive_rows = matrix[: args.naive_rows]
    naive_s = best_seconds(lambda: walker.naive_margins(ensemble, naive_rows), 1)
    raw = booster.predict(numpy_rows, raw_score=True)
    figures["numpyRowsPerSecond"] = len(numpy_rows) / numpy_s
    figures["naiveRowsPerSecond"] = len(naive_rows) / naive_s
    figures["numpyParity"] = float(np.abs(walker.numpy_margins(ensemble, numpy_rows) - raw).max())
    figures["naiveParity"] = float(
        np.abs(walker.naive_margins(ensemble, naive_rows) - raw[: len(naive_rows)]).max()
    )

    row = np.ascontiguousarray(matrix[12345 % len(matrix)])
    figures["scoreRowUs"] = latencies_us(lambda: engine.score_row(row), args.single_calls)
    one = row[None, :]
    figures["lightgbmRowUs"] = latencies_us(
        lambda: booster.predict(one, num_threads=1), max(1, args.single_calls // 10)
    )
    return figures


def report(figures: dict[str, Any]) -> None:
    print(
        f"model: {figures['trees']} trees x {figures['leaves']} leaves, "
        f"{figures['features']} features, trained on {figures['trainRows']:,} rows in "
        f"{figures['fitSeconds']:.1f} s; first kernel call {figures['firstCallSeconds']:.2f} s"
    )
    print(f"batch of {figures['rows']:,} rows (best of repeats)")
    print("| threads | ours rows/s | LightGBM rows/s | ours / LightGBM |")
    print("|---|---|---|---|")
    for threads, entry in figures["threads"].items():
        print(
            f"| {threads} | {entry['oursRowsPerSecond']:,.0f} | "
            f"{entry['lightgbmRowsPerSecond']:,.0f} | {entry['ratio']:.2f}x |"
        )
    single = figures["threads"]["1"]["lightgbmRowsPerSecond"]
    print(
        f"Engine.score from a DataFrame (encoding included, all threads): "
        f"{figures['frameRowsPerSecond']:,.0f} rows/s"
    )
    print(
        f"NumPy walker: {figures['numpyRowsPerSecond']:,.0f} rows/s "
        f"({figures['numpyRowsPerSecond'] / single:.3f}x LightGBM at 1 thread); "
        f"naive Python walk: {figures['naiveRowsPerSecond']:,.0f} rows/s "
        f"({figures['naiveRowsPerSecond'] / single:.4f}x)"
    )
    ours_p50, ours_p99 = figures["scoreRowUs"]
    theirs_p50, theirs_p99 = figures["lightgbmRowUs"]
    print(
        f"single record: score_row p50 {ours_p50:.1f} µs, p99 {ours_p99:.1f} µs; "
        f"booster.predict p50 {theirs_p50:.1f} µs, p99 {theirs_p99:.1f} µs"
    )
    print(
        f"parity max |ours - booster.predict| = {figures['parityMaxAbsDiff']:.2e} "
        f"(NumPy walker {figures['numpyParity']:.2e}, naive {figures['naiveParity']:.2e})"
    )
    ratios = [entry["ratio"] for entry in figures["threads"].values()]
    met = (
        min(ratios) >= TARGET_RATIO
        and ours_p50 <= TARGET_P50_US
        and figures["parityMaxAbsDiff"] <= PARITY
    )
    print(
        f"targets (ratio >= {TARGET_RATIO:.1f}x at every thread count, score_row p50 <= "
        f"{TARGET_P50_US:.0f} µs, parity <= {PARITY:g}): {'met' if met else 'MISSED'}"
    )
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows scored in a batch")
    parser.add_argument("--train-rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="'all cores'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numpy-rows", type=int, default=50_000)
    parser.add_argument("--naive-rows", type=int, default=1_000)
    parser.add_argument("--single-calls", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report(measure(args))


if __name__ == "__main__":
    main()
