"""Predictions for rows whose grouping value is missing, through the HTTP API, against R.

lme4's ``predict`` with ``allow.new.levels = TRUE`` gives such rows the population-level
prediction, and without it refuses them; ``predict`` on an ``lmList`` refuses a row with no
group (there is no population regression). Messages name rows as R numbers them, from 1.
R's numbers: ``tests/data/r/missing_groups.R``; mixed-model predictions to 1e-5 relative
(conditional modes found by an optimizer, as the other API tests).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit
from tests.api.test_comparisons import upload

R = json.loads((DATA / "expected" / "missing_groups.json").read_text())
REL = 1e-5


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def _records(state: list[Any] | None = None) -> list[dict[str, Any]]:
    states = R["new"]["State"] if state is None else state
    return [{"Exercise": x, "State": s}
            for x, s in zip(R["new"]["Exercise"], states, strict=True)]


def _csv(records: list[dict[str, Any]]) -> bytes:
    lines = ["Exercise,State"] + [f"{r['Exercise']},{r['State'] or ''}" for r in records]
    return ("\n".join(lines) + "\n").encode()


def _predict(client: TestClient, model_id: str, records: list[dict[str, Any]], *,
             as_csv: bool = False, **options: Any) -> Any:
    url = f"/v1/models/{model_id}/predictions"
    if as_csv:
        query = "&".join(f"{k}={str(v).lower()}" for k, v in options.items())
        return client.post(f"{url}?{query}", content=_csv(records),
                           headers={"Content-Type": "text/csv"})
    return client.post(url, json={"records": records, **options})


def test_a_mixed_model_predicts_a_missing_group_at_the_population_level(
        worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit(worker_client, mood, R["formula"])
    assert model["status"] == "succeeded", model["error"]
    for as_csv in (False, True):
        response = _predict(worker_client, model["id"], _records(), as_csv=as_csv)
        assert response.status_code == 200, response.text
        # rows 1 and 3 have no State: R's allow.new.levels = TRUE
        assert response.json()["predictions"] == pytest.approx(R["population"], rel=REL)
        fixed = _predict(worker_client, model["id"], _records(), as_csv=as_csv,
                         include_random_effects=False)
        assert fixed.json()["predictions"] == pytest.approx(R["fixed_only"], rel=REL)

        # new_levels "error" is lme4's allow.new.levels = FALSE: refused, rows named
        refused = assert_problem(_predict(worker_client, model["id"], _records(),
                                          as_csv=as_csv, new_levels="error"), 422)
        assert "rows 1, 3" in refused["detail"] and "State" in refused["detail"]

    # no row has a State (the column holds nothing but missing values)
    nothing = [None] * len(R["new"]["State"])
    for as_csv in (False, True):
        response = _predict(worker_client, model["id"], _records(nothing), as_csv=as_csv)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == pytest.approx(R["fixed_only"], rel=REL)
        refused = assert_problem(_predict(worker_client, model["id"], _records(nothing),
                                          as_csv=as_csv, new_levels="error"), 422)
        assert "rows 1, 2, 3, 4" in refused["detail"]


def test_a_per_group_model_refuses_a_row_without_a_group(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit(worker_client, mood, "Mood ~ Exercise | State")
    assert model["status"] == "succeeded", model["error"]
    nothing = [None] * len(R["new"]["State"])
    for records, rows in ((_records(), "rows 1, 3"), (_records(nothing), "rows 1, 2, 3, 4")):
        for as_csv in (False, True):
            for new_levels in ("population", "error"):
                body = assert_problem(_predict(worker_client, model["id"], records,
                                               as_csv=as_csv, new_levels=new_levels), 422)
                assert rows in body["detail"] and "State" in body["detail"]
                assert "population-level regression" in body["detail"]
    # rows with a group are predicted by their group's regression, as before
    complete = [r for r in _records() if r["State"]]
    assert _predict(worker_client, model["id"], complete).status_code == 200


def test_a_missing_covariate_is_refused_naming_rows_from_1(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit(worker_client, mood, R["formula"])
    records = [{"Exercise": 1.0, "State": "A"}, {"Exercise": None, "State": "B"},
               {"Exercise": 2.0, "State": None}]
    body = assert_problem(_predict(worker_client, model["id"], records), 422)
    assert "Exercise" in body["detail"] and "row 2" in body["detail"]
    assert "0-based" not in body["detail"]
