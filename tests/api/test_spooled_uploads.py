"""A large upload is spooled to a temporary file as it arrives (never joined in the API
process), read by the compute child from there, and the file is removed afterwards,
whether the upload was stored or refused."""

from __future__ import annotations

import glob
import io
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, assert_problem

SPOOLS = os.path.join(tempfile.gettempdir(), "mixedfit-upload-*")


def _spools() -> set[str]:
    return set(glob.glob(SPOOLS))


def _large_csv(rows: int = 40_000) -> bytes:
    rng = np.random.default_rng(1)
    lines = [f"{x:.6f},{y:.6f},g{i % 50}" for i, (x, y) in enumerate(rng.normal(size=(rows, 2)))]
    return ("x,y,g\n" + "\n".join(lines) + "\n").encode()


def test_a_large_csv_is_stored_from_its_spool_and_the_file_removed(
        make_client: ClientFactory) -> None:
    client: TestClient = make_client()
    before = _spools()
    body = _large_csv()
    assert len(body) > 256 * 1024  # over MIXEDFIT_INLINE_UPLOAD_BYTES: spooled
    stored = client.post("/v1/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert stored.status_code == 201, stored.text
    dataset = stored.json()
    assert dataset["n_rows"] == 40_000 and dataset["size_bytes"] == len(body)
    assert _spools() == before
    # the same bytes in memory (under the spooling size) give the same dataset
    small = make_client(inline_upload_bytes=len(body) + 1)
    again = small.post("/v1/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert again.json()["sha256"] == dataset["sha256"]
    assert again.json()["columns"] == dataset["columns"]


def test_a_refused_spooled_upload_leaves_no_file(make_client: ClientFactory) -> None:
    client = make_client(max_columns=2)
    before = _spools()
    refused = client.post("/v1/datasets", content=_large_csv(),
                          headers={"Content-Type": "text/csv"})
    assert "MIXEDFIT_MAX_COLUMNS" in assert_problem(refused, 413 if refused.status_code == 413
                                                    else 422)["detail"]
    sink = io.BytesIO()
    pq.write_table(pa.table({"x": np.arange(100_000, dtype=np.float64)}), sink,
                   compression="none")
    parquet = sink.getvalue()
    assert len(parquet) > 256 * 1024
    stored = client.post("/v1/datasets", content=parquet,
                         headers={"Content-Type": "application/vnd.apache.parquet"})
    assert stored.status_code == 201, stored.text
    assert stored.json()["n_rows"] == 100_000
    assert _spools() == before
