"""Idempotency keys and rate limits are per tenant: two tenants' API keys, on SQLite and
PostgreSQL, through the real auth middleware."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import ClientFactory, assert_problem
from tests.api.keys import make_key

CSV = {"Content-Type": "text/csv"}


def test_two_tenants_may_use_the_same_idempotency_key(
        make_client: ClientFactory, database_url: str, mood_csv: bytes) -> None:
    alice = make_key(database_url, "alice")
    bob = make_key(database_url, "bob")
    client: TestClient = make_client()

    def upload(headers: dict[str, str], body: bytes = mood_csv) -> str:
        response = client.post("/v1/datasets?name=mood", content=body,
                               headers={**CSV, **headers, "Idempotency-Key": "same"})
        assert response.status_code == 201, response.text
        dataset_id: str = response.json()["id"]
        return dataset_id

    first_alice = upload(alice.headers)
    first_bob = upload(bob.headers)
    assert first_bob != first_alice  # bob's key is not alice's: a request of its own
    assert upload(alice.headers) == first_alice
    assert upload(bob.headers) == first_bob
    # each tenant's replay is its own, and it never shows the other tenant's dataset
    assert client.get(f"/v1/datasets/{first_alice}", headers=bob.headers).status_code == 404
    # another body under the key is a misuse of alice's key only
    assert_problem(client.post("/v1/datasets?name=mood", content=mood_csv + b"1,A,2\n",
                               headers={**CSV, **alice.headers, "Idempotency-Key": "same"}),
                   422)
    carol = make_key(database_url, "carol")
    assert upload(carol.headers, mood_csv + b"1,A,2\n") not in (first_alice, first_bob)


def test_the_rate_limit_counts_each_tenant(make_client: ClientFactory,
                                           database_url: str) -> None:
    alice = make_key(database_url, "alice")
    alice_again = make_key(database_url, "alice")  # a second key of the same tenant
    bob = make_key(database_url, "bob")
    client: TestClient = make_client(rate_limit="3/minute")
    for headers in (alice.headers, alice_again.headers, alice.headers):
        assert client.get("/v1/datasets", headers=headers).status_code == 200
    response = client.get("/v1/datasets", headers=alice_again.headers)
    assert_problem(response, 429)
    assert int(response.headers["retry-after"]) >= 1
    assert client.get("/v1/datasets", headers=bob.headers).status_code == 200
    # without a key the auth middleware answers first: no tenant to count
    assert_problem(client.get("/v1/datasets"), 401)
