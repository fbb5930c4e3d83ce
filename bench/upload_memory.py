"""Memory of concurrent upload parses under one process-wide pool: peak RSS against the budget.

Parses a multi-member gzip bomb (``0,0`` lines) in ``--threads`` threads at once through the same
``read_file`` the upload service uses, every parse reserving from one
:class:`~mlworker.data.budget.MemoryPool`, and samples this process's resident memory every 5 ms.
It prints, per parse, how it ended and, overall, the peak RSS above the baseline next to the
pool's limit: the figures behind ``ALLOCATOR_OVERHEAD`` and ``PARSE_WORKING_BYTES``.
``tests/security/test_upload_memory.py`` checks the same bound against a real server.

Examples
--------
::

    .venv/bin/python bench/upload_memory.py                       # 8 parses, 512 MiB pool
    .venv/bin/python bench/upload_memory.py --threads 1 --budget-mib 1024
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pyarrow as pa

from mlworker.data.budget import MemoryBudget, MemoryPool
from mlworker.data.files import read_file

MiB = 1024**2


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/status``."""
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    return 0


def write_bomb(path: Path, gib: float) -> None:
    """Write a valid gzip of ``a,b`` then ``0,0`` lines, ``gib`` GiB once decompressed."""
    chunk = b"0,0\n" * (4 * MiB)
    member = gzip.compress(chunk, compresslevel=9, mtime=0)
    with path.open("wb") as handle:
        handle.write(gzip.compress(b"a,b\n", mtime=0))
        for _ in range(int(gib * 1024**3 / len(chunk))):
            handle.write(member)


def main() -> None:
    """Run the parses and print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--budget-mib", type=int, default=512)
    parser.add_argument("--bomb-gib", type=float, default=3.0)
    parser.add_argument("--wait-seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bomb = Path(folder) / "bomb.csv.gz"
        write_bomb(bomb, args.bomb_gib)
        pool = MemoryPool(args.budget_mib * MiB, wait_seconds=args.wait_seconds)
        outcomes: list[dict[str, object]] = []

        def parse(index: int) -> None:
            started = time.monotonic()
            budget = MemoryBudget(
                4 * 1024**3, source=f"bomb{index}", pool=pool, field="file", parallel=False
            )
            try:
                with budget, bomb.open("rb") as handle:
                    read_file(
                        handle,
                        name="bomb.csv.gz",
                        file_format="csv",
                        columns=None,
                        budget=budget,
                        field="file",
                    )
                outcome = "read"
            except Exception as exc:  # noqa: BLE001 - the outcome is what we report
                outcome = getattr(exc, "code", type(exc).__name__)
            seconds = round(time.monotonic() - started, 2)
            outcomes.append({"parse": index, "outcome": outcome, "seconds": seconds})

        warm = Path(folder) / "warm.csv.gz"
        warm.write_bytes(gzip.compress(b"a,b\n1,2\n"))
        read_file(  # warm: imports, allocator arenas, the parser's code pages
            warm,
            name="warm.csv.gz",
            file_format="csv",
            columns=None,
            budget=MemoryBudget(MiB),
            field="file",
        )
        baseline = peak = rss_bytes()
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.005):
                peak = max(peak, rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=parse, args=(i,)) for i in range(args.threads)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        time.sleep(0.2)
        print(
            json.dumps(
                {
                    "threads": args.threads,
                    "bomb_gib": args.bomb_gib,
                    "budget_mib": args.budget_mib,
                    "seconds": round(elapsed, 2),
                    "rss_baseline_mib": baseline // MiB,
                    "rss_peak_above_baseline_mib": (peak - baseline) // MiB,
                    "rss_after_above_baseline_mib": (rss_bytes() - baseline) // MiB,
                    "arrow_allocated_after_mib": pa.total_allocated_bytes() // MiB,
                    "pool_reserved_after": pool.used_bytes,
                    "within_budget": peak - baseline < args.budget_mib * MiB,
                    "parses": sorted(outcomes, key=lambda row: int(str(row["parse"]))),
                    "pid": os.getpid(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
