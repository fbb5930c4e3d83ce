"""``POST /api/v1/outcomes``: idempotency, validation, and the three learning modes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import assert_problem


def create(client: Any, key: str, model_type: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/algorithm-models",
        json={"key": key, "name": key, "modelType": model_type, **fields},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def outcomes(key: str, offer: str, values: list[int], start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "modelKey": key,
            "customerId": f"c{start + i}",
            "offerId": offer,
            "outcome": value,
            "customerAttributes": {"age": 20 + (start + i) % 40, "tier": "gold"},
        }
        for i, value in enumerate(values)
    ]


def revision(client: Any, model: dict[str, Any]) -> int:
    return int(client.get(f"/api/v1/algorithm-models/{model['id']}").json()["stateRevision"])


def test_idempotent_batches_and_items(client) -> None:
    create(client, "m", "scorecard")
    batch = {"outcomes": outcomes("m", "o1", [1, 0, 1])}
    first = client.post("/api/v1/outcomes", json=batch, headers={"Idempotency-Key": "b-1"})
    assert first.status_code == 201, first.text
    assert first.json() == {"recorded": 3, "duplicates": 0, "applied": {}, "buffered": {}}
    replay = client.post("/api/v1/outcomes", json=batch, headers={"Idempotency-Key": "b-1"})
    assert replay.status_code == 200 and replay.json()["duplicates"] == 3
    changed = {"outcomes": outcomes("m", "o1", [1, 1, 1])}
    assert_problem(
        client.post("/api/v1/outcomes", json=changed, headers={"Idempotency-Key": "b-1"}),
        409,
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    item = outcomes("m", "o2", [1])[0] | {"idempotencyKey": "evt-9"}
    assert client.post("/api/v1/outcomes", json={"outcomes": [item]}).status_code == 201
    again = client.post("/api/v1/outcomes", json={"outcomes": [item]})
    assert again.status_code == 200 and again.json()["recorded"] == 0
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": [item | {"outcome": 0}]}),
        409,
        "idempotency_key_reused",
        "outcomes.0.idempotencyKey",
    )
    # Without any key every outcome is new.
    plain = {"outcomes": outcomes("m", "o3", [0])}
    assert client.post("/api/v1/outcomes", json=plain).json()["recorded"] == 1
    assert client.post("/api/v1/outcomes", json=plain).json()["recorded"] == 1
    # The log is the offer's evidence for scoring.
    scored = client.post(
        "/api/v1/score",
        json={"customerId": "x", "offers": [{"id": "o1"}, {"id": "o3"}], "resolution": {}},
    ).json()
    assert {row["offerId"]: row["evidence"] for row in scored["scores"]} == {"o1": 3, "o3": 2}


def test_unknown_models_and_bad_items_name_the_field(client) -> None:
    model = create(client, "m", "scorecard", outcomeWeights={"click": 0.3, "impression": 0})
    items = outcomes("m", "o1", [1, 1, 1]) + [outcomes("nope", "o1", [1])[0]]
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": items}),
        404,
        "not_found",
        "outcomes.3.modelKey",
    )
    by_id = {"modelId": "model-000000000000", "customerId": "c", "offerId": "o", "outcome": 1}
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": [by_id]}),
        404,
        "not_found",
        "outcomes.0.modelId",
    )
    mismatch = {**by_id, "modelId": model["id"], "modelKey": "other"}
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": [mismatch]}),
        400,
        "invalid_input",
        "outcomes.0.modelKey",
    )
    for bad, field in (
        ({"outcome": 2}, "outcomes.0.outcome"),
        ({"outcome": None}, "outcomes.0"),
        ({"modelKey": None}, "outcomes.0"),
        ({"customerId": ""}, "outcomes.0.customerId"),
    ):
        item = outcomes("m", "o1", [1])[0] | bad
        assert_problem(
            client.post("/api/v1/outcomes", json={"outcomes": [item]}),
            422,
            "validation_error",
            field,
        )
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": []}), 422, "validation_error", "outcomes"
    )
    # Outcome types map through the model's outcomeWeights.
    typed = [
        {"modelKey": "m", "customerId": "c", "offerId": "t", "outcomeType": "click"},
        {"modelKey": "m", "customerId": "c", "offerId": "t", "outcomeType": "impression"},
    ]
    assert client.post("/api/v1/outcomes", json={"outcomes": typed}).status_code == 201
    unknown = [{"modelKey": "m", "customerId": "c", "offerId": "t", "outcomeType": "view"}]
    assert_problem(
        client.post("/api/v1/outcomes", json={"outcomes": unknown}),
        400,
        "invalid_input",
        "outcomes.0.outcomeType",
    )
    services = client.app.state.services
    _, labels = services.outcomes._outcomes.training_frame(tenant="default", model_key="m")
    assert labels.tolist() == [1.0, 0.0]


def test_per_outcome_learning_changes_a_thompson_models_next_scores(client) -> None:
    model = create(
        client,
        "ts",
        "thompson_bandit",
        learningConfig={"autoLearn": True, "learnMode": "per_outcome"},
    )
    score_body = {
        "customerAttributes": {},
        "offers": [{"id": "good"}, {"id": "bad"}],
        "explain": True,
        "seed": 3,
    }

    def means() -> dict[str, float]:
        scored = client.post(f"/api/v1/algorithm-models/{model['id']}/score", json=score_body)
        assert scored.status_code == 200, scored.text
        return {
            row["offerId"]: row["modelExplanation"]["details"][0]["posteriorMean"]
            for row in scored.json()["scores"]
        }

    before = means()
    assert before == {"good": 0.5, "bad": 0.5}
    learned = client.post(
        "/api/v1/outcomes",
        json={"outcomes": outcomes("ts", "good", [1] * 30) + outcomes("ts", "bad", [0] * 30, 30)},
    ).json()
    assert learned["applied"] == {"ts": 60} and learned["buffered"] == {}
    after = means()
    assert after["good"] == pytest.approx(31 / 32) and after["bad"] == pytest.approx(1 / 32)
    assert revision(client, model) == model["stateRevision"] + 1
    # One more outcome is applied at once too.
    single = client.post("/api/v1/outcomes", json={"outcomes": outcomes("ts", "bad", [1], 99)})
    assert single.json()["applied"] == {"ts": 1}
    assert means()["bad"] == pytest.approx(2 / 33)


def test_incremental_learners_apply_at_the_50th_outcome(client) -> None:
    model = create(
        client,
        "nb",
        "bayesian",
        learningConfig={"autoLearn": True, "learnMode": "incremental"},
    )
    start = revision(client, model)
    first = client.post(
        "/api/v1/outcomes", json={"outcomes": outcomes("nb", "o1", [1, 0] * 24 + [1])}
    ).json()
    assert first["applied"] == {} and first["buffered"] == {"nb": 49}
    assert revision(client, model) == start
    fiftieth = client.post("/api/v1/outcomes", json={"outcomes": outcomes("nb", "o1", [0], 49)})
    assert fiftieth.json()["applied"] == {"nb": 50} and fiftieth.json()["buffered"] == {"nb": 0}
    assert revision(client, model) == start + 1
    next_one = client.post("/api/v1/outcomes", json={"outcomes": outcomes("nb", "o1", [1], 50)})
    assert next_one.json()["applied"] == {} and next_one.json()["buffered"] == {"nb": 1}


def test_scheduled_learners_only_log(client) -> None:
    model = create(
        client,
        "lr",
        "logistic_regression",
        learningConfig={"autoLearn": True, "learnMode": "scheduled", "schedule": "0 3 * * *"},
    )
    answer = client.post(
        "/api/v1/outcomes", json={"outcomes": outcomes("lr", "o1", [1, 0, 1, 1])}
    ).json()
    assert answer == {"recorded": 4, "duplicates": 0, "applied": {}, "buffered": {}}
    assert revision(client, model) == model["stateRevision"]
    services = client.app.state.services
    frame, labels = services.outcomes._outcomes.training_frame(tenant="default", model_key="lr")
    assert labels.tolist() == [1.0, 0.0, 1.0, 1.0] and set(frame["customerId"]) == {
        "c0",
        "c1",
        "c2",
        "c3",
    }


def test_a_learning_failure_keeps_the_outcomes_and_retries_them(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(client, "ts", "thompson_bandit", learningConfig={"autoLearn": True})
    services = client.app.state.services
    original = services.algorithm_models.apply_outcomes

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("state store hiccup")

    monkeypatch.setattr(services.algorithm_models, "apply_outcomes", broken)
    failed = client.post("/api/v1/outcomes", json={"outcomes": outcomes("ts", "o1", [1, 1])})
    assert failed.status_code == 201
    body = failed.json()
    assert body["recorded"] == 2 and body["applied"] == {} and body["buffered"] == {"ts": 2}
    assert "state store hiccup" in body["learningErrors"]["ts"]
    monkeypatch.setattr(services.algorithm_models, "apply_outcomes", original)
    retried = client.post("/api/v1/outcomes", json={"outcomes": outcomes("ts", "o1", [0], 2)})
    assert retried.json()["applied"] == {"ts": 3} and retried.json()["buffered"] == {}
