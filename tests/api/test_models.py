"""Model specs through the HTTP API, without a worker: validation at once, then the queue."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.jobs.repository import count_by_status
from tests.api.conftest import assert_problem


def test_create_answers_202_with_location_and_queues_a_job(
        client: TestClient, mood_id: str, session_factory: sessionmaker[Session]) -> None:
    response = client.post("/v1/models", json={"dataset_id": mood_id, "formula": "Mood ~ Exercise",
                                               "name": "simple"})
    assert response.status_code == 202, response.text
    model = response.json()
    assert response.headers["location"] == f"/v1/models/{model['id']}"
    assert set(model) == {"id", "name", "version", "tags", "dataset_id", "formula", "method",
                          "pool", "contrasts", "weights", "kind", "status", "created_at",
                          "started_at", "finished_at", "error", "result"}
    assert model["pool"] is None  # per-group fits only
    assert (model["contrasts"], model["weights"]) == (None, None)  # treatment, unit weights
    assert (model["name"], model["version"], model["tags"]) == ("simple", 1, {})
    assert model["dataset_id"] == mood_id
    assert model["formula"] == "Mood ~ Exercise"
    assert model["method"] == "REML"
    assert model["kind"] == "lm"
    assert model["status"] == "queued"
    assert model["started_at"] is None and model["finished_at"] is None
    assert model["error"] is None and model["result"] is None
    with session_factory() as session:
        assert count_by_status(session)["queued"] == 1
    assert client.get(response.headers["location"]).json() == model


def test_kind_follows_the_formula(client: TestClient, mood_id: str) -> None:
    mixed = client.post("/v1/models", json={
        "dataset_id": mood_id, "formula": "Mood ~ Exercise + (1 + Exercise | State)",
        "method": "ML"}).json()
    assert (mixed["kind"], mixed["method"]) == ("lmm", "ML")


def test_list_filters_by_dataset(client: TestClient, mood_id: str, mood_csv: bytes) -> None:
    other = client.post("/v1/datasets", content=mood_csv,
                        headers={"Content-Type": "text/csv"}).json()["id"]
    for dataset_id in (mood_id, mood_id, other):
        client.post("/v1/models", json={"dataset_id": dataset_id, "formula": "Mood ~ Exercise"})
    assert client.get("/v1/models").json()["total"] == 3
    page = client.get(f"/v1/models?dataset_id={mood_id}&limit=1").json()
    assert page["total"] == 2 and len(page["items"]) == 1
    assert page["items"][0]["dataset_id"] == mood_id


def test_bad_formula_is_422_with_the_parsers_caret(client: TestClient, mood_id: str) -> None:
    response = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise +"})
    body = assert_problem(response, 422)
    assert "^" in body["detail"]
    assert "Mood ~ Exercise +" in body["detail"]
    assert isinstance(body["position"], int)
    assert client.get("/v1/models").json()["total"] == 0


def test_unknown_column_is_422_with_a_suggestion(client: TestClient, mood_id: str) -> None:
    response = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercse + (1 | State)"})
    body = assert_problem(response, 422)
    assert "Exercse" in body["detail"]
    assert "Exercise" in body["detail"]  # the "did you mean" suggestion


def test_unknown_dataset_is_404(client: TestClient) -> None:
    response = client.post("/v1/models", json={"dataset_id": "no-such-dataset",
                                               "formula": "Mood ~ Exercise"})
    assert "no-such-dataset" in assert_problem(response, 404)["detail"]


@pytest.mark.parametrize("payload", [
    {"formula": "Mood ~ Exercise"},
    {"dataset_id": "x", "formula": ""},
    {"dataset_id": "x", "formula": "Mood ~ Exercise", "method": "OLS"},
    {"dataset_id": "x", "formula": "Mood ~ Exercise", "extra": 1},
])
def test_invalid_spec_is_422_with_field_errors(client: TestClient, payload: dict) -> None:
    body = assert_problem(client.post("/v1/models", json=payload), 422)
    assert body["errors"]
    assert all(error["location"] == "body" for error in body["errors"])


def test_unknown_model_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v1/models/nope"), 404)
    assert_problem(client.get("/v1/models/nope?wait=1"), 404)
    assert_problem(client.post("/v1/models/nope/predictions",
                               json={"records": [{"Exercise": 1}]}), 404)


def test_wait_gives_up_and_returns_the_queued_model(client: TestClient, mood_id: str) -> None:
    model_id = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise"}).json()["id"]
    response = client.get(f"/v1/models/{model_id}?wait=0.2")
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert_problem(client.get(f"/v1/models/{model_id}?wait=-1"), 422)


def test_predicting_from_an_unfitted_model_is_409(client: TestClient, mood_id: str) -> None:
    model_id = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise"}).json()["id"]
    response = client.post(f"/v1/models/{model_id}/predictions",
                           json={"records": [{"Exercise": 1.0}]})
    body = assert_problem(response, 409)
    assert body["model_status"] == "queued"


def test_prediction_request_errors(client: TestClient, mood_id: str) -> None:
    model_id = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise"}).json()["id"]
    url = f"/v1/models/{model_id}/predictions"
    assert_problem(client.post(url, content=b"x", headers={"Content-Type": "image/png"}), 415)
    body = assert_problem(client.post(url, json={"records": []}), 422)
    assert body["errors"][0]["field"] == "records"
    assert_problem(client.post(url, json={"records": [{"a": 1}], "new_levels": "guess"}), 422)


@pytest.mark.parametrize("view", ["random-effects", "coefficients"])
def test_per_level_views_need_a_finished_fit(client: TestClient, mood_id: str, view: str) -> None:
    model_id = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ (1 | State)"}).json()["id"]
    assert assert_problem(client.get(f"/v1/models/{model_id}/{view}"), 409)["model_status"] \
        == "queued"
    assert_problem(client.get(f"/v1/models/nope/{view}"), 404)


def test_nul_characters_never_reach_the_database(client: TestClient, mood_id: str) -> None:
    # a name is a registry name (service.registry.names), which has no room for a NUL
    named = client.post("/v1/models", json={"dataset_id": mood_id, "formula": "Mood ~ Exercise",
                                            "name": "fit\x00one"})
    assert_problem(named, 422)
    bad = client.post("/v1/models", json={"dataset_id": mood_id,
                                          "formula": "Mood ~ Exer\x00cise"})
    assert_problem(bad, 422)
