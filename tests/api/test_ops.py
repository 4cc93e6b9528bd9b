"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import REQUEST_GC_THRESHOLDS, create_app
from service.settings import Settings
from tests.api.conftest import ClientFactory, assert_problem


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_on_a_migrated_database(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        body = assert_problem(client.get("/readyz"), 503)
        assert "mixedfit migrate" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_readyz_refuses_an_unreachable_database() -> None:
    # port 9 (discard) on the loopback address: nothing listens there, the connection fails
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:9/none",
                        embedded_worker=False)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        body = assert_problem(response, 503)
        assert "cannot be reached" in body["detail"]
        assert body["type"] == "urn:mixedfit:problem:database-unavailable"
        assert int(response.headers["retry-after"]) > 0


def _samples(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


def test_metrics_count_requests_by_route_template_and_jobs_by_state(
        client: TestClient, mood_id: str) -> None:
    for _ in range(2):
        client.post("/v1/models", json={"dataset_id": mood_id, "formula": "Mood ~ Exercise"})
    client.get(f"/v1/datasets/{mood_id}")
    client.get("/v1/datasets/does-not-exist")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = _samples(text, "mixedfit_http_requests_total")
    assert 'mixedfit_http_requests_total{method="POST",route="/v1/models",status="202"} 2.0' \
        in requests
    assert any('route="/v1/datasets/{dataset_id}",status="200"' in s for s in requests)
    assert any('route="/v1/datasets/{dataset_id}",status="404"' in s for s in requests)
    assert not any(mood_id in s for s in requests)  # ids never become labels
    assert _samples(text, "mixedfit_http_request_duration_seconds_bucket")
    assert 'mixedfit_jobs{state="queued"} 2.0' in text
    assert 'mixedfit_jobs{state="running"} 0.0' in text
    assert "mixedfit_fit_duration_seconds_count 0.0" in text


def test_serving_keeps_full_collections_rare(make_client: ClientFactory) -> None:
    """Once started, what the process has made is frozen out of the collector's sight and
    its oldest generation is collected a tenth as often as Python's default: a full
    collection of what 500 long polls hold stopped the event loop for 70 ms and more."""
    gc.set_threshold(700, 10, 10)
    make_client()
    assert gc.get_threshold() == REQUEST_GC_THRESHOLDS
    assert REQUEST_GC_THRESHOLDS[2] > 10
    assert gc.get_freeze_count() > 0
