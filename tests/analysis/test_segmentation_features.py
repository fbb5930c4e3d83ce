from __future__ import annotations

import numpy as np
import pandas as pd

from mlworker.analysis.segmentation.columns import select_columns
from mlworker.analysis.segmentation.features import (
    CLIP,
    MISSING_LEVEL,
    OTHER_LEVEL,
    FeatureMatrix,
    build_features,
)

rng = np.random.default_rng(1)


def _features(frame: pd.DataFrame) -> FeatureMatrix:
    return build_features(select_columns(frame, None, None, random_state=0), len(frame))


def test_numeric_scaling_is_robust_and_clipped() -> None:
    income = rng.normal(50_000, 10_000, 1000)
    income[:5] = 5_000_000  # outliers must not stretch the scale
    income[5:15] = np.nan
    # A second, complete column keeps the rows whose income is missing.
    features = _features(pd.DataFrame({"income": income, "age": rng.normal(40, 9, 1000)}))
    observed = income[~np.isnan(income)]
    q25, median, q75 = np.percentile(observed, [25, 50, 75])
    scale = q75 - q25
    report = features.preprocessing()["numeric"][0]  # type: ignore[index]
    assert report["median"] == median and np.isclose(report["scale"], scale)
    assert report["missing"] == 10 and report["scaleBasis"] == "iqr"
    column = features.scaled[:, 0]
    assert column.dtype == np.float32
    assert np.all(column[:5] == CLIP)
    assert np.all(column[5:15] == 0.0)  # missing → median
    expected = np.clip((income[15:] - median) / scale, -CLIP, CLIP)
    np.testing.assert_allclose(column[15:], expected, rtol=1e-5, atol=1e-5)


def test_zero_iqr_falls_back_to_standard_deviation() -> None:
    visits = np.zeros(1000)
    visits[:100] = rng.integers(1, 5, 100)
    features = _features(pd.DataFrame({"visits": visits}))
    assert features.numeric[0].scale_basis == "std"
    assert np.isclose(features.numeric[0].scale, visits.std())


def test_categorical_keeps_top_levels_pools_rest_and_keeps_missing() -> None:
    common = [f"L{i:02d}" for i in range(20)]
    values = [level for i, level in enumerate(common) for _ in range(40 - i)]
    values += ["rare_a", "rare_b", "rare_b"] + [None] * 7
    features = _features(pd.DataFrame({"city": values, "age": rng.normal(size=len(values))}))
    city = features.categorical[0]
    assert city.levels == (*common, OTHER_LEVEL, MISSING_LEVEL)
    assert city.missing == 7 and city.pooled_levels == 2
    assert features.feature_names[:2] == ("age", "city=L00")
    one_hot = features.scaled[:, 1:]
    assert np.all(one_hot.sum(axis=1) == 1.0)
    assert one_hot[:, city.levels.index(OTHER_LEVEL)].sum() == 3
    assert one_hot[:, city.levels.index(MISSING_LEVEL)].sum() == 7


def test_rows_with_every_feature_missing_are_dropped() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, np.nan, 3.0, np.nan, 5.0],
            "b": ["x", None, None, None, "y"],
        }
    )
    features = _features(frame)
    assert features.rows == 3 and features.empty_rows == 2
    assert features.kept_rows is not None and features.kept_rows.tolist() == [0, 2, 4]
    assert features.preprocessing()["emptyRows"] == 2
    assert features.numeric[0].missing == 0 and features.categorical[0].missing == 1
