"""External model endpoint: score candidates by calling an HTTP prediction service.

Bring-your-own models (SageMaker, Vertex AI, Azure ML, MLflow, BentoML, any HTTP service that
returns scores) score through this engine (seed 003, "External Model Endpoint"). The engine
learns nothing: ``fit`` only checks its input, and the state is empty.

Requests
    ``scoringMode: "batch"`` POSTs every candidate in one request,
    ``{"instances": [{"customerId": ..., "offerId": ..., <attributes>}, ...]}``;
    ``"single"`` POSTs one instance object per candidate, up to ``maxConcurrency`` at a time.
    ``requestFormat`` renames or drops the wrapper and limits the attributes sent
    (:mod:`~mlworker.engines.http_scoring.payload`). ``authType`` adds an API key header, a
    bearer token or an AWS Signature V4 (:mod:`~mlworker.engines.http_scoring.auth`).
Answers
    Scores are read at the ``responseMapping`` dot paths and must be numbers in ``[0, 1]``
    (:mod:`~mlworker.engines.http_scoring.mapping`).
Egress
    Every connection passes the operator's :class:`~mlworker.egress.EgressPolicy`, which the
    config carries from its validation (:attr:`ExternalEndpointConfig.egress`): internal
    addresses (loopback, private, link-local, metadata) are refused unless allow-listed, every
    address a name resolves to is checked when connecting, and the server's own AWS
    credentials sign only for hosts the operator lists.
Failures
    A refusal by the egress policy, a timeout (``timeoutMs``, default 200), a connection error,
    a non-2xx answer, a body that is not JSON, a missing or invalid score, or a batch with the
    wrong number of scores fails the call: every candidate in it gets ``fallbackScore``, the
    failure is counted (its reason is a short category such as ``endpoint_unreachable``; the
    detail goes to the server log only), and the circuit breaker moves towards open. While it
    is open no request is made and :attr:`Engine.available` is ``False``, so the decisioning
    layer can fall back further.
Cache
    With ``cache.enabled``, answers are kept per instance for ``ttlSeconds``; only successful
    answers are cached.

Secrets (:data:`SECRET_FIELDS`) never appear in ``repr``, logs, errors or the state.

Examples
--------
>>> engine = Engine(ExternalEndpointConfig(endpoint_url="https://models.example.com/score"))
>>> engine.is_trained, engine.available, engine.state()
(True, True, {})
>>> engine.score(pd.DataFrame({"customerId": [], "offerId": []})).shape
(0,)
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from mlworker.engines._base import EngineConfig, Explanation, as_outcomes
from mlworker.engines.http_scoring.client import (
    SHORT_CIRCUITED,
    EndpointScores,
    EndpointStats,
    ScoringClient,
    authenticator_for,
)
from mlworker.engines.http_scoring.config import (
    SECRET_FIELDS,
    AuthConfig,
    CacheConfig,
    CircuitBreakerConfig,
    ExternalEndpointConfig,
    RequestFormat,
    ResponseMapping,
    redact_secrets,
)
from mlworker.engines.http_scoring.payload import candidate_instances

_CLIENT_LOCK = threading.Lock()


class Engine:
    """Scores from an external HTTP model endpoint, with fallback, cache and circuit breaker.

    Parameters
    ----------
    config
        The validated configuration (:class:`ExternalEndpointConfig`).
    random_state
        Unused (the endpoint decides its own randomness); kept for the common constructor.

    Notes
    -----
    The engine opens an HTTP connection pool when it first scores; :meth:`close` (or using the
    engine as a context manager) releases it. Scoring is thread-safe. Copies and pickles carry
    only the configuration: each starts with fresh connections, breaker, cache and counters.
    """

    kind: ClassVar[str] = "external_endpoint"
    Config: ClassVar[type[EngineConfig]] = ExternalEndpointConfig

    def __init__(self, config: ExternalEndpointConfig, *, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state
        self._client: ScoringClient | None = None

    @property
    def is_trained(self) -> bool:
        """Always ``True``: the model lives behind the endpoint."""
        return True

    @property
    def available(self) -> bool:
        """``False`` while the circuit breaker is open (no request would be sent)."""
        client = self._client
        return client is None or client.available

    @property
    def last_error(self) -> str | None:
        """Why the most recent request failed; ``None`` once a request succeeds."""
        return self.stats.last_error

    @property
    def stats(self) -> EndpointStats:
        """Requests, failures, cache hits, short circuits and fallbacks since the first score."""
        client = self._client
        return EndpointStats() if client is None else client.stats

    def fit(self, interactions: pd.DataFrame, outcomes: np.ndarray) -> Self:
        """Check the input and return ``self``: the external model is trained elsewhere.

        Raises
        ------
        ValueError
            ``outcomes`` is not one 0/1 value per interaction.
        """
        as_outcomes(outcomes, len(interactions))
        return self

    def score(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Return the endpoint's scores, ``fallbackScore`` where it gave none (``rng`` unused)."""
        return self.score_detailed(candidates).scores

    def explain(
        self, candidates: pd.DataFrame, *, rng: np.random.Generator | None = None
    ) -> list[Explanation]:
        """Explain each candidate with the endpoint's answer at ``explanationPath`` (else empty).

        A candidate that got the fallback score says so and why:
        ``[{"fallback": True, "reason": "endpoint_timeout"}]`` (the reason is a category; the
        details of the failure are logged, never shown).
        """
        result = self.score_detailed(candidates)
        explanations = []
        for score, details, reason in zip(
            result.scores.tolist(), result.details, result.reasons, strict=True
        ):
            if reason is not None:
                details = [{"fallback": True, "reason": reason}]
            explanations.append(Explanation(engine=self.kind, score=score, details=details))
        return explanations

    def score_detailed(self, candidates: pd.DataFrame) -> EndpointScores:
        """Score and report which candidates fell back, why, and the endpoint's explanations.

        The decisioning layer uses ``fallback`` to say a response was degraded even while the
        breaker is still closed.
        """
        if len(candidates) == 0:
            return EndpointScores(np.empty(0), np.zeros(0, dtype=bool), [], [])
        fields = self.config.request_format.fields
        instances = candidate_instances(candidates, fields=fields)
        return self._started().score(instances)

    def state(self) -> dict[str, Any]:
        """Return ``{}``: nothing is learned, and the config (with its secrets) lives elsewhere."""
        return {}

    def load_state(self, state: Mapping[str, Any]) -> Self:
        """Accept the empty state.

        Raises
        ------
        ValueError
            ``state`` is not empty (it belongs to another engine).
        """
        if state:
            raise ValueError(
                f"external_endpoint keeps no model state; got keys {sorted(map(str, state))}"
            )
        return self

    def close(self) -> None:
        """Release the connection pool; the engine reconnects if it scores again."""
        with _CLIENT_LOCK:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # Connections, locks and counters belong to one live process.
        return {"config": self.config, "random_state": self.random_state}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config = state["config"]
        self.random_state = state["random_state"]
        self._client = None

    def _started(self) -> ScoringClient:
        client = self._client
        if client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = ScoringClient(self.config)
                client = self._client
        return client


__all__ = [
    "SECRET_FIELDS",
    "SHORT_CIRCUITED",
    "AuthConfig",
    "CacheConfig",
    "CircuitBreakerConfig",
    "EndpointScores",
    "EndpointStats",
    "Engine",
    "ExternalEndpointConfig",
    "RequestFormat",
    "ResponseMapping",
    "authenticator_for",
    "redact_secrets",
]
