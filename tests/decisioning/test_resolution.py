"""Model resolution hierarchy and the degraded fallbacks."""

from __future__ import annotations

import pytest

from mlworker.decisioning import ResolutionConfig, resolve_model, score_with_fallback

SEED_CONFIG = {
    "defaultModel": "model_bayesian_v3",
    "overrides": [
        {"scope": "offer", "key": "offer_premium_cc", "modelKey": "model_premium_scorecard"},
        {"scope": "category", "key": "cat_loans", "modelKey": "model_loan_gb"},
        {"scope": "channel", "key": "chan_email", "modelKey": "model_email_bayesian"},
    ],
}


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (
            {"offer_id": "offer_premium_cc", "category": "cat_loans", "channel": "chan_email"},
            ("model_premium_scorecard", "offer"),
        ),
        (
            {"offer_id": "o1", "category": "cat_loans", "channel": "chan_email"},
            ("model_loan_gb", "category"),
        ),
        (
            {"offer_id": "o2", "category": "cat_cards", "channel": "chan_email"},
            (
                "model_email_bayesian",
                "channel",
            ),
        ),
        (
            {"offer_id": "o3", "category": None, "channel": "chan_sms"},
            (
                "model_bayesian_v3",
                "default",
            ),
        ),
    ],
)
def test_first_match_wins_per_candidate(candidate: dict, expected: tuple) -> None:
    config = ResolutionConfig.from_dict(SEED_CONFIG)
    assert resolve_model(config, **candidate) == expected


def test_list_order_does_not_beat_specificity_and_no_default_means_none() -> None:
    reordered = dict(SEED_CONFIG, overrides=list(reversed(SEED_CONFIG["overrides"])))
    config = ResolutionConfig.from_dict(reordered)
    assert resolve_model(
        config, offer_id="offer_premium_cc", category="cat_loans", channel="chan_email"
    ) == ("model_premium_scorecard", "offer")
    bare = ResolutionConfig.from_dict({"overrides": []})
    assert resolve_model(bare, offer_id="o") == (None, "none")
    with pytest.raises(ValueError, match="scope"):
        ResolutionConfig.from_dict(
            {"overrides": [{"scope": "region", "key": "eu", "modelKey": "m"}]}
        )


def test_fallback_chain_says_it_degraded() -> None:
    served = score_with_fallback(model_key="m", model_score=0.42, priority=70)
    assert (served.score, served.source, served.degraded) == (0.42, "model", False)
    precomputed = score_with_fallback(
        model_key="m",
        model_score=None,
        unavailable_reason="circuit breaker open",
        precomputed=0.33,
        priority=70,
    )
    assert (precomputed.source, precomputed.score, precomputed.degraded) == (
        "precomputed",
        0.33,
        True,
    )
    assert precomputed.reason == "circuit breaker open"
    priority = score_with_fallback(model_key=None, model_score=None, priority=70)
    assert (priority.source, priority.score, priority.reason) == (
        "priority",
        0.7,
        "no model applies",
    )
