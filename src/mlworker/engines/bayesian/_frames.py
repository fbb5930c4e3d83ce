"""Reading candidate frames: columns that may be absent or duplicated, values as JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def first_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Return the column ``name``, the first of them if the name is duplicated."""
    column = frame[name]
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def column_or_none(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """Return the column ``name``, or ``None`` when the frame lacks it (all missing)."""
    return first_column(frame, name) if name in frame.columns else None


def json_value(value: Any) -> Any:
    """Convert a feature value to plain JSON (missing and non-finite numbers to ``None``)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return str(value)
