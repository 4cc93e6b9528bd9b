"""API keys at the HTTP edge: open until a key exists, then /v1 needs a valid, unrevoked
``Authorization: Bearer`` key (401 problem documents with ``WWW-Authenticate`` otherwise);
health, readiness and, by default, the docs and metrics stay open. Real app, real
middleware, keys in the test's database (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.app import create_app
from service.auth.keys import KEY_PATTERN
from service.auth.principal import OPEN, Principal, principal_of
from service.db.models import DatasetRow
from service.db.session import create_db_engine, make_session_factory
from tests.api.conftest import ClientFactory, assert_problem, make_settings
from tests.api.keys import make_key, revoke_key, wait_until_heard

CSV = b"x,y\n1,2\n2,3\n3,5\n4,4\n"


def upload(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/datasets?name=d", content=CSV,
                       headers={"Content-Type": "text/csv", **(headers or {})})


def assert_unauthorized(response: Any, error: str | None = None) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert body["type"] == "urn:mixedfit:problem:unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    return body


def test_open_mode_needs_no_key_and_stores_no_tenant(client: TestClient,
                                                      database_url: str) -> None:
    response = upload(client)
    assert response.status_code == 201, response.text
    assert client.get("/v1/datasets").json()["total"] == 1
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            assert session.scalars(select(DatasetRow.tenant)).all() == [None]
    finally:
        engine.dispose()


def test_once_a_key_exists_v1_needs_it(client: TestClient, database_url: str) -> None:
    key = make_key(database_url, "acme")
    body = assert_unauthorized(client.get("/v1/datasets"))
    assert "Authorization: Bearer" in body["detail"]
    assert_unauthorized(upload(client))
    # an unknown route under /v1 says 401 too: without a key nothing about /v1 is told
    assert_unauthorized(client.get("/v1/nothing-here"))
    assert_unauthorized(client.get("/v1/datasets", headers={"Authorization": "Bearer mf_"
                                                            + "x" * 43}), "invalid_token")
    assert_unauthorized(client.get("/v1/datasets", headers={"Authorization": "Bearer nope"}),
                        "invalid_token")
    assert_unauthorized(client.get("/v1/datasets", headers={"Authorization": "Basic YTpi"}),
                        "invalid_request")
    assert_unauthorized(client.get("/v1/datasets", headers={"Authorization": key.key}),
                        "invalid_request")
    assert upload(client, key.headers).status_code == 201
    # the scheme's name is case-insensitive (RFC 9110)
    listed = client.get("/v1/datasets", headers={"Authorization": f"bearer {key.key}"})
    assert listed.status_code == 200 and listed.json()["total"] == 1


def test_a_revoked_key_is_refused_at_once(client: TestClient, database_url: str) -> None:
    kept, revoked = make_key(database_url, "acme"), make_key(database_url, "acme")
    assert client.get("/v1/datasets", headers=revoked.headers).status_code == 200
    changes = client.app.state.changes  # type: ignore[attr-defined]
    before = changes.token()
    revoke_key(database_url, revoked)
    wait_until_heard(changes, before)  # PostgreSQL: its notification, a moment after
    assert_unauthorized(client.get("/v1/datasets", headers=revoked.headers), "invalid_token")
    assert client.get("/v1/datasets", headers=kept.headers).status_code == 200
    # with no active key left the API is open again, as before any key was made
    before = changes.token()
    revoke_key(database_url, kept)
    wait_until_heard(changes, before)
    assert client.get("/v1/datasets").status_code == 200


def test_health_readiness_docs_and_metrics_stay_open_by_default(
        client: TestClient, database_url: str) -> None:
    make_key(database_url, "acme")
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json",
                 "/static/swagger-ui/swagger-ui.css"):
        assert client.get(path).status_code == 200, path


def test_docs_and_metrics_can_be_protected(make_client: ClientFactory,
                                           database_url: str) -> None:
    client = make_client(protect_docs=True, protect_metrics=True)
    # no key yet: open, as everything else
    assert client.get("/metrics").status_code == 200
    key = make_key(database_url, "ops")
    for path in ("/metrics", "/docs", "/openapi.json", "/static/swagger-ui/swagger-ui.css"):
        assert_unauthorized(client.get(path))
        assert client.get(path, headers=key.headers).status_code == 200, path
    for path in ("/healthz", "/readyz"):
        assert client.get(path).status_code == 200, path


def test_the_principal_is_in_request_state(database_url: str) -> None:
    """The contract the other middleware rely on: request.state.principal (and the scope's
    state, for pure ASGI middleware), a frozen Principal(tenant, admin, key_id)."""
    app = create_app(make_settings(database_url))
    seen: list[Principal | None] = []

    @app.get("/v1/test-whoami")
    def whoami(request: Request) -> dict[str, Any]:
        principal: Principal = request.state.principal
        seen.append(principal_of(request.scope))
        return {"tenant": principal.tenant, "admin": principal.admin,
                "key_id": principal.key_id}

    with TestClient(app) as client:
        assert client.get("/v1/test-whoami").json() == {"tenant": None, "admin": True,
                                                          "key_id": None}
        assert seen[-1] == OPEN
        key = make_key(database_url, "acme")
        admin = make_key(database_url, "ops", admin=True)
        assert client.get("/v1/test-whoami", headers=key.headers).json() == {
            "tenant": "acme", "admin": False, "key_id": key.id}
        assert client.get("/v1/test-whoami", headers=admin.headers).json() == {
            "tenant": "ops", "admin": True, "key_id": admin.id}
    with pytest.raises(AttributeError):
        seen[-1].tenant = "other"  # type: ignore[misc, union-attr]


def test_keys_are_random_prefixed_and_stored_hashed(database_url: str) -> None:
    from service.db.models import ApiKeyRow

    made = [make_key(database_url, "acme") for _ in range(3)]
    assert len({k.key for k in made}) == 3
    assert all(KEY_PATTERN.fullmatch(k.key) and len(k.key) == 3 + 43 for k in made)
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.scalars(select(ApiKeyRow)).all()
    finally:
        engine.dispose()
    stored = {value for row in rows for value in (row.key_sha256, row.prefix, row.id)}
    assert not any(k.key in stored for k in made)
    by_id = {row.id: row for row in rows}
    assert all(len(by_id[k.id].key_sha256) == 64 and by_id[k.id].prefix == k.key[:7]
               for k in made)


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["HTTPBearer"]["description"]}
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"HTTPBearer": []}], path
                assert "401" in operation["responses"], path
            else:
                assert "security" not in operation, path


def test_a_protected_metrics_scrape_on_an_unmigrated_database_is_503(
        empty_database_url: str) -> None:
    """/metrics is outside the schema gate; protected, its key check cannot run without the
    schema, and says what to do instead of failing."""
    settings = make_settings(empty_database_url, protect_metrics=True)
    with TestClient(create_app(settings)) as client:
        body = assert_problem(client.get("/metrics"), 503)
        assert body["type"] == "urn:mixedfit:problem:database-not-migrated"
        assert client.get("/healthz").status_code == 200


def test_a_key_check_without_the_database_is_503_with_retry_after(tmp_path: Any) -> None:
    """The database cannot be reached (here: a SQLite file in a folder that does not
    exist): the request cannot be authenticated, and is told to retry."""
    url = f"sqlite:///{tmp_path / 'missing' / 'mixedfit.db'}"
    with TestClient(create_app(make_settings(url))) as client:
        response = client.get("/v1/datasets")
        body = assert_problem(response, 503)
        assert body["type"] == "urn:mixedfit:problem:database-unavailable"
        assert response.headers["retry-after"]
