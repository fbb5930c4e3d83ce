"""The target column: task detection, class encoding and the checks that stop bad requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlworker.errors import InvalidInput
from mlworker.training.algorithms import Task
from mlworker.training.target import Target, analyse_target, class_counts, drop_unlabelled


def frame(values: list[object]) -> pd.DataFrame:
    return pd.DataFrame({"y": values, "x": range(len(values))})


def test_yes_no_target_is_classification_with_sorted_classes() -> None:
    target = analyse_target(frame(["Yes", "No", " Yes", "No"]), "y", task=None)

    assert target.task is Task.CLASSIFICATION
    assert target.classes == ("No", "Yes")


def test_encode_and_decode_round_trip_labels() -> None:
    target = analyse_target(frame(["b", "a", "c", "a"]), "y", task=Task.CLASSIFICATION)

    codes = target.encode(pd.Series(["c", "a", " b "]))
    assert codes.tolist() == [2, 0, 1]
    assert codes.dtype == np.int64
    assert target.decode(codes) == ["c", "a", "b"]


def test_integral_float_labels_become_ints() -> None:
    target = analyse_target(frame([0.0, 1.0, 1.0, 0.0]), "y", task=None)

    assert target.classes == (0, 1)
    assert all(type(label) is int for label in target.classes)


def test_many_fractional_values_make_a_regression_target() -> None:
    values = list(np.linspace(0.5, 99.5, 120))
    target = analyse_target(frame(values), "y", task=None)

    assert target.task is Task.REGRESSION
    assert target.classes is None
    assert target.encode(pd.Series(["1.5", " 2 "])).tolist() == [1.5, 2.0]
    assert target.decode(np.array([1.5])) == [1.5]


def test_continuous_target_refused_for_a_classifier() -> None:
    values = list(np.random.default_rng(0).normal(size=200))

    with pytest.raises(InvalidInput, match="continuous.*regression") as caught:
        analyse_target(frame(values), "y", task=Task.CLASSIFICATION)
    assert caught.value.field == "target_column"


def test_text_target_refused_for_a_regressor() -> None:
    with pytest.raises(InvalidInput, match="not numeric") as caught:
        analyse_target(frame(["a", "b", "a"]), "y", task=Task.REGRESSION)
    assert caught.value.field == "target_column"


def test_constant_regression_target_refused() -> None:
    with pytest.raises(InvalidInput, match="constant"):
        analyse_target(frame([2.5] * 10), "y", task=Task.REGRESSION)


def test_single_class_refused_naming_the_class() -> None:
    with pytest.raises(InvalidInput, match="single class \\('Yes'\\)"):
        analyse_target(frame(["Yes"] * 10), "y", task=Task.CLASSIFICATION)


def test_unknown_target_column_lists_the_columns() -> None:
    with pytest.raises(InvalidInput, match="'Churn' is not in the dataset; columns: y, x"):
        analyse_target(frame([1, 0]), "Churn", task=None)


def test_drop_unlabelled_removes_missing_and_blank_targets() -> None:
    kept, dropped = drop_unlabelled(frame(["Yes", None, "  ", "No", np.nan]), "y")

    assert dropped == 3
    assert kept["y"].tolist() == ["Yes", "No"]


def test_class_counts_include_absent_classes() -> None:
    target = Target("y", Task.CLASSIFICATION, ("a", "b", "c"))

    assert class_counts(target, [0, 0, 2]) == {"a": 2, "b": 0, "c": 1}
