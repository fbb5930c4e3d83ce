from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mlworker.analysis.segmentation.config import SegmentationLimits
from mlworker.analysis.segmentation.search import fit_final, relabel_by_size, search_k

LIMITS = SegmentationLimits(search_sample_rows=2000, silhouette_sample_rows=800, kmeans_restarts=3)


def _blobs(rows: int, centers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    points, truth = make_blobs(
        n_samples=rows, centers=centers, n_features=5, cluster_std=1.0, random_state=seed
    )
    return points.astype(np.float32), truth


def test_search_finds_the_planted_number_of_clusters_on_a_sample() -> None:
    points, truth = _blobs(6000, centers=5)
    search = search_k(points, range(2, 9), limits=LIMITS, random_state=0)
    assert search.best_k == 5
    assert search.sample_size == 2000
    assert [c.k for c in search.candidates] == list(range(2, 9))
    best = max(search.candidates, key=lambda c: c.silhouette or -1)
    assert best.k == 5
    inertias = [c.inertia for c in search.candidates]
    assert inertias == sorted(inertias, reverse=True)  # more clusters, less inertia
    assert all(c.calinski_harabasz and c.davies_bouldin for c in search.candidates)


def test_final_fit_recovers_planted_clusters_with_both_algorithms() -> None:
    points, truth = _blobs(6000, centers=4, seed=2)
    search = search_k(points, [4], limits=LIMITS, random_state=1)
    for minibatch in (False, True):
        labels = fit_final(points, search.centroids, minibatch=minibatch, random_state=1)
        assert labels.dtype == np.int32 and labels.shape == (6000,)
        assert adjusted_rand_score(truth, labels) >= 0.95


def test_search_is_deterministic() -> None:
    points, _ = _blobs(3000, centers=3, seed=4)
    first = search_k(points, range(2, 5), limits=LIMITS, random_state=7)
    second = search_k(points, range(2, 5), limits=LIMITS, random_state=7)
    assert first.candidates == second.candidates
    np.testing.assert_array_equal(first.centroids, second.centroids)


def test_relabel_by_size_orders_clusters_largest_first() -> None:
    labels = np.array([2, 2, 0, 1, 1, 1, -1], dtype=np.int32)
    assert relabel_by_size(labels).tolist() == [1, 1, 2, 0, 0, 0, -1]
