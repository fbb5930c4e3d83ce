"""The engines behind algorithm models: a per-process cache, config validation, capabilities.

A built engine holds the model's live state; the cache keys it by ``(model id, state
revision)``, so the same instance serves every request until the state changes (an external
endpoint keeps its circuit breaker and response cache that long) and a new revision is picked up
by the next request that reads it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
from pydantic import ValidationError

from mlworker.egress import EgressPolicy
from mlworker.engines import ScoringEngine, build_engine, config_of, engine_class
from mlworker.errors import InvalidInput, MLWorkerError
from mlworker.services.jobs import validation_failed

#: Built engines kept per process.
ENGINE_CACHE_SIZE = 256

T = TypeVar("T")


class EngineCache:
    """A thread-safe LRU of built engines keyed by ``(model id, state revision)``.

    Only the newest revision of a model is kept: caching one evicts the model's older ones.
    """

    def __init__(self, size: int = ENGINE_CACHE_SIZE) -> None:
        self._size = size
        self._engines: OrderedDict[tuple[str, int], ScoringEngine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_id: str, revision: int) -> ScoringEngine | None:
        """Return the engine cached for this revision, if any."""
        with self._lock:
            engine = self._engines.get((model_id, revision))
            if engine is not None:
                self._engines.move_to_end((model_id, revision))
            return engine

    def put(self, model_id: str, revision: int, engine: ScoringEngine) -> None:
        """Cache ``engine`` as ``model_id``'s at ``revision``."""
        with self._lock:
            for key in [key for key in self._engines if key[0] == model_id]:
                if key[1] < revision:
                    del self._engines[key]
            if any(key[0] == model_id and key[1] > revision for key in self._engines):
                return  # a newer revision is already cached; never go back
            self._engines[(model_id, revision)] = engine
            while len(self._engines) > self._size:
                self._engines.popitem(last=False)

    def discard(self, model_id: str) -> None:
        """Forget every engine of ``model_id``."""
        with self._lock:
            for key in [key for key in self._engines if key[0] == model_id]:
                del self._engines[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._engines)


class RecentReads(Generic[T]):
    """Values read from the store, reused for ``seconds`` after the read (0 turns reuse off).

    The scoring hot path would otherwise read a model's row and state revision on every
    request. A server process forgets an entry at once when it changes the model itself;
    changes made by other processes (training jobs, other replicas) show within ``seconds``.
    """

    def __init__(
        self,
        seconds: float,
        *,
        size: int = ENGINE_CACHE_SIZE * 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> T | None:
        """Return the value read for ``key`` less than ``seconds`` ago, if any."""
        if self._seconds <= 0:
            return None
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            if self._clock() - found[0] >= self._seconds:
                del self._values[key]
                return None
            return found[1]

    def put(self, key: str, value: T) -> None:
        """Remember ``value`` as read now."""
        if self._seconds <= 0:
            return
        with self._lock:
            self._values[key] = (self._clock(), value)
            self._values.move_to_end(key)
            while len(self._values) > self._size:
                self._values.popitem(last=False)

    def discard(self, key: str | None = None) -> None:
        """Forget ``key`` (every key when ``None``)."""
        with self._lock:
            if key is None:
                self._values.clear()
            else:
                self._values.pop(key, None)


def is_incremental(model_type: str) -> bool:
    """Tell whether ``model_type``'s engine learns from outcomes without a full retrain."""
    cls = engine_class(model_type)
    return callable(getattr(cls, "update", None)) and callable(getattr(cls, "learn_one", None))


def engine_config(
    model_type: str, config: Mapping[str, Any], *, egress: EgressPolicy | None = None
) -> dict[str, Any]:
    """Validate ``config`` against the engine's model; return it camelCase, defaults filled.

    ``egress`` is the operator's policy: an external endpoint it denies is a 422 naming
    ``config.endpointUrl``.
    """
    try:
        validated = config_of(model_type, config, egress=egress)
    except ValidationError as exc:
        raise validation_failed(exc, prefix="config") from exc
    except ImportError as exc:
        raise InvalidInput(
            f"the {model_type} engine is not available in this installation ({exc})",
            field="modelType",
        ) from exc
    dumped: dict[str, Any] = validated.model_dump(mode="json", by_alias=True)
    return dumped


def initial_state(
    model_type: str, config: Mapping[str, Any], *, egress: EgressPolicy | None = None
) -> dict[str, Any]:
    """Return the state of an engine that has learned nothing yet."""
    return dict(build_engine(model_type, config, egress=egress).state())


def ranked_scores(
    engine: ScoringEngine,
    candidates: pd.DataFrame,
    offer_ids: Sequence[str],
    *,
    explain: bool,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Score candidates; ``{offerId, score[, modelExplanation]}`` from the highest score down.

    Ties keep the offers' order.

    Raises
    ------
    InvalidInput
        The engine refused the attributes (a plain ``ValueError`` from it).
    """
    try:
        if explain:
            explanations = engine.explain(candidates, rng=rng)
            scores = np.array([item.score for item in explanations], dtype=np.float64)
        else:
            scores = np.asarray(engine.score(candidates, rng=rng), dtype=np.float64)
    except ValueError as exc:
        if isinstance(exc, MLWorkerError):
            raise
        raise InvalidInput(
            f"the offers cannot be scored: {exc}", field="customerAttributes"
        ) from exc
    results = []
    for position in np.argsort(-scores, kind="stable").tolist():
        entry: dict[str, Any] = {"offerId": offer_ids[position], "score": float(scores[position])}
        if explain:
            entry["modelExplanation"] = explanations[position].to_dict()
        results.append(entry)
    return results
