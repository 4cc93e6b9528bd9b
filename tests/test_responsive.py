"""A real server stays responsive under heavy requests (issue 11), on SQLite and PostgreSQL.

While plots of a 100,000-row model are drawn and a 150 MB CSV is uploaded, /healthz and
predictions keep being answered; 500 clients long-polling fits at once are all answered.
These assert that the answers come, not how fast (bench/responsive.py measures that).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.live_server import live_server, statuses_of

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parent / "data"
MOOD_LMM = "Mood ~ Exercise + (1 | State)"


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    with live_server(database_url, tmp_path, max_wait_seconds="60",
                     max_upload_bytes=str(300 * 2**20)) as base:
        yield base


def _wait(client: httpx.Client, location: str) -> dict[str, Any]:
    for _ in range(60):
        model: dict[str, Any] = client.get(f"{location}?wait=10").json()
        if model["status"] in ("succeeded", "failed"):
            return model
    pytest.fail(f"{location} did not finish")


def _fit(client: httpx.Client, dataset_id: str, formula: str) -> str:
    created = client.post("/v1/models", json={"dataset_id": dataset_id, "formula": formula})
    assert created.status_code == 202, created.text
    model = _wait(client, created.headers["location"])
    assert model["status"] == "succeeded", model
    return str(model["id"])


def _upload(client: httpx.Client, body: bytes) -> str:
    response = client.post("/v1/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _rows_100k() -> bytes:
    rng = np.random.default_rng(11)
    n, levels = 100_000, 2_000
    g = rng.integers(0, levels, n)
    x = rng.normal(size=n)
    y = 1 + 2 * x + rng.normal(size=levels)[g] + rng.normal(size=n)
    lines = ["y,x,g", *(f"{a:.6f},{b:.6f},g{c}" for a, b, c in zip(y, x, g, strict=True))]
    return ("\n".join(lines) + "\n").encode()


def _csv_150mb(path: Path) -> Path:
    """A 150 MB CSV of numbers: a block of rows written again and again."""
    rng = np.random.default_rng(12)
    block = "".join(f"{a:.6f},{b:.6f},{c:.6f},{d:.6f}\n"
                    for a, b, c, d in rng.normal(size=(20_000, 4)))
    with path.open("w") as handle:
        handle.write("a,b,c,d\n")
        written = 0
        while written < 150 * 2**20:
            handle.write(block)
            written += len(block)
    return path


def test_healthz_and_predictions_answer_while_plots_and_a_big_upload_run(
        server: str, tmp_path: Path) -> None:
    big = _csv_150mb(tmp_path / "big.csv")
    with httpx.Client(base_url=server, timeout=600) as client:
        mood = _upload(client, (DATA / "mood.csv").read_bytes())
        predictor = _fit(client, mood, MOOD_LMM)
        rows = _upload(client, _rows_100k())
        lm = _fit(client, rows, "y ~ x")
        lmm = _fit(client, rows, "y ~ x + (1 | g)")

    heavy: dict[str, int] = {}

    def request(name: str, method: str, path: str, **kwargs: Any) -> None:
        with httpx.Client(base_url=server, timeout=600) as own:
            heavy[name] = own.request(method, path, **kwargs).status_code

    loads = [
        threading.Thread(target=request, args=(
            "lm residuals_by_group", "GET",
            f"/v1/models/{lm}/plots/residuals_by_group?format=png&group=g")),
        threading.Thread(target=request, args=(
            "lmm residuals_vs_fitted", "GET",
            f"/v1/models/{lmm}/plots/residuals_vs_fitted?format=svg")),
        threading.Thread(target=request, args=("lmm residuals", "GET",
                                               f"/v1/models/{lmm}/residuals?format=csv")),
        threading.Thread(target=request, args=("150 MB upload", "POST", "/v1/datasets"),
                         kwargs={"content": big.read_bytes(),
                                 "headers": {"Content-Type": "text/csv"}}),
    ]
    for load in loads:
        load.start()
    answered: list[tuple[str, int]] = []
    with httpx.Client(base_url=server, timeout=60) as probe:
        # probe while every heavy request is still in progress
        while all(load.is_alive() for load in loads) or len(answered) < 10:
            answered.append(("healthz", probe.get("/healthz").status_code))
            prediction = probe.post(f"/v1/models/{predictor}/predictions",
                                    json={"records": [{"Exercise": 2, "State": "Ohio"}]})
            answered.append(("prediction", prediction.status_code))
            time.sleep(0.05)
    in_flight = len(answered)
    for load in loads:
        load.join(timeout=600)
    assert all(status == 200 for _, status in answered), answered
    assert in_flight >= 10
    assert heavy == {"lm residuals_by_group": 200, "lmm residuals_vs_fitted": 200,
                     "lmm residuals": 200, "150 MB upload": 201}, heavy


async def _long_polls(server: str, n_clients: int) -> tuple[list[int], list[str], list[int]]:
    limits = httpx.Limits(max_connections=n_clients + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server, timeout=120, limits=limits) as client:
        upload = await client.post("/v1/datasets", content=(DATA / "mood.csv").read_bytes(),
                                   headers={"Content-Type": "text/csv"})
        dataset_id = upload.json()["id"]
        ids = []
        for _ in range(20):
            created = await client.post("/v1/models", json={"dataset_id": dataset_id,
                                                            "formula": MOOD_LMM})
            ids.append(created.json()["id"])

        waits = asyncio.gather(*(client.get(f"/v1/models/{ids[i % len(ids)]}?wait=55")
                                 for i in range(n_clients)))
        healthz = await statuses_of(client, "/healthz")
        answers = await waits
        return ([a.status_code for a in answers],
                [a.json().get("status") for a in answers], healthz)


def test_500_concurrent_long_polls_are_all_answered(server: str) -> None:
    codes, statuses, healthz = asyncio.run(_long_polls(server, 500))
    assert codes == [200] * 500
    assert set(statuses) == {"succeeded"}
    assert healthz == [200] * 20
