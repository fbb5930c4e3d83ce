"""``mlworker train`` and ``mlworker optimize``: a model or a search from a local file.

Against a running server by default: the file is uploaded (``POST /datasets``), the request is
submitted with ``{"dataset": {"datasetId": …}}`` and ``async: true``, and ``/status`` is polled
behind a live progress bar. ``--local`` does the same in this process (an inline runner on the
configured database), no server needed. Either way the result ends in a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlworker.cli.client import ApiClient, ApiKeyOption, UrlOption, fail, json_object
from mlworker.cli.progress import follow

console = Console()
_POLL_SECONDS = 0.25

FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="CSV, TSV or Parquet file.")
]
TargetOption = Annotated[str, typer.Option("--target", help="Column to predict.")]
LocalOption = Annotated[
    bool, typer.Option("--local", help="Run in this process instead of on a server.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the raw result as JSON.")]


class Backend(Protocol):
    """Where the work runs: a server over HTTP, or this process."""

    def upload(self, path: Path) -> str:
        """Upload ``path``; return its dataset id."""

    def submit(self, kind: str, params: dict[str, Any]) -> str:
        """Submit ``train``, ``optimize`` or ``analyze/<analysis>``; return the job id."""

    def status(self, job_id: str) -> dict[str, Any]:
        """Return ``status``, ``progress`` (fraction, message), ``result`` and ``error``."""

    def close(self) -> None:
        """Release what the backend holds."""


class RemoteBackend:
    """A running ML Worker server."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self._client = ApiClient(url, api_key, timeout=600)

    def upload(self, path: Path) -> str:
        """Upload with ``POST /datasets``."""
        with path.open("rb") as handle:
            dataset = self._client.request("POST", "/datasets", files={"file": (path.name, handle)})
        return str(dataset["datasetId"])

    def submit(self, kind: str, params: dict[str, Any]) -> str:
        """``POST /train`` or ``/optimize`` with ``async: true``; ``POST /analyze/…`` as is."""
        body = params if kind.startswith("analyze/") else {**params, "async": True}
        return str(self._client.request("POST", f"/{kind}", json=body)["jobId"])

    def status(self, job_id: str) -> dict[str, Any]:
        """``GET /status/{job_id}``."""
        job: dict[str, Any] = self._client.request("GET", f"/status/{job_id}")
        return job

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class LocalBackend:
    """The service's own objects in this process, jobs on an inline runner."""

    tenant = "default"

    def __init__(self) -> None:
        import optuna

        from mlworker.config import load_settings
        from mlworker.errors import ConfigurationError
        from mlworker.logs import configure_logging
        from mlworker.services.container import Services

        try:
            settings = load_settings(executor="inline", log_level="WARNING")
        except ConfigurationError as exc:
            fail(str(exc), code=2)
        configure_logging(settings)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._services = Services(settings)
        self._services.start()

    def upload(self, path: Path) -> str:
        """Store the file as an upload."""
        with path.open("rb") as handle:
            info = self._services.datasets.upload(
                tenant=self.tenant, filename=path.name, content=handle
            )
        return info.id

    def submit(self, kind: str, params: dict[str, Any]) -> str:
        """Submit the job on the inline runner."""
        from mlworker.services.optimize_request import OptimizeParams

        if kind.startswith("analyze/"):
            from mlworker.cli.analysis import JOB_OF_PATH

            submission = self._services.analysis.submit(
                JOB_OF_PATH[kind], params, tenant=self.tenant
            )
        elif kind == "optimize":
            submission = self._services.studies.submit(
                tenant=self.tenant, params=OptimizeParams(**params)
            )
        else:
            submission = self._services.jobs.submit(
                tenant=self.tenant, job_type=kind, params=params, field_prefix=""
            )
        return submission.job.id

    def status(self, job_id: str) -> dict[str, Any]:
        """Read the job row."""
        job = self._services.jobs.get(job_id, tenant=self.tenant)
        return {
            "status": job.status.value,
            "progress": {"fraction": job.progress_fraction, "message": job.progress_message},
            "result": job.result,
            "error": job.error.to_dict() if job.error else None,
        }

    def close(self) -> None:
        """Stop the runner and close the database."""
        self._services.close()


