"""Plots of stored models through the HTTP API: every listed plot of every model kind
renders as a valid PNG and SVG; unknown names, unfitted models and deleted datasets are
problem documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ModelRow
from tests.api.conftest import DATA, ClientFactory, assert_problem
from tests.api.fitting import fit, fit_spec
from tests.api.test_comparisons import create, upload

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_ROOT = "{http://www.w3.org/2000/svg}svg"

# (formula, method, the plots it lists)
MODELS = {
    "lm": ("Mood ~ Exercise", "REML", ["residuals_vs_fitted", "qq", "fitted_lines"]),
    "lmm": ("Mood ~ Exercise + (1 + Exercise | State)", "ML",
            ["residuals_vs_fitted", "residuals_by_group", "qq", "fitted_lines",
             "caterpillar"]),
    "lm_by_group": ("Mood ~ Exercise | State", "REML",
                    ["residuals_vs_fitted", "residuals_by_group", "qq", "fitted_lines"]),
}


@pytest.fixture
def worker_client(make_client: ClientFactory) -> TestClient:
    return make_client(embedded_worker=True, worker_poll_seconds=0.05)


def assert_image(response: Any, fmt: str) -> None:
    assert response.status_code == 200, response.text
    if fmt == "png":
        assert response.headers["content-type"] == "image/png"
        assert response.content.startswith(PNG_SIGNATURE)
    else:
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert ET.fromstring(response.content).tag == SVG_ROOT


def test_every_listed_plot_of_every_kind_renders(worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    for kind, (formula, method, names) in MODELS.items():
        model = fit(worker_client, mood, formula, method)
        assert model["status"] == "succeeded" and model["kind"] == kind, model["error"]
        listing = worker_client.get(f"/v1/models/{model['id']}/plots")
        assert listing.status_code == 200, listing.text
        body = listing.json()
        assert body["model_id"] == model["id"] and body["kind"] == kind
        assert [plot["name"] for plot in body["plots"]] == names, kind
        for plot in body["plots"]:
            for fmt in ("png", "svg"):
                assert_image(worker_client.get(plot[fmt]), fmt)
        # the titles say which model a plot shows
        svg = worker_client.get(f"/v1/models/{model['id']}/plots/qq?format=svg").text
        assert "Exercise" in svg


def test_format_follows_the_accept_header_and_lm_plots_by_a_data_column(
        worker_client: TestClient) -> None:
    mood = upload(worker_client, "mood")
    model = fit(worker_client, mood, "Mood ~ Exercise")
    url = f"/v1/models/{model['id']}/plots"
    assert_image(worker_client.get(f"{url}/qq", headers={"Accept": "image/svg+xml"}), "svg")
    assert_image(worker_client.get(f"{url}/qq"), "png")
    grouped = worker_client.get(f"{url}?group=State").json()["plots"]
    by_group = next(p for p in grouped if p["name"] == "residuals_by_group")
    assert_image(worker_client.get(by_group["svg"]), "svg")
    assert "Nope" in assert_problem(worker_client.get(f"{url}?group=Nope"), 422)["detail"]
    assert_problem(worker_client.get(f"{url}/qq?group=Nope"), 422)


def test_plot_errors_are_problem_documents(make_client: ClientFactory) -> None:
    client = make_client()  # no worker
    mood = upload(client, "mood")
    queued = create(client, mood, "Mood ~ Exercise")
    assert assert_problem(client.get(f"/v1/models/{queued}/plots"), 409)["model_status"] \
        == "queued"
    assert_problem(client.get(f"/v1/models/{queued}/plots/qq"), 409)
    assert_problem(client.get("/v1/models/nope/plots"), 404)
    assert_problem(client.get("/v1/models/nope/plots/qq"), 404)

    worker = make_client(embedded_worker=True, worker_poll_seconds=0.05)
    model = fit(worker, mood, "Mood ~ Exercise")
    url = f"/v1/models/{model['id']}/plots"
    unknown = assert_problem(worker.get(f"{url}/caterpillar"), 404)
    assert unknown["available"] == MODELS["lm"][2]
    assert "caterpillar" in unknown["detail"] and "qq" in unknown["detail"]
    assert_problem(worker.get(f"{url}/qq?format=gif"), 422)
    assert worker.delete(f"/v1/datasets/{mood}").status_code == 204
    gone = assert_problem(worker.get(f"{url}/qq"), 409)
    assert gone["type"].endswith("dataset-deleted")
    assert_problem(worker.get(url), 409)


HOSTILE_NAME = r"$\undefinedmacro$"
HOSTILE_COLUMNS = {"Mood": r"$y_1^2$", "Exercise": r"\x$_{x}$", "State": r"$\group$"}
HOSTILE_LEVELS = {"A": r"$\alpha$", "B": "_hidden", "C": "a^b_c", "D": r"c\$d"}


def hostile_mood() -> bytes:
    data = pd.read_csv(DATA / "mood.csv")
    data["State"] = data["State"].map(HOSTILE_LEVELS)
    return data.rename(columns=HOSTILE_COLUMNS).to_csv(index=False).encode()


def test_names_columns_and_levels_with_mathtext_plot_literally(
        worker_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    dataset = upload(worker_client, "hostile", hostile_mood())
    y, x, g = (f"`{HOSTILE_COLUMNS[c]}`" for c in ("Mood", "Exercise", "State"))
    for formula, method, group in [(f"{y} ~ {x} + (1 + {x} | {g})", "ML", None),
                                   (f"{y} ~ {x}", "REML", HOSTILE_COLUMNS["State"])]:
        model = fit_spec(worker_client, {"dataset_id": dataset, "formula": formula,
                                         "method": method})
        assert model["status"] == "succeeded", model["error"]
        # a registry name cannot hold mathtext, but a free-text label can (a model named
        # before the registry, migration 0012): the title shows it
        with session_factory.begin() as session:
            row = session.get(ModelRow, model["id"])
            assert row is not None
            row.name = HOSTILE_NAME
        query = f"?group={quote(group)}" if group else ""
        listing = worker_client.get(f"/v1/models/{model['id']}/plots{query}")
        assert listing.status_code == 200, listing.text
        plots = listing.json()["plots"]
        assert {p["name"] for p in plots} >= {"residuals_vs_fitted", "residuals_by_group",
                                               "qq", "fitted_lines"}
        for plot in plots:
            assert_image(worker_client.get(plot["png"]), "png")
            svg = worker_client.get(plot["svg"])
            assert_image(svg, "svg")
            assert HOSTILE_NAME in svg.text, plot["name"]  # the title, as text
        by_group = next(p for p in plots if p["name"] == "residuals_by_group")
        svg_text = worker_client.get(by_group["svg"]).text
        for level in HOSTILE_LEVELS.values():  # tick labels
            assert f"<!-- {level} -->" in svg_text, level
