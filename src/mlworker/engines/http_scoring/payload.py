"""Candidates as the JSON instances an endpoint receives.

Each candidate row becomes one object holding its attributes and the reserved ``customerId``
and ``offerId``. Values are converted to plain JSON: NumPy scalars to numbers, timestamps to
ISO 8601 strings, anything else unknown to its string form. Missing values (``NaN``, ``None``,
``NaT``) are left out, so an instance depends only on its own customer-offer pair and not on
which other offers were scored next to it, unless a fixed ``fields`` list is configured, in
which case every listed field is present and missing ones are ``null`` (endpoints with a fixed
input schema expect every key).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlworker.engines._base import RESERVED_COLUMNS

_MISSING = object()


def candidate_instances(
    frame: pd.DataFrame, *, fields: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """One JSON-safe instance per candidate row.

    Parameters
    ----------
    frame
        Candidates, one row per customer-offer pair.
    fields
        Attributes to send besides the ids (``None``: every column). Naming them keeps
        attributes the model does not need (and may not be allowed to see) in-house.

    Examples
    --------
    >>> frame = pd.DataFrame({"customerId": ["c1", "c2"], "offerId": ["o1", "o1"],
    ...                       "age": [30.0, np.nan], "tier": ["gold", None]})
    >>> candidate_instances(frame)
    [{'customerId': 'c1', 'offerId': 'o1', 'age': 30.0, 'tier': 'gold'}, \
{'customerId': 'c2', 'offerId': 'o1'}]
    >>> candidate_instances(frame, fields=["tier", "income"])[1]
    {'customerId': 'c2', 'offerId': 'o1', 'tier': None, 'income': None}
    """
    # A repeated column name would make one attribute ambiguous; its first occurrence wins.
    frame = frame.loc[:, ~frame.columns.duplicated()]
    ids = [c for c in RESERVED_COLUMNS if c in frame.columns]
    if fields is None:
        attributes = [c for c in frame.columns if c not in RESERVED_COLUMNS]
    else:
        attributes = [c for c in fields if c in frame.columns and c not in RESERVED_COLUMNS]
    names = [str(c) for c in (*ids, *attributes)]
    instances = [
        {name: value for name, value in zip(names, row, strict=True) if value is not _MISSING}
        for row in _converted_rows(frame, [*ids, *attributes])
    ]
    if fields is not None:
        for instance in instances:
            for name in fields:
                instance.setdefault(name, None)
    return instances


def json_safe(value: Any) -> Any:
    """Convert one attribute value to plain JSON; a missing value becomes ``None``.

    Examples
    --------
    >>> json_safe(np.int64(3)), json_safe(np.float32(0.5)), json_safe(np.bool_(True))
    (3, 0.5, True)
    >>> json_safe(pd.Timestamp("2024-05-01 12:00"))
    '2024-05-01T12:00:00'
    >>> json_safe(float("nan")), json_safe(pd.NaT), json_safe(float("inf"))
    (None, None, None)
    >>> json_safe({"tags": np.array(["a", "b"])})
    {'tags': ['a', 'b']}
    """
    converted = _convert(value)
    return None if converted is _MISSING else converted


def _convert(value: Any) -> Any:
    if value is None or value is pd.NaT or value is pd.NA:
        return _MISSING
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        # JSON has no NaN or infinity; an infinite attribute is as unusable as a missing one.
        return number if math.isfinite(number) else _MISSING
    if isinstance(value, str):
        return str(value)  # NumPy's str_ is a str, but not a plain one
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return _MISSING if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    return str(value)


def _converted_rows(frame: pd.DataFrame, columns: Sequence[Any]) -> list[tuple[Any, ...]]:
    if not columns:
        return [() for _ in range(len(frame))]
    # Column by column (``tolist`` yields Python scalars in one pass), then transposed to rows.
    converted = [[_convert(v) for v in frame[c].tolist()] for c in columns]
    return list(zip(*converted, strict=True))
