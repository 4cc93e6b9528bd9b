"""Tenants through the HTTP API with real fits (SQLite and PostgreSQL): each key sees only its
own tenant's datasets, models, comparisons and what is computed from them; another
tenant's ids answer 404 exactly as ids that do not exist (never 403: nothing is confirmed);
every create is stored with the caller's tenant, refits queued by a comparison too; an admin
key sees every tenant's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.models import ComparisonRow, DatasetRow, JobRow, ModelRow
from service.db.session import create_db_engine, make_session_factory
from tests.api.conftest import DATA, ClientFactory, assert_problem, make_settings
from tests.api.fitting import MAX_POLLS
from tests.api.keys import Key, make_key

MOOD = (DATA / "mood.csv").read_bytes()
PREDICT = {"records": [{"Exercise": 2.3, "State": "B"}]}


class As:
    """One client speaking with one key."""

    def __init__(self, client: TestClient, key: Key) -> None:
        self.client, self.key = client, key

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = {**kwargs.pop("headers", {}), **self.key.headers}
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Any:
        return self.request("DELETE", url, **kwargs)

    def upload(self) -> str:
        response = self.post("/v1/datasets?name=mood", content=MOOD,
                             headers={"Content-Type": "text/csv"})
        assert response.status_code == 201, response.text
        dataset_id: str = response.json()["id"]
        return dataset_id

    def fit(self, dataset_id: str, formula: str, method: str = "REML") -> str:
        response = self.post("/v1/models", json={"dataset_id": dataset_id,
                                                 "formula": formula, "method": method})
        assert response.status_code == 202, response.text
        model = self.wait(response.headers["location"])
        assert model["status"] == "succeeded", model
        model_id: str = model["id"]
        return model_id

    def compare(self, model_ids: list[str]) -> dict[str, Any]:
        response = self.post("/v1/comparisons", json={"model_ids": model_ids})
        assert response.status_code == 202, response.text
        return self.wait(response.headers["location"])

    def wait(self, location: str) -> dict[str, Any]:
        """Long-poll a model or comparison until it has finished."""
        for _ in range(MAX_POLLS):
            resource: dict[str, Any] = self.get(f"{location}?wait=5").json()
            if resource["status"] in ("succeeded", "failed"):
                return resource
        pytest.fail(f"{location} did not finish")


def model_routes(model_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that reads a model or what is computed from it."""
    base = f"/v1/models/{model_id}"
    return [
        ("GET", base, {}),
        ("GET", f"{base}?wait=1", {}),
        ("GET", f"{base}/random-effects", {}),
        ("GET", f"{base}/coefficients", {}),
        ("POST", f"{base}/predictions", {"json": PREDICT}),
        ("POST", f"{base}/predictions", {"content": b"Exercise,State\n2.3,B\n",
                                         "headers": {"Content-Type": "text/csv"}}),
        ("GET", f"{base}/residuals", {}),
        ("GET", f"{base}/residuals?group=State&format=csv", {}),
        ("GET", f"{base}/plots", {}),
        ("GET", f"{base}/plots/residuals_vs_fitted?format=png", {}),
        ("GET", f"{base}/plots/caterpillar?format=svg", {}),
        ("GET", f"{base}/signature", {}),
        ("GET", f"{base}/export", {}),
    ]


@pytest.fixture
def tenants(make_client: ClientFactory, database_url: str) -> tuple[As, As, As]:
    """Keys of tenants a and b and an admin key (tenant ops), on an app with a worker."""
    client = make_client(embedded_worker=True, worker_poll_seconds=0.05)
    return (As(client, make_key(database_url, "a")), As(client, make_key(database_url, "b")),
            As(client, make_key(database_url, "ops", admin=True)))


def rows(database_url: str, read: Callable[[Any], Any]) -> Any:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return read(session)
    finally:
        engine.dispose()


