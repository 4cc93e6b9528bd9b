"""Cancelling fits through the HTTP API (SQLite and PostgreSQL): a queued fit is never run;
a running fit on a real worker is stopped (the worker, which fits one model at a time, goes
on to the next fit, long before the cancelled one could have ended) and stores nothing; a
finished fit cannot be cancelled."""

from __future__ import annotations

import io
import time

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.db import notify
from service.db.models import JobRow
from service.db.notify import libpq_url
from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import fit_spec, wait_for_model
from tests.jobs.helpers import SLOW_FORMULA, endless_lmm_data

PARQUET = "application/vnd.apache.parquet"


def _job_statuses(session_factory: sessionmaker[Session], model_id: str) -> list[str]:
    with session_factory() as session:
        return [job.status for job in session.query(JobRow).filter(JobRow.target_id == model_id)]


def test_a_queued_fit_is_cancelled_and_never_runs(
        client: TestClient, mood_id: str, session_factory: sessionmaker[Session]) -> None:
    model = client.post("/v1/models", json={"dataset_id": mood_id,
                                            "formula": "Mood ~ Exercise"}).json()
    cancelled = client.post(f"/v1/models/{model['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    assert body["error"]["type"].endswith("fit-cancelled")
    assert _job_statuses(session_factory, model["id"]) == ["cancelled"]
    assert client.post(f"/v1/models/{model['id']}/cancel").json()["status"] == "cancelled"
    assert client.get(f"/v1/models/{model['id']}?wait=1").json()["status"] == "cancelled"
    assert client.get("/v1/models?status=cancelled").json()["total"] == 1
    refused = assert_problem(client.post(f"/v1/models/{model['id']}/predictions",
                                         json={"records": [{"Exercise": 1.0}]}), 409)
    assert "cancelled" in refused["detail"]
    assert_problem(client.post("/v1/models/nope/cancel"), 404)
    assert client.delete(f"/v1/models/{model['id']}").status_code == 204


def test_a_running_fit_is_stopped(make_client: ClientFactory, mood_id: str,
                                  session_factory: sessionmaker[Session]) -> None:
    client = make_client(embedded_worker=True, worker_poll_seconds=0.05)
    data = io.BytesIO()
    endless_lmm_data().to_parquet(data)
    dataset = client.post("/v1/datasets?name=endless", content=data.getvalue(),
                          headers={"Content-Type": PARQUET})
    assert dataset.status_code == 201, dataset.text
    slow = client.post("/v1/models", json={"dataset_id": dataset.json()["id"],
                                           "formula": SLOW_FORMULA, "name": "slow"}).json()
    for _ in range(600):  # until the worker has claimed it (the limit only stops a hang)
        if client.get(f"/v1/models/{slow['id']}").json()["status"] == "running":
            break
        time.sleep(0.1)
    cancelled = client.post("/v1/models/slow@1/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    # the one worker thread is free again only once the cancelled fit's process stopped:
    # a fit of minutes, so this fit finishing says it was stopped
    quick = fit_spec(client, {"dataset_id": mood_id, "formula": "Mood ~ Exercise"})
    assert quick["status"] == "succeeded", quick
    final = wait_for_model(client, f"/v1/models/{slow['id']}", "the cancelled fit")
    assert final["status"] == "cancelled" and final["result"] is None
    assert _job_statuses(session_factory, slow["id"]) == ["cancelled"]
    assert_problem(client.post(f"/v1/models/{quick['id']}/cancel"), 409)


def test_a_cancel_notifies_other_api_processes_long_polls(
        client: TestClient, mood_id: str, database_url: str) -> None:
    """On PostgreSQL the cancel is announced as a finished fit (what wakes the long polls
    of every API process); SQLite has one process, whose polls are woken directly."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's NOTIFY")
    model = client.post("/v1/models", json={"dataset_id": mood_id,
                                            "formula": "Mood ~ Exercise"}).json()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as listener:
        listener.execute(f"LISTEN {notify.FINISHED}")
        assert client.post(f"/v1/models/{model['id']}/cancel").status_code == 200
        # the limit only stops a hang: the notification is sent at the cancel's commit
        payloads = [n.payload for n in listener.notifies(timeout=30, stop_after=1)]
    assert payloads == [model["id"]]
