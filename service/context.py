"""What a log line is about: the request being handled, or the job a worker is running.

Context variables, so each request (an asyncio task, and the threads Starlette runs sync
handlers on: they copy the context) and each worker thread sees its own. The HTTP edge
(``service.ops.requests``) sets the request's; the worker sets the job's; the log filter
(``service.ops.logs``) copies them onto every record. This module imports nothing of the
service, so every layer can read it: the jobs table stores the id of the request that
queued a job, for the worker's lines.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# The longest client-chosen request id accepted (longer ones are replaced by a new id).
MAX_REQUEST_ID_LENGTH = 128


@dataclass(frozen=True)
class LogContext:
    """The fields every log line of this request or job carries (None: not known)."""

    request_id: str | None = None
    # the ASGI scope's state (request.state): the auth middleware puts the principal there
    # after this context is set, so the tenant is read when a line is written
    state: Mapping[str, Any] | None = None
    method: str | None = None
    job_id: str | None = None
    model_id: str | None = None
    attempt: int | None = None

    @property
    def tenant(self) -> str | None:
        principal = self.state.get("principal") if self.state is not None else None
        tenant = getattr(principal, "tenant", None)
        return tenant if isinstance(tenant, str) else None


NO_CONTEXT = LogContext()
_context: ContextVar[LogContext | None] = ContextVar("mixedfit_log_context", default=None)


def current() -> LogContext:
    return _context.get() or NO_CONTEXT


def current_request_id() -> str | None:
    """The id of the request being handled (or of the one that queued the running job)."""
    return current().request_id


@contextmanager
def bound(context: LogContext) -> Iterator[LogContext]:
    """``context`` is the current one inside the block."""
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def valid_request_id(value: str | None) -> bool:
    """A client's X-Request-ID is kept when it is 1 to 128 visible ASCII characters (no
    spaces or controls: it goes into log lines and headers as it is)."""
    return (value is not None and 0 < len(value) <= MAX_REQUEST_ID_LENGTH
            and all("!" <= char <= "~" for char in value))
