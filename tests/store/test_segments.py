"""Segment assignments: bulk write (COPY / executemany), replace on retry, tenant-scoped pages."""

from __future__ import annotations

import pytest

from mlworker.store import migrate
from mlworker.store.db import Database
from mlworker.store.segments import Assignment, SegmentAssignmentRepository


@pytest.fixture
def repo(store_settings):
    settings = store_settings()
    db = Database(settings.database_url, schema=settings.database_schema)
    migrate.upgrade(db)
    yield SegmentAssignmentRepository(db)
    db.dispose()


def test_write_then_page_in_dataset_order(repo: SegmentAssignmentRepository) -> None:
    labels = [i % 3 for i in range(10_000)]
    names = [f"segment {label}" for label in labels]
    keys = [f"c-{i}" if i % 10 else None for i in range(10_000)]
    written = repo.replace(
        job_id="job-1", tenant="t1", cluster_ids=labels, segment_names=names, row_keys=keys
    )
    assert written == 10_000 == repo.count(job_id="job-1", tenant="t1")
    page = repo.page(job_id="job-1", tenant="t1", offset=9_998, limit=5)
    assert page == [
        Assignment(row_number=9_998, row_key="c-9998", cluster_id=2, segment_name="segment 2"),
        Assignment(row_number=9_999, row_key="c-9999", cluster_id=0, segment_name="segment 0"),
    ]
    assert repo.page(job_id="job-1", tenant="t1", offset=0, limit=1)[0].row_key is None


def test_writing_again_replaces_and_other_tenants_see_nothing(
    repo: SegmentAssignmentRepository,
) -> None:
    repo.replace(job_id="job-2", tenant="t1", cluster_ids=[0, 1, 1], segment_names=["a", "b", "b"])
    repo.replace(job_id="job-2", tenant="t1", cluster_ids=[4, 4], segment_names=["d", "d"])
    assert repo.count(job_id="job-2", tenant="t1") == 2
    assert [a.cluster_id for a in repo.page(job_id="job-2", tenant="t1", offset=0, limit=9)] == [
        4,
        4,
    ]
    assert repo.count(job_id="job-2", tenant="t2") == 0
    assert repo.page(job_id="job-2", tenant="t2", offset=0, limit=9) == []
    assert repo.delete(job_id="job-2", tenant="t2") == 0
    assert repo.delete(job_id="job-2", tenant="t1") == 2
