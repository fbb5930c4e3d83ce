"""Contact-policy analysis of 5M interactions: ours against the naive way, same data, same run.

Data: ``rows`` contacts of ``rows / 20`` customers over 120 days (contact rates per customer
drawn from a gamma distribution, so a minority is contacted many times a week), four channels,
timestamps in UTC. The planted truth: response probability 10 % while the contact is at most
the 5th in its trailing 7 days, 3 % beyond; one response in five is a purchase. Written to
Parquet (strings dictionary-encoded) in a temporary directory, sorted by time as an event log
would be.

Each variant runs in a fresh child process, which loads the file through the service's
``DatasetLoader`` and analyses it; the figures are the wall seconds of load + analysis and the
child's peak RSS.

ours
    ``analyze_policies`` with the default configuration (lookback 90 days, weekly cap 10):
    strings loaded as categoricals, trailing counts by one sort and ``searchsorted``, the
    logistic model fitted on covariate patterns, every other figure and the recommendations.
naive
    Strings loaded as strings; trailing 1-, 7- and 30-day counts with pandas
    ``groupby(customer).rolling(window).count()``; the same covariates (weekly band, channel,
    day of week, daypart, recency) one-hot encoded with ``pd.get_dummies`` and a row-level
    ``statsmodels`` ``Logit`` on the contacts of the window, with its AUC. Nothing else.

Quality figures: the weekly sweet spot and recommended weekly cap (planted: 5), the model AUC,
whether both variants count the same contacts and responses per weekly band, and the largest
difference between their frequency-band coefficients (same maximum likelihood problem: it
should be ~0).

Target: ours ≤ 60 s at 5M rows on a 2-core machine.

Examples
--------
::

    .venv/bin/python bench/analysis_policies.py --rows 5000000
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

FILE = "interactions.parquet"
DAYS = 120
PLANTED_CAP = 5
TARGET_SECONDS = 60.0
CHANNELS = ("email", "sms", "push", "web")
BAND_EDGES = (1, 3, 5, 7, 10)
BAND_LABELS = ("1", "2-3", "4-5", "6-7", "8-10", "11+")
_HOUR = 3_600_000_000_000
_DAY = 24 * _HOUR


def _weekly_counts(customer: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Trailing 7-day counts for the planted truth (rows sorted by customer, then time)."""
    day = _DAY // 1000  # microseconds keep the key within int64 for millions of customers
    key = customer.astype(np.int64) * (DAYS + 8) * day + time // 1000
    first = np.searchsorted(key, key - 7 * day, side="right")
    return np.asarray(np.arange(key.size) - first + 1, dtype=np.int64)


