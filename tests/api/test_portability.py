"""Export and import through the HTTP API (SQLite and PostgreSQL, real fits): the document
is versioned and checksummed; imported on another deployment (another database) by another
tenant it is a new succeeded model that predicts identically; a changed document is a 422."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.db.migrate import upgrade
from tests.api.conftest import ClientFactory, assert_problem, make_settings
from tests.api.fitting import fit_spec
from tests.api.keys import Key, make_key

ROWS = {"records": [{"Exercise": 2.3, "State": "B"}, {"Exercise": 0.0, "State": "A"},
                    {"Exercise": 4.0, "State": "E"}, {"Exercise": 1.0, "State": None}]}


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


@pytest.mark.parametrize("formula", ["Mood ~ Exercise + (1 + Exercise | State)",
                                     "Mood ~ Exercise * State", "Mood ~ Exercise | State"])
def test_an_imported_model_predicts_identically(
        worker_client: TestClient, mood_id: str, tmp_path: Any, formula: str) -> None:
    original = fit_spec(worker_client, {"dataset_id": mood_id, "formula": formula,
                                        "name": "mood-by-state"})
    assert original["status"] == "succeeded", original
    rows = ROWS if "|" in formula and "(" in formula else {
        "records": [r for r in ROWS["records"] if r["State"] in ("A", "B")]}
    exported = worker_client.get("/v1/models/mood-by-state@1/export")
    assert exported.status_code == 200, exported.text
    assert "mood-by-state-v1.mixedfit.json" in exported.headers["content-disposition"]
    document = exported.json()
    assert (document["format"], document["format_version"]) == ("mixedfit.model", 1)
    assert document["checksum"]["algorithm"] == "sha256"
    assert document["model"]["formula"] == formula and document["mixedfit_version"]
    # another deployment: its own database, and a tenant with a key
    elsewhere_url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    upgrade(elsewhere_url)
    key = make_key(elsewhere_url, "lab-b")
    with TestClient(create_app(make_settings(elsewhere_url))) as elsewhere:
        _import_and_compare(worker_client, elsewhere, key, document, original, formula, rows)


def _import_and_compare(worker_client: TestClient, elsewhere: TestClient, key: Key,
                        document: dict[str, Any], original: dict[str, Any], formula: str,
                        rows: dict[str, Any]) -> None:
    # written again by another tool: other spacing and key order verify the same
    body = json.dumps(document, indent=2, sort_keys=True)
    imported = elsewhere.post("/v1/models/import", content=body, headers={
        "Content-Type": "application/json", **key.headers})
    assert imported.status_code == 201, imported.text
    model = imported.json()
    assert imported.headers["location"] == f"/v1/models/{model['id']}"
    assert model["id"] != original["id"] and model["status"] == "succeeded"
    assert (model["name"], model["version"]) == ("mood-by-state", 1)
    assert model["result"] == original["result"]
    here = worker_client.post(f"/v1/models/{original['id']}/predictions", json=rows).json()
    there = elsewhere.post("/v1/models/mood-by-state@1/predictions", json=rows,
                           headers=key.headers).json()
    assert there["predictions"] == here["predictions"]
    assert there["model_id"] == model["id"]
    # the data did not come along: what is computed from its rows cannot be
    assert_problem(elsewhere.get(f"/v1/models/{model['id']}/residuals",
                                 headers=key.headers), 409)
    if "(" in formula:  # a mixed model's conditional modes came along
        effects = elsewhere.get(f"/v1/models/{model['id']}/random-effects",
                                headers=key.headers)
        assert effects.json()["random_effects"] == worker_client.get(
            f"/v1/models/{original['id']}/random-effects").json()["random_effects"]


def test_a_changed_or_foreign_document_is_422(worker_client: TestClient,
                                              mood_id: str) -> None:
    original = fit_spec(worker_client, {"dataset_id": mood_id, "formula": "Mood ~ Exercise"})
    document = worker_client.get(f"/v1/models/{original['id']}/export").json()
    tampered = copy.deepcopy(document)
    tampered["prediction_state"]["fixed_effects"]["Exercise"] += 1.0
    body = assert_problem(worker_client.post("/v1/models/import", json=tampered), 422)
    assert "checksum" in body["detail"]
    newer = {**document, "format_version": 2}
    assert "format_version" in assert_problem(
        worker_client.post("/v1/models/import", json=newer), 422)["detail"]
    assert_problem(worker_client.post("/v1/models/import", json={"model": {}}), 422)
    assert_problem(worker_client.post("/v1/models/import", content=b"not json",
                                      headers={"Content-Type": "application/json"}), 422)
    assert_problem(worker_client.post("/v1/models/import", content=b"x",
                                      headers={"Content-Type": "text/csv"}), 415)
    again = worker_client.post("/v1/models/import", json=document)
    assert again.status_code == 201, again.text
    assert again.json()["name"] is None and again.json()["version"] is None


def test_only_a_succeeded_model_exports(client: TestClient, mood_id: str) -> None:
    queued = client.post("/v1/models", json={"dataset_id": mood_id,
                                             "formula": "Mood ~ Exercise"}).json()
    assert_problem(client.get(f"/v1/models/{queued['id']}/export"), 409)
    assert_problem(client.get("/v1/models/nope/export"), 404)
