"""A fit posted with ``?wait=`` while the embedded worker is idle is handed to it: its job is
inserted already claimed by that worker (no poll, no claim), and it still ends once; a
worker that a request has reserved claims nothing else, and is free again when the request
inserts nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.jobs.embedded import EmbeddedWorker
from service.jobs.tasks import fit_request
from service.models import service
from service.models.schemas import ModelCreate
from tests.api.conftest import ClientFactory, upload_csv

MOOD_LMM = "Mood ~ Exercise + (1 | State)"


def _wait_idle(worker: EmbeddedWorker) -> None:
    deadline = time.monotonic() + 60
    while not worker.idle:
        assert time.monotonic() < deadline, "the embedded worker never became idle"
        time.sleep(0.01)


def _job_of(database_url: str, model_id: str) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT status, attempts, recoveries, lease_owner, created_at, started_at "
                "FROM jobs WHERE target_id = :id"), {"id": model_id}).mappings().all()
    finally:
        engine.dispose()
    assert len(rows) == 1, rows  # one job per model, whichever way it went
    return dict(rows[0])


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


@dataclass
class Idle:
    """An app with its embedded worker idle, and the mood data stored."""

    client: TestClient
    worker: EmbeddedWorker
    dataset_id: str


@pytest.fixture
def idle(make_client: ClientFactory, mood_csv: bytes) -> Idle:
    client = make_client(embedded_worker=True, max_wait_seconds=60.0)
    dataset_id = upload_csv(client, mood_csv)
    worker: EmbeddedWorker = client.app.state.embedded_worker  # type: ignore[attr-defined]
    _wait_idle(worker)
    return Idle(client, worker, dataset_id)


def _post(idle: Idle, wait: float, formula: str = MOOD_LMM) -> Any:
    return idle.client.post(f"/v1/models?wait={wait}",
                            json={"dataset_id": idle.dataset_id, "formula": formula})


def test_a_waiting_post_is_handed_to_the_idle_worker(database_url: str, idle: Idle) -> None:
    for _ in range(2):  # the second on a dataset whose frame the warm process keeps
        _wait_idle(idle.worker)
        answer = _post(idle, 60)
        assert answer.status_code == 201, answer.text
        model = answer.json()
        assert model["status"] == "succeeded"
        assert answer.headers["location"] == f"/v1/models/{model['id']}"
        job = _job_of(database_url, model["id"])
        # inserted claimed: it started when it was queued, as attempt 1 (its lease ended
        # with it)
        assert _moment(job["started_at"]) == _moment(job["created_at"])
        assert (job["status"], job["attempts"], job["recoveries"]) == ("succeeded", 1, 0)
        # the same document as a read of the model
        assert idle.client.get(f"/v1/models/{model['id']}").json() == model


def test_a_refused_post_leaves_the_worker_free(database_url: str, idle: Idle) -> None:
    refused = _post(idle, 60, "Mood ~ Nope")
    assert refused.status_code == 422, refused.text
    # reserved for the insert that was refused, then released (woken, it looks for work
    # once and is idle again)
    _wait_idle(idle.worker)
    answer = _post(idle, 60)
    assert answer.status_code == 201, answer.text
    job = _job_of(database_url, answer.json()["id"])
    assert _moment(job["started_at"]) == _moment(job["created_at"])


def test_a_reserved_worker_claims_nothing_else_until_released(database_url: str,
                                                               idle: Idle) -> None:
    lease = idle.worker.reserve()  # as a request about to insert its fit does
    assert lease is not None and lease.worker_id == idle.worker.worker_id
    assert idle.worker.reserve() is None  # one at a time
    queued = _post(idle, 1)
    # the worker was not idle: queued the usual way, and not claimed while reserved
    assert queued.status_code == 202, queued.text
    model_id = queued.json()["id"]
    assert queued.json()["status"] == "queued"
    assert _job_of(database_url, model_id)["status"] == "queued"
    idle.worker.unreserve()
    assert idle.client.get(f"/v1/models/{model_id}?wait=60").json()["status"] == "succeeded"
    job = _job_of(database_url, model_id)
    assert _moment(job["started_at"]) > _moment(job["created_at"])  # claimed from the queue
    assert (job["attempts"], job["recoveries"]) == (1, 0)


def test_a_fit_handed_over_as_the_worker_stops_goes_back_to_the_queue(
        database_url: str, idle: Idle) -> None:
    lease = idle.worker.reserve()
    assert lease is not None
    idle.worker.stop()  # the loop ends before the fit is handed over
    factory = idle.client.app.state.session_factory  # type: ignore[attr-defined]
    with factory.begin() as session:
        row, job = service.create_model_and_job(
            session, ModelCreate(dataset_id=idle.dataset_id, formula=MOOD_LMM), 3,
            claimed=lease)
    idle.worker.hand(job, fit_request(row, None))
    idle.worker.worker.release_handed()
    stored = _job_of(database_url, row.id)
    assert (stored["status"], stored["attempts"], stored["lease_owner"]) == ("queued", 0, None)
    assert idle.client.get(f"/v1/models/{row.id}").json()["status"] == "queued"
