"""Propensity scoring benchmarks of issue 5, each in its own process, in one run.

1. ``bench/scoring_trees.py`` — the gradient-boosted engine's compiled tree-JSON scorer against
   LightGBM's own ``predict`` on the same 100-tree, 31-leaf model at the same thread count
   (targets: batch throughput >= 1.0x, single record <= 10 µs p50, parity <= 1e-9).
2. ``bench/scoring_api.py`` — ``POST /api/v1/algorithm-models/{id}/score`` with 10 offers on a
   logistic-regression model at 200 requests/s from a local load generator, next to
   ``GET /health`` on the same server (p50/p99 latency, throughput).

Each script runs alone in a fresh interpreter so neither warms or loads the other; see their own
docstrings for what exactly is measured.

Examples
--------
::

    .venv/bin/python bench/scoring.py
    .venv/bin/python bench/scoring.py --tree-rows 200000 --api-seconds 10
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree-rows", type=int, default=1_000_000, help="rows per batch")
    parser.add_argument("--api-rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--api-seconds", type=float, default=15.0, help="seconds per API run")
    args = parser.parse_args()
    runs = (
        (
            "tree-JSON scoring vs LightGBM predict",
            "scoring_trees.py",
            ["--rows", str(args.tree_rows)],
        ),
        (
            "scoring API latency",
            "scoring_api.py",
            ["--rate", str(args.api_rate), "--seconds", str(args.api_seconds)],
        ),
    )
    status = 0
    for title, script, extra in runs:
        print(f"== {title} ({script})", flush=True)
        completed = subprocess.run([sys.executable, str(HERE / script), *extra], check=False)
        status = status or completed.returncode
    return status


if __name__ == "__main__":
    raise SystemExit(main())
