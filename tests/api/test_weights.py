"""Prior weights through the HTTP API: real fits by the real worker, on SQLite and
PostgreSQL, against R (tests/data/r/weights_offsets_contrasts.R; tolerances as
tests/stats/test_weights_offsets_contrasts.py states them).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import fit_spec, wait_for_model
from tests.stats.test_weights_offsets_contrasts import CASES, LM_RTOL, LMER_RTOL, case_data


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def upload(client: TestClient, frame: pd.DataFrame) -> str:
    response = client.post("/v1/datasets?name=weighted", content=frame.to_csv(index=False),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.parametrize("name", ["sleepstudy_lm_weights", "sleepstudy_lmer_weights_ml",
                                  "sleepstudy_lmer_weights"])
def test_weighted_fits_are_rs(worker_client: TestClient, name: str) -> None:
    case = CASES[name]
    spec = {"dataset_id": upload(worker_client, case_data(case["dataset"])),
            "formula": case["formula"], "method": case["method"] or "REML", "weights": "w"}
    model = fit_spec(worker_client, spec)
    assert model["status"] == "succeeded", model
    assert model["weights"] == "w"
    rtol = LM_RTOL if case["kind"] == "lm" else LMER_RTOL
    fixed = model["result"]["fixed_effects"]
    for fe, want in zip(fixed, case["coefficients"], strict=True):
        assert fe["term"] == want["term"]
        assert fe["estimate"] == pytest.approx(want["estimate"], rel=rtol)
        assert fe["std_error"] == pytest.approx(want["std_error"], rel=rtol)
    metrics = model["result"]["metrics"]
    assert metrics["loglik"] == pytest.approx(case["loglik"], abs=1e-6)
    assert metrics["aic"] == pytest.approx(case["aic"], abs=2e-6)
    assert model["result"]["residual_std_dev"] == pytest.approx(case["sigma"], rel=rtol)
    # new rows need no weight: a prediction is the mean, whatever the row's variance
    rows = [{k: v for k, v in row.items() if k != "w"} for row in case["newdata"]]
    response = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                  json={"records": rows})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(case["predictions"], rel=rtol)
    if "anova" in case:
        # lmerTest's table of the weighted model (1e-3 and 1e-2 for the df at our optimum,
        # as tests/stats/test_weights_offsets_contrasts.py); pbkrtest ignores the weights
        table = worker_client.get(f"/v1/models/{model['id']}/anova")
        assert table.status_code == 200, table.text
        row, want = table.json()["rows"][0], case["anova"]["3"][0]
        assert row["f_value"] == pytest.approx(want["f_value"], rel=1e-3)
        assert row["den_df"] == pytest.approx(want["den_df"], rel=1e-2)
        problem = assert_problem(
            worker_client.get(f"/v1/models/{model['id']}/anova?ddf=Kenward-Roger"), 422)
        assert "prior weights" in problem["detail"]


@pytest.mark.parametrize(("column", "detail"), [("nope", "no column 'nope'"),
                                                ("Subject", "categorical")])
def test_a_weights_column_the_data_refuse_is_422_naming_weights(
        client: TestClient, column: str, detail: str) -> None:
    frame = case_data("sleepstudy.csv")
    frame["Subject"] = "s" + frame["Subject"].astype(str)
    spec: dict[str, Any] = {"dataset_id": upload(client, frame), "weights": column,
                            "formula": "Reaction ~ Days + (1 | Subject)"}
    problem = assert_problem(client.post("/v1/models", json=spec), 422)
    assert [e["field"] for e in problem["errors"]] == ["weights"]
    assert detail in problem["errors"][0]["detail"]


def test_negative_weights_fail_the_fit_naming_column_and_rows(
        worker_client: TestClient) -> None:
    frame = case_data("sleepstudy.csv")
    frame.loc[[3, 7], "w"] = -1.0
    spec = {"dataset_id": upload(worker_client, frame), "weights": "w",
            "formula": "Reaction ~ Days + (Days | Subject)"}
    model = fit_spec(worker_client, spec)
    assert model["status"] == "failed"
    assert model["error"]["status"] == 422
    assert "negative weights not allowed" in model["error"]["detail"]
    assert "column 'w'" in model["error"]["detail"] and "rows 4, 8" in model["error"]["detail"]


def test_missing_weights_fail_the_fit_naming_column_and_rows(
        worker_client: TestClient) -> None:
    frame = case_data("sleepstudy.csv")
    frame.loc[[5, 11], "w"] = None
    spec = {"dataset_id": upload(worker_client, frame), "weights": "w",
            "formula": "Reaction ~ Days + (Days | Subject)"}
    model = fit_spec(worker_client, spec)
    assert model["status"] == "failed"
    assert model["error"]["status"] == 422
    assert "missing weights not allowed" in model["error"]["detail"]
    assert "column 'w'" in model["error"]["detail"] and "rows 6, 12" in model["error"]["detail"]


def test_a_comparison_refits_a_weighted_model_with_its_weights(
        worker_client: TestClient) -> None:
    """lme4's anova refits REML fits by ML: a weighted model's refit keeps the weights (an
    unweighted ML fit of the same formula is another model, never reused for it)."""
    dataset = upload(worker_client, case_data("sleepstudy.csv"))
    formula = CASES["sleepstudy_lmer_weights_ml"]["formula"]
    unweighted = fit_spec(worker_client, {"dataset_id": dataset, "formula": formula,
                                          "method": "ML"})
    weighted = [fit_spec(worker_client, {"dataset_id": dataset, "formula": f, "weights": "w"})
                for f in (formula, "Reaction ~ Days + (1 | Subject)")]
    response = worker_client.post("/v1/comparisons",
                                  json={"model_ids": [m["id"] for m in weighted]})
    assert response.status_code == 202, response.text
    refits = response.json()["refits"]
    first = wait_for_model(worker_client, f"/v1/models/{refits[weighted[0]['id']]}", "refit")
    assert first["id"] != unweighted["id"]
    assert (first["method"], first["weights"]) == ("ML", "w")
    assert first["result"]["metrics"]["loglik"] == pytest.approx(
        CASES["sleepstudy_lmer_weights_ml"]["loglik"], abs=1e-6)


def test_export_and_import_keep_contrasts_and_weights(worker_client: TestClient) -> None:
    """The exported document names the model's contrasts and weights; the imported model
    echoes them and predicts the same (offset included)."""
    frame = case_data("sleepstudy.csv")
    frame["Group"] = ["A", "B", "C"] * 60
    spec = {"dataset_id": upload(worker_client, frame), "weights": "w",
            "contrasts": {"Group": "contr.sum"},
            "formula": "Reaction ~ Days + Group + offset(log(Days + 1)) + (1 | Subject)"}
    original = fit_spec(worker_client, spec)
    assert original["status"] == "succeeded", original
    assert [fe["term"] for fe in original["result"]["fixed_effects"]] == [
        "(Intercept)", "Days", "Group1", "Group2"]
    document = worker_client.get(f"/v1/models/{original['id']}/export").json()
    assert (document["model"]["contrasts"], document["model"]["weights"]) == (
        {"Group": "contr.sum"}, "w")
    imported = worker_client.post("/v1/models/import", json=document)
    assert imported.status_code == 201, imported.text
    assert (imported.json()["contrasts"], imported.json()["weights"]) == (
        {"Group": "contr.sum"}, "w")
    rows = {"records": [{"Days": 2.5, "Group": "C", "Subject": 308}]}
    predictions = [worker_client.post(f"/v1/models/{m}/predictions", json=rows).json()
                   for m in (original["id"], imported.json()["id"])]
    assert predictions[0]["predictions"] == predictions[1]["predictions"]