def write_dataset(root: Path, rows: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    customers = max(rows // 20, 1)
    weights = rng.gamma(1.2, 1.0, customers)
    customer = rng.choice(customers, size=rows, p=weights / weights.sum())
    time = rng.integers(0, DAYS * _DAY // 1000, rows, dtype=np.int64) * 1000  # microseconds
    order = np.lexsort((time, customer))
    customer, time = customer[order], time[order]
    weekly = _weekly_counts(customer, time)
    responded = rng.random(rows) < np.where(weekly <= PLANTED_CAP, 0.10, 0.03)
    purchased = responded & (rng.random(rows) < 0.2)
    outcome = np.where(purchased, 2, np.where(responded, 1, 0))
    channel = rng.choice(len(CHANNELS), size=rows, p=[0.45, 0.25, 0.2, 0.1])
    by_time = np.argsort(time, kind="stable")
    start = np.datetime64("2026-01-01T00:00:00", "ns").astype(np.int64)
    names = pa.array([f"c{i:07d}" for i in range(customers)])
    table = pa.table(
        {
            "customerId": pa.DictionaryArray.from_arrays(customer[by_time].astype(np.int32), names),
            "occurredAt": pa.array((start + time[by_time]).astype("datetime64[ns]")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "channel": pa.DictionaryArray.from_arrays(
                channel[by_time].astype(np.int8), pa.array(list(CHANNELS))
            ),
            "outcome": pa.DictionaryArray.from_arrays(
                outcome[by_time].astype(np.int8),
                pa.array(["impression", "click", "purchase"]),
            ),
        }
    )
    pq.write_table(table, root / FILE)


def _load(root: Path, *, categorical_strings: bool) -> Any:
    from mlworker.data.loader import DatasetLoader
    from mlworker.data.sources import PathSource
    from mlworker.data.spec import PathDataset

    loader = DatasetLoader({"path": PathSource(root)}, memory_budget=16 << 30)
    loaded = loader.load(
        PathDataset(path=FILE), tenant="bench", categorical_strings=categorical_strings
    )
    return loaded.frame


def run_ours(root: Path) -> dict[str, Any]:
    from mlworker.analysis.policies import PolicyConfig, analyze_policies

    started = time.perf_counter()
    frame = _load(root, categorical_strings=True)
    loaded = time.perf_counter() - started
    result = analyze_policies(frame, PolicyConfig()).to_dict()
    seconds = time.perf_counter() - started
    caps = [
        r["payload"]["config"]["maxPerWeek"]
        for r in result["recommendations"]
        if r["payload"]["scopes"][0]["scope"] == "global" and "maxPerWeek" in r["payload"]["config"]
    ]
    bands = {
        c["term"]: c["coefficient"]
        for c in result["model"]["coefficients"]
        if c["term"].startswith("frequencyBand[")
    }
    return {
        "seconds": seconds,
        "loadSeconds": loaded,
        "sweetSpot": result["sweetSpot"]["frequency"],
        "weeklyCap": caps[0] if caps else None,
        "recommendations": len(result["recommendations"]),
        "auc": result["model"]["auc"],
        "patterns": result["model"]["patterns"],
        "bandCounts": [[b["contacts"], b["responses"]] for b in result["frequencyBands"]],
        "bandCoefficients": bands,
    }


def run_naive(root: Path) -> dict[str, Any]:
    import pandas as pd
    import statsmodels.api as sm
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    frame = _load(root, categorical_strings=False)
    loaded = time.perf_counter() - started
    frame = frame.sort_values(["customerId", "occurredAt"], kind="stable", ignore_index=True)
    frame["one"] = 1.0
    indexed = frame.set_index("occurredAt")
    grouped = indexed.groupby("customerId", sort=True)["one"]
    counts = {
        days: grouped.rolling(f"{days}D").count().to_numpy().astype(np.int64) for days in (1, 7, 30)
    }
    gap_hours = frame.groupby("customerId")["occurredAt"].diff().dt.total_seconds() / 3600
    end = frame["occurredAt"].max()
    inside = (frame["occurredAt"] > end - pd.Timedelta(days=90)).to_numpy()
    window = frame.loc[inside]
    outcome = window["outcome"].str.strip().str.lower()
    responded = outcome.isin(["click", "purchase"]).to_numpy().astype(np.float64)
    weekly = counts[7][inside]
    band = pd.Categorical(
        np.searchsorted(np.array(BAND_EDGES), weekly, side="left"), categories=range(6)
    ).rename_categories(dict(enumerate(BAND_LABELS)))
    hours = gap_hours.to_numpy()[inside]
    recency = np.where(
        np.isnan(hours) | (hours >= 72),
        "72h+",
        pd.cut(hours, [0, 1, 4, 12, 24, 48, 72], right=False).astype(str),
    )
    features = pd.DataFrame(
        {
            "band": band,
            "channel": window["channel"].to_numpy(),
            "day": window["occurredAt"].dt.day_of_week.to_numpy(),
            "daypart": (window["occurredAt"].dt.hour // 6).to_numpy(),
            "recency": pd.Categorical(recency).reorder_categories(
                sorted(set(recency) - {"72h+"}) + ["72h+"]
            ),
        }
    )
    design = pd.get_dummies(features, columns=list(features.columns), drop_first=True, dtype=float)
    design = design.drop(columns=[c for c in design.columns if not design[c].any()])
    design.insert(0, "intercept", 1.0)
    fitted = sm.Logit(responded, design).fit(disp=0)
    auc = float(roc_auc_score(responded, fitted.predict(design)))
    seconds = time.perf_counter() - started
    band_counts = [
        [int((band == label).sum()), int(responded[np.asarray(band == label)].sum())]
        for label in BAND_LABELS
    ]
    coefficients = {
        f"frequencyBand[{name.removeprefix('band_')}]": float(value)
        for name, value in fitted.params.items()
        if name.startswith("band_")
    }
    return {
        "seconds": seconds,
        "loadSeconds": loaded,
        "auc": auc,
        "bandCounts": band_counts,
        "bandCoefficients": coefficients,
    }


def child(variant: str, root: Path) -> None:
    figures = run_ours(root) if variant == "ours" else run_naive(root)
    figures["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _run_child(variant: str, root: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{variant} child failed:\n{completed.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def measure(rows: int, seed: int = 0, naive_rows: int | None = None) -> list[dict[str, Any]]:
    """Run both variants on the same generated file; one dict of figures per variant.

    ``naive_rows`` (default: ``rows``) runs the naive way on a smaller file of its own, and ours
    again on that file so the two are compared on the same data.
    """
    results: list[dict[str, Any]] = []
    sizes = [rows] if naive_rows in (None, rows) else [rows, naive_rows]
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-policies-") as directory:
            root = Path(directory)
            write_dataset(root, size, seed)
            ours = _run_child("ours", root)
            variants = [("ours", ours)]
            if size == (naive_rows or rows):
                variants.append(("naive", _run_child("naive", root)))
            for variant, figures in variants:
                results.append(_entry(variant, size, figures, ours))
    return results


def _entry(
    variant: str, rows: int, figures: dict[str, Any], ours: dict[str, Any]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "analysis": "policies",
        "variant": variant,
        "rows": rows,
        "seconds": figures["seconds"],
        "peakRssMiB": figures["peakRssMiB"],
        "loadSeconds": figures["loadSeconds"],
        "auc": figures["auc"],
        "plantedCap": PLANTED_CAP,
    }
    if variant == "ours":
        entry.update(
            sweetSpot=figures["sweetSpot"],
            weeklyCap=figures["weeklyCap"],
            recommendations=figures["recommendations"],
            patterns=figures["patterns"],
        )
    else:
        entry["bandCountsMatch"] = figures["bandCounts"] == ours["bandCounts"]
        shared = set(figures["bandCoefficients"]) & set(ours["bandCoefficients"])
        entry["bandCoefMaxAbsDiff"] = max(
            (
                abs(figures["bandCoefficients"][term] - ours["bandCoefficients"][term])
                for term in shared
            ),
            default=float("nan"),
        )
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--naive-rows", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["ours", "naive"])
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root)
        return
    results = measure(args.rows, seed=args.seed, naive_rows=args.naive_rows)
    print("| variant | rows | seconds | load s | peak RSS MiB | quality |")
    print("|---|---|---|---|---|---|")
    for entry in results:
        quality = {
            key: value
            for key, value in entry.items()
            if key not in ("analysis", "variant", "rows", "seconds", "peakRssMiB", "loadSeconds")
        }
        details = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in quality.items()
        )
        print(
            f"| {entry['variant']} | {entry['rows']:,} | {entry['seconds']:.1f} | "
            f"{entry['loadSeconds']:.1f} | {entry['peakRssMiB']:.0f} | {details} |"
        )
    status = "met" if results[0]["seconds"] <= TARGET_SECONDS else "MISSED"
    print(f"target ours <= {TARGET_SECONDS:.0f} s at {results[0]['rows']:,} rows: {status}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
