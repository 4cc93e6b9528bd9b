"""Request ids: accepted from the client or made, returned on every answer, in problem
documents and in every log line of the request, and, through the jobs table, in the lines of
the worker that fits the model the request queued; JSON and text log lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.auth.principal import Principal
from service.context import LogContext, bound
from service.db.models import JobRow
from service.ops.logs import ContextFilter, JsonFormatter, TextFormatter, make_handler
from tests.api.conftest import ClientFactory, assert_problem
from tests.api.fitting import wait_for_model
from tests.api.keys import make_key
from tests.jobs.helpers import worker_processes
from tests.processes import stop

NEW_ID = re.compile(r"^[0-9a-f]{32}$")
LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_log() -> Iterator[LogLines]:
    """The JSON lines every logger writes during the test, as the `mixedfit` command's
    handler writes them (MIXEDFIT_LOG_FORMAT=json)."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_request_without_an_id_gets_a_new_one(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert NEW_ID.match(first) and NEW_ID.match(second) and first != second


def test_the_clients_request_id_is_returned_and_in_the_problem(client: TestClient) -> None:
    response = client.get("/v1/models/nope", headers={"X-Request-ID": "checkout-42.a_b:c"})
    body = assert_problem(response, 404)
    assert response.headers["x-request-id"] == "checkout-42.a_b:c"
    assert body["request_id"] == "checkout-42.a_b:c"


@pytest.mark.parametrize("offered", ["", "has space", "x" * 129, "tab\there", "é"])
def test_an_unacceptable_request_id_is_replaced(client: TestClient, offered: str) -> None:
    response = client.get("/v1/models/nope",
                          headers={"X-Request-ID": offered.encode("utf-8")})
    returned = response.headers["x-request-id"]
    assert NEW_ID.match(returned), returned
    assert response.json()["request_id"] == returned


def test_the_longest_acceptable_request_id_is_kept(client: TestClient) -> None:
    offered = "!~" * 64
    assert client.get("/healthz", headers={"X-Request-ID": offered}).headers[
        "x-request-id"] == offered


def test_validation_errors_and_500s_carry_the_request_id(make_client: ClientFactory) -> None:
    client = make_client()
    body = assert_problem(client.post("/v1/models", json={"formula": 1},
                                      headers={"X-Request-ID": "bad-spec"}), 422)
    assert body["request_id"] == "bad-spec"

    @client.app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail")

    response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    body = assert_problem(response, 500)
    assert response.headers["x-request-id"] == "boom-1" and body["request_id"] == "boom-1"
    assert "secret" not in response.text


def test_request_id_in_the_json_lines_of_the_request_and_of_the_workers_fit(
        make_client: ClientFactory, mood_csv: bytes, json_log: LogLines) -> None:
    client = make_client(embedded_worker=True)
    dataset = client.post("/v1/datasets?name=mood", content=mood_csv,
                          headers={"Content-Type": "text/csv"}).json()
    response = client.post("/v1/models", headers={"X-Request-ID": "fit-mood-1"},
                           json={"dataset_id": dataset["id"], "method": "ML",
                                 "formula": "Mood ~ Exercise + (1 | State)"})
    assert response.status_code == 202, response.text
    model_id = response.json()["id"]
    assert response.headers["x-request-id"] == "fit-mood-1"
    assert wait_for_model(client, response.headers["location"], "fit")["status"] == "succeeded"

    lines = json_log()
    access = [line for line in lines
              if line["logger"] == "mixedfit.access" and line.get("request_id") == "fit-mood-1"]
    assert len(access) == 1, lines
    assert access[0]["method"] == "POST" and access[0]["route"] == "/v1/models"
    assert access[0]["status"] == 202 and access[0]["duration_ms"] >= 0
    assert {"time", "level", "message"} <= set(access[0])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", access[0]["time"])

    # the worker's lines: the job's ids, the attempt, and the request that queued it
    worker = [line for line in lines if line.get("job_id")]
    assert worker, lines
    assert all(line["request_id"] == "fit-mood-1" for line in worker), worker
    assert all(line["model_id"] == model_id and line["attempt"] == 1 for line in worker)
    assert any("claimed" in line["message"] for line in worker)
    assert any(f"model {model_id} fitted" in line["message"] for line in worker)
    assert any("done" in line["message"] for line in worker)
    # the long-polls that waited for the fit are other requests, with ids of their own
    polls = [line for line in lines if line.get("route") == "/v1/models/{model_id}"]
    assert polls and all(line["request_id"] != "fit-mood-1" for line in polls)


