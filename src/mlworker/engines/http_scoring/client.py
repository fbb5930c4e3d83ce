"""The scoring client: instances in, scores out, through cache, circuit breaker and fallback.

:class:`ScoringClient` owns everything about one live endpoint that is not configuration: the
connection pool, the breaker, the cache and the counters. The ``external_endpoint`` engine
creates one on first use and closes it with itself; nothing here is ever persisted.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import numpy as np
import structlog

from mlworker.engines.http_scoring.auth import (
    ApiKeyAuth,
    Authenticator,
    BearerAuth,
    NoAuth,
    SigV4Auth,
)
from mlworker.engines.http_scoring.cache import TTLCache, instance_key
from mlworker.engines.http_scoring.circuit_breaker import BreakerState, CircuitBreaker
from mlworker.engines.http_scoring.config import ExternalEndpointConfig
from mlworker.engines.http_scoring.mapping import (
    ResponseMappingError,
    as_details,
    as_probability,
    batch_scores,
    extract,
    parse_path,
)
from mlworker.engines.http_scoring.transport import (
    INVALID_RESPONSE,
    EndpointCallError,
    JsonEndpoint,
)

T = TypeVar("T")

#: Fallback reason of a candidate whose request the open breaker refused.
SHORT_CIRCUITED = "endpoint_circuit_open"
_UNEXPECTED = "endpoint_error"
#: What an explanation says when ``explanationPath`` finds nothing usable (the shape of the
#: answer is not described to the tenant).
EXPLANATION_UNAVAILABLE = "explanation_unavailable"


class _Prediction(NamedTuple):
    score: float
    details: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """Counters and health of one endpoint, for health checks and metrics.

    Attributes
    ----------
    calls
        HTTP requests sent.
    failures
        Requests that failed (transport, status, JSON or mapping).
    cache_hits
        Candidates answered from the cache.
    short_circuits
        Requests not sent because the circuit breaker was open.
    fallbacks
        Candidates that received ``fallbackScore``.
    circuit_state
        ``closed``, ``open`` or ``half_open``.
    last_error
        Why the most recent request failed (a category of
        :data:`~mlworker.engines.http_scoring.transport.FAILURE_CATEGORIES`); ``None`` once a
        request succeeds.
    """

    calls: int = 0
    failures: int = 0
    cache_hits: int = 0
    short_circuits: int = 0
    fallbacks: int = 0
    circuit_state: str = BreakerState.CLOSED.value
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the camelCase JSON body."""
        return {
            "calls": self.calls,
            "failures": self.failures,
            "cacheHits": self.cache_hits,
            "shortCircuits": self.short_circuits,
            "fallbacks": self.fallbacks,
            "circuitState": self.circuit_state,
            "lastError": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class EndpointScores:
    """Scores with, per candidate, whether it got the fallback score and why.

    Attributes
    ----------
    scores
        float64 ``(n,)`` in ``[0, 1]``.
    fallback
        bool ``(n,)``: ``True`` where the endpoint gave no usable score.
    reasons
        Why each fallback happened, as a short stable category that names no address, error
        text or answer content (``None`` where the endpoint answered).
    details
        Per candidate, the explanation read at ``explanationPath`` (else empty).
    """

    scores: np.ndarray
    fallback: np.ndarray
    reasons: list[str | None]
    details: list[list[dict[str, Any]]]


class ScoringClient:
    """Scores instances with one configured endpoint; thread-safe.

    Parameters
    ----------
    config
        The engine configuration.
    """

    def __init__(self, config: ExternalEndpointConfig) -> None:
        self.config = config
        self._endpoint = JsonEndpoint(
            config.endpoint_url,
            timeout_s=config.timeout_ms / 1000,
            authenticator=authenticator_for(config),
            egress=config.egress,
            max_keepalive=max(config.max_concurrency, 16),
        )
        self._breaker = CircuitBreaker(
            failure_threshold=config.circuit_breaker.failure_threshold,
            reset_timeout_s=config.circuit_breaker.reset_timeout_ms / 1000,
        )
        self._cache: TTLCache[_Prediction] | None = (
            TTLCache(ttl_s=config.cache.ttl_seconds, max_entries=config.cache.max_entries)
            if config.cache.enabled
            else None
        )
        mapping = config.response_mapping
        self._batch_path = parse_path(mapping.batch_scores_path)
        self._score_path = parse_path(mapping.score_path)
        self._explanation_path = (
            None if mapping.explanation_path is None else parse_path(mapping.explanation_path)
        )
        self._lock = threading.Lock()
        self._stats = EndpointStats()

    @property
    def available(self) -> bool:
        """``False`` while the circuit breaker is open."""
        return self._breaker.state is not BreakerState.OPEN

    @property
    def stats(self) -> EndpointStats:
        """Counters so far and the breaker's state now."""
        with self._lock:
            stats = self._stats
        return replace(stats, circuit_state=self._breaker.state.value)

    def score(self, instances: Sequence[dict[str, Any]]) -> EndpointScores:
        """Score instances (from the cache, else the endpoint), falling back per candidate."""
        count = len(instances)
        outcomes: list[_Prediction | _Failure | None] = [None] * count
        # Which candidates each request instance answers: one each without a cache; with one,
        # identical instances are asked once and those answered from memory not at all.
        groups: dict[str, list[int]] = {}
        if self._cache is None:
            groups = {str(position): [position] for position in range(count)}
        else:
            for position, instance in enumerate(instances):
                key = instance_key(instance)
                cached = self._cache.get(key)
                if cached is not None:
                    outcomes[position] = cached
                else:
                    groups.setdefault(key, []).append(position)
        pending = [instances[positions[0]] for positions in groups.values()]
        if not pending:
            answers: list[_Prediction | _Failure] = []
        elif self.config.scoring_mode == "batch":
            answers = self._score_batch(pending)
        else:
            answers = self._score_each(pending)
        for (key, positions), answer in zip(groups.items(), answers, strict=True):
            for position in positions:
                outcomes[position] = answer
            if self._cache is not None and isinstance(answer, _Prediction):
                self._cache.put(key, answer)
        fallback_score = self.config.response_mapping.fallback_score
        scores = [o.score if isinstance(o, _Prediction) else fallback_score for o in outcomes]
        reasons = [o.reason if isinstance(o, _Failure) else None for o in outcomes]
        fallback = np.array([reason is not None for reason in reasons], dtype=bool)
        hits = count - sum(len(positions) for positions in groups.values())
        self._count(cache_hits=hits, fallbacks=int(fallback.sum()))
        return EndpointScores(
            scores=np.asarray(scores, dtype=np.float64),
            fallback=fallback,
            reasons=reasons,
            details=[o.details if isinstance(o, _Prediction) else [] for o in outcomes],
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._endpoint.close()

    def _score_batch(self, instances: list[dict[str, Any]]) -> list[_Prediction | _Failure]:
        key = self.config.request_format.instances_key
        payload: Any = instances if key is None else {key: instances}
        answer = self._call(payload, lambda body: self._batch_predictions(body, len(instances)))
        return list(answer) if isinstance(answer, list) else [answer] * len(instances)

    def _score_each(self, instances: list[dict[str, Any]]) -> list[_Prediction | _Failure]:
        key = self.config.request_format.single_key

        def call_one(instance: dict[str, Any]) -> _Prediction | _Failure:
            return self._call(instance if key is None else {key: instance}, self._prediction)

        workers = min(self.config.max_concurrency, len(instances))
        if workers <= 1:
            return [call_one(instance) for instance in instances]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="external-score") as pool:
            # Each call runs in a copy of the caller's context, so log lines keep request ids.
            futures = [
                pool.submit(contextvars.copy_context().run, call_one, instance)
                for instance in instances
            ]
            return [future.result() for future in futures]

    def _call(self, payload: Any, parse: Callable[[Any], T]) -> T | _Failure:
        """Send one guarded request: breaker check, POST, parse, and bookkeeping either way."""
        if not self._breaker.allow():
            self._count(short_circuits=1)
            return _Failure(SHORT_CIRCUITED)
        self._count(calls=1)
        try:
            parsed = parse(self._endpoint.post(payload))
        except EndpointCallError as error:
            self._record_failure(error.reason, error.detail)
            return _Failure(error.reason)
        except ResponseMappingError as error:
            self._record_failure(INVALID_RESPONSE, str(error))
            return _Failure(INVALID_RESPONSE)
        except BaseException as error:
            # A bug must still close the call, or a half-open trial would stay out forever.
            self._record_failure(_UNEXPECTED, type(error).__name__)
            raise
        self._breaker.record_success()
        with self._lock:
            self._stats = replace(self._stats, last_error=None)
        return parsed

    def _record_failure(self, reason: str, detail: str) -> None:
        self._breaker.record_failure()
        self._count(failures=1)
        with self._lock:
            self._stats = replace(self._stats, last_error=reason)
        # The detail (addresses, error text, what the answer held) is for operators only. The
        # logger is looked up per failure, not cached per module: failures are rare, and a
        # fresh logger always follows the current structlog configuration.
        structlog.get_logger(__name__).warning(
            "external endpoint call failed",
            endpoint=self._endpoint.display_url,
            reason=reason,
            detail=detail,
            circuit_state=self._breaker.state.value,
        )

    def _count(self, **increments: int) -> None:
        with self._lock:
            current = self._stats
            self._stats = replace(
                current, **{name: getattr(current, name) + by for name, by in increments.items()}
            )

    def _batch_predictions(self, body: Any, count: int) -> list[_Prediction]:
        scores = batch_scores(body, self._batch_path, self._score_path, count)
        details: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        if self._explanation_path is not None:
            details = _batch_details(body, self._explanation_path, count)
        return [_Prediction(s, d) for s, d in zip(scores, details, strict=True)]

    def _prediction(self, body: Any) -> _Prediction:
        where = self.config.response_mapping.score_path or "response"
        score = as_probability(extract(body, self._score_path), where=where)
        details: list[dict[str, Any]] = []
        if self._explanation_path is not None:
            try:
                details = as_details(extract(body, self._explanation_path))
            except ResponseMappingError:
                details = [{"error": EXPLANATION_UNAVAILABLE}]
        return _Prediction(score, details)


def _batch_details(body: Any, path: Sequence[str | int], count: int) -> list[list[dict[str, Any]]]:
    """Per-instance explanations; a missing or misshapen one is reported, the scores kept."""
    try:
        value = extract(body, path)
    except ResponseMappingError:
        return [[{"error": EXPLANATION_UNAVAILABLE}] for _ in range(count)]
    if not isinstance(value, list) or len(value) != count:
        return [[{"error": EXPLANATION_UNAVAILABLE}] for _ in range(count)]
    return [as_details(item) for item in value]


def authenticator_for(config: ExternalEndpointConfig) -> Authenticator:
    """Build the request authenticator for ``config.auth_type``.

    SigV4 without keys signs with the server's own credentials only for hosts the operator
    listed in the config's egress policy; elsewhere it refuses to sign, so nothing is sent.
    """
    auth = config.auth_config
    if config.auth_type == "api_key" and auth.api_key is not None:
        return ApiKeyAuth(auth.api_key, header_name=auth.header_name)
    if config.auth_type == "bearer" and auth.token is not None:
        return BearerAuth(auth.token)
    if config.auth_type == "aws_sigv4" and auth.aws_region is not None:
        return SigV4Auth(
            region=auth.aws_region,
            service=auth.aws_service,
            access_key_id=auth.access_key_id,
            secret_access_key=auth.secret_access_key,
            session_token=auth.session_token,
            use_server_credentials=config.egress.may_use_server_credentials(
                urlsplit(config.endpoint_url).hostname or ""
            ),
        )
    return NoAuth()
