from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import DBSCAN
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mlworker.analysis.segmentation.dbscan import assign_to_cores, fit_dbscan, knee_of_curve


def _blobs_with_outliers(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    points, truth = make_blobs(
        n_samples=3000, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.8, random_state=seed
    )
    rng = np.random.default_rng(seed)
    outliers = rng.uniform(-30, 40, (30, 2))
    outliers = outliers[
        np.linalg.norm(outliers[:, None] - [[0, 0], [10, 0], [0, 10]], axis=2).min(1) > 8
    ]
    everything = np.concatenate([points, outliers]).astype(np.float32)
    return everything, np.concatenate([truth, np.full(len(outliers), -1)])


def test_automatic_eps_finds_clusters_and_flags_outliers() -> None:
    points, truth = _blobs_with_outliers()
    result = fit_dbscan(points, eps=None, min_samples=10, sample_rows=1000, random_state=0)
    assert result.eps_source == "k-distance knee" and result.eps > 0
    assert result.sample_size == 1000
    assert len(set(result.labels.tolist()) - {-1}) == 3
    planted_outliers = truth == -1
    assert np.all(result.labels[planted_outliers] == -1)
    clustered = ~planted_outliers & (result.labels >= 0)
    assert clustered.mean() > 0.9
    assert adjusted_rand_score(truth[clustered], result.labels[clustered]) > 0.99


def test_whole_sample_matches_sklearn_dbscan() -> None:
    points, _ = _blobs_with_outliers(seed=1)
    result = fit_dbscan(points, eps=0.9, min_samples=8, sample_rows=10_000, random_state=0)
    reference = DBSCAN(eps=0.9, min_samples=8).fit(points).labels_
    assert result.eps_source == "config"
    np.testing.assert_array_equal(result.labels, reference)


def test_knee_of_curve() -> None:
    flat_then_steep = np.concatenate([np.linspace(1.0, 1.2, 90), np.linspace(2, 20, 10)])
    assert 85 <= knee_of_curve(flat_then_steep) <= 91
    assert knee_of_curve(np.ones(10)) == 5


def test_assignment_matches_exhaustive_search() -> None:
    rng = np.random.default_rng(3)
    # More core points than the first anchor stages, so every stage runs.
    cores = np.concatenate([rng.normal(0, 1, (3000, 3)), rng.normal(6, 1, (2000, 3))])
    core_labels = np.repeat(np.array([0, 1], dtype=np.int32), [3000, 2000])
    points = rng.uniform(-4, 10, (1500, 3)).astype(np.float32)
    rows = np.arange(1500)
    labels = assign_to_cores(
        points, rows, cores.astype(np.float32), core_labels, 0.4, rng=np.random.default_rng(0)
    )
    reachable = cdist(points, cores) <= 0.4
    assert np.array_equal(labels == -1, ~reachable.any(axis=1))
    for row in np.flatnonzero(labels >= 0):
        assert reachable[row, core_labels == labels[row]].any()
