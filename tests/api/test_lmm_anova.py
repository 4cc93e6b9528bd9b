"""lmerTest's anova tables and ranova of mixed models through the HTTP API, with real fits
by the real worker and the tables computed in the API's compute children (SQLite and
PostgreSQL), against R (tests/data/r/lmm_anova.R -> tests/data/expected/lmm_anova.json).

Tolerances as tests/stats/test_lmm_anova.py and test_ranova.py state them for this
engine's own optimum: F, sums of squares and df within 1e-2 relative, p-values within
5e-2 relative (1e-8 absolute), since θ̂ differs from lme4's by up to ~1e-3 relative; ranova
log-likelihoods within 1e-6 absolute.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit
from tests.api.test_tenants import As, tenants  # noqa: F401 - the fixture

CASES: dict[str, dict[str, Any]] = json.loads(
    (DATA / "expected" / "lmm_anova.json").read_text())["cases"]


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def fit_case(client: TestClient, name: str, formula: str | None = None) -> dict[str, Any]:
    case = CASES[name]
    assert case["skip_rows"] == 0  # the dataset is uploaded whole
    response = client.post(f"/v1/datasets?name={name}",
                           content=(DATA / case["dataset"]).read_bytes(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    model = fit(client, response.json()["id"], formula or case["formula"], case["method"])
    assert model["status"] == "succeeded", model
    return model


def assert_close_rows(got: list[dict[str, Any]], want: list[dict[str, Any]],
                      relative: tuple[str, ...]) -> None:
    assert [r["term"] for r in got] == [r["term"] for r in want]
    for row, ref in zip(got, want, strict=True):
        for key in relative:
            assert row[key] == pytest.approx(ref[key], rel=1e-2), (row, key)
        assert row["p_value"] == pytest.approx(ref["p_value"], rel=5e-2, abs=1e-8), row


@pytest.mark.parametrize("name", ["sleepstudy_reml", "cake_reml", "sleepstudy_ml"])
def test_anova_tables_are_lmertests(worker_client: TestClient, name: str) -> None:
    case = CASES[name]
    model = fit_case(worker_client, name)
    base = f"/v1/models/{model['id']}/anova"
    for ddf, tables in case["anova"].items():
        for anova_type, want in tables.items():
            response = worker_client.get(f"{base}?type={anova_type}&ddf={ddf}")
            assert response.status_code == 200, response.text
            table = response.json()
            assert (table["model_id"], table["type"], table["ddf"]) == (
                model["id"], int(anova_type), ddf)
            assert_close_rows(table["rows"], want,
                              ("sum_sq", "mean_sq", "num_df", "den_df", "f_value"))
    # lmerTest's defaults: type 3, Satterthwaite
    default = worker_client.get(base).json()
    assert (default["type"], default["ddf"]) == (3, "Satterthwaite")
    assert default["rows"] == worker_client.get(f"{base}?type=3&ddf=Satterthwaite").json()["rows"]


def test_kenward_roger_of_an_ml_fit_is_refused_naming_ddf(worker_client: TestClient) -> None:
    model = fit_case(worker_client, "sleepstudy_ml")
    problem = assert_problem(
        worker_client.get(f"/v1/models/{model['id']}/anova?ddf=Kenward-Roger"), 422)
    assert problem["errors"][0]["field"] == "ddf"
    assert "REML" in problem["detail"]
    problem = assert_problem(
        worker_client.get(f"/v1/models/{model['id']}/anova?ddf=Fisher"), 422)
    assert problem["errors"][0]["field"] == "ddf"


@pytest.mark.parametrize("name", ["sleepstudy_reml", "cake_reml", "sleepstudy_two_terms"])
def test_ranova_is_lmertests(worker_client: TestClient, name: str) -> None:
    case = CASES[name]
    model = fit_case(worker_client, name)
    response = worker_client.get(f"/v1/models/{model['id']}/ranova")
    assert response.status_code == 200, response.text
    table = response.json()
    assert (table["model_id"], table["method"]) == (model["id"], case["method"])
    assert [r["term"] for r in table["rows"]] == [r["term"] for r in case["ranova"]]
    for row, ref in zip(table["rows"], case["ranova"], strict=True):
        assert (row["npar"], row["Df"]) == (ref["npar"], ref["Df"])
        assert row["logLik"] == pytest.approx(ref["logLik"], abs=1e-6)
        assert row["AIC"] == pytest.approx(ref["AIC"], abs=2e-6)
        if ref["LRT"] is None:
            assert (row["LRT"], row["p_value"]) == (None, None)
        else:
            assert row["LRT"] == pytest.approx(ref["LRT"], abs=2e-6)
            assert row["p_value"] == pytest.approx(ref["p_value"], rel=1e-5)


def test_tables_of_a_finished_model_are_cached_as_immutable(worker_client: TestClient) -> None:
    model = fit_case(worker_client, "sleepstudy_reml")
    for path in ("anova?type=1", "anova?ddf=Kenward-Roger", "ranova"):
        url = f"/v1/models/{model['id']}/{path}"
        first = worker_client.get(url)
        assert first.status_code == 200, first.text
        assert "immutable" in first.headers["cache-control"]
        etag = first.headers["etag"]
        again = worker_client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.headers["etag"] == etag
    # each query is its own variant
    assert (worker_client.get(f"/v1/models/{model['id']}/anova?type=1").headers["etag"]
            != worker_client.get(f"/v1/models/{model['id']}/anova?type=2").headers["etag"])


def test_least_squares_and_per_group_fits_are_refused(worker_client: TestClient) -> None:
    response = worker_client.post("/v1/datasets?name=sleepstudy",
                                  content=(DATA / "sleepstudy.csv").read_bytes(),
                                  headers={"Content-Type": "text/csv"})
    dataset_id = response.json()["id"]
    lm = fit(worker_client, dataset_id, "Reaction ~ Days")
    problem = assert_problem(worker_client.get(f"/v1/models/{lm['id']}/ranova"), 422)
    assert "no random effects" in problem["detail"]
    # an lm's anova table is still R's anova.lm, type 1 by default
    table = worker_client.get(f"/v1/models/{lm['id']}/anova").json()
    assert (table["type"], table["ddf"]) == (1, None)
    assert [r["term"] for r in table["rows"]] == ["Days", "Residuals"]
    by_group = fit(worker_client, dataset_id, "Reaction ~ Days | Subject")
    assert by_group["status"] == "succeeded", by_group
    for path in ("anova", "ranova"):
        problem = assert_problem(
            worker_client.get(f"/v1/models/{by_group['id']}/{path}"), 422)
        assert "per-group fit" in problem["detail"]


def test_unfinished_and_unknown_models(client: TestClient, mood_id: str) -> None:
    response = client.post("/v1/models", json={
        "dataset_id": mood_id, "formula": "Mood ~ Exercise + (1 | State)"})
    model_id = response.json()["id"]  # no worker: it stays queued
    for path in ("anova", "ranova"):
        assert_problem(client.get(f"/v1/models/{model_id}/{path}"), 409)
        assert_problem(client.get(f"/v1/models/nope/{path}"), 404)


def test_tables_are_the_tenants_own(tenants: tuple[As, As, As]) -> None:  # noqa: F811
    a, b, _ = tenants
    model_id = a.fit(a.upload(), "Mood ~ Exercise + (1 | State)")
    for path in ("anova", "ranova"):
        assert a.get(f"/v1/models/{model_id}/{path}").status_code == 200
        assert_problem(b.get(f"/v1/models/{model_id}/{path}"), 404)


def test_a_deleted_dataset_leaves_no_rows_to_compute_from(worker_client: TestClient) -> None:
    model = fit_case(worker_client, "sleepstudy_reml")
    assert worker_client.delete(f"/v1/datasets/{model['dataset_id']}").status_code == 204
    for path in ("anova", "ranova"):
        problem = assert_problem(worker_client.get(f"/v1/models/{model['id']}/{path}"), 409)
        assert "deleted" in problem["detail"]
