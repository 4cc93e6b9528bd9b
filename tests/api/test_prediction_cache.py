"""Predictions from a model already used read no model from the database (the compiled
predictor is cached; while nothing was written since the model was last seen nothing is
asked at all, else only the model's existence, by its primary key, since it may have been
deleted, in another API process too), give the same numbers, and the cache never shows a
model to another tenant nor serves a deleted one."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text

from service.db.changes import TRUST_SECONDS
from tests.api.conftest import ClientFactory
from tests.api.fitting import fit
from tests.api.keys import make_key
from tests.api.statements import model_reads
from tests.api.test_tenants import PREDICT, As, tenants  # noqa: F401 - the fixture

MOOD_LMM = "Mood ~ Exercise + (1 + Exercise | State)"
ROWS = {"records": [{"Exercise": 2.3, "State": "B"}, {"Exercise": 1.0, "State": "A"},
                    {"Exercise": 4.0, "State": "nowhere"}]}


def existence_checks_only(statements: list[str]) -> bool:
    """Each statement reads only a model's id (the cache's check that it still exists)."""
    return all(s.startswith("SELECT models.id \nFROM models") and "prediction_state" not in s
               for s in statements)


def test_a_used_model_predicts_without_reading_the_database(
        tenants: tuple[As, As, As], database_url: str) -> None:  # noqa: F811 - the fixture
    a, _, _ = tenants
    model_id = a.fit(a.upload(), MOOD_LMM)
    url = f"/v1/models/{model_id}/predictions"
    with model_reads(a.client.app) as first_reads:
        first = a.post(url, json=ROWS)
    confirmed = time.monotonic()
    assert first.status_code == 200, first.text
    assert first_reads, "the first prediction reads the model"
    with model_reads(a.client.app) as later_reads:
        later = [a.post(url, json=ROWS) for _ in range(3)]
        csv = a.post(url, content=b"Exercise,State\n2.3,B\n1.0,A\n4.0,nowhere\n",
                     headers={"Content-Type": "text/csv"})
    # nothing was written meanwhile: not even the model's existence is asked (unless, on
    # PostgreSQL, TRUST_SECONDS passed: then it is asked once more, by id)
    trusted = time.monotonic() - confirmed < TRUST_SECONDS or database_url.startswith("sqlite")
    assert later_reads == [] if trusted else existence_checks_only(later_reads), later_reads
    assert [r.json() for r in later] == [first.json()] * 3
    assert csv.json()["predictions"] == first.json()["predictions"]
    # a write that deletes nothing and changes no key (an upload): no read either; both
    # databases tell only of deletes and key changes (SQLite: migration 0016's count)
    a.upload()
    with model_reads(a.client.app) as after_write:
        assert a.post(url, json=ROWS).json() == first.json()
    if time.monotonic() - confirmed < TRUST_SECONDS or database_url.startswith("sqlite"):
        assert after_write == [], after_write
    else:
        assert len(after_write) <= 1 and existence_checks_only(after_write), after_write


def test_a_model_deleted_by_another_process_is_not_served_from_the_cache(
        tenants: tuple[As, As, As], database_url: str) -> None:  # noqa: F811
    a, _, _ = tenants
    model_id = a.fit(a.upload(), MOOD_LMM)
    url = f"/v1/models/{model_id}/predictions"
    assert a.post(url, json=ROWS).status_code == 200  # cached now
    # another API process (here: another engine) deletes the model behind this one's back
    other = create_engine(database_url)
    try:
        with other.begin() as connection:
            for table in ("fixed_effects", "variance_components", "model_metrics", "jobs"):
                column = "target_id" if table == "jobs" else "model_id"
                connection.execute(text(f"DELETE FROM {table} WHERE {column} = :id"),
                                   {"id": model_id})
            connection.execute(text("DELETE FROM models WHERE id = :id"), {"id": model_id})
    finally:
        other.dispose()
    # SQLite's data_version tells at once; PostgreSQL's notification within milliseconds
    deadline = time.monotonic() + 5
    while (answer := a.post(url, json=ROWS)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert answer.status_code == 404, answer.text


def test_the_cache_shows_a_model_to_its_tenant_and_admins_only(
        tenants: tuple[As, As, As]) -> None:  # noqa: F811 - the fixture
    a, b, admin = tenants
    model_id = a.fit(a.upload(), MOOD_LMM)
    url = f"/v1/models/{model_id}/predictions"
    assert a.post(url, json=PREDICT).status_code == 200  # now cached
    refused = b.post(url, json=PREDICT)
    assert refused.status_code == 404, refused.text
    assert admin.post(url, json=PREDICT).json() == a.post(url, json=PREDICT).json()
    # still refused once the admin's and a's hits have refreshed the entry
    assert b.post(url, json=PREDICT).status_code == 404


def test_a_new_key_of_the_same_tenant_shares_the_cached_model(
        tenants: tuple[As, As, As], database_url: str) -> None:  # noqa: F811
    a, _, _ = tenants
    model_id = a.fit(a.upload(), MOOD_LMM)
    url = f"/v1/models/{model_id}/predictions"
    first = a.post(url, json=PREDICT)
    other_key = As(a.client, make_key(database_url, "a"))
    with model_reads(a.client.app) as reads:
        again = other_key.post(url, json=PREDICT)
    assert existence_checks_only(reads), reads
    assert again.json() == first.json()


def test_without_a_cache_every_prediction_reads_the_model(
        make_client: ClientFactory, mood_csv: bytes) -> None:
    client = make_client(embedded_worker=True, prediction_cache_bytes=0)
    dataset = client.post("/v1/datasets", content=mood_csv,
                          headers={"Content-Type": "text/csv"}).json()
    model = fit(client, dataset["id"], MOOD_LMM)
    url = f"/v1/models/{model['id']}/predictions"
    first = client.post(url, json=ROWS).json()
    with model_reads(client.app) as reads:
        again = client.post(url, json=ROWS).json()
    assert reads, "with the cache off the model is read again"
    assert again == first
