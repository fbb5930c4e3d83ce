"""Sentences a marketer can act on, from the significant ranked features.

A feature becomes an insight when the model clearly uses it (permutation importance above twice
its spread over repeats), the data estimate is significant after a Benjamini-Hochberg correction
over the ranked features, its interval excludes "no effect", and model and data agree on the
direction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from mlworker.analysis.content.lifts import benjamini_hochberg
from mlworker.analysis.content.result import FeatureEffect, Insight

TARGET_LABELS = {"ctr": "CTR", "cvr": "CVR", "rpi": "revenue per impression"}
ALPHA = 0.05
MAX_INSIGHTS = 10
_MINUS = "\u2212"
_ATTRIBUTE_PHRASES = {
    "hasNumber": "with a number",
    "hasQuestion": "with a question mark",
    "hasExclamation": "with an exclamation mark",
    "personal": 'that address the reader ("you")',
    "hasEmoji": "with an emoji",
}


def percent_change(lift: float) -> str:
    """Format a lift as a signed percentage change, with a true minus sign.

    Examples
    --------
    >>> percent_change(1.4), percent_change(0.75), percent_change(1.0)
    ('+40%', '−25%', '+0%')
    """
    change = round((lift - 1) * 100)
    return f"{_MINUS}{-change}%" if change < 0 else f"+{change}%"


def plural_subject(field: str) -> str:
    """``"title"`` → ``"Titles"``, ``"body"`` → ``"Bodies"``, ``"cta"`` → ``"CTAs"``.

    Examples
    --------
    >>> [plural_subject(name) for name in ("title", "body", "cta", "subject_line", "preHeader")]
    ['Titles', 'Bodies', 'CTAs', 'Subject lines', 'Pre headers']
    """
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", field).replace("_", " ").replace("-", " ")
    words = " ".join(words.split()).lower() or "text"
    if len(words) <= 3 and words.isalpha():
        return words.upper() + "s"
    if re.search(r"[^aeiou]y$", words):
        words = words[:-1] + "ies"
    elif re.search(r"(s|x|z|ch|sh)$", words):
        words += "es"
    else:
        words += "s"
    return words[0].upper() + words[1:]


def _subject(effect: FeatureEffect) -> str:
    subject = plural_subject(effect.field)
    if effect.kind == "term":
        return f'{subject} with "{effect.label}"'
    if effect.label in _ATTRIBUTE_PHRASES:
        return f"{subject} {_ATTRIBUTE_PHRASES[effect.label]}"
    threshold = effect.threshold or 0.0
    if effect.label == "words":
        return f"{subject} longer than {threshold:g} words"
    if effect.label == "uppercaseShare":
        return f"{subject} with more than {threshold:.0%} capitals"
    return f"{subject} with high {effect.label}"


def insight_text(effect: FeatureEffect, target: str) -> str:
    """One sentence for a feature with a data lift.

    Examples
    --------
    >>> effect = FeatureEffect(
    ...     "title: free", "term", "title", "free", 0.1, 0.01, "+", 0.38,
    ...     1.4, 1.31, 1.5, 1e-9, 1234, 5000,
    ... )
    >>> insight_text(effect, "ctr")
    'Titles with "free" get +40% CTR (n=1,234 creatives, 95% CI +31% to +50%)'
    """
    lift = effect.lift if effect.lift is not None else 1.0
    low = effect.low if effect.low is not None else 0.0
    high = "+∞" if effect.high is None else percent_change(effect.high)
    numbers = f"(n={effect.creatives_with:,} creatives, 95% CI {percent_change(low)} to {high})"
    label = TARGET_LABELS[target]
    if effect.field == "channel" and effect.kind == "attribute":
        return (
            f"The {effect.label} channel gets {percent_change(lift)} {label} compared with "
            f"the other channels {numbers}"
        )
    return f"{_subject(effect)} get {percent_change(lift)} {label} {numbers}"


def _significant(effect: FeatureEffect, q_value: float) -> bool:
    if effect.lift is None or effect.low is None or effect.p_value is None:
        return False
    # The model must clearly need it: importance above twice its spread over permutations.
    if not q_value < ALPHA or effect.importance <= 2 * effect.importance_std:
        return False
    excludes_one = effect.low > 1 or (effect.high is not None and effect.high < 1)
    agrees = (effect.lift > 1) == (effect.direction == "+")
    return excludes_one and agrees


def build_insights(effects: Sequence[FeatureEffect], target: str) -> tuple[Insight, ...]:
    """Insights for the significant features among ``effects`` (ranked by importance).

    A bigram is left out when one of its words already makes an insight of the same field and
    direction (``"free shipping"`` adds little once ``"free"`` is reported).
    """
    p_values = np.array([np.nan if e.p_value is None else e.p_value for e in effects])
    adjusted = benjamini_hochberg(p_values)
    chosen = [e for e, q in zip(effects, adjusted, strict=True) if _significant(e, float(q))]
    words = {(e.field, e.direction, e.label) for e in chosen if e.kind == "term"}
    insights = []
    for effect in chosen:
        parts = effect.label.split()
        if effect.kind == "term" and len(parts) > 1:
            if any((effect.field, effect.direction, part) in words for part in parts):
                continue
        insights.append(
            Insight(
                text=insight_text(effect, target),
                feature=effect.feature,
                lift=float(effect.lift or 0.0),
                low=float(effect.low or 0.0),
                high=effect.high,
                p_value=float(effect.p_value or 0.0),
                n=effect.creatives_with,
            )
        )
        if len(insights) == MAX_INSIGHTS:
            break
    return tuple(insights)
