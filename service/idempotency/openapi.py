"""The OpenAPI document's account of Idempotency-Key: the header on every POST, and the
problem documents the middleware answers with (400 invalid key, 409 in use, 422 reused)."""

from __future__ import annotations

from typing import Any

from service.errors import problem_responses
from service.idempotency.middleware import MAX_KEY_LENGTH

PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes the POST safe to retry (draft-ietf-httpapi-idempotency-key-header): sent again "
        "with the same key and request, the first answer is replayed (Idempotent-Replayed: "
        "true); with another request, 422; while the first is being handled, 409. Kept 24 h "
        "per tenant."),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
               "pattern": f"^[!-~]([ -~]{{0,{MAX_KEY_LENGTH - 2}}}[!-~])?$"},
}


def document_idempotency_key(schema: dict[str, Any]) -> None:
    """Add the header and its refusals to every POST operation of ``schema``."""
    for operations in schema.get("paths", {}).values():
        post = operations.get("post")
        if post is None:
            continue
        parameters = post.setdefault("parameters", [])
        if not any(p.get("name") == PARAMETER["name"] for p in parameters):
            parameters.append(dict(PARAMETER))
        responses = post.setdefault("responses", {})
        for status, response in problem_responses(400, 409, 422).items():
            responses.setdefault(str(status), response)