def test_each_tenant_sees_only_its_own_resources(tenants: tuple[As, As, As],
                                                 database_url: str) -> None:
    a, b, admin = tenants
    data_a, data_b = a.upload(), b.upload()
    lmm_a = a.fit(data_a, "Mood ~ Exercise + (1 | State)", "ML")
    lm_a = a.fit(data_a, "Mood ~ Exercise")
    lm_b = b.fit(data_b, "Mood ~ Exercise")
    comparison_a = a.compare([lm_a, lmm_a])
    assert comparison_a["status"] == "succeeded", comparison_a

    # the owner reaches everything
    for method, url, kwargs in model_routes(lmm_a):
        assert a.request(method, url, **kwargs).status_code == 200, url
    assert a.get(f"/v1/datasets/{data_a}").status_code == 200
    assert a.get(f"/v1/comparisons/{comparison_a['id']}").status_code == 200

    # another tenant: the same 404 as for ids that do not exist
    missing = "00000000-0000-4000-8000-000000000000"
    for method, url, kwargs in [*model_routes(lmm_a), *model_routes(lm_a)]:
        answer = assert_problem(b.request(method, url, **kwargs), 404)
        absent = assert_problem(b.request(method, url.replace(lmm_a, missing)
                                          .replace(lm_a, missing), **kwargs), 404)
        assert answer["type"] == absent["type"] == "urn:mixedfit:problem:not-found", url
        assert answer["title"] == absent["title"]
    for url in (f"/v1/datasets/{data_a}", f"/v1/comparisons/{comparison_a['id']}",
                f"/v1/comparisons/{comparison_a['id']}?wait=1"):
        assert_problem(b.get(url), 404)
    assert_problem(b.delete(f"/v1/datasets/{data_a}"), 404)
    assert_problem(b.delete(f"/v1/comparisons/{comparison_a['id']}"), 404)
    for method, path, body in [("DELETE", "", None), ("POST", "/cancel", None),
                               ("PATCH", "", {"tags": {"mine": "now"}})]:
        assert_problem(b.request(method, f"/v1/models/{lm_a}{path}", json=body), 404)
    assert a.get(f"/v1/datasets/{data_a}").status_code == 200  # still there
    # nor can another tenant's dataset be fitted, or another tenant's model compared
    assert_problem(b.post("/v1/models", json={"dataset_id": data_a,
                                              "formula": "Mood ~ Exercise"}), 404)
    assert_problem(b.post("/v1/comparisons", json={"model_ids": [lm_b, lm_a]}), 404)
    assert_problem(b.post("/v1/comparisons", json={"model_ids": [lm_a, lmm_a]}), 404)

    # lists show the caller's only, and their totals count the caller's only
    def ids(speaker: As, url: str) -> tuple[set[str], int]:
        page = speaker.get(url).json()
        return {item["id"] for item in page["items"]}, page["total"]

    assert ids(a, "/v1/datasets") == ({data_a}, 1)
    assert ids(b, "/v1/datasets") == ({data_b}, 1)
    assert ids(a, "/v1/models") == ({lmm_a, lm_a}, 2)
    assert ids(b, "/v1/models") == ({lm_b}, 1)
    assert ids(b, f"/v1/models?dataset_id={data_a}") == (set(), 0)
    assert ids(a, "/v1/comparisons") == ({comparison_a["id"]}, 1)
    assert ids(b, "/v1/comparisons") == (set(), 0)

    # an admin key sees every tenant's
    assert ids(admin, "/v1/datasets") == ({data_a, data_b}, 2)
    assert ids(admin, "/v1/models") == ({lmm_a, lm_a, lm_b}, 3)
    for method, url, kwargs in model_routes(lmm_a):
        assert admin.request(method, url, **kwargs).status_code == 200, url
    assert admin.get(f"/v1/comparisons/{comparison_a['id']}").status_code == 200
    assert admin.get(f"/v1/models/{lm_b}/residuals").status_code == 200

    # stored with their tenants, jobs included
    def tenants_of(session: Any) -> dict[str, str | None]:
        found = {}
        for cls in (DatasetRow, ModelRow, ComparisonRow):
            found.update(dict(session.execute(select(cls.id, cls.tenant)).all()))
        found.update({f"job:{target}": tenant for target, tenant in session.execute(
            select(JobRow.target_id, JobRow.tenant))})
        return found

    stored = rows(database_url, tenants_of)
    assert stored == {data_a: "a", data_b: "b", lmm_a: "a", lm_a: "a", lm_b: "b",
                      comparison_a["id"]: "a", f"job:{lmm_a}": "a", f"job:{lm_a}": "a",
                      f"job:{lm_b}": "b"}


