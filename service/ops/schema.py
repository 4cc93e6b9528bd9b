"""The API's answer while its database has not the schema this release needs.

Every route but liveness, metrics and the docs (which need no database) answers 503
``database-not-migrated`` with ``Retry-After``, instead of failing on the missing tables;
the check is the app's :class:`~service.db.migrate.SchemaGate`, which costs nothing once
the schema has been found current.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.db.migrate import SchemaGate
from service.errors import DatabaseNotMigrated, service_error_response

# what answers without the database
EXEMPT_PATHS = frozenset({"/healthz", "/metrics", "/docs", "/openapi.json"})
EXEMPT_PREFIXES = ("/static/",)


def needs_schema(path: str) -> bool:
    return path not in EXEMPT_PATHS and not path.startswith(EXEMPT_PREFIXES)


class SchemaGateMiddleware:
    """Answers 503 database-not-migrated while the gate reports a schema problem."""

    def __init__(self, app: ASGIApp, gate: Callable[[], SchemaGate | None]) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate() if scope["type"] == "http" else None
        if gate is not None and not gate.current and needs_schema(scope.get("path", "")):
            problem = await run_in_threadpool(gate.problem)
            if problem is not None:
                response = service_error_response(Request(scope), DatabaseNotMigrated(problem))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
