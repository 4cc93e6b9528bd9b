"""docker-compose.yml's structure (no Docker engine runs here): PostgreSQL and Redis, a
one-shot migration that everything waits for, the API without a worker, and scalable
workers; credentials only in the env file, health checks, limits and grace periods."""

from __future__ import annotations

import re
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


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """The variables of .env.example, the template of the .env that compose reads."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _environment(service: dict[str, Any], env_file: dict[str, str]) -> dict[str, str]:
    """What the container sees: the env file's variables, then the service's own."""
    assert service.get("env_file") == [".env"], "credentials come from .env"
    return {**env_file, **{k: str(v) for k, v in (service.get("environment") or {}).items()}}


def _seconds(duration: str) -> float:
    """A compose duration ("930s", "15m30s", "1h") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def _bytes(size: str) -> int:
    """A compose memory size ("8704M", "9g", "9216m") in bytes (binary multiples)."""
    match = re.fullmatch(r"(\d+)([bkmg]?)", size.lower())
    assert match, size
    return int(match[1]) * 1024 ** "bkmg".index(match[2] or "b")


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "exec form: no shell between compose and the process"
    return [str(part) for part in command]


def test_services_are_the_production_layout(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in services:
        assert "healthcheck" in services[name] or name == "migrate", name


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


def test_every_mixedfit_service_uses_the_compose_database(
        services: dict[str, Any], env_example: dict[str, str]) -> None:
    postgres = _environment(services["postgres"], env_example)
    urls = set()
    for name in ("migrate", "api", "worker"):
        environment = _environment(services[name], env_example)
        assert services[name]["image"] == services["api"]["image"]
        url = make_url(environment["MIXEDFIT_DATABASE_URL"])
        urls.add(url)
        assert url.get_backend_name() == "postgresql"
        assert url.host == "postgres"
        assert (url.username, url.password, url.database) == (
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"])
        # every variable is a real setting (a misspelt one would be silently ignored)
        for key in environment:
            if key.startswith("POSTGRES_"):
                continue  # the env file's lines for the postgres image
            assert key.startswith("MIXEDFIT_")
            assert key.removeprefix("MIXEDFIT_").lower() in Settings.model_fields, key
    assert len(urls) == 1


def test_no_credentials_in_the_compose_file(services: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"://[^/@\s]*:[^/@\s]*@", text), "no user:password@ in a URL"
    for name, service in services.items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), name
        assert not any("PASSWORD" in key or key == "MIXEDFIT_DATABASE_URL"
                       for key in environment), name


def test_the_env_file_is_a_template_that_git_ignores(env_example: dict[str, str]) -> None:
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB",
            "MIXEDFIT_DATABASE_URL"} <= set(env_example)
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in ignored
    assert not (ROOT / ".dockerignore").exists() or \
        ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_databases_are_not_published(services: dict[str, Any]) -> None:
    for name in ("postgres", "redis"):
        assert "ports" not in services[name], name
        assert services[name].get("network_mode") != "host", name


def test_api_and_workers_have_health_checks(services: dict[str, Any]) -> None:
    parser = build_parser()
    api = services["api"]["healthcheck"]["test"]
    assert api[0] == "CMD" and "/readyz" in " ".join(api)
    worker = services["worker"]["healthcheck"]["test"]
    assert worker[0] == "CMD"
    args = parser.parse_args(worker[2:])
    assert worker[1] == "mixedfit" and args.command == "worker" and args.check


def test_workers_may_finish_a_fit_and_have_its_memory(
        services: dict[str, Any], env_example: dict[str, str]) -> None:
    worker = services["worker"]
    environment = _environment(worker, env_example)
    settings = Settings(**{key.removeprefix("MIXEDFIT_").lower(): value
                           for key, value in environment.items()
                           if key.startswith("MIXEDFIT_")})
    assert settings.fit_timeout_seconds == 900
    # compose's default is 10 s before SIGKILL: a stopping worker gets the fit time limit
    assert _seconds(worker["stop_grace_period"]) >= settings.fit_timeout_seconds
    limit = _bytes(worker["deploy"]["resources"]["limits"]["memory"])
    # the fit's child may use fit_memory_bytes; the worker process beside it needs little
    assert settings.fit_memory_bytes < limit <= settings.fit_memory_bytes + 1024 ** 3
    api = services["api"]
    max_wait = float(_environment(api, env_example)["MIXEDFIT_MAX_WAIT_SECONDS"])
    assert _seconds(api["stop_grace_period"]) > max_wait


def test_api_rate_limits_share_redis(services: dict[str, Any],
                                     env_example: dict[str, str]) -> None:
    from service.ops.ratelimit import parse_rate_limit

    environment = _environment(services["api"], env_example)
    assert parse_rate_limit(environment["MIXEDFIT_RATE_LIMIT"])
    storage = make_url(environment["MIXEDFIT_RATE_LIMIT_STORAGE"])
    assert storage.drivername == "redis" and storage.host == "redis"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_dockerfile_installs_the_package_and_defaults_to_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile
    assert "COPY service" in dockerfile
    assert "COPY migrations" in dockerfile  # the Alembic environment, installed with service
    assert 'CMD ["mixedfit", "serve"' in dockerfile
    assert "USER " in dockerfile
