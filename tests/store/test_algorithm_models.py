"""Algorithm models in the store, on SQLite and PostgreSQL: rows, states, promotions, migration."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mlworker.errors import Conflict, InvalidTransition, NotFound
from mlworker.registry.values import REGISTRY_TRANSITIONS, AlgorithmModel
from mlworker.store import migrate
from mlworker.store.algorithm_models import (
    AlgorithmModelRepository,
    EngineStateRepository,
    PromotionRepository,
)
from mlworker.store.db import Database
from mlworker.store.records import ModelRecord, ModelVersionRecord, utcnow

STATUSES = tuple(REGISTRY_TRANSITIONS)


@pytest.fixture
def db(store_settings) -> Iterator[Database]:
    settings = store_settings()
    database = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def repo(db: Database) -> AlgorithmModelRepository:
    return AlgorithmModelRepository(db)


def create(
    repo: AlgorithmModelRepository,
    key: str,
    *,
    tenant: str = "t1",
    family: str = "offers",
    state: dict[str, Any] | None = None,
) -> AlgorithmModel:
    return repo.create(
        model_id="model-" + hashlib.sha256(f"{tenant}/{key}".encode()).hexdigest()[:12],
        tenant=tenant,
        key=key,
        name=key.title(),
        description="",
        model_type="scorecard",
        family=family,
        config={"baseScore": 50},
        status="draft",
        spec={"targetField": "converted"},
        state=state or {},
        actor="tester",
    )


def to_registry_status(
    promotions: PromotionRepository, model: AlgorithmModel, *steps: str
) -> AlgorithmModel:
    for step in steps:
        model, _ = promotions.promote(
            model.id, tenant=model.tenant, to=step, actor="t", reason=None
        )
    return model


def test_create_read_list_and_tenant_scoping(repo: AlgorithmModelRepository) -> None:
    first = create(repo, "alpha")
    create(repo, "beta", family="other")
    create(repo, "alpha", tenant="t2")
    assert first.registry_status == "draft" and first.state_revision == 1
    assert first.spec == {"targetField": "converted"} and first.metrics_history == []
    assert repo.get(first.id, tenant="t1") == first
    assert repo.get_by_key("alpha", tenant="t1") == first
    with pytest.raises(NotFound):
        repo.get(first.id, tenant="t2")
    items, total = repo.list_page(tenant="t1", limit=1)
    assert total == 2 and len(items) == 1
    assert [m.key for m in repo.list_page(tenant="t1", family="other")[0]] == ["beta"]
    assert repo.list_page(tenant="t1", model_type="bayesian") == ([], 0)


def test_a_duplicate_key_is_a_conflict_only_within_a_tenant(
    repo: AlgorithmModelRepository,
) -> None:
    create(repo, "alpha")
    with pytest.raises(Conflict) as caught:
        repo.create(
            model_id="model-00000000beef",
            tenant="t1",
            key="alpha",
            name="again",
            description="",
            model_type="scorecard",
            family="f",
            config={},
            status="draft",
            spec={},
            state={},
            actor="tester",
        )
    assert caught.value.field == "key"


def test_estimators_are_not_algorithm_models(db: Database, repo: AlgorithmModelRepository) -> None:
    with db.session() as session:
        session.add(
            ModelRecord(
                id="model-0000000000e5",
                tenant="t1",
                key="model-0000000000e5",
                name="rf",
                kind="estimator",
                family="model-0000000000e5",
                config={},
                status="active",
                registry_status="draft",
                latest_version=0,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    with pytest.raises(NotFound):
        repo.get("model-0000000000e5", tenant="t1")
    assert repo.list_page(tenant="t1") == ([], 0)


def test_update_with_a_new_revision_and_an_audit_row(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    model = create(repo, "alpha")
    renamed = repo.update(
        model.id, tenant="t1", actor="ann", changes={"name": "A"}, new_revision=False
    )
    assert renamed.name == "A" and renamed.state_revision == 1
    edited = repo.update(
        model.id, tenant="t1", actor="ann", changes={"config": {"baseScore": 60}}, new_revision=True
    )
    assert edited.config == {"baseScore": 60} and edited.state_revision == 2
    actions = [row["action"] for row in repo.audit_trail(model.id, tenant="t1")]
    assert actions == ["algorithm_model.created", *["algorithm_model.updated"] * 2]
    with pytest.raises(ValueError, match="cannot update"):
        repo.update(model.id, tenant="t1", actor="a", changes={"key": "x"}, new_revision=False)


def test_states_lock_replace_and_training_versions(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    states = EngineStateRepository(db)
    model = create(repo, "alpha", state={"n": 0})
    assert states.revision(model.id) == 1 and states.revision("model-000000000000") is None
    with states.locked_state(model.id, tenant="t1") as live:
        assert live.state == {"n": 0} and live.model == model
        assert live.replace({"n": 3}, applied_updates=3) == 2
    with pytest.raises(RuntimeError), states.locked_state(model.id, tenant="t1") as live:
        live.replace({"n": 99}, applied_updates=1)
        raise RuntimeError("rolled back")
    assert states.live_state(model.id, tenant="t1").state == {"n": 3}
    current, live_state = states.snapshot(model.id, tenant="t1")
    assert (current.pending_updates, live_state.revision) == (3, 2)

    for auc in (0.7, 0.8):
        trained = states.record_training(
            model.id,
            tenant="t1",
            actor="job",
            artifact_uri=f"file:///a/{auc}",
            artifact_sha256="0" * 64,
            artifact_format="engine-state+json",
            params={},
            metrics={"auc": auc, "evidence": 100},
            dataset_fingerprint="f",
            job_id="job-1",
            state={"n": auc},
        )
    assert trained.latest_version == 2 and trained.status == "active"
    assert trained.metrics == {"auc": 0.8, "evidence": 100}
    assert [entry["version"] for entry in trained.metrics_history] == [1, 2]
    assert trained.state_revision == 4 and trained.pending_updates == 0
    assert [v.version for v in repo.versions(model.id, tenant="t1")] == [1, 2]
    reset = states.replace_state(
        model.id,
        tenant="t1",
        actor="ann",
        state={},
        action="algorithm_model.reset_learning",
        reason="why not",
    )
    assert reset.state_revision == 5 and states.live_state(model.id, tenant="t1").state == {}


def test_every_transition_outside_the_lifecycle_is_refused(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    promotions = PromotionRepository(db)
    paths = {
        "draft": (),
        "shadow": ("shadow",),
        "challenger": ("challenger",),
        "champion": ("challenger", "champion"),
        "archived": ("archived",),
    }
    for start in STATUSES:
        for target in STATUSES:
            model = to_registry_status(
                promotions,
                create(repo, f"{start}-{target}", family=f"{start}-{target}"),
                *paths[start],
            )
            assert model.registry_status == start
            if target in REGISTRY_TRANSITIONS[start]:
                moved, _ = promotions.promote(
                    model.id, tenant="t1", to=target, actor="a", reason=None
                )
                assert moved.registry_status == target
            else:
                with pytest.raises(InvalidTransition) as caught:
                    promotions.promote(model.id, tenant="t1", to=target, actor="a", reason=None)
                assert caught.value.extra == {"from": start, "to": target}
                assert repo.get(model.id, tenant="t1").registry_status == start


@pytest.mark.parametrize("demote_to", ["archived", "challenger"])
def test_a_new_champion_demotes_the_old_one_in_the_same_transaction(
    db: Database, repo: AlgorithmModelRepository, demote_to: str
) -> None:
    promotions = PromotionRepository(db)
    old = to_registry_status(promotions, create(repo, "old"), "challenger", "champion")
    new = to_registry_status(promotions, create(repo, "new"), "challenger")
    elsewhere = to_registry_status(
        promotions, create(repo, "other", family="f2"), "challenger", "champion"
    )
    promoted, demoted = promotions.promote(
        new.id, tenant="t1", to="champion", actor="ann", reason="better AUC", demote_to=demote_to
    )
    assert promoted.registry_status == "champion"
    assert [(m.id, m.registry_status) for m in demoted] == [(old.id, demote_to)]
    assert repo.champion("offers", tenant="t1") == promoted
    assert repo.get(elsewhere.id, tenant="t1").registry_status == "champion"
    last_old = repo.audit_trail(old.id, tenant="t1")[-1]
    last_new = repo.audit_trail(new.id, tenant="t1")[-1]
    assert last_old["action"] == last_new["action"] == "registry_promote"
    assert last_old["before"]["registryStatus"] == "champion"
    assert last_old["after"]["registryStatus"] == demote_to
    assert "'new'" in last_old["reason"] and "better AUC" in last_old["reason"]
    assert (last_new["before"]["registryStatus"], last_new["after"]["registryStatus"]) == (
        "challenger",
        "champion",
    )
    assert last_new["actor"] == "ann" and last_new["reason"] == "better AUC"
    with pytest.raises(InvalidTransition):
        promotions.promote(
            new.id, tenant="t1", to="champion", actor="a", reason=None, demote_to="draft"
        )


def test_the_database_itself_refuses_a_second_champion(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    promotions = PromotionRepository(db)
    to_registry_status(promotions, create(repo, "one"), "challenger", "champion")
    two = create(repo, "two")
    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(
            sa.update(ModelRecord)
            .where(ModelRecord.id == two.id)
            .values(registry_status="champion")
        )


def test_a_champion_cannot_join_a_family_with_a_champion(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    promotions = PromotionRepository(db)
    to_registry_status(promotions, create(repo, "one"), "challenger", "champion")
    two = to_registry_status(promotions, create(repo, "two", family="f2"), "challenger", "champion")
    with pytest.raises(Conflict) as caught:
        repo.update(
            two.id, tenant="t1", actor="a", changes={"family": "offers"}, new_revision=False
        )
    assert caught.value.field == "registryFamily"


def test_concurrent_promotions_leave_exactly_one_champion(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    promotions = PromotionRepository(db)
    contenders = [
        to_registry_status(promotions, create(repo, f"c{i}"), "challenger") for i in range(6)
    ]
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def promote(model: AlgorithmModel) -> None:
        barrier.wait()
        try:
            promotions.promote(
                model.id, tenant="t1", to="champion", actor="a", reason=None, demote_to="challenger"
            )
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=promote, args=(model,)) for model in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = [repo.get(m.id, tenant="t1").registry_status for m in contenders]
    assert statuses.count("champion") == 1 and statuses.count("challenger") == 5
    assert outcomes.count("won") >= 1 and len(outcomes) == len(contenders)


def test_a_champion_is_not_deleted_but_others_go_with_their_versions(
    db: Database, repo: AlgorithmModelRepository
) -> None:
    promotions = PromotionRepository(db)
    champion = to_registry_status(promotions, create(repo, "champ"), "challenger", "champion")
    with pytest.raises(Conflict):
        repo.delete(champion.id, tenant="t1", actor="a")
    other = create(repo, "other")
    EngineStateRepository(db).record_training(
        other.id,
        tenant="t1",
        actor="a",
        artifact_uri="file:///x",
        artifact_sha256="0" * 64,
        artifact_format="engine-state+json",
        params={},
        metrics={},
        dataset_fingerprint=None,
        job_id=None,
        state={},
    )
    with pytest.raises(NotFound):
        repo.delete(other.id, tenant="t2", actor="a")
    assert repo.delete(other.id, tenant="t1", actor="a") == ["file:///x"]
    with pytest.raises(NotFound):
        repo.get(other.id, tenant="t1")
    assert EngineStateRepository(db).revision(other.id) is None
    with db.session(write=False) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ModelVersionRecord)) == 0
    assert repo.audit_trail(other.id, tenant="t1")[-1]["action"] == "algorithm_model.deleted"


def test_migration_0004_down_and_up_keeps_other_models_and_their_versions(
    store_settings,
) -> None:
    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    try:
        migrate.upgrade(db, "0003")
        now = utcnow()
        insert_model = sa.text(
            "INSERT INTO mlw_models (id, tenant, key, name, kind, family, config, status, "
            "registry_status, latest_version, created_at, updated_at) VALUES (:id, 't', :id, "
            "'n', 'estimator', :id, '{}', :status, 'champion', 1, :now, :now)"
        )
        with db.engine.begin() as connection:
            connection.execute(insert_model, {"id": "m1", "status": "active", "now": now})
            connection.execute(
                sa.text(
                    "INSERT INTO mlw_model_versions (model_id, version, artifact_uri, "
                    "artifact_sha256, artifact_format, params, metrics, created_at) VALUES "
                    "('m1', 1, 'u', 's', 'f', '{}', '{}', :now)"
                ),
                {"now": now},
            )
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            connection.execute(insert_model, {"id": "m2", "status": "paused", "now": now})

        migrate.upgrade(db, "0004")
        with db.engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE mlw_models SET status = 'paused', key = :key WHERE id = 'm1'"),
                {"key": "k" * 255},
            )
            connection.execute(sa.text("UPDATE mlw_models SET key = 'm1' WHERE id = 'm1'"))
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE mlw_models SET status = 'bogus' WHERE id = 'm1'"))
        repo = AlgorithmModelRepository(db)
        algorithm = create(repo, "algo", tenant="t")
        # The rebuilt table keeps the partial index: two champions in one family still fail.
        with pytest.raises(IntegrityError), db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE mlw_models SET registry_status = 'champion', family = 'm1' "
                    "WHERE id = :id"
                ),
                {"id": algorithm.id},
            )

        with db.engine.begin() as connection:
            connection.execute(sa.text("UPDATE mlw_models SET status = 'active' WHERE id = 'm1'"))
        migrate.downgrade(db, "0003")
        with db.engine.connect() as connection:
            ids = connection.execute(sa.text("SELECT id FROM mlw_models")).scalars().all()
            versions = connection.execute(sa.text("SELECT count(*) FROM mlw_model_versions"))
            assert ids == ["m1"] and versions.scalar() == 1
        assert "mlw_engine_states" not in sa.inspect(db.engine).get_table_names(schema=db.schema)
        migrate.upgrade(db)
        with db.engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT count(*) FROM mlw_model_versions"))
            assert versions.scalar() == 1
    finally:
        db.dispose()
