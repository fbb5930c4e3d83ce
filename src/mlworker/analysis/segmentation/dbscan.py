"""Density-based segmentation: DBSCAN on a sample, every other row joins a core point near it.

DBSCAN's neighbourhood queries grow quadratically with dense data, so it runs on a seeded sample.
A row outside the sample takes the cluster of a core point within ``eps`` of it (the nearest of
the core points compared, see :func:`assign_to_cores`) and is noise (``-1``) when there is none,
which is what DBSCAN itself decides for a border point (reachable from two clusters, DBSCAN too
picks either). When ``eps`` is not given it is read off the k-distance curve: the distance of
sampled rows to their ``min_samples``-th neighbour, sorted; ``eps`` is taken at the knee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.cluster import DBSCAN
from sklearn.neighbors import NearestNeighbors

from mlworker.analysis.segmentation.search import Labels, Points, search_sample

_CURVE_QUERIES = 2000
_ASSIGN_CHUNK = 50_000
_ANCHOR_STAGES = (512, 4096)


@dataclass(frozen=True, slots=True, eq=False)
class DensityClustering:
    """Labels of every row (``-1`` noise) and how they were obtained."""

    labels: Labels
    eps: float
    eps_source: str
    min_samples: int
    sample_size: int
    core_points: int

    def to_dict(self) -> dict[str, object]:
        """JSON form for the result's ``dbscan`` member."""
        return {
            "eps": self.eps,
            "epsSource": self.eps_source,
            "minSamples": self.min_samples,
            "sampleSize": self.sample_size,
            "corePoints": self.core_points,
        }


def knee_of_curve(values: npt.NDArray[np.floating]) -> int:
    """Index of the knee of an increasing curve: the point farthest below its chord.

    Both axes are scaled to ``[0, 1]`` first, so the knee does not depend on units.

    References
    ----------
    .. [1] Satopää, V., Albrecht, J., Irwin, D. and Raghavan, B. (2011). Finding a "kneedle" in
       a haystack: detecting knee points in system behavior. ICDCS Workshops, 166-171.

    Examples
    --------
    >>> knee_of_curve(np.array([1.0, 1.1, 1.2, 1.3, 1.4, 3.0, 6.0, 10.0]))  # the last flat one
    4
    """
    curve = np.sort(np.asarray(values, dtype=np.float64))
    if curve.size < 3 or curve[-1] == curve[0]:
        return int(curve.size // 2)
    x = np.linspace(0.0, 1.0, curve.size)
    y = (curve - curve[0]) / (curve[-1] - curve[0])
    return int(np.argmax(x - y))


def k_distance_eps(sample: Points, min_samples: int, *, rng: np.random.Generator) -> float:
    """``eps`` at the knee of the sample's sorted ``min_samples``-nearest-neighbour distances."""
    neighbours = min(min_samples, sample.shape[0])
    index = NearestNeighbors(n_neighbors=neighbours).fit(sample)
    queries = sample[search_sample(sample.shape[0], _CURVE_QUERIES, rng)]
    # The query row is its own first neighbour, as DBSCAN counts the point itself.
    distances = np.sort(index.kneighbors(queries)[0][:, -1])
    eps = float(distances[knee_of_curve(distances)])
    if eps <= 0:  # duplicated rows: take the smallest positive distance instead
        positive = distances[distances > 0]
        eps = float(positive[0]) if positive.size else 1e-6
    return eps


def assign_to_cores(
    points: Points,
    rows: npt.NDArray[np.intp],
    cores: Points,
    core_labels: Labels,
    eps: float,
    *,
    rng: np.random.Generator,
) -> Labels:
    """Cluster of a core point within ``eps`` of each row of ``points[rows]``, else ``-1``.

    Comparing every row with every core point is the expensive part, so the rows are first
    compared with a few random core points, then more, then all: a row within ``eps`` of any
    core point is settled (DBSCAN also gives a border point the cluster of whichever core point
    reaches it), so only rows far from the first anchors, the noise among them, meet every core.
    """
    labels = np.full(rows.size, -1, dtype=np.int32)
    pending = np.arange(rows.size)
    order = rng.permutation(cores.shape[0])
    for anchors in (*(size for size in _ANCHOR_STAGES if size < cores.shape[0]), cores.shape[0]):
        if pending.size == 0:
            break
        chosen = order[:anchors]
        index = NearestNeighbors(n_neighbors=1).fit(cores[chosen])
        settled = []
        for start in range(0, pending.size, _ASSIGN_CHUNK):
            chunk = pending[start : start + _ASSIGN_CHUNK]
            distance, nearest = index.kneighbors(points[rows[chunk]])
            within = distance[:, 0] <= eps
            labels[chunk[within]] = core_labels[chosen[nearest[within, 0]]]
            settled.append(within)
        pending = pending[~np.concatenate(settled)]
    return labels


def fit_dbscan(
    points: Points,
    *,
    eps: float | None,
    min_samples: int,
    sample_rows: int,
    random_state: int,
) -> DensityClustering:
    """Cluster ``points`` with DBSCAN on a sample and extend the clusters to every row."""
    rng = np.random.default_rng(random_state)
    positions = search_sample(points.shape[0], sample_rows, rng)
    sample = points[positions]
    source = "config"
    if eps is None:
        eps, source = k_distance_eps(sample, min_samples, rng=rng), "k-distance knee"
    model = DBSCAN(eps=eps, min_samples=min_samples).fit(sample)
    sample_labels = np.asarray(model.labels_, dtype=np.int32)
    core = np.asarray(model.core_sample_indices_, dtype=np.intp)
    labels = np.full(points.shape[0], -1, dtype=np.int32)
    labels[positions] = sample_labels
    rest = np.ones(points.shape[0], dtype=bool)
    rest[positions] = False
    if core.size:
        rest_positions = np.flatnonzero(rest)
        labels[rest_positions] = assign_to_cores(
            points, rest_positions, sample[core], sample_labels[core], eps, rng=rng
        )
    return DensityClustering(
        labels=labels,
        eps=float(eps),
        eps_source=source,
        min_samples=min_samples,
        sample_size=int(positions.size),
        core_points=int(core.size),
    )
