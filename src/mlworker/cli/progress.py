"""Following a job to its end with a live progress bar (``jobs watch``, ``train``, ``optimize``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

#: Job states after which nothing changes.
FINISHED = frozenset({"completed", "failed", "cancelled"})


def follow(
    fetch: Callable[[], dict[str, Any]], *, console: Console, interval: float
) -> dict[str, Any]:
    """Poll ``fetch`` (a job in the ``/status`` shape) every ``interval`` seconds until it ends.

    The bar shows the status, the fraction done, the time elapsed and the job's progress
    message (for a search: the trial and the best score so far). Returns the finished job.
    """
    columns = (
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=1.0, status="queued")
        while True:
            job = fetch()
            progress.update(
                task,
                completed=job["progress"]["fraction"],
                description=escape(job["progress"]["message"]),
                status=job["status"],
            )
            if job["status"] in FINISHED:
                return job
            time.sleep(interval)
