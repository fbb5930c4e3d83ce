"""Composition root of the HTTP server: ``create_app(settings)`` builds the whole app.

``uvicorn --factory mlworker.main:create_app`` works too; ``mlworker serve`` is the usual way.
"""

from mlworker.api.app import create_app

__all__ = ["create_app"]
