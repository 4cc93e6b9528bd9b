"""Untrusted input stays data: hostile uploads, formulas, predictions and query values are
stored as text or refused with a problem document that says what to fix, never a 500.

Every test goes through the real ASGI app on a real database (SQLite and PostgreSQL); the
ones that need a finished fit run the embedded worker, whose fits run in child processes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import get_dataset
from service.db.models import FixedEffectRow, VarianceComponentRow
from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import fit
from tests.stats.test_formula_hostile import HOSTILE, PWNED


def post_csv(client: TestClient, data: bytes, content_type: str = "text/csv") -> Any:
    return client.post("/v1/datasets", content=data, headers={"Content-Type": content_type})


def upload(client: TestClient, data: bytes) -> str:
    response = post_csv(client, data)
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def columns(body: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {c["name"]: (c["dtype"], c["n_missing"]) for c in body["columns"]}


def stored_frame(session_factory: sessionmaker[Session], dataset_id: str) -> pd.DataFrame:
    with session_factory() as session:
        row = get_dataset(session, dataset_id, with_content=True)
        assert row is not None
        return pd.read_parquet(io.BytesIO(row.content))


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def assert_failed_clearly(model: dict[str, Any], *fragments: str) -> None:
    """A fit the data make impossible: failed, with a 422 problem naming the cause."""
    assert model["status"] == "failed", model
    error = model["error"]
    assert error["type"] == "urn:mixedfit:problem:fit-failed", error
    assert error["status"] == 422
    assert "Traceback" not in error["detail"]
    for fragment in fragments:
        assert fragment in error["detail"], error["detail"]


@pytest.fixture
def worker(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


# --- CSV bodies --------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "fragment"), [
    (bytes(range(256)) * 20, "not UTF-8"),
    ("a,b\n1,2\n".encode("utf-16"), "not UTF-8"),  # with its byte-order mark
    ("a,b\n1,2\n".encode("utf-16-le"), "NUL"),  # no mark: ASCII becomes text with NULs
    ("a,b\né,2\n".encode("latin-1"), "byte 4 (0xe9)"),
    (b"a,b\n1,\x002\n3,4\n", "NUL"),
    (b"a\x00,b\n1,2\n", "NUL"),
    (b"a,b\n", "no rows"),
    (b"\n\n\n", "empty"),
    (b"a,b\n1,2,3\n", "more fields"),
    (b"a,a\n1,2\n", "repeated: a"),
    (b",b\n1,2\n", "Column 1 has no name"),
    (b'a,b\n"1,2\n3,4\n', "cannot be parsed"),
])
def test_unreadable_csv_is_a_422_that_says_why(client: TestClient, data: bytes,
                                               fragment: str) -> None:
    body = assert_problem(post_csv(client, data), 422)
    assert fragment in body["detail"]
    assert client.get("/v1/datasets").json()["total"] == 0


def test_a_byte_order_mark_is_not_part_of_the_first_name(client: TestClient) -> None:
    response = post_csv(client, b"\xef\xbb\xbfa,b\n1,2\n3,4\n")
    assert response.status_code == 201, response.text
    assert list(columns(response.json())) == ["a", "b"]


def test_spreadsheet_formulas_are_stored_as_text(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    cells = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1:A2)", "-2+3", "=HYPERLINK(\"x\")"]
    data = "y,a\n" + "".join(f'{i},"{c.replace(chr(34), chr(34) * 2)}"\n'
                               for i, c in enumerate(cells))
    response = post_csv(client, data.encode())
    assert response.status_code == 201, response.text
    assert columns(response.json())["a"] == ("categorical", 0)
    assert stored_frame(session_factory, response.json()["id"])["a"].tolist() == cells


def test_odd_but_valid_shapes_are_accepted(client: TestClient) -> None:
    single = post_csv(client, b"y\n1\n2\n3\n")
    assert columns(single.json()) == {"y": ("numeric", 0)}
    # a short row is filled with missing values, as R's read.csv(fill = TRUE) does
    ragged = post_csv(client, b"a,b,c\n1,2\n3,4,5\n")
    assert columns(ragged.json()) == {"a": ("numeric", 0), "b": ("numeric", 0),
                                      "c": ("numeric", 1)}


def test_ten_thousand_columns(client: TestClient) -> None:
    n = 10_000
    data = (",".join(f"c{i}" for i in range(n)) + "\n" + ",".join("1" for _ in range(n))
            + "\n" + ",".join("2" for _ in range(n)) + "\n")
    response = post_csv(client, data.encode())
    assert response.status_code == 201, response.text
    assert len(response.json()["columns"]) == n
    assert client.get(f"/v1/datasets/{response.json()['id']}").status_code == 200


def test_a_very_long_cell_is_one_text_value(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    long = "x" * 2_000_000
    response = post_csv(client, f"a,b\n{long},1\nshort,2\n".encode())
    assert response.status_code == 201, response.text
    assert stored_frame(session_factory, response.json()["id"])["a"].tolist() == [long, "short"]


def test_numbers_infinities_and_not_a_number(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    response = post_csv(client, b"big,inf,nan,neg\n1e309,inf,NaN,-inf\n1,2,3,4\n")
    assert response.status_code == 201, response.text
    assert columns(response.json()) == {"big": ("numeric", 0), "inf": ("numeric", 0),
                                        "nan": ("numeric", 1), "neg": ("numeric", 0)}
    frame = stored_frame(session_factory, response.json()["id"])
    assert frame["big"][0] == float("inf") and frame["neg"][0] == float("-inf")


def test_numbers_too_long_for_a_float_column_are_text(client: TestClient) -> None:
    response = post_csv(client, b"a,b\n" + b"9" * 400 + b",99999999999999999999999\n1,2\n")
    assert response.status_code == 201, response.text
    assert {c["dtype"] for c in response.json()["columns"]} <= {"numeric", "categorical"}


def test_booleans_in_r_spellings(client: TestClient) -> None:
    # R 4.2.2's type.convert: TRUE/FALSE/T/F are logical, true/True/false/False are text
    # (tests/data/r/declared_types.R)
    response = post_csv(client, b"a,b,c,d\nTRUE,true,T,True\nFALSE,false,F,False\n")
    assert response.status_code == 201, response.text
    assert {c["name"]: c["dtype"] for c in response.json()["columns"]} == {
        "a": "boolean", "b": "categorical", "c": "boolean", "d": "categorical"}


# --- JSON records, multipart and Parquet -------------------------------------------------


def post_json(client: TestClient, path: str, body: bytes | dict[str, Any]) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("body", "fragment"), [
    ({"records": [{"a": {"x": 1}}]}, "records.0.a"),
    ({"records": [{"a": [1, 2]}]}, "records.0.a"),
    ({"records": [{"a": 1}, {"a": "x"}]}, "mixes value types"),
    ({"records": [{"a": True}, {"a": 2}]}, "mixes value types"),
    ({"records": [{}, {}]}, "no columns"),
    ({"records": []}, "no rows"),
    ({"records": 5}, "records"),
    ({"records": [{"": 1}]}, "no name"),
    ({"records": [{"a": "x\u0000y"}]}, "NUL"),
    ({"records": [{"a\u0000": 1}]}, "NUL"),
    (b'{"records": [{"a": 1' + b"0" * 400 + b"}]}", "too large"),
    (b'{"records": [', "Invalid JSON"),
    (b"[1, 2]", "object"),
    (b'{"records": [{"a": "\xff"}]}', "JSON"),
    (b'{"records": ' + b"[" * 100_000, "recursion limit"),
])
def test_unusable_records_are_a_422_that_says_why(client: TestClient,
                                                  body: bytes | dict[str, Any],
                                                  fragment: str) -> None:
    problem = assert_problem(post_json(client, "/v1/datasets", body), 422)
    assert fragment in problem["detail"]


def test_records_with_nulls_and_non_finite_numbers(client: TestClient) -> None:
    response = post_json(client, "/v1/datasets",
                         b'{"records": [{"a": null, "b": NaN, "c": 1e309, "d": "x"},'
                         b' {"a": null, "b": 1, "c": Infinity}]}')
    assert response.status_code == 201, response.text
    assert columns(response.json()) == {"a": ("numeric", 2), "b": ("numeric", 1),
                                        "c": ("numeric", 0), "d": ("categorical", 1)}


def test_multipart_problems(client: TestClient) -> None:
    no_file = client.post("/v1/datasets", data={"name": "x"},
                          files={"data": ("x.csv", b"a\n1\n")})
    assert "'file'" in assert_problem(no_file, 422)["detail"]
    field_not_file = client.post(
        "/v1/datasets", content=b'--X\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
        b"a\n1\n\r\n--X--\r\n", headers={"Content-Type": "multipart/form-data; boundary=X"})
    assert "'file'" in assert_problem(field_not_file, 422)["detail"]
    garbage = client.post("/v1/datasets", content=b"garbage",
                          headers={"Content-Type": "multipart/form-data; boundary=X"})
    assert "multipart body cannot be read" in assert_problem(garbage, 422)["detail"]
    no_boundary = client.post("/v1/datasets", content=b"garbage",
                              headers={"Content-Type": "multipart/form-data"})
    assert "boundary" in assert_problem(no_boundary, 422)["detail"]
    two = client.post("/v1/datasets", files=[("file", ("x.csv", b"a\n1\n")),
                                             ("file", ("y.csv", b"a\n1\n"))])
    assert "Too many files" in assert_problem(two, 422)["detail"]
    corrupt = client.post("/v1/datasets", files={"file": ("x.parquet", b"PAR1garbagePAR1")})
    assert "Parquet" in assert_problem(corrupt, 422)["detail"]


@pytest.mark.parametrize("data", [
    b"PAR1" + b"\x00" * 100 + b"PAR1",
    b"PAR1",
    parquet(pa.table({"a": [1, 2], "b": ["x", "y"]}))[:200],
])
def test_corrupt_parquet_is_422(client: TestClient, data: bytes) -> None:
    response = post_csv(client, data, "application/vnd.apache.parquet")
    assert "Parquet" in assert_problem(response, 422)["detail"]


def test_parquet_binary_column_that_is_not_text_is_422(client: TestClient) -> None:
    data = parquet(pa.table({"a": pa.array([b"x", b"\xff"]), "y": [1.0, 2.0]}))
    problem = assert_problem(post_csv(client, data, "application/vnd.apache.parquet"), 422)
    assert "'a'" in problem["detail"] and "UTF-8" in problem["detail"]


def test_parquet_binary_column_of_text_is_categorical(client: TestClient) -> None:
    data = parquet(pa.table({"a": pa.array([b"x", b"y"]), "y": [1.0, 2.0]}))
    response = post_csv(client, data, "application/vnd.apache.parquet")
    assert response.status_code == 201, response.text
    assert columns(response.json())["a"] == ("categorical", 0)


def test_parquet_text_with_nul_is_422(client: TestClient) -> None:
    data = parquet(pa.table({"a": ["x\x00y", "z"], "y": [1.0, 2.0]}))
    problem = assert_problem(post_csv(client, data, "application/vnd.apache.parquet"), 422)
    assert "NUL" in problem["detail"]


def test_parquet_that_expands_past_the_limit_is_413_before_decoding(
        make_client: ClientFactory) -> None:
    # 3 million zeros compress to a few kB; decoded they are 24 MB of floats
    client = make_client(max_upload_bytes=1_000_000)
    bomb = parquet(pa.table({"a": pa.array(np.zeros(3_000_000, dtype=np.int8))}))
    assert len(bomb) < 100_000
    for response in (post_csv(client, bomb, "application/vnd.apache.parquet"),
                     client.post("/v1/datasets", files={"file": ("bomb.parquet", bomb)})):
        problem = assert_problem(response, 413)
        assert "3000000 rows" in problem["detail"]
    small = parquet(pa.table({"a": pa.array(np.zeros(1_000, dtype=np.int8))}))
    assert post_csv(client, small, "application/vnd.apache.parquet").status_code == 201


@pytest.mark.parametrize(("content_type", "named"), [
    ("application/xml", "application/xml"), ("", "unreadable Content-Type ''"),
    (";;;", "unreadable Content-Type ';;;'"), ("image/png", "image/png"),
])
def test_wrong_content_type_is_415(client: TestClient, content_type: str, named: str) -> None:
    problem = assert_problem(post_csv(client, b"a\n1\n", content_type), 415)
    assert "text/csv" in problem["detail"] and named in problem["detail"]
    missing = client.post("/v1/datasets", content=b"a\n1\n")
    assert "no Content-Type header" in assert_problem(missing, 415)["detail"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/v1/datasets", "GET, POST"),
    ("PUT", "/v1/models", "GET, POST"),
    ("PATCH", "/v1/datasets/some-id", "GET, DELETE"),
    ("GET", "/v1/models/some-id/predictions", "POST"),
])
def test_wrong_method_names_every_allowed_one(client: TestClient, method: str, path: str,
                                              allowed: str) -> None:
    response = client.request(method, path)
    body = assert_problem(response, 405)
    assert response.headers["allow"] == allowed
    assert allowed in body["detail"]


# --- formulas, models and predictions ----------------------------------------------------


@pytest.fixture
def small(client: TestClient) -> str:
    return upload(client, b"y,x,g\n1,2,a\n2,3,b\n3,5,a\n5,4,b\n6,8,a\n")


def test_hostile_formulas_are_422_with_the_parsers_message(client: TestClient,
                                                           small: str) -> None:
    # one app for all of them: the list is long and each is refused before any query
    PWNED.unlink(missing_ok=True)
    for text, fragment, token in HOSTILE:
        response = client.post("/v1/models", json={"dataset_id": small, "formula": text})
        body = assert_problem(response, 422)
        assert body["type"] == "urn:mixedfit:problem:formula-error", (text, body)
        assert fragment in body["detail"], (text, body)
        assert text[body["position"]:].startswith(token), (text, body)  # the caret's place
    assert not PWNED.exists()
    assert client.get("/v1/models").json()["total"] == 0


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "Invalid JSON"),
    (b"\xff", "UTF-8"),
    (b'{"dataset_id": "\xe9", "formula": "y ~ x"}', "byte 16"),
    (b"[" * 100_000, "nested too deeply"),
    (b'{"dataset_id": "x", "formula": "y ~ x"', "Invalid JSON"),
    (b"[]", "object"),
    (b"null", "body"),
])
def test_malformed_model_bodies_are_422(client: TestClient, body: bytes,
                                        fragment: str) -> None:
    problem = assert_problem(post_json(client, "/v1/models", body), 422)
    assert fragment in problem["detail"]


@pytest.mark.parametrize("path", [
    "/v1/datasets/nope", "/v1/models/nope", "/v1/models/nope/random-effects",
    "/v1/models/nope/coefficients", "/v1/datasets/%00", "/v1/models/" + "x" * 5000,
])
def test_unknown_ids_are_404_problems(client: TestClient, path: str) -> None:
    assert_problem(client.get(path), 404)


def test_unknown_ids_on_write_are_404_problems(client: TestClient) -> None:
    assert_problem(client.delete("/v1/datasets/nope"), 404)
    assert_problem(client.post("/v1/models/nope/predictions", json={"records": [{"x": 1}]}),
                   404)
    assert_problem(client.post("/v1/models", json={"dataset_id": "\u0000",
                                                   "formula": "y ~ x"}), 404)
    # PostgreSQL cannot compare text holding NUL: no such id exists, so no such model either
    listed = client.get("/v1/models?dataset_id=%00")
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] == []


@pytest.mark.parametrize("query", [
    "limit=-1", "offset=-5", "limit=0", "limit=abc", "limit=99999999999999999999",
    "offset=99999999999999999999", "offset=18446744073709551616", "offset=1e3",
])
def test_bad_paging_is_422(client: TestClient, query: str) -> None:
    for path in ("/v1/datasets", "/v1/models"):
        problem = assert_problem(client.get(f"{path}?{query}"), 422)
        assert problem["errors"][0]["location"] == "query"


def test_the_largest_accepted_offset_answers_an_empty_page(client: TestClient,
                                                           small: str) -> None:
    for path in ("/v1/datasets", "/v1/models"):
        largest = client.get(path).json()  # the documented bound, read from the schema
        assert largest["offset"] == 0
        spec = client.get("/openapi.json").json()["paths"][path]["get"]["parameters"]
        bound = next(p for p in spec if p["name"] == "offset")["schema"]["maximum"]
        page = client.get(f"{path}?offset={bound}")
        assert page.status_code == 200, page.text
        assert page.json()["items"] == []


@pytest.mark.parametrize(("wait", "status"), [
    ("1e308", 200), ("inf", 200), ("0", 200), ("-1", 422), ("nan", 422), ("soon", 422),
])
def test_wait_values(make_client: ClientFactory, small: str, wait: str, status: int) -> None:
    client = make_client(max_wait_seconds=0.1)
    model = client.post("/v1/models", json={"dataset_id": small, "formula": "y ~ x"}).json()
    response = client.get(f"/v1/models/{model['id']}?wait={wait}")
    if status == 200:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "queued"  # no worker: the cap ended the wait
    else:
        assert_problem(response, status)


# --- fits the data make impossible -------------------------------------------------------


def test_fits_the_data_make_impossible_fail_with_a_clear_problem(worker: TestClient) -> None:
    constant = upload(worker, b"y,x,w\n1,1,\n1,2,\n1,3,\n1,4,\n1,5,\n1,6,\n")
    assert_failed_clearly(fit(worker, constant, "y ~ x"), "constant")
    varied = upload(worker, b"y,x,z,w\n1,1,2,\n2,2,4,\n4,3,6,\n3,4,8,\n7,5,10,\n")
    # the response is a linear function of the predictor: every residual is zero
    assert_failed_clearly(fit(worker, varied, "z ~ x"), "exactly")
    assert_failed_clearly(fit(worker, varied, "y ~ w"), "no rows are left", "w")
    assert_failed_clearly(fit(worker, varied, "w ~ x"), "no rows are left", "w")
    infinite = upload(worker, b"y,x\n1,1e309\n2,2\n3,1\n4,5\n")
    assert_failed_clearly(fit(worker, infinite, "y ~ x"), "infinite", "x")


def test_perfectly_collinear_predictors_are_dropped_with_a_message(worker: TestClient) -> None:
    varied = upload(worker, b"y,x,z\n1,1,2\n2,2,4\n4,3,6\n3,4,8\n7,5,10\n")
    model = fit(worker, varied, "y ~ x + z")
    assert model["status"] == "succeeded", model["error"]
    # R's summary(lm) keeps z in its place with NA numbers: here null numbers, aliased
    fixed = model["result"]["fixed_effects"]
    assert [(fe["term"], fe["aliased"]) for fe in fixed] == [
        ("(Intercept)", False), ("x", False), ("z", True)]
    assert fixed[2]["estimate"] is None and fixed[2]["std_error"] is None
    assert "dropping 1 column: z" in json.dumps(model["result"])


def test_constant_response_of_a_mixed_model_fails_clearly(worker: TestClient) -> None:
    data = "y,x,g\n" + "".join(f"2.5,{i},{'abc'[i % 3]}\n" for i in range(12))
    assert_failed_clearly(fit(worker, upload(worker, data.encode()), "y ~ x + (1 | g)"))


# --- awkward names and values that are still data ---------------------------------------


def test_odd_column_names_fit_with_backticks_and_predict(worker: TestClient) -> None:
    data = ('"my y",my col,x.y,"q""uote",ünï\n'
            "1,2,3,4,5\n2,3,4,5,7\n3,1,2,3,9\n5,3,1,8,2\n6,7,1,1,3\n4,2,6,2,2\n9,8,7,6,1\n")
    dataset = upload(worker, data.encode())
    model = fit(worker, dataset, '`my y` ~ `my col` + x.y + `q"uote` + `ünï`')
    assert model["status"] == "succeeded", model["error"]
    terms = [fe["term"] for fe in model["result"]["fixed_effects"]]
    assert terms == ["(Intercept)", "`my col`", "x.y", '`q"uote`', "ünï"]
    record = {"my col": 1, "x.y": 2, 'q"uote': 3, "ünï": 4}
    response = worker.post(f"/v1/models/{model['id']}/predictions", json={"records": [record]})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["predictions"][0], float)


def test_formula_text_levels_are_data_and_predict(worker: TestClient) -> None:
    injection = "=cmd|' /C calc'!A0"
    rows = [(1.0, injection), (2.0, "plain"), (3.5, injection), (4.0, "plain"),
            (6.0, injection), (5.5, "plain")]
    data = "y,a\n" + "".join(f'{y},"{a}"\n' for y, a in rows)
    model = fit(worker, upload(worker, data.encode()), "y ~ a")
    assert model["status"] == "succeeded", model["error"]
    assert [fe["term"] for fe in model["result"]["fixed_effects"]] == ["(Intercept)", "aplain"]
    response = worker.post(f"/v1/models/{model['id']}/predictions",
                           json={"records": [{"a": injection}, {"a": "plain"}]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([3.5, 3.8333333333], rel=1e-9)


def test_long_levels_and_names_are_stored(
        worker: TestClient, session_factory: sessionmaker[Session]) -> None:
    # the queryable result tables hold names of at most 300 characters (PostgreSQL enforces
    # it); the result document keeps them whole
    level = "z" * 1_000  # sorts after "b", so it is the level with a coefficient
    name, group = "n" * 400, "g" * 350
    data = f"y,{name},{group}\n" + "".join(f"{i},{i * i % 7},{level if i % 2 else 'b'}\n"
                                          for i in range(10))
    dataset = upload(worker, data.encode())
    lm = fit(worker, dataset, f"y ~ {name} + {group}")
    assert lm["status"] == "succeeded", lm["error"]
    terms = [fe["term"] for fe in lm["result"]["fixed_effects"]]
    assert terms == ["(Intercept)", name, group + level]
    lmm = fit(worker, dataset, f"y ~ {name} + (1 | {group})")
    assert lmm["status"] == "succeeded", lmm["error"]
    assert lmm["result"]["random_effects"][0]["group"] == group
    with session_factory() as session:
        stored = session.scalars(select(FixedEffectRow.term).where(
            FixedEffectRow.model_id == lm["id"]).order_by(FixedEffectRow.position)).all()
        groups = session.scalars(select(VarianceComponentRow.group_name).where(
            VarianceComponentRow.model_id == lmm["id"])).all()
    assert stored[:2] == ["(Intercept)", name[:299] + "…"]
    assert stored[2] == (group + level)[:299] + "…"
    assert set(groups) == {group[:299] + "…", "Residual"}


def test_predictions_with_wrong_records_are_422(worker: TestClient) -> None:
    dataset = upload(worker, b"y,x,g\n1,2,a\n2,3,b\n3,5,a\n5,4,b\n6,8,a\n4,4,b\n")
    model = fit(worker, dataset, "y ~ x + g")
    assert model["status"] == "succeeded", model["error"]
    path = f"/v1/models/{model['id']}/predictions"
    refusals: list[tuple[Any, str]] = [
        ({"records": [{"x": "abc", "g": "a"}]}, "x"),
        ({"records": [{"x": True, "g": "a"}]}, "x"),
        ({"records": [{"x": 1}]}, "g"),
        ({"records": [{"x": 1, "g": 5}]}, "g"),
        ({"records": [{"x": 1, "g": "zz"}]}, "zz"),
        ({"records": [{"x": {"n": 1}, "g": "a"}]}, "records.0.x"),
        ({"records": [{"x": 1, "g": "a"}, {"x": "b", "g": "a"}]}, "mixes value types"),
        ({"records": []}, "records"),
        ({"records": [{}]}, "no rows"),
        ({"records": [{"x": 1, "g": "a"}], "new_levels": "maybe"}, "new_levels"),
        (b'{"records": [{"x": 1' + b"0" * 400 + b', "g": "a"}]}', "too large"),
        (b"{", "Invalid JSON"),
        (b"\xff", "JSON"),
    ]
    for body, fragment in refusals:
        problem = assert_problem(post_json(worker, path, body), 422)
        assert fragment in problem["detail"], (body, problem)
    csv_refusals = [(b"x,g\nabc,a\n", "x"), (b"x,g\n", "no rows"), (bytes(range(256)), "UTF-8"),
                    (b"x\n1\n", "g")]
    for data, fragment in csv_refusals:
        problem = assert_problem(post_csv_to(worker, path, data), 422)
        assert fragment in problem["detail"], (data, problem)
    nulls = post_json(worker, path, {"records": [{"x": None, "g": "a"}, {"x": 1, "g": None}]})
    assert "missing values" in assert_problem(nulls, 422)["detail"]
    assert_problem(worker.post(path, content=b"<x/>", headers={"Content-Type": "text/xml"}),
                   415)


def post_csv_to(client: TestClient, path: str, data: bytes) -> Any:
    return client.post(path, content=data, headers={"Content-Type": "text/csv"})


def test_no_marker_file_was_created() -> None:
    assert not Path(PWNED).exists()
