"""Turn results into strict JSON: no NaN, no infinity, no numpy scalars.

Job results are stored as JSON and served as JSON; ``NaN`` and ``Infinity`` are not JSON and
break most clients, so they become ``null`` here, once, for every job type.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd


def json_safe(value: Any) -> Any:
    """Return ``value`` converted to plain JSON types.

    Examples
    --------
    >>> json_safe({"a": float("nan"), "b": np.int64(3), "c": (1.5, float("inf")), "d": pd.NA})
    {'a': None, 'b': 3, 'c': [1.5, None], 'd': None}
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating | Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def canonical_hash(value: Any) -> str:
    """Return the SHA-256 of ``value``'s canonical JSON (sorted keys, no spaces).

    Examples
    --------
    >>> canonical_hash({"b": 1, "a": 2}) == canonical_hash({"a": 2, "b": 1})
    True
    """
    encoded = json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()
