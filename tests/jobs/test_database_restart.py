"""A PostgreSQL restart under real workers and the real API: every accepted job finishes once.

The restarts happen on a private cluster created for this module (``pg_createcluster``), so
the shared server the rest of the suite uses is never disturbed. The workers are real
processes (``python -m service.jobs.worker``) fitting real models; the API is the real
application behind the ASGI test client.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from service.app import create_app
from service.db.migrate import upgrade
from service.db.session import create_db_engine, make_session_factory
from service.jobs.child import FITTING_NAME
from service.settings import Settings
from tests.db.factories import DATA, submit_fit
from tests.jobs.helpers import (
    SLOW_FORMULA,
    StartWorker,
    Stored,
    slow_lmm_data,
    stored,
    wait_for,
    worker_processes,
)

pytestmark = pytest.mark.slow  # real worker processes

SessionFactory = sessionmaker[Session]
# short, so that an outage outlasts it and the expired-lease paths run
LEASE = 2.0
SLEEPSTUDY = "Reaction ~ Days + (Days | Subject)"


def _slow_data(n: int = 60_000) -> pd.DataFrame:
    # crossed random effects with a random slope: about 8 s of fitting on an idle machine
    # (more when busy), long enough to stop the database in the middle of it; 40,000 rows
    # (4 s) left too little margin for the stop itself on an idle machine
    return slow_lmm_data(n, n // 66, n // 133)


@dataclass(frozen=True)
class Cluster:
    """A private PostgreSQL cluster that a test may stop and start at will."""

    version: str
    name: str
    port: int

    def ctl(self, *args: str) -> None:
        subprocess.run(["pg_ctlcluster", self.version, self.name, *args], check=True,
                       capture_output=True, timeout=120)

    def stop(self) -> None:
        # fast: open connections are cut off, as in a crash-free restart in production
        self.ctl("stop", "-m", "fast")

    def start(self) -> None:
        self.ctl("start")

    def ensure_running(self) -> None:
        """Start the cluster if a failed test left it stopped."""
        status = subprocess.run(["pg_ctlcluster", self.version, self.name, "status"],
                                capture_output=True, timeout=60)
        if status.returncode != 0:
            self.start()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _installed_version() -> str | None:
    root = Path("/etc/postgresql")
    versions = sorted((p.name for p in root.iterdir() if p.name.isdigit()), key=int) \
        if root.is_dir() else []
    return versions[-1] if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if shutil.which("pg_createcluster") is None or shutil.which("pg_ctlcluster") is None:
        pytest.skip("pg_createcluster is not installed (Debian's postgresql-common)")
    if os.geteuid() != 0:
        pytest.skip("creating a private PostgreSQL cluster needs root")
    version = _installed_version()
    if version is None:
        pytest.skip("no PostgreSQL server version under /etc/postgresql")
    created = Cluster(version, f"mf_restart_{uuid.uuid4().hex[:8]}", _free_port())
    try:
        subprocess.run(["pg_createcluster", version, created.name, "--port", str(created.port),
                        "--", "--auth=trust"], check=True, capture_output=True, timeout=120)
        created.start()
        yield created
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, created.name],
                       capture_output=True, timeout=120)


@pytest.fixture
def database_url(cluster: Cluster) -> str:
    """A new database on the private cluster at the newest schema revision."""
    cluster.ensure_running()
    name = f"mixedfit_{uuid.uuid4().hex[:8]}"
    admin = create_engine(cluster.url("postgres").replace("postgresql:", "postgresql+psycopg:"),
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    url = cluster.url(name)
    upgrade(url)
    return url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[SessionFactory]:
    engine = create_db_engine(database_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@pytest.fixture
def start_worker(database_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start worker processes on the private database; any still alive die at teardown."""
    with worker_processes(database_url, tmp_path, lease_seconds=LEASE) as start:
        yield start


