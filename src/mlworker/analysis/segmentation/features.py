"""Turn the selected columns into the scaled float32 matrix the clustering runs on.

Numeric columns are centred on their median and divided by their interquartile range (the
standard deviation where the IQR is 0, e.g. a mostly-zero flag), then clipped to ``±CLIP`` so a
handful of extreme values cannot claim a cluster of their own; missing numbers become the median
(0 after scaling). Categorical columns are one-hot encoded over their most frequent levels, rarer
levels pooled as ``(other)`` and missing values kept as a ``(missing)`` level. Rows on which
every feature is missing are dropped (and reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlworker.analysis.segmentation.columns import (
    MAX_LEVELS,
    CategoricalColumn,
    ColumnSelection,
    ExcludedColumn,
    FloatArray,
    IntArray,
    NumericColumn,
)

Float32Matrix = npt.NDArray[np.float32]

CLIP = 5.0
"""Scaled numeric values are clipped to ``[-CLIP, CLIP]``."""

OTHER_LEVEL = "(other)"
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True, slots=True, eq=False)
class NumericFeature:
    """A numeric column as used: original values of the kept rows and its scaling."""

    name: str
    values: FloatArray
    median: float
    scale: float
    scale_basis: str
    missing: int

    def to_dict(self) -> dict[str, object]:
        """JSON form for ``preprocessing.numeric``."""
        return {
            "column": self.name,
            "median": self.median,
            "scale": self.scale,
            "scaleBasis": self.scale_basis,
            "missing": self.missing,
        }


@dataclass(frozen=True, slots=True, eq=False)
class CategoricalFeature:
    """A categorical column as used: per-row codes into ``levels`` (kept, other, missing)."""

    name: str
    codes: IntArray
    levels: tuple[str, ...]
    missing: int
    pooled_levels: int

    def to_dict(self) -> dict[str, object]:
        """JSON form for ``preprocessing.categorical``."""
        return {
            "column": self.name,
            "levels": list(self.levels),
            "missing": self.missing,
            "pooledIntoOther": self.pooled_levels,
        }


@dataclass(frozen=True, slots=True, eq=False)
class FeatureMatrix:
    """Everything the later stages need about the features.

    Attributes
    ----------
    scaled
        ``(rows, features)`` float32, C-contiguous: the clustering input.
    kept_rows
        Frame positions of the rows in ``scaled`` (``None``: every row, in order).
    frame_rows
        Rows in the input frame.
    numeric, categorical
        The features with their original-unit values (kept rows only).
    excluded
        Columns left out, with reasons.
    feature_names
        Name of each column of ``scaled`` (``income``, ``tier=Gold``).
    """

    scaled: Float32Matrix
    kept_rows: npt.NDArray[np.intp] | None
    frame_rows: int
    numeric: tuple[NumericFeature, ...]
    categorical: tuple[CategoricalFeature, ...]
    excluded: tuple[ExcludedColumn, ...]
    feature_names: tuple[str, ...]

    @property
    def rows(self) -> int:
        """Rows clustered (frame rows minus those with every feature missing)."""
        return int(self.scaled.shape[0])

    @property
    def empty_rows(self) -> int:
        """Rows dropped because every feature was missing."""
        return self.frame_rows - self.rows

    @property
    def columns_used(self) -> list[str]:
        """Input columns used as features, numeric first."""
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    def preprocessing(self) -> dict[str, object]:
        """JSON report of every preprocessing choice."""
        return {
            "numeric": [feature.to_dict() for feature in self.numeric],
            "categorical": [feature.to_dict() for feature in self.categorical],
            "excluded": [{"column": e.column, "reason": e.reason} for e in self.excluded],
            "clip": CLIP,
            "emptyRows": self.empty_rows,
        }


def build_features(selection: ColumnSelection, frame_rows: int) -> FeatureMatrix:
    """Scale, impute and one-hot encode the selected columns (see the module docstring)."""
    present = np.zeros(frame_rows, dtype=bool)
    for numeric_column in selection.numeric:
        present |= ~np.isnan(numeric_column.values)
    for categorical_column in selection.categorical:
        present |= categorical_column.codes >= 0
    kept_rows = None if present.all() else np.flatnonzero(present)

    numeric = tuple(_numeric_feature(column, kept_rows) for column in selection.numeric)
    categorical = tuple(_categorical_feature(column, kept_rows) for column in selection.categorical)
    names = [feature.name for feature in numeric]
    for feature in categorical:
        names.extend(f"{feature.name}={level}" for level in feature.levels)
    rows = frame_rows if kept_rows is None else kept_rows.size
    scaled = np.zeros((rows, len(names)), dtype=np.float32)
    for position, numeric_feature in enumerate(numeric):
        column = (numeric_feature.values - numeric_feature.median) / numeric_feature.scale
        np.clip(column, -CLIP, CLIP, out=column)
        scaled[:, position] = np.nan_to_num(column, nan=0.0)
    offset = len(numeric)
    row_positions = np.arange(rows)
    for feature in categorical:
        scaled[row_positions, offset + feature.codes] = 1.0
        offset += len(feature.levels)
    return FeatureMatrix(
        scaled=scaled,
        kept_rows=kept_rows,
        frame_rows=frame_rows,
        numeric=numeric,
        categorical=categorical,
        excluded=selection.excluded,
        feature_names=tuple(names),
    )


def _numeric_feature(
    column: NumericColumn, kept_rows: npt.NDArray[np.intp] | None
) -> NumericFeature:
    values = column.values if kept_rows is None else column.values[kept_rows]
    observed = values[~np.isnan(values)]
    q25, median, q75 = (float(q) for q in np.percentile(observed, [25, 50, 75]))
    scale, basis = q75 - q25, "iqr"
    if scale <= 0:
        scale, basis = float(observed.std()), "std"
    if scale <= 0:  # cannot happen for a non-constant column; kept so division is always safe
        scale, basis = 1.0, "none"
    return NumericFeature(
        name=column.name,
        values=values,
        median=median,
        scale=scale,
        scale_basis=basis,
        missing=int(values.size - observed.size),
    )


def _categorical_feature(
    column: CategoricalColumn, kept_rows: npt.NDArray[np.intp] | None
) -> CategoricalFeature:
    codes = column.codes if kept_rows is None else column.codes[kept_rows]
    counts = np.bincount(codes + 1, minlength=len(column.levels) + 1)
    missing, level_counts = int(counts[0]), counts[1:]
    # Most frequent first; ties by level name so the order never depends on the input order.
    order = sorted(
        (index for index in range(level_counts.size) if level_counts[index] > 0),
        key=lambda index: (-int(level_counts[index]), column.levels[index]),
    )
    kept, pooled = order[:MAX_LEVELS], order[MAX_LEVELS:]
    levels = [column.levels[index] for index in kept]
    mapping = np.full(len(column.levels) + 1, -1, dtype=np.int32)
    mapping[np.asarray(kept, dtype=np.intp) + 1] = np.arange(len(kept), dtype=np.int32)
    if pooled:
        mapping[np.asarray(pooled, dtype=np.intp) + 1] = len(levels)
        levels.append(OTHER_LEVEL)
    if missing:
        mapping[0] = len(levels)
        levels.append(MISSING_LEVEL)
    return CategoricalFeature(
        name=column.name,
        codes=mapping[codes + 1],
        levels=tuple(levels),
        missing=missing,
        pooled_levels=len(pooled),
    )
