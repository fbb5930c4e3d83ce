"""Decisioning service: resolution, champion/challenger, fallbacks, smoothing, maturity, shadows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import Any

import numpy as np
import pytest

from mlworker.decisioning import (
    Variant,
    assign_variant,
    is_exposed,
    wilson_exposure_probability,
)
from mlworker.services.container import Services
from mlworker.services.decisioning import ScoreRequest
from mlworker.store.outcomes import ShadowScoreRepository
from tests.support import free_port

DAY = date(2026, 11, 22)


@pytest.fixture
def services(make_settings) -> Iterator[Services]:
    # Loopback allow-listed, as an operator would for a model server on the same host.
    started = Services(make_settings(egress_allow=("127.0.0.1/32",)))
    started.start()
    yield started
    started.close()


def scorecard(services: Services, key: str, score: float, **fields: Any) -> Any:
    """A scorecard that scores every candidate ``score`` (linear, no rules)."""
    body = {
        "key": key,
        "name": key,
        "modelType": "scorecard",
        "config": {"baseScore": score * 100, "normalization": "linear"},
        **fields,
    }
    return services.algorithm_models.create(body, tenant="default", actor="test")


def promote(services: Services, model: Any, *steps: str) -> None:
    for step in steps:
        services.algorithm_models.promote(
            model.id, to=step, tenant="default", actor="test", reason=None
        )


def score(services: Services, **body: Any) -> dict[str, Any]:
    body.setdefault("customerId", "c1")
    body.setdefault("date", DAY.isoformat())
    return services.decisioning.score(ScoreRequest.model_validate(body), tenant="default")


def by_offer(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["offerId"]: row for row in answer["scores"]}


def test_the_seed_smoothing_table_through_the_service(services: Services) -> None:
    scorecard(services, "m045", 0.45)
    evidence = [0, 10, 25, 100, 500]
    answer = score(
        services,
        offers=[{"id": f"o{n}", "priority": 70, "interactions": n} for n in evidence],
        resolution={"defaultModel": "m045"},
    )
    rows = by_offer(answer)
    assert [round(rows[f"o{n}"]["score"], 3) for n in evidence] == [
        0.7,
        0.629,
        0.575,
        0.5,
        0.462,
    ]
    assert all(rows[f"o{n}"]["modelScore"] == pytest.approx(0.45) for n in evidence)
    assert all(row["source"] == "model" and not row["degraded"] for row in rows.values())
    assert [rows[f"o{n}"]["evidence"] for n in evidence] == evidence
    # Sorted by smoothed score, highest first.
    assert [row["offerId"] for row in answer["scores"]] == ["o0", "o10", "o25", "o100", "o500"]
    # The maturity ramp: max(0.02, min(1, n / 100)).
    assert [rows[f"o{n}"]["exposure"] for n in evidence] == [0.02, 0.1, 0.25, 1.0, 1.0]


def test_each_candidate_resolves_its_own_model(services: Services) -> None:
    for key, value in (("m_offer", 0.1), ("m_cat", 0.2), ("m_chan", 0.3), ("m_default", 0.4)):
        scorecard(services, key, value)
    answer = score(
        services,
        offers=[
            {"id": "premium", "category": "loans", "channel": "email"},
            {"id": "o2", "category": "loans", "channel": "email"},
            {"id": "o3", "category": "cards", "channel": "email"},
            {"id": "o4", "category": "cards", "channel": "sms"},
            {"id": "o5"},
        ],
        resolution={
            "defaultModel": "m_default",
            "overrides": [
                {"scope": "channel", "key": "email", "modelKey": "m_chan"},
                {"scope": "offer", "key": "premium", "modelKey": "m_offer"},
                {"scope": "category", "key": "loans", "modelKey": "m_cat"},
            ],
        },
    )
    rows = by_offer(answer)
    assert {offer: row["modelKey"] for offer, row in rows.items()} == {
        "premium": "m_offer",
        "o2": "m_cat",
        "o3": "m_chan",
        "o4": "m_default",
        "o5": "m_default",
    }
    assert rows["premium"]["modelScore"] == pytest.approx(0.1)
    assert rows["o3"]["modelScore"] == pytest.approx(0.3)
    assert rows["o5"]["modelType"] == "scorecard" and rows["o5"]["variant"] is None


def test_champion_challenger_split_follows_the_weights_and_is_stable(services: Services) -> None:
    scorecard(services, "champ", 0.3)
    scorecard(services, "chall", 0.6)
    scorecard(services, "m_offer", 0.9)
    split = {
        "enabled": True,
        "champion": {"modelKey": "champ", "weight": 80},
        "challengers": [{"modelKey": "chall", "weight": 20}],
    }
    offers = [{"id": "o1"}, {"id": "special"}]
    resolution = {
        "defaultModel": "champ",
        "overrides": [{"scope": "offer", "key": "special", "modelKey": "m_offer"}],
    }
    seen: Counter[str] = Counter()
    for n in range(1000):
        customer = f"cust-{n}"
        rows = by_offer(
            score(
                services,
                customerId=customer,
                offers=offers,
                resolution=resolution,
                championChallenger=split,
            )
        )
        expected = assign_variant(customer, [Variant("champ", 80), Variant("chall", 20)])
        assert rows["o1"]["modelKey"] == expected.model_key
        assert rows["o1"]["variant"] == (
            "champion" if expected.model_key == "champ" else "challenger:chall"
        )
        # Without overrideBypass the offer override still wins over the split.
        assert rows["special"]["modelKey"] == "m_offer" and rows["special"]["variant"] is None
        seen[rows["o1"]["modelKey"]] += 1
    assert seen["chall"] / 1000 == pytest.approx(0.2, abs=0.035)
    # The same customer is always served by the same model.
    again = {
        by_offer(score(services, customerId="cust-7", offers=offers, championChallenger=split))[
            "o1"
        ]["modelKey"]
        for _ in range(5)
    }
    assert len(again) == 1
    bypass = by_offer(
        score(
            services,
            customerId="cust-7",
            offers=offers,
            resolution=resolution,
            championChallenger={**split, "overrideBypass": True},
        )
    )
    assert bypass["special"]["modelKey"] == bypass["o1"]["modelKey"] in ("champ", "chall")


def test_shadow_models_of_the_family_are_logged_not_served(services: Services) -> None:
    champion = scorecard(services, "fam_champ", 0.5, registryFamily="fam")
    shadow = scorecard(services, "fam_shadow", 0.2, registryFamily="fam")
    challenger = scorecard(services, "fam_chall", 0.8, registryFamily="fam")
    scorecard(services, "fam_draft", 0.1, registryFamily="fam")  # drafts are not shadowed
    scorecard(services, "other_shadow", 0.7, registryFamily="other")
    promote(services, champion, "challenger", "champion")
    promote(services, shadow, "shadow")
    promote(services, challenger, "challenger")
    answer = score(
        services,
        offers=[{"id": "o1"}, {"id": "o2"}],
        resolution={"defaultModel": "fam_champ"},
    )
    assert {row["modelKey"] for row in answer["scores"]} == {"fam_champ"}
    assert all(row["modelScore"] == pytest.approx(0.5) for row in answer["scores"])
    services.decisioning.shadow_log.flush()
    logged = ShadowScoreRepository(services.db).list(tenant="default")
    assert {(s.model_key, s.offer_id) for s in logged} == {
        ("fam_shadow", "o1"),
        ("fam_shadow", "o2"),
        ("fam_chall", "o1"),
        ("fam_chall", "o2"),
    }
    for entry in logged:
        assert entry.request_id == answer["requestId"] and entry.customer_id == "c1"
        assert entry.served_model_key == "fam_champ" and entry.served_score == pytest.approx(0.5)
        assert entry.score == pytest.approx(0.2 if entry.model_key == "fam_shadow" else 0.8)
    # A challenger serving this customer (through the split) is not also its shadow.
    arms = [Variant("fam_champ", 1), Variant("fam_chall", 1)]
    customer = next(
        f"c{n}" for n in range(100) if assign_variant(f"c{n}", arms).model_key == "fam_chall"
    )
    served = score(
        services,
        customerId=customer,
        offers=[{"id": "o1"}],
        championChallenger={
            "champion": {"modelKey": "fam_champ", "weight": 1},
            "challengers": [{"modelKey": "fam_chall", "weight": 1}],
        },
    )
    assert served["scores"][0]["variant"] == "challenger:fam_chall"
    services.decisioning.shadow_log.flush()
    latest = ShadowScoreRepository(services.db).list(tenant="default", limit=10)[:-4]
    assert [(s.model_key, s.served_model_key) for s in latest] == [("fam_shadow", "fam_chall")]


def test_fallbacks_precomputed_then_priority_and_say_why(services: Services) -> None:
    services.algorithm_models.create(
        {"key": "untrained_lr", "name": "lr", "modelType": "logistic_regression"},
        tenant="default",
        actor="test",
    )
    archived = scorecard(services, "old", 0.9)
    promote(services, archived, "archived")
    answer = score(
        services,
        offers=[
            {"id": "a", "priority": 40, "precomputedPropensity": 0.33, "interactions": 10**9},
            {"id": "b", "priority": 40, "interactions": 0},
            {"id": "c", "priority": 60, "category": "lr", "interactions": 10**9},
            {"id": "d", "priority": 20, "channel": "old", "interactions": 10**9},
            {"id": "e", "priority": 10, "channel": "none", "interactions": 10**9},
        ],
        resolution={
            "defaultModel": "missing_model",
            "overrides": [
                {"scope": "category", "key": "lr", "modelKey": "untrained_lr"},
                {"scope": "channel", "key": "old", "modelKey": "old"},
            ],
        },
    )
    rows = by_offer(answer)
    assert rows["a"]["source"] == "precomputed" and rows["a"]["modelScore"] == 0.33
    assert rows["a"]["score"] == pytest.approx(0.33, abs=1e-6)  # the evidence dominates
    assert rows["a"]["degradedReason"] == "model not found" and rows["a"]["degraded"]
    assert rows["b"]["source"] == "priority" and rows["b"]["score"] == pytest.approx(0.4)
    assert rows["c"]["degradedReason"] == "model not trained"
    assert rows["c"]["score"] == pytest.approx(0.6) and rows["c"]["modelType"] == (
        "logistic_regression"
    )
    assert rows["d"]["degradedReason"] == "model archived"
    assert rows["e"]["degradedReason"] == "model not found"
    assert all("modelExplanation" not in row for row in rows.values())


def test_an_unreachable_endpoint_degrades_then_opens_its_breaker(services: Services) -> None:
    services.algorithm_models.create(
        {
            "key": "remote",
            "name": "remote",
            "modelType": "external_endpoint",
            "config": {
                "endpointUrl": f"http://127.0.0.1:{free_port()}/score",
                "timeoutMs": 200,
                "circuitBreaker": {"failureThreshold": 2, "resetTimeoutMs": 60_000},
            },
        },
        tenant="default",
        actor="test",
    )
    reasons = []
    for _ in range(3):
        rows = by_offer(
            score(
                services,
                offers=[{"id": "o1", "priority": 30, "precomputedPropensity": 0.12}],
                resolution={"defaultModel": "remote"},
            )
        )
        assert rows["o1"]["degraded"] and rows["o1"]["source"] == "precomputed"
        reasons.append(rows["o1"]["degradedReason"])
    assert reasons[0].startswith("endpoint fallback")
    assert reasons[-1] == "circuit breaker open"


def test_maturity_flags_are_deterministic_per_customer_offer_and_day(services: Services) -> None:
    scorecard(services, "m", 0.5)
    exposed = 0
    for n in range(500):
        rows = by_offer(
            score(
                services,
                customerId=f"c{n}",
                offers=[{"id": "new", "interactions": 0}, {"id": "half", "interactions": 50}],
                resolution={"defaultModel": "m"},
            )
        )
        assert rows["new"]["exposed"] == is_exposed(f"c{n}", "new", DAY, 0.02)
        assert rows["half"]["exposed"] == is_exposed(f"c{n}", "half", DAY, 0.5)
        exposed += rows["half"]["exposed"]
    assert exposed / 500 == pytest.approx(0.5, abs=0.07)
    wilson = by_offer(
        score(
            services,
            offers=[{"id": "w", "interactions": 20, "positives": 5}],
            resolution={"defaultModel": "m"},
            maturity="wilson",
        )
    )["w"]
    assert wilson["exposure"] == pytest.approx(float(wilson_exposure_probability(5, 20)))
    other_day = by_offer(
        score(
            services,
            customerId="c1",
            date="2026-11-23",
            offers=[{"id": "half", "interactions": 50}],
            resolution={"defaultModel": "m"},
        )
    )["half"]
    assert other_day["exposed"] == is_exposed("c1", "half", date(2026, 11, 23), 0.5)


def test_evidence_comes_from_the_outcome_log_when_not_given(services: Services) -> None:
    scorecard(services, "m", 0.2)
    services.outcomes.record(
        _outcomes([("m", "o1", 1.0)] * 30 + [("m", "o2", 0.0)] * 5), tenant="default"
    )
    rows = by_offer(
        score(
            services,
            offers=[{"id": "o1", "priority": 80}, {"id": "o2"}, {"id": "o3", "interactions": 7}],
            resolution={"defaultModel": "m"},
        )
    )
    assert (rows["o1"]["evidence"], rows["o2"]["evidence"], rows["o3"]["evidence"]) == (30, 5, 7)
    assert rows["o1"]["score"] == pytest.approx((0.2 * 30 + 0.8 * 25) / 55)


def test_explanations_only_when_asked(services: Services) -> None:
    services.algorithm_models.create(
        {
            "key": "rules",
            "name": "rules",
            "modelType": "scorecard",
            "config": {
                "baseScore": 50,
                "rules": [{"field": "tier", "operator": "eq", "value": "gold", "points": 20}],
            },
        },
        tenant="default",
        actor="test",
    )
    body = {
        "customerAttributes": {"tier": "gold"},
        "offers": [{"id": "o1"}, {"id": "o2", "attributes": {"tier": "silver"}}],
        "resolution": {"defaultModel": "rules"},
    }
    plain = by_offer(score(services, **body))
    assert all("modelExplanation" not in row for row in plain.values())
    explained = by_offer(score(services, explain=True, **body))
    gold = explained["o1"]["modelExplanation"]
    assert gold["engine"] == "scorecard" and gold["score"] == explained["o1"]["modelScore"]
    assert gold["details"][0]["matched"] is True
    assert explained["o2"]["modelExplanation"]["details"][0]["matched"] is False
    assert explained["o1"]["modelScore"] == pytest.approx(plain["o1"]["modelScore"])


def test_stochastic_engines_replay_with_the_returned_seed(services: Services) -> None:
    services.algorithm_models.create(
        {"key": "ts", "name": "ts", "modelType": "thompson_bandit"}, tenant="default", actor="t"
    )
    body = {"offers": [{"id": f"o{i}"} for i in range(5)], "resolution": {"defaultModel": "ts"}}
    first = score(services, **body)
    replay = score(services, seed=first["seed"], **body)
    other = score(services, seed=first["seed"] + 1, **body)
    assert 0 <= first["seed"] < 2**63
    assert [r["modelScore"] for r in replay["scores"]] == [r["modelScore"] for r in first["scores"]]
    assert [r["modelScore"] for r in other["scores"]] != [r["modelScore"] for r in first["scores"]]
    assert first["requestId"] != replay["requestId"]


def test_no_offers_and_no_model(services: Services) -> None:
    assert score(services, offers=[])["scores"] == []
    rows = score(services, offers=[{"id": "o1", "priority": 65}])["scores"]
    assert rows[0]["modelKey"] is None and rows[0]["degradedReason"] == "no model applies"
    assert rows[0]["score"] == pytest.approx(0.65)


def _outcomes(items: list[tuple[str, str, float]]) -> Any:
    from mlworker.services.outcomes import OutcomesRequest

    return OutcomesRequest.model_validate(
        {
            "outcomes": [
                {"modelKey": key, "customerId": f"c{i}", "offerId": offer, "outcome": value}
                for i, (key, offer, value) in enumerate(items)
            ]
        }
    )


def test_scores_stay_in_the_unit_interval_for_every_source(services: Services) -> None:
    scorecard(services, "m", 0.0)
    rows = score(
        services,
        offers=[
            {"id": f"o{i}", "priority": p, "interactions": n}
            for i, (p, n) in enumerate([(0, 0), (100, 0), (100, 10**6), (0, 3)])
        ],
        resolution={"defaultModel": "m"},
    )["scores"]
    values = np.array([row["score"] for row in rows])
    assert ((values >= 0) & (values <= 1)).all()
