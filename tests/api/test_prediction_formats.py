"""Predictions take new rows as JSON records or columns, CSV or Parquet, and answer JSON,
CSV or Parquet as Accept asks: every combination gives the same numbers."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import fit_sleepstudy

PARQUET = "application/vnd.apache.parquet"
# Subject is a grouping factor whose levels are numbers (308, 309, ...); 999 is unseen
DAYS = [0.0, 3.5, 9.0, 4.0]
SUBJECTS = [308, 309, 372, 999]


@pytest.fixture
def model(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client(embedded_worker=True)
    return client, f"/v1/models/{fit_sleepstudy(client)}/predictions"


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _bodies() -> dict[str, dict[str, Any]]:
    csv = "Days,Subject\n" + "".join(f"{d},{s}\n" for d, s in zip(DAYS, SUBJECTS, strict=True))
    return {
        "records": {"json": {"records": [{"Days": d, "Subject": s}
                                         for d, s in zip(DAYS, SUBJECTS, strict=True)]}},
        "columns": {"json": {"columns": {"Days": DAYS, "Subject": SUBJECTS}}},
        "csv": {"content": csv.encode(), "headers": {"Content-Type": "text/csv"}},
        "parquet": {"content": _parquet(pa.table({"Days": DAYS, "Subject": SUBJECTS})),
                    "headers": {"Content-Type": PARQUET}},
        "parquet of text": {"content": _parquet(pa.table(
            {"Days": DAYS, "Subject": [str(s) for s in SUBJECTS]})),
            "headers": {"Content-Type": PARQUET}},
    }


def test_every_input_format_gives_the_same_predictions(model: tuple[TestClient, str]) -> None:
    client, url = model
    answers = {}
    for name, body in _bodies().items():
        response = client.post(url, **body)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()["predictions"]
    first = answers["records"]
    assert len(first) == 4 and all(isinstance(v, float) for v in first)
    assert all(values == first for values in answers.values()), answers
    # the unseen subject gets the population-level prediction, the others their own
    population = client.post(url, json={"columns": {"Days": DAYS, "Subject": SUBJECTS},
                                        "include_random_effects": False}).json()["predictions"]
    assert first[3] == population[3] and first[0] != population[0]


def test_answers_in_csv_and_parquet_as_accept_asks(model: tuple[TestClient, str]) -> None:
    client, url = model
    body = {"columns": {"Days": DAYS, "Subject": SUBJECTS}}
    want = client.post(url, json=body).json()["predictions"]
    csv = client.post(url, json=body, headers={"Accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "prediction" and [float(v) for v in lines[1:]] == want
    parquet = client.post(url, json=body, headers={"Accept": PARQUET})
    assert parquet.headers["content-type"] == PARQUET
    assert pq.read_table(io.BytesIO(parquet.content)).column("prediction").to_pylist() == want
    assert client.post(url, json=body, headers={"Accept": "*/*"}).json()["predictions"] == want


def test_malformed_bodies_are_422s_that_say_what_is_wrong(
        model: tuple[TestClient, str]) -> None:
    client, url = model
    both = assert_problem(client.post(url, json={"records": [{"Days": 1, "Subject": 308}],
                                                 "columns": {"Days": [1]}}), 422)
    assert "'records' or 'columns'" in both["detail"]
    ragged = assert_problem(client.post(url, json={"columns": {"Days": [1, 2],
                                                               "Subject": [308]}}), 422)
    assert "different lengths" in ragged["detail"] and "Days: 2" in ragged["detail"]
    garbage = assert_problem(client.post(url, content=b"PAR1 not really",
                                         headers={"Content-Type": PARQUET}), 422)
    assert "Parquet" in garbage["detail"]
    refused = assert_problem(client.post(url, content=b"x",
                                         headers={"Content-Type": "image/png"}), 415)
    assert PARQUET in refused["detail"]


@pytest.mark.parametrize(("body", "says"), [
    ({"records": [{"Days": [1, 2], "Subject": 308}]}, "records.0.Days"),  # not a scalar
    ({"records": [{"Days": 1, "Subject": 308}, 5]}, "records.1"),  # not an object
    ({"columns": {"Days": [1, {"x": 1}], "Subject": [308, 309]}}, "columns.Days.1"),
    ({"columns": {"Days": 1, "Subject": [308]}}, "columns.Days"),  # not a list
    ({"records": [{"Days": 1, "Subject": 308}], "level": 2}, "level"),  # a bad option
    ({"records": [{"Days": 1, "Subject": 308}], "colour": "red"}, "colour"),  # unknown
    ({"records": []}, "records"),
])
def test_rows_that_are_not_scalars_or_bad_options_are_named(
        model: tuple[TestClient, str], body: dict[str, Any], says: str) -> None:
    """Well-formed rows are checked by their types at once, not value by value by the
    schema; anything else gets the schema's own 422, naming the place."""
    client, url = model
    problem = assert_problem(client.post(url, json=body), 422)
    assert says in problem["detail"], problem["detail"]


def test_numbers_json_allows_beyond_a_double_are_refused_by_name(
        model: tuple[TestClient, str]) -> None:
    client, url = model
    huge = b'{"records": [{"Days": 1' + b"0" * 400 + b', "Subject": 308}]}'
    problem = assert_problem(client.post(url, content=huge,
                                         headers={"Content-Type": "application/json"}), 422)
    assert "'Days'" in problem["detail"] and "too large" in problem["detail"]
    # beyond 64 bits but within a double's range: a number like any other
    big = client.post(url, content=b'{"records": [{"Days": 1' + b"0" * 25 + b', "Subject": 308}]}',
                      headers={"Content-Type": "application/json"})
    assert big.status_code == 200 and big.json()["predictions"][0] > 1e20


def test_mixed_numbers_and_missing_keys_read_as_the_schema_reads_them(
        model: tuple[TestClient, str]) -> None:
    """Whole and fractional numbers in one column are one numeric column; a key absent
    from a record is a missing value (here the grouping factor's: the population level)."""
    client, url = model
    mixed = client.post(url, json={"records": [{"Days": 3, "Subject": 308},
                                               {"Days": 3.0, "Subject": 308},
                                               {"Days": 3}]})
    assert mixed.status_code == 200, mixed.text
    first, second, third = mixed.json()["predictions"]
    assert first == second
    population = client.post(url, json={"records": [{"Days": 3, "Subject": 308}],
                                        "include_random_effects": False}).json()
    assert third == population["predictions"][0]


def test_parquet_answers_are_not_gzipped_again(model: tuple[TestClient, str]) -> None:
    """Parquet is compressed per column already; JSON of as many numbers is gzipped."""
    client, url = model
    body = {"columns": {"Days": [d / 10 for d in range(500)], "Subject": [308] * 500}}
    parquet = client.post(url, json=body, headers={"Accept": PARQUET,
                                                   "Accept-Encoding": "gzip"})
    assert parquet.status_code == 200 and len(parquet.content) > 1024
    assert "content-encoding" not in parquet.headers
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 500
    as_json = client.post(url, json=body, headers={"Accept-Encoding": "gzip"})
    assert as_json.headers["content-encoding"] == "gzip"
