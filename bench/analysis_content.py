"""Content analysis of 50K creatives: ours against scikit-learn defaults, same data, same run.

Data: ``planted_creatives`` — creatives in four channels with different base CTRs, shown on 1 to
7 days each (one row per creative and day, about 4 rows per creative), a subject of 3-9 words
and a body of 8-24 words from a 5,000-word Zipf vocabulary. CTR is the channel's base rate times
the planted word effects in the subject ("free" ×1.6, "exclusive" ×1.25, "reminder" ×0.85,
"urgent" ×0.7) times log-normal noise; 2% of creatives have fewer than 100 impressions. Written
to Parquet in a temporary directory.

Each variant runs in a fresh child process, which loads the file through the service's
``DatasetLoader`` and analyses it; the figures are the wall seconds of load + analysis and the
child's peak RSS. Quality: held-out R², the rank of each planted word in the importance
ranking (and whether its sign is right, where the variant gives one), the fitted forest's
pickled size.

ours
    ``analyze_content``: bounded forest (100 trees, depth 12, leaves ≥ 5, 10% of features per
    split, 2 threads), permutation importance of the 100 best terms by impurity plus every
    attribute (5 repeats, only changed rows re-predicted), signs and data lifts.
naive
    The same load, aggregation, shrinkage and TF-IDF matrix, then scikit-learn defaults:
    ``RandomForestRegressor()`` (full depth, 100 trees, every feature per split, one thread)
    and ``permutation_importance`` over every feature (5 repeats, dense hold-out matrix). At
    50K creatives that would take hours, so it runs at ``--naive-rows`` (10K) creatives, beside
    ours at the same size.

Target: ours ≤ 60 s at 50K creatives on a 2-core machine.

Examples
--------
::

    .venv/bin/python bench/analysis_content.py --rows 50000
    .venv/bin/python bench/analysis_content.py --rows 5000 --naive-rows 2000
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FILE = "creatives.parquet"
TARGET_SECONDS = 60.0
NAIVE_ROWS = 10_000
PLANTED = {"free": 1.6, "exclusive": 1.25, "reminder": 0.85, "urgent": 0.7}
CHANNELS = {"email": 0.025, "push": 0.015, "social": 0.035, "display": 0.008}


def planted_creatives(creatives: int, seed: int) -> pd.DataFrame:
    """One row per creative and day; CTR driven by the planted subject words."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"word{i}" for i in range(5000)])
    weights = 1 / np.arange(1, vocabulary.size + 1) ** 1.05
    weights /= weights.sum()

    def texts(low: int, high: int) -> list[list[str]]:
        lengths = rng.integers(low, high + 1, creatives)
        words = rng.choice(vocabulary, lengths.sum(), p=weights)
        return [list(part) for part in np.split(words, np.cumsum(lengths)[:-1])]

    subjects, bodies = texts(3, 9), texts(8, 24)
    channel = rng.choice(list(CHANNELS), creatives)
    rate = np.array([CHANNELS[name] for name in channel]) * rng.lognormal(0, 0.15, creatives)
    for word, effect in PLANTED.items():
        present = rng.random(creatives) < 0.12
        rate *= np.where(present, effect, 1.0)
        for index in np.flatnonzero(present):
            subjects[index].insert(int(rng.integers(0, len(subjects[index]) + 1)), word)
    numbered = rng.random(creatives) < 0.2
    for index in np.flatnonzero(numbered):
        subjects[index].insert(0, f"{int(rng.integers(2, 90))}%")
    subject_text = [" ".join(words).capitalize() for words in subjects]
    body_text = [" ".join(words) for words in bodies]
    impressions = np.round(rng.lognormal(8.0, 1.0, creatives)).astype(np.int64) + 100
    small = rng.random(creatives) < 0.02
    impressions[small] = rng.integers(1, 100, int(small.sum()))
    days = rng.integers(1, 8, creatives)
    creative = np.repeat(np.arange(creatives), days)
    day = np.concatenate([np.arange(count) for count in days])
    share = rng.dirichlet(np.ones(7), creatives)[creative, day]
    share /= np.bincount(creative, weights=share)[creative]
    daily_impressions = rng.binomial(impressions[creative], np.minimum(share, 1.0))
    clicks = rng.binomial(daily_impressions, rate[creative])
    conversions = rng.binomial(clicks, 0.08)
    start = np.datetime64("2026-01-01") + rng.integers(0, 60, creatives)
    return pd.DataFrame(
        {
            "creative_id": np.char.add("cr", creative.astype(str)),
            "date": (start[creative] + day).astype("datetime64[ns]"),
            "channel": channel[creative],
            "subject": np.asarray(subject_text, dtype=object)[creative],
            "body": np.asarray(body_text, dtype=object)[creative],
            "impressions": daily_impressions,
            "clicks": clicks,
            "conversions": conversions,
            "revenue": conversions * 25.0,
        }
    )


def _load(root: Path) -> pd.DataFrame:
    from mlworker.data.loader import DatasetLoader
    from mlworker.data.sources import PathSource
    from mlworker.data.spec import PathDataset

    loader = DatasetLoader({"path": PathSource(root)}, memory_budget=16 << 30)
    loaded = loader.load(PathDataset(path=FILE), tenant="bench", categorical_strings=True)
    return loaded.frame


def _planted_quality(ranked: list[tuple[str, str | None]]) -> dict[str, Any]:
    """Rank (1-based, ``None`` if absent) and sign check of each planted word."""
    figures: dict[str, Any] = {}
    signs_right = 0
    for word, effect in PLANTED.items():
        rank = next(
            (i + 1 for i, (name, _) in enumerate(ranked) if name == f"subject: {word}"), None
        )
        figures[f"rank_{word}"] = rank
        if rank is not None and ranked[rank - 1][1] == ("+" if effect > 1 else "-"):
            signs_right += 1
    figures["plantedInTop10"] = sum(1 for word in PLANTED if (figures[f"rank_{word}"] or 99) <= 10)
    if any(sign is not None for _, sign in ranked):
        figures["signsRight"] = signs_right
    return figures


