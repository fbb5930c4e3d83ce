from __future__ import annotations

import math
import re

import pytest

from mlworker.engines.http_scoring.mapping import (
    ResponseMappingError,
    as_details,
    as_probability,
    batch_scores,
    extract,
    parse_path,
)


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("scores", ("scores",)),
        ("predictions[0].score", ("predictions", 0, "score")),
        ("data.items.2.p", ("data", "items", "2", "p")),
        ("[1]", (1,)),
        ("a[0][-1].b", ("a", 0, -1, "b")),
        ("", ()),
    ],
)
def test_parse_path(path: str, segments: tuple[object, ...]) -> None:
    assert parse_path(path) == segments


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", "a[x]", "a[0", "a]0[", "a[0]b"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        parse_path(path)


DOC = {
    "predictions": [{"score": 0.25}, {"score": 0.75}],
    "data": {"items": [0.1, 0.2, {"p": 0.3}], "2": "key-two"},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("predictions[0].score", 0.25),
        ("predictions.1.score", 0.75),
        ("predictions[-1].score", 0.75),
        ("data.items.2.p", 0.3),
        ("data.2", "key-two"),  # a digit segment is a key in an object
        ("", DOC),
    ],
)
def test_extract(path: str, value: object) -> None:
    assert extract(DOC, parse_path(path)) == value


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing", "response has no 'missing'"),
        ("predictions[5].score", "'predictions[5]' is out of range (array of 2)"),
        ("predictions.score", "found an array"),
        ("data[0]", "found an object"),
        ("predictions[0].score.deeper", "found a number"),
    ],
)
def test_extract_says_what_is_wrong(path: str, message: str) -> None:
    with pytest.raises(ResponseMappingError, match=re.escape(message)):
        extract(DOC, parse_path(path))


@pytest.mark.parametrize("value", [0, 0.0, 1, 1.0, 0.5, 1e-300])
def test_probabilities_in_range_are_accepted(value: float) -> None:
    assert as_probability(value, where="s") == float(value)


@pytest.mark.parametrize(
    "value", [-0.01, 1.0000001, math.nan, math.inf, True, False, "0.5", None, [0.5], {"p": 0.5}]
)
def test_non_probabilities_are_refused_not_clipped(value: object) -> None:
    with pytest.raises(ResponseMappingError, match="^s "):
        as_probability(value, where="s")


def test_batch_scores_from_numbers_and_from_objects() -> None:
    assert batch_scores({"scores": [0.1, 0.9]}, ("scores",), ("score",), 2) == [0.1, 0.9]
    nested = {"out": {"predictions": [{"p": {"yes": 0.2}}, {"p": {"yes": 0.4}}]}}
    assert batch_scores(nested, ("out", "predictions"), ("p", "yes"), 2) == [0.2, 0.4]
    class_probabilities = [[0.7, 0.3], [0.2, 0.8]]
    assert batch_scores(class_probabilities, (), ("1",), 2) == [0.3, 0.8]


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"scores": [0.1]}, "has 1 scores for 2 instances"),
        ({"scores": [0.1, 0.2, 0.3]}, "has 3 scores for 2 instances"),
        ({"scores": 0.1}, "is a number, not an array"),
        ({"scores": [0.1, 2.0]}, r"scores\[1\] 2.0 is outside"),
        ({"scores": [0.1, {"other": 1}]}, "no 'score'"),
        ({"wrong": []}, "no 'scores'"),
    ],
)
def test_bad_batches_are_refused(response: object, message: str) -> None:
    with pytest.raises(ResponseMappingError, match=message):
        batch_scores(response, ("scores",), ("score",), 2)


def test_details_shapes() -> None:
    assert as_details(None) == []
    assert as_details({"age": 1, "tier": -0.5}) == [
        {"field": "age", "contribution": 1.0},
        {"field": "tier", "contribution": -0.5},
    ]
    assert as_details({"why": "loyal", "weight": 2}) == [{"why": "loyal", "weight": 2}]
    assert as_details([{"a": 1}, "text"]) == [{"a": 1}, {"value": "text"}]
    assert as_details(0.4) == [{"value": 0.4}]
