"""``mixedfit keys create / list / revoke`` on SQLite and PostgreSQL: a key is printed once,
never listed, works against the API at once, and stops working when revoked."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth.keys import KEY_PATTERN
from service.cli import build_parser, main
from service.settings import Settings, get_settings


@pytest.fixture
def env_database(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[str]:
    monkeypatch.setenv("MIXEDFIT_DATABASE_URL", database_url)
    get_settings.cache_clear()  # settings are read once per process; this test changes them
    yield database_url
    get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    keys: list[dict[str, object]] = json.loads(out)
    return keys


def refused_soon(client: TestClient, bearer: dict[str, str], exact: bool) -> bool:
    """Whether a just-revoked key is refused: on SQLite by the very next request (the
    change token is the database file's own counter); on PostgreSQL once the API process
    has heard the revocation's notification, a millisecond or so after the commit
    (service/db/changes.py), so within a second at the most here."""
    deadline = time.monotonic() + (0.0 if exact else 1.0)
    while True:
        if client.get("/v1/datasets", headers=bearer).status_code == 401:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def test_keys_commands_parse() -> None:
    args = build_parser().parse_args(["keys", "create", "--tenant", "acme", "--admin"])
    assert (args.command, args.keys_command, args.tenant, args.admin) == (
        "keys", "create", "acme", True)
    assert build_parser().parse_args(["keys", "revoke", "abc"]).id == "abc"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["keys", "create"])  # --tenant is required


def test_create_list_revoke(env_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "create", "--tenant", "acme")
    assert code == 0
    key = out.strip()
    assert KEY_PATTERN.fullmatch(key) and "\n" not in key  # the key alone on stdout
    assert "acme" in err and "shown only now" in err
    code, out, _ = run(capsys, "create", "--tenant", "ops", "--admin")
    admin_key = out.strip()

    keys = listed(capsys)
    assert [(k["tenant"], k["admin"], k["revoked_at"]) for k in keys] == [
        ("acme", False, None), ("ops", True, None)]
    assert keys[0]["prefix"] == key[:7]
    code, text, _ = run(capsys, "list")
    assert code == 0
    assert text.splitlines()[0].split() == ["id", "tenant", "admin", "key", "created",
                                            "revoked"]
    assert str(keys[0]["id"]) in text and "acme" in text
    # the secret is never shown again
    assert key not in text and key[7:] not in text and admin_key not in text

    app = create_app(Settings(database_url=env_database, embedded_worker=False))
    with TestClient(app) as client:
        bearer = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/datasets").status_code == 401
        assert client.get("/v1/datasets", headers=bearer).status_code == 200
        code, out, _ = run(capsys, "revoke", str(keys[0]["id"]))
        assert code == 0 and "revoked" in out
        assert refused_soon(client, bearer, exact=env_database.startswith("sqlite"))
        assert client.get("/v1/datasets",
                          headers={"Authorization": f"Bearer {admin_key}"}).status_code == 200

    assert listed(capsys)[0]["revoked_at"] is not None
    code, out, _ = run(capsys, "revoke", str(keys[0]["id"]))  # again: says so, no error
    assert code == 0 and "already revoked" in out


def test_unknown_ids_and_bad_tenants_are_refused(env_database: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "revoke", "no-such-key")
    assert code == 1 and "no API key with id 'no-such-key'" in err
    for tenant in ("", "two words", "-leading", "x" * 201):
        code, out, err = run(capsys, "create", f"--tenant={tenant}")
        assert code == 1 and out == "" and "Tenant names" in err
    assert listed(capsys) == []


def test_keys_on_a_database_never_migrated(monkeypatch: pytest.MonkeyPatch,
                                           empty_database_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """SQLite (embedded) is migrated first, as by `serve`; a shared PostgreSQL is not the
    command's to migrate: it says to run `mixedfit migrate`."""
    monkeypatch.setenv("MIXEDFIT_DATABASE_URL", empty_database_url)
    get_settings.cache_clear()
    try:
        code, out, err = run(capsys, "list")
    finally:
        get_settings.cache_clear()
    if empty_database_url.startswith("sqlite"):
        assert code == 0 and out.splitlines()[0].split()[0] == "id"
    else:
        assert code == 1 and out == "" and "mixedfit migrate" in err
