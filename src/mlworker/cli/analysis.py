"""``mlworker analyze segments|policies|content FILE``: an analysis job on a local file.

Like ``mlworker train``: against a running server by default (the file is uploaded, then
``POST /analyze/<analysis>``), or ``--local`` in this process; a live progress bar while it runs,
then the findings as tables (``--json`` prints the whole result).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlworker.cli.client import ApiKeyOption, UrlOption, json_object
from mlworker.cli.training import (
    FileArgument,
    JsonOption,
    LocalOption,
    backend_for,
    console,
    run_job,
)

#: ``analyze/<analysis>`` (the API path) → job type.
JOB_OF_PATH = {
    "analyze/segments": "segmentation",
    "analyze/policies": "policy_analysis",
    "analyze/content": "content_analysis",
}


class Analysis(StrEnum):
    """The analyses, named as in their API paths."""

    SEGMENTS = "segments"
    POLICIES = "policies"
    CONTENT = "content"


def _show_segments(result: dict[str, Any]) -> None:
    console.print(
        f"k = {result['k']} ({escape(result['algorithm'])}), silhouette "
        f"{result['silhouette']:.3f}, {result['rowCount']:,} rows"
    )
    table = Table("segment", "name", "share", "rule (precision / recall)")
    for segment in result["segments"]:
        rule = segment.get("suggestedRule") or {}
        table.add_row(
            str(segment["clusterId"]),
            escape(segment["name"]),
            f"{segment['share']:.1%}",
            f"{escape(rule.get('text', ''))} "
            f"({rule.get('precision', 0):.2f} / {rule.get('recall', 0):.2f})",
        )
    console.print(table)


def _show_policies(result: dict[str, Any]) -> None:
    spot = result.get("sweetSpot") or {}
    console.print(
        f"{result['interactionCount']:,} contacts, response rate {result['responseRate']:.2%}; "
        f"weekly sweet spot: {spot.get('frequency', '—')}"
    )
    table = Table("recommendation", "policy", "confidence")
    for item in result["recommendations"]:
        table.add_row(
            escape(item["title"]),
            escape(json.dumps(item["payload"]["config"])),
            f"{item['confidence']:.3f}",
        )
    console.print(table)


def _show_content(result: dict[str, Any]) -> None:
    table = Table("feature", "direction", "importance", "lift")
    for item in result["featureImportance"][:10]:
        lift = item.get("lift")
        table.add_row(
            escape(item["feature"]),
            item["direction"],
            f"{item['importance']:.4f}",
            "—" if lift is None else f"{lift:.2f}",
        )
    console.print(table)
    for insight in result.get("insights", []):
        console.print(f"• {escape(insight['text'])}")


_SHOW = {
    Analysis.SEGMENTS: _show_segments,
    Analysis.POLICIES: _show_policies,
    Analysis.CONTENT: _show_content,
}


def analyze(
    analysis: Annotated[Analysis, typer.Argument(help="segments, policies or content.")],
    path: FileArgument,
    config: Annotated[
        str | None,
        typer.Option(help="The analysis config as a JSON object, e.g. '{\"maxClusters\": 6}'."),
    ] = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
    url: str = UrlOption,
    api_key: str | None = ApiKeyOption,
) -> None:
    """Run an analysis on a local file and print what it found."""
    result = run_job(
        backend_for(local, url, api_key),
        path,
        f"analyze/{analysis.value}",
        {"config": json_object(config, "--config")},
    )
    if as_json:
        console.print_json(json.dumps(result))
        return
    _SHOW[analysis](result)