def test_json_access_line_names_the_keys_tenant(
        client: TestClient, database_url: str, json_log: LogLines) -> None:
    key = make_key(database_url, "acme")
    response = client.get("/v1/datasets", headers={**key.headers, "X-Request-ID": "acme-1"})
    assert response.status_code == 200
    refused = client.get("/v1/datasets", headers={"X-Request-ID": "nobody-1"})
    assert refused.status_code == 401
    lines = {line["request_id"]: line for line in json_log()
             if line["logger"] == "mixedfit.access"}
    assert lines["acme-1"]["tenant"] == "acme" and lines["acme-1"]["status"] == 200
    assert "tenant" not in lines["nobody-1"] and lines["nobody-1"]["status"] == 401


def test_the_job_stores_the_id_of_the_request_that_queued_it(
        client: TestClient, mood_id: str) -> None:
    response = client.post("/v1/models", headers={"X-Request-ID": "queue-it"},
                           json={"dataset_id": mood_id, "formula": "Mood ~ Exercise"})
    model_id = response.json()["id"]
    factory = client.app.state.session_factory
    with factory() as session:
        job = session.scalars(select(JobRow).where(JobRow.target_id == model_id)).one()
    assert job.request_id == "queue-it"


def _record(message: str = "hello", **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("mixedfit.test", logging.WARNING, __file__, 1, message, None,
                               None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_line_has_the_tenant_of_the_principal() -> None:
    state: dict[str, Any] = {}
    with bound(LogContext(request_id="r1", state=state, method="GET")):
        # the auth middleware sets the principal after the request context is bound
        state["principal"] = Principal(tenant="acme", admin=False, key_id="k1")
        record = _record()
        ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line == {"time": line["time"], "level": "WARNING", "logger": "mixedfit.test",
                    "message": "hello", "request_id": "r1", "tenant": "acme", "method": "GET"}


def test_json_line_outside_any_request_has_no_ids_and_keeps_the_traceback() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        import sys

        record = logging.LogRecord("mixedfit", logging.ERROR, __file__, 1, "failed %s",
                                   ("here",), sys.exc_info())
    ContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "failed here" and "request_id" not in line
    assert "ValueError: broken" in line["exception"]


def test_text_line_names_the_ids_after_the_message() -> None:
    with bound(LogContext(request_id="r2", job_id="j1", model_id="m1", attempt=2)):
        record = _record("job started")
        ContextFilter().filter(record)
    text = TextFormatter().format(record)
    assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z WARNING mixedfit.test: job started "
                    r"\[request_id=r2 job_id=j1 model_id=m1 attempt=2\]$", text), text


@pytest.mark.slow
def test_a_worker_process_logs_the_request_id_of_the_fit_it_runs(
        make_client: ClientFactory, database_url: str, mood_csv: bytes,
        tmp_path: Path) -> None:
    """Production's shape: the API in one process, `python -m service.jobs.worker` in
    another, with MIXEDFIT_LOG_FORMAT=json; the request id travels through the jobs table."""
    client = make_client()
    dataset = client.post("/v1/datasets?name=mood", content=mood_csv,
                          headers={"Content-Type": "text/csv"}).json()
    with worker_processes(database_url, tmp_path, log_format="json") as start:
        worker = start("worker")
        response = client.post("/v1/models", headers={"X-Request-ID": "from-the-api"},
                               json={"dataset_id": dataset["id"], "formula": "Mood ~ Exercise"})
        model = wait_for_model(client, response.headers["location"], "fit")
        assert model["status"] == "succeeded", model
        assert stop(worker) == 0
    # (runpy's warning about `-m service.jobs.worker` is not a log line)
    lines = [json.loads(text) for text in (tmp_path / "worker.log").read_text().splitlines()
             if text.startswith("{")]
    fit = [line for line in lines if line.get("job_id")]
    assert fit and all(line["request_id"] == "from-the-api" for line in fit), lines
    assert all(line["model_id"] == model["id"] and line["attempt"] == 1 for line in fit)
    assert any(f"model {model['id']} fitted" in line["message"] for line in fit)
    # the worker's own lines (start, stop) belong to no request
    assert any("started" in line["message"] and "request_id" not in line for line in lines)


def test_a_lines_time_is_its_records_moment_in_utc_to_the_millisecond() -> None:
    """The time text (the second's part kept from one line to the next) is what
    datetime makes of the record's moment, at second boundaries and roundings too."""
    from datetime import UTC, datetime

    formatter = JsonFormatter()
    record = logging.LogRecord("mixedfit.test", logging.INFO, __file__, 1, "m", (), None)
    base = 1_790_000_000.0
    moments = ([base + i * 0.0001 for i in range(30_000)]  # 3 s, every 0.1 ms
               + [base + i + 0.9999995 for i in range(50)]  # rounds up to the next second
               + [base + i * 7.3e-7 for i in range(5_000)] + [0.0, 86_399.9996])
    for moment in moments:
        record.created = moment
        stamp = datetime.fromtimestamp(moment, UTC)
        want = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        assert json.loads(formatter.format(record))["time"] == want, moment
