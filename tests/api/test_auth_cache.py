"""Key lookups are kept while the database reports no change (a revocation, made by
another process, holds at the next request) and, where no change can be told, for
MIXEDFIT_AUTH_CACHE_SECONDS."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event

from service.auth.cache import AuthCache
from service.auth.principal import Principal
from tests.api.conftest import ClientFactory
from tests.api.keys import make_key, revoke_key

TTL = 0.5


def _key_lookups(app: Any) -> list[str]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_keys" in statement:
            statements.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", record)
    return statements


def test_a_cached_key_is_not_looked_up_and_its_revocation_holds_after_the_time(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client(auth_cache_seconds=TTL)
    key = make_key(database_url, "acme")
    make_key(database_url, "acme")  # stays: with no active key the API would be open
    if not database_url.startswith("sqlite"):
        # the keys' own notifications (0013) are heard a moment after their commits: one
        # arriving after the first request would rightly make the next one look up again
        time.sleep(0.5)
    assert client.get("/v1/datasets", headers=key.headers).status_code == 200
    lookups = _key_lookups(client.app)
    for _ in range(5):
        assert client.get("/v1/datasets", headers=key.headers).status_code == 200
    assert lookups == []
    revoke_key(database_url, key)
    time.sleep(TTL + 0.1)
    assert client.get("/v1/datasets", headers=key.headers).status_code == 401
    assert lookups, "looked up again once the time had passed"


def test_a_key_in_use_is_not_looked_up_while_nothing_changed_and_revocation_holds_at_once(
        make_client: ClientFactory, database_url: str) -> None:
    client = make_client()  # MIXEDFIT_AUTH_CACHE_SECONDS 0, the default
    key = make_key(database_url, "acme")
    make_key(database_url, "acme")  # stays: with no active key the API would be open
    if not database_url.startswith("sqlite"):
        # the keys' own notifications (0013) are heard a moment after their commits: one
        # arriving after the first request would rightly make the next one look up again
        time.sleep(0.5)
    assert client.get("/v1/datasets", headers=key.headers).status_code == 200
    lookups = _key_lookups(client.app)
    for _ in range(5):
        assert client.get("/v1/datasets", headers=key.headers).status_code == 200
    assert lookups == []
    revoke_key(database_url, key)  # another engine, as `mixedfit keys revoke` is
    # SQLite's data_version tells at the next request; PostgreSQL's notification (0013)
    # arrives within milliseconds of the commit
    deadline = time.monotonic() + 5
    while ((status := client.get("/v1/datasets", headers=key.headers).status_code) == 200
           and time.monotonic() < deadline and not database_url.startswith("sqlite")):
        time.sleep(0.005)
    assert status == 401
    assert lookups, "looked up again once the keys had changed"


def test_the_cache_is_keyed_by_the_whole_header_and_bounded() -> None:
    cache = AuthCache(60.0, max_entries=3)
    who = Principal("acme", False, "k1")
    cache.put("Bearer a", who)
    assert cache.get("Bearer a") == who
    assert cache.get("Bearer b") is None and cache.get(None) is None
    for name in ("b", "c", "d"):
        cache.put(f"Bearer {name}", who)
    assert cache.get("Bearer a") is None  # the oldest went first
    assert AuthCache(0.0).get("Bearer a") is None
