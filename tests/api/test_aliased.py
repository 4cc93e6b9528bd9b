"""Aliased coefficients through the HTTP API: a rank-deficient model's fixed_effects list
the aliased column in its place with null numbers and ``"aliased": true`` (R's summary
prints NA for it), the queryable fixed_effects table stores the flag, and predictions
leave the column out. R's numbers: tests/data/r/aliased.R (1e-9 relative: least squares).
"""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import FixedEffectRow
from tests.api.conftest import DATA, ClientFactory
from tests.api.fitting import fit_spec

REF = json.loads((DATA / "expected" / "aliased.json").read_text())
NUMBERS = ("estimate", "std_error", "statistic", "df", "p_value", "conf_low", "conf_high")


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def _upload(client: TestClient) -> str:
    response = client.post("/v1/datasets?name=aliased", content=(DATA / "aliased.csv")
                           .read_bytes(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def test_aliased_coefficient_is_served_and_stored(
        worker_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    ref = REF["lm"]
    model = fit_spec(worker_client, {"dataset_id": _upload(worker_client),
                                     "formula": ref["model"]})
    assert model["status"] == "succeeded", model["error"]
    fixed = model["result"]["fixed_effects"]
    assert [fe["term"] for fe in fixed] == list(ref["coefficients"])
    for fe in fixed:
        want = ref["coefficients"][fe["term"]]
        assert fe["aliased"] is want["aliased"]
        if want["aliased"]:
            assert all(fe[name] is None for name in NUMBERS)
        else:
            assert math.isclose(fe["estimate"], want["estimate"], rel_tol=1e-9)
            assert math.isclose(fe["std_error"], want["std_error"], rel_tol=1e-9)
    with session_factory() as session:
        rows = session.execute(select(FixedEffectRow.term, FixedEffectRow.aliased,
                                      FixedEffectRow.estimate)
                               .where(FixedEffectRow.model_id == model["id"])
                               .order_by(FixedEffectRow.position)).all()
    assert [(term, aliased) for term, aliased, _ in rows] == [
        (term, want["aliased"]) for term, want in ref["coefficients"].items()]
    assert [estimate for term, _, estimate in rows if term == "x2"] == [None]

    predicted = worker_client.post(f"/v1/models/{model['id']}/predictions",
                                   json={"records": REF["new"]})
    assert predicted.status_code == 200, predicted.text
    for value, want in zip(predicted.json()["predictions"], REF["predict_lm"], strict=True):
        assert math.isclose(value, want, rel_tol=1e-9)


def test_a_group_s_aliased_coefficient_is_served(worker_client: TestClient) -> None:
    ref = REF["lmlist"]
    model = fit_spec(worker_client, {"dataset_id": _upload(worker_client),
                                     "formula": ref["model"]})
    assert model["status"] == "succeeded", model["error"]
    c = next(g for g in model["result"]["groups"] if g["level"] == "c")
    x2 = c["fixed_effects"][2]
    assert x2["term"] == "x2" and x2["aliased"] is True and x2["estimate"] is None
    coefficients = worker_client.get(f"/v1/models/{model['id']}/coefficients").json()
    levels = {row["level"]: row["values"] for row in coefficients["coefficients"][0]["levels"]}
    assert levels["c"][2] is None  # R's coef(lmList): NA
