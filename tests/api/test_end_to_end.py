"""The README's walk-through with a real worker: upload mood.csv, fit, read R's numbers back.

The embedded worker runs in the API process and each fit in a child process, exactly as
``mixedfit serve`` does. Least-squares numbers must equal R's ``lm`` to 1e-6 relative (both
sides solve the same normal equations in double precision; R printed 15 significant digits).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory
from tests.api.fitting import fit

EXPECTED = Path(__file__).resolve().parent.parent / "data" / "expected"
REL = 1e-6


def _close(got: float | None, want: float, rel: float = REL, abs_: float = 0.0) -> bool:
    return got is not None and abs(got - want) <= max(abs_, rel * max(abs(got), abs(want)))


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


@pytest.fixture
def mood(worker_client: TestClient, mood_csv: bytes) -> str:
    response = worker_client.post("/v1/datasets?name=mood", content=mood_csv,
                                  headers={"Content-Type": "text/csv"})
    assert response.status_code == 201
    dataset_id: str = response.json()["id"]
    return dataset_id


def _rows_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.mark.parametrize("case", ["mood_lm", "mood_lm_state"])
def test_least_squares_equals_r(worker_client: TestClient, mood: str, case: str) -> None:
    expected = json.loads((EXPECTED / f"{case}.json").read_text())
    model = fit(worker_client, mood, expected["formula"])
    assert model["status"] == "succeeded", model["error"]
    assert model["kind"] == "lm"
    assert model["started_at"] and model["finished_at"] and model["error"] is None
    result = model["result"]

    fixed = {fe["term"]: fe for fe in result["fixed_effects"]}
    assert list(fixed) == list(expected["fixef"])
    for term, estimate in expected["fixef"].items():
        assert _close(fixed[term]["estimate"], estimate), term
        assert _close(fixed[term]["std_error"], expected["fixef_se"][term]), term
        assert _close(fixed[term]["statistic"], expected["t_value"][term]), term
        # p-values reach 1e-36: compared relative, as R printed them
        assert _close(fixed[term]["p_value"], expected["p_value"][term], 1e-6), term
    metrics = result["metrics"]
    assert metrics["n_obs"] == expected["n_obs"]
    for key in ("r_squared", "adj_r_squared", "sigma", "loglik", "aic", "bic", "rmse"):
        assert _close(metrics[key], expected[key]), key
    assert _close(metrics["df_residual"], expected["df_residual"])

    metrics_text = worker_client.get("/metrics").text
    assert "mixedfit_fit_duration_seconds_count 1.0" in metrics_text
    assert 'mixedfit_jobs{state="succeeded"} 1.0' in metrics_text

    rows = expected["predict_newdata"]["rows"]
    want = expected["predict_newdata"]["fit"]
    url = f"/v1/models/{model['id']}/predictions"
    from_json = worker_client.post(url, json={"records": rows})
    assert from_json.status_code == 200, from_json.text
    assert from_json.json()["model_id"] == model["id"]
    from_csv = worker_client.post(url, content=_rows_csv(rows),
                                  headers={"Content-Type": "text/csv"})
    assert from_csv.status_code == 200, from_csv.text
    for response in (from_json, from_csv):
        got = response.json()["predictions"]
        assert len(got) == len(want)
        assert all(_close(g, w) for g, w in zip(got, want, strict=True)), (got, want)


def test_predictions_survive_the_dataset(worker_client: TestClient, mood: str) -> None:
    model = fit(worker_client, mood, "Mood ~ Exercise + State")
    assert model["status"] == "succeeded", model["error"]
    assert worker_client.delete(f"/v1/datasets/{mood}").status_code == 204
    response = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                  json={"records": [{"Exercise": 0, "State": "A"}]})
    assert response.status_code == 200, response.text
    intercept = model["result"]["fixed_effects"][0]["estimate"]
    assert _close(response.json()["predictions"][0], intercept)


def test_least_squares_models_have_no_random_effects(worker_client: TestClient,
                                                     mood: str) -> None:
    model = fit(worker_client, mood, "Mood ~ Exercise")
    ranef = worker_client.get(f"/v1/models/{model['id']}/random-effects")
    assert ranef.status_code == 200 and ranef.json()["random_effects"] == []
    assert worker_client.get(f"/v1/models/{model['id']}/coefficients").json()[
        "coefficients"] == []


def test_per_group_fits_give_per_level_coefficients(worker_client: TestClient,
                                                    mood: str) -> None:
    expected = json.loads((EXPECTED / "mood_lmlist.json").read_text())
    model = fit(worker_client, mood, expected["formula"])
    assert model["status"] == "succeeded", model["error"]
    coef = worker_client.get(f"/v1/models/{model['id']}/coefficients").json()
    (group,) = coef["coefficients"]
    assert group["group"] == "State"
    assert [level["level"] for level in group["levels"]] == list(expected["groups"])
    for level in group["levels"]:
        want = expected["groups"][level["level"]]["fixef"]
        assert group["terms"] == list(want)
        # separate least-squares fits: R's lmList to 1e-6 relative, as for lm
        assert all(_close(v, want[t]) for t, v in zip(group["terms"], level["values"],
                                                       strict=True)), level


def test_prediction_errors_name_the_problem(worker_client: TestClient, mood: str) -> None:
    model = fit(worker_client, mood, "Mood ~ Exercise + State")
    url = f"/v1/models/{model['id']}/predictions"
    missing = worker_client.post(url, json={"records": [{"Exercise": 1.0}]})
    assert missing.status_code == 422
    assert "State" in missing.json()["detail"]
    unknown = worker_client.post(url, json={"records": [{"Exercise": 1.0, "State": "Z"}]})
    assert unknown.status_code == 422
    assert "Z" in unknown.json()["detail"]


def test_mixed_model_matches_lme4(worker_client: TestClient, mood: str) -> None:
    expected = json.loads((EXPECTED / "mood_lmer_ml.json").read_text())
    model = fit(worker_client, mood, expected["formula"], "ML")
    assert model["status"] == "succeeded", model["error"]
    result = model["result"]
    fixed = {fe["term"]: fe for fe in result["fixed_effects"]}
    for term, estimate in expected["fixef"].items():
        # the optimum is found to the optimizer's tolerance: 1% of a standard error
        assert abs(fixed[term]["estimate"] - estimate) <= 0.01 * expected["fixef_se"][term]
    # the ML log-likelihood at lme4's optimum, to the optimizer's tolerance
    assert math.isclose(result["metrics"]["loglik"], expected["loglik"], abs_tol=2e-4)
    nd = expected["predict_newdata"]
    tol = 1e-3 * expected["sigma"]  # predictions to a thousandth of the residual sd
    url = f"/v1/models/{model['id']}/predictions"
    for rows, key, options in ((nd["rows"], "fit", {}),
                               (nd["rows"], "fit_fixed_only", {"include_random_effects": False}),
                               (nd["rows_unseen"], "fit_unseen", {"new_levels": "population"})):
        response = worker_client.post(url, json={"records": rows, **options})
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        assert all(abs(g - w) <= tol for g, w in zip(got, nd[key], strict=True)), (key, got)
    refused = worker_client.post(url, json={"records": nd["rows_unseen"], "new_levels": "error"})
    assert refused.status_code == 422
    assert "B_unseen" in refused.json()["detail"]

    # ranef(m, condVar = TRUE) and coef(m): the modes move with the optimum, so they are
    # compared to 1% of their conditional standard deviation, the sds to 1% relative
    ranef = worker_client.get(f"/v1/models/{model['id']}/random-effects").json()
    (block,) = ranef["random_effects"]
    assert block["group"] == "State" and block["terms"] == ["(Intercept)", "Exercise"]
    assert [level["level"] for level in block["levels"]] == ["A", "B", "C", "D"]
    for level in block["levels"]:
        want_modes = expected["ranef"]["State"][level["level"]]
        want_sd = expected["ranef_condsd"]["State"][level["level"]]
        for term, mode, sd in zip(block["terms"], level["modes"], level["cond_sd"], strict=True):
            assert abs(mode - want_modes[term]) <= 0.01 * want_sd[term], (level, term)
            assert math.isclose(sd, want_sd[term], rel_tol=0.01), (level, term)
    coef = worker_client.get(f"/v1/models/{model['id']}/coefficients").json()
    (group,) = coef["coefficients"]
    assert group["group"] == "State" and group["terms"] == ["(Intercept)", "Exercise"]
    for level in group["levels"]:
        want = expected["coef"]["State"][level["level"]]
        sds = expected["ranef_condsd"]["State"][level["level"]]
        for term, value in zip(group["terms"], level["values"], strict=True):
            assert abs(value - want[term]) <= 0.01 * sds[term], (level, term)


def test_a_fit_that_fails_carries_a_problem_document(worker_client: TestClient) -> None:
    records = [{"y": 1.0, "x": 1.0, "h": "z"}, {"y": 2.0, "x": 2.0, "h": "z"},
               {"y": 3.5, "x": 3.0, "h": "z"}]
    dataset = worker_client.post("/v1/datasets", json={"records": records}).json()["id"]
    # the columns exist, so the spec is accepted; only the fit finds h has a single level
    model = fit(worker_client, dataset, "y ~ h")
    assert model["status"] == "failed"
    assert model["result"] is None and model["finished_at"]
    error = model["error"]
    assert error["status"] == 422 and error["title"]
    assert "h" in error["detail"] and "level" in error["detail"]
    response = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                  json={"records": records})
    assert response.status_code == 409
    assert "failed" in response.json()["detail"]
