"""The per-tenant request rate limit (MIXEDFIT_RATE_LIMIT): 429 problem with Retry-After once
a caller has used its window, liveness and readiness never limited; memory and Redis."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.ops.ratelimit import parse_rate_limit
from tests.api.conftest import ClientFactory, assert_problem, make_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


def _assert_limited(client: TestClient, allowed: int) -> None:
    for _ in range(allowed):
        assert client.get("/v1/datasets").status_code == 200
    response = client.get("/v1/datasets")
    body = assert_problem(response, 429)
    assert body["type"] == "urn:mixedfit:problem:rate-limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    # a refused request counts too: a client that ignores Retry-After stays refused
    assert client.post("/v1/datasets", json={"records": [{"x": 1}]}).status_code == 429


def test_429_with_retry_after_past_the_limit(make_client: ClientFactory) -> None:
    client = make_client(rate_limit="3/minute")
    _assert_limited(client, 3)
    # counted under the route template, as the requests the router answers
    metrics = client.get("/metrics").text
    assert 'mixedfit_http_requests_total{method="GET",route="/v1/datasets",status="429"} 1.0' \
        in metrics


def test_liveness_and_readiness_are_not_limited(make_client: ClientFactory) -> None:
    client = make_client(rate_limit="1/minute")
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200
    assert client.get("/v1/datasets").status_code == 200
    assert_problem(client.get("/v1/datasets"), 429)


def test_open_mode_counts_per_client_address(database_url: str) -> None:
    app = create_app(make_settings(database_url, rate_limit="2/minute"))
    with TestClient(app, client=("10.0.0.1", 1000)) as first, \
            TestClient(app, client=("10.0.0.2", 1000)) as second:
        _assert_limited(first, 2)
        assert second.get("/v1/datasets").status_code == 200


def test_off_by_default(client: TestClient) -> None:
    for _ in range(50):
        assert client.get("/v1/datasets").status_code == 200


@pytest.mark.parametrize("text", ["", "none", "off", " None "])
def test_empty_or_none_is_off(text: str) -> None:
    assert parse_rate_limit(text) == []


def test_a_bad_limit_fails_at_start(database_url: str) -> None:
    with pytest.raises(ValueError, match="MIXEDFIT_RATE_LIMIT"):
        create_app(make_settings(database_url, rate_limit="lots"))


def _redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason=f"no Redis at {REDIS_URL}")
def test_api_processes_share_the_limit_in_redis(database_url: str) -> None:
    # two apps are two API processes; a client address of its own keeps runs apart
    address = (f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7", 1000)
    settings = make_settings(database_url, rate_limit=f"4/minute;{uuid.uuid4().int % 997 + 5}/hour",
                             rate_limit_storage=REDIS_URL)
    with TestClient(create_app(settings), client=address) as one, \
            TestClient(create_app(settings), client=address) as two:
        assert one.get("/v1/datasets").status_code == 200
        assert two.get("/v1/datasets").status_code == 200
        _assert_limited(one, 2)
        assert_problem(two.get("/v1/datasets"), 429)


def test_an_unreachable_storage_lets_requests_through(make_client: ClientFactory) -> None:
    client = make_client(rate_limit="1/minute", rate_limit_storage="redis://127.0.0.1:9/0")
    for _ in range(3):
        assert client.get("/v1/datasets").status_code == 200
