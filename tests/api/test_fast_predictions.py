"""Small JSON predictions from a cached model skip FastAPI's routing
(service.models.fast_predictions): the answers, errors and bookkeeping are the route's."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import fit_sleepstudy

ROWS = {"records": [{"Days": 0.0, "Subject": 308}, {"Days": 3.5, "Subject": 999}]}


@pytest.fixture
def model(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client(embedded_worker=True)
    return client, fit_sleepstudy(client)


def _both(client: TestClient, model_id: str, **request: Any) -> tuple[Any, Any]:
    """The same request the short way (plain) and through the route (a query string, which
    the short way never takes)."""
    url = f"/v1/models/{model_id}/predictions"
    client.post(url, **request)  # the model compiled and cached: the short way is open
    return client.post(url, **request), client.post(f"{url}?new_levels=population", **request)


def test_the_short_way_gives_the_route_s_numbers_and_headers(
        model: tuple[TestClient, str]) -> None:
    client, model_id = model
    short, routed = _both(client, model_id, json=ROWS)
    assert short.status_code == routed.status_code == 200
    assert short.json() == routed.json()
    assert short.headers["content-type"] == routed.headers["content-type"]
    for accept in ("text/csv", "application/vnd.apache.parquet"):
        short, routed = _both(client, model_id, json=ROWS, headers={"Accept": accept})
        assert short.content == routed.content and short.status_code == 200


def test_a_body_it_cannot_predict_gets_the_route_s_problem(
        model: tuple[TestClient, str]) -> None:
    client, model_id = model
    for body in ({"records": [{"Days": 1.0}], "columns": {"Days": [1.0]}},
                 {"records": [{"Subject": 308}]},
                 {"records": [{"Days": "soon", "Subject": 308}]}):
        short, routed = _both(client, model_id, json=body)
        assert_problem(short, 422)
        assert short.json()["detail"] == routed.json()["detail"]
    # a batch's dataset_id goes to the route, which queues the job
    batch = client.post(f"/v1/models/{model_id}/predictions",
                        json={"dataset_id": "00000000-0000-0000-0000-000000000000"})
    assert_problem(batch, 404)


def test_the_access_metrics_name_the_route(model: tuple[TestClient, str]) -> None:
    client, model_id = model
    _both(client, model_id, json=ROWS)
    metrics = client.get("/metrics").text
    line = next(line for line in metrics.splitlines()
                if line.startswith("mixedfit_http_requests_total")
                and "/predictions" in line and 'status="200"' in line)
    assert 'route="/v1/models/{model_id}/predictions"' in line
