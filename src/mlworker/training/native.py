"""XGBoost and LightGBM models kept in their own formats (JSON / model text), not pickles."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlworker.training.algorithms import Task


def export_booster(kind: str, estimator: Any) -> bytes:
    """Serialise a fitted scikit-learn wrapper's booster in the library's own format.

    Only the trees the wrapper predicts with are kept: an XGBoost model fitted with early
    stopping holds the rounds past its best iteration too, which its wrapper skips but a bare
    booster would not. (LightGBM's model text already stops at the best iteration.)
    """
    if kind == "xgboost":
        booster = estimator.get_booster()
        try:
            best = int(estimator.best_iteration)
        except AttributeError:  # fitted without early stopping: every tree counts
            best = None
        if best is not None:
            booster = booster[: best + 1]
        return bytes(booster.save_raw(raw_format="json"))
    if kind == "lightgbm":
        return str(estimator.booster_.model_to_string()).encode()
    raise ValueError(f"unknown native format {kind!r}")


class NativeBooster:
    """Predict with a booster loaded from its own format, as the fitted wrapper would.

    Parameters
    ----------
    kind
        ``xgboost`` or ``lightgbm``.
    data
        The booster as :func:`export_booster` wrote it.
    task
        Classification (probabilities per class) or regression.
    n_classes
        Number of classes (classification).
    """

    def __init__(self, kind: str, data: bytes, *, task: Task, n_classes: int | None) -> None:
        self.kind = kind
        self.task = task
        self.n_classes = n_classes
        if kind == "xgboost":
            import xgboost

            self._booster: Any = xgboost.Booster()
            self._booster.load_model(bytearray(data))
        elif kind == "lightgbm":
            import lightgbm

            self._booster = lightgbm.Booster(model_str=data.decode())
        else:
            raise ValueError(f"unknown native format {kind!r}")

    @property
    def booster(self) -> Any:
        """The library's booster (``xgboost.Booster`` or ``lightgbm.Booster``)."""
        return self._booster

    def _raw(self, matrix: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            import xgboost

            return np.asarray(self._booster.predict(xgboost.DMatrix(matrix)), dtype="float64")
        return np.asarray(self._booster.predict(matrix), dtype="float64")

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """Class probabilities, one column per class."""
        values = self._raw(matrix)
        if values.ndim == 1:
            return np.column_stack([1.0 - values, values])
        return values

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        """Class codes (classification) or values (regression)."""
        if self.task is Task.REGRESSION:
            return self._raw(matrix)
        codes: np.ndarray = self.predict_proba(matrix).argmax(axis=1)
        return codes
