"""Per-group regressions (R's lmList) through the HTTP API: `y ~ x | g` gives an
lm_by_group model whose result holds one fit per level, with R's numbers; a level too
small to fit is reported, not fatal; each row is predicted by its own level's regression, as
R's predict on an lmList, and a level without a regression is refused by name. The spec's
``pool`` (default true, lme4's) chooses the coefficient tables of summary(lmList(...),
pool = TRUE) or each group's own (tests/data/expected/lmlist_pool.json, mood_lmlist.json).

Tolerance: each level is an ordinary least squares fit, equal to R's lm to 1e-6 relative.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit, fit_spec
from tests.api.test_comparisons import expected, upload

REL = 1e-6


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def test_per_group_model_matches_lmlist(worker_client: TestClient) -> None:
    ref = expected("mood_lmlist")
    mood = upload(worker_client, "mood")
    model = fit_spec(worker_client, {"dataset_id": mood, "formula": ref["formula"],
                                     "pool": False})
    assert model["status"] == "succeeded", model["error"]
    assert model["kind"] == "lm_by_group" and model["pool"] is False
    result = model["result"]
    assert result["fixed_effects"] == []  # no single coefficient vector
    groups = result["groups"]
    assert [g["level"] for g in groups] == list(ref["groups"])
    for group in groups:
        want = ref["groups"][group["level"]]
        assert group["n_obs"] == want["n_obs"] and group["error"] is None
        fixed = {fe["term"]: fe for fe in group["fixed_effects"]}
        assert list(fixed) == list(want["fixef"])
        for term, estimate in want["fixef"].items():
            assert math.isclose(fixed[term]["estimate"], estimate, rel_tol=REL), term
            assert math.isclose(fixed[term]["std_error"], want["fixef_se"][term],
                                rel_tol=REL), term
        assert math.isclose(group["metrics"]["sigma"], want["sigma"], rel_tol=REL)
        assert math.isclose(group["metrics"]["r_squared"], want["r_squared"], rel_tol=REL)
    # the slope flips sign in state C: the example's point
    slopes = {g["level"]: g["fixed_effects"][1]["estimate"] for g in groups}
    assert slopes["C"] < 0 < min(slopes["A"], slopes["B"], slopes["D"])
    assert result["metrics"]["n_obs"] == 200

    rows = [{"Exercise": 1.0, "State": "C"}, {"Exercise": 2.5, "State": "A"},
            {"Exercise": 0.0, "State": "D"}]
    predicted = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                   json={"records": rows})
    assert predicted.status_code == 200, predicted.text
    for row, value in zip(rows, predicted.json()["predictions"], strict=True):
        coef = ref["groups"][row["State"]]["fixef"]
        want = coef["(Intercept)"] + coef["Exercise"] * row["Exercise"]
        assert math.isclose(value, want, rel_tol=REL), row

    unseen = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                json={"records": [{"Exercise": 1.0, "State": "Z"}]})
    assert "State level(s) Z" in assert_problem(unseen, 422)["detail"]


def test_a_level_too_small_to_fit_is_reported(worker_client: TestClient) -> None:
    text = (DATA / "mood.csv").read_text().rstrip("\n") + '\n3.0,"E",4.0\n'
    dataset = upload(worker_client, "mood_plus_one", text.encode())
    model = fit(worker_client, dataset, "Mood ~ Exercise | State")
    assert model["status"] == "succeeded", model["error"]
    groups = {g["level"]: g for g in model["result"]["groups"]}
    assert list(groups) == ["A", "B", "C", "D", "E"]
    small = groups["E"]
    assert small["n_obs"] == 1 and small["error"] and small["metrics"] is None
    assert small["fixed_effects"] == []
    assert all(groups[level]["error"] is None for level in "ABCD")
    # the fitted groups' rows only
    assert model["result"]["metrics"]["n_obs"] == 200
    assert any("E" in message for message in model["result"]["convergence"]["messages"])
    # a level without a regression cannot be predicted: refused, naming the level
    refused = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                 json={"records": [{"Exercise": 1.0, "State": "E"}]})
    assert "State level(s) E" in assert_problem(refused, 422)["detail"]
    # residuals and plots cover the fitted levels only
    residuals = worker_client.get(f"/v1/models/{model['id']}/residuals").json()
    assert len(residuals["rows"]) == 200
    assert {row["State"] for row in residuals["rows"]} == set("ABCD")
    plot = worker_client.get(f"/v1/models/{model['id']}/plots/fitted_lines?format=png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"


@pytest.mark.parametrize("pool", [None, True, False])
def test_pool_option_gives_lme4s_tables(worker_client: TestClient, pool: bool | None) -> None:
    ref = expected("lmlist_pool")["mood"]
    mood = upload(worker_client, "mood")
    spec: dict[str, Any] = {"dataset_id": mood, "formula": "Mood ~ Exercise | State"}
    if pool is not None:
        spec["pool"] = pool
    model = fit_spec(worker_client, spec)
    assert model["status"] == "succeeded", model["error"]
    pooled = pool is not False  # lme4's default
    assert model["pool"] is pooled
    tables = ref["pooled" if pooled else "unpooled"]
    for group in model["result"]["groups"]:
        for fe in group["fixed_effects"]:
            want = tables[group["level"]][fe["term"]]
            assert fe["aliased"] is False
            for name in ("estimate", "std_error", "statistic", "p_value", "conf_low",
                         "conf_high"):
                assert math.isclose(fe[name], want[name], rel_tol=REL), (fe["term"], name)
            if pooled:
                assert fe["df"] == ref["pooled_df"]
    assert math.isclose(model["result"]["metrics"]["sigma"], ref["pooled_sd"], rel_tol=REL)


def test_pool_is_null_for_other_models(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit_spec(worker_client, {"dataset_id": mood, "formula": "Mood ~ Exercise",
                                     "pool": False})
    assert model["status"] == "succeeded", model["error"]
    assert model["pool"] is None


def test_pool_must_be_a_boolean(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    response = worker_client.post("/v1/models", json={
        "dataset_id": mood, "formula": "Mood ~ Exercise | State", "pool": "sometimes"})
    assert_problem(response, 422)
