"""HTTP tests go through the real ASGI app (TestClient runs its lifespan) on a real,
migrated database: each test runs on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    # no storage reserve (service.db.reserve) unless a test asks for one: 16 MiB allocated
    # per test database would fill the temporary folder
    values: dict[str, Any] = {"database_url": database_url, "embedded_worker": False,
                              "max_wait_seconds": 5.0, "storage_reserve_bytes": 0}
    values.update(overrides)
    return Settings(**values)


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(database_url: str) -> Iterator[ClientFactory]:
    """Start an app on the test database with extra settings; closed after the test."""
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(database_url, **overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    """An API without a worker: models stay queued."""
    return make_client()


@pytest.fixture
def mood_csv() -> bytes:
    return (DATA / "mood.csv").read_bytes()


def upload_csv(client: TestClient, content: bytes, name: str = "mood") -> str:
    """Store a CSV dataset; its id."""
    response = client.post(f"/v1/datasets?name={name}", content=content,
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


@pytest.fixture
def mood_id(client: TestClient, mood_csv: bytes) -> str:
    return upload_csv(client, mood_csv)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem document with this status; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str) and body["type"]
    assert body["instance"] == response.request.url.path
    return body
