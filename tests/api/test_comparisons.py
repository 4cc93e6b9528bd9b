"""Comparisons through the HTTP API with real fits: R's anova tables reproduced, REML mixed
models refitted by ML first, and every refusal a problem document.

Tolerances: least-squares numbers equal R's lm to 1e-6 relative (the same normal
equations in double precision). Mixed-model ML log-likelihoods are the optimum of the same
smooth profiled deviance as lme4's, and agree with it to about 1e-8 here; 1e-6 absolute
(in log-likelihood, hence AIC, BIC, deviance, and 2e-6 in χ²) leaves room for other BLAS
builds. The p-value then moves by at most 1e-5 relative at χ² ≈ 80 (its log moves by about
χ²/2 per unit) and 1e-5 absolute at χ² ≈ 0.06 (the χ²₁ density there is about 1.5). RMSEs
of mixed models depend on θ itself, which a flat optimum pins only to about 1e-6
relative: 1e-5 relative.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.models.repository import mark_failed
from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import MAX_POLLS, fit

EXPECTED = Path(__file__).resolve().parent.parent / "data" / "expected"


def expected(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXPECTED / f"{name}.json").read_text())
    return loaded


def upload(client: TestClient, name: str, content: bytes | None = None) -> str:
    body = content if content is not None else (DATA / f"{name}.csv").read_bytes()
    response = client.post(f"/v1/datasets?name={name}", content=body,
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def create(client: TestClient, dataset_id: str, formula: str, method: str = "REML") -> str:
    response = client.post("/v1/models", json={"dataset_id": dataset_id, "formula": formula,
                                               "method": method})
    assert response.status_code == 202, response.text
    model_id: str = response.json()["id"]
    return model_id


def compare(client: TestClient, model_ids: list[str]) -> dict[str, Any]:
    """POST a comparison and long-poll it to its end."""
    response = client.post("/v1/comparisons", json={"model_ids": model_ids})
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    comparison: dict[str, Any] = response.json()
    assert location == f"/v1/comparisons/{comparison['id']}"
    for _ in range(MAX_POLLS):
        comparison = client.get(f"{location}?wait=5").json()
        if comparison["status"] in ("succeeded", "failed"):
            return comparison
    pytest.fail(f"comparison still {comparison['status']} after {MAX_POLLS} polls")


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def rows_by_id(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["model_id"]: row for row in comparison["result"]["rows"]}


def test_mood_models_reproduce_anova(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    ids = {case: fit(worker_client, mood, expected(case)["formula"], method)["id"]
           for case, method in (("mood_lm", "REML"), ("mood_lmer_ml", "ML"),
                                ("mood_lm_state", "REML"))}
    ref = expected("compare_mood_models")

    # given larger model first: the table orders by npar, as anova does
    result = compare(worker_client, [ids["mood_lmer_ml"], ids["mood_lm"]])
    assert result["status"] == "succeeded", result["error"]
    assert result["refits"] == {}  # an ML mixed model and an lm are compared as they are
    rows = result["result"]["rows"]
    assert [row["model_id"] for row in rows] == [ids["mood_lm"], ids["mood_lmer_ml"]]
    lm, lmm = rows
    want_lm, want_lmm = ref["table"]
    assert lm["npar"] == want_lm["npar"] and lmm["npar"] == want_lmm["npar"]
    assert lm["chisq"] is None and lm["df"] is None and lm["p_value"] is None
    for key in ("loglik", "aic", "bic", "deviance"):
        assert math.isclose(lm[key], want_lm[key], rel_tol=1e-6), key
        # the mixed model's numbers are its log-likelihood moved by constants
        assert math.isclose(lmm[key], want_lmm[key], abs_tol=2e-6), key
    assert lmm["df"] == want_lmm["df"] == 3
    assert math.isclose(lmm["chisq"], want_lmm["chisq"], abs_tol=2e-6)
    assert math.isclose(lmm["p_value"], want_lmm["p_value"], rel_tol=1e-5)
    assert math.isclose(lm["rmse"], ref["rmse"]["mood_lm"], rel_tol=1e-6)
    assert math.isclose(lmm["rmse"], ref["rmse"]["mood_lmer_ml"], rel_tol=1e-5)
    assert lm["refit_model_id"] is None and lmm["formula"] == expected("mood_lmer_ml")["formula"]
    # a finished comparison is stored: reading it again gives the same document
    assert worker_client.get(f"/v1/comparisons/{result['id']}").json() == result

    assert result["result"]["test"] == "Chisq"  # a mixed model among them: lme4's anova
    assert lm["f_statistic"] is None and lm["res_df"] is None

    # the third model of the example, mood_lm_state, against mood_lm (nested: + State):
    # two least squares fits, so R's anova.lm F test (test_lm_fits_get_rs_f_test)
    state = compare(worker_client, [ids["mood_lm"], ids["mood_lm_state"]])
    assert state["status"] == "succeeded", state["error"]
    assert state["result"]["test"] == "F"
    row = rows_by_id(state)[ids["mood_lm_state"]]
    assert math.isclose(row["rmse"], ref["rmse"]["mood_lm_state"], rel_tol=1e-6)
    assert row["df"] == 3 and row["chisq"] is None

    # equal npar (6 each): the smaller fixed part comes first, as the nesting check says
    tie = compare(worker_client, [ids["mood_lm_state"], ids["mood_lmer_ml"]])
    assert tie["status"] == "succeeded", tie["error"]
    first, second = tie["result"]["rows"]
    assert (first["model_id"], second["model_id"]) == (ids["mood_lmer_ml"], ids["mood_lm_state"])
    assert second["df"] == 0 and second["p_value"] is None  # as anova: no test on 0 df


def check_f_table(comparison: dict[str, Any], want: list[dict[str, Any]],
                  ids: dict[str, str]) -> None:
    """A comparison's F table is R's anova.lm table (least squares: 1e-6 relative)."""
    assert comparison["status"] == "succeeded", comparison["error"]
    assert comparison["result"]["test"] == "F" and comparison["refits"] == {}
    rows = comparison["result"]["rows"]
    assert [row["model_id"] for row in rows] == [ids[w["model"]] for w in want]
    for got, ref in zip(rows, want, strict=True):
        assert got["chisq"] is None and got["refit_model_id"] is None
        assert got["df"] == ref["df"]
        for key, name in (("res_df", "res_df"), ("rss", "rss"), ("sum_of_sq", "sum_of_sq"),
                          ("f_statistic", "f"), ("p_value", "p_value")):
            if ref[name] is None:
                assert got[key] is None, (ref["model"], key)
            else:
                assert math.isclose(got[key], ref[name], rel_tol=1e-6), (ref["model"], key)


def test_lm_fits_get_rs_f_test(worker_client: TestClient) -> None:
    ref = expected("compare_mood_lm_f")  # tests/data/r/compare_lm_f.R
    mood = upload(worker_client, "mood")
    ids = {case: fit(worker_client, mood, formula)["id"]
           for case, formula in ref["formulas"].items()}
    check_f_table(compare(worker_client, [ids["mood_lm"], ids["mood_lm_state"]]),
                  ref["two"], ids)
    # R keeps the order given: the larger model first gives Df -3 and Sum of Sq < 0
    reversed_order = compare(worker_client, [ids["mood_lm_state"], ids["mood_lm"]])
    check_f_table(reversed_order, ref["reversed"], ids)
    three = compare(worker_client, [ids["mood_lm"], ids["mood_lm_state"],
                                    ids["mood_lm_interaction"]])
    check_f_table(three, ref["three"], ids)
    # the likelihood columns are there too, each model's own
    for row, case in zip(three["result"]["rows"], ["mood_lm", "mood_lm_state",
                                                    "mood_lm_interaction"], strict=True):
        assert math.isclose(row["loglik"], ref["loglik"][case], rel_tol=1e-9)
    # an F comparison is stored like any other
    assert worker_client.get(f"/v1/comparisons/{three['id']}").json() == three


def test_reml_fits_are_refitted_by_ml_as_lme4s_anova(worker_client: TestClient) -> None:
    sleep = upload(worker_client, "sleepstudy")
    corr = create(worker_client, sleep, expected("sleepstudy_reml")["formula"])
    uncorr = create(worker_client, sleep, expected("sleepstudy_uncorr")["formula"])
    # posted before the fits finish: the comparison waits for them and for the refits
    response = worker_client.post("/v1/comparisons", json={"model_ids": [corr, uncorr]})
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"id", "model_ids", "refits", "status", "created_at", "finished_at",
                         "error", "result"}
    assert body["status"] == "queued" and body["result"] is None
    assert body["model_ids"] == [corr, uncorr] and set(body["refits"]) == {corr, uncorr}
    for original, refit_id in body["refits"].items():
        refit = worker_client.get(f"/v1/models/{refit_id}").json()
        source = worker_client.get(f"/v1/models/{original}").json()
        assert refit["method"] == "ML" and refit["formula"] == source["formula"]
        assert refit["dataset_id"] == sleep and "ML refit" in refit["name"]

    result = compare(worker_client, [corr, uncorr])
    assert result["status"] == "succeeded", result["error"]
    ref = expected("compare_sleepstudy_corr_vs_uncorr")
    rows = result["result"]["rows"]
    assert [row["model_id"] for row in rows] == [uncorr, corr]
    for got, want, name in zip(rows, ref["table"], ("sleepstudy_uncorr", "sleepstudy_reml"),
                               strict=True):
        assert got["refit_model_id"] == result["refits"][got["model_id"]]
        assert got["npar"] == want["npar"]
        for key in ("loglik", "aic", "bic", "deviance"):
            assert math.isclose(got[key], want[key], abs_tol=2e-6), (name, key)
        # RMSE of the REML fit itself, as the reference reports it
        assert math.isclose(got["rmse"], ref["rmse"][name], rel_tol=1e-5), name
    assert rows[1]["df"] == 1
    assert math.isclose(rows[1]["chisq"], ref["table"][1]["chisq"], abs_tol=2e-6)
    assert math.isclose(rows[1]["p_value"], ref["table"][1]["p_value"], abs_tol=1e-5)

    # comparing again reuses the ML refits instead of fitting the same models twice
    models_before = worker_client.get("/v1/models").json()["total"]
    again = worker_client.post("/v1/comparisons", json={"model_ids": [uncorr, corr]})
    assert again.status_code == 202, again.text
    assert again.json()["refits"] == body["refits"]
    assert worker_client.get("/v1/models").json()["total"] == models_before


def test_models_fitted_to_different_rows_fail_the_comparison(
        worker_client: TestClient) -> None:
    lines = (DATA / "mood.csv").read_text().splitlines()
    # three rows without Exercise: "Mood ~ Exercise" drops them, "Mood ~ 1" does not
    holed = [lines[0]] + [",".join(["", *line.split(",")[1:]]) for line in lines[1:4]] + lines[4:]
    dataset = upload(worker_client, "mood_holes", "\n".join(holed).encode())
    small = fit(worker_client, dataset, "Mood ~ 1")["id"]
    large = fit(worker_client, dataset, "Mood ~ Exercise")["id"]
    result = compare(worker_client, [small, large])
    assert result["status"] == "failed" and result["result"] is None
    assert "different numbers of rows" in result["error"]["detail"]
    assert result["error"]["status"] == 422 and result["finished_at"]


def test_a_failed_member_fails_the_comparison(
        client: TestClient, mood_id: str, session_factory: sessionmaker[Session]) -> None:
    small = create(client, mood_id, "Mood ~ Exercise")
    large = create(client, mood_id, "Mood ~ Exercise + (1 | State)", "ML")
    response = client.post("/v1/comparisons", json={"model_ids": [small, large]})
    assert response.status_code == 202
    location = response.headers["location"]
    waiting = client.get(f"{location}?wait=0.2").json()  # no worker here: nothing runs
    assert waiting["status"] == "queued" and waiting["result"] is None
    with session_factory.begin() as session:
        problem = {"type": "urn:test", "title": "Fit failed", "status": 422,
                   "detail": "the optimizer gave up"}
        mark_failed(session, large, problem)
        mark_failed(session, small, problem)
    failed = client.get(location).json()
    assert failed["status"] == "failed"
    assert small in failed["error"]["detail"] and "optimizer gave up" in failed["error"]["detail"]
    # and a failed model is refused at once in a new comparison
    body = assert_problem(client.post("/v1/comparisons", json={"model_ids": [small, large]}),
                          422)
    assert "failed to fit" in body["detail"]


def test_refusals_are_problem_documents(client: TestClient, mood_id: str,
                                        mood_csv: bytes) -> None:
    lm = create(client, mood_id, "Mood ~ Exercise")
    by_state = create(client, mood_id, "Mood ~ Exercise | State")
    state_only = create(client, mood_id, "Mood ~ State")
    other = create(client, upload(client, "mood2", mood_csv), "Mood ~ Exercise + State")
    log_mood = create(client, mood_id, "log(Mood) ~ Exercise + State")

    def refused(ids: list[str], status: int = 422) -> str:
        body = assert_problem(client.post("/v1/comparisons", json={"model_ids": ids}), status)
        detail: str = body["detail"]
        return detail

    assert "nope" in refused([lm, "nope"], 404)
    assert refused([lm]) and refused([lm, lm]).startswith("Each model can appear once")
    assert "per-group" in refused([lm, by_state])
    assert "different datasets" in refused([lm, other])
    assert "different responses" in refused([lm, log_mood])
    not_nested = refused([lm, state_only])
    assert "not nested" in not_nested and "Exercise" in not_nested
    assert_problem(client.post("/v1/comparisons", json={"ids": [lm, state_only]}), 422)
    assert_problem(client.get("/v1/comparisons/nope"), 404)
    assert_problem(client.get("/v1/comparisons/nope?wait=1"), 404)
    # ids PostgreSQL cannot even compare (NUL in text) are unknown ids, not server errors
    assert_problem(client.get("/v1/comparisons/no%00pe"), 404)
    assert "There is no model" in refused([lm, "no\x00pe"], 404)
    assert client.get("/v1/models").json()["total"] == 5  # no refit queued by a refusal


def test_a_reml_model_whose_dataset_is_gone_cannot_be_refitted(
        client: TestClient, mood_id: str) -> None:
    lm = create(client, mood_id, "Mood ~ Exercise")
    lmm = create(client, mood_id, "Mood ~ Exercise + (1 | State)")
    assert client.delete(f"/v1/datasets/{mood_id}").status_code == 204
    body = assert_problem(client.post("/v1/comparisons", json={"model_ids": [lm, lmm]}), 409)
    assert "refitted by ML" in body["detail"] and body["dataset_id"] == mood_id
