"""Finished models and what is computed from them are cacheable: ETag, immutable, 304 on a
current If-None-Match (answered before anything is computed); lists give summaries unless
asked; large answers are gzipped."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory
from tests.api.fitting import fit

MOOD_LMM = "Mood ~ Exercise + (1 | State)"


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True)


@pytest.fixture
def fitted(worker_client: TestClient, mood_csv: bytes) -> dict[str, Any]:
    dataset = worker_client.post("/v1/datasets", content=mood_csv,
                                 headers={"Content-Type": "text/csv"}).json()
    model = fit(worker_client, dataset["id"], MOOD_LMM)
    assert model["status"] == "succeeded", model
    return model


def _conditional(client: TestClient, url: str, **headers: str) -> tuple[Any, Any]:
    first = client.get(url, headers=headers)
    assert first.status_code == 200, first.text
    again = client.get(url, headers={**headers, "If-None-Match": first.headers["etag"]})
    return first, again


def test_a_finished_model_is_revalidated_because_its_tags_change(
        worker_client: TestClient, fitted: dict[str, Any]) -> None:
    first, again = _conditional(worker_client, f"/v1/models/{fitted['id']}")
    assert first.headers["cache-control"] == "private, no-cache"
    assert again.status_code == 304
    assert again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("path", ["/random-effects", "/coefficients", "/residuals",
                                  "/residuals?format=csv", "/plots",
                                  "/plots/residuals_vs_fitted?format=png"])
def test_finished_resources_are_immutable_and_revalidate_to_304(
        worker_client: TestClient, fitted: dict[str, Any], path: str) -> None:
    first, again = _conditional(worker_client, f"/v1/models/{fitted['id']}{path}")
    assert first.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    stale = worker_client.get(f"/v1/models/{fitted['id']}{path}",
                              headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200


def test_each_representation_has_its_own_etag(worker_client: TestClient,
                                              fitted: dict[str, Any]) -> None:
    base = f"/v1/models/{fitted['id']}"
    tags = {worker_client.get(url, headers=headers).headers["etag"] for url, headers in [
        (f"{base}/plots/residuals_vs_fitted?format=png", {}),
        (f"{base}/plots/residuals_vs_fitted?format=svg", {}),
        (f"{base}/residuals", {"Accept": "text/csv"}),
        (f"{base}/residuals", {}),
        (f"{base}/random-effects", {})]}
    assert len(tags) == 5


def test_a_304_is_answered_without_computing_anything(worker_client: TestClient,
                                                      fitted: dict[str, Any]) -> None:
    url = f"/v1/models/{fitted['id']}/plots/residuals_vs_fitted?format=svg"
    etag = worker_client.get(url).headers["etag"]
    # the plot needs the dataset's rows; with the dataset gone only a 304 can be answered
    assert worker_client.delete(f"/v1/datasets/{fitted['dataset_id']}").status_code == 204
    assert worker_client.get(url).status_code == 409
    assert worker_client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_an_unfinished_model_is_not_cached(client: TestClient, mood_id: str) -> None:
    created = client.post("/v1/models", json={"dataset_id": mood_id, "formula": MOOD_LMM})
    model = client.get(created.headers["location"])
    assert model.json()["status"] == "queued"
    assert model.headers["cache-control"] == "no-cache"
    assert "etag" not in model.headers
    assert client.get(created.headers["location"], headers={"If-None-Match": "*"}
                      ).status_code == 200


def test_lists_give_summaries_unless_the_result_is_asked_for(
        worker_client: TestClient, fitted: dict[str, Any]) -> None:
    summaries = worker_client.get("/v1/models").json()["items"]
    assert [m["id"] for m in summaries] == [fitted["id"]]
    assert summaries[0]["result"] is None and summaries[0]["status"] == "succeeded"
    full = worker_client.get("/v1/models?include=result").json()["items"]
    assert full[0]["result"] == fitted["result"]
    assert worker_client.get("/v1/models?include=everything").status_code == 422


def test_large_answers_are_gzipped(worker_client: TestClient,
                                   fitted: dict[str, Any]) -> None:
    url = f"/v1/models/{fitted['id']}/residuals"
    zipped = worker_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json()["rows"]  # decoded by the client
    plain = worker_client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == zipped.json()
