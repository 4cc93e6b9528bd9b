"""Datasets and models round-trip through their repositories on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.datasets.repository import add_dataset, delete_dataset, get_dataset, list_datasets
from service.db.models import FixedEffectRow, ModelMetricRow
from service.models.repository import (
    add_model,
    get_model,
    list_models,
    mark_failed,
    store_fit_result,
    variance_component_values,
)
from service.stats.fit import FittedModel
from tests.db.factories import DATA, dataset_row, expected, model_row, result_from_r

SessionFactory = sessionmaker[Session]


@pytest.fixture
def mood() -> pd.DataFrame:
    return pd.read_csv(DATA / "mood.csv")


def test_dataset_round_trip_keeps_content_and_metadata(session_factory: SessionFactory,
                                                       mood: pd.DataFrame) -> None:
    row = dataset_row(mood, name="mood")
    with session_factory.begin() as session:
        add_dataset(session, row)
    with session_factory() as session:
        light = get_dataset(session, row.id)
        assert light is not None
        assert "content" in inspect(light).unloaded
        assert (light.name, light.n_rows, light.sha256) == ("mood", len(mood), row.sha256)
        assert light.columns == row.columns
        assert light.created_at == row.created_at
    with session_factory() as session:
        full = get_dataset(session, row.id, with_content=True)
        assert full is not None and full.content == row.content
    assert full.created_at.tzinfo is not None


def test_dataset_list_pages_newest_first_without_content(session_factory: SessionFactory,
                                                         mood: pd.DataFrame) -> None:
    rows = [dataset_row(mood.head(n), name=f"d{n}") for n in (5, 6, 7)]
    with session_factory.begin() as session:
        for row in rows:
            add_dataset(session, row)
    with session_factory() as session:
        page, total = list_datasets(session, limit=2, offset=0)
        rest, _ = list_datasets(session, limit=2, offset=2)
        assert total == 3
        assert [r.name for r in page + rest] == ["d7", "d6", "d5"]
        assert all("content" in inspect(r).unloaded for r in page)


def test_deleting_a_dataset_keeps_its_models(session_factory: SessionFactory,
                                             mood: pd.DataFrame) -> None:
    dataset = dataset_row(mood)
    model = model_row(dataset.id, "Mood ~ Exercise", kind="lm")
    with session_factory.begin() as session:
        add_dataset(session, dataset)
        add_model(session, model)
    with session_factory.begin() as session:
        assert delete_dataset(session, dataset.id)
        assert not delete_dataset(session, dataset.id)
    with session_factory() as session:
        assert get_dataset(session, dataset.id) is None
        assert get_model(session, model.id) is not None


def test_models_list_filters_by_dataset(session_factory: SessionFactory,
                                        mood: pd.DataFrame) -> None:
    first, second = dataset_row(mood), dataset_row(mood)
    with session_factory.begin() as session:
        add_dataset(session, first)
        add_dataset(session, second)
        for formula in ("Mood ~ 1", "Mood ~ Exercise"):
            add_model(session, model_row(first.id, formula, kind="lm"))
        add_model(session, model_row(second.id, "Mood ~ State", kind="lm"))
    with session_factory() as session:
        all_models, total = list_models(session, limit=10, offset=0)
        assert total == 3 and len(all_models) == 3
        mine, mine_total = list_models(session, limit=1, offset=0, dataset_id=first.id)
        assert mine_total == 2 and len(mine) == 1 and mine[0].dataset_id == first.id


def _stored_model(session_factory: SessionFactory, mood: pd.DataFrame, formula: str) -> str:
    dataset = dataset_row(mood)
    model = model_row(dataset.id, formula)
    with session_factory.begin() as session:
        add_dataset(session, dataset)
        add_model(session, model)
    return model.id


def test_fit_result_is_stored_as_document_and_queryable_rows(
        session_factory: SessionFactory, mood: pd.DataFrame) -> None:
    model_id = _stored_model(session_factory, mood, "Reaction ~ Days + (Days | Subject)")
    result = result_from_r("sleepstudy_reml")
    fitted = FittedModel(result=result, prediction_state={"kind": "lmm", "beta": [1.0, 2.0]})
    with session_factory.begin() as session:
        assert store_fit_result(session, model_id, fitted)
    r = expected("sleepstudy_reml")
    with session_factory() as session:
        model = get_model(session, model_id)
        assert model is not None
        assert model.status == "succeeded" and model.finished_at is not None
        assert model.prediction_state == {"kind": "lmm", "beta": [1.0, 2.0]}
        assert model.result is not None
        assert model.result["residual_std_dev"] == r["sigma"]
        # R's confidence limits were left NaN above: stored as JSON null and SQL NULL
        assert model.result["fixed_effects"][0]["conf_low"] is None
        terms = session.execute(text(
            "SELECT term, estimate, conf_low FROM fixed_effects WHERE model_id = :id "
            "ORDER BY position"), {"id": model_id}).all()
        assert [(t, e) for t, e, _ in terms] == list(r["fixef"].items())
        assert all(low is None for _, _, low in terms)
        loglik = session.scalar(select(ModelMetricRow.value).where(
            ModelMetricRow.model_id == model_id, ModelMetricRow.name == "loglik"))
        assert loglik == r["loglik"]


@pytest.mark.parametrize("name", ["sleepstudy_reml", "orthodont_slopes", "sleepstudy_uncorr",
                                  "pastes_nested", "dyestuff2_singular"])
def test_variance_components_follow_r_as_data_frame_varcorr(name: str) -> None:
    rows = variance_component_values("m", result_from_r(name))
    got = [(row["group_name"], row["term1"], row["term2"]) for row in rows]
    want = [(v["group"], v["var1"], v["var2"]) for v in expected(name)["varcorr"]]
    assert got == want
    for row, v in zip(rows, expected(name)["varcorr"], strict=True):
        # covariances are rebuilt from R's correlation and standard deviations, so they
        # agree to rounding only; everything else is R's number passed through
        assert row["variance"] is not None and row["std_dev"] is not None
        assert math.isclose(row["variance"], v["vcov"], rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(row["std_dev"], v["sdcor"], rel_tol=1e-12, abs_tol=1e-15)


def test_a_second_result_for_the_same_model_is_refused(session_factory: SessionFactory,
                                                       mood: pd.DataFrame) -> None:
    model_id = _stored_model(session_factory, mood, "Reaction ~ Days + (Days | Subject)")
    fitted = FittedModel(result=result_from_r("sleepstudy_reml"), prediction_state={})
    with session_factory.begin() as session:
        assert store_fit_result(session, model_id, fitted)
    with session_factory.begin() as session:
        assert not store_fit_result(session, model_id, fitted)
        mark_failed(session, model_id, {"title": "late failure"})
    with session_factory() as session:
        count = session.scalar(select(text("count(*)")).select_from(FixedEffectRow).where(
            FixedEffectRow.model_id == model_id))
        assert count == 2
        model = get_model(session, model_id)
        assert model is not None and model.status == "succeeded" and model.error is None


def test_failed_model_keeps_its_problem(session_factory: SessionFactory,
                                        mood: pd.DataFrame) -> None:
    model_id = _stored_model(session_factory, mood, "Mood ~ Nope")
    problem = {"type": "urn:mixedfit:problem:fit-failed", "title": "t", "status": 422,
               "detail": "unknown column Nope"}
    with session_factory.begin() as session:
        mark_failed(session, model_id, problem)
    with session_factory() as session:
        model = get_model(session, model_id)
        assert model is not None
        assert (model.status, model.error, model.result) == ("failed", problem, None)
        is_null = session.scalar(text("SELECT result IS NULL FROM models WHERE id = :id"),
                                 {"id": model_id})
        assert is_null
