"""Uploads cannot exhaust the API process: decompression bombs, empty lines, duplicate columns.

The probes of issue 10 (defect 3 and the duplicate-column part of defect 8): four concurrent
17 MB gzip uploads took a server from 334 MiB to 10.3 GiB; 14 MB of gzipped empty lines cost
15.6 s of CPU; a header naming a column twice made the upload answer 500. The bomb test runs a
real ``mlworker serve`` subprocess and samples its resident memory from ``/proc``.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mlworker.config import Settings
from mlworker.main import create_app
from tests.api.conftest import assert_problem
from tests.support import free_port, settings_env, wait_for

SettingsFactory = Callable[..., Settings]
MiB = 1024**2
KEY = "bomb-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}
BOMB_BYTES = 3 * 1024**3
CONCURRENT_BOMBS = 8

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads resident memory from /proc"
)


def write_gzip_bomb(path: Path, *, decompressed: int, line: bytes, header: bytes) -> int:
    """Write a valid multi-member gzip file of ``header`` then ``line`` repeated.

    Compressing 3 GiB would take a while; one 16 MiB member is compressed once and written as
    often as needed (concatenated members are one valid gzip stream). Nothing big is in memory.
    """
    chunk = line * (16 * MiB // len(line))
    member = gzip.compress(chunk, compresslevel=9, mtime=0)
    with path.open("wb") as handle:
        handle.write(gzip.compress(header, mtime=0))
        for _ in range(decompressed // len(chunk)):
            handle.write(member)
    return path.stat().st_size


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (``VmRSS`` in ``/proc/<pid>/status``)."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class RssSampler:
    """Sample a process's RSS every few milliseconds in a thread; keep the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def server_process(settings: Settings, log_path: Path) -> Iterator[tuple[str, int]]:
    """``mlworker serve`` on a free loopback port; yield its base URL and pid."""
    port = free_port()
    env = {
        **os.environ,
        **settings_env(settings),
        "ML_WORKER_PORT": str(port),
        "HOST": "127.0.0.1",
        # A safety net: nothing in this test may leave the machine.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlworker", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"server exited:\n{log_path.read_text()[-4000:]}")
        try:
            return httpx.get(f"{base}/health", timeout=1, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60, interval=0.1)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _post_file(base: str, path: Path, filename: str) -> httpx.Response:
    with path.open("rb") as handle, httpx.Client(trust_env=False, timeout=120) as http:
        return http.post(
            f"{base}/datasets",
            files={"file": (filename, handle, "application/gzip")},
            headers=HEADERS,
        )


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.csv.gz"
    size = write_gzip_bomb(path, decompressed=BOMB_BYTES, line=b"0,0\n", header=b"a,b\n")
    assert size < 5 * MiB  # about 3 MB on the wire, 3 GiB once decompressed
    return path


@pytest.mark.parametrize(
    ("guard", "overrides"),
    [
        # The defaults: the ratio guard refuses each bomb after a few MiB of output.
        ("compression ratio", {}),
        # No ratio guard: the process-wide pool must hold eight parses to one budget.
        (
            "process-wide budget",
            {"max_upload_compression_ratio": 0, "max_upload_decompressed_bytes": 1024**3},
        ),
    ],
)
def test_concurrent_gzip_bombs_stay_within_the_process_budget(
    make_settings: SettingsFactory,
    tmp_path: Path,
    bomb: Path,
    guard: str,
    overrides: dict[str, Any],
) -> None:
    budget = 512 * MiB
    settings = make_settings(
        api_keys={KEY: "tenant-a"},
        api_memory_budget=budget,
        api_memory_wait_seconds=1.0,
        # Every bomb reaches the parser: this is about the memory pool, not admission's slots.
        max_concurrent_uploads=CONCURRENT_BOMBS,
        **overrides,
    )
    with server_process(settings, tmp_path / "server.log") as (base, pid):
        small = tmp_path / "small.csv.gz"
        small.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n"))
        warm_up = _post_file(base, small, "small.csv.gz")  # imports and allocators warm
        assert warm_up.status_code == 201, warm_up.text
        baseline = rss_bytes(pid)
        started = time.monotonic()
        with RssSampler(pid) as sampler, ThreadPoolExecutor(CONCURRENT_BOMBS) as pool:
            answers = list(
                pool.map(
                    lambda i: _post_file(base, bomb, f"bomb{i}.csv.gz"),
                    range(CONCURRENT_BOMBS),
                )
            )
        elapsed = time.monotonic() - started
        time.sleep(0.5)
        after = rss_bytes(pid)
        statuses = sorted(answer.status_code for answer in answers)
        print(
            f"\n[{guard}] {CONCURRENT_BOMBS} x {BOMB_BYTES / 1024**3:.0f} GiB gzip bombs in "
            f"{elapsed:.1f} s: statuses {statuses}; RSS baseline {baseline / MiB:.0f} MiB, "
            f"peak {sampler.peak / MiB:.0f} MiB (+{(sampler.peak - baseline) / MiB:.0f}), "
            f"after {after / MiB:.0f} MiB; budget {budget / MiB:.0f} MiB"
        )
        for answer in answers:
            # 413: this bomb was refused; 503: the pool (or admission) was busy with the others.
            assert answer.status_code in (413, 503), answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            body = answer.json()
            if answer.status_code == 503:
                assert answer.headers["retry-after"]
            else:
                assert body["field"] == "file", body
                assert body["code"] in ("payload_too_large", "dataset_too_large"), body
        assert 413 in statuses
        assert sampler.peak - baseline < budget
        assert after - baseline < budget // 4  # what the parses allocated went back
        assert httpx.get(f"{base}/health", timeout=5, trust_env=False).status_code == 200
        listed = httpx.get(f"{base}/datasets", headers=HEADERS, timeout=5, trust_env=False)
        assert [item["name"] for item in listed.json()["items"]] == ["small.csv.gz"]


# --- CPU: gzipped empty lines ------------------------------------------------------------------


def test_gzipped_empty_lines_stop_at_the_decompressed_cap(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Empty lines make no rows, so no memory charge ever stopped them: the whole stream was
    # inflated and scanned. The cap on decompressed bytes stops it while it streams.
    path = tmp_path / "empty.csv.gz"
    write_gzip_bomb(path, decompressed=256 * MiB, line=b"\n", header=b"a,b\n")
    settings = make_settings(max_upload_decompressed_bytes=8 * MiB, max_upload_compression_ratio=0)
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets", files={"file": ("empty.csv.gz", path.read_bytes())})
        body = assert_problem(response, 413, "payload_too_large", "file")
        assert body.get("limitBytes", body.get("limit_bytes")) == 8 * MiB
        assert "MLWORKER_MAX_UPLOAD_DECOMPRESSED_BYTES" in body["detail"]
        assert client.get("/datasets").json()["items"] == []


def test_gzipped_empty_lines_are_refused_by_the_ratio_guard(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "empty.csv.gz"
    write_gzip_bomb(path, decompressed=256 * MiB, line=b"\n", header=b"a,b\n")
    with TestClient(create_app(make_settings())) as client:
        response = client.post("/datasets", files={"file": ("empty.csv.gz", path.read_bytes())})
        body = assert_problem(response, 413, "payload_too_large", "file")
        assert "MLWORKER_MAX_UPLOAD_COMPRESSION_RATIO" in body["detail"]


def test_parse_deadline_bounds_the_time_an_upload_may_take(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Without caps, the deadline is what stops the parse; the code names the limit.
    path = tmp_path / "empty.csv.gz"
    write_gzip_bomb(path, decompressed=1024 * MiB, line=b"\n", header=b"a,b\n")
    settings = make_settings(
        max_upload_compression_ratio=0,
        max_upload_decompressed_bytes=64 * 1024**3,
        upload_parse_seconds=0.01,
    )
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets", files={"file": ("empty.csv.gz", path.read_bytes())})
        body = assert_problem(response, 413, "dataset_too_large", "file")
        assert "MLWORKER_UPLOAD_PARSE_SECONDS" in body["detail"]
        assert client.get("/datasets").json()["items"] == []


# --- duplicate column names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("dup.csv", b"a,a,b\n1,2,3\n4,5,6\n"),
        ("dup.csv.gz", gzip.compress(b"id,score,id\n1,2,3\n")),
        ("dup.tsv", b"x\ty\tx\n1\t2\t3\n"),
    ],
)
def test_upload_with_duplicate_column_names_is_400_naming_the_column(
    make_settings: SettingsFactory, filename: str, content: bytes
) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets", files={"file": (filename, content)})
        body = assert_problem(response, 400, "invalid_input", "file")
        assert body["column"] in ("a", "id", "x")
        assert repr(body["column"]) in body["detail"]
        assert client.get("/datasets").json()["items"] == []


def _duplicate_parquet(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["v", "v"])
    pq.write_table(table, path)


def test_parquet_upload_with_duplicate_column_names_is_400(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "dup.parquet"
    _duplicate_parquet(path)
    with TestClient(create_app(make_settings())) as client:
        response = client.post("/datasets", files={"file": ("dup.parquet", path.read_bytes())})
        body = assert_problem(response, 400, "invalid_input", "file")
        assert body["column"] == "v"


@pytest.mark.parametrize("name", ["dup.csv", "dup.parquet"])
def test_path_dataset_with_duplicate_columns_fails_with_invalid_input(
    make_settings: SettingsFactory, name: str
) -> None:
    settings = make_settings()
    if name.endswith(".csv"):
        (settings.data_root / name).write_text("a,b,a\n1,2,3\n")
    else:
        _duplicate_parquet(settings.data_root / name)
    with TestClient(create_app(settings)) as client:
        response = client.post("/datasets/profile", json={"dataset": {"path": name}})
        if response.status_code == 202:  # refused when the job reads the header
            job_id = response.json()["jobId"]

            def finished() -> dict[str, Any] | None:
                job: dict[str, Any] = client.get(f"/status/{job_id}").json()
                return job if job["status"] in ("completed", "failed") else None

            job = wait_for(finished, timeout=30)
            assert job["status"] == "failed", job
            assert job["error"]["code"] == "invalid_input", job
            assert "duplicate column name" in job["error"]["message"]
        else:  # or already at submission
            body = assert_problem(response, 400, "invalid_input")
            assert "duplicate column name" in body["detail"]