def test_deleting_is_for_the_owner(tenants: tuple[As, As, As]) -> None:
    a, b, admin = tenants
    data_a, data_b = a.upload(), b.upload()
    assert_problem(a.delete(f"/v1/datasets/{data_b}"), 404)
    assert a.delete(f"/v1/datasets/{data_a}").status_code == 204
    assert_problem(a.get(f"/v1/datasets/{data_a}"), 404)
    assert b.get(f"/v1/datasets/{data_b}").status_code == 200
    assert admin.delete(f"/v1/datasets/{data_b}").status_code == 204
    assert_problem(b.get(f"/v1/datasets/{data_b}"), 404)


def test_refits_queued_by_a_comparison_are_the_comparisons_tenant(
        tenants: tuple[As, As, As], database_url: str) -> None:
    a, b, _ = tenants
    data_a, data_b = a.upload(), b.upload()
    # b already has the ML fit a's comparison needs: it is not b's to lend
    b_ml = b.fit(data_b, "Mood ~ Exercise + (1 | State)", "ML")
    lm_a = a.fit(data_a, "Mood ~ Exercise")
    reml_a = a.fit(data_a, "Mood ~ Exercise + (1 | State)")
    comparison = a.compare([lm_a, reml_a])
    assert comparison["status"] == "succeeded", comparison
    refit = comparison["refits"][reml_a]
    assert refit != b_ml
    assert a.get(f"/v1/models/{refit}").json()["method"] == "ML"
    assert_problem(b.get(f"/v1/models/{refit}"), 404)
    stored = rows(database_url, lambda session: (
        session.scalar(select(ModelRow.tenant).where(ModelRow.id == refit)),
        session.scalar(select(JobRow.tenant).where(JobRow.target_id == refit))))
    assert stored == ("a", "a")
    # b lists its own models only: not the refit made for a
    assert {item["id"] for item in b.get("/v1/models").json()["items"]} == {b_ml}


def test_resources_of_the_open_mode_are_the_admins(make_client: ClientFactory,
                                                   database_url: str) -> None:
    """What was stored before the first key (tenant NULL) is seen by admin keys only."""
    client = make_client()
    response = client.post("/v1/datasets?name=old", content=MOOD,
                           headers={"Content-Type": "text/csv"})
    old = response.json()["id"]
    a = As(client, make_key(database_url, "a"))
    admin = As(client, make_key(database_url, "ops", admin=True))
    assert_problem(a.get(f"/v1/datasets/{old}"), 404)
    assert a.get("/v1/datasets").json()["total"] == 0
    assert admin.get(f"/v1/datasets/{old}").status_code == 200


def test_a_tenants_single_fit_does_not_wait_behind_anothers_fifty(
        make_client: ClientFactory, database_url: str) -> None:
    """Fifty fits of tenant a are queued before b's one: a real worker fits a's oldest,
    then b's, while a's other 49 still wait."""
    from service.jobs.worker import Worker

    client = make_client()  # no worker in the API: the queue fills first
    a = As(client, make_key(database_url, "a"))
    b = As(client, make_key(database_url, "b"))
    data_a, data_b = a.upload(), b.upload()

    def queue(speaker: As, dataset_id: str) -> str:
        response = speaker.post("/v1/models", json={"dataset_id": dataset_id,
                                                    "formula": "Mood ~ Exercise"})
        assert response.status_code == 202, response.text
        model_id: str = response.json()["id"]
        return model_id

    queued_a = [queue(a, data_a) for _ in range(50)]
    single_b = queue(b, data_b)
    engine = create_db_engine(database_url)
    try:
        worker = Worker(make_settings(database_url), make_session_factory(engine))
        assert worker.run_once() and worker.run_once()
    finally:
        engine.dispose()
    assert b.get(f"/v1/models/{single_b}").json()["status"] == "succeeded"
    statuses = [a.get(f"/v1/models/{model_id}").json()["status"] for model_id in queued_a]
    assert statuses == ["succeeded"] + ["queued"] * 49
