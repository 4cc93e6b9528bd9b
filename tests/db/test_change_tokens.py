"""Change tokens (service/db/changes.py): what was read at a stamp is trusted while the
token stays the same, and on PostgreSQL for ``trust_seconds`` at most, so a notification
lost on a connection that died silently cannot keep a revoked key or a deleted model
served for longer than that."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from service.db.changes import ChangeToken, NotifiedChanges, SQLiteChanges
from service.db.migrate import upgrade


def test_nothing_is_trusted_where_no_change_can_be_told() -> None:
    changes = ChangeToken()
    assert changes.stamp() is None and not changes.unchanged_since(changes.stamp())


def test_a_notification_or_the_trust_time_ends_the_trust() -> None:
    changes = NotifiedChanges()
    assert changes.stamp() is None  # no listener connected: check every time
    changes.connected = threading.Event()
    changes.connected.set()
    stamp = changes.stamp()
    assert changes.unchanged_since(stamp)
    changes.heard()
    assert not changes.unchanged_since(stamp)

    changes.trust_seconds = 0.05
    stamp = changes.stamp()
    assert changes.unchanged_since(stamp)
    time.sleep(0.06)
    assert not changes.unchanged_since(stamp), "trusted past trust_seconds"
    changes.connected.clear()
    assert not changes.unchanged_since(changes.stamp())


def test_sqlite_tells_a_commit_of_another_connection_at_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("create table t (x integer)")
    changes = SQLiteChanges(str(path))
    try:
        stamp = changes.stamp()
        assert changes.unchanged_since(stamp)
        time.sleep(0.01)
        assert changes.unchanged_since(stamp)  # no time limit: the file's counter is exact
        writer.execute("insert into t values (1)")
        assert not changes.unchanged_since(stamp)
    finally:
        changes.close()
        writer.close()


@pytest.mark.parametrize(("change", "counted"), [
    ("INSERT INTO api_keys (id, tenant, admin, key_sha256, prefix, created_at) "
     "VALUES ('k2', 'b', 0, 'd2', 'p2', '2026-12-02 00:00:00')", True),
    ("UPDATE api_keys SET revoked_at = '2026-12-02 00:00:00' WHERE id = 'k1'", True),
    ("DELETE FROM api_keys WHERE id = 'k1'", True),
    ("DELETE FROM datasets WHERE id = 'd1'", True),
    # what every fit and upload writes: the file changes, the count does not
    ("UPDATE datasets SET name = 'renamed' WHERE id = 'd1'", False),
    ("INSERT INTO idempotency_records (tenant, key, fingerprint, lock_token, created_at, "
     "expires_at) VALUES ('', 'i', 'f', 't', '2026-12-02 00:00:00', "
     "'2026-12-03 00:00:00')", False),
])
def test_sqlite_counts_key_changes_and_deletes_only(tmp_path: Path, change: str,
                                                    counted: bool) -> None:
    """On a migrated database the token follows migration 0016's count: API keys
    written and models or datasets deleted change it, any other commit does not."""
    path = tmp_path / "db.sqlite"
    upgrade(f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("INSERT INTO api_keys (id, tenant, admin, key_sha256, prefix, created_at) "
                   "VALUES ('k1', 'a', 0, 'd1', 'p1', '2026-12-02 00:00:00')")
    writer.execute("INSERT INTO datasets (id, name, n_rows, columns, size_bytes, sha256, "
                   "content, created_at) VALUES ('d1', 'x', 1, '[]', 1, 's', x'00', "
                   "'2026-12-02 00:00:00')")
    changes = SQLiteChanges(str(path))
    try:
        stamp = changes.stamp()
        assert stamp is not None and changes.unchanged_since(stamp)
        writer.execute(change)
        assert changes.unchanged_since(stamp) is not counted
    finally:
        changes.close()
        writer.close()
