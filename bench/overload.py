"""Graceful overload of ``POST /api/v1/score`` (issue 10, defect 7), in one run on one machine.

The script starts a real embedded server (``python -m mlworker serve`` on a SQLite file in a
temporary directory), trains the logistic-regression model of ``bench/scoring_api.py`` through
the API, and measures, against a reference taken in the same run:

1. **closed-loop maximum** — ``--clients`` (8) back-to-back clients for ``--seconds`` (10):
   the throughput the server sustains when it is never asked for more than it can do;
2. **500 in flight** — ``--in-flight`` (500) connections, each sending its next request as soon
   as the previous one is answered; a ``503`` is followed by the pause its ``Retry-After`` asks
   for (jittered by +-50 %), as well-behaved clients do. Reported: accepted throughput as a
   fraction of (1) (target >= 0.90), p50/p99 of accepted answers, count and p99 latency of
   shed ``503`` answers (target <= 50 ms), and ``GET /health`` p99 from a separate probe
   process sending one probe every 50 ms throughout (target <= 50 ms). (1) and (2) alternate
   for ``--rounds`` (2) rounds, so load from elsewhere on the machine weighs on both alike;
3. **``--workers 2`` vs 1** — the closed loop again against ``mlworker serve --workers 2`` on
   the same database (target >= 1.7x on 2 cores).

``--set NAME=VALUE`` passes settings to the servers (e.g. ``MLWORKER_MAX_CONCURRENT_REQUESTS``).
Load comes from separate processes (this script re-run with ``--role``) speaking HTTP/1.1 over
raw asyncio streams on uvloop, so the generator costs as little CPU as possible; it still shares
the machine's cores with the server, so on a 2-core box the figures are a floor. Only the
loopback interface is used; every phase stops after ``--seconds``.

Examples
--------
::

    .venv/bin/python bench/overload.py
    .venv/bin/python bench/overload.py --seconds 10 --in-flight 500 --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobs import (  # noqa: E402
    Processes,
    base_environment,
    free_port,
    percentile,
    server_ready,
    wait_until,
)
from scoring_api import prepare_model, score_body  # noqa: E402

HERE = Path(__file__).resolve()
SCORE_PATH = "/api/v1/score"
MODEL_KEY = "bench-logistic"


# --- load generator (runs in its own process) ----------------------------------------------------
def _request_bytes(method: str, path: str, body: bytes | None, port: int) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, float]:
    """Send one request, read its response; return the status and ``Retry-After`` (0 if none)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    retry_after = 0.0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value)
        elif lowered == "retry-after":
            retry_after = float(value)
    if length:
        await reader.readexactly(length)
    return status, retry_after


