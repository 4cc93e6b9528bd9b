"""Profile and bootstrap intervals through the HTTP API as jobs (real app, real embedded
worker and warm fit process; SQLite and, with MIXEDFIT_TEST_POSTGRES_URL, PostgreSQL),
against lme4 (tests/data/r/intervals.R -> tests/data/expected/intervals.json).

Tolerances as the statistics core's tests state them (tests/stats/test_profile.py,
tests/stats/test_bootstrap.py): profile bounds within 1e-3 relative of lme4's, bootstrap
bounds within 3 Monte Carlo standard errors of lme4's. The bootstrap job's table is also
exactly the one the statistics core computes in this process with the same seed: the run
is reproducible across processes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from service.stats.bootstrap import (
    bootstrap_intervals,
    parametric_bootstrap,
    percentile_standard_error,
)
from service.stats.design import build_design
from service.stats.formula import parse_formula
from service.stats.lmm import fit_lmm
from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit

REFERENCE: dict[str, Any] = json.loads((DATA / "expected" / "intervals.json").read_text())
FINISHED = ("succeeded", "failed")


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def fit_case(client: TestClient, case: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/datasets", content=(DATA / case["dataset"]).read_bytes(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    model = fit(client, response.json()["id"], case["formula"], case["method"])
    assert model["status"] == "succeeded", model
    return model


def queue(client: TestClient, model_id: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    response = client.post(f"/v1/models/{model_id}/intervals", json=body)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    location = response.headers["location"]
    assert location == f"/v1/models/{model_id}/intervals/{created['id']}"
    assert created["status"] in ("queued", "running") and created["result"] is None
    return location, created


def finished(client: TestClient, location: str) -> dict[str, Any]:
    for _ in range(20):
        read = client.get(f"{location}?wait=10")
        assert read.status_code == 200, read.text
        body: dict[str, Any] = read.json()
        if body["status"] in FINISHED:
            return body
    pytest.fail(f"{location} did not finish")


@pytest.mark.parametrize("name", ["sleepstudy_reml", "penicillin_crossed"])
def test_profile_intervals_are_lme4s(worker_client: TestClient, name: str) -> None:
    case = REFERENCE["profile"][name]
    model = fit_case(worker_client, case)
    location, created = queue(worker_client, model["id"], {"method": "profile"})
    assert (created["method"], created["level"]) == ("profile", 0.95)
    body = finished(worker_client, location)
    assert body["status"] == "succeeded", body
    assert body["error"] is None and body["finished_at"] is not None
    rows = body["result"]["rows"]
    want = case["confint"]["0.95"]
    assert body["progress"] == {"done": len(want), "total": len(want)}  # parameters
    assert [r["parm"] for r in rows] == [r["parm"] for r in want]
    for row, ref in zip(rows, want, strict=True):
        assert row["lower"] == pytest.approx(ref["lower"], rel=1e-3), (row, ref)
        assert row["upper"] == pytest.approx(ref["upper"], rel=1e-3), (row, ref)


def test_bootstrap_intervals_are_lme4s_and_report_progress(worker_client: TestClient) -> None:
    case = REFERENCE["boot"]["sleepstudy_reml"]
    model = fit_case(worker_client, case)
    # nsim left out: the default, 1000, which is the reference's
    location, created = queue(worker_client, model["id"], {"method": "boot", "seed": 1})
    assert (created["nsim"], created["seed"]) == (case["nsim"], case["seed"])
    assert created["progress"] == {"done": 0, "total": case["nsim"]}
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = worker_client.get(location).json()
        seen.append(body["progress"]["done"])
        if body["status"] in FINISHED:
            break
        time.sleep(0.05)
    assert body["status"] == "succeeded", body
    assert body["progress"] == {"done": case["nsim"], "total": case["nsim"]}
    assert seen == sorted(seen)
    assert any(0 < done < case["nsim"] for done in seen), seen  # stored while it ran

    # the job's table is the statistics core's with the same seed ...
    design = build_design(parse_formula(case["formula"]),
                          pd.read_csv(DATA / case["dataset"]))
    sample = parametric_bootstrap(design, fit_lmm(design, "REML"), case["nsim"], case["seed"])
    here = bootstrap_intervals(sample, case["level"]).rows
    rows = body["result"]["rows"]
    assert [r["parm"] for r in rows] == [r["parm"] for r in case["rows"]]
    for j, (row, ref) in enumerate(zip(rows, case["rows"], strict=True)):
        assert (row["lower"], row["upper"]) == pytest.approx((here[j].lower, here[j].upper),
                                                             rel=1e-12)
        # ... and within 3 Monte Carlo SEs of lme4's (tests/stats/test_bootstrap.py)
        values = sample.replicates[:, j]
        for got, want, want_se, p in ((row["lower"], ref["lower"], ref["lower_mc_se"], 0.025),
                                      (row["upper"], ref["upper"], ref["upper_mc_se"], 0.975)):
            se = float(np.hypot(percentile_standard_error(values, p), want_se))
            assert abs(got - want) <= 3.0 * se, (row, ref, se)


def test_a_seed_reproduces_a_bootstrap(worker_client: TestClient) -> None:
    model = fit_case(worker_client, REFERENCE["boot"]["sleepstudy_reml"])
    first_location, first = queue(worker_client, model["id"], {"method": "boot", "nsim": 30,
                                                               "level": 0.9})
    assert first["nsim"] == 30 and isinstance(first["seed"], int)  # the server's choice
    first_body = finished(worker_client, first_location)
    again_location, _ = queue(worker_client, model["id"], {
        "method": "boot", "nsim": 30, "level": 0.9, "seed": first["seed"]})
    again = finished(worker_client, again_location)
    assert first_body["status"] == again["status"] == "succeeded"
    assert again["result"] == first_body["result"]


def test_a_bootstrap_past_its_time_limit_fails_with_a_problem(
        make_client: ClientFactory) -> None:
    # 3 s: ample for the fit, a small part of 10,000 refits
    client = make_client(embedded_worker=True, worker_poll_seconds=0.05,
                         fit_timeout_seconds=3.0)
    model = fit_case(client, REFERENCE["boot"]["sleepstudy_reml"])
    location, _ = queue(client, model["id"], {"method": "boot", "nsim": 10_000, "seed": 2})
    body = finished(client, location)
    assert body["status"] == "failed" and body["result"] is None
    error = body["error"]
    assert error["type"] == "urn:mixedfit:problem:intervals-timeout"
    assert error["status"] == 422
    assert "time limit of 3 seconds" in error["detail"] and "nsim" in error["detail"]
    assert 0 < body["progress"]["done"] < 10_000  # how far it came


def test_refusals_name_the_field(worker_client: TestClient) -> None:
    lm = fit_case(worker_client, {"dataset": "mood.csv", "formula": "Mood ~ Exercise",
                                  "method": "REML"})
    base = f"/v1/models/{lm['id']}/intervals"
    for method in ("profile", "boot"):
        problem = assert_problem(worker_client.post(base, json={"method": method}), 422)
        assert problem["errors"][0]["field"] == "method"
        assert "for mixed models" in problem["detail"]
    lmm = fit_case(worker_client, REFERENCE["profile"]["dyestuff2_singular"])
    problem = assert_problem(worker_client.post(
        f"/v1/models/{lmm['id']}/intervals", json={"method": "boot", "nsim": 10_001}), 422)
    assert [e["field"] for e in problem["errors"]] == ["nsim"]
