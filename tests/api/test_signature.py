"""A model's signature through the HTTP API (SQLite and PostgreSQL, real fits): the input
columns with their types and a factor's levels, the grouping factors' levels, the output;
and predictions checked against it, with every wrong column named in one 422."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit_spec


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


@pytest.fixture
def fitted(worker_client: TestClient, mood_id: str) -> dict[str, Any]:
    model = fit_spec(worker_client, {"dataset_id": mood_id, "name": "mood-by-state",
                                     "formula": "Mood ~ Exercise * State + (1 | State)"})
    assert model["status"] == "succeeded", model
    return model


def test_the_signature_lists_the_inputs_and_their_levels(worker_client: TestClient,
                                                         fitted: dict[str, Any]) -> None:
    body = worker_client.get(f"/v1/models/{fitted['id']}/signature").json()
    assert body == {
        "model_id": fitted["id"], "kind": "lmm",
        "inputs": [
            {"name": "Exercise", "type": "numeric", "required": True, "levels": None},
            {"name": "State", "type": "categorical", "required": True,
             "levels": ["A", "B", "C", "D"]}],
        "groups": [{"group": "State", "columns": ["State"], "levels": ["A", "B", "C", "D"]}],
        "output": {"name": "prediction", "type": "number", "nullable": True}}
    assert worker_client.get("/v1/models/mood-by-state@1/signature").json() == body


def test_a_grouping_column_is_needed_only_with_random_effects(
        worker_client: TestClient, mood_id: str) -> None:
    model = fit_spec(worker_client, {"dataset_id": mood_id,
                                     "formula": "Mood ~ Exercise + (1 | State)"})
    inputs = worker_client.get(f"/v1/models/{model['id']}/signature").json()["inputs"]
    assert [(i["name"], i["required"]) for i in inputs] == [("Exercise", True),
                                                            ("State", False)]
    url = f"/v1/models/{model['id']}/predictions"
    assert worker_client.post(url, json={"records": [{"Exercise": 1.0}],
                                         "include_random_effects": False}).status_code == 200
    body = assert_problem(worker_client.post(url, json={"records": [{"Exercise": 1.0}]}), 422)
    assert [c["column"] for c in body["columns"]] == ["State"]


def test_a_prediction_names_each_wrong_column(worker_client: TestClient,
                                              fitted: dict[str, Any]) -> None:
    url = f"/v1/models/{fitted['id']}/predictions"
    body = assert_problem(worker_client.post(url, json={"records": [{"State": "Z"}]}), 422)
    assert [(c["column"], c["problem"]) for c in body["columns"]] == [
        ("Exercise", "missing"), ("State", "level")]
    assert "Exercise" in body["detail"] and "Z" in body["detail"]
    body = assert_problem(worker_client.post(url, content=b"Exercise,State\nlots,B\n",
                                             headers={"Content-Type": "text/csv"}), 422)
    assert [(c["column"], c["problem"]) for c in body["columns"]] == [("Exercise", "type")]
    assert "lots" in body["detail"]
    good = worker_client.post(url, json={"records": [{"Exercise": 2.3, "State": "B"}]})
    assert good.status_code == 200, good.text


def test_a_model_without_a_fit_has_no_signature(client: TestClient, mood_id: str) -> None:
    queued = client.post("/v1/models", json={"dataset_id": mood_id,
                                             "formula": "Mood ~ Exercise"}).json()
    assert_problem(client.get(f"/v1/models/{queued['id']}/signature"), 409)
    assert_problem(client.get("/v1/models/nope/signature"), 404)


def test_a_grouping_column_of_numbers_takes_any_level(worker_client: TestClient) -> None:
    """sleepstudy's Subject holds numbers; as a grouping factor it is a factor, so a new
    subject named in text is a new level (the population's prediction), as in R."""
    dataset = worker_client.post("/v1/datasets", content=(DATA / "sleepstudy.csv").read_bytes(),
                                 headers={"Content-Type": "text/csv"}).json()
    model = fit_spec(worker_client, {"dataset_id": dataset["id"],
                                     "formula": "Reaction ~ Days + (Days | Subject)"})
    url = f"/v1/models/{model['id']}/predictions"
    unseen = worker_client.post(url, json={"records": [{"Days": 3, "Subject": "308_unseen"}]})
    assert unseen.status_code == 200, unseen.text
    population = worker_client.post(url, json={"records": [{"Days": 3, "Subject": 308}],
                                               "include_random_effects": False}).json()
    assert unseen.json()["predictions"] == population["predictions"]
    # a term's numeric column is still checked
    wrong = worker_client.post(url, json={"records": [{"Days": "three", "Subject": 308}]})
    assert "Days" in assert_problem(wrong, 422)["detail"]
