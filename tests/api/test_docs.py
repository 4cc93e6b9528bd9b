"""The API docs work with no internet: the page and its assets come from the package."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_references_no_external_host(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.text
    assert "SwaggerUIBundle" in html
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert urls, "the page loads its assets from somewhere"
    assert all(url.startswith("/") for url in urls), urls
    assert "http://" not in html and "https://" not in html and "//cdn" not in html


def test_docs_assets_are_served(client: TestClient) -> None:
    html = client.get("/docs").text
    for url in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    bundle = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content


def test_openapi_json_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/models/{model_id}/predictions" in spec["paths"]
    assert "Problem" in spec["components"]["schemas"]
