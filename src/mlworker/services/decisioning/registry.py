"""Models and registry families read on every scoring request, cached for a moment."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlworker.errors import NotFound
from mlworker.registry.values import AlgorithmModel

if TYPE_CHECKING:
    from mlworker.services.algorithm_models import AlgorithmModelService


class RegistryCache:
    """Models by key and registry families, each kept ``ttl`` seconds.

    Every request needs its models' configuration and families; they change rarely (a
    promotion, an edit), so re-reading them a second later is soon enough. What a model has
    *learned* is never cached here: the engine is looked up by state revision on every call.
    A key found missing is remembered as missing for ``ttl`` seconds too.
    """

    def __init__(self, models: AlgorithmModelService, *, ttl: float, max_entries: int = 10_000):
        self._models = models
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[tuple[str, str, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str, str], load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        if self._ttl > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    self._entries.clear()
                self._entries[key] = (now + self._ttl, value)
        return value

    def model(self, key: str, *, tenant: str) -> AlgorithmModel | None:
        """Return the tenant's model with ``key``, or ``None`` when it has none."""

        def load() -> AlgorithmModel | None:
            try:
                return self._models.get_by_key(key, tenant=tenant)
            except NotFound:
                return None

        found: AlgorithmModel | None = self._cached(("model", tenant, key), load)
        return found

    def family(self, family: str, *, tenant: str) -> list[AlgorithmModel]:
        """Return the members of the tenant's registry ``family``."""
        members: list[AlgorithmModel] = self._cached(
            ("family", tenant, family),
            lambda: self._models.family_members(family, tenant=tenant),
        )
        return members