def run_job(backend: Backend, path: Path, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Upload ``path``, submit ``kind`` on it, follow the job; exit 1 with the reason on failure."""
    from mlworker.errors import MLWorkerError

    try:
        dataset_id = backend.upload(path)
        job_id = backend.submit(kind, {"dataset": {"datasetId": dataset_id}, **params})
        job = _follow(backend, job_id)
    except MLWorkerError as exc:
        where = f" [{exc.field}]" if exc.field else ""
        fail(f"{exc.message}{where}")
    finally:
        backend.close()
    if job["status"] != "completed":
        error = job.get("error") or {}
        where = f" [{error['field']}]" if error.get("field") else ""
        fail(f"{kind} {job['status']}: {error.get('message', 'no reason recorded')}{where}")
    result: dict[str, Any] = job["result"]
    return result


def _follow(backend: Backend, job_id: str) -> dict[str, Any]:
    return follow(lambda: backend.status(job_id), console=console, interval=_POLL_SECONDS)


def backend_for(local: bool, url: str, api_key: str | None) -> Backend:
    """Return this process (``--local``) or the server at ``url`` as the backend."""
    return LocalBackend() if local else RemoteBackend(url, api_key)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else escape(str(value))


def _pairs(title: str, values: dict[str, Any]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("name")
    table.add_column("value", justify="right")
    for name, value in values.items():
        table.add_row(escape(str(name)), _number(value))
    return table


def _show_warnings(result: dict[str, Any]) -> None:
    for warning in result.get("warnings") or []:
        console.print(f"[yellow]warning:[/yellow] {escape(str(warning))}")


def train(
    path: FileArgument,
    target: TargetOption,
    algorithm: Annotated[str, typer.Option(help="Algorithm name (GET /algorithms).")] = (
        "RandomForestClassifier"
    ),
    hyperparams: Annotated[
        str | None, typer.Option(help="Hyperparameters as a JSON object, e.g. '{\"C\": 0.5}'.")
    ] = None,
    test_size: Annotated[float, typer.Option(help="Share of rows held out.")] = 0.2,
    random_state: Annotated[int, typer.Option(help="Seed.")] = 42,
    local: LocalOption = False,
    as_json: JsonOption = False,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Train a model on a local file and print its held-out metrics."""
    params = {
        "target_column": target,
        "algorithm": algorithm,
        "hyperparams": json_object(hyperparams, "--hyperparams"),
        "test_size": test_size,
        "random_state": random_state,
    }
    result = run_job(backend_for(local, url, api_key), path, "train", params)
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(
        f"[bold]{escape(result['model_id'])}[/bold]  {escape(result['algorithm'])}  "
        f"{result['n_train']} training rows, {result['n_test']} held out"
    )
    console.print(_pairs("held-out metrics", result["metrics"]))
    _show_warnings(result)


def optimize(
    path: FileArgument,
    target: TargetOption,
    algorithm: Annotated[
        str, typer.Option(help='Algorithm name, or "auto" to search every algorithm.')
    ] = "auto",
    trials: Annotated[int, typer.Option("--trials", help="Trial budget.")] = 50,
    timeout: Annotated[
        float | None, typer.Option(help="Seconds for the whole search (auto: 60).")
    ] = None,
    cv_folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    scoring: Annotated[str | None, typer.Option(help="Score to maximise.")] = None,
    workers: Annotated[int, typer.Option(help="Processes running trials.")] = 1,
    train_best: Annotated[bool, typer.Option(help="Also train the best parameters.")] = False,
    random_state: Annotated[int, typer.Option(help="Seed.")] = 42,
    local: LocalOption = False,
    as_json: JsonOption = False,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Search hyperparameters on a local file; print the best ones (and the leaderboard)."""
    params: dict[str, Any] = {
        "target_column": target,
        "algorithm": algorithm,
        "n_trials": trials,
        "cv_folds": cv_folds,
        "n_workers": workers,
        "train_best": train_best,
        "random_state": random_state,
    }
    if timeout is not None:
        params["timeout"] = timeout
    if scoring is not None:
        params["scoring"] = scoring
    result = run_job(backend_for(local, url, api_key), path, "optimize", params)
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(
        f"[bold]{escape(result['study_id'])}[/bold]  best {escape(result['algorithm'])}  "
        f"{result['scoring']} {result['best_score']:.4f}"
    )
    console.print(
        f"{result['n_trials']} trials: {result['n_completed']} completed, "
        f"{result['n_pruned']} pruned, {result['n_failed']} failed in {result['elapsed']:.1f} s"
    )
    console.print(_pairs("best parameters", result["best_params"]))
    if result.get("leaderboard"):
        board = Table("algorithm", "best score", "trials", "seconds", title="leaderboard")
        for row in result["leaderboard"]:
            score = row["best_score"]
            board.add_row(
                escape(row["algorithm"]),
                "—" if score is None else f"{score:.4f}",
                str(row["trials"]),
                f"{row['seconds']:.1f}",
            )
        console.print(board)
    if result.get("model_id"):
        console.print(f"model [bold]{escape(result['model_id'])}[/bold]")
        console.print(_pairs("held-out metrics", result["metrics"]))
    _show_warnings(result)
