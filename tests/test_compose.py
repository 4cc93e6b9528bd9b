"""docker-compose.yml's structure (no Docker engine runs here): PostgreSQL, a one-shot
migration that everything waits for, the API without a worker, and scalable workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from service.cli import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = compose["services"]
    return found


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "exec form: no shell between compose and the process"
    return [str(part) for part in command]


def test_services_are_the_production_layout(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"]


def test_commands_are_valid_mixedfit_invocations(services: dict[str, Any]) -> None:
    parser = build_parser()
    migrate = parser.parse_args(_command(services["migrate"])[1:])
    api = parser.parse_args(_command(services["api"])[1:])
    worker = parser.parse_args(_command(services["worker"])[1:])
    assert _command(services["migrate"])[0] == "mixedfit" and migrate.command == "migrate"
    assert api.command == "serve" and api.no_worker and api.host == "0.0.0.0"
    assert worker.command == "worker"
    assert f"{api.port}:{api.port}" in services["api"]["ports"]


def test_migrations_run_once_before_api_and_workers(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"].get("restart", "no") == "no"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    # anything fixed per instance would make `--scale worker=4` fail or collide
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_every_mixedfit_service_uses_the_compose_database(services: dict[str, Any]) -> None:
    postgres = services["postgres"]["environment"]
    urls = set()
    for name in ("migrate", "api", "worker"):
        environment = services[name]["environment"]
        assert services[name]["image"] == services["api"]["image"]
        url = make_url(environment["MIXEDFIT_DATABASE_URL"])
        urls.add(url)
        assert url.get_backend_name() == "postgresql"
        assert url.host == "postgres"
        assert (url.username, url.password, url.database) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
        # every variable is a real setting (a misspelt one would be silently ignored)
        for key in environment:
            assert key.startswith("MIXEDFIT_")
            assert key.removeprefix("MIXEDFIT_").lower() in Settings.model_fields, key
    assert len(urls) == 1


def test_dockerfile_installs_the_package_and_defaults_to_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert "COPY service" in dockerfile
    assert 'CMD ["mixedfit", "serve"' in dockerfile
    assert "USER " in dockerfile