def _fits_running(worker_pid: int) -> bool:
    """True while the worker's fit process (a child of its fork server, from /proc) is
    fitting: its name says so (a warm fit process waits between fits)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z":
                parents[int(entry.name)] = int(stat[1])
    children = {pid for pid, parent in parents.items() if parent == worker_pid}
    return any(parent in children and _name(pid) == FITTING_NAME
               for pid, parent in parents.items())


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _succeeded_once(session_factory: SessionFactory, model_id: str, job_id: str) -> Stored:
    """Wait for the job to end, and check that it stored one result."""

    def ended() -> Stored | None:
        state = stored(session_factory, model_id, job_id)
        return state if state.job_status in ("succeeded", "failed") else None

    state = wait_for(ended, "the job to end")
    assert state.error is None
    assert (state.model_status, state.job_status) == ("succeeded", "succeeded")
    assert state.n_fixed_effects == 2  # (Intercept) and the slope: one result, not two
    assert state.n_metrics > 0
    return state


def test_workers_finish_every_job_once_across_database_restarts(
        cluster: Cluster, session_factory: SessionFactory, start_worker: StartWorker) -> None:
    sleepstudy = pd.read_csv(DATA / "sleepstudy.csv")
    slow = submit_fit(session_factory, _slow_data(), SLOW_FORMULA)
    after_slow = [submit_fit(session_factory, sleepstudy, SLEEPSTUDY),
                  submit_fit(session_factory, sleepstudy, "Reaction ~ Days")]
    first = start_worker("first")
    wait_for(lambda: _fits_running(first.pid), "the worker to be fitting")

    # Down while the fit runs, and still down when it ends and the worker has a result
    # to store, and longer than the lease: the finished fit must be stored, not redone.
    cluster.stop()
    assert _fits_running(first.pid), "the fit ended before the database stopped"
    wait_for(lambda: not _fits_running(first.pid), "the fit to end", 120)
    time.sleep(2 * LEASE)
    assert first.poll() is None
    cluster.start()

    # one attempt: the result was written once the database was back, not fitted again
    assert _succeeded_once(session_factory, *slow).attempts == 1
    for model_id, job_id in after_slow:
        _succeeded_once(session_factory, model_id, job_id)

    # Two workers, a restart while one of them fits: the job may move to the other worker
    # (if its lease ran out meanwhile) or stay, but it is stored once.
    second = start_worker("second")
    slow_again = submit_fit(session_factory, _slow_data(), SLOW_FORMULA)
    wait_for(lambda: _fits_running(first.pid) or _fits_running(second.pid),
             "a worker to be fitting")
    cluster.stop()
    assert _fits_running(first.pid) or _fits_running(second.pid), "the fit ended first"
    cluster.start()
    _succeeded_once(session_factory, *slow_again)

    # both workers lived through it and still take new work
    after = [submit_fit(session_factory, sleepstudy, SLEEPSTUDY) for _ in range(2)]
    for model_id, job_id in after:
        _succeeded_once(session_factory, model_id, job_id)
    assert first.poll() is None and second.poll() is None


def _is_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert "Traceback" not in response.text


def test_the_api_answers_503_while_the_database_is_down_and_recovers(
        cluster: Cluster, database_url: str, session_factory: SessionFactory) -> None:
    model_id, _ = submit_fit(session_factory, pd.read_csv(DATA / "sleepstudy.csv"), SLEEPSTUDY)
    app = create_app(Settings(database_url=database_url, embedded_worker=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get(f"/v1/models/{model_id}").json()["status"] == "queued"

        cluster.stop()
        try:
            _is_unavailable(client.get("/readyz"))
            response = client.get(f"/v1/models/{model_id}")
            _is_unavailable(response)
            assert response.json()["type"] == "urn:mixedfit:problem:database-unavailable"
            assert int(response.headers["retry-after"]) > 0
            _is_unavailable(client.get("/v1/models"))
        finally:
            cluster.start()

        # the pool's connections died with the server; new ones are made transparently
        assert client.get("/readyz").status_code == 200
        response = client.get(f"/v1/models/{model_id}")
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
