"""Composition root of the HTTP server: ``create_app(settings)`` builds the whole app.

``uvicorn --factory mlworker.main:create_app`` works too; ``mlworker serve`` is the usual way
(it builds the app through :func:`create_served_app`).
"""

from __future__ import annotations

import gc

from fastapi import FastAPI

from mlworker.api.app import create_app
from mlworker.config import Settings

__all__ = ["create_app", "create_served_app"]


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for a long-lived server process (the factory of ``mlworker serve``).

    Everything imported and built by now (libraries, routes, schemas) lives as long as the
    process, so it is moved out of the garbage collector's reach: collections while serving no
    longer walk it, and neither does the interpreter's final collection, which otherwise took
    seconds of the shutdown grace period.

    Parameters
    ----------
    settings
        Configuration; read from the environment when omitted (each process of
        ``mlworker serve --workers N`` reads its own).
    """
    app = create_app(settings)
    gc.freeze()
    return app
