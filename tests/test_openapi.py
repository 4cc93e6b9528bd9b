"""The committed OpenAPI document is the one the app serves (regenerate: `mixedfit openapi`)."""

from __future__ import annotations

import json
from pathlib import Path

from service.app import create_app
from service.cli import OPENAPI_PATH
from service.settings import Settings

COMMITTED = Path(__file__).resolve().parent.parent / OPENAPI_PATH


def _served() -> dict:
    return create_app(Settings(embedded_worker=False)).openapi()


def test_committed_openapi_equals_the_served_document() -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == _served(), \
        "openapi/openapi.json is stale: run `mixedfit openapi` and commit the file"


def test_every_error_response_is_a_problem_document() -> None:
    spec = _served()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    content = response["content"]
                    assert list(content) == ["application/problem+json"], (path, method, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_contract_routes_are_documented() -> None:
    paths = _served()["paths"]
    assert set(paths["/v1/datasets"]) == {"get", "post"}
    assert set(paths["/v1/datasets/{dataset_id}"]) == {"get", "delete"}
    assert set(paths["/v1/models"]) == {"get", "post"}
    assert "get" in paths["/v1/models/{model_id}"]
    assert "post" in paths["/v1/models/{model_id}/predictions"]
    body = paths["/v1/datasets"]["post"]["requestBody"]["content"]
    assert {"text/csv", "multipart/form-data", "application/json"} <= set(body)
    for route in ("/healthz", "/readyz", "/metrics"):
        assert "get" in paths[route]
