"""Change tokens (service/db/changes.py): what was read at a stamp is trusted while the
token stays the same, and on PostgreSQL for ``trust_seconds`` at most, so a notification
lost on a connection that died silently cannot keep a revoked key or a deleted model
served for longer than that."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from service.db.changes import ChangeToken, NotifiedChanges, SQLiteChanges


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
