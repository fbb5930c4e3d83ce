"""Outcome log: idempotent recording, offer tallies, training frames, claims, shadow scores, slots.

Runs on SQLite and (when reachable) PostgreSQL: the store contract is the same on both.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlworker.errors import IdempotencyKeyReused
from mlworker.serialization import canonical_hash
from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.outcomes import (
    CLAIM_EXPIRY,
    NewOutcome,
    OutcomeRepository,
    ScheduledTrainingRepository,
    ShadowScore,
    ShadowScoreRepository,
)
from mlworker.store.records import ModelRecord, ModelVersionRecord, OutcomeRecord, utcnow

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


@pytest.fixture
def db(store_settings):
    settings = store_settings()
    database = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(database)
    yield database
    database.dispose()


def outcome(
    index: int,
    *,
    model_key: str = "m1",
    offer: str = "o1",
    label: float = 1.0,
    key: str | None = None,
    buffered: bool = False,
    customer: dict | None = None,
    when: datetime | None = None,
) -> NewOutcome:
    attributes = customer if customer is not None else {"age": 20 + index}
    content = {"i": index, "offer": offer, "label": label, "attrs": attributes, "m": model_key}
    return NewOutcome(
        model_key=model_key,
        model_id=None,
        customer_id=f"c{index}",
        offer_id=offer,
        outcome=label,
        outcome_type=None,
        customer_attributes=attributes,
        offer_attributes={"pct": 10},
        occurred_at=when or T0 + timedelta(minutes=index),
        idempotency_key=key,
        content_hash=canonical_hash(content),
        buffered=buffered,
    )


def test_recording_is_idempotent_per_tenant_and_key(db: Database) -> None:
    repo = OutcomeRepository(db)
    first = repo.record([outcome(1, key="k1"), outcome(2, key="k2"), outcome(3)], tenant="t1")
    assert first.created == (True, True, True) and first.recorded == 3
    again = repo.record([outcome(1, key="k1"), outcome(4, key="k4")], tenant="t1")
    assert again.created == (False, True) and again.duplicates == 1
    # The same key in another tenant is another outcome.
    assert repo.record([outcome(1, key="k1")], tenant="t2").recorded == 1
    # The same key twice in one batch: recorded once.
    assert repo.record([outcome(5, key="k5"), outcome(5, key="k5")], tenant="t1").created == (
        True,
        False,
    )
    frame, labels = repo.training_frame(tenant="t1", model_key="m1")
    assert len(frame) == len(labels) == 5


def test_same_key_with_other_content_is_refused_and_nothing_is_recorded(db: Database) -> None:
    repo = OutcomeRepository(db)
    repo.record([outcome(1, key="k1")], tenant="t1")
    with pytest.raises(IdempotencyKeyReused) as caught:
        repo.record([outcome(7, key="k7"), outcome(1, key="k1", label=0.0)], tenant="t1")
    assert caught.value.extra["index"] == 1
    assert repo.offer_evidence(tenant="t1", offer_ids=["o1"]) == {"o1": 1}
    assert not repo.has_outcomes(tenant="t1", model_key="m1", recorded_after=utcnow())
    frame, _ = repo.training_frame(tenant="t1", model_key="m1")
    assert frame["customerId"].tolist() == ["c1"]


def test_offer_tallies_follow_what_was_recorded(db: Database) -> None:
    repo = OutcomeRepository(db)
    batch = [outcome(i, offer="o1", label=float(i % 2)) for i in range(10)]
    batch += [outcome(i, offer="o2", label=1.0, model_key="m2") for i in range(3)]
    repo.record(batch, tenant="t1")
    repo.record([outcome(11, offer="o2", label=0.0)], tenant="t1")
    assert repo.offer_tallies(tenant="t1", offer_ids=["o1", "o2", "o9"]) == {
        "o1": (10, 5),
        "o2": (4, 3),
    }
    assert repo.offer_evidence(tenant="t1", offer_ids=["o2", "o9"]) == {"o2": 4, "o9": 0}
    assert repo.offer_evidence(tenant="t1", offer_ids=["o2"], model_key="m2") == {"o2": 3}
    assert repo.offer_tallies(tenant="t2", offer_ids=["o1"]) == {}


def test_concurrent_recording_counts_every_outcome_once(db: Database) -> None:
    repo = OutcomeRepository(db)
    errors: list[BaseException] = []

    def record(start: int) -> None:
        try:
            for i in range(start, start + 20):
                # Every thread also sends the shared key "shared": recorded exactly once.
                repo.record([outcome(i, key=f"k{i}"), outcome(0, key="shared")], tenant="t1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(100 * n + 1,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert repo.offer_tallies(tenant="t1", offer_ids=["o1"]) == {"o1": (81, 81)}


def test_training_frame_is_candidate_shaped_in_time_order(db: Database) -> None:
    repo = OutcomeRepository(db)
    repo.record(
        [
            outcome(2, label=0.0, customer={"tier": "gold", "pct": 99}),
            outcome(1, label=1.0, customer={"age": 31}),
            outcome(3, label=1.0, model_key="other"),
        ],
        tenant="t1",
    )
    frame, labels = repo.training_frame(tenant="t1", model_key="m1")
    assert frame["customerId"].tolist() == ["c1", "c2"]  # c1 occurred first
    assert labels.tolist() == [1.0, 0.0]
    assert frame.loc[1, "pct"] == 10  # the offer's attribute wins over the customer's
    assert frame.loc[1, "tier"] == "gold" and pd.isna(frame.loc[0, "tier"])
    assert set(frame.columns) == {"customerId", "offerId", "age", "tier", "pct"}
    recent, _ = repo.training_frame(tenant="t1", model_key="m1", limit=1)
    assert recent["customerId"].tolist() == ["c2"]
    later, _ = repo.training_frame(tenant="t1", model_key="m1", since=T0 + timedelta(minutes=2))
    assert later["customerId"].tolist() == ["c2"]
    empty, none = repo.training_frame(tenant="t1", model_key="nothing")
    assert list(empty.columns) == ["customerId", "offerId"] and none.shape == (0,)


def test_pending_outcomes_are_claimed_once_then_applied(db: Database) -> None:
    repo = OutcomeRepository(db)
    repo.record([outcome(i, buffered=True) for i in range(5)], tenant="t1")
    repo.record([outcome(9, buffered=False)], tenant="t1")
    assert repo.pending("m1", "t1") == 5
    assert repo.claim_pending(tenant="t1", model_key="m1", min_count=6) is None
    batch = repo.claim_pending(tenant="t1", model_key="m1", min_count=5)
    assert batch is not None and len(batch.ids) == 5
    assert batch.interactions["customerId"].tolist() == [f"c{i}" for i in range(5)]
    assert batch.outcomes.tolist() == [1.0] * 5
    # Claimed outcomes are not handed to a second claimant.
    assert repo.claim_pending(tenant="t1", model_key="m1") is None
    assert repo.pending("m1", "t1") == 5  # claimed, not applied yet
    repo.mark_applied(batch.ids, revision=3)
    assert repo.pending("m1", "t1") == 0


def test_released_and_expired_claims_are_claimed_again(db: Database) -> None:
    repo = OutcomeRepository(db)
    repo.record([outcome(i, buffered=True) for i in range(3)], tenant="t1")
    batch = repo.claim_pending(tenant="t1", model_key="m1")
    assert batch is not None
    repo.release(batch.ids)
    again = repo.claim_pending(tenant="t1", model_key="m1")
    assert again is not None and again.ids == batch.ids
    # A claim whose process died is free again once it expires.
    with db.session() as session:
        for row in session.query(OutcomeRecord):
            row.claimed_at = utcnow() - CLAIM_EXPIRY - timedelta(seconds=1)
    assert repo.claim_pending(tenant="t1", model_key="m1") is not None


def test_shadow_scores_are_tenant_scoped(db: Database) -> None:
    repo = ShadowScoreRepository(db)
    score = ShadowScore(
        request_id="r1",
        customer_id="c1",
        offer_id="o1",
        model_key="shadow",
        model_id=None,
        score=0.25,
        served_model_key="champ",
        served_score=0.5,
    )
    assert repo.add_many([score, score], tenant="t1") == 2
    assert repo.add_many([], tenant="t1") == 0
    assert repo.list(tenant="t1", model_key="shadow") == [score, score]
    assert repo.list(tenant="t2") == []


def _model(db: Database, model_id: str, *, tenant: str = "t1", status: str = "active") -> None:
    now = utcnow()
    with db.session() as session:
        session.add(
            ModelRecord(
                id=model_id,
                tenant=tenant,
                key=f"key-{model_id}",
                name="m",
                kind="algorithm_model",
                family=f"key-{model_id}",
                config={},
                status=status,
                registry_status="draft",
                latest_version=0,
                spec={"learningConfig": {"learnMode": "scheduled", "schedule": "24h"}},
                created_at=now - timedelta(days=2),
                updated_at=now,
            )
        )


def test_scheduled_candidates_and_slot_claims(db: Database) -> None:
    repo = ScheduledTrainingRepository(db)
    _model(db, "model-000000000001")
    _model(db, "model-000000000002", status="paused")
    trained = utcnow() - timedelta(hours=5)
    with db.session() as session:
        session.add(
            ModelVersionRecord(
                model_id="model-000000000001",
                version=1,
                artifact_uri="file:///x",
                artifact_sha256="0" * 64,
                artifact_format="engine-state+json",
                params={},
                metrics={},
                created_at=trained,
            )
        )
    [candidate] = repo.candidates()
    assert candidate.model_id == "model-000000000001" and candidate.last_slot is None
    assert candidate.last_trained_at is not None
    assert abs((candidate.last_trained_at - trained).total_seconds()) < 1e-3
    assert candidate.spec["learningConfig"]["schedule"] == "24h"

    slot = datetime(2026, 11, 22, tzinfo=UTC)
    claim = repo.claim_slot(model_id=candidate.model_id, tenant="t1", slot=slot)
    assert claim is not None and claim.previous is None
    assert repo.claim_slot(model_id=candidate.model_id, tenant="t1", slot=slot) is None
    repo.set_job(claim, job_id="job-1")
    assert repo.last_job(candidate.model_id) == (slot, "job-1")
    later = repo.claim_slot(model_id=candidate.model_id, tenant="t1", slot=slot + timedelta(1))
    assert later is not None and later.previous == slot
    repo.release_slot(later)
    assert repo.last_job(candidate.model_id) == (slot, None)
    [candidate] = repo.candidates()
    assert candidate.last_slot == slot