async def _client(
    port: int,
    request: bytes,
    stop_at: float,
    samples: list[tuple[int, float, float]],
    *,
    pause: float,
) -> None:
    """One connection sending back to back until ``stop_at``; reconnects when closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while time.perf_counter() < stop_at:
        began = time.perf_counter()
        try:
            status, retry_after = await _exchange(reader, writer, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            samples.append((0, time.perf_counter() - began, time.perf_counter()))
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        done = time.perf_counter()
        samples.append((status, done - began, done))
        if done >= stop_at:
            break
        if pause:
            await asyncio.sleep(pause)
        elif status == 503 and retry_after:
            # Jittered, as a well-behaved client does: retries do not arrive in waves.
            await asyncio.sleep(retry_after * random.uniform(0.5, 1.5))
    writer.close()


def _pct(values: list[float], q: float) -> float:
    return percentile(values, q) if values else 0.0


async def _load(
    port: int, request: bytes, *, clients: int, seconds: float, pause: float
) -> dict[str, Any]:
    samples: list[tuple[int, float, float]] = []
    stop_at = time.perf_counter() + seconds
    tasks = [
        asyncio.ensure_future(_client(port, request, stop_at, samples, pause=pause))
        for _ in range(clients)
    ]
    await asyncio.gather(*tasks)
    by_status: dict[int, list[float]] = {}
    for status, seconds_taken, done in samples:
        if done <= stop_at:  # answers after the window would inflate the rate
            by_status.setdefault(status, []).append(seconds_taken * 1000)
    return {
        "seconds": seconds,
        "counts": {str(status): len(values) for status, values in by_status.items()},
        "ok_rps": len(by_status.get(200, [])) / seconds,
        "ok_p50": _pct(by_status.get(200, []), 50),
        "ok_p99": _pct(by_status.get(200, []), 99),
        "ok_max": max(by_status.get(200, [0.0])),
        "shed_p50": _pct(by_status.get(503, []), 50),
        "shed_p99": _pct(by_status.get(503, []), 99),
        "shed_max": max(by_status.get(503, [0.0])),
        "shed_fast": sum(1 for ms in by_status.get(503, []) if ms <= 50)
        / max(1, len(by_status.get(503, []))),
    }


def _role_main(args: argparse.Namespace) -> int:
    import uvloop

    body = Path(args.body).read_bytes() if args.body else None
    request = _request_bytes(args.method, args.path, body, args.port)
    result = uvloop.run(
        _load(args.port, request, clients=args.clients, seconds=args.seconds, pause=args.pause)
    )
    print(json.dumps(result))
    return 0


# --- orchestration -------------------------------------------------------------------------------
def _spawn_role(
    port: int, *, path: str, clients: int, seconds: float, body: Path | None, pause: float = 0.0
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(HERE),
        "--role",
        "load",
        "--port",
        str(port),
        "--path",
        path,
        "--method",
        "POST" if body else "GET",
        "--clients",
        str(clients),
        "--seconds",
        str(seconds),
        "--pause",
        str(pause),
    ]
    if body is not None:
        command += ["--body", str(body)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _collect(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _start_server(
    processes: Processes, root: Path, port: int, *, workers: int, name: str, extra: dict[str, str]
) -> str:
    env = base_environment(root)
    env.update(
        {
            "ML_WORKER_PORT": str(port),
            "DATABASE_URL": f"sqlite:///{root / 'var' / 'mlworker.db'}",
            "MLWORKER_EXECUTOR": "local",
            "MLWORKER_WORKERS": "2",
            "MLWORKER_LOG_LEVEL": "WARNING",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    server = processes.start(name, ["serve", "--workers", str(workers)], env, root)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: server_ready(url), timeout=120, what="server not ready", services=[server])
    return url


def _warm(url: str, body: dict[str, Any], requests: int = 100) -> None:
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        for _ in range(requests):
            client.post(SCORE_PATH, json=body).raise_for_status()


def run(options: argparse.Namespace) -> dict[str, Any]:
    """Run the three phases; return every figure."""
    processes = Processes()
    results: dict[str, Any] = {}
    extra = dict(item.split("=", 1) for item in options.set)
    with tempfile.TemporaryDirectory(prefix="mlworker-bench-overload-") as directory:
        root = Path(directory)
        body = {**score_body(options.offers, seed=1), "resolution": {"defaultModel": MODEL_KEY}}
        body_path = root / "score.json"
        body_path.write_text(json.dumps(body))
        try:
            port = free_port()
            url = _start_server(processes, root, port, workers=1, name="server-1", extra=extra)
            with httpx.Client(base_url=url, timeout=300, trust_env=False) as client:
                prepare_model(client, options.training_rows)
            _warm(url, body)
            seconds = options.seconds
            limit = seconds + 60
            for key in ("closed_1", "in_flight", "health"):
                results[key] = []

            def closed_loop(port: int) -> dict[str, Any]:
                clients = options.clients
                role = _spawn_role(
                    port, path=SCORE_PATH, clients=clients, seconds=seconds, body=body_path
                )
                return _collect(role, limit)

            # Rounds alternate the reference and the flood, so load from elsewhere on the
            # machine weighs on both alike.
            for _ in range(options.rounds):
                results["closed_1"].append(closed_loop(port))
                probe = _spawn_role(
                    port, path="/health", clients=1, seconds=seconds, body=None, pause=0.05
                )
                flood = _spawn_role(
                    port,
                    path=SCORE_PATH,
                    clients=options.in_flight,
                    seconds=seconds,
                    body=body_path,
                )
                results["in_flight"].append(_collect(flood, limit))
                results["health"].append(_collect(probe, limit))
            processes.stop_all()

            port = free_port()
            url = _start_server(processes, root, port, workers=2, name="server-2", extra=extra)
            _warm(url, body)
            results["closed_2"] = closed_loop(port)
        finally:
            processes.stop_all()
    return results


def _mean(rounds: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in rounds) / len(rounds)


def _worst(rounds: list[dict[str, Any]], key: str) -> float:
    return max(float(r[key]) for r in rounds)


def render(results: dict[str, Any], options: argparse.Namespace) -> str:
    """Render the figures as a plain-text table, ratios against the closed-loop reference."""
    closed, floods, probes = results["closed_1"], results["in_flight"], results["health"]
    reference = _mean(closed, "ok_rps")
    accepted = _mean(floods, "ok_rps")
    per_round = ", ".join(
        f"{f['ok_rps'] / c['ok_rps']:.2f}" for c, f in zip(closed, floods, strict=True)
    )
    shed = sum(f["counts"].get("503", 0) for f in floods)
    fast = sum(f["shed_fast"] * f["counts"].get("503", 0) for f in floods) / max(1, shed)
    scaled = results["closed_2"]["ok_rps"]
    rows = [
        (
            "closed loop, 1 process",
            f"{reference:.0f} req/s",
            "reference",
            f"p99 {_worst(closed, 'ok_p99'):.1f} ms",
        ),
        (
            f"{options.in_flight} in flight, accepted",
            f"{accepted:.0f} req/s",
            f"{accepted / reference:.2f} (>= 0.90)",
            f"p50 {_mean(floods, 'ok_p50'):.0f} ms, p99 {_worst(floods, 'ok_p99'):.0f} ms; "
            f"rounds {per_round}",
        ),
        (
            f"{options.in_flight} in flight, shed 503",
            f"{shed} answers",
            f"p99 {_worst(floods, 'shed_p99'):.1f} ms (<= 50)",
            f"p50 {_mean(floods, 'shed_p50'):.1f} ms, {fast:.1%} within 50 ms",
        ),
        (
            "GET /health during the flood",
            f"{sum(sum(p['counts'].values()) for p in probes)} probes",
            f"p99 {_worst(probes, 'ok_p99'):.1f} ms (<= 50)",
            f"max {_worst(probes, 'ok_max'):.1f} ms",
        ),
        (
            "closed loop, --workers 2",
            f"{scaled:.0f} req/s",
            f"{scaled / reference:.2f}x (>= 1.7)",
            f"p99 {results['closed_2']['ok_p99']:.1f} ms",
        ),
    ]
    lines = [
        f"POST {SCORE_PATH}, {options.offers} offers, {options.rounds} rounds of "
        f"{options.seconds:g} s, closed loop with {options.clients} clients",
        f"{'phase':<34}{'measured':>16}  {'ratio / target':<22}{'latency'}",
    ]
    lines += [f"{a:<34}{b:>16}  {c:<22}{d}" for a, b, c, d in rows]
    other: dict[str, int] = {}
    for flood in floods:
        for status, count in flood["counts"].items():
            if status not in ("200", "503"):
                other[status] = other.get(status, 0) + count
    if other:
        lines.append(f"other answers during the flood: {other}")
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument(
        "--rounds", type=int, default=2, help="reference/flood pairs, alternated (default 2)"
    )
    parser.add_argument("--clients", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--in-flight", type=int, default=500, help="connections in the flood")
    parser.add_argument("--offers", type=int, default=10, help="offers per scoring request")
    parser.add_argument("--training-rows", type=int, default=5000, help="rows to train on")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for the servers (e.g. MLWORKER_MAX_CONCURRENT_REQUESTS=4)",
    )
    parser.add_argument("--role", choices=["load"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="GET", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    parser.add_argument("--pause", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--role``, one load generator) and print the figures."""
    options = parse_arguments(argv)
    if options.role == "load":
        return _role_main(options)
    results = run(options)
    print(render(results, options))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
