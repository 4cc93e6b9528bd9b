"""Reads of a model, plain or long polls, skip FastAPI's routing
(service.models.fast_reads): the answers, errors, caching headers and bookkeeping are the
route's, and a request it does not take goes to the route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.models.fast_reads import ModelReadFastPath
from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit

# the route's own spelling of "no wait", which the short way does not read (it takes plain
# decimals only): the same request, through the router
ROUTED = "wait=0e0"


class Routed:
    """Counts the reads of a model the short way handed to the route."""

    def __init__(self, client: TestClient) -> None:
        client.get("/healthz")  # the middleware stack is built by the first request
        layer: Any = client.app.middleware_stack  # type: ignore[attr-defined]
        while not isinstance(layer, ModelReadFastPath):
            layer = layer.app
        self.count = 0
        inner = layer.app

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            if scope["method"] == "GET" and scope["path"].startswith("/v1/models/"):
                self.count += 1
            await inner(scope, receive, send)

        layer.app = counted


@pytest.fixture
def fitted(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client(embedded_worker=True)
    dataset = client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                          headers={"Content-Type": "text/csv"}).json()
    model = fit(client, dataset["id"], "Mood ~ Exercise + (1 | State)")
    assert model["status"] == "succeeded", model
    return client, model["id"]


def test_the_short_way_gives_the_route_s_answer_and_caching(
        fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    routed_count = Routed(client)
    url = f"/v1/models/{model_id}"
    client.get(url)  # the first goes to the route, which the short way learns
    before = routed_count.count
    for query in ("", "?wait=0", "?wait=2.5"):
        short = client.get(url + query)
        routed = client.get(f"{url}?{ROUTED}")
        assert short.status_code == routed.status_code == 200
        assert short.content == routed.content
        for header in ("etag", "cache-control", "content-type", "vary"):
            assert short.headers.get(header) == routed.headers.get(header), header
    assert routed_count.count - before == 3  # the three ROUTED requests, no other
    # a conditional read: 304 either way
    etag = client.get(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"{url}?{ROUTED}", headers={"If-None-Match": etag}).status_code == 304


def test_errors_and_other_requests_go_to_the_route(fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    client.get(f"/v1/models/{model_id}")
    routed_count = Routed(client)
    missing = client.get("/v1/models/no-such-model?wait=0.5")
    body = assert_problem(missing, 404)
    assert "no-such-model" in body["detail"]
    assert routed_count.count == 1  # tried the short way, then answered by the route
    assert_problem(client.get(f"/v1/models/{model_id}?wait=-1"), 422)  # not a plain decimal
    assert client.get(f"/v1/models/{model_id}?wait=1&include=x").status_code == 200
    assert routed_count.count == 3


def test_a_long_poll_the_short_way_is_woken_by_the_fit(make_client: ClientFactory) -> None:
    client = make_client(embedded_worker=True)
    dataset = client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                          headers={"Content-Type": "text/csv"}).json()
    first = fit(client, dataset["id"], "Mood ~ Exercise")
    client.get(f"/v1/models/{first['id']}")  # the short way is open
    routed_count = Routed(client)
    queued = client.post("/v1/models", json={"dataset_id": dataset["id"],
                                             "formula": "Mood ~ Exercise + (1 | State)"})
    assert queued.status_code == 202
    model = client.get(f"{queued.headers['location']}?wait=5").json()
    assert model["status"] == "succeeded" and model["result"]["fixed_effects"]
    assert routed_count.count == 0


def test_the_access_metrics_name_the_route(fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    for _ in range(3):
        assert client.get(f"/v1/models/{model_id}?wait=1").status_code == 200
    metrics = client.get("/metrics").text
    line = next(line for line in metrics.splitlines()
                if line.startswith("mixedfit_http_requests_total") and "GET" in line
                and 'route="/v1/models/{model_id}"' in line and 'status="200"' in line)
    assert line.endswith((" 3.0", " 4.0"))
