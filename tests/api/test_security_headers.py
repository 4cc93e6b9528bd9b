"""Security headers on every answer; the docs page's own Content-Security-Policy.

That the docs page works under its policy in a real browser (Swagger UI renders and runs a
request with no CSP violation) is tests/test_browser.py; that `mixedfit serve` sends no
`server` header is checked there too, on the real server.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from service.ops.security import DEFAULT_CSP
from tests.api.conftest import ClientFactory


def assert_security_headers(response: object, csp: str | None = DEFAULT_CSP) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    if csp is not None:
        assert headers["content-security-policy"] == csp
    assert "server" not in headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json",
                                  "/v1/datasets", "/v1/models/nope", "/nowhere",
                                  "/static/swagger-ui/swagger-ui.css"])
def test_every_answer_has_the_security_headers(client: TestClient, path: str) -> None:
    assert_security_headers(client.get(path))


def test_error_answers_have_them(make_client: ClientFactory) -> None:
    client = make_client()
    assert_security_headers(client.post("/v1/models", json={}))
    assert_security_headers(client.delete("/v1/models"))

    @client.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal")

    response = client.get("/boom")
    assert response.status_code == 500
    assert_security_headers(response)


def test_the_api_policy_lets_nothing_load_or_run() -> None:
    directives = dict(part.strip().split(" ", 1) for part in DEFAULT_CSP.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "script-src" not in directives  # falls back to default-src 'none'


def test_docs_policy_allows_this_servers_assets_and_the_pages_own_script(
        client: TestClient) -> None:
    response = client.get("/docs")
    assert_security_headers(response, csp=None)
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    scripts = re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL)
    assert scripts, "the page initialises Swagger UI in an inline script"
    allowed = directives["script-src"].split()
    assert "'self'" in allowed and "'unsafe-inline'" not in allowed
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed
    assert directives["connect-src"] == "'self'"  # "Try it out" calls this server only
    assert "http" not in policy  # no other host
