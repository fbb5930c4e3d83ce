from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import silhouette_score

from mlworker.analysis.segmentation.silhouette import sampled_silhouette, stratified_sample


def _clustered(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    points, _ = make_blobs(
        n_samples=[rows // 2, rows // 3, rows - rows // 2 - rows // 3],
        n_features=6,
        cluster_std=[1.0, 1.5, 2.5],
        random_state=seed,
    )
    labels = KMeans(3, n_init=1, random_state=seed).fit_predict(points)
    return points, labels


def test_equals_exact_silhouette_when_the_sample_covers_every_row() -> None:
    points, labels = _clustered(900)
    estimate = sampled_silhouette(points, labels, sample_size=1000)
    assert estimate.sample_size == 900
    assert estimate.value is not None
    assert abs(estimate.value - silhouette_score(points, labels)) < 1e-9


def test_sample_estimate_is_within_two_hundredths_of_exact() -> None:
    points, labels = _clustered(6000, seed=3)
    exact = silhouette_score(points, labels)
    for seed in range(3):
        estimate = sampled_silhouette(points, labels, sample_size=1500, random_state=seed)
        assert estimate.value is not None
        assert estimate.sample_size < 1600
        assert abs(estimate.value - exact) <= 0.02


def test_small_clusters_are_oversampled_without_bias() -> None:
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 1, (5000, 2)), rng.normal(8, 1, (50, 2))])
    labels = np.array([0] * 5000 + [1] * 50)
    estimate = sampled_silhouette(points, labels, sample_size=500, min_per_cluster=50)
    assert estimate.value is not None
    assert abs(estimate.value - silhouette_score(points, labels)) <= 0.02


def test_stratified_sample_allocation() -> None:
    labels = np.repeat([0, 1, 2], [8000, 1900, 100])
    picked = stratified_sample(labels, 1000, min_per_cluster=60, rng=np.random.default_rng(1))
    counts = np.bincount(labels[picked])
    assert counts.tolist() == [800, 190, 60]
    assert np.all(np.diff(picked) > 0)


def test_noise_is_ignored_and_one_cluster_has_no_silhouette() -> None:
    points, labels = _clustered(600)
    noisy = labels.copy()
    noisy[:30] = -1
    keep = noisy >= 0
    estimate = sampled_silhouette(points, noisy)
    assert estimate.value is not None
    assert abs(estimate.value - silhouette_score(points[keep], labels[keep])) < 1e-9
    assert sampled_silhouette(points, np.zeros(600, dtype=int)).value is None
