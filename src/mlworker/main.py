"""Composition root of the HTTP server: ``create_app(settings)`` builds the whole app.

``uvicorn --factory mlworker.main:create_app`` works too; ``mlworker serve`` is the usual way
(it builds the app through :func:`create_served_app`).
"""

from __future__ import annotations

from mlworker.api.app import create_app, create_served_app

__all__ = ["create_app", "create_served_app"]
