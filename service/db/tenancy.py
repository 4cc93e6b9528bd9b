"""Tenant scoping of sessions: every query of a request's session sees its caller's rows only.

The request dependency (``service.dependencies.get_session``) puts the caller's
:class:`~service.auth.principal.Principal` in ``session.info``; two session events then do
the rest for every table whose row class is :class:`~service.db.models.Tenanted`
(datasets, models, comparisons, jobs), whatever the query:

- ``do_orm_execute`` adds ``tenant = <caller's tenant>`` to every ORM SELECT, UPDATE and
  DELETE (``with_loader_criteria``: FROM clauses, joins and counts included), so another
  tenant's row is simply absent: its id answers 404, lists leave it out;
- ``before_flush`` stamps every new row with the caller's tenant.

A session with no principal (workers, metrics, the command line, tests of the storage layer)
and an admin principal are not limited: they see every tenant's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, literal
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker, with_loader_criteria

from service.auth.principal import Principal
from service.db.models import Tenanted

PRINCIPAL_KEY = "principal"


def scope_session(session: Session, principal: Principal) -> Session:
    """Limit ``session`` to what ``principal`` may see, and stamp its new rows with its tenant."""
    session.info[PRINCIPAL_KEY] = principal
    return session


@contextmanager
def tenant_read(factory: sessionmaker[Session], principal: Principal) -> Iterator[Session]:
    """A session of its own limited to ``principal``, whose read is ended on leaving: for
    a read that may outlive the request that started it (a read shared by long polls)."""
    with factory() as session:
        scope_session(session, principal)
        yield session
        session.rollback()


def session_principal(session: Session) -> Principal | None:
    """The principal a session was scoped to; None for an unscoped (service) session."""
    principal = session.info.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


def install_tenancy(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Register the scoping events on the sessions ``factory`` makes."""
    event.listen(factory, "do_orm_execute", _limit_to_tenant)
    event.listen(factory, "before_flush", _stamp_tenant)
    return factory


def _limit_to_tenant(state: ORMExecuteState) -> None:
    principal = session_principal(state.session)
    if principal is None or principal.sees_all:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # loading more of a row that the scoped query already returned
    tenant = principal.tenant
    if tenant is None:
        # no tenant and not admin (a caller that needs no key): nothing is visible
        criteria = with_loader_criteria(Tenanted, lambda cls: literal(False),
                                        include_aliases=True)
    else:
        criteria = with_loader_criteria(Tenanted, lambda cls: cls.tenant == tenant,
                                        include_aliases=True)
    state.statement = state.statement.options(criteria)


def _stamp_tenant(session: Session, _context: Any, _instances: Any) -> None:
    principal = session_principal(session)
    if principal is None:
        return
    for row in session.new:
        if not isinstance(row, Tenanted):
            continue
        # a tenant's key creates for its own tenant only; an admin's (or the service's own
        # work) keeps a tenant set explicitly, e.g. a refit queued for a comparison
        if not principal.sees_all or row.tenant is None:
            row.tenant = principal.tenant
