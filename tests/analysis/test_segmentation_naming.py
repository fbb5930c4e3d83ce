from __future__ import annotations

from mlworker.analysis.segmentation.naming import name_segments
from mlworker.analysis.segmentation.profiles import DistinguishingFeature, SegmentProfile


def _numeric(column: str, difference: float) -> DistinguishingFeature:
    return DistinguishingFeature(column, column, None, difference, 0.0, 0.0)


def _level(column: str, level: str, difference: float) -> DistinguishingFeature:
    return DistinguishingFeature(f"{column}={level}", column, level, difference, 0.0, 0.0)


def _segment(cluster_id: int, *differences: DistinguishingFeature) -> SegmentProfile:
    ranked = sorted(differences, key=lambda d: -abs(d.difference))
    return SegmentProfile(cluster_id, 10, 0.1, {}, {}, tuple(ranked))


def test_names_from_top_differences() -> None:
    names = name_segments(
        [
            _segment(
                0,
                _numeric("annualIncome", 1.4),
                _level("tier", "Gold", 1.1),
                _numeric("age", -0.8),
                _numeric("tenure_days", 0.6),
                _level("tier", "Bronze", -1.5),
            ),
            _segment(1, _numeric("age", 0.1)),
            _segment(-1, _numeric("age", 3.0)),
        ]
    )
    assert names[0] == "High annual income · Gold tier · Low age"
    assert names[1] == "Typical 1"
    assert names[-1] == "Outliers"


def test_colliding_names_are_lengthened_then_numbered() -> None:
    names = name_segments(
        [
            _segment(0, _numeric("income", 1.0), _numeric("age", 0.3)),
            _segment(1, _numeric("income", 0.9), _numeric("age", -0.3)),
            _segment(2, _numeric("income", 0.8)),
            _segment(3, _numeric("income", 0.7)),
            _segment(4),
            _segment(5),
        ]
    )
    assert names[0] == "High income · High age"
    assert names[1] == "High income · Low age"
    assert names[2] == "High income" and names[3] == "High income (2)"
    assert names[4] == "Typical 1" and names[5] == "Typical 2"
    assert len(set(names.values())) == len(names)
