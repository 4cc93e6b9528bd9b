"""``mixedfit serve --processes N`` (MIXEDFIT_API_PROCESSES): N API processes answer on one
port, each with its own embedded worker, over one SQLite database."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import DATA
from tests.live_server import live_server

pytestmark = pytest.mark.slow


def test_two_api_processes_share_the_port_and_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'processes.db'}"
    with live_server(url, tmp_path, api_processes="2") as base:
        # a new connection per request: the kernel hands each to either process
        prefixes = set()
        for _ in range(60):
            with httpx.Client(base_url=base, timeout=30) as client:
                prefixes.add(client.get("/healthz").headers["x-request-id"][:16])
        # a request id starts with its process's random prefix: two processes answered
        assert len(prefixes) == 2, prefixes
        with httpx.Client(base_url=base, timeout=60) as client:
            dataset = client.post("/v1/datasets", content=(DATA / "sleepstudy.csv").read_bytes(),
                                  headers={"Content-Type": "text/csv"}).json()
            model = client.post("/v1/models?wait=50", json={
                "dataset_id": dataset["id"], "formula": "Reaction ~ Days"}).json()
            assert model["status"] == "succeeded", model
            answers = set()
            for _ in range(20):
                with httpx.Client(base_url=base, timeout=30) as fresh:
                    answer = fresh.post(f"/v1/models/{model['id']}/predictions",
                                        json={"records": [{"Days": 3.5}]})
                    assert answer.status_code == 200, answer.text
                    answers.add(tuple(answer.json()["predictions"]))
            assert len(answers) == 1  # every process predicts the same number
