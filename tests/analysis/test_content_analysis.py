from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlworker.analysis.content import ContentConfig, ContentResult, analyze_content
from mlworker.errors import InvalidInput, NotEnoughData, UnknownColumn

FREE_LIFT, URGENT_LIFT = 1.8, 0.6


def planted(
    creatives: int,
    *,
    seed: int = 0,
    channels: tuple[str, ...] = ("email", "push", "social"),
    base_rates: tuple[float, ...] = (0.03, 0.02, 0.04),
) -> pd.DataFrame:
    """Creatives whose CTR is the channel's base × 1.8 with "free" × 0.6 with "urgent"."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(200)])
    weights = 1 / np.arange(1, 201) ** 0.9
    weights /= weights.sum()
    channel = rng.integers(len(channels), size=creatives)
    free = rng.random(creatives) < 0.25
    urgent = rng.random(creatives) < 0.25
    titles = []
    for has_free, has_urgent in zip(free, urgent, strict=True):
        words = list(rng.choice(vocabulary, rng.integers(3, 8), p=weights))
        for word, present in (("free", has_free), ("urgent", has_urgent)):
            if present:
                words.insert(int(rng.integers(0, len(words) + 1)), word)
        titles.append(" ".join(words).capitalize())
    bodies = [" ".join(rng.choice(vocabulary, rng.integers(6, 15), p=weights)) for _ in titles]
    rate = (
        np.asarray(base_rates)[channel]
        * np.where(free, FREE_LIFT, 1.0)
        * np.where(urgent, URGENT_LIFT, 1.0)
        * rng.lognormal(0.0, 0.1, creatives)
    )
    impressions = np.round(rng.lognormal(7.0, 0.8, creatives)).astype(int) + 100
    clicks = rng.binomial(impressions, rate)
    conversions = rng.binomial(clicks, 0.1)
    return pd.DataFrame(
        {
            "creative_id": [f"c{i}" for i in range(creatives)],
            "channel": np.asarray(channels)[channel],
            "title": titles,
            "body": bodies,
            "impressions": impressions,
            "clicks": clicks,
            "conversions": conversions,
            "revenue": conversions * rng.gamma(2.0, 10.0, creatives),
        }
    )


@pytest.fixture(scope="module")
def result() -> ContentResult:
    return analyze_content(planted(2000), ContentConfig())


def _rank(answer: dict[str, Any], feature: str) -> tuple[int, dict[str, Any]]:
    for position, entry in enumerate(answer["featureImportance"]):
        if entry["feature"] == feature:
            return position, entry
    raise AssertionError(
        f"{feature} not ranked: {[e['feature'] for e in answer['featureImportance']]}"
    )


def test_planted_words_rank_high_with_their_signs(result: ContentResult) -> None:
    answer = result.to_dict()
    free_rank, free = _rank(answer, "title: free")
    urgent_rank, urgent = _rank(answer, "title: urgent")
    assert free_rank < 3 and free["direction"] == "+" and free["effect"] > 0.2
    assert urgent_rank < 5 and urgent["direction"] == "-" and urgent["effect"] < -0.1
    assert free["kind"] == "term" and free["field"] == "title" and free["term"] == "free"
    assert free["creativesWith"] + free["creativesWithout"] == answer["modelledCount"]
    noise = [e for e in answer["featureImportance"] if e["feature"].startswith("body: ")]
    assert all(e["importance"] < 0.1 * free["importance"] for e in noise)


def test_insights_state_the_planted_lifts(result: ContentResult) -> None:
    insights = {insight["feature"]: insight for insight in result.to_dict()["insights"]}
    free = insights["title: free"]
    assert free["low"] < FREE_LIFT < free["high"] and free["high"] - free["low"] < 0.3
    assert free["text"].startswith('Titles with "free" get +')
    assert "95% CI" in free["text"] and f"n={free['n']:,} creatives" in free["text"]
    urgent = insights["title: urgent"]
    assert urgent["low"] < URGENT_LIFT < urgent["high"]
    assert urgent["text"].startswith('Titles with "urgent" get −')
    assert set(free) == {"text", "feature", "lift", "low", "high", "pValue", "n"}


def test_answer_is_plain_json_with_the_documented_keys(result: ContentResult) -> None:
    answer = result.to_dict()
    json.dumps(answer, allow_nan=False)
    assert {
        "creativeCount",
        "modelledCount",
        "excluded",
        "target",
        "baseline",
        "model",
        "featureImportance",
        "insights",
        "creatives",
        "creativesTruncated",
        "notes",
    } <= set(answer)
    assert {"r2Holdout", "r2OutOfBag", "trees", "maxDepth", "features", "terms"} <= set(
        answer["model"]
    )
    assert {
        "feature",
        "kind",
        "field",
        "importance",
        "importanceStd",
        "direction",
        "effect",
        "lift",
        "low",
        "high",
        "pValue",
        "creativesWith",
    } <= set(answer["featureImportance"][0])
    assert set(answer["creatives"][0]) >= {
        "id",
        "channel",
        "impressions",
        "clicks",
        "conversions",
        "revenue",
        "ctr",
        "cvr",
        "rpi",
        "shrunkRate",
        "vsPeers",
        "trend",
    }
    assert len(answer["featureImportance"]) <= 20
    assert answer["target"] == "ctr" and "belowMinImpressions" in answer["excluded"]


def test_model_is_bounded_and_predicts_held_out_creatives(result: ContentResult) -> None:
    model = result.to_dict()["model"]
    assert 100 <= model["trees"] <= 200 and model["maxDepth"] <= 12
    assert model["minSamplesLeaf"] >= 5
    assert model["r2Holdout"] > 0.5 and model["r2OutOfBag"] > 0.5
    assert 0 < model["terms"] <= model["features"] <= 2100


def test_creatives_are_the_largest_and_per_creative_has_all(result: ContentResult) -> None:
    answer = result.to_dict()
    assert answer["creativeCount"] == 2000 and len(result.per_creative) == 2000
    assert answer["creativesTruncated"] and len(answer["creatives"]) == 1000
    shown = [creative["impressions"] for creative in answer["creatives"]]
    assert shown == sorted(shown, reverse=True)
    assert shown[-1] >= result.per_creative["impressions"].median()
    email = result.per_creative[result.per_creative["channel"] == "email"]
    mean = email["clicks"].sum() / email["impressions"].sum()
    np.testing.assert_allclose(email["vsPeers"], email["shrunkRate"] / mean)


def test_baseline_reflects_the_planted_channel_rates(result: ContentResult) -> None:
    channels = {row["channel"]: row for row in result.to_dict()["baseline"]["channels"]}
    assert channels["push"]["ctr"]["rate"] < channels["email"]["ctr"]["rate"]
    assert channels["email"]["ctr"]["rate"] < channels["social"]["ctr"]["rate"]
    assert all(row["priorSource"] == "channel" for row in channels.values())


def test_runs_are_deterministic_and_dtypes_do_not_matter() -> None:
    frame = planted(400, seed=1)
    config = ContentConfig(top_terms=10)
    first = analyze_content(frame, config).to_dict()
    assert analyze_content(frame, config).to_dict() == first
    loaded = frame.astype({"creative_id": "category", "channel": "category", "title": "category"})
    loaded["body"] = loaded["body"].astype("string")
    loaded["impressions"] = loaded["impressions"].astype(str)
    assert analyze_content(loaded, config).to_dict() == first


def test_progress_fractions_increase_to_one() -> None:
    seen: list[float] = []
    analyze_content(planted(200, seed=2), ContentConfig(), progress=lambda f, _: seen.append(f))
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) >= 5


def test_small_creatives_are_reported_but_not_modelled() -> None:
    frame = planted(200, seed=3)
    frame.loc[:9, "impressions"] = 3
    frame.loc[:9, "clicks"] = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    result = analyze_content(frame, ContentConfig())
    answer = result.to_dict()
    assert answer["excluded"]["belowMinImpressions"] == 10
    assert answer["modelledCount"] == 190
    tiny = result.per_creative.iloc[:10]
    assert not tiny["modelled"].any() and tiny["shrunkRate"].notna().all()
    assert (tiny["shrunkRate"] < 0.2).all()  # pulled from CTRs up to 100 % toward ~3 %


def test_single_channel_works() -> None:
    frame = planted(300, seed=4, channels=("email",), base_rates=(0.03,))
    answer = analyze_content(frame, ContentConfig()).to_dict()
    assert not any(e["feature"].startswith("channel") for e in answer["featureImportance"])
    assert _rank(answer, "title: free")[0] < 3
    assert len(answer["baseline"]["channels"]) == 1


def test_empty_texts_fall_back_to_attributes_with_a_note() -> None:
    frame = planted(200, seed=5)
    frame["title"] = ""
    frame["body"] = None
    answer = analyze_content(frame, ContentConfig(text_fields=["title", "body"])).to_dict()
    assert any("structured attributes only" in note for note in answer["notes"])
    assert answer["model"]["terms"] == 0
    assert all(e["kind"] == "attribute" for e in answer["featureImportance"])


def test_replacement_characters_and_surrogates_work() -> None:
    frame = planted(200, seed=6)
    titles = frame["title"].str.replace("w1", "w\ufffd1", regex=False).tolist()
    # A lone surrogate, as a lossy upstream decode can leave (pandas' own strings reject it).
    titles = [f"caf\udce9 {title}" if i % 7 == 0 else title for i, title in enumerate(titles)]
    frame["title"] = pd.Series(titles, dtype=object)
    frame["body"] = frame["body"].astype(object)
    frame.loc[::5, "body"] = b"\xff\xfe gift"
    answer = analyze_content(frame, ContentConfig()).to_dict()
    json.dumps(answer, allow_nan=False).encode("utf-8")
    assert answer["modelledCount"] == 200


def test_trend_follows_a_planted_change_over_days() -> None:
    rows = []
    for creative, (rate_before, rate_after) in enumerate([(0.02, 0.04), (0.05, 0.025)] * 15):
        for day in range(6):
            rate = rate_before if day < 3 else rate_after
            rows.append((f"c{creative}", f"2026-03-0{day + 1}", 10_000, int(10_000 * rate)))
    frame = pd.DataFrame(rows, columns=["id", "date", "impressions", "clicks"])
    frame["title"] = "Hello there"
    result = analyze_content(frame, ContentConfig())
    trends = result.per_creative["trend"].to_numpy()
    np.testing.assert_allclose(trends[::2], 1.0)
    np.testing.assert_allclose(trends[1::2], -0.5)
    assert (result.per_creative["days"] == 6).all()


@pytest.mark.parametrize("target", ["cvr", "rpi"])
def test_other_targets(target: str) -> None:
    answer = analyze_content(planted(300, seed=7), ContentConfig(target=target)).to_dict()  # type: ignore[arg-type]
    assert answer["target"] == target
    first = answer["creatives"][0]
    column = "conversions" if target == "cvr" else "revenue"
    denominator = first["clicks"] if target == "cvr" else first["impressions"]
    assert first[target] == pytest.approx(first[column] / denominator)


@pytest.mark.parametrize(
    ("change", "config", "error", "field"),
    [
        ({}, {"clicksColumn": "taps"}, UnknownColumn, "config.clicksColumn"),
        ({}, {"textFields": ["headline"]}, UnknownColumn, "config.textFields.0"),
        ({"drop": "conversions"}, {"target": "cvr"}, UnknownColumn, "config.conversionsColumn"),
        ({"impressions": 0, "clicks": 0}, {}, NotEnoughData, "config.minImpressions"),
        ({"impressions": 50, "clicks": 1}, {}, NotEnoughData, "config.minImpressions"),
        ({"clicks": 10_000_000}, {}, InvalidInput, "config.clicksColumn"),
        ({"impressions": -1}, {}, InvalidInput, "config.impressionsColumn"),
    ],
)
def test_bad_input(
    change: dict[str, Any], config: dict[str, Any], error: type[Exception], field: str
) -> None:
    frame = planted(50, seed=8)
    for column, value in change.items():
        if column == "drop":
            frame = frame.drop(columns=value)
        else:
            frame[column] = value
    with pytest.raises(error) as caught:
        analyze_content(frame, ContentConfig.model_validate(config))
    assert getattr(caught.value, "field", None) == field
