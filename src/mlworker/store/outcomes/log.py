"""The outcome log: idempotent recording, offer evidence, and the buffer of batch learners.

Outcomes are recorded idempotently (the same key with the same content is a duplicate, with
other content a conflict) together with each offer's running tallies, in one transaction.
Buffered learners *claim* their pending outcomes before applying them, so two processes never
apply the same outcome twice; a claim a crashed process left behind expires.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mlworker.engines import CUSTOMER_ID, OFFER_ID
from mlworker.errors import IdempotencyKeyReused
from mlworker.store.db import Database
from mlworker.store.records import OfferEvidenceRecord, OutcomeRecord, utcnow

#: Keys per ``IN (...)`` list: far below every driver's bound-parameter limit.
_CHUNK = 500
#: A claim older than this was left by a process that died while applying it.
CLAIM_EXPIRY = timedelta(minutes=10)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@dataclass(frozen=True, slots=True)
class NewOutcome:
    """An outcome to record; ``content_hash`` is what idempotency compares."""

    model_key: str
    model_id: str | None
    customer_id: str
    offer_id: str
    outcome: float
    outcome_type: str | None
    customer_attributes: Mapping[str, Any]
    offer_attributes: Mapping[str, Any]
    occurred_at: datetime
    idempotency_key: str | None
    content_hash: str
    buffered: bool = False


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Per input outcome, whether it was recorded now (``False``: a duplicate of an earlier one)."""

    created: tuple[bool, ...]

    @property
    def recorded(self) -> int:
        """How many outcomes were new."""
        return sum(self.created)

    @property
    def duplicates(self) -> int:
        """How many were already recorded."""
        return len(self.created) - self.recorded


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """Buffered outcomes claimed for one application, candidate-shaped."""

    ids: tuple[int, ...]
    interactions: pd.DataFrame
    outcomes: np.ndarray


