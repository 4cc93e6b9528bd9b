"""Every error is an RFC 9457 problem document, FastAPI's own ones included."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import assert_problem


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v2/nothing-here"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert "/v2/nothing-here" in body["detail"]


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    response = client.put("/v1/datasets")
    body = assert_problem(response, 405)
    assert "PUT" in body["detail"]
    assert "allow" in response.headers


def test_validation_error_lists_each_field(client: TestClient) -> None:
    response = client.get("/v1/datasets?limit=abc&offset=-1")
    body = assert_problem(response, 422)
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert fields == {("query", "limit"), ("query", "offset")}
    assert all(e["detail"] and e["type"] for e in body["errors"])


def test_body_that_is_not_json_is_a_problem(client: TestClient) -> None:
    response = client.post("/v1/models", content=b"{not json",
                           headers={"Content-Type": "application/json"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["location"] == "body"


def test_unexpected_failure_is_a_500_problem_without_internals(database_url: str) -> None:
    from service.app import create_app
    from tests.api.conftest import make_settings

    app = create_app(make_settings(database_url))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["title"] == "Internal Server Error"
