"""The ``mlworker`` command line: help, configuration errors, ``db``, and the commands that talk
to a live server (``jobs``, ``datasets``), plus ``serve`` as a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from mlworker.cli import app
from mlworker.store import migrate
from tests.conftest import SettingsFactory
from tests.support import free_port, live_server, wait_for

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_JOB_ID = re.compile(r"^job-[0-9a-f]{16}$")


def _plain(text: str) -> str:
    # Typer forces colour on CI (GITHUB_ACTIONS, FORCE_COLOR); assertions read plain text.
    return _ANSI.sub("", text)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Invoke ``mlworker`` in-process at a fixed width, without the caller's client variables."""
    for name in ("MLWORKER_URL", "MLWORKER_API_KEY", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        # 80 columns: what rich uses when output is piped, the narrowest case.
        return runner.invoke(app, list(args), env={"COLUMNS": "80", **(env or {})})

    yield invoke


def out(result: Result) -> str:
    return _plain(result.stdout)


def err(result: Result) -> str:
    """Stderr as one line: rich wraps long lines (and boxes them) at the console width."""
    return " ".join(_plain(result.stderr).replace("│", " ").split())


def json_tail(text: str) -> Any:
    """The JSON document printed after ``jobs show``'s table (from the first line ``{``)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "{")
    return json.loads("\n".join(lines[start:]))


# --- help ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [],
            {
                "serve": "Start the HTTP server",
                "worker": "Start a Celery worker",
                "db": "Manage the metadata database schema",
                "jobs": "Inspect and control jobs",
                "datasets": "Upload and inspect datasets",
            },
        ),
        (
            ["db"],
            {
                "upgrade": "Apply migrations up to",
                "downgrade": "Revert migrations down to",
                "current": "Print the database's revision",
            },
        ),
        (
            ["jobs"],
            {
                "list": "List jobs, newest first",
                "show": "Show a job's status",
                "submit": "Submit a job of any type",
                "cancel": "Cancel a queued job",
                "watch": "Follow a job with a live progress bar",
            },
        ),
        (
            ["datasets"],
            {"upload": "Upload a file", "show": "Show an uploaded dataset's profile"},
        ),
    ],
    ids=["mlworker", "db", "jobs", "datasets"],
)
def test_help_explains_every_command(cli: Any, args: list[str], expected: dict[str, str]) -> None:
    result = cli(*args, "--help")

    assert result.exit_code == 0, result.output
    text = " ".join(out(result).replace("│", " ").split())  # undo rich's wrapping
    for command, summary in expected.items():
        assert re.search(rf"\b{re.escape(command)}\b", text), command
        assert summary in text, (command, summary)
    # Every listed command has its own help page too.
    for command in expected:
        sub = cli(*args, command, "--help")
        assert sub.exit_code == 0, sub.output
        assert "Usage:" in out(sub)


def test_server_commands_document_url_and_api_key_options(cli: Any) -> None:
    result = cli("jobs", "submit", "--help")

    text = out(result)
    assert result.exit_code == 0
    assert "--url" in text and "--api-key" in text and "--params" in text
    assert "MLWORKER_URL" in text and "MLWORKER_API_KEY" in text


def test_serve_workers_means_server_processes_and_pool_size_the_job_pool(cli: Any) -> None:
    result = cli("serve", "--help")

    text = " ".join(out(result).replace("│", " ").split())
    assert result.exit_code == 0
    assert "--workers" in text and "HTTP server processes" in text
    assert "MLWORKER_SERVER_WORKERS" in text
    assert "--pool-size" in text and "MLWORKER_WORKERS" in text


# --- configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"MLWORKER_EXECUTOR": "bogus"}, ["db", "current"], "MLWORKER_EXECUTOR"),
        ({"MLWORKER_EXECUTOR": "bogus"}, ["serve"], "MLWORKER_EXECUTOR"),
        ({"ML_WORKER_PORT": "notaport"}, ["serve"], "ML_WORKER_PORT"),
        ({"ML_WORKER_PORT": "notaport"}, ["worker"], "ML_WORKER_PORT"),
        ({"MLWORKER_EXECUTOR": "celery"}, ["serve"], "MLWORKER_BROKER_URL"),
    ],
)
def test_invalid_configuration_exits_2_naming_the_variable(
    cli: Any, env: dict[str, str], args: list[str], named: str
) -> None:
    result = cli(*args, env=env)

    assert result.exit_code == 2, result.output
    assert "invalid configuration" in err(result)
    assert named in err(result)
    assert "Traceback" not in result.output


def test_worker_without_broker_exits_2(cli: Any) -> None:
    result = cli("worker")

    assert result.exit_code == 2
    assert "MLWORKER_BROKER_URL is not set" in err(result)


# --- db ------------------------------------------------------------------------------------------
def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_db_upgrade_current_and_downgrade_on_sqlite(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "cli.db"
    env = {"DATABASE_URL": f"sqlite:///{path}"}
    head = migrate.head_revision()
    assert head is not None

    before = cli("db", "current", env=env)
    assert before.exit_code == 0, before.output
    assert out(before).split() == ["current:", "None", "head:", head]

    upgraded = cli("db", "upgrade", env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert out(upgraded).strip().endswith(f"at revision {head}")
    assert "mlw_jobs" in _tables(path)

    current = cli("db", "current", env=env)
    assert current.exit_code == 0, current.output
    assert out(current).split() == ["current:", head, "head:", head]

    downgraded = cli("db", "downgrade", "base", env=env)
    assert downgraded.exit_code == 0, downgraded.output
    assert out(downgraded).strip().endswith("at revision None")
    assert not {name for name in _tables(path) if name.startswith("mlw_")} - {migrate.VERSION_TABLE}

    after = cli("db", "current", env=env)
    assert out(after).split() == ["current:", "None", "head:", head]


def test_db_downgrade_needs_a_revision(cli: Any) -> None:
    result = cli("db", "downgrade")

    assert result.exit_code == 2
    assert "Missing argument 'REVISION'" in err(result)


# --- jobs against a live server ------------------------------------------------------------------
@pytest.fixture
def server(make_settings: SettingsFactory) -> Iterator[str]:
    """A live server with the local process pool and the diagnostic job types."""
    with live_server(make_settings(executor="local", workers=2)) as url:
        yield url


def _status(url: str, job_id: str, api_key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{url}/status/{job_id}", headers=headers, timeout=10)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


def _submit(cli: Any, url: str, job_type: str, params: dict[str, Any], *extra: str) -> str:
    result = cli("jobs", "submit", job_type, "--params", json.dumps(params), "--url", url, *extra)
    assert result.exit_code == 0, result.output
    job_id = out(result).strip()
    assert _JOB_ID.match(job_id), job_id
    return job_id


def test_submit_prints_the_id_and_watch_follows_the_job_to_completion(
    cli: Any, server: str
) -> None:
    job_id = _submit(cli, server, "diagnostics.sleep", {"seconds": 1})
    assert _status(server, job_id)["status"] in ("queued", "running")

    result = cli("jobs", "watch", job_id, "--interval", "0.1", "--url", server)

    assert result.exit_code == 0, result.output
    text = out(result)
    assert re.search(r"completed\s.*100%", text), text  # the final progress line
    assert re.search(r"status\s+completed", text)
    assert json_tail(text) == {"slept": 1.0, "steps": 10, "attempt": 1}
    assert _status(server, job_id)["status"] == "completed"


def test_watch_exits_1_and_shows_the_error_when_the_job_fails(cli: Any, server: str) -> None:
    job_id = _submit(
        cli, server, "diagnostics.sleep", {"seconds": 0.2, "steps": 2, "fail_with": "bad input"}
    )

    result = cli("jobs", "watch", job_id, "--interval", "0.1", "--url", server)

    assert result.exit_code == 1, result.output
    text = out(result)
    assert re.search(r"status\s+failed", text)
    assert json_tail(text) == {
        "code": "invalid_input",
        "message": "bad input",
        "field": "params.fail_with",
    }


def test_list_shows_the_job_and_show_prints_its_result(cli: Any, server: str) -> None:
    job_id = _submit(cli, server, "diagnostics.sleep", {"seconds": 0.1, "steps": 1})
    wait_for(lambda: _status(server, job_id)["status"] == "completed", timeout=30)

    listed = cli("jobs", "list", "--url", server)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in out(listed).splitlines() if job_id in line)
    assert "completed" in row and "100%" in row

    failed_only = cli("jobs", "list", "--status", "failed", "--url", server)
    assert failed_only.exit_code == 0, failed_only.output
    assert job_id not in out(failed_only)

    as_json = cli("jobs", "list", "--json", "--type", "diagnostics.sleep", "--url", server)
    assert as_json.exit_code == 0, as_json.output
    page = json.loads(out(as_json))
    assert [job["jobId"] for job in page["items"]] == [job_id]

    shown = cli("jobs", "show", job_id, "--url", server)
    assert shown.exit_code == 0, shown.output
    assert re.search(rf"job\s+{job_id}", out(shown))
    assert re.search(r"type\s+diagnostics\.sleep", out(shown))
    assert json_tail(out(shown)) == {"slept": 0.1, "steps": 1, "attempt": 1}


def test_cancel_stops_a_running_job(cli: Any, server: str) -> None:
    job_id = _submit(cli, server, "diagnostics.sleep", {"seconds": 60, "steps": 600})
    wait_for(lambda: _status(server, job_id)["status"] == "running", timeout=30)

    result = cli("jobs", "cancel", job_id, "--url", server)

    assert result.exit_code == 0, result.output
    assert out(result).strip() == f"{job_id}: running (cancelling)"
    job = wait_for(
        lambda: (job := _status(server, job_id))["status"] == "cancelled" and job, timeout=10
    )
    assert job["error"]["code"] == "cancelled"

    watched = cli("jobs", "watch", job_id, "--url", server)
    assert watched.exit_code == 1
    assert re.search(r"status\s+cancelled", out(watched))

    again = cli("jobs", "cancel", job_id, "--url", server)
    assert again.exit_code == 1
    assert f"job '{job_id}' already cancelled [job_not_cancellable]" in err(again)


@pytest.mark.parametrize("command", ["show", "watch", "cancel"])
def test_unknown_job_id_exits_1_with_the_problem_detail(
    cli: Any, server: str, command: str
) -> None:
    result = cli("jobs", command, "job-0000000000000000", "--url", server)

    assert result.exit_code == 1
    assert "error: job 'job-0000000000000000' not found [not_found]" in err(result)
    assert "Traceback" not in result.output


def test_submit_reports_invalid_params(cli: Any, server: str) -> None:
    not_json = cli("jobs", "submit", "diagnostics.sleep", "--params", "{nope", "--url", server)
    assert not_json.exit_code == 2
    assert "--params is not JSON" in err(not_json)

    invalid = cli(
        "jobs", "submit", "diagnostics.sleep", "--params", '{"seconds": -1}', "--url", server
    )
    assert invalid.exit_code == 1
    assert "params.seconds" in err(invalid) and "[validation_error]" in err(invalid)

    unknown = cli("jobs", "submit", "no.such.type", "--url", server)
    assert unknown.exit_code == 1
    assert "no.such.type" in err(unknown)


def test_unreachable_server_is_reported_plainly(cli: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    result = cli("jobs", "list", "--url", url)

    assert result.exit_code == 1
    assert f"cannot reach ML Worker at {url}" in err(result)


def test_api_keys_are_enforced(cli: Any, make_settings: SettingsFactory) -> None:
    settings = make_settings(executor="local", workers=1, api_keys={"k1": "t1"})
    with live_server(settings) as url:
        job_id = _submit(cli, url, "diagnostics.noop", {}, "--api-key", "k1")
        wait_for(lambda: _status(url, job_id, "k1")["status"] == "completed", timeout=30)

        with_key = cli("jobs", "show", job_id, "--url", url, "--api-key", "k1")
        assert with_key.exit_code == 0, with_key.output
        assert re.search(r"status\s+completed", out(with_key))

        from_env = cli("jobs", "list", "--url", url, env={"MLWORKER_API_KEY": "k1"})
        assert from_env.exit_code == 0, from_env.output
        assert job_id in out(from_env)

        without = cli("jobs", "list", "--url", url)
        assert without.exit_code == 1
        assert "send 'Authorization: Bearer <api key>' [unauthorized]" in err(without)

        wrong = cli("jobs", "show", job_id, "--url", url, "--api-key", "k2")
        assert wrong.exit_code == 1
        assert "invalid API key [unauthorized]" in err(wrong)


# --- datasets ------------------------------------------------------------------------------------
def test_datasets_upload_prints_the_profile_and_show_finds_it(
    cli: Any, server: str, tmp_path: Path
) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text("age,city,churned\n34,Paris,yes\n29,Lyon,no\n41,Paris,no\n")

    uploaded = cli("datasets", "upload", str(csv), "--name", "customers", "--url", server)

    assert uploaded.exit_code == 0, uploaded.output
    text = out(uploaded)
    header = text.splitlines()[0].split()
    dataset_id = header[0]
    assert dataset_id.startswith("ds-")
    assert header[1:4] == ["customers", "3", "rows"]
    cells = [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
    kinds = {row[0]: row[1] for row in cells}
    assert kinds == {"age": "numeric", "city": "categorical", "churned": "boolean"}

    shown = cli("datasets", "show", dataset_id, "--url", server)
    assert shown.exit_code == 0, shown.output
    assert out(shown).splitlines()[0].split()[:4] == [dataset_id, "customers", "3", "rows"]

    as_json = cli("datasets", "upload", str(csv), "--json", "--url", server)
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(out(as_json))
    assert body["rowCount"] == 3
    assert [column["name"] for column in body["columns"]] == ["age", "city", "churned"]


def test_datasets_upload_of_a_missing_file_exits_2(cli: Any, tmp_path: Path) -> None:
    result = cli("datasets", "upload", str(tmp_path / "absent.csv"))

    assert result.exit_code == 2
    assert "does not exist" in err(result)


# --- serve as a real process ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_answers_health_and_stops_cleanly_on_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    port = free_port()
    database = tmp_path / "var" / "served.db"
    env = {
        **os.environ,
        "ML_WORKER_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{database}",
        "MLWORKER_DATA_ROOT": str(tmp_path / "data"),
        "MLWORKER_ARTIFACTS": str(tmp_path / "artifacts"),
        "MLWORKER_WORKERS": "1",
        "MLWORKER_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlworker", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def health() -> httpx.Response | None:
            if process.poll() is not None:
                pytest.fail(f"serve exited early:\n{log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
            except httpx.TransportError:
                return None

        response = wait_for(health, timeout=60, interval=0.1)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "capabilities"}
        assert body["status"] == "ok"
        assert isinstance(body["capabilities"], list)
        assert all(isinstance(name, str) for name in body["capabilities"])

        process.send_signal(stop_signal)
        exit_code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    assert exit_code == 0, log_path.read_text()[-3000:]
    assert "Traceback" not in log_path.read_text()
    assert database.is_file()
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute(
            f"SELECT version_num FROM {migrate.VERSION_TABLE}"
        ).fetchone()
    assert revision == migrate.head_revision()


@pytest.mark.slow
def test_serve_with_two_processes_migrates_runs_jobs_and_stops_within_the_grace(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path / "var" / "served.db"
    env = {
        **os.environ,
        "ML_WORKER_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{database}",
        "MLWORKER_DATA_ROOT": str(tmp_path / "data"),
        "MLWORKER_ARTIFACTS": str(tmp_path / "artifacts"),
        "MLWORKER_DIAGNOSTIC_JOBS": "true",
        "MLWORKER_SHUTDOWN_GRACE_SECONDS": "8",
        "MLWORKER_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlworker", "serve", "--workers", "2", "--pool-size", "2"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"serve exited early:\n{log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{url}/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=120, interval=0.2)
        with httpx.Client(base_url=url, timeout=10) as http:
            ids = [
                http.post(
                    "/jobs", json={"type": "diagnostics.sleep", "params": {"seconds": 0.2}}
                ).json()["jobId"]
                for _ in range(6)
            ]
            for job_id in ids:
                wait_for(
                    lambda job_id=job_id: (
                        http.get(f"/status/{job_id}").json()["status"] == "completed"
                    ),
                    timeout=60,
                )
            attempts = {http.get(f"/status/{job_id}").json()["attempts"] for job_id in ids}
        log_text = log_path.read_text()
        assert log_text.count("Application startup complete") == 2  # two server processes
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=30)
        took = time.monotonic() - began
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    assert attempts == {1}  # each ran once, whichever process took it
    assert exit_code == 0, log_path.read_text()[-3000:]
    assert took < 8
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute(
            f"SELECT version_num FROM {migrate.VERSION_TABLE}"
        ).fetchone()
    assert revision == migrate.head_revision()
