"""Dotted field paths for validation errors: the ``field`` a client sees in a problem body."""

from __future__ import annotations

from collections.abc import Sequence

_REQUEST_PARTS = frozenset({"body", "query", "path", "header", "cookie"})
_TYPE_LABELS = frozenset({"int", "float", "str", "bool", "none", "list", "dict", "tuple"})


def _is_label(part: str) -> bool:
    """Whether ``part`` is a label pydantic adds for a union member, not a field name.

    Tags and model names are capitalised (``TableDataset``); member types are lower-case type
    names, possibly parametrised (``int``, ``list[str]``, ``function-after[...]``). Field names
    in ML Worker's requests start with a lower-case letter and never contain brackets.
    """
    return part[:1].isupper() or "[" in part or part in _TYPE_LABELS


def field_path(location: Sequence[int | str], *, prefix: str = "") -> str:
    """Join a pydantic error location into a dotted path naming the offending field.

    Examples
    --------
    >>> field_path(("body", "dataset", "TableDataset", "filters", 0, "op"))
    'dataset.filters.0.op'
    >>> field_path(("seconds",), prefix="params")
    'params.seconds'
    >>> field_path(("body", "value", "list[union[str,int]]", 1))
    'value.1'
    """
    parts = [str(part) for part in location]
    if parts and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    kept = [part for part in parts if not _is_label(part)]
    return ".".join(part for part in (prefix, *kept) if part) or prefix or "body"
