"""``analyze_content``: from a creative table to ranked drivers, insights and shrunk rates."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlworker.analysis.content.aggregate import Creatives, aggregate_creatives
from mlworker.analysis.content.columns import ContentColumns, resolve_columns
from mlworker.analysis.content.config import ContentConfig
from mlworker.analysis.content.features import FeatureSet, build_features, clean_texts
from mlworker.analysis.content.importance import (
    ForestFit,
    contrast_values,
    fit_forest,
    permutation_importance,
    signed_effects,
)
from mlworker.analysis.content.insights import build_insights
from mlworker.analysis.content.lifts import presence_lift
from mlworker.analysis.content.rates import RATE_PARTS, Shrinkage, baseline, creative_rates
from mlworker.analysis.content.result import (
    CREATIVE_COLUMNS,
    ContentResult,
    FeatureEffect,
    creative_records,
)
from mlworker.analysis.statistics import Progress, no_progress
from mlworker.errors import NotEnoughData, UnknownColumn

FloatArray = npt.NDArray[np.float64]

#: Fewer modelled creatives than this: rates and baseline only, no model.
MIN_MODELLED = 20
#: Terms (by impurity importance) permuted besides every attribute.
PERMUTED_TERMS = 100
PERMUTATION_REPEATS = 5
#: Held-out rows used for permutation importance and signed effects (seeded subsets).
MAX_PERMUTATION_ROWS = 20_000
MAX_EFFECT_ROWS = 2_000


def _check_target_columns(columns: ContentColumns, target: str) -> None:
    if target == "cvr" and columns.conversions is None:
        raise UnknownColumn(
            "target 'cvr' needs a conversions column; name it with config.conversionsColumn",
            field="config.conversionsColumn",
        )
    if target == "rpi" and columns.revenue is None:
        raise UnknownColumn(
            "target 'rpi' needs a revenue column; name it with config.revenueColumn",
            field="config.revenueColumn",
        )


def _check_exposure(rates: pd.DataFrame, config: ContentConfig) -> npt.NDArray[np.bool_]:
    impressions = rates["impressions"].to_numpy(dtype=np.float64)
    if impressions.sum() <= 0:
        raise NotEnoughData(
            "no creative has any impressions; check the impressions column",
            field="config.minImpressions",
        )
    modelled = (impressions >= config.min_impressions) & (impressions > 0)
    if not modelled.any():
        raise NotEnoughData(
            f"no creative reaches minImpressions={config.min_impressions} (the largest has "
            f"{impressions.max():g}); lower config.minImpressions",
            field="config.minImpressions",
        )
    if config.target == "cvr" and rates.loc[modelled, "clicks"].sum() <= 0:
        raise NotEnoughData(
            "the modelled creatives have no clicks, so no conversion rate; use target 'ctr'",
            field="config.target",
        )
    return np.asarray(modelled, dtype=bool)


def _sample(rows: int, limit: int, random_state: int) -> npt.NDArray[np.intp]:
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(random_state).choice(rows, limit, replace=False))


def _candidates(forest: ForestFit, features: FeatureSet) -> list[int]:
    """Pick the most promising terms by impurity importance, and every attribute."""
    impurity = np.asarray(forest.model.feature_importances_, dtype=np.float64)
    kinds = np.array(features.kinds)
    terms = np.flatnonzero((kinds == "term") & (impurity > 0))
    best_terms = terms[np.argsort(-impurity[terms], kind="stable")[:PERMUTED_TERMS]]
    attributes = np.flatnonzero(kinds == "attribute")
    return sorted(int(column) for column in np.concatenate([best_terms, attributes]))


def _effects(
    forest: ForestFit,
    features: FeatureSet,
    modelled: pd.DataFrame,
    config: ContentConfig,
) -> tuple[FeatureEffect, ...]:
    matrix = features.matrix
    seed = config.random_state
    holdout = forest.holdout[_sample(forest.holdout.size, MAX_PERMUTATION_ROWS, seed + 1)]
    target = modelled["shrunkRate"].to_numpy(dtype=np.float64)
    weights = _weights(modelled, config.target)
    columns = _candidates(forest, features)
    mean, std = permutation_importance(
        forest.model,
        matrix[holdout],
        target[holdout],
        weights[holdout],
        columns,
        n_repeats=PERMUTATION_REPEATS,
        seed=seed,
    )
    order = np.argsort(-mean, kind="stable")
    ranked = [position for position in order if mean[position] > 0][: config.top_terms]
    chosen = [columns[position] for position in ranked]
    if not chosen:
        return ()
    low, high = contrast_values(matrix[forest.train], chosen, features.binary)
    sample = forest.holdout[_sample(forest.holdout.size, MAX_EFFECT_ROWS, seed + 2)]
    difference, relative = signed_effects(forest.model, matrix[sample], chosen, low, high)
    top, bottom = RATE_PARTS[config.target]
    successes = modelled[top].to_numpy(dtype=np.float64)
    trials = modelled[bottom].to_numpy(dtype=np.float64)
    expected = trials * modelled["channelRate"].to_numpy(dtype=np.float64)
    by_column = matrix.tocsc()
    effects = []
    for index, (position, column) in enumerate(zip(ranked, chosen, strict=True)):
        values = by_column[:, column].toarray().ravel()
        threshold = None
        if features.binary[column]:
            present = values > 0
        else:
            threshold = float(np.median(values))
            present = values > threshold
        is_channel = features.fields[column] == "channel" and features.kinds[column] != "term"
        lift = presence_lift(present, successes, trials if is_channel else expected)
        direction_value = difference[index]
        if direction_value == 0 and lift.lift is not None:
            direction_value = lift.lift - 1
        effects.append(
            FeatureEffect(
                feature=features.names[column],
                kind=features.kinds[column],
                field=features.fields[column],
                label=features.labels[column],
                importance=float(mean[position]),
                importance_std=float(std[position]),
                direction="+" if direction_value >= 0 else "-",
                effect=float(relative[index]) if np.isfinite(relative[index]) else None,
                lift=lift.lift,
                low=lift.low,
                high=lift.high,
                p_value=lift.p_value,
                creatives_with=lift.with_count,
                creatives_without=lift.without_count,
                threshold=threshold,
            )
        )
    return tuple(effects)


def _weights(rows: pd.DataFrame, target: str) -> FloatArray:
    """Weight each creative by the square root of its target's trials.

    Creatives with more exposure have less noisy shrunk rates, but a few giants must not decide
    the forest alone.
    """
    trials = rows[RATE_PARTS[target][1]].to_numpy(dtype=np.float64)
    return np.asarray(np.sqrt(np.maximum(trials, 1.0)), dtype=np.float64)


def _prior_notes(shrinkage: Shrinkage) -> list[str]:
    notes = []
    pooled = [name for name, (_, source) in shrinkage.strengths.items() if source == "pooled"]
    fallback = [name for name, (_, source) in shrinkage.strengths.items() if source == "fallback"]
    if pooled:
        notes.append(
            "Too few creatives (or no extra variation) to estimate the prior strength of "
            f"channel(s) {', '.join(pooled[:10])}: the estimate pooled over channels is used."
        )
    if fallback:
        notes.append(
            "No variation beyond sampling noise could be estimated for channel(s) "
            f"{', '.join(fallback[:10])}: rates are shrunk with the median exposure as prior "
            "strength."
        )
    return notes


def _model_summary(
    forest: ForestFit | None, features: FeatureSet | None, skipped: bool
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "r2Holdout": None,
        "r2OutOfBag": None,
        "trees": None,
        "maxDepth": None,
        "features": 0 if features is None else features.matrix.shape[1],
        "terms": 0 if features is None else features.term_count,
        "fitted": not skipped,
    }
    if forest is not None:
        summary.update(
            r2Holdout=forest.r2_holdout,
            r2OutOfBag=forest.r2_out_of_bag,
            permutationRepeats=PERMUTATION_REPEATS,
            weights="sqrt(trials)",
            **forest.parameters(),
        )
    return summary


def _model(
    creatives: Creatives,
    rates: pd.DataFrame,
    modelled_mask: npt.NDArray[np.bool_],
    config: ContentConfig,
    progress: Progress,
    notes: list[str],
) -> tuple[dict[str, Any], tuple[FeatureEffect, ...]]:
    modelled = rates[modelled_mask].reset_index(drop=True)
    texts = creatives.texts[modelled_mask].reset_index(drop=True)
    if len(modelled) < MIN_MODELLED:
        notes.append(
            f"Only {len(modelled)} creatives reach minImpressions={config.min_impressions}: "
            f"at least {MIN_MODELLED} are needed to rank features, so no model was fitted."
        )
        return _model_summary(None, None, skipped=True), ()
    progress(0.35, "building TF-IDF and attribute features")
    cleaned = pd.DataFrame(
        {name: clean_texts(texts[name]) for name in texts.columns}, index=texts.index
    )
    features = build_features(cleaned, modelled["channel"].to_numpy(dtype=object))
    notes.extend(features.notes)
    if not texts.columns.size:
        notes.append("No text fields were found or configured: only channels are compared.")
    if features.matrix.shape[1] == 0:
        notes.append("No feature varies between the modelled creatives: no model was fitted.")
        return _model_summary(None, features, skipped=True), ()
    progress(0.45, f"fitting a forest on {len(modelled)} creatives")
    target = modelled["shrunkRate"].to_numpy(dtype=np.float64)
    forest = fit_forest(
        features.matrix, target, _weights(modelled, config.target), random_state=config.random_state
    )
    progress(0.75, "permutation importance on held-out creatives")
    effects = _effects(forest, features, modelled, config)
    return _model_summary(forest, features, skipped=False), effects


def analyze_content(
    frame: pd.DataFrame, config: ContentConfig, *, progress: Progress = no_progress
) -> ContentResult:
    """Explain a creative rate by words, bigrams and text attributes, and rate every creative.

    Counts are summed per creative; CTR, CVR and revenue per impression are computed and the
    target rate is shrunk toward the creative's channel (empirical Bayes) so tiny creatives do
    not dominate. A bounded random forest predicts the shrunk rate from TF-IDF terms of each
    text field and structured attributes (length, numbers, punctuation, capitals, "you",
    emoji, channel); features are ranked by permutation importance on held-out creatives,
    signed by the model's predicted effect and measured directly (rate with vs without).

    Parameters
    ----------
    frame
        One row per creative, or per creative and day.
    config
        Columns, target and reporting limits.
    progress
        ``progress(fraction, message)`` callback.

    Raises
    ------
    UnknownColumn
        A configured column is missing, or a required one cannot be found.
    InvalidInput
        Negative or non-numeric counts, or more clicks than impressions.
    NotEnoughData
        No impressions at all, or no creative reaches ``minImpressions``.
    """
    progress(0.0, "resolving columns")
    frame = frame.rename(columns=str)
    columns = resolve_columns(frame, config)
    _check_target_columns(columns, config.target)
    progress(0.1, "summing counts per creative")
    creatives = aggregate_creatives(frame, columns)
    notes = list(creatives.notes)
    progress(0.25, "rates and shrinkage")
    rates, shrinkage = creative_rates(
        creatives.table, creatives.early, creatives.late, config.target
    )
    modelled_mask = _check_exposure(rates, config)
    notes.extend(_prior_notes(shrinkage))
    model, effects = _model(creatives, rates, modelled_mask, config, progress, notes)
    progress(0.9, "insights")
    insights = build_insights(effects, config.target)
    rates["modelled"] = modelled_mask
    per_creative = rates[[*CREATIVE_COLUMNS, "channelRate"]].copy()
    impressions = rates["impressions"].to_numpy(dtype=np.float64)
    below = int((impressions < config.min_impressions).sum())
    excluded = {
        "belowMinImpressions": below,
        "zeroImpressions": int((impressions <= 0).sum()),
        **creatives.excluded,
    }
    if below:
        notes.append(
            f"{below} creatives have fewer than {config.min_impressions} impressions: they are "
            "reported with shrunk rates but not modelled."
        )
    result = ContentResult(
        creative_count=len(rates),
        modelled_count=int(modelled_mask.sum()),
        excluded=excluded,
        target=config.target,
        baseline=baseline(rates, shrinkage),
        model=model,
        feature_importance=effects,
        insights=insights,
        creatives=creative_records(per_creative, config.max_creatives),
        creatives_truncated=len(per_creative) > config.max_creatives,
        notes=tuple(notes),
        per_creative=per_creative,
    )
    progress(1.0, f"{len(effects)} features ranked, {len(insights)} insights")
    return result
