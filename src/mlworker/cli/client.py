"""A small HTTP client for the CLI commands that talk to a running server."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape

err_console = Console(stderr=True)

UrlOption = typer.Option(
    "http://127.0.0.1:8000",
    "--url",
    envvar="MLWORKER_URL",
    help="Base URL of the ML Worker server.",
)
ApiKeyOption = typer.Option(
    None,
    "--api-key",
    envvar="MLWORKER_API_KEY",
    help="API key (needed when the server sets MLWORKER_API_KEYS).",
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` in red on stderr and exit with ``code``."""
    # Escaped: server details and problem codes ("[not_found]") are text, not rich markup.
    err_console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code)


def json_object(value: str | None, option: str) -> dict[str, Any]:
    """Parse a JSON-object option (``{}`` when absent); exit 2 naming ``option`` otherwise."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not JSON: {exc}", code=2)
    if not isinstance(parsed, dict):
        fail(f"{option} must be a JSON object", code=2)
    return parsed


class ApiClient:
    """Calls the ML Worker API; turns problem+json answers into readable errors."""

    def __init__(self, url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self._url = url

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON body (``None`` for 204)."""
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            fail(f"cannot reach ML Worker at {self._url} ({type(exc).__name__})")
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = body.get("detail") or body.get("title") or response.text
                code = body.get("code", response.status_code)
            except ValueError:
                detail, code = response.text, response.status_code
            fail(f"{detail} [{code}]")
        if response.status_code == 204:
            return None
        return response.json()

    def close(self) -> None:
        """Close connections."""
        self._client.close()
