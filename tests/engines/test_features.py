from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from mlworker.engines._features import (
    CategoricalField,
    FeatureEncoder,
    NumericField,
    canonical_text,
    canonical_texts,
    numeric_values,
)


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customerId": [f"c{i}" for i in range(8)],
            "offerId": ["o1", "o2"] * 4,
            "age": rng.normal(40, 10, 8),
            "income": rng.lognormal(10, 0.5, 8),
            "member": [True, False, True, True, False, False, True, False],
            "tier": ["gold", "silver", "gold", "bronze", "gold", "silver", None, "gold"],
        }
    )


def test_numeric_columns_match_sklearn_standard_scaler() -> None:
    frame = _frame()
    encoder = FeatureEncoder.fit(frame)
    numeric = frame[["age", "income", "member"]].astype(float)
    expected = StandardScaler().fit_transform(numeric)
    matrix = encoder.transform(frame)
    names = encoder.feature_names
    columns = [names.index(name) for name in ("age", "income", "member")]
    np.testing.assert_allclose(matrix[:, columns], expected, rtol=0, atol=1e-12)


def test_reserved_columns_are_not_features_and_order_follows_frequency() -> None:
    encoder = FeatureEncoder.fit(_frame())
    assert encoder.feature_names == [
        "age",
        "income",
        "member",
        "tier=gold",
        "tier=silver",
        "tier=bronze",
    ]
    assert encoder.feature_fields[-3:] == ["tier", "tier", "tier"]
    assert encoder.field_names == ["age", "income", "member", "tier"]


def test_equal_counts_are_ordered_by_text_and_levels_are_capped() -> None:
    frame = pd.DataFrame({"colour": ["red", "blue", "green", "blue", "red", "amber"]})
    encoder = FeatureEncoder.fit(frame, max_levels=2)
    assert encoder.feature_names == ["colour=blue", "colour=red"]
    matrix = encoder.transform(pd.DataFrame({"colour": ["green", "red", "blue"]}))
    np.testing.assert_array_equal(matrix, [[0, 0], [0, 1], [1, 0]])
    with pytest.raises(ValueError, match="max_levels"):
        FeatureEncoder.fit(frame, max_levels=0)


def test_missing_numeric_is_the_mean_and_constant_column_keeps_scale_one() -> None:
    frame = pd.DataFrame({"x": [1.0, 3.0, None], "flat": [0.1, 0.1, 0.1]})
    encoder = FeatureEncoder.fit(frame)
    (x_field, flat_field) = encoder.fields
    assert isinstance(x_field, NumericField) and isinstance(flat_field, NumericField)
    assert (x_field.mean, x_field.scale) == (2.0, 1.0)
    assert flat_field.scale == 1.0
    np.testing.assert_allclose(encoder.transform(frame), [[-1, 0], [1, 0], [0, 0]], atol=1e-15)


def test_unseen_missing_categories_and_absent_columns_encode_as_zeros() -> None:
    encoder = FeatureEncoder.fit(_frame())
    candidates = pd.DataFrame(
        {"tier": ["platinum", None, np.nan, "gold"], "brandNew": [1, 2, 3, 4]}
    )
    matrix = encoder.transform(candidates)
    assert matrix.shape == (4, 6)
    np.testing.assert_array_equal(matrix[:, :3], 0.0)  # numeric fields absent → their mean
    np.testing.assert_array_equal(matrix[:, 3:], [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])


def test_empty_frame_gives_an_empty_matrix() -> None:
    encoder = FeatureEncoder.fit(_frame())
    assert encoder.transform(_frame().iloc[:0]).shape == (0, 6)
    assert encoder.transform(pd.DataFrame()).shape == (0, 6)


def test_numeric_field_sent_as_json_strings_stays_numeric() -> None:
    frame = pd.DataFrame({"visits": [1, 2, 3, 6]})
    encoder = FeatureEncoder.fit(frame)
    as_text = pd.DataFrame({"visits": ["1", "2", "3", "6"]}, dtype=object)
    np.testing.assert_array_equal(encoder.transform(as_text), encoder.transform(frame))
    garbage = encoder.transform(pd.DataFrame({"visits": ["many", "inf"]}))
    np.testing.assert_array_equal(garbage, [[0.0], [0.0]])


def test_text_that_is_all_numbers_is_fitted_as_numeric() -> None:
    encoder = FeatureEncoder.fit(pd.DataFrame({"score": ["1", "2.5", None, "4"]}, dtype=object))
    assert encoder.feature_names == ["score"]
    mixed = FeatureEncoder.fit(pd.DataFrame({"score": ["1", "high"]}))
    assert mixed.feature_names == ["score=1", "score=high"]


