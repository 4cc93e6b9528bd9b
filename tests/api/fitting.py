"""Fit a model through the API and long-poll it to its end: the one helper the API tests
share."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA

MAX_POLLS = 60  # each poll waits up to 5 s: small fits have minutes to finish


def wait_for_model(client: TestClient, location: str, what: object) -> dict[str, Any]:
    """Long-poll ``location`` until the model's fit has ended (succeeded, failed or
    cancelled)."""
    for _ in range(MAX_POLLS):
        model: dict[str, Any] = client.get(f"{location}?wait=5").json()
        if model["status"] in ("succeeded", "failed", "cancelled"):
            return model
    pytest.fail(f"{what}: still {model['status']} after {MAX_POLLS} polls")


def fit_spec(client: TestClient, spec: dict[str, Any]) -> dict[str, Any]:
    """POST a model spec and long-poll the model until its fit has finished."""
    response = client.post("/v1/models", json=spec)
    assert response.status_code == 202, response.text
    return wait_for_model(client, response.headers["location"], spec)


def fit(client: TestClient, dataset_id: str, formula: str, method: str = "REML"
        ) -> dict[str, Any]:
    """Fit ``formula`` to a stored dataset and wait for the fit."""
    return fit_spec(client, {"dataset_id": dataset_id, "formula": formula, "method": method})


def fit_sleepstudy(client: TestClient, formula: str = "Reaction ~ Days + (Days | Subject)"
                   ) -> str:
    """Upload lme4's sleepstudy (Subject's levels are numbers: 308, 309, ...), fit
    ``formula`` to it and return the finished model's id."""
    dataset = client.post("/v1/datasets", content=(DATA / "sleepstudy.csv").read_bytes(),
                          headers={"Content-Type": "text/csv"}).json()
    fitted = fit(client, dataset["id"], formula)
    assert fitted["status"] == "succeeded", fitted
    return str(fitted["id"])
