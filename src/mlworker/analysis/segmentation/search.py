"""Choose the number of segments on a sample, then fit the chosen k-means on every row.

Each candidate ``k`` is fitted on one seeded random sample of rows (k-means++ restarts on a
smaller subsample, the best refined on the whole sample); its silhouette is computed exactly on
a stratified sample of that sample
(:func:`~mlworker.analysis.segmentation.silhouette.sampled_silhouette`), and the
Calinski–Harabasz index, Davies–Bouldin index and inertia on the whole search sample. The ``k``
with the highest silhouette wins (the smaller ``k`` on a tie). The final model starts from the
sample's centroids and is refined on all rows: full k-means, or mini-batch k-means on large data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from mlworker.analysis.segmentation.config import SegmentationLimits
from mlworker.analysis.segmentation.silhouette import sampled_silhouette
from mlworker.analysis.statistics import Progress, no_progress

Labels = npt.NDArray[np.int32]
Points = npt.NDArray[np.float32]

_MINIBATCH_SIZE = 4096
_MINIBATCH_EPOCHS = 20


@dataclass(frozen=True, slots=True)
class KCandidate:
    """Scores of one candidate ``k`` (all on the search sample; see the module docstring)."""

    k: int
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    inertia: float

    def to_dict(self) -> dict[str, object]:
        """JSON form for ``kSearch``."""
        return {
            "k": self.k,
            "silhouette": self.silhouette,
            "calinskiHarabasz": self.calinski_harabasz,
            "daviesBouldin": self.davies_bouldin,
            "inertia": self.inertia,
        }


@dataclass(frozen=True, slots=True, eq=False)
class KSearch:
    """Outcome of the search: every candidate, the winner and its centroids."""

    candidates: tuple[KCandidate, ...]
    best_k: int
    centroids: npt.NDArray[np.float64]
    sample_size: int


def search_sample(rows: int, limit: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    """Sorted positions of a uniform sample of ``min(rows, limit)`` rows (all rows if fewer)."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(rng.choice(rows, size=limit, replace=False))


def search_k(
    points: Points,
    k_values: Sequence[int],
    *,
    limits: SegmentationLimits,
    random_state: int,
    progress: Progress = no_progress,
) -> KSearch:
    """Fit and score every ``k`` in ``k_values`` on a sample; pick the best silhouette.

    Parameters
    ----------
    points
        Scaled feature matrix, one row per clustered row.
    k_values
        Candidate numbers of clusters, ascending.
    limits
        Sample sizes and k-means restarts.
    random_state
        Seed of the sample, the k-means++ initialisations and the silhouette samples.
    progress
        Called after each ``k`` with the fraction of candidates done.
    """
    rng = np.random.default_rng(random_state)
    sample = points[search_sample(points.shape[0], limits.search_sample_rows, rng)]
    restart_rows = search_sample(sample.shape[0], limits.restart_sample_rows, rng)
    candidates: list[KCandidate] = []
    centroids: dict[int, npt.NDArray[np.float64]] = {}
    for done, k in enumerate(k_values, start=1):
        model = _fit_with_restarts(sample, restart_rows, k, limits, random_state)
        labels = np.asarray(model.labels_)
        centroids[k] = np.asarray(model.cluster_centers_, dtype=np.float64)
        candidates.append(_score(sample, labels, k, float(model.inertia_), limits, random_state))
        progress(done / len(k_values), f"k={k}: silhouette {_format(candidates[-1].silhouette)}")
    best = max(candidates, key=lambda c: (c.silhouette is not None, c.silhouette or 0.0, -c.k))
    return KSearch(tuple(candidates), best.k, centroids[best.k], int(sample.shape[0]))


def fit_final(
    points: Points,
    centroids: npt.NDArray[np.float64],
    *,
    minibatch: bool,
    random_state: int,
) -> Labels:
    """Refine ``centroids`` on every row and return each row's cluster.

    Mini-batch k-means touches a few thousand rows per step, so its cost barely grows with the
    data; full k-means (Lloyd) passes over every row each iteration.
    """
    k = centroids.shape[0]
    init = centroids.astype(points.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if minibatch:
            model = MiniBatchKMeans(
                n_clusters=k,
                init=init,
                n_init=1,
                batch_size=_MINIBATCH_SIZE,
                max_iter=_MINIBATCH_EPOCHS,
                random_state=random_state,
            ).fit(points)
        else:
            model = KMeans(n_clusters=k, init=init, n_init=1, random_state=random_state).fit(points)
    return np.asarray(model.labels_, dtype=np.int32)


def relabel_by_size(labels: Labels) -> Labels:
    """Renumber clusters ``0, 1, …`` from largest to smallest; negative labels stay.

    Examples
    --------
    >>> relabel_by_size(np.array([3, 1, 1, -1, 3, 3], dtype=np.int32)).tolist()
    [0, 1, 1, -1, 0, 0]
    """
    clustered = labels >= 0
    if not clustered.any():
        return labels.astype(np.int32)
    counts = np.bincount(labels[clustered])
    present = np.flatnonzero(counts)
    order = present[np.lexsort((present, -counts[present]))]
    mapping = np.full(counts.size, -1, dtype=np.int32)
    mapping[order] = np.arange(order.size, dtype=np.int32)
    return np.where(clustered, mapping[np.maximum(labels, 0)], labels).astype(np.int32)


def _fit_with_restarts(
    sample: Points,
    restart_rows: npt.NDArray[np.intp],
    k: int,
    limits: SegmentationLimits,
    random_state: int,
) -> KMeans:
    """k-means++ restarts on a small subsample, the best one refined on the whole sample.

    Restarts are what protect against a poor local optimum, and their inertias rank the same on
    ten thousand rows as on a hundred thousand; refining once on the sample then costs one fit.
    """
    with warnings.catch_warnings():
        # Fewer distinct rows than k: k-means still returns k centres; the scores show it.
        warnings.simplefilter("ignore", ConvergenceWarning)
        restarts = KMeans(
            n_clusters=k, init="k-means++", n_init=limits.kmeans_restarts, random_state=random_state
        ).fit(sample[restart_rows])
        if restart_rows.size == sample.shape[0]:
            return restarts
        init = np.asarray(restarts.cluster_centers_, dtype=sample.dtype)
        return KMeans(n_clusters=k, init=init, n_init=1, random_state=random_state).fit(sample)


def _score(
    sample: Points,
    labels: npt.NDArray[np.integer],
    k: int,
    inertia: float,
    limits: SegmentationLimits,
    random_state: int,
) -> KCandidate:
    if np.unique(labels).size < 2:
        return KCandidate(k, None, None, None, inertia)
    silhouette = sampled_silhouette(
        sample,
        labels,
        sample_size=limits.silhouette_sample_rows,
        min_per_cluster=limits.silhouette_min_per_cluster,
        random_state=random_state,
    )
    return KCandidate(
        k=k,
        silhouette=silhouette.value,
        calinski_harabasz=float(calinski_harabasz_score(sample, labels)),
        davies_bouldin=float(davies_bouldin_score(sample, labels)),
        inertia=inertia,
    )


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