def test_equal_values_of_different_types_are_one_category() -> None:
    encoder = FeatureEncoder.fit(pd.DataFrame({"plan": ["3", "basic", "3"]}))
    assert encoder.feature_names == ["plan=3", "plan=basic"]
    matrix = encoder.transform(pd.DataFrame({"plan": [3, 3.0, "3", True]}, dtype=object))
    np.testing.assert_array_equal(matrix, [[1, 0], [1, 0], [1, 0], [0, 0]])
    floats = encoder.transform(pd.DataFrame({"plan": [3.0, np.nan]}))
    np.testing.assert_array_equal(floats, [[1, 0], [0, 0]])


def test_all_missing_columns_are_left_out() -> None:
    encoder = FeatureEncoder.fit(
        pd.DataFrame({"a": [None, None], "b": [np.nan, np.nan], "c": [1, 2]})
    )
    assert encoder.feature_names == ["c"]


def test_state_round_trips_through_json() -> None:
    frame = _frame()
    encoder = FeatureEncoder.fit(frame)
    restored = FeatureEncoder.from_state(json.loads(json.dumps(encoder.state())))
    assert restored.feature_names == encoder.feature_names
    np.testing.assert_array_equal(restored.transform(frame), encoder.transform(frame))


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"fields": [{"name": "a", "kind": "numeric", "mean": 0.0}]},
        {"fields": [{"name": "a", "kind": "numeric", "mean": 0.0, "scale": 0.0}]},
        {"fields": [{"name": "a", "kind": "ordinal"}]},
    ],
)
def test_malformed_state_is_refused(state: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FeatureEncoder.from_state(state)


def test_colliding_feature_names_are_refused() -> None:
    with pytest.raises(ValueError, match="collide"):
        FeatureEncoder([NumericField("tier=gold", 0, 1), CategoricalField("tier", ("gold",))])


def test_contributions_are_summed_per_field_and_ranked_by_size() -> None:
    encoder = FeatureEncoder(
        [
            NumericField("age", 0.0, 1.0),
            CategoricalField("tier", ("gold", "silver")),
            NumericField("income", 0.0, 1.0),
        ]
    )
    contributions = np.array([[0.5, 0.0, -0.75, 0.1], [0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        encoder.field_contributions(contributions), [[0.5, -0.75, 0.1], [0, 0, 0]]
    )
    first, second = encoder.explain_rows(contributions)
    assert first == [
        {"field": "tier", "contribution": -0.75},
        {"field": "age", "contribution": 0.5},
        {"field": "income", "contribution": 0.1},
    ]
    assert [detail["field"] for detail in second] == ["age", "tier", "income"]


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1.0, 2.5, -0.0, 1e20, 3.0]),
        pd.Series([1, 2, 3]),
        pd.Series([True, False]),
        pd.Series(["a", "b"]),
        pd.Series([1, "x", 2.0, False, None], dtype=object),
        pd.Series([1, 2, None], dtype="Int64"),
        pd.Series(["a", "b"], dtype="category"),
    ],
)
def test_vectorised_canonical_text_agrees_with_the_scalar_one(series: pd.Series) -> None:
    texts = canonical_texts(series)
    present = series.notna().to_numpy()
    expected = [canonical_text(value) for value in series.astype(object)]
    assert [t for t, keep in zip(texts, present, strict=True) if keep] == [
        e for e, keep in zip(expected, present, strict=True) if keep
    ]


def test_numeric_values_treat_infinities_and_text_as_missing() -> None:
    values = numeric_values(pd.Series([1.5, np.inf, -np.inf, None]))
    np.testing.assert_array_equal(values, [1.5, np.nan, np.nan, np.nan])


def test_a_categorical_field_without_levels_takes_no_columns() -> None:
    encoder = FeatureEncoder(
        [
            CategoricalField("empty", ()),
            NumericField("b", 1.0, 2.0),
            CategoricalField("c", ("u", "v")),
        ]
    )
    frame = pd.DataFrame({"empty": ["x"], "b": [5], "c": ["v"]})
    np.testing.assert_array_equal(encoder.transform(frame), [[2.0, 0.0, 1.0]])
    assert encoder.categorical_blocks[1].tolist() == [1, 2]
    assert FeatureEncoder().transform(frame).shape == (1, 0)
