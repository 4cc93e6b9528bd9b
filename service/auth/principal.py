"""Who is calling: the ``Principal`` the authentication middleware puts in the ASGI scope.

The middleware (``service.auth.middleware``) sets ``scope["state"]["principal"]`` on every
HTTP request before the app (and any middleware inside it) runs, so handlers read it as
``request.state.principal`` and other middleware as ``principal_of(scope)``:

- a valid key: ``Principal(tenant=<the key's tenant>, admin=<the key's flag>, key_id=<id>)``;
- no key configured at all (open local mode): ``OPEN`` = ``Principal(None, True, None)``,
  which sees everything, as before keys existed;
- a path that needs no key (``/healthz``, ``/readyz``, open docs or metrics):
  ``ANONYMOUS`` = ``Principal(None, False, None)``, no lookup is made.

A request that needs a key and has no valid one is answered 401 by the middleware and
never reaches the app. This module imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# the key of the principal in the ASGI scope's "state" dict (request.state.principal)
STATE_KEY = "principal"


@dataclass(frozen=True)
class Principal:
    """The caller: the tenant whose resources it sees, and whether it sees every tenant's.

    ``tenant`` is None only without a key (open mode, or a path that needs none);
    ``key_id`` is the id of the API key used (``mixedfit keys list``), None without one.
    """

    tenant: str | None
    admin: bool
    key_id: str | None

    @property
    def sees_all(self) -> bool:
        """Whether this caller reads every tenant's resources (admin keys, open mode)."""
        return self.admin


# no key exists: every caller is the local user, who sees (and creates) untenanted data
OPEN = Principal(tenant=None, admin=True, key_id=None)
# work done by the service itself (workers, metrics): not limited to a tenant
SYSTEM = Principal(tenant=None, admin=True, key_id=None)
# a path that needs no key: no identity was established, and it sees nothing
ANONYMOUS = Principal(tenant=None, admin=False, key_id=None)


def principal_of(scope: Mapping[str, Any]) -> Principal | None:
    """The principal of an ASGI scope, or None before the middleware has run."""
    state = scope.get("state")
    principal = state.get(STATE_KEY) if isinstance(state, Mapping) else None
    return principal if isinstance(principal, Principal) else None
