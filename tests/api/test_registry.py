"""The model registry through the HTTP API (SQLite and PostgreSQL, real fits): names
numbered 1, 2, 3 ... without gaps under concurrent creation, aliases moved with ETags,
``name@version`` and ``name@alias`` wherever a model id goes (a moved alias followed at
once, never cached as immutable), tags, delete, tenants."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.models.references import MODEL_PATH
from tests.api.conftest import ClientFactory, assert_problem
from tests.api.keys import make_key

IMMUTABLE = "private, max-age=31536000, immutable"
ROW = {"records": [{"Exercise": 2.3, "State": "B"}]}


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def _fit(client: TestClient, dataset_id: str, formula: str, name: str = "mood-by-state",
         **headers: str) -> dict[str, Any]:
    response = client.post("/v1/models", json={"dataset_id": dataset_id, "formula": formula,
                                               "name": name}, headers=headers)
    assert response.status_code == 202, response.text
    return _wait(client, response.headers["location"], headers)


def _wait(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(60):
        model: dict[str, Any] = client.get(f"{location}?wait=5", headers=headers).json()
        if model["status"] in ("succeeded", "failed"):
            assert model["status"] == "succeeded", model
            return model
    pytest.fail(f"{location} did not finish")


def _predict(client: TestClient, ref: str, **headers: str) -> float:
    response = client.post(f"/v1/models/{ref}/predictions", json=ROW, headers=headers)
    assert response.status_code == 200, response.text
    value: float = response.json()["predictions"][0]
    return value


def test_a_name_numbers_its_models_and_lists_them(worker_client: TestClient,
                                                  mood_id: str) -> None:
    first = _fit(worker_client, mood_id, "Mood ~ Exercise")
    second = _fit(worker_client, mood_id, "Mood ~ Exercise + State")
    other = _fit(worker_client, mood_id, "Mood ~ Exercise", name="other")
    assert (first["name"], first["version"]) == ("mood-by-state", 1)
    assert (second["version"], other["version"]) == (2, 1)
    registered = worker_client.get("/v1/registry/mood-by-state").json()
    assert registered["latest_version"] == 2
    assert [(v["version"], v["model_id"], v["status"]) for v in registered["versions"]] == [
        (1, first["id"], "succeeded"), (2, second["id"], "succeeded")]
    assert registered["aliases"] == []
    assert worker_client.get("/v1/registry/mood-by-state/versions/2").json()["id"] \
        == second["id"]
    assert worker_client.get("/v1/models/mood-by-state@1").json()["id"] == first["id"]
    names = worker_client.get("/v1/registry?limit=1").json()
    assert ([r["name"] for r in names["items"]], names["total"]) == (["mood-by-state"], 2)
    assert_problem(worker_client.get("/v1/registry/mood-by-state/versions/3"), 404)
    assert_problem(worker_client.get("/v1/models/mood-by-state@3"), 404)
    assert_problem(worker_client.get("/v1/models/nobody@1"), 404)
    assert_problem(worker_client.get("/v1/registry/nobody"), 404)


@pytest.mark.parametrize("name", ["has space", "-leading", "a@b", "x" * 101, "é", ""])
def test_a_name_that_cannot_stand_in_a_url_is_422_naming_the_rule(
        client: TestClient, mood_id: str, name: str) -> None:
    response = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise", "name": name})
    body = assert_problem(response, 422)
    assert "[A-Za-z0-9][A-Za-z0-9._-]{0,99}" in str(body), body


def test_concurrent_creations_of_one_name_get_consecutive_versions(
        make_client: ClientFactory, mood_csv: bytes) -> None:
    # two apps (two engines, as two API processes) and several requests at once each
    clients = [make_client(), make_client()]
    dataset_id = clients[0].post("/v1/datasets", content=mood_csv,
                                 headers={"Content-Type": "text/csv"}).json()["id"]
    per_client = 4
    start = threading.Barrier(len(clients) * per_client)
    versions: list[int] = []
    errors: list[str] = []

    def create(client: TestClient) -> None:
        start.wait()
        response = client.post("/v1/models", json={"dataset_id": dataset_id,
                                                   "formula": "Mood ~ Exercise",
                                                   "name": "raced"})
        if response.status_code != 202:
            errors.append(response.text)
        else:
            versions.append(response.json()["version"])

    threads = [threading.Thread(target=create, args=(client,))
               for client in clients for _ in range(per_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == list(range(1, len(threads) + 1))
    assert clients[1].get("/v1/registry/raced").json()["latest_version"] == len(threads)


def test_an_alias_moves_with_its_etag_and_a_stale_one_is_412(worker_client: TestClient,
                                                             mood_id: str) -> None:
    for formula in ("Mood ~ Exercise", "Mood ~ Exercise + State"):
        _fit(worker_client, mood_id, formula)
    url = "/v1/registry/mood-by-state/aliases/champion"
    assert_problem(worker_client.put(url, json={"version": 1},
                                     headers={"If-Match": '"nothing"'}), 412)
    created = worker_client.put(url, json={"version": 1})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.headers["location"] == url
    etag = created.headers["etag"]
    assert worker_client.get(url).headers["etag"] == etag
    assert_problem(worker_client.put(url, json={"version": 2},
                                     headers={"If-None-Match": "*"}), 412)
    moved = worker_client.put(url, json={"version": 2}, headers={"If-Match": etag})
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] != etag
    stale = assert_problem(worker_client.put(url, json={"version": 1},
                                             headers={"If-Match": etag}), 412)
    assert stale["current_etag"] == moved.headers["etag"]
    assert worker_client.get(url).json()["version"] == 2
    # without If-Match a PUT moves it whatever its ETag
    assert worker_client.put(url, json={"version": 1}).status_code == 200
    assert_problem(worker_client.put(url, json={"version": 9}), 404)
    assert_problem(worker_client.put("/v1/registry/mood-by-state/aliases/9lives",
                                     json={"version": 1}), 422)
    listed = worker_client.get("/v1/registry/mood-by-state").json()["aliases"]
    assert [(a["alias"], a["version"]) for a in listed] == [("champion", 1)]
    assert_problem(worker_client.delete(url, headers={"If-Match": etag}), 412)
    assert worker_client.delete(url).status_code == 204
    assert_problem(worker_client.get(url), 404)
    assert_problem(worker_client.get("/v1/models/mood-by-state@champion"), 404)


def test_of_two_moves_from_one_etag_at_once_one_wins(make_client: ClientFactory,
                                                    mood_id: str) -> None:
    clients = [make_client(), make_client()]  # two API processes, each its own engine
    for formula in ("Mood ~ 1", "Mood ~ Exercise", "Mood ~ Exercise + State"):
        clients[0].post("/v1/models", json={"dataset_id": mood_id, "formula": formula,
                                            "name": "raced"})
    url = "/v1/registry/raced/aliases/champion"
    etag = clients[0].put(url, json={"version": 1}).headers["etag"]
    start = threading.Barrier(2)
    answers: dict[int, int] = {}

    def move(client: TestClient, version: int) -> None:
        start.wait()
        answers[version] = client.put(url, json={"version": version},
                                      headers={"If-Match": etag}).status_code

    threads = [threading.Thread(target=move, args=(client, version))
               for client, version in zip(clients, (2, 3), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [200, 412], answers
    [winner] = [version for version, status in answers.items() if status == 200]
    assert clients[1].get(url).json()["version"] == winner


def test_predictions_through_an_alias_follow_its_move_at_once(worker_client: TestClient,
                                                              mood_id: str) -> None:
    first = _fit(worker_client, mood_id, "Mood ~ Exercise")
    second = _fit(worker_client, mood_id, "Mood ~ Exercise + State")
    direct = [_predict(worker_client, model["id"]) for model in (first, second)]
    assert direct[0] != pytest.approx(direct[1])
    url = "/v1/registry/mood-by-state/aliases/champion"
    worker_client.put(url, json={"version": 1})
    assert _predict(worker_client, "mood-by-state@champion") == pytest.approx(direct[0])
    assert _predict(worker_client, "mood-by-state@champion") == pytest.approx(direct[0])
    worker_client.put(url, json={"version": 2})
    assert _predict(worker_client, "mood-by-state@champion") == pytest.approx(direct[1])
    assert _predict(worker_client, "mood-by-state@1") == pytest.approx(direct[0])
    response = worker_client.post("/v1/models/mood-by-state@champion/predictions", json=ROW)
    assert response.json()["model_id"] == second["id"]


def test_an_aliased_url_is_revalidated_and_a_versioned_one_immutable(
        worker_client: TestClient, mood_id: str) -> None:
    _fit(worker_client, mood_id, "Mood ~ Exercise + (1 | State)")
    _fit(worker_client, mood_id, "Mood ~ Exercise + (1 + Exercise | State)")
    url = "/v1/registry/mood-by-state/aliases/champion"
    worker_client.put(url, json={"version": 1})
    aliased = worker_client.get("/v1/models/mood-by-state@champion/coefficients")
    assert aliased.status_code == 200, aliased.text
    assert aliased.headers["cache-control"] == "private, no-cache"
    versioned = worker_client.get("/v1/models/mood-by-state@1/coefficients")
    assert versioned.headers["cache-control"] == IMMUTABLE
    assert versioned.json() == aliased.json()
    worker_client.put(url, json={"version": 2})
    again = worker_client.get("/v1/models/mood-by-state@champion/coefficients",
                              headers={"If-None-Match": aliased.headers["etag"]})
    assert again.status_code == 200
    assert again.json() != aliased.json()
    for path in ("", "/random-effects", "/residuals", "/plots", "/anova"):
        response = worker_client.get(f"/v1/models/mood-by-state@champion{path}")
        assert response.headers.get("cache-control") != IMMUTABLE, path


def test_tags_are_merge_patched_and_never_served_stale(worker_client: TestClient,
                                                       mood_id: str) -> None:
    model = _fit(worker_client, mood_id, "Mood ~ Exercise")
    assert model["tags"] == {}
    url = f"/v1/models/{model['id']}"
    first = worker_client.get(url)
    assert first.headers["cache-control"] == "private, no-cache"
    patched = worker_client.patch(url, json={"tags": {"team": "mood", "stage": "trial"}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == {"team": "mood", "stage": "trial"}
    again = worker_client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 200
    assert again.json()["tags"] == {"team": "mood", "stage": "trial"}
    worker_client.patch(url, json={"tags": {"stage": None, "owner": "ana"}})
    current = worker_client.get("/v1/models/mood-by-state@1")
    assert current.json()["tags"] == {"team": "mood", "owner": "ana"}
    assert worker_client.get(url, headers={"If-None-Match": current.headers["etag"]}) \
        .status_code in (200, 304)
    assert worker_client.get(url, headers={"If-None-Match": worker_client.get(url)
                                           .headers["etag"]}).status_code == 304
    body = assert_problem(worker_client.patch(url, json={"formula": "Mood ~ 1"}), 422)
    assert "formula" in str(body)
    assert_problem(worker_client.patch(url, json={"tags": {"a:b": "c"}}), 422)
    assert_problem(worker_client.patch("/v1/models/nope", json={"tags": {}}), 404)


def test_delete_is_refused_while_an_alias_points_at_the_model(worker_client: TestClient,
                                                              mood_id: str) -> None:
    model = _fit(worker_client, mood_id, "Mood ~ Exercise + (1 | State)")
    _predict(worker_client, model["id"])  # now in the caches by id
    worker_client.get(f"/v1/models/{model['id']}")
    alias = "/v1/registry/mood-by-state/aliases/champion"
    worker_client.put(alias, json={"version": 1})
    refused = assert_problem(worker_client.delete(f"/v1/models/{model['id']}"), 409)
    assert "mood-by-state@champion" in refused["detail"]
    assert refused["aliases"] == ["champion"]
    assert worker_client.delete(alias).status_code == 204
    assert worker_client.delete("/v1/models/mood-by-state@1").status_code == 204
    for method, path in [("GET", ""), ("GET", "/coefficients"), ("POST", "/predictions"),
                         ("GET", "/residuals"), ("DELETE", "")]:
        response = worker_client.request(method, f"/v1/models/{model['id']}{path}",
                                         json=ROW if method == "POST" else None)
        assert_problem(response, 404)
    assert worker_client.get("/v1/registry/mood-by-state").json()["versions"] == []
    # a version number is never given again
    assert _fit(worker_client, mood_id, "Mood ~ Exercise")["version"] == 2
    assert all(m["id"] != model["id"] for m in worker_client.get("/v1/models").json()["items"])


def test_a_queued_model_is_deleted_with_its_job(client: TestClient, mood_id: str) -> None:
    created = client.post("/v1/models", json={"dataset_id": mood_id,
                                              "formula": "Mood ~ Exercise"}).json()
    assert client.delete(f"/v1/models/{created['id']}").status_code == 204
    assert client.get("/v1/models").json()["total"] == 0
    assert client.get("/metrics").status_code == 200


def test_names_and_aliases_are_the_tenants_own(make_client: ClientFactory, database_url: str,
                                               mood_csv: bytes) -> None:
    alice, bob = make_key(database_url, "alice"), make_key(database_url, "bob")
    client = make_client(embedded_worker=True, worker_poll_seconds=0.05)
    datasets = {}
    for key in (alice, bob):
        datasets[key.tenant] = client.post("/v1/datasets", content=mood_csv, headers={
            "Content-Type": "text/csv", **key.headers}).json()["id"]
    mine = _fit(client, datasets["alice"], "Mood ~ Exercise", **alice.headers)
    theirs = _fit(client, datasets["bob"], "Mood ~ Exercise + State", **bob.headers)
    assert mine["version"] == theirs["version"] == 1
    url = "/v1/registry/mood-by-state/aliases/champion"
    assert client.put(url, json={"version": 1}, headers=alice.headers).status_code == 201
    assert_problem(client.get("/v1/models/mood-by-state@champion", headers=bob.headers), 404)
    assert client.get("/v1/models/mood-by-state@1", headers=bob.headers).json()["id"] \
        == theirs["id"]
    assert _predict(client, "mood-by-state@champion", **alice.headers) \
        == pytest.approx(_predict(client, mine["id"], **alice.headers))
    assert_problem(client.patch(f"/v1/models/{mine['id']}", json={"tags": {"a": "b"}},
                                headers=bob.headers), 404)
    assert_problem(client.delete(f"/v1/models/{mine['id']}", headers=bob.headers), 404)


def test_every_route_taking_a_model_id_resolves_references(client: TestClient) -> None:
    """A guard for routes added later: each {model_id} goes through the one resolver
    (``ModelIdDep``, whose path parameter is documented as taking name@version)."""
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(path, method, operation) for path, item in paths.items()
                  if "{model_id}" in path for method, operation in item.items()]
    assert len(operations) >= 10
    for path, method, operation in operations:
        [parameter] = [p for p in operation["parameters"] if p["name"] == "model_id"]
        assert parameter.get("description") == MODEL_PATH.description, (method, path)
