"""The SQLite storage reserve on a real full disk (a tmpfs): a write that finds the disk full
is a storage-full error (not "unavailable") and releases the ballast; connections are then
capped at the database's size; once the disk has room again the ballast comes back and the
cap goes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from service.db import reserve
from service.db.session import create_db_engine, is_database_unavailable
from service.db.storage import is_storage_full
from tests.tmpfs import fill, tmpfs

RESERVE = 1024 * 1024


@pytest.fixture
def full_engine(_sqlite_template: Path) -> Iterator[tuple[Engine, Path]]:
    with tmpfs("8m") as disk:
        shutil.copyfile(_sqlite_template, disk / "mixedfit.db")
        engine = create_db_engine(f"sqlite:///{disk / 'mixedfit.db'}")
        try:
            yield engine, disk
        finally:
            engine.dispose()


def _pages(engine: Engine) -> tuple[int, int]:
    """The database's size and the connection's maximum, in pages."""
    with engine.connect() as connection:
        size = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        maximum = connection.exec_driver_sql("PRAGMA max_page_count").scalar_one()
    return int(size), int(maximum)


def test_a_full_disk_releases_the_ballast_and_caps_the_database_until_there_is_room(
        full_engine: tuple[Engine, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, disk = full_engine
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (b BLOB)"))
    ballast = Path(str(reserve.ballast_path(engine)))
    reserve.hold(engine, RESERVE)
    assert ballast.stat().st_size == RESERVE
    size, uncapped = _pages(engine)
    assert uncapped > size

    filler = fill(disk)
    with pytest.raises(OperationalError) as raised, engine.begin() as connection:
        connection.execute(text("INSERT INTO blobs (b) VALUES (:b)"),
                           {"b": os.urandom(2 * RESERVE)})
    assert is_storage_full(raised.value)
    assert not is_database_unavailable(raised.value)
    assert ballast.stat().st_size == 0  # released: the disk has its room now

    size, maximum = _pages(engine)
    assert maximum == size  # the database grows no further
    with engine.begin() as connection:  # writes in place still work
        connection.execute(text("DELETE FROM blobs"))

    filler.unlink()
    monkeypatch.setattr(reserve, "RETRY_SECONDS", 0.0)
    _, maximum = _pages(engine)
    assert ballast.stat().st_size == RESERVE
    assert maximum == uncapped

    reserve.hold(engine, 0)  # no reserve wanted: no ballast, so nothing caps it
    assert not ballast.exists()


def test_no_ballast_is_made_where_it_would_leave_the_disk_nearly_full(
        full_engine: tuple[Engine, Path]) -> None:
    engine, disk = full_engine
    reserve.hold(engine, 5 * 1024 * 1024)  # 8 MiB disk: 5 MiB would leave less than 5 free
    ballast = Path(str(reserve.ballast_path(engine)))
    assert not ballast.exists()
    size, maximum = _pages(engine)
    assert maximum > size  # no reserve, no cap


def test_a_restart_on_a_full_disk_reads_again_once_the_ballast_is_released(
        full_engine: tuple[Engine, Path]) -> None:
    engine, disk = full_engine
    reserve.hold(engine, RESERVE)
    engine.dispose()  # the last connection closes: SQLite removes the WAL and its index
    fill(disk)
    restarted = create_db_engine(str(engine.url))
    try:
        # the WAL index (-shm) cannot be made on the full disk: even a read fails, with
        # SQLITE_IOERR_SHMSIZE, and that gives the ballast back
        with pytest.raises(OperationalError) as raised, restarted.connect() as connection:
            connection.execute(text("SELECT count(*) FROM datasets"))
        assert is_storage_full(raised.value)
        assert raised.value.orig.sqlite_errorname == "SQLITE_IOERR_SHMSIZE"  # type: ignore[union-attr]
        with restarted.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM datasets")).scalar() == 0
    finally:
        restarted.dispose()
