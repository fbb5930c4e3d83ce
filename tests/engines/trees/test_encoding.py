"""Frames → matrices: numeric pass-through, categorical codes, and every kind of missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.engines.trees import FeatureEncoder
from mlworker.engines.trees.encoding import is_numeric_column


def _training_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [30.0, np.nan, 45.0, 51.0],
            "visits": pd.array([1, None, 3, 4], dtype="Int64"),
            "member": [True, False, True, False],
            "tier": ["gold", "silver", None, "gold"],
            "channel": pd.Categorical(["web", "app", "web", "store"]),
            "mixed": [1, "x", 2, None],
        }
    )


@pytest.mark.parametrize(
    ("values", "numeric"),
    [
        (pd.Series([1.0, 2.0]), True),
        (pd.Series([1, None, 2.5], dtype=object), True),
        (pd.Series([True, None], dtype=object), True),
        (pd.Series([None, None], dtype=object), True),
        (pd.Series(pd.array([1, None], dtype="Int64")), True),
        (pd.Series(["a", None]), False),
        (pd.Series([1, "x"]), False),
        (pd.Series(pd.Categorical([1, 2])), False),
        (pd.Series(pd.array(["a", None], dtype="string")), False),
    ],
)
def test_numeric_columns_are_recognised(values: pd.Series, numeric: bool) -> None:
    assert is_numeric_column(values) is numeric


def test_fit_numbers_the_sorted_values_of_categorical_columns() -> None:
    columns = ["age", "visits", "member", "tier", "channel", "mixed"]
    encoder = FeatureEncoder.fit(_training_frame(), columns)
    assert encoder.feature_names == tuple(columns)
    assert encoder.categorical == {
        "tier": {"gold": 0, "silver": 1},
        "channel": {"app": 0, "store": 1, "web": 2},
        "mixed": {"1": 0, "2": 1, "x": 2},
    }
    assert encoder.categorical_indices == [3, 4, 5]


def test_transform_encodes_training_rows() -> None:
    frame = _training_frame()
    encoder = FeatureEncoder.fit(frame, list(frame.columns))
    expected = np.array(
        [
            [30.0, 1.0, 1.0, 0.0, 2.0, 0.0],
            [np.nan, np.nan, 0.0, 1.0, 0.0, 2.0],
            [45.0, 3.0, 1.0, np.nan, 2.0, 1.0],
            [51.0, 4.0, 0.0, 0.0, 1.0, np.nan],
        ]
    )
    matrix = encoder.transform(frame)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.float64 and matrix.flags.c_contiguous


def test_unseen_missing_and_unknown_inputs_become_nan() -> None:
    frame = _training_frame()
    encoder = FeatureEncoder.fit(frame, list(frame.columns))
    candidates = pd.DataFrame(
        {
            "tier": ["platinum", pd.NA, "silver"],
            "age": ["41", "old", None],  # numbers as text count, other text is missing
            "channel": ["web", float("nan"), "fax"],
            "neverSeen": [1, 2, 3],
        }
    )
    matrix = encoder.transform(candidates)
    np.testing.assert_array_equal(matrix[:, 0], [41.0, np.nan, np.nan])
    np.testing.assert_array_equal(matrix[:, 3], [np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(matrix[:, 4], [2.0, np.nan, np.nan])
    assert np.isnan(matrix[:, [1, 2, 5]]).all()  # absent columns


def test_categorical_values_match_by_their_string() -> None:
    encoder = FeatureEncoder(("code",), {"code": {"7": 0, "x": 1}})
    matrix = encoder.transform(pd.DataFrame({"code": [7, "7", "x", 8]}))
    np.testing.assert_array_equal(matrix[:, 0], [0.0, 0.0, 1.0, np.nan])


def test_empty_and_non_string_labelled_frames() -> None:
    encoder = FeatureEncoder(("0", "tier"), {"tier": {"a": 0}})
    assert encoder.transform(pd.DataFrame({"tier": []})).shape == (0, 2)
    matrix = encoder.transform(pd.DataFrame({0: [1.5], "tier": ["a"]}))
    np.testing.assert_array_equal(matrix, [[1.5, 0.0]])


def test_json_round_trip_and_validation() -> None:
    frame = _training_frame()
    encoder = FeatureEncoder.fit(frame, list(frame.columns))
    assert FeatureEncoder.from_json(encoder.to_json()) == encoder
    with pytest.raises(ValueError, match="feature_names"):
        FeatureEncoder.from_json({"feature_names": [1, 2]})
    with pytest.raises(ValueError, match="not in feature_names"):
        FeatureEncoder.from_json({"feature_names": ["a"], "categorical": {"b": {"x": 0}}})
    with pytest.raises(ValueError, match="non-negative integers"):
        FeatureEncoder.from_json({"feature_names": ["a"], "categorical": {"a": {"x": 1.5}}})
