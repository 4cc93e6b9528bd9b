"""Idempotency-Key on POST (draft-ietf-httpapi-idempotency-key-header), through the real app
on a real database (SQLite and PostgreSQL): replays, a reused key, a key in use, lapses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.db.models import DatasetRow, IdempotencyRecordRow, ModelRow
from service.db.session import create_db_engine, make_session_factory
from tests.api.conftest import ClientFactory, assert_problem, make_settings

CSV = {"Content-Type": "text/csv"}


def _upload(client: TestClient, body: bytes, key: str | None, name: str = "mood") -> Any:
    headers = dict(CSV)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"/v1/datasets?name={name}", content=body, headers=headers)


def _count(database_url: str, table: type[Any]) -> int:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return int(session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        engine.dispose()


def test_the_same_request_replays_the_first_answer(
        client: TestClient, mood_csv: bytes, database_url: str) -> None:
    first = _upload(client, mood_csv, "upload-1")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = _upload(client, mood_csv, "upload-1")
    assert again.status_code == 201
    assert again.json() == first.json()  # the same dataset, the same id
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert _count(database_url, DatasetRow) == 1
    # a structured-field string names the same key
    quoted = _upload(client, mood_csv, '"upload-1"')
    assert quoted.json()["id"] == first.json()["id"]


def test_a_queued_model_is_created_once(client: TestClient, mood_id: str,
                                        database_url: str) -> None:
    spec = {"dataset_id": mood_id, "formula": "Mood ~ Exercise + (1 | State)"}
    answers = [client.post("/v1/models", json=spec, headers={"Idempotency-Key": "fit-1"})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.headers["location"] for a in answers} == {f"/v1/models/{answers[0].json()['id']}"}
    assert _count(database_url, ModelRow) == 1
    # a new key is a new request
    other = client.post("/v1/models", json=spec, headers={"Idempotency-Key": "fit-2"})
    assert other.status_code == 202 and other.json()["id"] != answers[0].json()["id"]


def test_a_client_error_is_replayed_too(client: TestClient) -> None:
    spec = {"dataset_id": "no-such-dataset", "formula": "y ~ x"}
    first = client.post("/v1/models", json=spec, headers={"Idempotency-Key": "bad-1"})
    body = assert_problem(first, 404)
    again = client.post("/v1/models", json=spec, headers={"Idempotency-Key": "bad-1"})
    assert again.status_code == 404 and again.json() == body
    assert again.headers["idempotent-replayed"] == "true"


def test_the_same_key_with_another_request_is_422(client: TestClient, mood_csv: bytes) -> None:
    assert _upload(client, mood_csv, "k").status_code == 201
    body = assert_problem(_upload(client, mood_csv + b"1,A,2\n", "k"), 422)
    assert body["type"] == "urn:mixedfit:problem:idempotency-key-reused"
    # the query is part of the request, and so is the path
    assert_problem(_upload(client, mood_csv, "k", name="other"), 422)
    assert_problem(client.post("/v1/comparisons", content=mood_csv,
                               headers={**CSV, "Idempotency-Key": "k"}), 422)


def test_without_a_key_every_post_is_handled(client: TestClient, mood_csv: bytes,
                                             database_url: str) -> None:
    assert _upload(client, mood_csv, None).status_code == 201
    assert _upload(client, mood_csv, None).status_code == 201
    assert _count(database_url, DatasetRow) == 2
    assert _count(database_url, IdempotencyRecordRow) == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_an_invalid_key_is_refused(client: TestClient, mood_csv: bytes, key: str,
                                   database_url: str) -> None:
    response = client.post("/v1/datasets?name=m", content=mood_csv,
                           headers={"Content-Type": "text/csv",
                                    "Idempotency-Key": key.encode("latin-1")})  # type: ignore[dict-item]
    body = assert_problem(response, 400)
    assert body["type"] == "urn:mixedfit:problem:invalid-idempotency-key"
    assert _count(database_url, DatasetRow) == 0


def test_a_key_of_255_characters_is_accepted(client: TestClient, mood_csv: bytes) -> None:
    first = _upload(client, mood_csv, "k" * 255)
    assert first.status_code == 201
    assert _upload(client, mood_csv, "k" * 255).json()["id"] == first.json()["id"]


class Gate:
    """A route of the test's own whose first call waits until the test lets it finish."""

    def __init__(self, app: FastAPI, status: int = 201) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.status = status

        @app.post("/v1/gated")
        def gated() -> JSONResponse:
            self.calls += 1
            call = self.calls
            if call == 1:
                self.entered.set()
                assert self.release.wait(30)
            return JSONResponse({"call": call}, status_code=self.status if call == 1 else 201,
                                headers={"Location": f"/v1/gated/{call}"})


