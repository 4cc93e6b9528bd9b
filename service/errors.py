"""Typed domain errors and the one place that renders every error as RFC 9457 problem+json.

Services raise ``ServiceError`` subclasses (never ``HTTPException``); the statistics core
raises ``StatsError``, which is always the client's input and so a 422. FastAPI's own
validation errors and routing errors (404, 405) get the same document shape, and an
unexpected exception becomes a 500 problem that reveals nothing of the internals.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import exc as sqlalchemy_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.context import current_request_id
from service.db.session import is_database_unavailable
from service.db.storage import describe, is_storage_full
from service.stats.errors import FormulaError, StatsError

logger = logging.getLogger("mixedfit.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable identifiers that promise no web page at some host.
PROBLEM_TYPE_PREFIX = "urn:mixedfit:problem:"


class FieldError(BaseModel):
    """One invalid input field: where it is and what is wrong with it."""

    location: str
    field: str
    detail: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document; extension members (``errors``, ...) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ServiceError(Exception):
    """A request that the service refuses; subclasses fix the status and the problem type."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"
    retry_after_seconds: int | None = None  # set for temporary refusals (Retry-After)

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class InvalidInput(ServiceError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class NotFound(ServiceError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PreconditionFailed(ServiceError):
    """A conditional request (If-Match) whose condition no longer holds."""

    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(ServiceError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class ClientClosedRequest(ServiceError):
    """The client went away before its answer was ready (nginx's 499): the answer goes
    nowhere, and the access log says what happened instead of a 500."""

    status = 499
    slug = "client-closed-request"
    title = "The client closed the request"


class UnsupportedMediaType(ServiceError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ServiceUnavailable(ServiceError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached: worth retrying, so the answer says when."""

    slug = "database-unavailable"
    retry_after_seconds = 5  # a restart or a failover takes seconds


class DatabaseNotMigrated(ServiceUnavailable):
    """The database has not (all of) the schema this release needs: `mixedfit migrate`."""

    slug = "database-not-migrated"
    title = "Database not migrated"
    retry_after_seconds = 10  # a migration takes seconds once someone runs it


class InsufficientStorage(ServiceError):
    """The database's disk is full: the write is refused, and retrying it will not help
    until space is freed (no Retry-After). Reads and deletes keep working."""

    status = 507
    slug = "insufficient-storage"
    title = "Insufficient storage"


INSUFFICIENT_STORAGE_DETAIL = (
    "The server's storage is full, so nothing new can be stored. Deleting datasets "
    "(DELETE /v1/datasets/{id}) frees space; reads and deletes keep working.")


def storage_full(error: BaseException, where: str) -> InsufficientStorage:
    """The 507 of a write that found the database's disk full; its cause goes to the log
    (one warning line, with the database's message, never the statement or its data)."""
    logger.warning("storage full on %s: %s", where, describe(error))
    return InsufficientStorage(INSUFFICIENT_STORAGE_DETAIL)


def problem_response(
    status: int,
    title: str,
    detail: str | None,
    request: Request,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """Render one problem document."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        # the X-Request-ID of this answer: what to quote to find the request in the logs
        "request_id": current_request_id(),
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                        headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return service_error_response(request, exc)


def service_error_response(request: Request, exc: ServiceError) -> JSONResponse:
    """The problem document of a ``ServiceError`` (with Retry-After when it has one)."""
    retry_after = exc.retry_after_seconds
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    if isinstance(exc, PayloadTooLarge):
        # reading stopped at the limit while the client may still be sending: the connection
        # ends with this answer, rather than the server reading the rest only to drop it
        headers["Connection"] = "close"
    return problem_response(exc.status, exc.title, exc.detail, request,
                            PROBLEM_TYPE_PREFIX + exc.slug, headers=headers or None,
                            **exc.extensions)


async def _stats_error(request: Request, exc: Exception) -> JSONResponse:
    extensions: dict[str, Any] = {}
    if isinstance(exc, FormulaError) and exc.position is not None:
        extensions = {"position": exc.position, "token": exc.token}
    slug = type(exc).__name__.removesuffix("Error").lower() or "stats"
    return problem_response(422, "Unprocessable content", str(exc), request,
                            f"{PROBLEM_TYPE_PREFIX}{slug}-error", **extensions)


def field_errors(raw: list[Any]) -> list[dict[str, str]]:
    """Pydantic's error list, reduced to location, dotted field, message and type."""
    out = []
    for err in raw:
        loc = [str(part) for part in err.get("loc", ())]
        location = loc[0] if loc and loc[0] in ("body", "query", "path", "header", "cookie") \
            else "body"
        field = ".".join(loc[1:] if loc and loc[0] == location else loc)
        detail = str(err.get("msg", ""))
        if err.get("type") == "json_invalid" and location == "body":
            # FastAPI puts the character position where the field would be
            detail, field = _json_problem(err, field), ""
        out.append({"location": location, "field": field, "detail": detail,
                    "type": str(err.get("type", ""))})
    return out


def _json_problem(err: Any, position: str) -> str:
    reason = (err.get("ctx") or {}).get("error")
    if not reason:  # pydantic's own message already says "Invalid JSON: ..."
        return str(err.get("msg", "Invalid JSON"))
    at = f" at character {position}" if position.isdigit() else ""
    return f"Invalid JSON{at}: {reason}"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(list(exc.errors()))
    summary = "; ".join(f"{e['field'] or e['location']}: {e['detail']}" for e in errors)
    return problem_response(422, "Invalid input", summary or "The request is invalid.", request,
                            PROBLEM_TYPE_PREFIX + "invalid-input", errors=errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ServiceError):
        # FastAPI calls any error while it reads a JSON body a 400; a body over its limit
        # (service.ops.bodylimit) is the 413 it is
        return service_error_response(request, exc.__cause__)
    unparsable = _unparsable_json(exc)
    if unparsable is not None:
        # FastAPI calls a JSON body that json.loads fails on other than with a decode error
        # a 400 "error parsing the body"; it is invalid JSON like any other, so a 422 that
        # says what is wrong
        return problem_response(
            422, "Invalid input", f"The body is not valid JSON: {unparsable}", request,
            PROBLEM_TYPE_PREFIX + "invalid-input",
            errors=[{"location": "body", "field": "", "type": "json_invalid",
                     "detail": unparsable}])
    phrase = _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if exc.status_code == 404 and detail is None:
        detail = f"There is no resource at {request.url.path}."
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        if allowed:
            # Starlette names only the methods of the first route with this path
            headers["Allow"] = ", ".join(allowed)
        if detail is None:
            detail = (f"{request.method} is not allowed on {request.url.path}; it accepts "
                      f"{headers.get('Allow') or 'no method'}.")
    return problem_response(exc.status_code, phrase, detail, request, headers=headers or None)


def _unparsable_json(exc: StarletteHTTPException) -> str | None:
    cause = exc.__cause__
    if exc.status_code != 400:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (f"it must be UTF-8 text, and byte {cause.start} cannot be decoded "
                f"({cause.reason}).")
    if isinstance(cause, RecursionError):
        return "it is nested too deeply."
    return None


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the application answers on the request's path."""
    router = getattr(request.app, "router", None)
    routes = getattr(router, "routes", [])
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # an outage (restart, failover, full pool) is the server's temporary state, not a bug:
    # 503 with Retry-After; a full disk is not an outage (retrying does not help, deleting
    # does): 507; any other database error is unexpected, and raised on to the handler of
    # last resort (the 500 problem)
    if is_storage_full(exc):
        return service_error_response(
            request, storage_full(exc, f"{request.method} {request.url.path}"))
    if not is_database_unavailable(exc):
        raise exc
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                   type(exc).__name__)
    return await _service_error(
        request, DatabaseUnavailable("The database is unavailable; retry the request shortly."))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return unexpected_error_response(request, exc)


def unexpected_error_response(request: Request, exc: Exception) -> JSONResponse:
    """The 500 problem of an exception nothing handled; the traceback goes to the log only."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "Internal Server Error",
                            "The server failed to handle this request; the error is logged "
                            "under its request_id.", request)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(StatsError, _stats_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sqlalchemy_exc.DBAPIError, _database_error)
    app.add_exception_handler(sqlalchemy_exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem documents for these statuses."""
    return {
        status: {
            "description": _phrase(status) + " (problem document)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


WRITE_METHODS = ("post", "put", "patch", "delete")


def document_insufficient_storage(schema: dict[str, Any]) -> None:
    """Add the 507 problem to every /v1 operation that may write (on a full disk)."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if method in WRITE_METHODS:
                operation.setdefault("responses", {}).setdefault(
                    "507", problem_responses(507)[507])
