from __future__ import annotations

from dataclasses import replace

from mlworker.analysis.content.insights import build_insights, insight_text
from mlworker.analysis.content.result import FeatureEffect

FREE = FeatureEffect(
    feature="title: free",
    kind="term",
    field="title",
    label="free",
    importance=0.3,
    importance_std=0.01,
    direction="+",
    effect=0.5,
    lift=1.4,
    low=1.31,
    high=1.5,
    p_value=1e-12,
    creatives_with=1234,
    creatives_without=5000,
)


def test_positive_and_negative_sentences() -> None:
    assert insight_text(FREE, "ctr") == (
        'Titles with "free" get +40% CTR (n=1,234 creatives, 95% CI +31% to +50%)'
    )
    urgent = replace(
        FREE, feature="subject: urgent", field="subject", label="urgent", direction="-",
        lift=0.75, low=0.7, high=0.81, creatives_with=87,
    )  # fmt: skip
    assert insight_text(urgent, "cvr") == (
        'Subjects with "urgent" get −25% CVR (n=87 creatives, 95% CI −30% to −19%)'
    )


def test_attribute_and_channel_sentences() -> None:
    question = replace(
        FREE, kind="attribute", label="hasQuestion", feature="title [has question mark]"
    )
    assert insight_text(question, "rpi").startswith(
        "Titles with a question mark get +40% revenue per impression (n=1,234"
    )
    longer = replace(
        FREE, kind="attribute", label="words", threshold=8.0, lift=0.9, low=0.85, high=0.95
    )
    assert insight_text(longer, "ctr").startswith("Titles longer than 8 words get −10% CTR")
    channel = replace(FREE, kind="attribute", field="channel", label="push")
    assert insight_text(channel, "ctr").startswith(
        "The push channel gets +40% CTR compared with the other channels"
    )


def test_only_significant_agreeing_clearly_used_features_become_insights() -> None:
    effects = [
        FREE,
        replace(FREE, feature="title: maybe", label="maybe", p_value=0.2, low=0.9),
        replace(FREE, feature="title: disagree", label="disagree", direction="-"),
        replace(FREE, feature="title: noisy", label="noisy", importance=0.01, importance_std=0.01),
        replace(FREE, feature="title: missing", label="missing", lift=None, low=None, p_value=None),
        replace(
            FREE, feature="title: new", label="new", lift=0.8, low=0.7, high=0.9, direction="-"
        ),
    ]
    insights = build_insights(effects, "ctr")
    assert [insight.feature for insight in insights] == ["title: free", "title: new"]
    first = insights[0]
    assert (first.lift, first.low, first.high, first.p_value, first.n) == (
        1.4,
        1.31,
        1.5,
        1e-12,
        1234,
    )
    assert first.to_dict()["pValue"] == 1e-12


def test_bigrams_repeating_a_reported_word_are_left_out() -> None:
    bigram = replace(FREE, feature="title: free shipping", label="free shipping")
    other_field = replace(FREE, feature="body: free shipping", field="body", label="free shipping")
    insights = build_insights([bigram, FREE, other_field], "ctr")
    assert [insight.feature for insight in insights] == ["title: free", "body: free shipping"]
