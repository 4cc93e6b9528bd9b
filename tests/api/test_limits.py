"""Limits on what a request may ask of the API process (issue 11): each is a setting, each
refusal a 413 problem naming the setting and its value, answered before the work is done
(nothing read past the limit, nothing parsed, stored or queued)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, update

from service.db.models import DatasetRow, JobRow
from tests.api.conftest import DATA, ClientFactory, assert_problem

TOO_LARGE = "urn:mixedfit:problem:payload-too-large"
MB = 1024 * 1024


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def n_jobs(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(JobRow)).scalar_one())
    finally:
        engine.dispose()


def refused(response: Any, setting: str, limit: int, status: int = 413) -> dict[str, Any]:
    problem = assert_problem(response, status)
    assert problem["type"] == (TOO_LARGE if status == 413 else problem["type"])
    assert problem["setting"] == setting
    assert problem["limit"] == limit
    assert setting in problem["detail"] and str(limit) in problem["detail"]
    return problem


def nothing_stored(client: TestClient, database_url: str) -> None:
    assert client.get("/v1/datasets").json()["total"] == 0
    assert client.get("/v1/models").json()["total"] == 0
    assert n_jobs(database_url) == 0


def stream_to_app(client: TestClient, path: str, total: int, chunk: int = MB,
                  content_type: bytes = b"application/json") -> tuple[int, dict[str, Any], int]:
    """POST a body of ``total`` bytes, without a Content-Length (chunked), to the running
    app, producing each chunk only when the app asks for it: (status, body, bytes read)."""
    sent = 0
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent >= total:
            return {"type": "http.disconnect"}
        size = min(chunk, total - sent)
        sent += size
        return {"type": "http.request", "body": b" " * size, "more_body": sent < total}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("testserver", 80),
             "client": ("127.0.0.1", 1234),
             "headers": [(b"host", b"testserver"), (b"content-type", content_type),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    if start["status"] == 413:
        # reading stopped at the limit: the connection must end with the answer, or the
        # server would read the rest of the body only to drop it
        assert (b"connection", b"close") in start["headers"]
    return start["status"], json.loads(body), sent


# --- bodies of every route ---------------------------------------------------------------


def test_a_300_mb_model_body_is_refused_after_reading_its_limit(
        client: TestClient, database_url: str) -> None:
    status, problem, read = stream_to_app(client, "/v1/models", 300 * MB)
    assert status == 413 and problem["type"] == TOO_LARGE
    assert problem["setting"] == "MIXEDFIT_MAX_BODY_BYTES" and problem["limit"] == MB
    assert read <= 2 * MB  # the limit and one chunk of 300 MB
    nothing_stored(client, database_url)


def test_a_declared_length_over_the_limit_is_refused_unread(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(max_body_bytes=1000)
    body = json.dumps({"dataset_id": "x", "formula": "y ~ " + " + ".join(["x"] * 400)})
    for path in ("/v1/models", "/v1/comparisons"):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        refused(response, "MIXEDFIT_MAX_BODY_BYTES", 1000)
    status, problem, read = stream_to_app(client, "/v1/comparisons", 300 * MB, chunk=4096)
    assert (status, problem["setting"]) == (413, "MIXEDFIT_MAX_BODY_BYTES")
    assert read <= 4096
    # within the limit: read and judged as before
    small = client.post("/v1/models", json={"dataset_id": "x", "formula": "y ~ x"})
    assert small.status_code == 404
    nothing_stored(client, database_url)


def test_an_idempotent_model_body_over_the_limit_is_refused(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(max_body_bytes=100)
    status, problem, read = stream_to_app(client, "/v1/models", 10 * MB, chunk=64)
    assert status == 413 and read <= 128
    response = client.post("/v1/models", content=b" " * 500,
                           headers={"Content-Type": "application/json", "Idempotency-Key": "k"})
    refused(response, "MIXEDFIT_MAX_BODY_BYTES", 100)
    nothing_stored(client, database_url)


def test_prediction_bodies_have_their_own_byte_and_row_limits(
        make_client: ClientFactory) -> None:
    client = make_client(embedded_worker=True, worker_poll_seconds=0.05,
                         max_prediction_bytes=10_000, max_prediction_rows=3)
    data = b"x,y\n1,2\n2,3.5\n3,3\n4,6\n"
    dataset = client.post("/v1/datasets", content=data, headers={"Content-Type": "text/csv"})
    model_id = client.post("/v1/models", json={"dataset_id": dataset.json()["id"],
                                               "formula": "y ~ x"}).json()["id"]
    assert client.get(f"/v1/models/{model_id}?wait=5").json()["status"] == "succeeded"
    path = f"/v1/models/{model_id}/predictions"
    ok = client.post(path, json={"records": [{"x": 1}, {"x": 2}, {"x": 3}]})
    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 3
    refused(client.post(path, json={"records": [{"x": i} for i in range(4)]}),
            "MIXEDFIT_MAX_PREDICTION_ROWS", 3)
    refused(client.post(path, content=b"x\n1\n2\n3\n4\n", headers={"Content-Type": "text/csv"}),
            "MIXEDFIT_MAX_PREDICTION_ROWS", 3)
    big = json.dumps({"records": [{"x": i} for i in range(2000)]})
    refused(client.post(path, content=big, headers={"Content-Type": "application/json"}),
            "MIXEDFIT_MAX_PREDICTION_BYTES", 10_000)
    status, problem, read = stream_to_app(client, path, 188 * MB, chunk=4096)
    assert (status, problem["setting"]) == (413, "MIXEDFIT_MAX_PREDICTION_BYTES")
    assert read <= 10_000 + 4096


# --- uploads -----------------------------------------------------------------------------


# No compute child can start within this time limit: a refusal that comes as a 413 (not
# as the child's 422 compute-limit-exceeded) was made before any child was started.
NO_CHILD = {"compute_timeout_seconds": 0.001}


def test_a_parquet_bomb_of_one_repeated_string_is_refused_from_its_metadata(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(**NO_CHILD)
    # 3 million rows of one 1 KB string: 318 KB on the wire, 3 GB decoded
    repeated = pa.DictionaryArray.from_arrays(pa.array(np.zeros(3_000_000, dtype=np.int32)),
                                              pa.array(["x" * 1024]))
    bomb = parquet(pa.table({"a": repeated}))
    assert len(bomb) < 400_000
    started = time.monotonic()
    for response in (client.post("/v1/datasets", content=bomb,
                                 headers={"Content-Type": "application/vnd.apache.parquet"}),
                     client.post("/v1/datasets", files={"file": ("bomb.parquet", bomb)})):
        problem = refused(response, "MIXEDFIT_MAX_DECODED_BYTES", 1024 * MB)
        assert problem["decoded_bytes"] > 3_000_000_000
    assert time.monotonic() - started < 5  # not decoded: 3 GB would take longer
    nothing_stored(client, database_url)


def test_text_without_statistics_is_refused_while_it_is_decoded(
        make_client: ClientFactory, database_url: str) -> None:
    # no min/max to estimate the text's size from: the decoding stops past the limit
    client = make_client(max_decoded_bytes=10 * MB)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": pa.array(["x" * 1024] * 100_000)}), buffer,
                   write_statistics=False)
    assert len(buffer.getvalue()) < 10_000
    response = client.post("/v1/datasets", content=buffer.getvalue(),
                           headers={"Content-Type": "application/vnd.apache.parquet"})
    problem = refused(response, "MIXEDFIT_MAX_DECODED_BYTES", 10 * MB)
    assert "more than" in problem["detail"]
    nothing_stored(client, database_url)


def test_decoded_size_counts_fixed_width_values(make_client: ClientFactory,
                                                database_url: str) -> None:
    client = make_client(max_decoded_bytes=1_000_000)
    floats = parquet(pa.table({"a": pa.array(np.zeros(200_000))}))  # 1.6 MB decoded
    response = client.post("/v1/datasets", content=floats,
                           headers={"Content-Type": "application/vnd.apache.parquet"})
    refused(response, "MIXEDFIT_MAX_DECODED_BYTES", 1_000_000)
    csv = b"a\n" + b"1\n" * 600_000
    refused(client.post("/v1/datasets", content=csv, headers={"Content-Type": "text/csv"}),
            "MIXEDFIT_MAX_DECODED_BYTES", 1_000_000)
    small = parquet(pa.table({"a": pa.array(np.zeros(1000))}))
    assert client.post("/v1/datasets", content=small, headers={
        "Content-Type": "application/vnd.apache.parquet"}).status_code == 201


def test_a_csv_with_100000_columns_is_refused_from_its_header(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(**NO_CHILD)
    n = 100_000
    wide = (",".join(f"col_{i}" for i in range(n)) + "\n" + ",".join(["1.5"] * n)
            + "\n").encode()
    assert len(wide) > 1_000_000
    started = time.monotonic()
    problem = refused(client.post("/v1/datasets", content=wide,
                                  headers={"Content-Type": "text/csv"}),
                      "MIXEDFIT_MAX_COLUMNS", 10_000)
    assert time.monotonic() - started < 5  # parsed, it took a minute
    assert problem["n_columns"] == n
    nothing_stored(client, database_url)


def test_column_and_row_limits_of_every_upload_format(make_client: ClientFactory,
                                                      database_url: str) -> None:
    client = make_client(max_columns=3, max_rows=4)

    def post(data: bytes, content_type: str) -> Any:
        return client.post("/v1/datasets", content=data, headers={"Content-Type": content_type})

    pq_type = "application/vnd.apache.parquet"
    refused(post(b"a,b,c,d\n1,2,3,4\n", "text/csv"), "MIXEDFIT_MAX_COLUMNS", 3)
    refused(post(b"a\n1\n2\n3\n4\n5\n", "text/csv"), "MIXEDFIT_MAX_ROWS", 4)
    refused(post(parquet(pa.table({k: [1] for k in "abcd"})), pq_type),
            "MIXEDFIT_MAX_COLUMNS", 3)
    refused(post(parquet(pa.table({"a": list(range(5))})), pq_type), "MIXEDFIT_MAX_ROWS", 4)
    refused(post(json.dumps({"records": [{k: 1 for k in "abcd"}]}).encode(), "application/json"),
            "MIXEDFIT_MAX_COLUMNS", 3)
    refused(post(json.dumps({"records": [{"a": i} for i in range(5)]}).encode(),
                 "application/json"), "MIXEDFIT_MAX_ROWS", 4)
    nothing_stored(client, database_url)
    # at the limits: stored
    assert post(b"a,b,c\n1,2,3\n2,3,4\n3,4,5\n4,5,6\n", "text/csv").status_code == 201



# --- design size at POST /v1/models ------------------------------------------------------


DESIGN_TOO_LARGE = "urn:mixedfit:problem:design-too-large"


def upload_frame(client: TestClient, columns: dict[str, list[Any]]) -> str:
    names = list(columns)
    rows = zip(*(columns[name] for name in names), strict=True)
    text = ",".join(names) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n"
    response = client.post("/v1/datasets", content=text.encode(),
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def refused_design(client: TestClient, dataset_id: str, formula: str, setting: str,
                   limit: int) -> dict[str, Any]:
    started = time.monotonic()
    response = client.post("/v1/models", json={"dataset_id": dataset_id, "formula": formula})
    elapsed = time.monotonic() - started
    problem = assert_problem(response, 422)
    assert problem["type"] == DESIGN_TOO_LARGE
    assert (problem.get("setting", problem.get("limit_name")), problem["limit"]) == (
        setting, limit)
    assert setting in problem["detail"] and f"{limit:,}" in problem["detail"]
    assert elapsed < 2.0, elapsed  # counted, not built: milliseconds on a warm server
    return problem


def crossed(n: int = 40_000, levels: int = 20_000) -> dict[str, list[Any]]:
    rng = np.random.default_rng(3)
    return {"y": [round(v, 3) for v in rng.normal(size=n)],
            "a": [f"a{i % levels}" for i in range(n)],
            "b": [f"b{(i * 7919) % levels}" for i in range(n)]}


def eight_factors(n: int = 40_000, levels: int = 4) -> dict[str, list[Any]]:
    rng = np.random.default_rng(4)
    columns: dict[str, list[Any]] = {"y": [round(v, 3) for v in rng.normal(size=n)]}
    for k in range(1, 9):
        columns[f"c{k}"] = [f"l{v}" for v in rng.integers(0, levels, n)]
    return columns


EIGHT_WAY = "y ~ (c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8)^8"


def test_exploding_formulas_are_refused_at_post_and_nothing_is_queued(
        client: TestClient, database_url: str) -> None:
    data = upload_frame(client, crossed())
    problem = refused_design(client, data, "y ~ a * b", "MIXEDFIT_MAX_DESIGN_COLUMNS", 10_000)
    assert problem["fixed_columns"] == 1 + 2 * 19_999 + 19_999**2
    assert problem["term"] == "a:b" and "a:b" in problem["detail"]
    factors = upload_frame(client, eight_factors())
    problem = refused_design(client, factors, EIGHT_WAY, "MIXEDFIT_MAX_DESIGN_COLUMNS", 10_000)
    assert problem["fixed_columns"] == 4**8
    # crossed random effects of 20,000 levels each: a dense block of 20,000 columns
    problem = refused_design(client, data, "y ~ 1 + (1 | a) + (1 | b)", "MAX_DENSE_COLUMNS",
                             10_000)
    assert problem["schur_columns"] == 20_000
    assert client.get("/v1/models").json()["total"] == 0
    assert n_jobs(database_url) == 0
    # the same data with a model that fits is queued
    ok = client.post("/v1/models", json={"dataset_id": data, "formula": "y ~ 1 + (1 | a)"})
    assert ok.status_code == 202, ok.text
    assert n_jobs(database_url) == 1


def test_the_memory_estimate_is_held_against_the_fit_memory_limit(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(max_design_columns=100_000)
    factors = upload_frame(client, eight_factors())
    # 65,536 columns of 40,000 rows: 21 GB for X alone, over the default 8 GiB
    problem = refused_design(client, factors, EIGHT_WAY, "MIXEDFIT_FIT_MEMORY_BYTES",
                             8 * 1024**3)
    assert problem["memory_bytes"] >= 40_000 * 4**8 * 8
    small = make_client(fit_memory_bytes=50 * 2**20)
    mood = small.post("/v1/datasets", content=(Path(DATA) / "mood.csv").read_bytes(),
                      headers={"Content-Type": "text/csv"}).json()["id"]
    data = upload_frame(small, crossed(levels=2_000))
    # 2,000 + 1 columns of 40,000 rows: 611 MiB
    refused_design(small, data, "y ~ a", "MIXEDFIT_FIT_MEMORY_BYTES", 50 * 2**20)
    assert small.post("/v1/models", json={"dataset_id": mood,
                                          "formula": "Mood ~ Exercise + (1 | State)"}
                      ).status_code == 202
    assert n_jobs(database_url) == 1


def test_random_effects_columns_have_a_limit(make_client: ClientFactory,
                                             database_url: str) -> None:
    client = make_client(max_random_effects=1_000)
    data = upload_frame(client, crossed(n=4_000, levels=600))
    problem = refused_design(client, data, "y ~ 1 + (1 | a) + (1 | b)",
                             "MIXEDFIT_MAX_RANDOM_EFFECTS", 1_000)
    assert problem["random_columns"] == 1_200
    assert client.post("/v1/models", json={"dataset_id": data, "formula": "y ~ 1 + (1 | a)"}
                       ).status_code == 202
    assert n_jobs(database_url) == 1


def test_levels_of_a_dataset_stored_without_them_are_counted(
        client: TestClient, database_url: str) -> None:
    data = upload_frame(client, crossed())
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            row = connection.execute(select(DatasetRow.columns).where(
                DatasetRow.id == data)).scalar_one()
            assert all("n_levels" in column for column in row)
            connection.execute(update(DatasetRow).where(DatasetRow.id == data).values(
                columns=[{k: v for k, v in c.items() if k != "n_levels"} for c in row]))
    finally:
        engine.dispose()
    problem = refused_design(client, data, "y ~ a * b", "MIXEDFIT_MAX_DESIGN_COLUMNS", 10_000)
    assert problem["fixed_columns"] == 1 + 2 * 19_999 + 19_999**2
    assert n_jobs(database_url) == 0
