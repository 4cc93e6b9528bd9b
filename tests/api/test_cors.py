"""CORS (MIXEDFIT_CORS_ORIGINS) and the refusal of cross-site writes, through the real app.

The browser's side of it (a page on another origin uploading, fitting and predicting; a
page on a disallowed origin refused) is tests/test_browser.py.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.ops.requests import RequestContextMiddleware
from service.ops.security import CrossSiteWriteGuard
from service.settings import Settings
from tests.api.conftest import ClientFactory, assert_problem
from tests.api.keys import make_key

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def cors_client(make_client: ClientFactory) -> TestClient:
    return make_client(cors_origins=[ALLOWED, "http://127.0.0.1:3000"])


def preflight(client: TestClient, origin: str, method: str = "POST",
              headers: str = "authorization, content-type, idempotency-key, x-request-id"):
    return client.options("/v1/datasets", headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers})


def test_settings_read_a_comma_separated_or_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXEDFIT_CORS_ORIGINS", f"{ALLOWED}/, http://127.0.0.1:3000")
    assert Settings().cors_origins == [ALLOWED, "http://127.0.0.1:3000"]
    monkeypatch.setenv("MIXEDFIT_CORS_ORIGINS", f'["{ALLOWED}"]')
    assert Settings().cors_origins == [ALLOWED]
    monkeypatch.setenv("MIXEDFIT_CORS_ORIGINS", "")
    assert Settings().cors_origins == []


def test_preflight_of_an_allowed_origin(cors_client: TestClient) -> None:
    response = preflight(cors_client, ALLOWED)
    assert response.status_code == 200
    headers = response.headers
    assert headers["access-control-allow-origin"] == ALLOWED
    assert {"GET", "POST", "DELETE"} <= set(headers["access-control-allow-methods"].split(", "))
    allowed = {name.lower() for name in headers["access-control-allow-headers"].split(", ")}
    assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed
    assert "access-control-allow-credentials" not in headers  # bearer keys, no cookies
    assert int(headers["access-control-max-age"]) > 0
    # answered inside the request context: the preflight has an id and the headers too
    assert headers["x-request-id"] and headers["x-content-type-options"] == "nosniff"


def test_preflight_of_another_origin_is_not_allowed(cors_client: TestClient) -> None:
    response = preflight(cors_client, OTHER)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_preflight_of_a_header_the_api_does_not_use_is_refused(cors_client: TestClient) -> None:
    response = preflight(cors_client, ALLOWED, headers="x-custom-thing")
    assert response.status_code == 400


def test_answers_to_an_allowed_origin_carry_cors_headers(cors_client: TestClient) -> None:
    response = cors_client.get("/v1/datasets", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {name.lower() for name in
               response.headers["access-control-expose-headers"].split(", ")}
    assert {"x-request-id", "location", "retry-after"} <= exposed
    assert "origin" in response.headers["vary"].lower()


@pytest.mark.parametrize("method, path, body", [
    ("GET", "/v1/models/nope", None),  # 404 problem
    ("POST", "/v1/models", {"formula": 1}),  # 422 problem
    ("PUT", "/v1/models", None),  # 405 problem
])
def test_problem_answers_carry_cors_headers(cors_client: TestClient, method: str, path: str,
                                            body: object) -> None:
    response = cors_client.request(method, path, json=body, headers={"Origin": ALLOWED})
    assert response.status_code >= 400
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_a_500_carries_cors_headers(make_client: ClientFactory) -> None:
    client = make_client(cors_origins=[ALLOWED])

    @client.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal")

    response = client.get("/boom", headers={"Origin": ALLOWED})
    assert_problem(response, 500)
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["x-request-id"]


def test_answers_to_another_origin_have_no_cors_headers(cors_client: TestClient) -> None:
    response = cors_client.get("/v1/datasets", headers={"Origin": OTHER})
    assert response.status_code == 200  # served, but the browser keeps the page from it
    assert "access-control-allow-origin" not in response.headers


def test_no_origins_means_no_cross_origin_access(client: TestClient) -> None:
    response = preflight(client, ALLOWED)
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers
    response = client.get("/v1/datasets", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers


def test_the_request_context_and_cors_wrap_every_other_middleware(
        cors_client: TestClient) -> None:
    from starlette.middleware.cors import CORSMiddleware

    stack = [entry.cls for entry in cors_client.app.user_middleware]
    assert stack[:2] == [RequestContextMiddleware, CORSMiddleware]
    assert CrossSiteWriteGuard in stack


CSV = b"x,y\n1,2\n2,3\n3,5\n"


@pytest.mark.parametrize("origin", [OTHER, "null", "http://127.0.0.1:3001"])
def test_a_write_from_a_disallowed_origin_is_refused_before_it_is_done(
        cors_client: TestClient, origin: str) -> None:
    # what a form or fetch(..., {mode: "no-cors"}) on another site sends: no preflight
    response = cors_client.post("/v1/datasets?name=x", content=CSV,
                                headers={"Origin": origin, "Content-Type": "text/plain"})
    body = assert_problem(response, 403)
    assert body["type"] == "urn:mixedfit:problem:cross-site-request-refused"
    assert body["origin"] == origin
    deleted = cors_client.delete("/v1/datasets/whatever", headers={"Origin": origin})
    assert deleted.status_code == 403
    assert cors_client.get("/v1/datasets").json()["total"] == 0


def test_writes_from_allowed_origins_this_server_and_non_browsers_are_served(
        cors_client: TestClient) -> None:
    for headers in ({"Origin": ALLOWED}, {"Origin": "http://testserver"}, {}):
        response = cors_client.post("/v1/datasets?name=x", content=CSV,
                                    headers={**headers, "Content-Type": "text/csv"})
        assert response.status_code == 201, (headers, response.text)
    assert cors_client.get("/v1/datasets").json()["total"] == 3


def test_without_origins_a_cross_site_write_is_refused_too(client: TestClient) -> None:
    response = client.post("/v1/datasets?name=x", content=CSV,
                           headers={"Origin": OTHER, "Content-Type": "text/csv"})
    assert_problem(response, 403)


def test_a_401_carries_cors_headers_and_the_request_id(cors_client: TestClient,
                                                        database_url: str) -> None:
    key = make_key(database_url, "frontend")
    # the preflight needs no key (a browser sends none with it)
    assert preflight(cors_client, ALLOWED, method="GET").status_code == 200
    response = cors_client.get("/v1/datasets", headers={"Origin": ALLOWED,
                                                        "X-Request-ID": "no-key-1"})
    body = assert_problem(response, 401)
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in exposed  # the page can read why
    assert response.headers["x-request-id"] == "no-key-1" and body["request_id"] == "no-key-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    answered = cors_client.get("/v1/datasets", headers={"Origin": ALLOWED, **key.headers})
    assert answered.status_code == 200
    assert answered.headers["access-control-allow-origin"] == ALLOWED
