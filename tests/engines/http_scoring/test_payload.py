from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from mlworker.engines.http_scoring.payload import candidate_instances, json_safe


def test_every_value_becomes_plain_json_and_missing_values_are_left_out() -> None:
    frame = pd.DataFrame(
        {
            "age": np.array([30, 41], dtype=np.int64),
            "offerId": ["o1", "o2"],
            "income": [np.nan, 52_000.5],
            "tier": ["gold", None],
            "vip": np.array([True, False]),
            "seen": [pd.Timestamp("2024-05-01"), pd.NaT],
            "customerId": ["c1", "c2"],
            "score": [np.inf, 0.25],
        }
    )
    instances = candidate_instances(frame)
    assert instances == [
        {
            "customerId": "c1",
            "offerId": "o1",
            "age": 30,
            "tier": "gold",
            "vip": True,
            "seen": "2024-05-01T00:00:00",
        },
        {
            "customerId": "c2",
            "offerId": "o2",
            "age": 41,
            "income": 52_000.5,
            "vip": False,
            "score": 0.25,
        },
    ]
    assert list(instances[0])[:2] == ["customerId", "offerId"]  # ids first
    assert type(instances[0]["age"]) is int and type(instances[0]["vip"]) is bool
    json.dumps(instances, allow_nan=False)


def test_fields_limit_what_is_sent_and_keep_a_fixed_schema() -> None:
    frame = pd.DataFrame({"customerId": ["c1"], "offerId": ["o1"], "ssn": ["123"], "age": [np.nan]})
    assert candidate_instances(frame, fields=["age", "tier"]) == [
        {"customerId": "c1", "offerId": "o1", "age": None, "tier": None}
    ]


def test_frames_without_ids_or_attributes() -> None:
    assert candidate_instances(pd.DataFrame({"x": [1, 2]})) == [{"x": 1}, {"x": 2}]
    ids_only = pd.DataFrame({"customerId": ["c"], "offerId": ["o"]})
    assert candidate_instances(ids_only) == [{"customerId": "c", "offerId": "o"}]
    assert candidate_instances(pd.DataFrame(index=range(2))) == [{}, {}]


def test_repeated_column_keeps_its_first_occurrence() -> None:
    frame = pd.DataFrame([["c1", 1, 2]], columns=["customerId", "x", "x"])
    assert candidate_instances(frame) == [{"customerId": "c1", "x": 1}]


def test_nested_and_unusual_values() -> None:
    assert json_safe({"tags": np.array(["a", "b"]), "n": np.nan}) == {"tags": ["a", "b"], "n": None}
    assert json_safe(dt.date(2024, 1, 2)) == "2024-01-02"
    assert json_safe(np.datetime64("NaT")) is None
    assert json_safe(pd.NA) is None
    assert json_safe(complex(1, 2)) == "(1+2j)"