def _child_ours(root: Path, seed: int) -> dict[str, Any]:
    from unittest.mock import patch

    from mlworker.analysis.content import ContentConfig, analyze_content
    from mlworker.analysis.content.importance import fit_forest

    captured: dict[str, Any] = {}

    def recording(*args: Any, **kwargs: Any) -> Any:
        fit = fit_forest(*args, **kwargs)
        captured["fit"] = fit
        return fit

    # Only to weigh the fitted model afterwards; the analysis runs unchanged.
    with patch("mlworker.analysis.content.analysis.fit_forest", side_effect=recording):
        start = time.perf_counter()
        frame = _load(root)
        answer = analyze_content(frame, ContentConfig(random_state=seed)).to_dict()
        seconds = time.perf_counter() - start
    ranked = [(e["feature"], e["direction"]) for e in answer["featureImportance"]]
    return {
        "seconds": seconds,
        "r2Holdout": answer["model"]["r2Holdout"],
        "r2OutOfBag": answer["model"]["r2OutOfBag"],
        "features": answer["model"]["features"],
        "insights": len(answer["insights"]),
        "modelMiB": len(pickle.dumps(captured["fit"].model)) / 2**20,
        **_planted_quality(ranked),
    }


def _child_naive(root: Path, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    from mlworker.analysis.content import ContentConfig
    from mlworker.analysis.content.aggregate import aggregate_creatives
    from mlworker.analysis.content.columns import resolve_columns
    from mlworker.analysis.content.features import build_features, clean_texts
    from mlworker.analysis.content.importance import split_rows, weighted_r2
    from mlworker.analysis.content.rates import creative_rates

    start = time.perf_counter()
    frame = _load(root)
    config = ContentConfig(random_state=seed)
    columns = resolve_columns(frame, config)
    creatives = aggregate_creatives(frame, columns)
    rates, _ = creative_rates(creatives.table, creatives.early, creatives.late, "ctr")
    modelled = (rates["impressions"] >= config.min_impressions).to_numpy()
    texts = creatives.texts[modelled].reset_index(drop=True)
    cleaned = pd.DataFrame({name: clean_texts(texts[name]) for name in texts.columns})
    features = build_features(cleaned, rates.loc[modelled, "channel"].to_numpy(dtype=object))
    target = rates.loc[modelled, "shrunkRate"].to_numpy(dtype=np.float64)
    weights = np.sqrt(rates.loc[modelled, "impressions"].to_numpy(dtype=np.float64))
    train, holdout = split_rows(len(target), seed)
    matrix = features.matrix
    model = RandomForestRegressor(random_state=seed)
    fit_start = time.perf_counter()
    model.fit(matrix[train], target[train], sample_weight=weights[train])
    fit_seconds = time.perf_counter() - fit_start
    dense_holdout = matrix[holdout].toarray()
    r2 = weighted_r2(target[holdout], model.predict(dense_holdout), weights[holdout])
    importance = permutation_importance(
        model,
        dense_holdout,
        target[holdout],
        sample_weight=weights[holdout],
        random_state=seed,
    )
    seconds = time.perf_counter() - start
    order = np.argsort(-importance.importances_mean, kind="stable")
    ranked: list[tuple[str, str | None]] = [(features.names[i], None) for i in order[:20]]
    return {
        "seconds": seconds,
        "fitSeconds": fit_seconds,
        "r2Holdout": r2,
        "features": matrix.shape[1],
        "modelMiB": len(pickle.dumps(model)) / 2**20,
        **_planted_quality(ranked),
    }


def _child(variant: str, root: Path, seed: int) -> None:
    figures = _child_ours(root, seed) if variant == "ours" else _child_naive(root, seed)
    figures["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _run_child(variant: str, root: Path, rows: int, seed: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--root", str(root), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} child failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"analysis": "content", "variant": variant, "rows": rows, **figures}


def measure(rows: int, seed: int = 0, naive_rows: int = NAIVE_ROWS) -> list[dict[str, Any]]:
    """Ours at ``rows`` creatives; naive (and ours beside it) at ``min(rows, naive_rows)``."""
    results = []
    sizes = [rows] if rows <= naive_rows else [rows, naive_rows]
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-content-") as directory:
            root = Path(directory)
            planted_creatives(size, seed).to_parquet(root / FILE, index=False)
            results.append(_run_child("ours", root, size, seed))
            if size == sizes[-1]:
                results.append(_run_child("naive", root, size, seed))
    for entry in results:
        entry.setdefault("targetSeconds", TARGET_SECONDS)
    return results


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | creatives | seconds | peak RSS MiB | R² hold-out | model MiB | "
        "rank free/exclusive/reminder/urgent | signs right |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in results:
        ranks = "/".join(str(entry[f"rank_{word}"] or "-") for word in PLANTED)
        lines.append(
            f"| {entry['variant']} | {entry['rows']:,} | {entry['seconds']:.1f} | "
            f"{entry['peakRssMiB']:.0f} | {entry['r2Holdout']:.3f} | {entry['modelMiB']:.1f} | "
            f"{ranks} | {entry.get('signsRight', '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="creatives")
    parser.add_argument("--naive-rows", type=int, default=NAIVE_ROWS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["ours", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.root, args.seed)
        return
    results = measure(args.rows, args.seed, args.naive_rows)
    print(_table(results))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