@pytest.fixture
def gated(database_url: str) -> Iterator[tuple[TestClient, Gate]]:
    app = create_app(make_settings(database_url))
    gate = Gate(app)
    with TestClient(app) as client:
        yield client, gate
    gate.release.set()


def test_a_request_while_the_first_is_handled_is_409(
        gated: tuple[TestClient, Gate]) -> None:
    client, gate = gated
    headers = {"Idempotency-Key": "slow"}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/v1/gated", json={"a": 1}, headers=headers)
        assert gate.entered.wait(30)
        body = assert_problem(client.post("/v1/gated", json={"a": 1}, headers=headers), 409)
        assert body["type"] == "urn:mixedfit:problem:idempotency-key-in-use"
        # a different request with the key in use is still a misuse of the key
        assert_problem(client.post("/v1/gated", json={"a": 2}, headers=headers), 422)
        gate.release.set()
        answer = first.result(30)
    assert answer.status_code == 201 and answer.json() == {"call": 1}
    replay = client.post("/v1/gated", json={"a": 1}, headers=headers)
    assert replay.status_code == 201 and replay.json() == {"call": 1}
    assert replay.headers["location"] == "/v1/gated/1"
    assert gate.calls == 1


def test_a_server_error_is_not_kept(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    gate = Gate(app, status=503)
    gate.release.set()
    with TestClient(app) as client:
        headers = {"Idempotency-Key": "flaky"}
        assert client.post("/v1/gated", json={}, headers=headers).status_code == 503
        retry = client.post("/v1/gated", json={}, headers=headers)
        assert retry.status_code == 201 and retry.json() == {"call": 2}
        assert client.post("/v1/gated", json={}, headers=headers).json() == {"call": 2}
    assert gate.calls == 2


def test_simultaneous_uploads_with_one_key_store_one_dataset(
        client: TestClient, mood_csv: bytes, database_url: str) -> None:
    barrier = threading.Barrier(2)

    def upload() -> Any:
        barrier.wait(10)
        return _upload(client, mood_csv, "race")

    with ThreadPoolExecutor(2) as pool:
        answers = [f.result(60) for f in [pool.submit(upload) for _ in range(2)]]
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409]), [a.text for a in answers]
    created = [a.json()["id"] for a in answers if a.status_code == 201]
    assert len(set(created)) == 1  # a second 201 is the replay of the first
    assert _count(database_url, DatasetRow) == 1


def test_expired_records_are_ignored_and_deleted(make_client: ClientFactory, mood_csv: bytes,
                                                 database_url: str) -> None:
    client = make_client(idempotency_ttl_seconds=0.0)
    first = _upload(client, mood_csv, "short-lived")
    second = _upload(client, mood_csv, "short-lived")
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert _count(database_url, IdempotencyRecordRow) == 1
    # another process's first keyed request clears what has expired
    later = make_client()
    assert _upload(later, mood_csv, "another").status_code == 201
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            keys = session.scalars(select(IdempotencyRecordRow.key)).all()
    finally:
        engine.dispose()
    assert keys == ["another"]


def test_other_methods_ignore_the_header(client: TestClient, mood_id: str) -> None:
    headers = {"Idempotency-Key": "get"}
    assert client.get(f"/v1/datasets/{mood_id}", headers=headers).status_code == 200
    assert client.delete(f"/v1/datasets/{mood_id}", headers=headers).status_code == 204
    assert client.get(f"/v1/datasets/{mood_id}", headers=headers).status_code == 404


def test_the_openapi_document_declares_the_header(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    posts = [(path, ops["post"]) for path, ops in spec["paths"].items() if "post" in ops]
    assert posts
    for path, post in posts:
        header = [p for p in post["parameters"] if p["name"] == "Idempotency-Key"]
        assert len(header) == 1 and header[0]["in"] == "header", path
        assert header[0]["schema"]["maxLength"] == 255
        assert {"400", "409", "422"} <= set(post["responses"]), path


def test_replays_and_refusals_are_counted_under_their_route(client: TestClient,
                                                            mood_csv: bytes) -> None:
    for _ in range(2):
        _upload(client, mood_csv, "counted")
    _upload(client, mood_csv + b"1,A,2\n", "counted")
    text = client.get("/metrics").text
    assert 'mixedfit_http_requests_total{method="POST",route="/v1/datasets",status="201"} 2.0' \
        in text
    assert 'mixedfit_http_requests_total{method="POST",route="/v1/datasets",status="422"} 1.0' \
        in text
