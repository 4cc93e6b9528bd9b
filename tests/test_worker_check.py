"""``mixedfit worker --check``, the worker container's health check, on real databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.cli import build_parser, main
from service.settings import get_settings


@pytest.fixture
def use_database(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    get_settings.cache_clear()  # settings are read once per process; these tests change them
    yield monkeypatch
    get_settings.cache_clear()


def test_the_option_parses() -> None:
    assert build_parser().parse_args(["worker", "--check"]).check
    assert not build_parser().parse_args(["worker"]).check


def test_healthy_on_a_migrated_database(use_database: pytest.MonkeyPatch, database_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    use_database.setenv("MIXEDFIT_DATABASE_URL", database_url)
    assert main(["worker", "--check"]) == 0
    assert "schema is current" in capsys.readouterr().out


def test_unhealthy_before_the_migration(use_database: pytest.MonkeyPatch,
                                        empty_database_url: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    use_database.setenv("MIXEDFIT_DATABASE_URL", empty_database_url)
    assert main(["worker", "--check"]) == 1
    assert "mixedfit migrate" in capsys.readouterr().err


def test_unhealthy_without_a_database(use_database: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # port 9 (discard) on the loopback address: nothing listens there
    use_database.setenv("MIXEDFIT_DATABASE_URL", "postgresql://postgres@127.0.0.1:9/none")
    assert main(["worker", "--check"]) == 1
    assert "cannot be reached" in capsys.readouterr().err
