"""Authentication as pure ASGI middleware, so that other middleware can read the caller.

Every HTTP request gets a :class:`~service.auth.principal.Principal` in
``scope["state"]["principal"]`` before the inner app runs. Paths under ``/v1`` need a key as
soon as one unrevoked key exists: without a valid ``Authorization: Bearer <key>`` they are
answered 401 (a problem document with ``WWW-Authenticate: Bearer``) and go no further.
``/healthz`` and ``/readyz`` never need one; ``/metrics`` and the docs (``/docs``,
``/openapi.json``, ``/static/``) need one when ``MIXEDFIT_PROTECT_METRICS`` or
``MIXEDFIT_PROTECT_DOCS`` is set. The key lookup is SQL in a short session of its own, run
on the threadpool so it never blocks the event loop; its outcome is kept until the
database changes (``service.auth.cache``), so a key in use costs neither a query nor a
thread per request.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth.cache import AuthCache
from service.auth.keys import Refusal, authenticate
from service.auth.principal import ANONYMOUS, STATE_KEY, Principal
from service.db.changes import ChangeToken
from service.db.migrate import SchemaGate
from service.db.session import is_database_unavailable
from service.db.storage import is_storage_full
from service.errors import (
    PROBLEM_TYPE_PREFIX,
    DatabaseNotMigrated,
    DatabaseUnavailable,
    ServiceError,
    problem_response,
    service_error_response,
    storage_full,
)

API_PREFIX = "/v1"
DOCS_PATHS = frozenset({"/docs", "/openapi.json"})
DOCS_PREFIXES = ("/static/",)
METRICS_PATHS = frozenset({"/metrics"})
REALM = "mixedfit"


def needs_key(path: str, *, protect_docs: bool, protect_metrics: bool) -> bool:
    """Whether a request for ``path`` must carry a key (once any key exists)."""
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return True
    if protect_metrics and path in METRICS_PATHS:
        return True
    return protect_docs and (path in DOCS_PATHS or path.startswith(DOCS_PREFIXES))


def challenge(refusal: Refusal) -> str:
    """The ``WWW-Authenticate`` value of a refusal (RFC 6750 section 3)."""
    if refusal.error is None:
        return f'Bearer realm="{REALM}"'
    return f'Bearer realm="{REALM}", error="{refusal.error}"'


class AuthMiddleware:
    """Puts the caller's principal in the scope, or answers 401 for a /v1 path without one."""

    def __init__(self, app: ASGIApp, session_factory: Callable[[], sessionmaker[Session] | None],
                 gate: Callable[[], SchemaGate | None], protect_docs: bool = False,
                 protect_metrics: bool = False, cache_seconds: float = 0.0,
                 changes: ChangeToken | None = None) -> None:
        self.app = app
        self.cache = AuthCache(cache_seconds, changes=changes)
        self.session_factory = session_factory
        self.gate = gate
        self.protect_docs = protect_docs
        self.protect_metrics = protect_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not needs_key(scope.get("path", ""), protect_docs=self.protect_docs,
                         protect_metrics=self.protect_metrics):
            state[STATE_KEY] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":  # the API has none; refused rather than unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        authorization = request.headers.get("authorization")
        outcome: Principal | Refusal | ServiceError | None = self.cache.get(authorization)
        if outcome is None:
            stamp = self.cache.stamp()  # before the lookup: a change during it is seen
            outcome = await run_in_threadpool(self._check, authorization)
            if isinstance(outcome, Principal | Refusal):  # never a database error
                self.cache.put(authorization, outcome, stamp)
        if isinstance(outcome, ServiceError):
            await service_error_response(request, outcome)(scope, receive, send)
            return
        if isinstance(outcome, Refusal):
            await problem_response(
                401, "Unauthorized", outcome.detail, request,
                PROBLEM_TYPE_PREFIX + "unauthorized",
                headers={"WWW-Authenticate": challenge(outcome)})(scope, receive, send)
            return
        state[STATE_KEY] = outcome
        await self.app(scope, receive, send)

    def _check(self, authorization: str | None) -> Principal | Refusal | ServiceError:
        """The caller, a refusal, or the 503 of a key lookup the database cannot answer."""
        try:
            factory = self.session_factory()
            if factory is None:
                raise RuntimeError("the application's database is not open")
            with factory() as session:
                try:
                    return authenticate(session, authorization)
                finally:
                    session.rollback()  # a read: end it (on SQLite, release the write lock)
        except Exception as error:
            gate = self.gate()
            problem = gate.problem() if gate is not None else None
            if problem is not None:
                return DatabaseNotMigrated(problem)
            if is_storage_full(error):
                # on a full disk SQLite may fail even a read: a new connection cannot make
                # its WAL index (-shm), SQLITE_IOERR_SHMSIZE
                return storage_full(error, "an API key lookup")
            if is_database_unavailable(error):
                return DatabaseUnavailable("The database is unavailable, so the API key "
                                           "cannot be checked; retry the request shortly.")
            raise
