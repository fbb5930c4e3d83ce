"""``mlworker jobs …``: list, show, submit, cancel and watch jobs on a running server."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from mlworker.cli.client import ApiClient, ApiKeyOption, UrlOption, fail
from mlworker.cli.progress import follow

app = typer.Typer(
    help="Inspect and control jobs on a running ML Worker server.", no_args_is_help=True
)
console = Console()

_STYLE = {"completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


def _status(status: str) -> str:
    style = _STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _timestamp(value: str) -> str:
    """``2026-01-02T03:04:05.678901Z`` → ``2026-01-02 03:04:05``."""
    return value.replace("T", " ")[:19]


def show_job(job: dict[str, Any]) -> None:
    """Print one job as a table, then its result or error as JSON."""
    table = Table(show_header=False, box=None)
    table.add_row("job", job["jobId"])
    table.add_row("type", escape(job["type"]))
    table.add_row("status", _status(job["status"]))
    progress = job["progress"]
    table.add_row("progress", f"{progress['fraction']:.0%}  {escape(progress['message'])}")
    table.add_row("attempts", str(job["attempts"]))
    for key in ("createdAt", "startedAt", "finishedAt"):
        table.add_row(key, job.get(key) or "—")
    console.print(table)
    if job.get("error"):
        console.print_json(json.dumps(job["error"]))
    elif job.get("result") is not None:
        console.print_json(json.dumps(job["result"]))


@app.command("list")
def list_jobs(
    status: Annotated[list[str] | None, typer.Option("--status", help="Filter by status.")] = None,
    job_type: Annotated[list[str] | None, typer.Option("--type", help="Filter by type.")] = None,
    limit: Annotated[int, typer.Option(help="Jobs per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """List jobs, newest first."""
    params: dict[str, Any] = {"limit": limit, "status": status or [], "type": job_type or []}
    if cursor:
        params["cursor"] = cursor
    page = ApiClient(url, api_key).request("GET", "/jobs", params=params)
    if as_json:
        console.print_json(json.dumps(page))
        return
    # Ids and times never wrap or shorten (they are copied into other commands); at 80 columns,
    # the width of piped output, the type column folds instead.
    table = Table(
        Column("job", no_wrap=True, min_width=20),
        Column("type", overflow="fold"),
        Column("status", no_wrap=True, min_width=9),
        Column("done", justify="right", no_wrap=True),
        Column("created (UTC)", no_wrap=True, min_width=19),
        box=box.SIMPLE_HEAD,
        show_edge=False,
    )
    for job in page["items"]:
        table.add_row(
            job["jobId"],
            escape(job["type"]),
            _status(job["status"]),
            f"{job['progress']['fraction']:.0%}",
            _timestamp(job["createdAt"]),
        )
    console.print(table)
    if page.get("nextCursor"):
        console.print(f"more: --cursor {page['nextCursor']}")


@app.command("show")
def show(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Show a job's status, progress and result or error."""
    show_job(ApiClient(url, api_key).request("GET", f"/status/{job_id}"))


@app.command("submit")
def submit(
    job_type: Annotated[str, typer.Argument(help="Job type, e.g. dataset_profile.")],
    params: Annotated[str, typer.Option(help="Parameters as a JSON object.")] = "{}",
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header.")] = None,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Submit a job of any type and print its id."""
    try:
        parsed = json.loads(params)
    except json.JSONDecodeError as exc:
        fail(f"--params is not JSON: {exc}", code=2)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = {"type": job_type, "params": parsed}
    job = ApiClient(url, api_key).request("POST", "/jobs", json=body, headers=headers)
    console.print(job["jobId"])


@app.command("cancel")
def cancel(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Cancel a queued job, or ask a running job to stop at its next progress report."""
    job = ApiClient(url, api_key).request("POST", f"/jobs/{job_id}/cancel")
    message = escape(job["progress"]["message"])
    console.print(f"{job['jobId']}: {_status(job['status'])} ({message})")


@app.command("watch")
def watch(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.5,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Follow a job with a live progress bar until it ends; exit 0 only if it completed."""
    client = ApiClient(url, api_key)
    job = follow(
        lambda: client.request("GET", f"/status/{job_id}"), console=console, interval=interval
    )
    show_job(job)
    raise typer.Exit(0 if job["status"] == "completed" else 1)
