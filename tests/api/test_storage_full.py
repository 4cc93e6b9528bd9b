"""A full disk is not an outage: through the real app, on a real database whose disk is a
small tmpfs, uploads fill it until one is refused with 507 (no Retry-After), reads still
work, deleting datasets answers 204 and makes room, and an upload fits again; twice, since
the second time the reserve is spent (``service.db.reserve``).

SQLite: the database file (and its WAL and ballast) on the tmpfs. PostgreSQL: a database
created in a tablespace on the tmpfs (the server must run on this machine). Mounting needs
root; without it the tests are skipped and say so.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.app import create_app
from tests.api.conftest import assert_problem, make_settings
from tests.conftest import _PostgresServer
from tests.tmpfs import tmpfs

# on SQLite more than a WAL checkpoint may add to the database file (4 MiB and an upload)
RESERVE_BYTES = 5 * 1024 * 1024
# room for the reserve, the WAL and some sixty uploads; on PostgreSQL a new database takes
# about 8 MB of it (the template's catalog)
DISK = {"sqlite": "16m", "postgres": "24m"}
# two columns of random doubles: a 216 kB CSV body (parsed on the request thread) stored as
# 108 kB of Parquet that cannot shrink
ROWS = 5_500
MAX_UPLOADS = 300


@pytest.fixture(params=["sqlite", "postgres"])
def full_disk_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a migrated database whose storage is a small tmpfs of its own."""
    if request.param == "sqlite":
        with tmpfs(DISK["sqlite"]) as point:
            path = point / "mixedfit.db"
            shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
            yield f"sqlite:///{path}"
        return
    server: _PostgresServer = request.getfixturevalue("_postgres")
    with server.admin.connect() as connection:
        data_directory = str(connection.scalar(text("SHOW data_directory")))
    if not os.path.isdir(data_directory):
        pytest.skip("the PostgreSQL server does not run on this machine, so a tablespace "
                    "cannot be put on a tmpfs here")
    with tmpfs(DISK["postgres"]) as point:
        owner = os.stat(data_directory)
        os.chown(point, owner.st_uid, owner.st_gid)  # the server's user owns a tablespace
        # under the run's prefix, which CI's cleanup drops after a run that died
        name = f"{server.prefix}_{uuid.uuid4().hex[:8]}"
        tablespace = f"{name}_disk"
        try:
            with server.admin.connect() as connection:
                connection.execute(
                    text(f"CREATE TABLESPACE \"{tablespace}\" LOCATION '{point}'"))
                # the session's migrated template, copied into the tablespace. FILE_COPY
                # writes the copy at once: the default strategy leaves its pages to the
                # checkpointer, whose writes then fail on the full disk, and a failed
                # checkpoint holds up the whole server (other databases' DROP DATABASE)
                connection.execute(text(
                    f'CREATE DATABASE "{name}" TEMPLATE "{server.template}" '
                    f'TABLESPACE "{tablespace}" STRATEGY FILE_COPY'))
            yield server.url(name)
        finally:
            server.drop(name)
            with server.admin.connect() as connection:
                connection.execute(text(f'DROP TABLESPACE IF EXISTS "{tablespace}"'))


def _csv(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=ROWS), "y": rng.normal(size=ROWS)})
    return frame.to_csv(index=False).encode()


class Uploader:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.seed = 0
        self.ids: list[str] = []

    def upload(self) -> Any:
        self.seed += 1
        response = self.client.post(
            f"/v1/datasets?name=fill-{self.seed}", content=_csv(self.seed),
            headers={"Content-Type": "text/csv"})
        if response.status_code == 201:
            self.ids.append(response.json()["id"])
        return response

    def fill(self) -> Any:
        """Upload until an upload is refused; that answer."""
        for _ in range(MAX_UPLOADS):
            response = self.upload()
            if response.status_code != 201:
                return response
        pytest.fail(f"{MAX_UPLOADS} uploads and the disk is still not full")


def test_a_full_disk_refuses_writes_with_507_and_deletes_make_room(
        full_disk_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(full_disk_url, storage_reserve_bytes=RESERVE_BYTES)
    with TestClient(create_app(settings)) as client:
        uploads = Uploader(client)
        for round_ in range(2):
            refused = uploads.fill()
            problem = assert_problem(refused, 507)
            assert problem["type"] == "urn:mixedfit:problem:insufficient-storage"
            assert "storage is full" in problem["detail"]
            assert "Deleting datasets" in problem["detail"]
            assert "retry-after" not in refused.headers  # not an outage to wait out
            assert len(uploads.ids) >= 3, f"round {round_}: the disk filled too soon"

            # reads keep working
            listing = client.get("/v1/datasets", params={"limit": 1000})
            assert listing.status_code == 200, listing.text
            assert listing.json()["total"] == len(uploads.ids)
            assert client.get(f"/v1/datasets/{uploads.ids[-1]}").status_code == 200

            # deleting works, and frees room for an upload as large
            for dataset_id in (uploads.ids.pop(0), uploads.ids.pop(0)):
                assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
                assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
            again = uploads.upload()
            assert again.status_code == 201, f"round {round_}: {again.text}"

    said = [record.getMessage() for record in caplog.records
            if record.name == "mixedfit.errors"]
    assert said and all(line.startswith("storage full on POST /v1/datasets: ")
                        and "\n" not in line for line in said), said
    cause = ("database or disk is full" if full_disk_url.startswith("sqlite")
             else "No space left on device")
    assert all(cause in line for line in said), said
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
