"""The three analysis jobs at their target sizes, each next to the naive way, in one run.

Targets (issue 4, on a 2-core machine): segmentation of 1M rows × 20 numeric + 3 categorical
columns with k ∈ 2..8 in ≤ 30 s at ≤ 1.5 GiB peak RSS; policy analysis of 5M interactions in
≤ 60 s; content analysis of 50K creatives in ≤ 60 s. Each figure is wall time of reading the
Parquet file through the service's dataset loader plus the analysis, measured in a fresh process
(so peak RSS is the job's own), beside the same work done with library defaults. The per-analysis
scripts (``bench/analysis_segments.py``, ``analysis_policies.py``, ``analysis_content.py``) say
exactly what "naive" means for each and can run alone.

Examples
--------
::

    .venv/bin/python bench/analysis.py                      # every analysis at its target size
    .venv/bin/python bench/analysis.py --only segments --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import analysis_content  # noqa: E402
import analysis_policies  # noqa: E402
import analysis_segments  # noqa: E402

TARGETS: dict[str, tuple[Any, int, float]] = {
    # name: (module, rows at full scale, target seconds)
    "segments": (analysis_segments, 1_000_000, 30.0),
    "policies": (analysis_policies, 5_000_000, 60.0),
    "content": (analysis_content, 50_000, 60.0),
}


def _row(figures: dict[str, Any]) -> str:
    quality = {
        key: value
        for key, value in figures.items()
        if key not in ("analysis", "variant", "rows", "seconds", "peakRssMiB")
    }
    details = ", ".join(
        f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in quality.items()
    )
    return (
        f"| {figures['analysis']} | {figures['variant']} | {figures['rows']:,} | "
        f"{figures['seconds']:.1f} | {figures['peakRssMiB']:.0f} | {details} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(TARGETS), action="append")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the target rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    everything: list[dict[str, Any]] = []
    print("| analysis | variant | rows | seconds | peak RSS MiB | quality |")
    print("|---|---|---|---|---|---|")
    for name in args.only or list(TARGETS):
        module, rows, target = TARGETS[name]
        figures = module.measure(max(1000, int(rows * args.scale)), seed=args.seed)
        for entry in figures:
            entry.setdefault("targetSeconds", target)
            print(_row(entry), flush=True)
        everything.extend(figures)
    print(json.dumps(everything))


if __name__ == "__main__":
    main()
