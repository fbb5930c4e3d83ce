"""Dot-path extraction of scores and explanations from an endpoint's JSON response.

A path names a value inside nested objects and arrays: keys separated by dots, array positions
in brackets or as bare digits (``predictions[0].score``, ``data.items.2.p``). A bare digit
segment indexes an array and looks up a key in an object, so ``"2"`` works for both
``[..., ..., x]`` and ``{"2": x}``. Keys that contain dots or brackets cannot be named. The
empty path names the whole response (an endpoint that answers with a bare array or number).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

PathSegment = str | int

_SEGMENT = re.compile(r"(?P<key>[^.\[\]]*)(?P<indices>(?:\[-?\d+\])*)")
_INDEX = re.compile(r"\[(-?\d+)\]")


class ResponseMappingError(ValueError):
    """The response has no value at a configured path, or the value is not a valid score."""


def parse_path(path: str) -> tuple[PathSegment, ...]:
    """Split a dot path into keys (``str``) and bracketed array indices (``int``).

    Raises
    ------
    ValueError
        The path has an empty segment (``a..b``) or a malformed index (``a[x]``).

    Examples
    --------
    >>> parse_path("predictions[0].score")
    ('predictions', 0, 'score')
    >>> parse_path("data.items.2.p")
    ('data', 'items', '2', 'p')
    >>> parse_path("")
    ()
    """
    if path == "":
        return ()
    segments: list[PathSegment] = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None or (not match["key"] and not match["indices"]):
            raise ValueError(f"invalid path {path!r}: bad segment {part!r}")
        if match["key"]:
            segments.append(match["key"])
        segments.extend(int(index) for index in _INDEX.findall(match["indices"]))
    return tuple(segments)


def extract(document: Any, path: Sequence[PathSegment]) -> Any:
    """Return the value at ``path`` (from :func:`parse_path`) in a decoded JSON document.

    Raises
    ------
    ResponseMappingError
        A key is absent, an index is out of range, or a segment meets a scalar.

    Examples
    --------
    >>> extract({"data": {"items": [0, 1, {"p": 0.3}]}}, parse_path("data.items.2.p"))
    0.3
    >>> extract([[0.9, 0.1]], parse_path("[0][1]"))
    0.1
    """
    current = document
    for depth, segment in enumerate(path):
        where = _render(path[: depth + 1])
        if isinstance(current, Mapping) and not isinstance(segment, int):
            if segment not in current:
                raise ResponseMappingError(f"response has no {where!r}")
            current = current[segment]
        elif isinstance(current, list) and (isinstance(segment, int) or segment.isdigit()):
            index = int(segment)
            if not -len(current) <= index < len(current):
                raise ResponseMappingError(
                    f"response {where!r} is out of range (array of {len(current)})"
                )
            current = current[index]
        else:
            raise ResponseMappingError(
                f"response has no {where!r}: found {_json_type(current)} at that level"
            )
    return current


def as_probability(value: Any, *, where: str) -> float:
    """``value`` as a float if it is a JSON number in ``[0, 1]``.

    Out-of-range values are refused, not clipped: a model that answers 1.7 is misconfigured or
    answering in another unit (a percentage, a logit), and its scores cannot be trusted.

    Raises
    ------
    ResponseMappingError
        ``value`` is not a finite number in ``[0, 1]`` (booleans and numeric strings included).

    Examples
    --------
    >>> as_probability(1, where="score")
    1.0
    >>> try:
    ...     as_probability(1.7, where="score")
    ... except ResponseMappingError as error:
    ...     print(error)
    score 1.7 is outside [0, 1]
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResponseMappingError(f"{where} is {_json_type(value)}, not a number")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ResponseMappingError(f"{where} {value!r} is outside [0, 1]")
    return number


def batch_scores(
    response: Any, scores_path: Sequence[PathSegment], item_path: Sequence[PathSegment], n: int
) -> list[float]:
    """Read the ``n`` scores of a batch response, in request order.

    The value at ``scores_path`` must be an array of ``n`` items; an item that is a number is
    the score, an item that is an object or array holds it at ``item_path`` (so
    ``{"predictions": [{"score": 0.2}, ...]}`` maps with ``scores_path=("predictions",)`` and
    ``item_path=("score",)``).

    Raises
    ------
    ResponseMappingError
        Not an array, the wrong number of items, or an item without a valid score.

    Examples
    --------
    >>> batch_scores({"scores": [0.1, 0.9]}, ("scores",), ("score",), 2)
    [0.1, 0.9]
    >>> batch_scores({"p": [{"score": 0.4}]}, ("p",), ("score",), 1)
    [0.4]
    """
    where = _render(scores_path) or "response"
    items = extract(response, scores_path)
    if not isinstance(items, list):
        raise ResponseMappingError(f"{where!r} is {_json_type(items)}, not an array of scores")
    if len(items) != n:
        raise ResponseMappingError(f"{where!r} has {len(items)} scores for {n} instances")
    scores = []
    for position, item in enumerate(items):
        item_where = f"{where}[{position}]"
        if isinstance(item, Mapping | list):
            item = extract(item, item_path)
            item_where = f"{item_where}.{_render(item_path)}"
        scores.append(as_probability(item, where=item_where))
    return scores


def as_details(value: Any) -> list[dict[str, Any]]:
    """Shape an explanation value from the response as ``Explanation.details``.

    An array of objects is taken as is; an object of numbers becomes one
    ``{"field", "contribution"}`` entry per key (the shape of the built-in engines); anything
    else is wrapped as ``{"value": ...}``.

    Examples
    --------
    >>> as_details({"income": 0.25, "tier": -0.1})
    [{'field': 'income', 'contribution': 0.25}, {'field': 'tier', 'contribution': -0.1}]
    >>> as_details([{"reason": "loyal"}])
    [{'reason': 'loyal'}]
    >>> as_details("high value")
    [{'value': 'high value'}]
    """
    if value is None:
        return []
    if isinstance(value, Mapping):
        if value and all(_is_number(v) for v in value.values()):
            return [{"field": str(k), "contribution": float(v)} for k, v in value.items()]
        return [dict(value)]
    if isinstance(value, list):
        return [dict(item) if isinstance(item, Mapping) else {"value": item} for item in value]
    return [{"value": value}]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _render(path: Sequence[PathSegment]) -> str:
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return text.removeprefix(".")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "a number" if _is_number(value) else type(value).__name__
