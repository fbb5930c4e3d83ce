"""Portable LightGBM tree ensembles: export to JSON, reference walkers, a compiled scorer.

A booster trained with LightGBM is exported once (:func:`export_booster`) into tree JSON that
carries everything scoring needs, the feature encoding included (:class:`FeatureEncoder`).
From then on scores come from that JSON only: :class:`FlatEnsemble` lays it out as arrays for
the numba kernels (:func:`predict`, :func:`predict_one`); :mod:`.walker` holds the plain
reference walkers they are tested against; :mod:`.contributions` explains a score.
"""

from mlworker.engines.trees.contributions import contribution_details, path_contributions
from mlworker.engines.trees.encoding import FeatureEncoder
from mlworker.engines.trees.export import Ensemble, export_booster
from mlworker.engines.trees.flat import FlatEnsemble
from mlworker.engines.trees.kernel import predict, predict_one

__all__ = [
    "Ensemble",
    "FeatureEncoder",
    "FlatEnsemble",
    "contribution_details",
    "export_booster",
    "path_contributions",
    "predict",
    "predict_one",
]