def interaction_frame(
    rows: Sequence[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> pd.DataFrame:
    """Candidate-shaped rows from ``(customer_id, offer_id, customer_attrs, offer_attrs)``.

    The same shape as :func:`mlworker.engines.candidate_frame`: the customer's attributes merged
    with the offer's (the offer's win), plus the id columns.

    Examples
    --------
    >>> interaction_frame([("c1", "o1", {"age": 30, "pct": 5}, {"pct": 50})]).to_dict("records")
    [{'age': 30, 'pct': 50, 'customerId': 'c1', 'offerId': 'o1'}]
    """
    records = [
        {**(customer or {}), **(offer or {}), CUSTOMER_ID: customer_id, OFFER_ID: offer_id}
        for customer_id, offer_id, customer, offer in rows
    ]
    if not records:
        return pd.DataFrame(
            {CUSTOMER_ID: pd.Series(dtype=object), OFFER_ID: pd.Series(dtype=object)}
        )
    return pd.DataFrame.from_records(records)


class OutcomeRepository:
    """The tenant-scoped outcome log and offer evidence (keyword-only methods)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- recording -----------------------------------------------------------------------------
    def record(self, outcomes: Sequence[NewOutcome], *, tenant: str) -> RecordResult:
        """Record outcomes and update their offers' tallies, all or nothing.

        Raises
        ------
        IdempotencyKeyReused
            A key already names an outcome with different content (``extra["index"]`` is the
            position of the offending input); nothing is recorded.
        """
        try:
            return self._record(outcomes, tenant)
        except sa_exc.IntegrityError:
            # A concurrent request recorded one of these keys first; now it is visible.
            return self._record(outcomes, tenant)

    def _record(self, outcomes: Sequence[NewOutcome], tenant: str) -> RecordResult:
        with self._db.session() as session:
            known = self._known_hashes(session, tenant, outcomes)
            created: list[bool] = []
            rows: list[dict[str, Any]] = []
            now = utcnow()
            for index, item in enumerate(outcomes):
                key = item.idempotency_key
                if key is not None and key in known:
                    if known[key] != item.content_hash:
                        raise IdempotencyKeyReused(
                            f"idempotency key {key!r} was already used for a different outcome",
                            index=index,
                        )
                    created.append(False)
                    continue
                if key is not None:
                    known[key] = item.content_hash
                created.append(True)
                rows.append(self._row(item, tenant, now))
            if rows:
                session.execute(insert(OutcomeRecord), rows)
                self._add_evidence(session, tenant, rows, now)
        return RecordResult(created=tuple(created))

    @staticmethod
    def _row(item: NewOutcome, tenant: str, now: datetime) -> dict[str, Any]:
        return {
            "tenant": tenant,
            "idempotency_key": item.idempotency_key,
            "content_hash": item.content_hash,
            "model_id": item.model_id,
            "model_key": item.model_key,
            "customer_id": item.customer_id,
            "offer_id": item.offer_id,
            "outcome": float(item.outcome),
            "outcome_type": item.outcome_type,
            "customer_attributes": dict(item.customer_attributes),
            "offer_attributes": dict(item.offer_attributes),
            "occurred_at": item.occurred_at,
            "recorded_at": now,
            "buffered": item.buffered,
            "claimed_at": None,
            "applied_revision": None,
        }

    @staticmethod
    def _known_hashes(
        session: Session, tenant: str, outcomes: Sequence[NewOutcome]
    ) -> dict[str, str]:
        keys = sorted({o.idempotency_key for o in outcomes if o.idempotency_key is not None})
        known: dict[str, str] = {}
        for chunk in _chunks(keys):
            query = select(OutcomeRecord.idempotency_key, OutcomeRecord.content_hash).where(
                OutcomeRecord.tenant == tenant, OutcomeRecord.idempotency_key.in_(chunk)
            )
            known.update({str(key): digest for key, digest in session.execute(query)})
        return known

    def _add_evidence(
        self, session: Session, tenant: str, rows: Sequence[Mapping[str, Any]], now: datetime
    ) -> None:
        tallies: dict[str, list[int]] = {}
        for row in rows:
            tally = tallies.setdefault(row["offer_id"], [0, 0])
            tally[0] += 1
            tally[1] += int(row["outcome"] == 1.0)
        dialect = postgresql if not self._db.is_sqlite else sqlite
        # Sorted, so concurrent transactions lock the same offers in the same order.
        values = [
            {
                "tenant": tenant,
                "offer_id": offer,
                "interactions": n,
                "positives": p,
                "updated_at": now,
            }
            for offer, (n, p) in sorted(tallies.items())
        ]
        statement = dialect.insert(OfferEvidenceRecord).values(values)
        table = OfferEvidenceRecord.__table__
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.tenant, table.c.offer_id],
                set_={
                    "interactions": table.c.interactions + statement.excluded.interactions,
                    "positives": table.c.positives + statement.excluded.positives,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )

    # --- evidence ------------------------------------------------------------------------------
    def offer_tallies(self, *, tenant: str, offer_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Return ``offer_id → (interactions, positives)``; offers with no outcome are absent."""
        found: dict[str, tuple[int, int]] = {}
        unique = sorted(set(offer_ids))
        with self._db.session(write=False) as session:
            for chunk in _chunks(unique):
                query = select(
                    OfferEvidenceRecord.offer_id,
                    OfferEvidenceRecord.interactions,
                    OfferEvidenceRecord.positives,
                ).where(
                    OfferEvidenceRecord.tenant == tenant, OfferEvidenceRecord.offer_id.in_(chunk)
                )
                for offer, interactions, positives in session.execute(query):
                    found[str(offer)] = (int(interactions), int(positives))
        return found

    def offer_evidence(
        self, *, tenant: str, offer_ids: Sequence[str], model_key: str | None = None
    ) -> dict[str, int]:
        """Interactions recorded per offer (every offer asked for; 0 when never seen).

        Without ``model_key`` the running tallies answer (one indexed read); with it the log is
        counted for that model's outcomes only.
        """
        unique = sorted(set(offer_ids))
        counts = dict.fromkeys(unique, 0)
        if model_key is None:
            for offer, (interactions, _) in self.offer_tallies(
                tenant=tenant, offer_ids=unique
            ).items():
                counts[offer] = interactions
            return counts
        with self._db.session(write=False) as session:
            for chunk in _chunks(unique):
                query = (
                    select(OutcomeRecord.offer_id, func.count())
                    .where(
                        OutcomeRecord.tenant == tenant,
                        OutcomeRecord.model_key == model_key,
                        OutcomeRecord.offer_id.in_(chunk),
                    )
                    .group_by(OutcomeRecord.offer_id)
                )
                counts.update({str(offer): int(n) for offer, n in session.execute(query)})
        return counts

    # --- reading the log -----------------------------------------------------------------------
    def training_frame(
        self,
        *,
        tenant: str,
        model_key: str,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """Read a model's logged outcomes as candidate-shaped interactions and 0/1 outcomes.

        Rows come in the order the outcomes occurred. ``since`` keeps outcomes that occurred at
        or after it; ``limit`` keeps the most recent ones.
        """
        query = select(
            OutcomeRecord.customer_id,
            OutcomeRecord.offer_id,
            OutcomeRecord.customer_attributes,
            OutcomeRecord.offer_attributes,
            OutcomeRecord.outcome,
        ).where(OutcomeRecord.tenant == tenant, OutcomeRecord.model_key == model_key)
        if since is not None:
            query = query.where(OutcomeRecord.occurred_at >= since)
        query = query.order_by(OutcomeRecord.occurred_at.desc(), OutcomeRecord.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._db.session(write=False) as session:
            rows = list(session.execute(query))
        rows.reverse()
        frame = interaction_frame([(c, o, ca, oa) for c, o, ca, oa, _ in rows])
        return frame, np.array([row[4] for row in rows], dtype=np.float64)

    def has_outcomes(
        self, *, tenant: str, model_key: str, recorded_after: datetime | None = None
    ) -> bool:
        """Whether the model has outcomes (recorded after ``recorded_after`` when given)."""
        condition = and_(OutcomeRecord.tenant == tenant, OutcomeRecord.model_key == model_key)
        if recorded_after is not None:
            condition = and_(condition, OutcomeRecord.recorded_at > recorded_after)
        with self._db.session(write=False) as session:
            return bool(session.scalar(select(exists().where(condition))))

    # --- buffered learners ---------------------------------------------------------------------
    def _pending(self, tenant: str, model_key: str) -> Any:
        return and_(
            OutcomeRecord.tenant == tenant,
            OutcomeRecord.model_key == model_key,
            OutcomeRecord.buffered == True,  # noqa: E712 - the partial index's own condition
            OutcomeRecord.applied_revision.is_(None),
        )

    def pending(self, model_key: str, tenant: str) -> int:
        """How many buffered outcomes of the model are not applied yet (claimed ones included)."""
        with self._db.session(write=False) as session:
            query = select(func.count()).where(self._pending(tenant, model_key))
            return int(session.scalar(query) or 0)

    def claim_pending(
        self, *, tenant: str, model_key: str, min_count: int = 1, limit: int = 10_000
    ) -> PendingBatch | None:
        """Claim up to ``limit`` unclaimed pending outcomes, oldest first, if ``min_count`` wait.

        Returns ``None`` (claiming nothing) when fewer are waiting. Claimed outcomes are
        invisible to other claims until :meth:`mark_applied`, :meth:`release`, or
        :data:`CLAIM_EXPIRY`.
        """
        now = utcnow()
        free = or_(
            OutcomeRecord.claimed_at.is_(None), OutcomeRecord.claimed_at < now - CLAIM_EXPIRY
        )
        query = (
            select(
                OutcomeRecord.id,
                OutcomeRecord.customer_id,
                OutcomeRecord.offer_id,
                OutcomeRecord.customer_attributes,
                OutcomeRecord.offer_attributes,
                OutcomeRecord.outcome,
            )
            .where(self._pending(tenant, model_key), free)
            .order_by(OutcomeRecord.id)
            .limit(limit)
        )
        if not self._db.is_sqlite:
            # SQLite's writer lock already serialises claims; PostgreSQL needs row locks.
            query = query.with_for_update(skip_locked=True, of=OutcomeRecord)
        with self._db.session() as session:
            rows = list(session.execute(query))
            if len(rows) < max(min_count, 1):
                return None
            ids = tuple(int(row[0]) for row in rows)
            for chunk in _chunks(ids):
                session.execute(
                    update(OutcomeRecord).where(OutcomeRecord.id.in_(chunk)).values(claimed_at=now)
                )
        frame = interaction_frame([(c, o, ca, oa) for _, c, o, ca, oa, _ in rows])
        return PendingBatch(
            ids=ids, interactions=frame, outcomes=np.array([r[5] for r in rows], dtype=np.float64)
        )

    def mark_applied(self, ids: Sequence[int], *, revision: int) -> None:
        """Record that the engine state ``revision`` includes these outcomes."""
        with self._db.session() as session:
            for chunk in _chunks(ids):
                session.execute(
                    update(OutcomeRecord)
                    .where(OutcomeRecord.id.in_(chunk))
                    .values(applied_revision=revision)
                )

    def release(self, ids: Sequence[int]) -> None:
        """Give claimed outcomes back (applying them failed): the next claim retries them."""
        with self._db.session() as session:
            for chunk in _chunks(ids):
                session.execute(
                    update(OutcomeRecord).where(OutcomeRecord.id.in_(chunk)).values(claimed_at=None)
                )
