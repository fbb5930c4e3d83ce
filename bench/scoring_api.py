"""Latency of ``POST /api/v1/algorithm-models/{id}/score`` at a fixed request rate.

The script starts a real embedded server (``python -m mlworker serve`` on a SQLite file in a
temporary directory), creates a ``logistic_regression`` model, trains it on synthetic
interactions through the API (a job), and then drives two endpoints from a local open-loop load
generator at the same rate (default 200 requests/s):

- the scoring call: one customer, 10 offers, no explanation;
- a trivial endpoint on the same server (``GET /health``), so the figures separate the model's
  cost from the web stack's.

Requests are sent on a fixed schedule by a pool of client threads (open loop: a slow answer does
not delay the next send); latency is measured from the send to the full response. A closed-loop
run (N clients back to back) then measures the sustainable throughput of the scoring call. The
load generator shares the machine with the server, so on a 2-core box both compete for CPU:
compare the two endpoints with each other, not with another machine.

Examples
--------
::

    .venv/bin/python bench/scoring_api.py
    .venv/bin/python bench/scoring_api.py --rate 200 --seconds 20 --offers 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobs import (  # noqa: E402
    Processes,
    base_environment,
    free_port,
    percentile,
    server_ready,
    wait_until,
)

TIERS = ("gold", "silver", "bronze")
#: Sender threads of the open-loop generator (enough to keep sending while answers are slow).
WORKERS = 32


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    rate: float
    seconds: float
    offers: int
    clients: int
    training_rows: int


def training_rows(rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Synthetic interactions with a planted logistic signal."""
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, rows)
    income = rng.lognormal(10.8, 0.4, rows)
    tier = rng.choice(TIERS, rows)
    discount = rng.integers(0, 60, rows)
    margin = 0.03 * (age - 40) + 0.8 * (tier == "gold") + 0.02 * (discount - 30) - 1.0
    outcome = (rng.random(rows) < 1 / (1 + np.exp(-margin))).astype(int)
    return [
        {
            "customerId": f"c{i % 500}",
            "offerId": f"o{discount[i] % 10}",
            "age": float(age[i]),
            "income": float(income[i]),
            "tier": str(tier[i]),
            "discount": int(discount[i]),
            "outcome": int(outcome[i]),
        }
        for i in range(rows)
    ]


def score_body(offers: int, seed: int) -> dict[str, Any]:
    """One scoring request: a customer and ``offers`` candidate offers."""
    rng = np.random.default_rng(seed)
    return {
        "customerId": f"c{seed}",
        "customerAttributes": {
            "age": float(rng.normal(40, 12)),
            "income": float(rng.lognormal(10.8, 0.4)),
            "tier": str(rng.choice(TIERS)),
        },
        "offers": [
            {"id": f"o{k}", "attributes": {"discount": int(rng.integers(0, 60))}}
            for k in range(offers)
        ],
    }


def prepare_model(client: httpx.Client, rows: int) -> str:
    """Create and train the logistic-regression model; return its id."""
    created = client.post(
        "/api/v1/algorithm-models",
        json={"key": "bench-logistic", "name": "bench", "modelType": "logistic_regression"},
    )
    created.raise_for_status()
    model_id = str(created.json()["id"])
    submitted = client.post(
        f"/api/v1/algorithm-models/{model_id}/train",
        json={"dataset": {"rows": training_rows(rows)}},
    )
    submitted.raise_for_status()
    job_id = submitted.json()["jobId"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = client.get(f"/status/{job_id}").json()
        if status["status"] == "completed":
            return model_id
        if status["status"] in {"failed", "cancelled"}:
            raise RuntimeError(f"training failed: {json.dumps(status)}")
        time.sleep(0.2)
    raise RuntimeError("training did not finish in 300 s")


def open_loop(
    url: str, request: tuple[str, str, dict[str, Any] | None], *, rate: float, seconds: float
) -> dict[str, float]:
    """Send ``rate`` requests/s for ``seconds`` on a fixed schedule; latency percentiles in ms."""
    method, path, body = request
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    local = threading.local()
    # Clients are built and connected before the clock starts: creating one costs tens of
    # milliseconds, which would otherwise show up as the first requests' latency.
    idle = [httpx.Client(base_url=url, timeout=10, trust_env=False) for _ in range(WORKERS)]
    clients = list(idle)
    for client in clients:
        client.request(method, path, json=body)
    start = time.perf_counter() + 0.2

    def send(index: int) -> None:
        nonlocal errors
        if not hasattr(local, "client"):
            with lock:
                local.client = idle.pop()
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        response = local.client.request(method, path, json=body)
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            if response.status_code >= 400:
                errors += 1
            latencies.append(elapsed)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(send, range(total)))
    achieved = total / (time.perf_counter() - start)
    for client in clients:
        client.close()
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "achieved_rps": achieved,
        "errors": float(errors),
    }


