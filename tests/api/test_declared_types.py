"""Column types as R gives them, through the HTTP API: which CSV cells are logical (R 4.2.2's
``type.convert``), and columns declared categorical at upload (``?categorical=``, the JSON
``categorical`` member) fitted and predicted with R's level names.

The reference numbers are R's (``tests/data/r/declared_types.R`` wrote
``tests/data/expected/declared_types.json``); least squares estimates agree to 1e-9.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import get_dataset
from tests.api.conftest import DATA, ClientFactory, assert_problem

R = json.loads((DATA / "expected" / "declared_types.json").read_text())
DECLARED_CSV = (DATA / "declared.csv").read_bytes()


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def _upload_csv(client: TestClient, data: bytes, query: str = "") -> Any:
    return client.post(f"/v1/datasets{query}", content=data,
                       headers={"Content-Type": "text/csv"})


def _dataset(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _dtypes(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["dtype"] for c in body["columns"]}


def _fit(client: TestClient, dataset_id: str, formula: str) -> dict[str, Any]:
    response = client.post("/v1/models", json={"dataset_id": dataset_id, "formula": formula})
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    for _ in range(30):
        model: dict[str, Any] = client.get(f"{location}?wait=5").json()
        if model["status"] in ("succeeded", "failed"):
            assert model["status"] == "succeeded", model["error"]
            return model
    pytest.fail(f"{formula} did not finish")


def _estimates(model: dict[str, Any]) -> dict[str, float]:
    return {fe["term"]: fe["estimate"] for fe in model["result"]["fixed_effects"]}


def _assert_coefficients(model: dict[str, Any], expected: dict[str, float]) -> None:
    got = _estimates(model)
    assert list(got) == list(expected)  # R's names, in R's order
    for term, value in expected.items():
        assert math.isclose(got[term], value, rel_tol=1e-9, abs_tol=1e-9), term


def _stored(session_factory: sessionmaker[Session], dataset_id: str) -> pd.DataFrame:
    with session_factory() as session:
        row = get_dataset(session, dataset_id, with_content=True)
        assert row is not None
        return pd.read_parquet(io.BytesIO(row.content))


def _values(series: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in series.tolist()]


@pytest.mark.parametrize("spelling", list(R["logical_class"]))
def test_only_rs_logical_spellings_make_a_logical_column(client: TestClient,
                                                         spelling: str) -> None:
    body = _dataset(_upload_csv(client, f"x,y\n{spelling},1\n{spelling},2\nNA,3\n".encode()))
    want = "boolean" if R["logical_class"][spelling] == "logical" else "categorical"
    assert _dtypes(body)["x"] == want
    assert body["columns"][0]["n_missing"] == 1


def test_true_false_text_is_a_factor_and_json_booleans_stay_logical(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    mixed = b"a,b,c,d\nTrue,TRUE,T,true\nFalse,FALSE,F,false\nTrue,NA,T,\n"
    body = _dataset(_upload_csv(client, mixed))
    assert _dtypes(body) == {"a": "categorical", "b": "boolean", "c": "boolean",
                             "d": "categorical"}
    stored = _stored(session_factory, body["id"])
    assert stored["a"].tolist() == ["True", "False", "True"]  # the text, as R keeps it
    assert stored["c"].tolist() == [True, False, True]

    records = [{"ok": True, "text": "True"}, {"ok": False, "text": "False"}, {"ok": None}]
    assert _dtypes(_dataset(client.post("/v1/datasets", json={"records": records}))) == {
        "ok": "boolean", "text": "categorical"}


def test_a_true_false_column_gets_rs_term_flagTrue(worker_client: TestClient) -> None:
    dataset = _dataset(_upload_csv(worker_client, DECLARED_CSV))
    assert _dtypes(dataset)["flag"] == "categorical"
    assert R["flag_levels"] == ["False", "True"]
    _assert_coefficients(_fit(worker_client, dataset["id"], "y ~ flag"), R["flag_coef"])


def test_csv_columns_declared_categorical_are_rs_colclasses_factor(
        worker_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    plain = _dataset(_upload_csv(worker_client, DECLARED_CSV))
    assert _dtypes(plain)["service"] == "numeric" and _dtypes(plain)["code"] == "numeric"

    for query in ("?categorical=service,code", "?categorical=service&categorical=code",
                  "?categorical=service,%20code"):
        dataset = _dataset(_upload_csv(worker_client, DECLARED_CSV, query))
        assert _dtypes(dataset) == {"y": "numeric", "flag": "categorical",
                                    "service": "categorical", "code": "categorical"}
    stored = _stored(session_factory, dataset["id"])
    # the cells as written: "007" stays "007" (R's levels 007, 10, 9)
    assert sorted(set(stored["code"])) == R["declared_levels"]["code"]
    assert sorted(set(stored["service"])) == R["declared_levels"]["service"]

    model = _fit(worker_client, dataset["id"], "y ~ service + code")
    _assert_coefficients(model, R["service_coef"])

    # predictions read the categorical columns as their levels: a CSV cell as written, a
    # JSON number as R writes it
    coef = R["service_coef"]
    want = [coef["(Intercept)"] + coef["service1"], coef["(Intercept)"] + coef["code9"]]
    location = f"/v1/models/{model['id']}/predictions"
    csv = worker_client.post(location, content=b"service,code\n1,007\n0,9\n",
                             headers={"Content-Type": "text/csv"})
    assert csv.status_code == 200, csv.text
    as_json = worker_client.post(location, json={"records": [
        {"service": 1, "code": "007"}, {"service": 0.0, "code": 9}]})
    assert as_json.status_code == 200, as_json.text
    for response in (csv, as_json):
        assert response.json()["predictions"] == pytest.approx(want, rel=1e-9)
    unknown = assert_problem(worker_client.post(location, json={"records": [
        {"service": 1, "code": 7}]}), 422)
    assert "7" in unknown["detail"]  # 7 is not the level 007


def test_json_numbers_declared_categorical_are_rs_as_character(
        worker_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    records = [{"x": x, "y": y} for x, y in zip(R["numbers_x"], R["numbers_y"], strict=True)]
    dataset = _dataset(worker_client.post(
        "/v1/datasets", json={"records": records, "categorical": ["x"]}))
    assert _dtypes(dataset) == {"x": "categorical", "y": "numeric"}
    model = _fit(worker_client, dataset["id"], "y ~ x")
    _assert_coefficients(model, R["numbers_coef"])  # x1e+05, x2.5e-07
    prediction = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                    json={"records": [{"x": 1e5}, {"x": "2.5e-07"}]})
    assert prediction.status_code == 200, prediction.text
    coef = R["numbers_coef"]
    assert prediction.json()["predictions"] == pytest.approx(
        [coef["(Intercept)"] + coef["x1e+05"], coef["(Intercept)"] + coef["x2.5e-07"]])

    # doubles to 15 significant digits; whole JSON numbers are R integers, in full
    doubles = [float(text) for text in R["doubles"]]
    rows = [{"d": d, "i": i} for d, i in zip(doubles, R["integers"] + [None] * 9,
                                             strict=False)]
    labelled = _dataset(worker_client.post("/v1/datasets?categorical=i",
                                           json={"records": rows, "categorical": ["d"]}))
    stored = _stored(session_factory, labelled["id"])
    assert _values(stored["d"]) == R["doubles_as_character"]
    assert _values(stored["i"])[:3] == R["integers_as_character"]
    assert stored["i"].isna().sum() == len(doubles) - 3


def test_parquet_columns_declared_categorical(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    frame = pd.DataFrame({
        "i": pd.array([100000, None, -3, 7], dtype="Int64"),  # an integer column with a gap
        "d": [1e5, 0.1, 2.5e-7, 1e5],
        "b": [True, False, True, True],
        "s": ["a", "b", None, "a"],
    })
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    data = buffer.getvalue()
    raw = _dataset(client.post("/v1/datasets?categorical=i,d,b,s", content=data,
                               headers={"Content-Type": "application/vnd.apache.parquet"}))
    multipart = _dataset(client.post("/v1/datasets", data={"categorical": "i,d,b,s"},
                                     files={"file": ("x.parquet", data)}))
    for body in (raw, multipart):
        assert set(_dtypes(body).values()) == {"categorical"}
        stored = _stored(session_factory, body["id"])
        assert _values(stored["i"]) == ["100000", None, "-3", "7"]
        assert _values(stored["d"]) == ["1e+05", "0.1", "2.5e-07", "1e+05"]
        assert _values(stored["b"]) == ["TRUE", "FALSE", "TRUE", "TRUE"]
        assert _values(stored["s"]) == ["a", "b", None, "a"]


def test_an_unknown_declared_column_is_a_422_naming_it(client: TestClient) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"y": [1.0, 2.0]}).to_parquet(buffer, index=False)
    attempts = [
        _upload_csv(client, DECLARED_CSV, "?categorical=service,sevrice"),
        client.post("/v1/datasets", json={"records": [{"y": 1}], "categorical": ["sevrice"]}),
        client.post("/v1/datasets?categorical=sevrice", json={"records": [{"y": 1}]}),
        client.post("/v1/datasets?categorical=sevrice", content=buffer.getvalue(),
                    headers={"Content-Type": "application/vnd.apache.parquet"}),
        client.post("/v1/datasets", data={"categorical": "sevrice"},
                    files={"file": ("d.csv", DECLARED_CSV, "text/csv")}),
    ]
    for response in attempts:
        body = assert_problem(response, 422)
        assert "sevrice" in body["detail"] and body["unknown_columns"] == ["sevrice"]
    assert client.get("/v1/datasets").json()["total"] == 0
