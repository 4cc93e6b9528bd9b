"""Reads and long polls hold nothing up: a read never waits for SQLite's write lock, and
hundreds of clients waiting for fits at once are all answered while others are served."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from service.app import create_app
from tests.api.conftest import DATA, ClientFactory, make_settings
from tests.api.fitting import fit
from tests.live_server import statuses_of

MOOD_LMM = "Mood ~ Exercise + (1 | State)"


def _hold_write_lock(database_url: str) -> sqlite3.Connection:
    """Another connection that has taken SQLite's write lock and keeps it."""
    connection = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    return connection


def test_reads_do_not_wait_for_the_write_lock(database_url: str, make_client: ClientFactory,
                                              mood_csv: bytes) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock: PostgreSQL readers never wait for writers")
    client: TestClient = make_client(embedded_worker=True, max_wait_seconds=5.0)
    dataset = client.post("/v1/datasets", content=mood_csv,
                          headers={"Content-Type": "text/csv"}).json()
    model = fit(client, dataset["id"], MOOD_LMM)
    assert model["status"] == "succeeded", model
    writer = _hold_write_lock(database_url)
    try:
        # Each of these would wait for the busy timeout (30 s) and answer 503 if it took
        # the write lock; a read-only unit of work reads its snapshot instead.
        assert client.get(f"/v1/models/{model['id']}").status_code == 200
        assert client.get(f"/v1/models/{model['id']}?wait=1").json()["status"] == "succeeded"
        assert client.get("/v1/models").json()["total"] == 1
        assert client.get(f"/v1/datasets/{dataset['id']}").status_code == 200
        assert client.get(f"/v1/models/{model['id']}/random-effects").status_code == 200
        prediction = client.post(f"/v1/models/{model['id']}/predictions",
                                 json={"records": [{"Exercise": 3, "State": "Ohio"}]})
        assert prediction.status_code == 200, prediction.text
    finally:
        writer.rollback()
        writer.close()


async def _long_polls(database_url: str, n_models: int, n_clients: int
                      ) -> tuple[list[dict[str, Any]], list[int], list[int]]:
    app = create_app(make_settings(database_url, embedded_worker=True, max_wait_seconds=60.0))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://test", timeout=120.0) as client:
        upload = await client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                                   headers={"Content-Type": "text/csv"})
        dataset_id = upload.json()["id"]
        ids = []
        for _ in range(n_models):
            created = await client.post("/v1/models", json={"dataset_id": dataset_id,
                                                            "formula": MOOD_LMM})
            ids.append(created.json()["id"])

        async def wait(index: int) -> httpx.Response:
            return await client.get(f"/v1/models/{ids[index % n_models]}?wait=50")

        waits = asyncio.gather(*(wait(i) for i in range(n_clients)))
        healthz, reads = await asyncio.gather(
            statuses_of(client, "/healthz"),
            statuses_of(client, f"/v1/datasets/{dataset_id}", times=10))
        answers = await waits
        assert all(answer.status_code == 200 for answer in answers), {
            answer.status_code for answer in answers}
        return [answer.json() for answer in answers], healthz, reads


def test_500_concurrent_long_polls_are_all_answered(database_url: str) -> None:
    models, healthz, reads = asyncio.run(_long_polls(database_url, n_models=10,
                                                     n_clients=500))
    assert len(models) == 500
    # every waiter got its model once its fit had finished, not a timeout's "queued"
    assert {model["status"] for model in models} == {"succeeded"}
    # and the API answered other clients meanwhile
    assert healthz == [200] * 20
    assert reads == [200] * 10


def test_post_with_wait_answers_the_finished_model_in_one_round_trip(
        make_client: ClientFactory, mood_csv: bytes) -> None:
    client = make_client(embedded_worker=True, max_wait_seconds=30.0)
    dataset = client.post("/v1/datasets", content=mood_csv,
                          headers={"Content-Type": "text/csv"}).json()
    spec = {"dataset_id": dataset["id"], "formula": MOOD_LMM}
    finished = client.post("/v1/models?wait=30", json=spec)
    assert finished.status_code == 201, finished.text
    model = finished.json()
    assert model["status"] == "succeeded"
    assert finished.headers["location"] == f"/v1/models/{model['id']}"
    assert model == client.get(finished.headers["location"]).json()
    assert model["result"]["fixed_effects"][0]["term"] == "(Intercept)"
    # a fit that fails within the wait is finished too: 201 with its problem
    one_level = client.post("/v1/datasets", json={"records": [
        {"y": 1.0, "h": "z"}, {"y": 2.0, "h": "z"}, {"y": 3.5, "h": "z"}]}).json()
    failed = client.post("/v1/models?wait=30",
                         json={"dataset_id": one_level["id"], "formula": "y ~ h"})
    assert failed.status_code == 201, failed.text
    assert failed.json()["status"] == "failed" and failed.json()["error"]["detail"]


def test_post_with_wait_answers_202_when_the_fit_is_not_done_in_time(
        client: TestClient, mood_id: str) -> None:
    started = client.post("/v1/models?wait=0.3",
                          json={"dataset_id": mood_id, "formula": MOOD_LMM})
    assert started.status_code == 202  # no worker: still queued after the wait
    assert started.json()["status"] == "queued"
    without = client.post("/v1/models", json={"dataset_id": mood_id, "formula": MOOD_LMM})
    assert without.status_code == 202
