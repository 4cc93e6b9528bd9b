"""Batch predictions: a stored dataset scored by a stored model as a job of the real
worker, downloadable as Parquet or CSV, with the numbers of an inline prediction."""

from __future__ import annotations

import io
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit

PARQUET = "application/vnd.apache.parquet"
# an unseen subject (999: the population level) and a row without Days (R's predict: NA)
NEW_DATA = b"Days,Subject\n0,308\n3.5,309\n9,372\n,308\n4,999\n"


@pytest.fixture
def fitted(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client(embedded_worker=True)
    dataset = client.post("/v1/datasets", content=(DATA / "sleepstudy.csv").read_bytes(),
                          headers={"Content-Type": "text/csv"}).json()
    model = fit(client, dataset["id"], "Reaction ~ Days + (Days | Subject)")
    assert model["status"] == "succeeded", model
    return client, model["id"]


def _upload(client: TestClient, content: bytes) -> str:
    response = client.post("/v1/datasets?categorical=Subject", content=content,
                           headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _score(client: TestClient, model_id: str, **body: Any) -> dict[str, Any]:
    created = client.post(f"/v1/models/{model_id}/predictions", json=body)
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    assert created.json()["links"]["self"] == location
    batch = client.get(f"{location}?wait=60").json()
    assert batch["status"] in ("succeeded", "failed"), batch
    return dict(batch)


def test_a_stored_dataset_is_scored_as_a_job_with_the_inline_numbers(
        fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    batch = _score(client, model_id, dataset_id=_upload(client, NEW_DATA))
    assert batch["status"] == "succeeded" and batch["n_rows"] == 5, batch
    inline = client.post(f"/v1/models/{model_id}/predictions", json={"columns": {
        "Days": [0, 3.5, 9, 4], "Subject": ["308", "309", "372", "999"]}}).json()["predictions"]

    parquet = client.get(batch["links"]["result"])
    assert parquet.status_code == 200 and parquet.headers["content-type"] == PARQUET
    values = pq.read_table(io.BytesIO(parquet.content)).column("prediction").to_pylist()
    # the same arithmetic on the same rows: equal to the last bit; the row without Days is NA
    assert values == [*inline[:3], None, inline[3]]

    csv = client.get(batch["links"]["result"], headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "prediction" and lines[4] == ""
    assert [float(v) for v in lines[1:4] + lines[5:]] == [*inline[:3], inline[3]]


def test_the_result_is_immutable_and_revalidates_with_304(
        fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    batch = _score(client, model_id, dataset_id=_upload(client, NEW_DATA))
    first = client.get(batch["links"]["result"])
    assert "immutable" in first.headers["cache-control"]
    again = client.get(batch["links"]["result"],
                       headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    csv = client.get(batch["links"]["result"], headers={"Accept": "text/csv"})
    assert csv.headers["etag"] != first.headers["etag"]  # another representation


def test_options_apply_and_a_refusal_is_the_batch_s_problem(
        fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    dataset_id = _upload(client, NEW_DATA)
    population = _score(client, model_id, dataset_id=dataset_id, include_random_effects=False)
    values = pq.read_table(io.BytesIO(client.get(population["links"]["result"]).content))
    inline = client.post(f"/v1/models/{model_id}/predictions", json={
        "columns": {"Days": [0.0], "Subject": ["308"]},
        "include_random_effects": False}).json()["predictions"]
    assert values.column("prediction").to_pylist()[0] == inline[0]

    refused = _score(client, model_id, dataset_id=dataset_id, new_levels="error")
    assert refused["status"] == "failed"
    assert refused["error"]["type"].endswith("prediction-failed")
    assert "999" in refused["error"]["detail"]
    assert_problem(client.get(refused["links"]["result"]), 409)


def test_unknown_datasets_models_and_batches_are_404(fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    missing = client.post(f"/v1/models/{model_id}/predictions",
                          json={"dataset_id": "00000000-0000-0000-0000-000000000000"})
    assert "no dataset" in assert_problem(missing, 404)["detail"]
    assert_problem(client.post("/v1/models/nope/predictions",
                               json={"dataset_id": _upload(client, NEW_DATA)}), 404)
    assert_problem(client.get(f"/v1/models/{model_id}/predictions/nope"), 404)
    both = client.post(f"/v1/models/{model_id}/predictions",
                       json={"dataset_id": "x", "columns": {"Days": [1]}})
    assert "'dataset_id'" in assert_problem(both, 422)["detail"]


def test_a_missing_column_fails_the_batch_naming_it(fitted: tuple[TestClient, str]) -> None:
    client, model_id = fitted
    batch = _score(client, model_id, dataset_id=_upload(client, b"Subject\n308\n309\n"))
    assert batch["status"] == "failed" and "Days" in batch["error"]["detail"], batch


def test_options_a_batch_cannot_honour_are_refused_field_by_field(
        fitted: tuple[TestClient, str]) -> None:
    """Intervals and a choice of grouping factors are for rows in the body: a 422 whose
    ``errors`` name each field in the documented shape (schemathesis found them without
    their location and type)."""
    client, model_id = fitted
    dataset_id = _upload(client, b"Days,Subject\n1,308\n")
    problem = assert_problem(client.post(f"/v1/models/{model_id}/predictions", json={
        "dataset_id": dataset_id, "interval": "prediction", "random_effects": ["Subject"]}),
        422)
    assert problem["errors"] == [
        {"location": "body", "field": field, "type": "value_error",
         "detail": "not available for batch predictions"}
        for field in ("interval", "random_effects")]
