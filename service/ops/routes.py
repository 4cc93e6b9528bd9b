"""The route template of a request that a middleware answers itself (an idempotent replay,
a refused key, a 429), so metrics and access logs name it as they name the requests the
router handles (``scope["route"].path``), never by its raw path."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.routing import compile_path
from starlette.types import Scope


@dataclass(frozen=True)
class RouteTemplate:
    """What the metrics and the access log read of ``scope["route"]``: its path template."""

    path: str


def name_route(scope: Scope) -> None:
    """Put the template of the documented operation that ``scope`` asks for in
    ``scope["route"]`` (nothing when none matches: it stays "unmatched")."""
    if scope.get("route") is not None:
        return
    openapi = getattr(scope.get("app"), "openapi", None)
    if openapi is None:
        return
    method = scope.get("method", "").lower()
    path = scope.get("path", "")
    for template, operations in openapi().get("paths", {}).items():
        if method in operations and compile_path(template)[0].match(path):
            scope["route"] = RouteTemplate(template)
            return
