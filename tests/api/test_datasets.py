"""Dataset uploads through the HTTP API: every accepted kind, and every refusal."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import get_dataset
from tests.api.conftest import ClientFactory, assert_problem


def _columns(body: dict) -> dict[str, tuple[str, int]]:
    return {c["name"]: (c["dtype"], c["n_missing"]) for c in body["columns"]}


def _csv(client: TestClient, data: bytes, query: str = "") -> object:
    return client.post(f"/v1/datasets{query}", content=data,
                       headers={"Content-Type": "text/csv"})


def test_csv_upload_is_typed_hashed_and_readable(client: TestClient, mood_csv: bytes) -> None:
    response = client.post("/v1/datasets?name=mood", content=mood_csv,
                           headers={"Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/datasets/{body['id']}"
    assert body["name"] == "mood"
    assert body["n_rows"] == 200
    assert _columns(body) == {"Exercise": ("numeric", 0), "State": ("categorical", 0),
                              "Mood": ("numeric", 0)}
    assert body["sha256"] == hashlib.sha256(mood_csv).hexdigest()
    assert body["size_bytes"] == len(mood_csv)
    assert body["created_at"]
    assert client.get(response.headers["location"]).json() == body


def test_content_is_stored_as_parquet_with_missing_values(
        client: TestClient, session_factory: sessionmaker[Session]) -> None:
    data = b'x,flag,group,empty\n1.5,TRUE,a,\nNA,FALSE,,\n3,NA,"b, c",NA\n'
    response = _csv(client, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert _columns(body) == {"x": ("numeric", 1), "flag": ("boolean", 1),
                              "group": ("categorical", 1), "empty": ("numeric", 3)}
    with session_factory() as session:
        row = get_dataset(session, body["id"], with_content=True)
        assert row is not None
        frame = pd.read_parquet(io.BytesIO(row.content))
    assert list(frame.columns) == ["x", "flag", "group", "empty"]
    assert frame["x"].tolist()[0] == 1.5 and pd.isna(frame["x"][1])
    assert frame["flag"].tolist()[:2] == [True, False] and pd.isna(frame["flag"][2])
    assert frame["group"].tolist()[0] == "a" and frame["group"].tolist()[2] == "b, c"


def test_multipart_csv_takes_its_name_from_the_file(client: TestClient, mood_csv: bytes) -> None:
    response = client.post("/v1/datasets",
                           files={"file": ("exercise-mood.csv", mood_csv, "text/csv")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "exercise-mood"
    assert body["n_rows"] == 200
    assert body["sha256"] == hashlib.sha256(mood_csv).hexdigest()


def _parquet_bytes() -> bytes:
    frame = pd.DataFrame({
        "y": [1.0, 2.5, None, 4.0],
        "n": [1, 2, 3, 4],
        "g": pd.Series(["a", "b", None, "a"], dtype=object),
        "b": pd.array([True, None, False, True], dtype="boolean"),
    })
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_multipart_parquet_is_recognised_by_its_bytes(client: TestClient) -> None:
    data = _parquet_bytes()
    response = client.post("/v1/datasets", data={"name": "pq"},
                           files={"file": ("upload.bin", data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "pq"
    assert _columns(body) == {"y": ("numeric", 1), "n": ("numeric", 0),
                              "g": ("categorical", 1), "b": ("boolean", 1)}
    assert body["sha256"] == hashlib.sha256(data).hexdigest()


def test_raw_parquet_body(client: TestClient) -> None:
    response = client.post("/v1/datasets?name=raw", content=_parquet_bytes(),
                           headers={"Content-Type": "application/vnd.apache.parquet"})
    assert response.status_code == 201, response.text
    assert response.json()["n_rows"] == 4


def test_json_records(client: TestClient) -> None:
    records = [{"x": 1, "g": "a", "ok": True}, {"x": 2.5, "g": None, "ok": False},
               {"g": "b", "ok": None}]
    response = client.post("/v1/datasets", json={"name": "small", "records": records})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "small"
    assert body["n_rows"] == 3
    assert _columns(body) == {"x": ("numeric", 1), "g": ("categorical", 1),
                              "ok": ("boolean", 1)}


def test_list_is_paginated_and_delete_removes(client: TestClient, mood_csv: bytes) -> None:
    ids = [_csv(client, mood_csv, f"?name=m{i}").json()["id"] for i in range(3)]
    page = client.get("/v1/datasets?limit=2").json()
    assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert len(page["items"]) == 2
    rest = client.get("/v1/datasets?limit=2&offset=2").json()
    assert len(rest["items"]) == 1
    assert {d["id"] for d in page["items"] + rest["items"]} == set(ids)

    assert client.delete(f"/v1/datasets/{ids[0]}").status_code == 204
    assert_problem(client.get(f"/v1/datasets/{ids[0]}"), 404)
    assert_problem(client.delete(f"/v1/datasets/{ids[0]}"), 404)
    assert client.get("/v1/datasets").json()["total"] == 2


def test_upload_over_the_limit_is_refused_from_content_length(
        make_client: ClientFactory) -> None:
    client = make_client(max_upload_bytes=1000)
    body = assert_problem(_csv(client, b"a,b\n" + b"1,2\n" * 500), 413)
    assert "1000" in body["detail"]
    assert client.get("/v1/datasets").json()["total"] == 0


def test_chunked_upload_over_the_limit_is_refused(make_client: ClientFactory) -> None:
    client = make_client(max_upload_bytes=1000)

    def chunks() -> Iterator[bytes]:
        yield b"a,b\n"
        for _ in range(100):
            yield b"1,2\n" * 10

    # a generator body is sent chunked, without Content-Length: the limit applies while reading
    response = client.post("/v1/datasets", content=chunks(),
                           headers={"Content-Type": "text/csv"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


def test_multipart_over_the_limit(make_client: ClientFactory) -> None:
    client = make_client(max_upload_bytes=1000)
    response = client.post("/v1/datasets", files={"file": ("a.csv", b"a\n" + b"1\n" * 2000)})
    assert_problem(response, 413)


@pytest.mark.parametrize(("data", "fragment"), [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"a,b\n", "no rows"),
    (b"a,a\n1,2\n", "unique"),
    (b"a,b\n\xff\xfe,2\n", "UTF-8"),
    (b"a,b\n1,2\n3,4,5\n", "line 3 has 3 fields"),
    (b"a,b\n1,2,3\n4,5\n", "more fields"),
    (b",a\n1,2\n", "no name"),
    (b'a,b\n"1,2\n', "parsed"),
])
def test_unusable_csv_is_422(client: TestClient, data: bytes, fragment: str) -> None:
    body = assert_problem(_csv(client, data), 422)
    assert fragment.lower() in body["detail"].lower()


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"records": []}, "no rows"),
    ({"records": [{"a": 1}, {"a": "x"}]}, "mixes"),
    ({"records": [{"a": {"nested": 1}}]}, "records"),
    ({"rows": [{"a": 1}]}, "records"),
    ({"records": [{}]}, "no columns"),
])
def test_unusable_json_is_422(client: TestClient, payload: dict, fragment: str) -> None:
    body = assert_problem(client.post("/v1/datasets", json=payload), 422)
    assert fragment in body["detail"]


def test_malformed_json_is_422_with_field_errors(client: TestClient) -> None:
    response = client.post("/v1/datasets", content=b'{"records": [',
                           headers={"Content-Type": "application/json"})
    body = assert_problem(response, 422)
    assert body["errors"] and body["errors"][0]["type"] == "json_invalid"


def test_unreadable_parquet_is_422(client: TestClient) -> None:
    response = client.post("/v1/datasets", content=b"PAR1 but not really parquet",
                           headers={"Content-Type": "application/vnd.apache.parquet"})
    assert "Parquet" in assert_problem(response, 422)["detail"]


def test_multipart_without_a_file_is_422(client: TestClient) -> None:
    response = client.post("/v1/datasets", data={"name": "x"},
                           files={"other": ("a.csv", b"a\n1\n")})
    assert "'file'" in assert_problem(response, 422)["detail"]


@pytest.mark.parametrize("content_type", ["image/png", None])
def test_unknown_media_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/datasets", content=b"a\n1\n", headers=headers)
    body = assert_problem(response, 415)
    assert "text/csv" in body["accepted"]


def test_sha256_of_json_upload_is_of_the_body(client: TestClient) -> None:
    raw = json.dumps({"records": [{"a": 1}]}).encode()
    response = client.post("/v1/datasets", content=raw,
                           headers={"Content-Type": "application/json"})
    assert response.json()["sha256"] == hashlib.sha256(raw).hexdigest()


def test_names_are_cleaned_to_what_the_database_holds(client: TestClient) -> None:
    # PostgreSQL refuses NUL in text, and the column holds 200 characters
    response = client.post("/v1/datasets", data={"name": "a\x00b" + "c" * 300},
                           files={"file": ("x.csv", b"a\n1\n")})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "ab" + "c" * 198


@pytest.mark.parametrize("data", [b"x\tg\n1.5\ta\n2\tb\n", b"x;g\n1.5;a\n2;b\n"])
def test_tab_and_semicolon_separated_files(client: TestClient, data: bytes) -> None:
    body = _csv(client, data).json()
    assert _columns(body) == {"x": ("numeric", 0), "g": ("categorical", 0)}
