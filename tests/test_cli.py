"""The ``mixedfit`` command: argument parsing, migrate, openapi, and a real ``serve``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from service.cli import build_parser, main
from service.db.migrate import is_at_head
from service.db.session import create_db_engine
from service.settings import get_settings
from tests.processes import stop

ROOT = Path(__file__).resolve().parent.parent
MOOD = ROOT / "tests" / "data" / "mood.csv"


@pytest.fixture
def env_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MIXEDFIT_DATABASE_URL", url)
    get_settings.cache_clear()  # settings are read once per process; this test changes them
    yield url
    get_settings.cache_clear()


def test_serve_defaults_and_options() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.no_worker) == ("127.0.0.1", 8000, False)
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9000",
                                      "--no-worker"])
    assert (args.host, args.port, args.no_worker) == ("0.0.0.0", 9000, True)


@pytest.mark.parametrize("argv", [["worker"], ["migrate"], ["openapi"], ["openapi", "--check"]])
def test_other_commands_parse(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).command == argv[0]


@pytest.mark.parametrize("argv", [[], ["fit"], ["serve", "--port", "eighty"]])
def test_bad_arguments_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "usage: mixedfit" in capsys.readouterr().err


def test_migrate_brings_the_database_to_head(env_database: str) -> None:
    assert main(["migrate"]) == 0
    engine = create_db_engine(env_database)
    try:
        assert is_at_head(engine)
        assert {"datasets", "models", "jobs"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_openapi_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "spec" / "openapi.json"
    assert main(["openapi", "--check", "--output", str(target)]) == 1  # not there yet
    assert main(["openapi", "--output", str(target)]) == 0
    assert main(["openapi", "--check", "--output", str(target)]) == 0
    spec = json.loads(target.read_text())
    spec["info"]["title"] = "something else"
    target.write_text(json.dumps(spec))
    assert main(["openapi", "--check", "--output", str(target)]) == 1
    assert "differs" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _call(base: str, method: str, path: str, body: bytes | None = None,
          content_type: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, data=body, method=method,
                                     headers={"Content-Type": content_type} if content_type
                                     else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_serve_runs_the_api_and_a_worker_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: a new folder, nothing migrated."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
    log = tmp_path / "serve.log"
    # the log goes to a file: a pipe nobody reads would fill up and stall the server
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=tmp_path,
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        for _ in range(600):  # up to a minute to import and migrate, on a loaded machine
            try:
                if _call(base, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                pytest.fail(f"serve exited: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            pytest.fail("serve did not become ready")
        assert (tmp_path / "mixedfit.db").exists()  # the default database, in the working folder

        status, dataset = _call(base, "POST", "/v1/datasets?name=mood", MOOD.read_bytes(),
                                "text/csv")
        assert status == 201, dataset
        status, model = _call(base, "POST", "/v1/models", json.dumps(
            {"dataset_id": dataset["id"], "formula": "Mood ~ Exercise"}).encode(),
            "application/json")
        assert status == 202, model
        for _ in range(24):
            status, model = _call(base, "GET", f"/v1/models/{model['id']}?wait=5")
            if model["status"] in ("succeeded", "failed"):
                break
        assert model["status"] == "succeeded", model
        # R: coef(lm(Mood ~ Exercise, mood)) (see tests/data/expected/mood_lm.json)
        slope = {fe["term"]: fe["estimate"] for fe in model["result"]["fixed_effects"]}
        assert slope["Exercise"] == pytest.approx(0.603217115959069, rel=1e-6)
    finally:
        stop(server)


@pytest.mark.slow
def test_worker_command_fits_what_the_api_queued(database_url: str, tmp_path: Path) -> None:
    """Production mode: an API without a worker, and a `mixedfit worker` process beside it."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
    env.update(MIXEDFIT_DATABASE_URL=database_url, MIXEDFIT_WORKER_POLL_SECONDS="0.05")
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        app = create_app(Settings(database_url=database_url, embedded_worker=False))
        with TestClient(app) as client:
            dataset = client.post("/v1/datasets", content=MOOD.read_bytes(),
                                  headers={"Content-Type": "text/csv"}).json()["id"]
            model = client.post("/v1/models", json={"dataset_id": dataset,
                                                    "formula": "Mood ~ Exercise"}).json()
            for _ in range(24):
                model = client.get(f"/v1/models/{model['id']}?wait=5").json()
                if model["status"] in ("succeeded", "failed") or worker.poll() is not None:
                    break
        assert model["status"] == "succeeded", (model, log.read_text()[-2000:])
    finally:
        worker.terminate()  # SIGTERM: the worker stops gracefully
        try:
            assert worker.wait(timeout=30) == 0, log.read_text()[-2000:]
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise
