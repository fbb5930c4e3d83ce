"""Shadow scores are written by a background thread, never on the request path."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from mlworker.store.outcomes import ShadowScore, ShadowScoreRepository

log = structlog.get_logger(__name__)


class ShadowLog:
    """Buffer shadow scores and write them from a background thread, off the request path.

    A crash loses at most ``flush_seconds`` of shadow scores: they are analytics, not decisions.
    If the store stays down the buffer keeps the newest ``max_buffered`` rows.
    """

    def __init__(
        self,
        repository: ShadowScoreRepository,
        *,
        flush_seconds: float = 1.0,
        max_buffered: int = 100_000,
    ) -> None:
        self._repository = repository
        self._flush_seconds = flush_seconds
        self._max_buffered = max_buffered
        self._pending: list[tuple[str, ShadowScore]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, scores: Sequence[ShadowScore], *, tenant: str) -> None:
        """Queue shadow scores for writing."""
        with self._lock:
            self._pending.extend((tenant, score) for score in scores)
            overflow = len(self._pending) - self._max_buffered
            if overflow > 0:
                del self._pending[:overflow]
                log.warning("shadow score buffer full; oldest scores dropped", dropped=overflow)

    def flush(self) -> int:
        """Write everything queued; return how many rows (requeued if the store fails)."""
        with self._lock:
            taken, self._pending = self._pending, []
        by_tenant: dict[str, list[ShadowScore]] = {}
        for tenant, score in taken:
            by_tenant.setdefault(tenant, []).append(score)
        written = 0
        try:
            for tenant, scores in by_tenant.items():
                written += self._repository.add_many(scores, tenant=tenant)
        except Exception:
            with self._lock:
                self._pending[:0] = taken[written:]
            raise
        return written

    def start(self) -> None:
        """Flush every ``flush_seconds`` on a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="shadow-log", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception as exc:  # the store may be down for a while; keep buffering
                log.warning("writing shadow scores failed", error=str(exc))

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception as exc:
            log.warning("shadow scores lost at shutdown", error=str(exc))
