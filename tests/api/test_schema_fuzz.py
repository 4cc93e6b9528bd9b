"""Requests generated from the OpenAPI document (schemathesis, on hypothesis) against the
in-process app: the datasets, models and operations routes never answer 500, every error
is an RFC 9457 problem document, and every answer matches the documented status codes,
content types and schemas.

Valid and invalid requests are generated for each operation. Path ids are sometimes
replaced by ones that exist (a dataset, a fitted model, a queued model) so the generated
bodies and queries reach the code behind the 404. Derandomized: the same requests each run.
SQLite only: what is tested is the HTTP layer's handling of input; the hand-written hostile
inputs (test_hostile_inputs.py) run on both databases.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.db.session import create_db_engine, make_session_factory
from service.errors import PROBLEM_MEDIA_TYPE
from service.jobs.worker import Worker
from tests.api.conftest import DATA, make_settings

# the routes of the datasets and models domains and the operations routes
OPERATIONS = (r"^/(v1/datasets(/\{dataset_id\})?"
              r"|v1/models(/\{model_id\}(/(random-effects|coefficients|predictions))?)?"
              r"|healthz|readyz|metrics)$")
EXAMPLES = 25  # per operation and generation mode: about 1,000 requests in all
ID_PARAMETERS = ("dataset_id", "model_id")


class ProblemDocuments:
    """Every 4xx and 5xx answer is a problem document with its status."""

    def __call__(self, ctx: Any, response: Any, case: Case) -> bool | None:
        if response.status_code < 400:
            return None
        media = response.headers.get("content-type", [""])
        media = media[0] if isinstance(media, list) else media
        assert media.startswith(PROBLEM_MEDIA_TYPE), (
            f"{response.status_code} answered as {media!r}, not {PROBLEM_MEDIA_TYPE}")
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["type"], str) and body["type"]
        return True


problem_documents = ProblemDocuments()
problem_documents.__name__ = "problem_documents"  # type: ignore[attr-defined]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def app(tmp_path: Path, _sqlite_template: Path) -> Iterator[FastAPI]:
    path = tmp_path / "fuzz.db"
    shutil.copyfile(_sqlite_template, path)
    application = create_app(make_settings(f"sqlite:///{path}", max_wait_seconds=0.05))
    try:
        yield application
    finally:
        shutdown_lifespans()  # schemathesis keeps the app's lifespan running until asked


def known_ids(app: FastAPI) -> dict[str, list[str]]:
    """A dataset, a model whose fit succeeded and one still queued."""
    settings = app.state.settings
    with TestClient(app) as client:
        dataset = client.post("/v1/datasets?name=mood", content=(DATA / "mood.csv").read_bytes(),
                              headers={"Content-Type": "text/csv"}).json()["id"]
        fitted = client.post("/v1/models", json={
            "dataset_id": dataset, "formula": "Mood ~ Exercise + (1 | State)"}).json()["id"]
        engine = create_db_engine(settings.database_url)
        try:
            assert Worker(settings, make_session_factory(engine)).run_once()
        finally:
            engine.dispose()
        queued = client.post("/v1/models", json={
            "dataset_id": dataset, "formula": "Mood ~ Exercise"}).json()["id"]
        assert client.get(f"/v1/models/{fitted}").json()["status"] == "succeeded"
    return {"dataset_id": [dataset], "model_id": [fitted, queued]}


def test_generated_requests_get_documented_problem_answers(app: FastAPI) -> None:
    ids = known_ids(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex=OPERATIONS)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) >= 10, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = st.tuples(operation.as_strategy(generation_mode=mode),
                              st.sampled_from([None, *ids["dataset_id"], *ids["model_id"]]))
            try:
                check_operation(cases)
            except Unsatisfiable:
                # any text is a valid id and there is nothing else to get wrong
                assert mode is GenerationMode.NEGATIVE, operation.label


def check_operation(cases: st.SearchStrategy[tuple[Case, str | None]]) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cases)
    def run(generated: tuple[Case, str | None]) -> None:
        case, known = generated
        for name in ID_PARAMETERS:
            if known is not None and name in (case.path_parameters or {}):
                case.path_parameters[name] = known
        case.call_and_validate(checks=CHECKS, additional_checks=[problem_documents])

    run()


# --- generated uploads: what the OpenAPI document cannot describe ----------------------

HOSTILE_CELLS = ["", "NA", "NaN", "nan", "inf", "-inf", "1e309", "-1e309", "TRUE", "false",
                 "T", "0", "-0", "1.5", "1,5", "=cmd|' /C calc'!A0", "@SUM(A1)", '"', '""',
                 "\ufeff", "\u202e", "\r", "\t", ";", " ", "9" * 400, "é", "\\", "\x00"]
cells = st.one_of(st.sampled_from(HOSTILE_CELLS), st.text(max_size=8),
                  st.floats(allow_nan=True).map(repr), st.integers().map(str))


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 5))
    header = draw(st.lists(cells, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=width + 1), max_size=6))
    separator = draw(st.sampled_from([",", ";", "\t"]))
    quote = draw(st.booleans())
    lines = [separator.join(_quoted(c) if quote else c for c in row) for row in [header, *rows]]
    text = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])), "replace")


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(st.text(max_size=3),
                                                                         children, max_size=2),
    max_leaves=4)
records = st.lists(st.dictionaries(st.sampled_from(["Mood", "Exercise", "State", "", "x\x00"]),
                                   json_values, max_size=4), max_size=4)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def assert_answer(response: Any, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
        assert response.json()["detail"]


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(body=st.one_of(csv_bodies(), st.binary(max_size=200)))
def test_generated_csv_is_stored_or_refused_with_a_reason(client: TestClient,
                                                          body: bytes) -> None:
    response = client.post("/v1/datasets", content=body, headers={"Content-Type": "text/csv"})
    assert_answer(response, 201, 422)


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(rows=records)
def test_generated_records_are_stored_or_refused_with_a_reason(client: TestClient,
                                                               rows: list[Any]) -> None:
    assert_answer(client.post("/v1/datasets", json={"records": rows}), 201, 422)


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(rows=records, new_levels=st.sampled_from(["population", "error"]),
       include=st.booleans())
def test_generated_prediction_records_are_predicted_or_refused(
        client: TestClient, fitted_model: str, rows: list[Any], new_levels: str,
        include: bool) -> None:
    response = client.post(f"/v1/models/{fitted_model}/predictions", json={
        "records": rows, "new_levels": new_levels, "include_random_effects": include})
    assert_answer(response, 200, 422)


@pytest.fixture
def fitted_model(app: FastAPI, client: TestClient) -> str:
    return known_ids(app)["model_id"][0]
