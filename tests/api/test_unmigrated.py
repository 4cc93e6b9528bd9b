"""An API (and its embedded worker) on a database that was never migrated: one clear log
line at start, 503 ``database-not-migrated`` with Retry-After on every route that needs the
database, no tracebacks, and everything working once ``mixedfit migrate`` has run.

Each test runs on a new empty SQLite file and a new empty PostgreSQL database (the
``empty_database_url`` fixture); ``mixedfit serve`` itself is started as a process on both.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient

from service.app import create_app
from service.db.migrate import alembic_config, upgrade
from service.db.session import create_db_engine, is_sqlite
from service.settings import Settings
from tests.api.conftest import DATA, assert_problem
from tests.processes import stop

NOT_MIGRATED = "urn:mixedfit:problem:database-not-migrated"
MIGRATE_HINT = "run `mixedfit migrate`"


def _client(url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, embedded_worker=True,
                                          worker_poll_seconds=0.05, max_wait_seconds=5)))


def _requests(client: TestClient) -> list[Any]:
    """One request to every kind of route that needs the database."""
    some_id = "00000000-0000-0000-0000-000000000000"
    return [
        client.get("/v1/datasets"),
        client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                    headers={"Content-Type": "text/csv"}),
        client.get(f"/v1/datasets/{some_id}"),
        client.get("/v1/models"),
        client.post("/v1/models", json={"dataset_id": some_id, "formula": "y ~ x"}),
        client.post("/v1/models", json={"not": "a model"}),  # refused before validation
        client.get(f"/v1/models/{some_id}?wait=1"),
        client.post(f"/v1/models/{some_id}/predictions", json={"records": [{"x": 1}]}),
        client.get(f"/v1/models/{some_id}/residuals"),
        client.get(f"/v1/models/{some_id}/plots"),
        client.post("/v1/comparisons", json={"model_ids": [some_id, some_id]}),
        client.get(f"/v1/comparisons/{some_id}"),
        client.get("/readyz"),
        client.get("/no/such/route"),
    ]


def _wait_until_ok(client: TestClient, path: str, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(path)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_routes_answer_database_not_migrated_until_migrate_runs(
        empty_database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with _client(empty_database_url) as client:
        for response in _requests(client):
            body = assert_problem(response, 503)
            assert body["type"] == NOT_MIGRATED, body
            assert MIGRATE_HINT in body["detail"] and "never migrated" in body["detail"]
            assert int(response.headers["retry-after"]) > 0
        # what needs no database still answers
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        time.sleep(1.0)  # the embedded worker polls (every 0.05 s) and must stay quiet

        said = [r for r in caplog.records
                if MIGRATE_HINT in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(said) == 1, [r.getMessage() for r in said]  # one line, at start
        assert said[0].name == "mixedfit" and "503" in said[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert not [r for r in caplog.records
                    if r.levelno >= logging.ERROR and r is not said[0]]

        upgrade(empty_database_url)  # what `mixedfit migrate` does
        assert _wait_until_ok(client, "/v1/datasets").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}
        # the waiting embedded worker has started too: a fit goes through
        dataset = client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                              headers={"Content-Type": "text/csv"}).json()["id"]
        model = client.post("/v1/models", json={"dataset_id": dataset,
                                                "formula": "Mood ~ Exercise"}).json()
        for _ in range(12):
            model = client.get(f"/v1/models/{model['id']}?wait=5").json()
            if model["status"] in ("succeeded", "failed"):
                break
        assert model["status"] == "succeeded", model


def test_a_database_behind_this_release_is_not_migrated_either(
        empty_database_url: str) -> None:
    engine = create_db_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0001")
    finally:
        engine.dispose()
    with _client(empty_database_url) as client:
        response = client.get("/v1/models")
        body = assert_problem(response, 503)
        assert body["type"] == NOT_MIGRATED
        assert "revision 0001, older than this release's" in body["detail"]
        assert MIGRATE_HINT in body["detail"]
        assert assert_problem(client.get("/readyz"), 503)["type"] == NOT_MIGRATED


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.slow
def test_mixedfit_serve_on_an_unmigrated_database(empty_database_url: str,
                                                  tmp_path: Path) -> None:
    """The issue as reported: `mixedfit serve` (with its worker) on an empty database."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
    env.update(MIXEDFIT_DATABASE_URL=empty_database_url, MIXEDFIT_WORKER_POLL_SECONDS="0.1")
    log = tmp_path / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        for _ in range(600):  # up to a minute to start on a loaded machine
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                pytest.fail(f"serve exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        status, headers, body = _get(base + "/v1/datasets")
        if is_sqlite(empty_database_url):
            # the embedded SQLite file belongs to serve, which migrates it at start
            assert status == 200, body
        else:
            assert status == 503 and body["type"] == NOT_MIGRATED, body
            assert int(headers["retry-after"]) > 0
            time.sleep(3)  # the worker's poll loop used to log a traceback every 2 s
    finally:
        stop(server)
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    if not is_sqlite(empty_database_url):
        assert text.count(MIGRATE_HINT) == 1, text[-3000:]
