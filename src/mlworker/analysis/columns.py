"""Finding a role's column by its common names, shared by the analyses that auto-detect."""

from __future__ import annotations

import re
from collections.abc import Iterable


def normalized_name(name: object) -> str:
    """Reduce a column name to lower-case letters and digits, for matching common names.

    Examples
    --------
    >>> normalized_name("Creative_ID"), normalized_name("customer-id")
    ('creativeid', 'customerid')
    """
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def by_normalized_name(columns: Iterable[str]) -> dict[str, str]:
    """Map each normalized name to the first column that has it.

    Examples
    --------
    >>> by_normalized_name(["Customer_ID", "customerid", "Time"])
    {'customerid': 'Customer_ID', 'time': 'Time'}
    """
    found: dict[str, str] = {}
    for column in columns:
        found.setdefault(normalized_name(column), column)
    return found
