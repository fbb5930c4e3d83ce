"""``mlworker datasets …``: upload and inspect datasets on a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlworker.cli.client import ApiClient, ApiKeyOption, UrlOption

app = typer.Typer(
    help="Upload and inspect datasets on a running ML Worker server.", no_args_is_help=True
)
console = Console()


def _print_dataset(dataset: dict[str, object]) -> None:
    console.print(
        f"[bold]{dataset['datasetId']}[/bold]  {escape(str(dataset['name']))}  "
        f"{dataset['rowCount']} rows  fingerprint {str(dataset['fingerprint'])[:12]}"
    )
    table = Table("column", "kind", "dtype", "missing", "distinct")
    for column in dataset["columns"]:  # type: ignore[attr-defined]
        table.add_row(
            escape(column["name"]),
            column["kind"],
            column["dtype"],
            str(column["missing"]),
            str(column["distinct"]),
        )
    console.print(table)


@app.command("upload")
def upload(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV/TSV/Parquet file.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print raw JSON.")] = False,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Upload a file; prints its datasetId and column profile."""
    data = {"name": name} if name else {}
    with path.open("rb") as handle:
        dataset = ApiClient(url, api_key, timeout=600).request(
            "POST", "/datasets", files={"file": (path.name, handle)}, data=data
        )
    if as_json:
        console.print_json(json.dumps(dataset))
    else:
        _print_dataset(dataset)


@app.command("show")
def show(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id (ds-…).")],
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Show an uploaded dataset's profile."""
    _print_dataset(ApiClient(url, api_key).request("GET", f"/datasets/{dataset_id}"))
