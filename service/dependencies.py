"""Request dependencies as ``Annotated`` aliases: ``SessionDep`` (``WriteSessionDep``),
``SettingsDep`` and ``PrincipalDep``.

The session of a request is scoped to its caller (``service.db.tenancy``): every query in
it sees the caller's tenant's rows only, and every row it creates is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.auth.principal import ANONYMOUS, STATE_KEY, Principal
from service.compute import ComputePool
from service.db.tenancy import scope_session
from service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


# methods whose requests only read (RFC 9110's safe methods): their unit of work is
# read-only (on SQLite it never takes the write lock)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_read_session_factory(request: Request) -> sessionmaker[Session]:
    """Read-only sessions (the write factory for an app opened without them)."""
    reads: sessionmaker[Session] | None = getattr(request.app.state, "read_session_factory",
                                                  None)
    return reads or get_session_factory(request)


def get_request_session_factory(request: Request) -> sessionmaker[Session]:
    """The session factory for this request: read-only for a safe method."""
    if request.method in SAFE_METHODS:
        return get_read_session_factory(request)
    return get_session_factory(request)


def get_compute_pool(request: Request) -> ComputePool:
    """The app's pool of compute children (``service.compute``)."""
    pool: ComputePool = request.app.state.compute_pool
    return pool


def get_principal(request: Request) -> Principal:
    """The caller, as the authentication middleware found it (``ANONYMOUS`` without it:
    an app assembled without the middleware sees nothing)."""
    principal = getattr(request.state, STATE_KEY, None)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request, limited to the caller's tenant: commit once when the
    endpoint returns, else roll back. A safe method's unit of work is read-only."""
    yield from _unit_of_work(request, get_request_session_factory(request))


def get_read_session(request: Request) -> Iterator[Session]:
    """As ``get_session``, read-only whatever the method (a POST that computes from stored
    rows and writes nothing: predictions)."""
    yield from _unit_of_work(request, get_read_session_factory(request))


def get_write_session(request: Request) -> Iterator[Session]:
    """As ``get_session``, for a GET that may write (a comparison settled when read)."""
    yield from _unit_of_work(request, get_session_factory(request))


@contextmanager
def committed_unit_of_work(request: Request) -> Iterator[Session]:
    """A write unit of work for the caller that commits when the block ends (for an
    endpoint that must see its writes committed before it goes on, e.g. to wait for the
    fit it queued)."""
    yield from _unit_of_work(request, get_session_factory(request))


def read_session(request: Request) -> Session:
    """A read-only session of the caller, made on the event loop (it connects at its first
    query, on a request thread); for an endpoint whose reads each end their transaction,
    so that closing it costs nothing (a long poll: no dependency's two threadpool trips)."""
    return scope_session(get_read_session_factory(request)(), get_principal(request))


@contextmanager
def read_unit_of_work(request: Request) -> Iterator[Session]:
    """A read-only unit of work for the caller, opened where it is needed (on a request
    thread) rather than as a dependency, whose set-up and tear-down are two more trips to
    the threadpool."""
    yield from _unit_of_work(request, get_read_session_factory(request))


def _unit_of_work(request: Request, factory: sessionmaker[Session]) -> Iterator[Session]:
    with scope_session(factory(), get_principal(request)) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# FastAPI runs a plain function dependency on the threadpool: for what only reads the app's
# state, a coroutine answers on the event loop and spares each request a trip there and back
async def _settings(request: Request) -> Settings:
    return get_app_settings(request)


async def _session_factory(request: Request) -> sessionmaker[Session]:
    return get_session_factory(request)


async def _compute_pool(request: Request) -> ComputePool:
    return get_compute_pool(request)


async def _principal(request: Request) -> Principal:
    return get_principal(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
# scope="function": the commit happens before the response is sent, so a client that
# reads what it just created finds it, and a failed commit is an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(get_write_session, scope="function")]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(_session_factory)]
ComputeDep = Annotated[ComputePool, Depends(_compute_pool)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
