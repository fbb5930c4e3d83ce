"""Readable, unique segment names from what distinguishes each segment.

A name joins up to three strong differences (``|difference| >= 0.5``, a medium standardised
effect), largest first: ``"High income · Gold tier · Low age"``. Only over-represented levels
name a segment (a segment is not named for what it lacks). Names that collide are lengthened
with further differences, then numbered; a segment without a strong difference is
``"Typical <n>"``; DBSCAN noise is ``"Outliers"``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from mlworker.analysis.segmentation.columns import humanize
from mlworker.analysis.segmentation.features import MISSING_LEVEL, OTHER_LEVEL
from mlworker.analysis.segmentation.profiles import DistinguishingFeature, SegmentProfile

STRONG = 0.5
WEAK = 0.2
NAME_PARTS = 3
SEPARATOR = " · "
OUTLIERS = "Outliers"


def describe(difference: DistinguishingFeature) -> str | None:
    """One name part for a difference, or ``None`` when it cannot name a segment.

    Examples
    --------
    >>> describe(DistinguishingFeature("annual_income", "annual_income", None, 1.2, 9e4, 5e4))
    'High annual income'
    >>> describe(DistinguishingFeature("tier=gold", "tier", "gold", 0.9, 0.8, 0.25))
    'Gold tier'
    >>> describe(DistinguishingFeature("tier=gold", "tier", "gold", -0.9, 0.0, 0.25)) is None
    True
    """
    column = humanize(difference.column)
    if difference.level is None:
        return f"{'High' if difference.difference > 0 else 'Low'} {column}"
    if difference.difference <= 0:
        return None
    level = {MISSING_LEVEL: "Missing", OTHER_LEVEL: "Other"}.get(difference.level, difference.level)
    text = f"{level} {column}"
    return text[0].upper() + text[1:]


def name_segments(segments: Sequence[SegmentProfile]) -> dict[int, str]:
    """Name every segment (see the module docstring); ``segments`` largest first."""
    strong: dict[int, list[str]] = {}
    spare: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for segment in segments:
        if segment.cluster_id < 0:
            names[segment.cluster_id] = OUTLIERS
            continue
        candidates = [
            (abs(d.difference), text)
            for d in segment.differences
            if abs(d.difference) >= WEAK and (text := describe(d)) is not None
        ]
        chosen = [text for size, text in candidates if size >= STRONG][:NAME_PARTS]
        strong[segment.cluster_id] = chosen
        spare[segment.cluster_id] = [text for _, text in candidates if text not in chosen]
    _lengthen_duplicates(strong, spare)

    typical = 0
    taken: set[str] = set(names.values())
    for segment in segments:
        if segment.cluster_id < 0:
            continue
        parts = strong[segment.cluster_id]
        if not parts:
            typical += 1
            name = f"Typical {typical}"
        else:
            name = SEPARATOR.join(parts)
        base, number = name, 1
        while name in taken:
            number += 1
            name = f"{base} ({number})"
        taken.add(name)
        names[segment.cluster_id] = name
    return names


def _lengthen_duplicates(strong: dict[int, list[str]], spare: dict[int, list[str]]) -> None:
    """Add further differences to colliding names while that can still tell them apart."""
    while True:
        groups: dict[str, list[int]] = defaultdict(list)
        for segment, parts in strong.items():
            if parts:
                groups[SEPARATOR.join(parts)].append(segment)
        grew = False
        for members in groups.values():
            if len(members) < 2:
                continue
            for segment in members:
                if spare[segment]:
                    strong[segment].append(spare[segment].pop(0))
                    grew = True
        if not grew:
            return
