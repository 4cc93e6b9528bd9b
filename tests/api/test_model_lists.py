"""Lists of models, comparisons and registered names (SQLite and PostgreSQL): filters, sort
orders, cursor pages with ``next`` links over 1,000 models (none missed or repeated),
limit/offset still working, and unknown query parameters refused with a 422."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.db.models import ModelRow
from tests.api.conftest import assert_problem

START = datetime(2026, 1, 1, tzinfo=UTC)
N = 1000


@pytest.fixture
def stored(session_factory: sessionmaker[Session]) -> list[ModelRow]:
    """1,000 models stored directly (no fits needed to list them): every third failed,
    lm and lmm alternating, a tag on every fifth, some created in the same second."""
    rows = []
    for i in range(N):
        rows.append(ModelRow(
            id=str(uuid.uuid4()), name=f"m{i % 7}", version=i // 7 + 1,
            registered_model_id=None, dataset_id="d" * 36 if i % 2 else "e" * 36,
            formula="y ~ x", method="REML", kind="lm" if i % 2 else "lmm",
            status="failed" if i % 3 == 0 else "succeeded",
            tags={"team": "a" if i % 10 == 0 else "b"} if i % 5 == 0 else None,
            created_at=START + timedelta(seconds=i // 4)))
    with session_factory.begin() as session:
        session.add_all(rows)
    return rows


def _walk(client: TestClient, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        page = client.get(next_url)
        assert page.status_code == 200, page.text
        body = page.json()
        items.extend(body["items"])
        next_url = body["next"]
        assert len(items) <= N
    return items


def test_cursor_pages_cover_every_model_once_in_order(client: TestClient,
                                                      stored: list[ModelRow]) -> None:
    newest_first = _walk(client, "/v1/models?limit=64")
    assert len(newest_first) == N
    expected = sorted(stored, key=lambda r: (-r.created_at.timestamp(), r.id))
    assert [m["id"] for m in newest_first] == [r.id for r in expected]
    oldest_first = _walk(client, "/v1/models?limit=100&sort=created_at")
    assert [m["id"] for m in oldest_first] == [
        r.id for r in sorted(stored, key=lambda r: (r.created_at, r.id))]
    by_name = _walk(client, "/v1/models?limit=33&sort=name")
    assert [(m["name"], m["version"]) for m in by_name] == sorted(
        (r.name, r.version) for r in stored)
    assert all(m["result"] is None for m in by_name)


def test_filters_combine_and_the_next_link_keeps_them(client: TestClient,
                                                      stored: list[ModelRow]) -> None:
    def matching(row: ModelRow) -> bool:
        return row.status == "failed" and row.kind == "lm" and row.dataset_id == "d" * 36

    url = f"/v1/models?status=failed&kind=lm&dataset_id={'d' * 36}&limit=10"
    first = client.get(url).json()
    assert first["total"] == sum(map(matching, stored))
    assert "status=failed" in first["next"] and "kind=lm" in first["next"]
    assert {m["id"] for m in _walk(client, url)} == {r.id for r in stored if matching(r)}
    tagged = _walk(client, "/v1/models?tag=team:a&limit=50")
    assert {m["id"] for m in tagged} == {r.id for r in stored if r.tags == {"team": "a"}}
    assert client.get("/v1/models?tag=team:a&tag=team:b").json()["total"] == 0
    assert client.get("/v1/models?name=m3").json()["total"] == sum(r.name == "m3"
                                                                    for r in stored)
    after, before = START + timedelta(seconds=10), START + timedelta(seconds=20)
    window = client.get("/v1/models", params={"created_after": after.isoformat(),
                                              "created_before": before.isoformat(),
                                              "limit": 1000}).json()
    assert {m["id"] for m in window["items"]} == {
        r.id for r in stored if after < r.created_at < before}


def test_limit_and_offset_still_page(client: TestClient, stored: list[ModelRow]) -> None:
    expected = [r.id for r in sorted(stored, key=lambda r: (-r.created_at.timestamp(), r.id))]
    page = client.get("/v1/models?limit=5&offset=10").json()
    assert [m["id"] for m in page["items"]] == expected[10:15]
    assert (page["total"], page["limit"], page["offset"]) == (N, 5, 10)
    continued = client.get(page["next"]).json()
    assert [m["id"] for m in continued["items"]] == expected[15:20]
    last = client.get(f"/v1/models?limit=5&offset={N - 5}").json()
    assert last["next"] is None


@pytest.mark.parametrize("url", ["/v1/models?stauts=failed", "/v1/models?page=2",
                                 "/v1/comparisons?sort=name", "/v1/registry?q=x",
                                 "/v1/datasets?name=mood"])
def test_an_unknown_query_parameter_is_422_naming_it(client: TestClient, url: str) -> None:
    body = assert_problem(client.get(url), 422)
    assert url.split("?")[1].split("=")[0] in str(body)


@pytest.mark.parametrize("query", ["cursor=nonsense", "tag=nocolon", "sort=size",
                                   "status=lost"])
def test_a_bad_filter_or_cursor_is_422(client: TestClient, query: str) -> None:
    assert_problem(client.get(f"/v1/models?{query}"), 422)


def test_a_cursor_of_another_sort_is_422(client: TestClient, stored: list[ModelRow]) -> None:
    cursor = client.get("/v1/models?limit=2").json()["next"].split("cursor=")[1]
    body = assert_problem(client.get(f"/v1/models?sort=name&cursor={cursor}"), 422)
    assert "sort" in body["detail"]


def test_comparisons_are_listed_as_summaries_and_deleted(client: TestClient,
                                                         mood_id: str) -> None:
    ids = [client.post("/v1/models", json={"dataset_id": mood_id, "formula": formula,
                                            "name": "nested"}).json()["id"]
           for formula in ("Mood ~ 1", "Mood ~ Exercise")]
    client.put("/v1/registry/nested/aliases/bigger", json={"version": 2})
    created = [client.post("/v1/comparisons", json={"model_ids": refs})
               for refs in (ids, ids, ["nested@1", "nested@bigger"])]
    assert all(c.status_code == 202 for c in created), created[0].text
    assert created[2].json()["model_ids"] == ids  # references are stored as the ids
    listed = client.get("/v1/comparisons?limit=2").json()
    assert (listed["total"], len(listed["items"])) == (3, 2)
    assert {c["id"] for c in client.get("/v1/comparisons").json()["items"]} == {
        c.json()["id"] for c in created}
    assert all(c["result"] is None for c in listed["items"])
    gone = created[0].json()["id"]
    assert client.delete(f"/v1/comparisons/{gone}").status_code == 204
    assert_problem(client.get(f"/v1/comparisons/{gone}"), 404)
    assert_problem(client.delete(f"/v1/comparisons/{gone}"), 404)
    assert client.get("/v1/comparisons").json()["total"] == 2
    # the compared models stay
    assert all(client.get(f"/v1/models/{i}").status_code == 200 for i in ids)