def closed_loop(
    url: str, request: tuple[str, str, dict[str, Any] | None], *, clients: int, seconds: float
) -> float:
    """Requests/s that ``clients`` back-to-back clients get through."""
    method, path, body = request
    deadline = time.perf_counter() + seconds
    counts = [0] * clients

    def run(slot: int) -> None:
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as client:
            while time.perf_counter() < deadline:
                client.request(method, path, json=body).raise_for_status()
                counts[slot] += 1

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(run, range(clients)))
    return sum(counts) / (time.perf_counter() - began)


def run(options: Options) -> dict[str, Any]:
    """Start the server, prepare the model, measure both endpoints."""
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="mlworker-bench-scoring-") as directory:
        root = Path(directory)
        port = free_port()
        env = base_environment(root)
        env.update(
            {
                "ML_WORKER_PORT": str(port),
                "DATABASE_URL": f"sqlite:///{root / 'var' / 'mlworker.db'}",
                "MLWORKER_EXECUTOR": "local",
                "MLWORKER_LOG_LEVEL": "WARNING",
                "LOG_LEVEL": "WARNING",
            }
        )
        server = processes.start("scoring-server", ["serve"], env, root)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: server_ready(url), timeout=90, what="server not ready", services=[server]
            )
            with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
                model_id = prepare_model(client, options.training_rows)
                path = f"/api/v1/algorithm-models/{model_id}/score"
                body = score_body(options.offers, seed=1)
                score: tuple[str, str, dict[str, Any] | None] = ("POST", path, body)
                for _ in range(50):  # warm caches: engine load, first requests
                    client.post(path, json=body).raise_for_status()
            trivial: tuple[str, str, dict[str, Any] | None] = ("GET", "/health", None)
            results = {
                "score": open_loop(url, score, rate=options.rate, seconds=options.seconds),
                "trivial": open_loop(url, trivial, rate=options.rate, seconds=options.seconds),
                "score_max_rps": closed_loop(
                    url, score, clients=options.clients, seconds=options.seconds / 2
                ),
                "trivial_max_rps": closed_loop(
                    url, trivial, clients=options.clients, seconds=options.seconds / 2
                ),
            }
        finally:
            processes.stop_all()
    return results


def render(results: dict[str, Any], options: Options) -> str:
    """Render the figures as a plain-text table."""
    lines = [
        f"open loop at {options.rate:g} req/s for {options.seconds:g} s; "
        f"{options.offers} offers per scoring request; closed loop with {options.clients} clients",
        f"{'endpoint':<34}{'p50 ms':>9}{'p99 ms':>9}{'achieved/s':>12}{'errors':>8}{'max/s':>9}",
    ]
    for name, label, maximum in (
        ("score", "POST /algorithm-models/{id}/score", results["score_max_rps"]),
        ("trivial", "GET /health", results["trivial_max_rps"]),
    ):
        row = results[name]
        lines.append(
            f"{label:<34}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['achieved_rps']:>12.1f}"
            f"{int(row['errors']):>8d}{maximum:>9.0f}"
        )
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each run")
    parser.add_argument("--offers", type=int, default=10, help="offers per scoring request")
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--training-rows", type=int, default=5000, help="rows to train on")
    args = parser.parse_args(argv)
    return Options(args.rate, args.seconds, args.offers, args.clients, args.training_rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table (and JSON with ``--json`` piping)."""
    options = parse_arguments(argv)
    results = run(options)
    print(render(results, options))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
