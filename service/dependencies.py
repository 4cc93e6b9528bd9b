"""Request dependencies as ``Annotated`` aliases: ``SessionDep``, ``SettingsDep`` and
``PrincipalDep``.

The session of a request is scoped to its caller (``service.db.tenancy``): every query in
it sees the caller's tenant's rows only, and every row it creates is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from service.auth.principal import ANONYMOUS, STATE_KEY, Principal
from service.db.tenancy import scope_session
from service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the application was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


def get_principal(request: Request) -> Principal:
    """The caller, as the authentication middleware found it (``ANONYMOUS`` without it:
    an app assembled without the middleware sees nothing)."""
    principal = getattr(request.state, STATE_KEY, None)
    return principal if isinstance(principal, Principal) else ANONYMOUS


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request, limited to the caller's tenant: commit once when the
    endpoint returns, else roll back."""
    with scope_session(get_session_factory(request)(), get_principal(request)) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
# scope="function": the commit happens before the response is sent, so a client that
# reads what it just created finds it, and a failed commit is an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
