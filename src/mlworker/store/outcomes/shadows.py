"""Shadow scores: what shadow models scored for served candidates (never served themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select

from mlworker.store.db import Database
from mlworker.store.records import ShadowScoreRecord, utcnow


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """A shadow model's score for a served candidate."""

    request_id: str
    customer_id: str
    offer_id: str
    model_key: str
    model_id: str | None
    score: float
    served_model_key: str | None
    served_score: float | None


class ShadowScoreRepository:
    """What shadow models scored (``mlw_shadow_scores``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_many(self, scores: Sequence[ShadowScore], *, tenant: str) -> int:
        """Append shadow scores; return how many."""
        if not scores:
            return 0
        now = utcnow()
        rows = [
            {
                "tenant": tenant,
                "request_id": s.request_id,
                "customer_id": s.customer_id,
                "offer_id": s.offer_id,
                "model_key": s.model_key,
                "model_id": s.model_id,
                "score": s.score,
                "served_model_key": s.served_model_key,
                "served_score": s.served_score,
                "created_at": now,
            }
            for s in scores
        ]
        with self._db.session() as session:
            session.execute(insert(ShadowScoreRecord), rows)
        return len(rows)

    def list(
        self, *, tenant: str, model_key: str | None = None, limit: int = 1000
    ) -> list[ShadowScore]:
        """Return the tenant's most recent shadow scores, newest first."""
        query = select(ShadowScoreRecord).where(ShadowScoreRecord.tenant == tenant)
        if model_key is not None:
            query = query.where(ShadowScoreRecord.model_key == model_key)
        query = query.order_by(ShadowScoreRecord.id.desc()).limit(limit)
        with self._db.session(write=False) as session:
            return [
                ShadowScore(
                    request_id=row.request_id,
                    customer_id=row.customer_id,
                    offer_id=row.offer_id,
                    model_key=row.model_key,
                    model_id=row.model_id,
                    score=row.score,
                    served_model_key=row.served_model_key,
                    served_score=row.served_score,
                )
                for row in session.scalars(query)
            ]
