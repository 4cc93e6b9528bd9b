"""A real ``mixedfit serve`` process on a free port, for tests that need real HTTP, real
processes and real concurrency (uvicorn's event loop, the embedded worker, compute children)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.processes import stop

READY_SECONDS = 60.0  # to import and start, on a loaded machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(database_url: str, workdir: Path, **settings: str) -> Iterator[str]:
    """Run ``mixedfit serve`` (API and embedded worker) on ``database_url`` with extra
    ``MIXEDFIT_`` settings (``max_wait_seconds="30"``); yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXEDFIT_")}
    env["MIXEDFIT_DATABASE_URL"] = database_url
    env.update({f"MIXEDFIT_{name.upper()}": value for name, value in settings.items()})
    log = workdir / f"serve-{port}.log"
    # the log goes to a file: a pipe nobody reads would fill up and stall the server
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], cwd=workdir,
            env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if server.poll() is not None:
                pytest.fail(f"serve exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not become ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        stop(server)


async def statuses_of(client: httpx.AsyncClient, path: str, times: int = 20,
                      pause: float = 0.05) -> list[int]:
    """GET ``path`` ``times`` times in a row (a probe while other requests are in flight)."""
    statuses = []
    for _ in range(times):
        statuses.append((await client.get(path)).status_code)
        await asyncio.sleep(pause)
    return statuses
