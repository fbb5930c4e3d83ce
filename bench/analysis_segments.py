"""Segmentation of 1M customers: ours against scikit-learn defaults, same data, same run.

Data: ``planted_customers`` with four planted segments (40/30/20/10%): 20 numeric columns
(income with 0.5% heavy outliers, age, purchase frequency, 12 columns carrying a little segment
signal, 5 pure noise; 2% missing in income and age) and 3 categorical columns (tier, 2% missing,
and two noise categoricals), plus an id column. Written to Parquet in a temporary directory.

Each variant runs in a fresh child process, which loads the file through the service's
``DatasetLoader`` and analyses it; the figures are the wall seconds of load + analysis and the
child's peak RSS. Quality: chosen ``k`` and adjusted Rand index against the planted segments.

ours
    ``analyze_segments`` (k ∈ 2..8): the service's path, strings loaded as categoricals.
naive
    scikit-learn defaults: median imputation + ``StandardScaler`` + ``OneHotEncoder`` on the same
    23 columns, ``KMeans(k, random_state)`` on all rows for each k, ``silhouette_score(X,
    labels, sample_size=10000, random_state)`` (the exact silhouette up to 20K rows), best
    silhouette wins.

Target: ours ≤ 30 s and ≤ 1.5 GiB peak RSS at 1M rows on a 2-core machine.

Examples
--------
::

    .venv/bin/python bench/analysis_segments.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MIN_K, MAX_K = 2, 8
TARGET_SECONDS = 30.0
TARGET_RSS_MIB = 1536.0
ID_COLUMN = "customer_id"
FILE = "customers.parquet"
TRUTH = "truth.npy"
FULL_SILHOUETTE_ROWS = 20_000


def write_dataset(root: Path, rows: int, seed: int) -> None:
    from mlworker.analysis.segmentation.synthetic import planted_customers

    frame, truth = planted_customers(
        rows,
        seed=seed,
        noise_columns=5,
        signal_columns=12,
        noise_categoricals=2,
        outlier_share=0.005,
        missing_share=0.02,
        junk_columns=False,
    )
    frame.insert(0, ID_COLUMN, np.arange(rows, dtype=np.int64))
    frame.to_parquet(root / FILE, index=False)
    np.save(root / TRUTH, truth)


def _load(root: Path, *, categorical_strings: bool) -> Any:
    from mlworker.data.loader import DatasetLoader
    from mlworker.data.sources import PathSource
    from mlworker.data.spec import PathDataset

    loader = DatasetLoader({"path": PathSource(root)}, memory_budget=16 << 30)
    loaded = loader.load(
        PathDataset(path=FILE), tenant="bench", categorical_strings=categorical_strings
    )
    return loaded.frame


def run_ours(root: Path, seed: int) -> dict[str, Any]:
    from mlworker.analysis.segmentation import SegmentationConfig, analyze_segments

    started = time.perf_counter()
    frame = _load(root, categorical_strings=True)
    config = SegmentationConfig(
        min_clusters=MIN_K, max_clusters=MAX_K, id_column=ID_COLUMN, random_state=seed
    )
    result = analyze_segments(frame, config)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "labels": result.labels,
        "k": result.k,
        "silhouette": result.silhouette,
        "algorithm": result.algorithm,
    }


def run_naive(root: Path, seed: int) -> dict[str, Any]:
    from pandas.api.types import is_numeric_dtype
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import silhouette_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    started = time.perf_counter()
    frame = _load(root, categorical_strings=False)
    features = frame.drop(columns=[ID_COLUMN])
    numeric = [name for name in features.columns if is_numeric_dtype(features[name].dtype)]
    categorical = [name for name in features.columns if name not in numeric]
    prepare = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )
    points = prepare.fit_transform(features)
    best: tuple[float, int, Any] | None = None
    for k in range(MIN_K, MAX_K + 1):
        labels = KMeans(k, random_state=seed).fit_predict(points)
        sample_size = None if len(points) <= FULL_SILHOUETTE_ROWS else 10_000
        score = float(silhouette_score(points, labels, sample_size=sample_size, random_state=seed))
        if best is None or score > best[0]:
            best = (score, k, labels)
    seconds = time.perf_counter() - started
    assert best is not None
    return {"seconds": seconds, "labels": best[2], "k": best[1], "silhouette": best[0]}


def child(variant: str, root: Path, seed: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    figures = run_ours(root, seed) if variant == "ours" else run_naive(root, seed)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    truth = np.load(root / TRUTH)
    labels = figures.pop("labels")
    figures["ari"] = float(adjusted_rand_score(truth, labels))
    figures["peakRssMiB"] = peak_mib
    print(json.dumps(figures))


def measure(rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Run both variants on the same generated file; one dict of figures per variant."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as directory:
        root = Path(directory)
        write_dataset(root, rows, seed)
        for variant in ("ours", "naive"):
            completed = subprocess.run(
                [sys.executable, __file__, "--child", variant, "--root", str(root)]
                + ["--seed", str(seed)],
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                raise RuntimeError(f"{variant} child failed:\n{completed.stderr[-3000:]}")
            figures = json.loads(completed.stdout.strip().splitlines()[-1])
            entry: dict[str, Any] = {
                "analysis": "segments",
                "variant": variant,
                "rows": rows,
                "seconds": figures.pop("seconds"),
                "peakRssMiB": figures.pop("peakRssMiB"),
            }
            entry.update(figures)
            entry["plantedK"] = 4
            results.append(entry)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root, args.seed)
        return
    figures = measure(args.rows, args.seed)
    print("| variant | rows | seconds | peak RSS MiB | k (planted 4) | ARI | silhouette |")
    print("|---|---|---|---|---|---|---|")
    for entry in figures:
        silhouette = entry["silhouette"]
        print(
            f"| {entry['variant']} | {entry['rows']:,} | {entry['seconds']:.1f} | "
            f"{entry['peakRssMiB']:.0f} | {entry['k']} | {entry['ari']:.3f} | "
            f"{'n/a' if silhouette is None else f'{silhouette:.3f}'} |"
        )
    ours = figures[0]
    met = ours["seconds"] <= TARGET_SECONDS and ours["peakRssMiB"] <= TARGET_RSS_MIB
    print(
        f"target (ours ≤ {TARGET_SECONDS:.0f} s, ≤ {TARGET_RSS_MIB:.0f} MiB): "
        f"{'met' if met else 'MISSED'}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
