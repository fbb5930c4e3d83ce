"""The dataset-source protocol: one implementation per way of naming data."""

from __future__ import annotations

from typing import Any, Protocol

from mlworker.data.budget import MemoryBudget
from mlworker.data.values import SourceData


class DatasetSource(Protocol):
    """Reads one kind of dataset spec into Arrow.

    ``validate`` runs when a job is submitted and must be cheap (no rows read): it is how a bad
    path or an unknown column becomes a 400 at once instead of a failed job later.
    """

    def validate(self, spec: Any, *, tenant: str) -> None:
        """Raise an :class:`~mlworker.errors.InvalidInput` subclass if ``spec`` cannot load."""

    def read(self, spec: Any, *, tenant: str, budget: MemoryBudget) -> SourceData:
        """Read the rows ``spec`` names, charging ``budget``."""
