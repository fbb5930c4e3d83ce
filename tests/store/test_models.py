"""The model registry's repositories keep to their kind, on SQLite and PostgreSQL.

Trained estimators and algorithm models share ``mlw_models``; a read, a change or a delete by
id through one family's repository must never reach a model of the other family.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlworker.errors import NotFound
from mlworker.registry.values import ModelVersion
from mlworker.services.training import ESTIMATOR_KIND
from mlworker.store import migrate
from mlworker.store.algorithm_models import (
    AlgorithmModelRepository,
    EngineStateRepository,
    PromotionRepository,
)
from mlworker.store.db import Database
from mlworker.store.models import ModelRepository
from mlworker.store.records import utcnow

TENANT = "t1"
ESTIMATOR = "model-0000000000e1"
ALGORITHM = "model-0000000000a1"


@pytest.fixture
def db(store_settings) -> Iterator[Database]:
    settings = store_settings()
    database = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(database)
    estimators = ModelRepository(database)
    estimators.register(
        model_id=ESTIMATOR,
        tenant=TENANT,
        name="forest",
        kind=ESTIMATOR_KIND,
        family=ESTIMATOR,
        config={"algorithm": "RandomForestClassifier"},
        version=ModelVersion(
            model_id=ESTIMATOR,
            version=1,
            artifact_uri="file:///nowhere/model.zip",
            artifact_sha256="0" * 64,
            artifact_format="mlworker-zip",
            params={},
            metrics={},
            dataset_fingerprint=None,
            job_id=None,
            created_at=utcnow(),
        ),
        actor="job:1",
        reason="trained",
    )
    AlgorithmModelRepository(database).create(
        model_id=ALGORITHM,
        tenant=TENANT,
        key="scorecard",
        name="Scorecard",
        description="",
        model_type="scorecard",
        # A family named like the estimator: the estimator must still stay out of it.
        family=ESTIMATOR,
        config={"baseScore": 50},
        status="draft",
        spec={},
        state={},
        actor="tester",
    )
    yield database
    database.dispose()


def test_the_estimator_repository_does_not_see_algorithm_models(db: Database) -> None:
    estimators = ModelRepository(db)

    with pytest.raises(NotFound):
        estimators.get(ALGORITHM, tenant=TENANT, kind=ESTIMATOR_KIND)
    with pytest.raises(NotFound):
        estimators.delete(ALGORITHM, tenant=TENANT, kind=ESTIMATOR_KIND, actor="a", reason="r")
    listed = estimators.list_models(tenant=TENANT, kind=ESTIMATOR_KIND)

    assert [model.id for model in listed] == [ESTIMATOR]
    algorithm_models = AlgorithmModelRepository(db)
    assert algorithm_models.get(ALGORITHM, tenant=TENANT).key == "scorecard"
    assert [row["action"] for row in algorithm_models.audit_trail(ALGORITHM, tenant=TENANT)] == [
        "algorithm_model.created"
    ]


def test_the_algorithm_model_repositories_do_not_see_estimators(db: Database) -> None:
    algorithm_models = AlgorithmModelRepository(db)
    states = EngineStateRepository(db)
    promotions = PromotionRepository(db)

    for attempt in (
        lambda: algorithm_models.get(ESTIMATOR, tenant=TENANT),
        lambda: algorithm_models.get_by_key(ESTIMATOR, tenant=TENANT),
        lambda: algorithm_models.versions(ESTIMATOR, tenant=TENANT),
        lambda: algorithm_models.update(
            ESTIMATOR, tenant=TENANT, actor="a", changes={"name": "x"}, new_revision=False
        ),
        lambda: algorithm_models.set_status(
            ESTIMATOR, tenant=TENANT, status="error", actor="a", action="x", reason="r"
        ),
        lambda: algorithm_models.delete(ESTIMATOR, tenant=TENANT, actor="a"),
        lambda: states.live_state(ESTIMATOR, tenant=TENANT),
        lambda: states.replace_state(
            ESTIMATOR, tenant=TENANT, actor="a", state={}, action="x", reason=None
        ),
        lambda: promotions.promote(
            ESTIMATOR, tenant=TENANT, to="challenger", actor="a", reason=None
        ),
    ):
        with pytest.raises(NotFound):
            attempt()

    assert [model.id for model in algorithm_models.family_members(ESTIMATOR, tenant=TENANT)] == [
        ALGORITHM
    ]
    estimator = ModelRepository(db).get(ESTIMATOR, tenant=TENANT, kind=ESTIMATOR_KIND)
    assert (estimator.name, estimator.status) == ("forest", "active")
    assert [row["action"] for row in ModelRepository(db).audit_trail(ESTIMATOR, tenant=TENANT)] == [
        "model.registered"
    ]
