"""API keys for tests, made and revoked through the key store on the test's database (as
``mixedfit keys`` does), and the headers that send them."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth import keys
from service.db.session import create_db_engine, make_session_factory


@dataclass(frozen=True)
class Key:
    id: str
    key: str
    tenant: str
    admin: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(database_url: str, tenant: str, admin: bool = False) -> Key:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            made = keys.create_key(session, tenant, admin=admin)
            return Key(made.row.id, made.key, tenant, admin)
    finally:
        engine.dispose()


def revoke_key(database_url: str, key: Key) -> None:
    engine = create_db_engine(database_url)
    try:
        with make_session_factory(engine).begin() as session:
            keys.revoke_key(session, key.id)
    finally:
        engine.dispose()
