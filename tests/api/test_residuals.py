"""Residuals of stored models through the HTTP API, as JSON and CSV, against R.

Tolerances: least-squares fitted values, the Breusch-Pagan test and residual SDs equal
R's (lm, lmtest::bptest, sd) to 1e-6 relative: the same least squares in double
precision. Mixed-model fitted values include conditional modes found by an optimizer and
match lme4's to 1e-5 relative (as the statistics tests).
"""

from __future__ import annotations

import csv
import io
import math

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit
from tests.api.test_comparisons import create, expected, upload
from tests.stats.test_diagnostics import R_BPTEST, R_RESID_SD_BY_STATE

REL = 1e-6


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def close(got: float, want: float, rel: float = REL) -> bool:
    return math.isclose(got, want, rel_tol=rel)


def test_lm_residuals_by_an_outside_group_match_r(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit(worker_client, mood, "Mood ~ Exercise")
    url = f"/v1/models/{model['id']}/residuals"
    response = worker_client.get(f"{url}?group=State")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == model["id"] and body["kind"] == "lm"
    assert body["group_columns"] == ["State"]
    rows = body["rows"]
    want_fitted = expected("mood_lm")["fitted"]
    assert [r["row"] for r in rows] == list(range(1, 201))  # R's row names
    assert all(close(r["fitted"], w) for r, w in zip(rows, want_fitted, strict=True))
    assert all(set(r) == {"row", "fitted", "residual", "std_residual", "State"} for r in rows)
    assert rows[0]["State"] == "B"
    statistic, df, p_value = R_BPTEST[("mood.csv", "Mood", "Exercise", None)]
    bp = body["summary"]["breusch_pagan"]
    assert bp["df"] == df and close(bp["statistic"], statistic) and close(bp["p_value"], p_value)
    spread = {s["level"]: s for s in body["summary"]["spread"]}
    assert list(spread) == ["A", "B", "C", "D"]
    assert all(close(spread[k]["residual_sd"], v) for k, v in R_RESID_SD_BY_STATE.items())
    assert sum(s["n_obs"] for s in spread.values()) == 200

    # CSV by query parameter or by Accept header: the same table
    for response in (worker_client.get(f"{url}?group=State&format=csv"),
                     worker_client.get(f"{url}?group=State",
                                       headers={"Accept": "text/csv"})):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(response.text)))
        assert list(table[0]) == ["row", "fitted", "residual", "std_residual", "State"]
        assert len(table) == 200
        for line, row in zip(table, rows, strict=True):
            assert int(line["row"]) == row["row"] and line["State"] == row["State"]
            assert close(float(line["residual"]), row["residual"], 1e-12)

    # without the outside group: no grouping columns, no spread; the test stays
    plain = worker_client.get(url).json()
    assert plain["group_columns"] == [] and plain["summary"]["spread"] == []
    assert plain["summary"]["breusch_pagan"] == bp
    unknown = assert_problem(worker_client.get(f"{url}?group=Nope"), 422)
    assert "Nope" in unknown["detail"]


def test_mixed_and_per_group_residuals(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    ref = expected("mood_lmer_ml")
    lmm = fit(worker_client, mood, ref["formula"], "ML")
    body = worker_client.get(f"/v1/models/{lmm['id']}/residuals").json()
    assert body["kind"] == "lmm" and body["group_columns"] == ["State"]
    assert all(close(r["fitted"], w, 1e-5)
               for r, w in zip(body["rows"], ref["fitted"], strict=True))
    sigma = lmm["result"]["residual_std_dev"]
    assert all(close(r["std_residual"], r["residual"] / sigma, 1e-9) for r in body["rows"])
    assert body["summary"]["breusch_pagan"] is None
    spread = body["summary"]["spread"]
    assert [(s["group"], s["level"]) for s in spread] == [("State", s) for s in "ABCD"]
    rmse = math.sqrt(sum(r["residual"] ** 2 for r in body["rows"]) / len(body["rows"]))
    assert close(rmse, ref["rmse"], 1e-5)

    by_group = fit(worker_client, mood, "Mood ~ Exercise | State")
    grouped = worker_client.get(f"/v1/models/{by_group['id']}/residuals").json()
    assert grouped["kind"] == "lm_by_group" and grouped["group_columns"] == ["State"]
    assert len(grouped["rows"]) == 200
    # each state's own regression: residuals in a state sum to zero
    for level in "ABCD":
        total = sum(r["residual"] for r in grouped["rows"] if r["State"] == level)
        assert abs(total) < 1e-9


def test_residuals_need_a_fit_and_its_dataset(make_client: ClientFactory) -> None:
    client = make_client()  # no worker: models stay queued
    mood = upload(client, "mood")
    queued = create(client, mood, "Mood ~ Exercise")
    body = assert_problem(client.get(f"/v1/models/{queued}/residuals"), 409)
    assert body["model_status"] == "queued"
    assert_problem(client.get("/v1/models/nope/residuals"), 404)
    assert_problem(client.get(f"/v1/models/{queued}/residuals?format=xml"), 422)

    worker = make_client(embedded_worker=True, worker_poll_seconds=0.05)
    model = fit(worker, mood, "Mood ~ Exercise")
    assert worker.delete(f"/v1/datasets/{mood}").status_code == 204
    gone = assert_problem(worker.get(f"/v1/models/{model['id']}/residuals"), 409)
    assert gone["type"].endswith("dataset-deleted") and gone["dataset_id"] == mood
    assert "deleted" in gone["detail"]


def test_residual_rows_are_numbered_as_r_numbers_them(worker_client: TestClient) -> None:
    # R: names(residuals(lm(Mood ~ Exercise, holed))) with Exercise missing in rows 2 and 5
    # (tests/data/r/missing_groups.R): 1, 3, 4, 6, ...
    ref = expected("missing_groups")
    lines = (DATA / "mood.csv").read_text().splitlines()
    for row in ref["dropped_rows"]:
        lines[row] = ",".join(["", *lines[row].split(",")[1:]])  # line `row` is data row `row`
    dataset = upload(worker_client, "mood_holes", ("\n".join(lines) + "\n").encode())
    model = fit(worker_client, dataset, "Mood ~ Exercise")
    url = f"/v1/models/{model['id']}/residuals"
    rows = worker_client.get(url).json()["rows"]
    assert len(rows) == ref["n_residuals"]
    assert [r["row"] for r in rows[:6]] == ref["residual_names"]
    table = list(csv.DictReader(io.StringIO(worker_client.get(f"{url}?format=csv").text)))
    assert [int(line["row"]) for line in table[:6]] == ref["residual_names"]
