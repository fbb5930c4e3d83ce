"""Generated data with planted truth for the analysis API tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tests.support import wait_for

SEGMENT_CENTRES = {  # income, age, orders per year, tier
    0: (32_000, 24, 2, "Bronze"),
    1: (61_000, 41, 12, "Silver"),
    2: (128_000, 55, 30, "Gold"),
}


def customers(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated customer groups, an id column and a noise column."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(SEGMENT_CENTRES), size=n)
    income = np.array([SEGMENT_CENTRES[t][0] for t in truth]) * rng.normal(1, 0.06, n)
    age = np.array([SEGMENT_CENTRES[t][1] for t in truth]) + rng.normal(0, 2.5, n)
    orders = np.array([SEGMENT_CENTRES[t][2] for t in truth]) + rng.normal(0, 1.5, n)
    tier = [SEGMENT_CENTRES[t][3] for t in truth]
    frame = pd.DataFrame(
        {
            "customer_id": [f"c-{i:05d}" for i in range(n)],
            "income": income.round(2),
            "age": age.round(1),
            "orders_per_year": orders.round(1),
            "tier": tier,
        }
    )
    return frame, truth


def interactions(customers_n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Contacts over 60 days on two channels; response falls after the 3rd contact in a week."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-06-01T00:00:00Z")
    rows: list[dict[str, Any]] = []
    for customer in range(customers_n):
        contacts = rng.integers(5, 40)
        offsets = np.sort(rng.uniform(0, 60 * 24, size=contacts))  # hours
        for hour in offsets:
            rows.append(
                {
                    "customerId": f"u{customer}",
                    "timestamp": start + pd.Timedelta(hours=float(hour)),
                    "channel": "email" if rng.random() < 0.5 else "sms",
                }
            )
    frame = pd.DataFrame(rows).sort_values(["customerId", "timestamp"], ignore_index=True)
    weekly = frame.groupby("customerId")["timestamp"].transform(
        lambda t: t.searchsorted(t, side="right") - t.searchsorted(t - pd.Timedelta(days=7))
    )
    probability = np.where(weekly <= 3, 0.2, 0.04)
    responded = rng.random(len(frame)) < probability
    frame["outcome"] = np.where(responded, "click", "impression")
    return frame


def creatives(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Creatives whose CTR is driven by the word "free" (×2) in the title."""
    rng = np.random.default_rng(seed)
    words = ["sale", "new", "spring", "collection", "offer", "today", "style", "deal", "best"]
    titles, rates = [], []
    for _ in range(n):
        has_free = rng.random() < 0.3
        # Every title has four words, so the word count cannot stand in for "free".
        chosen = list(rng.choice(words, size=3 if has_free else 4, replace=False))
        if has_free:
            chosen.insert(int(rng.integers(0, 4)), "free")
        titles.append(" ".join(chosen).capitalize())
        rates.append(0.02 * (2.0 if has_free else 1.0))
    impressions = rng.integers(2_000, 20_000, size=n)
    clicks = rng.binomial(impressions, rates)
    return pd.DataFrame(
        {
            "creativeId": [f"cr-{i}" for i in range(n)],
            "title": titles,
            "channel": rng.choice(["email", "push"], size=n),
            "impressions": impressions,
            "clicks": clicks,
            "conversions": rng.binomial(clicks, 0.1),
            "revenue": rng.binomial(clicks, 0.1) * 25.0,
        }
    )


def finished(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``/status/{job_id}`` until the job ends; return its last status body."""

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/status/{job_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.1)
    return result
