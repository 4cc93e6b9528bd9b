"""Intervals, anova tables and vcov through the HTTP API with real fits (SQLite and
PostgreSQL), against R (tests/data/r/inference.R -> tests/data/expected/inference.json).

Tolerances as tests/stats/test_inference.py states them: 1e-6 relative for lm (the same
normal equations in double precision as R's lm); for mixed models issue 4's: bounds within
1% of the coefficient's SE, covariances within 1% of sqrt(v_ii v_jj) (lme4's SEs are
matched to 0.5%; here the fits agree to about 1e-4).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.inference import IntervalRow
from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit
from tests.api.test_tenants import As, rows, tenants  # noqa: F401 - the fixture

CASES: dict[str, dict[str, Any]] = json.loads(
    (DATA / "expected" / "inference.json").read_text())["cases"]


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def fit_case(client: TestClient, name: str) -> dict[str, Any]:
    case = CASES[name]
    response = client.post(f"/v1/datasets?name={name}",
                           content=(DATA / case["dataset"]).read_bytes(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    method = "REML" if case["method"] == "OLS" else case["method"]
    model = fit(client, response.json()["id"], case["formula"], method)
    assert model["status"] == "succeeded", model
    return model


def intervals(client: TestClient, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/models/{model_id}/intervals", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    location = response.headers["location"]
    assert location == f"/v1/models/{model_id}/intervals/{created['id']}"
    read = client.get(f"{location}?wait=5")
    assert read.status_code == 200, read.text
    assert read.json() == created
    return created


def _matrix(rows_: list[list[float | None]]) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in r] for r in rows_], dtype=float)


@pytest.mark.parametrize("name", ["mood_lm_interaction", "sleepstudy_reml", "sleepstudy_ml"])
def test_intervals_vcov_and_anova_are_rs(worker_client: TestClient, name: str) -> None:
    case = CASES[name]
    model = fit_case(worker_client, name)
    lm = case["method"] == "OLS"
    vcov = model["result"]["vcov"]
    assert vcov["terms"] == case["vcov"]["terms"]
    got, want = _matrix(vcov["matrix"]), _matrix(case["vcov"]["matrix"])
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    assert np.all(np.abs(got - want) <= (1e-6 if lm else 1e-2) * scale)
    assert _matrix(vcov["correlation"]) == pytest.approx(
        _matrix(case["vcov_correlation"]["matrix"]), abs=1e-6 if lm else 1e-2)

    se = {fe["term"]: fe["std_error"] for fe in model["result"]["fixed_effects"]}
    for level in ("0.95", "0.8"):
        created = intervals(worker_client, model["id"], {"method": "Wald",
                                                         "level": float(level)})
        assert created["status"] == "succeeded"
        assert created["result"]["method"] == "Wald"
        assert created["result"]["level"] == float(level)
        table = created["result"]["rows"]
        want_rows = case["confint"][level]
        assert [r["parm"] for r in table] == [r["parm"] for r in want_rows]
        for row, ref in zip(table, want_rows, strict=True):
            if ref["lower"] is None:
                assert (row["lower"], row["upper"]) == (None, None)
                continue
            bounds, ref_bounds = (row["lower"], row["upper"]), (ref["lower"], ref["upper"])
            if lm:
                assert bounds == pytest.approx(ref_bounds, rel=1e-6)
            else:
                assert bounds == pytest.approx(ref_bounds, abs=1e-2 * se[row["parm"]])

    if not lm:  # lmerTest's tables: tests/api/test_lmm_anova.py
        return
    for anova_type in ("1", "2", "3"):
        response = worker_client.get(f"/v1/models/{model['id']}/anova?type={anova_type}")
        assert response.status_code == 200, response.text
        table = response.json()
        assert (table["type"], table["ddf"]) == (int(anova_type), None)
        want_rows = case["anova"][anova_type]
        assert [r["term"] for r in table["rows"]] == [r["term"] for r in want_rows]
        for row, ref in zip(table["rows"], want_rows, strict=True):
            for key, value in ref.items():
                if value is None:
                    assert row[key] is None, (row, key)
                elif key != "term":
                    assert row[key] == pytest.approx(value, rel=1e-6, abs=1e-12), (row, key)
    default = worker_client.get(f"/v1/models/{model['id']}/anova").json()
    assert default["type"] == 1  # R's anova(lm) is sequential


def test_refusals_are_problems_naming_the_field(worker_client: TestClient) -> None:
    model = fit_case(worker_client, "mood_lm")
    base = f"/v1/models/{model['id']}/intervals"
    for body, field in [({"level": 1.5}, "level"), ({"level": 0}, "level"),
                        ({"level": "high"}, "level"), ({"method": "bayes"}, "method"),
                        ({"method": "Wald", "colour": 1}, "colour")]:
        problem = assert_problem(worker_client.post(base, json=body), 422)
        assert [e["field"] for e in problem["errors"]] == [field], problem
    for method in ("profile", "boot"):
        problem = assert_problem(worker_client.post(base, json={"method": method}), 422)
        assert problem["errors"][0]["field"] == "method"
        assert "for mixed models" in problem["detail"]
    problem = assert_problem(
        worker_client.get(f"/v1/models/{model['id']}/anova?type=4"), 422)
    assert problem["errors"][0]["field"] == "type"
    assert_problem(worker_client.post("/v1/models/nope/intervals", json={}), 404)
    assert_problem(worker_client.get(f"{base}/nope"), 404)
    assert_problem(worker_client.get("/v1/models/nope/anova"), 404)


def test_a_queued_model_has_no_intervals_yet(client: TestClient, mood_id: str) -> None:
    response = client.post("/v1/models", json={"dataset_id": mood_id,
                                               "formula": "Mood ~ Exercise"})
    model_id = response.json()["id"]  # no worker: it stays queued
    assert_problem(client.post(f"/v1/models/{model_id}/intervals", json={}), 409)
    assert_problem(client.get(f"/v1/models/{model_id}/anova"), 409)


def test_intervals_are_the_tenants_own(tenants: tuple[As, As, As],  # noqa: F811
                                       database_url: str) -> None:
    a, b, admin = tenants
    model_id = a.fit(a.upload(), "Mood ~ Exercise + (1 | State)")
    response = a.post(f"/v1/models/{model_id}/intervals", json={"level": 0.9})
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert a.get(location).json()["status"] == "succeeded"
    # another tenant: the model and its intervals are absent, exactly as unknown ids
    assert_problem(b.get(location), 404)
    assert_problem(b.post(f"/v1/models/{model_id}/intervals", json={}), 404)
    assert_problem(b.get(f"/v1/models/{model_id}/anova"), 404)
    assert admin.get(location).status_code == 200
    # an interval is read through its own model only
    other = b.fit(b.upload(), "Mood ~ Exercise")
    interval_id = location.rsplit("/", 1)[1]
    assert_problem(b.get(f"/v1/models/{other}/intervals/{interval_id}"), 404)
    stored = rows(database_url, lambda s: list(s.scalars(select(IntervalRow))))
    assert [(r.tenant, r.model_id) for r in stored] == [("a", model_id)]
