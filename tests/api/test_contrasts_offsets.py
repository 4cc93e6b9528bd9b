"""Contrasts and offsets through the HTTP API: real fits by the real worker, on SQLite and
PostgreSQL, against R (tests/data/r/weights_offsets_contrasts.R ->
tests/data/expected/weights_offsets_contrasts.json).

Tolerances as tests/stats/test_weights_offsets_contrasts.py states them: 1e-8 relative for
least squares, 1e-4 relative for mixed models (lme4's BOBYQA stopping point), 1e-3 for
lmerTest's denominator df.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit_spec
from tests.stats.test_weights_offsets_contrasts import CASES, LM_RTOL, LMER_RTOL


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def upload(client: TestClient, name: str) -> str:
    response = client.post(f"/v1/datasets?name={name}", content=(DATA / name).read_bytes(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fit_case(client: TestClient, name: str) -> dict[str, Any]:
    case = CASES[name]
    spec: dict[str, Any] = {"dataset_id": upload(client, case["dataset"]),
                            "formula": case["formula"], "method": case["method"] or "REML"}
    if case["contrasts"]:
        spec["contrasts"] = case["contrasts"]
    model = fit_spec(client, spec)
    assert model["status"] == "succeeded", model
    return model


def assert_coefficients(model: dict[str, Any], case: dict[str, Any], rtol: float) -> None:
    fixed = model["result"]["fixed_effects"]
    assert [fe["term"] for fe in fixed] == [c["term"] for c in case["coefficients"]]
    for fe, want in zip(fixed, case["coefficients"], strict=True):
        scale = max(abs(want["estimate"]), want["std_error"])
        assert abs(fe["estimate"] - want["estimate"]) <= rtol * scale, fe
        assert fe["std_error"] == pytest.approx(want["std_error"], rel=rtol), fe
    assert model["result"]["metrics"]["loglik"] == pytest.approx(case["loglik"], abs=1e-6)


def predictions(client: TestClient, model: dict[str, Any], case: dict[str, Any],
                **options: Any) -> list[float]:
    records = case["newdata"]  # R's data frame, as jsonlite writes it: one object a row
    response = client.post(f"/v1/models/{model['id']}/predictions",
                           json={"records": records, **options})
    assert response.status_code == 200, response.text
    return [float(p) for p in response.json()["predictions"]]


def test_a_sum_and_poly_coded_mixed_model(worker_client: TestClient) -> None:
    case = CASES["cake_lmer_sum_poly"]
    model = fit_case(worker_client, "cake_lmer_sum_poly")
    assert model["contrasts"] == case["contrasts"]
    assert worker_client.get(f"/v1/models/{model['id']}").json()["contrasts"] == \
        case["contrasts"]
    assert_coefficients(model, case, LMER_RTOL)
    assert predictions(worker_client, model, case) == pytest.approx(case["predictions"],
                                                                    rel=LMER_RTOL)
    for anova_type in ("1", "3"):
        table = worker_client.get(f"/v1/models/{model['id']}/anova?type={anova_type}")
        assert table.status_code == 200, table.text
        rows = table.json()["rows"]
        want = case["anova"][anova_type]
        assert [r["term"] for r in rows] == [w["term"] for w in want]
        for row, ref in zip(rows, want, strict=True):
            assert row["f_value"] == pytest.approx(ref["f_value"], rel=LMER_RTOL)
            assert row["den_df"] == pytest.approx(ref["den_df"], rel=1e-3)


def test_a_helmert_coded_lm(worker_client: TestClient) -> None:
    case = CASES["cake_lm_helmert"]
    model = fit_case(worker_client, "cake_lm_helmert")
    assert_coefficients(model, case, LM_RTOL)
    assert predictions(worker_client, model, case) == pytest.approx(case["predictions"],
                                                                    rel=LM_RTOL)


@pytest.mark.parametrize("name", ["sleepstudy_lm_offset_log", "sleepstudy_lmer_offset"])
def test_offsets_are_fitted_and_added_to_predictions(worker_client: TestClient,
                                                     name: str) -> None:
    case = CASES[name]
    model = fit_case(worker_client, name)
    assert model["contrasts"] is None
    rtol = LM_RTOL if case["kind"] == "lm" else LMER_RTOL
    assert_coefficients(model, case, rtol)
    assert predictions(worker_client, model, case) == pytest.approx(case["predictions"],
                                                                    rel=rtol)
    if "population_predictions" in case:
        assert predictions(worker_client, model, case, include_random_effects=False) == \
            pytest.approx(case["population_predictions"], rel=rtol)


def test_per_group_fits_with_contrasts(worker_client: TestClient) -> None:
    case = CASES["cake_lmlist_sum"]
    spec = {"dataset_id": upload(worker_client, case["dataset"]),
            "formula": case["formula"], "contrasts": case["contrasts"]}
    model = fit_spec(worker_client, spec)
    assert model["status"] == "succeeded", model
    groups = {g["level"]: g for g in model["result"]["groups"]}
    for want in case["groups"]:
        ours = groups[want["level"]]["fixed_effects"]
        assert [fe["term"] for fe in ours] == want["terms"]
        assert [fe["estimate"] for fe in ours] == pytest.approx(want["estimates"],
                                                                rel=LM_RTOL, abs=1e-10)


@pytest.mark.parametrize(("contrasts", "field", "detail"), [
    ({"temp": "contr.sum"}, "contrasts.temp", "numeric"),
    ({"replicate": "contr.sum"}, "contrasts.replicate", "grouping factor"),
    ({"nope": "contr.sum"}, "contrasts.nope", "no column"),
])
def test_contrasts_the_data_refuse_are_422_naming_the_field(
        client: TestClient, contrasts: dict[str, str], field: str, detail: str) -> None:
    spec = {"dataset_id": upload(client, "cake.csv"), "contrasts": contrasts,
            "formula": "angle ~ recipe + temp + (1 | replicate)"}
    problem = assert_problem(client.post("/v1/models", json=spec), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert detail in problem["errors"][0]["detail"]


def test_an_unknown_coding_is_422_naming_the_field(client: TestClient) -> None:
    spec = {"dataset_id": upload(client, "cake.csv"), "formula": "angle ~ recipe",
            "contrasts": {"recipe": "contr.bogus"}}
    problem = assert_problem(client.post("/v1/models", json=spec), 422)
    assert problem["errors"][0]["field"] == "contrasts.recipe"
    assert "contr.sum" in problem["errors"][0]["detail"]
