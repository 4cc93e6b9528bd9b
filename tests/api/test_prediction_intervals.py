"""Prediction intervals, partial random effects and the covariances through the real app
and worker (SQLite and, with MIXEDFIT_TEST_POSTGRES_URL, PostgreSQL), against R's numbers
(tests/data/r/prediction_intervals.R); tolerances as tests/stats/test_prediction_intervals.py
explains: 1e-10 relative for lm, 2e-4 for variance-made mixed-model numbers (se_fit,
VarCorr, postVar), 1e-5 for mixed-model predictions and bounds."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit

PARQUET = "application/vnd.apache.parquet"
REFERENCE: dict[str, Any] = json.loads(
    (DATA / "expected" / "prediction_intervals.json").read_text())
COLUMNS = ("se_fit", "lower", "upper")


def _model(client: TestClient, dataset: str, formula: str) -> str:
    stored = client.post("/v1/datasets", content=(DATA / dataset).read_bytes(),
                         headers={"Content-Type": "text/csv"}).json()
    fitted = fit(client, stored["id"], formula)
    assert fitted["status"] == "succeeded", fitted
    return str(fitted["id"])


@pytest.fixture
def app(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _answers(client: TestClient, url: str, rows: list[dict[str, Any]],
             options: dict[str, Any]) -> dict[str, dict[str, list[float | None]]]:
    """The same rows and options as JSON records and columns, CSV and Parquet bodies
    (options in the query), each answered as JSON, CSV and Parquet: by name, the columns
    prediction, se_fit, lower, upper."""
    names = list(rows[0])
    columns = {name: [row[name] for row in rows] for name in names}
    csv = ",".join(names) + "\n" + "".join(",".join(str(row[n]) for n in names) + "\n"
                                           for row in rows)
    query = {k: v for k, v in options.items() if k != "random_effects"}
    query_list = [(k, str(v)) for k, v in query.items()]
    if "random_effects" in options:  # an empty value alone names none
        query_list += [("random_effects", g) for g in options["random_effects"] or [""]]
    bodies: dict[str, dict[str, Any]] = {
        "records": {"json": {"records": rows, **options}},
        "columns": {"json": {"columns": columns, **options}},
        "csv": {"content": csv.encode(), "headers": {"Content-Type": "text/csv"},
                "params": query_list},
        "parquet": {"content": _parquet(pa.table(columns)),
                    "headers": {"Content-Type": PARQUET}, "params": query_list},
    }
    out = {}
    for name, body in bodies.items():
        for accept in ("application/json", "text/csv", PARQUET):
            headers = {**body.get("headers", {}), "Accept": accept}
            response = client.post(url, **{**body, "headers": headers})
            assert response.status_code == 200, (name, accept, response.text)
            out[f"{name} -> {accept}"] = _read(response, accept)
    return out


def _read(response: Any, accept: str) -> dict[str, list[float | None]]:
    if accept == "text/csv":
        lines = response.text.splitlines()
        header = lines[0].split(",")
        values = [[float(v) if v else None for v in line.split(",")] for line in lines[1:]]
        return {name: [row[j] for row in values] for j, name in enumerate(header)}
    if accept == PARQUET:
        return pq.read_table(io.BytesIO(response.content)).to_pydict()
    document = response.json()
    columns = {"prediction": document["predictions"]}
    columns.update({name: document[name] for name in COLUMNS if name in document})
    return columns


def _same_everywhere(answers: dict[str, dict[str, list[float | None]]]
                     ) -> dict[str, list[float | None]]:
    first = next(iter(answers.values()))
    assert set(first) == {"prediction", *COLUMNS}
    for name, answer in answers.items():
        assert answer == first, name
    return first


@pytest.mark.parametrize("key", ["confidence 0.9", "prediction 0.95"])
def test_lm_intervals_in_every_format_are_predict_lm(app: TestClient, key: str) -> None:
    want = REFERENCE["lm"]["mood_lm"]
    url = f"/v1/models/{_model(app, 'mood.csv', 'Mood ~ Exercise * State')}/predictions"
    interval, level = key.split()
    got = _same_everywhere(_answers(app, url, want["newdata"],
                                    {"interval": interval, "level": float(level)}))
    assert got["prediction"] == pytest.approx(want[key]["fit"], rel=1e-10)
    for name in COLUMNS:
        assert got[name] == pytest.approx(want[key][name], rel=1e-10), name


def test_per_group_intervals_use_each_groups_lm(app: TestClient) -> None:
    want = REFERENCE["lm"]["sleepstudy_lmlist"]
    url = f"/v1/models/{_model(app, 'sleepstudy.csv', 'Reaction ~ Days | Subject')}/predictions"
    for key in ("confidence 0.95", "prediction 0.9"):
        interval, level = key.split()
        answer = app.post(url, json={"records": want["newdata"], "interval": interval,
                                     "level": float(level)}).json()
        assert answer["interval"] == interval and answer["level"] == float(level)
        for name in COLUMNS:
            assert answer[name] == pytest.approx(want[key][name], rel=1e-10), name


@pytest.mark.parametrize(("selection", "key"), [("all", "prediction 0.95"),
                                                ("plate", "confidence 0.9"),
                                                ("sample", "prediction 0.9"),
                                                ("population", "confidence 0.95")])
def test_crossed_model_partial_random_effects(app: TestClient, selection: str,
                                              key: str) -> None:
    case = REFERENCE["mixed"]["penicillin_crossed"]
    expected = case["intervals"][selection]
    url = f"/v1/models/{_model(app, 'penicillin.csv', case['formula'])}/predictions"
    interval, level = key.split()
    got = _same_everywhere(_answers(app, url, expected["newdata"], {
        "interval": interval, "level": float(level),
        "random_effects": list(expected["included"])}))
    assert got["prediction"] == pytest.approx(expected["fit"], rel=1e-5)
    assert got["se_fit"] == pytest.approx(expected["se_fit"], rel=2e-4)
    assert got["lower"] == pytest.approx(expected[key]["lower"], rel=1e-5)
    assert got["upper"] == pytest.approx(expected[key]["upper"], rel=1e-5)
    # without an interval the answer is the prediction alone, R's predict(re.form = ...)
    plain = app.post(url, json={"records": expected["newdata"],
                                "random_effects": list(expected["included"])}).json()
    assert set(plain) == {"model_id", "predictions"}
    assert plain["predictions"] == got["prediction"]


def test_sleepstudy_intervals_and_covariances(app: TestClient) -> None:
    case = REFERENCE["mixed"]["sleepstudy_reml"]
    model_id = _model(app, "sleepstudy.csv", case["formula"])
    expected = case["intervals"]["all"]
    answer = app.post(f"/v1/models/{model_id}/predictions", json={
        "records": expected["newdata"], "interval": "prediction", "level": 0.9}).json()
    assert answer["se_fit"] == pytest.approx(expected["se_fit"], rel=2e-4)
    assert answer["lower"] == pytest.approx(expected["prediction 0.9"]["lower"], rel=1e-5)
    population = case["intervals"]["population"]
    answer = app.post(f"/v1/models/{model_id}/predictions", json={
        "records": population["newdata"], "interval": "confidence",
        "include_random_effects": False}).json()
    assert answer["upper"] == pytest.approx(population["confidence 0.95"]["upper"], rel=1e-5)

    result = app.get(f"/v1/models/{model_id}").json()["result"]
    for got_row, want_row in zip(result["vcov"]["correlation"], case["vcov_correlation"],
                                 strict=True):
        assert got_row == pytest.approx(want_row, abs=1e-5)
    varcorr = {(r["var1"], r["var2"]): r["vcov"] for r in case["varcorr"]}
    covariance = result["random_effects"][0]["covariance"]
    assert covariance[0][1] == covariance[1][0] == pytest.approx(
        varcorr[("(Intercept)", "Days")], rel=2e-4)
    assert covariance[1][1] == pytest.approx(varcorr[("Days", None)], rel=2e-4)

    effects = app.get(f"/v1/models/{model_id}/random-effects").json()["random_effects"]
    cond = case["cond_var"][0]
    assert [level["level"] for level in effects[0]["levels"]] == cond["levels"]
    for level, want in zip(effects[0]["levels"], cond["cond_cov"], strict=True):
        for got_row, want_row in zip(level["cond_cov"], want, strict=True):
            assert got_row == pytest.approx(want_row, rel=2e-4)
        assert level["cond_sd"] == pytest.approx(
            [level["cond_cov"][0][0] ** 0.5, level["cond_cov"][1][1] ** 0.5], rel=1e-12)


def test_refusals(app: TestClient) -> None:
    model_id = _model(app, "penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)")
    url = f"/v1/models/{model_id}/predictions"
    rows = [{"plate": "a", "sample": "A"}]
    problem = assert_problem(app.post(url, json={"records": rows,
                                                 "random_effects": ["Plate"]}), 422)
    assert "plate, sample" in problem["detail"]
    assert_problem(app.post(url, json={"records": rows, "random_effects": ["plate"],
                                       "include_random_effects": False}), 422)
    assert_problem(app.post(url, json={"records": rows, "interval": "wide"}), 422)
    assert_problem(app.post(url, json={"records": rows, "interval": "confidence",
                                       "level": 1.5}), 422)
    assert_problem(app.post(url, content=b"plate,sample\na,A\n",
                            headers={"Content-Type": "text/csv"},
                            params={"interval": "confidence", "level": 0}), 422)
    dataset_id = app.get(f"/v1/models/{model_id}").json()["dataset_id"]
    problem = assert_problem(app.post(url, json={"dataset_id": dataset_id,
                                                 "interval": "prediction"}), 422)
    assert "batch prediction" in problem["detail"] and "interval" in problem["detail"]
    problem = assert_problem(app.post(url, json={"dataset_id": dataset_id,
                                                 "random_effects": []}), 422)
    assert "random_effects" in problem["detail"]


def test_an_imported_model_gives_the_same_intervals(app: TestClient) -> None:
    case = REFERENCE["mixed"]["sleepstudy_reml"]
    model_id = _model(app, "sleepstudy.csv", case["formula"])
    document = app.get(f"/v1/models/{model_id}/export").json()
    imported = app.post("/v1/models/import", json=document)
    assert imported.status_code == 201, imported.text
    body = {"records": case["intervals"]["all"]["newdata"], "interval": "prediction"}
    here = app.post(f"/v1/models/{model_id}/predictions", json=body).json()
    there = app.post(f"/v1/models/{imported.json()['id']}/predictions", json=body).json()
    assert {k: v for k, v in there.items() if k != "model_id"} == {
        k: v for k, v in here.items() if k != "model_id"}
    effects = app.get(f"/v1/models/{imported.json()['id']}/random-effects").json()
    assert effects["random_effects"][0]["levels"][0]["cond_cov"] is not None


def test_the_left_out_groups_columns_may_be_absent(app: TestClient) -> None:
    case = REFERENCE["mixed"]["penicillin_crossed"]
    url = f"/v1/models/{_model(app, 'penicillin.csv', case['formula'])}/predictions"
    rows = case["intervals"]["plate"]["newdata"]
    body = {"interval": "prediction", "random_effects": ["plate"]}
    both = app.post(url, json={"records": rows, **body}).json()
    plate_only = app.post(url, json={"records": [{"plate": r["plate"]} for r in rows],
                                     **body}).json()
    assert plate_only == both
    # the included factor's column is still needed
    problem = assert_problem(app.post(url, json={
        "records": [{"sample": r["sample"]} for r in rows], **body}), 422)
    assert "plate" in problem["detail"]


def test_a_per_group_model_has_no_random_effects_to_choose(app: TestClient) -> None:
    url = f"/v1/models/{_model(app, 'sleepstudy.csv', 'Reaction ~ Days | Subject')}/predictions"
    rows = [{"Days": 1, "Subject": "308"}]
    assert app.post(url, json={"records": rows, "random_effects": []}).status_code == 200
    assert_problem(app.post(url, json={"records": rows, "random_effects": ["Subject"]}), 422)
