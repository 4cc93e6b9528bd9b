"""The ``mixedfit`` command: serve the API, run workers, migrate, write the OpenAPI file."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.ops.logs import configure_logging
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from service.db.models import ApiKeyRow

OPENAPI_PATH = Path("openapi") / "openapi.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixedfit",
        description="Linear and linear mixed-effects models over HTTP, with R/lme4 semantics. "
                    "Configuration comes from MIXEDFIT_* environment variables "
                    "(MIXEDFIT_DATABASE_URL, ...).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the API (and, unless --no-worker, a worker in the same process)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--no-worker", action="store_true",
                       help="do not fit in this process (run `mixedfit worker` elsewhere)")
    serve.add_argument("--processes", type=int, default=None, metavar="N",
                       help="API processes sharing the port (default MIXEDFIT_API_PROCESSES, "
                            "1); each runs its own worker unless --no-worker")

    worker = commands.add_parser("worker", help="run a worker that claims and fits queued models")
    worker.add_argument("--check", action="store_true",
                        help="exit 0 if a worker could work now (the database answers and its "
                             "schema is current), 1 otherwise: a container health check")
    commands.add_parser("migrate", help="bring the database schema to the newest revision")

    keys = commands.add_parser(
        "keys", help="make, list and revoke API keys (once one exists, /v1 needs a key)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create", help="make a key for a tenant and print it (shown this once only)")
    create.add_argument("--tenant", required=True,
                        help="the tenant whose datasets, models and comparisons it reaches")
    create.add_argument("--admin", action="store_true",
                        help="the key sees every tenant's resources")
    listing = key_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    revoke = key_commands.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("id", help="the key's id, as `mixedfit keys list` shows it")

    openapi = commands.add_parser("openapi", help="write or verify the OpenAPI document")
    openapi.add_argument("--check", action="store_true",
                         help="exit 1 if the file differs from what the app serves")
    openapi.add_argument("--output", type=Path, default=OPENAPI_PATH,
                         help=f"file to write or check (default {OPENAPI_PATH})")
    return parser


def render_openapi() -> str:
    """The served OpenAPI document as the committed file holds it."""
    from service.app import create_app

    spec = create_app(Settings(embedded_worker=False)).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def _openapi(path: Path, check: bool) -> int:
    text = render_openapi()
    if check:
        if not path.exists():
            print(f"{path} does not exist; run `mixedfit openapi`", file=sys.stderr)
            return 1
        if json.loads(path.read_text(encoding="utf-8")) != json.loads(text):
            print(f"{path} differs from the app's OpenAPI document; run `mixedfit openapi`",
                  file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from service.auth import keys
    from service.db.migrate import schema_problem, upgrade
    from service.db.session import create_db_engine, is_sqlite, make_session_factory

    engine = create_db_engine(settings.database_url)
    try:
        problem = schema_problem(engine)
        if problem is not None and is_sqlite(settings.database_url):
            # as `serve` does: the embedded database is ours to migrate
            upgrade(settings.database_url)
            problem = schema_problem(engine)
        if problem is not None:
            print(problem, file=sys.stderr)
            return 1
        with make_session_factory(engine).begin() as session:
            if args.keys_command == "create":
                made = keys.create_key(session, args.tenant, admin=args.admin)
                row = made.row
            elif args.keys_command == "revoke":
                row, active = keys.revoke_key(session, args.id)
            else:
                rows = keys.list_keys(session)
                listed = [_key_fields(row) for row in rows]
    except keys.KeyCommandError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.keys_command == "create":
        # the key alone on stdout (KEY=$(mixedfit keys create ...)); what it is, on stderr
        print(made.key)
        print(f"API key {row.id} for tenant {row.tenant!r}{' (admin)' if row.admin else ''}. "
              "It is shown only now: only its SHA-256 is stored.", file=sys.stderr)
    elif args.keys_command == "revoke":
        print(f"API key {row.id} ({row.tenant}) "
              + ("revoked" if active else f"was already revoked at {row.revoked_at}"))
    elif args.json:
        print(json.dumps(listed, indent=2))
    else:
        _print_keys(listed)
    return 0


def _key_fields(row: ApiKeyRow) -> dict[str, object]:
    return {"id": row.id, "tenant": row.tenant, "admin": row.admin, "prefix": row.prefix,
            "created_at": row.created_at.isoformat(timespec="seconds"),
            "revoked_at": row.revoked_at.isoformat(timespec="seconds")
            if row.revoked_at else None}


def _print_keys(listed: list[dict[str, object]]) -> None:
    header = ["id", "tenant", "admin", "key", "created", "revoked"]
    lines = [[str(k["id"]), str(k["tenant"]), "yes" if k["admin"] else "no",
              f"{k['prefix']}…", str(k["created_at"]), str(k["revoked_at"] or "-")]
             for k in listed]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
              .rstrip())


def _serve(settings: Settings, host: str, port: int, no_worker: bool,
           processes: int | None) -> int:
    import uvicorn

    from service.app import create_app
    from service.db.migrate import upgrade
    from service.db.session import is_sqlite

    if no_worker:
        settings = settings.model_copy(update={"embedded_worker": False})
    if is_sqlite(settings.database_url):
        # the embedded database belongs to this process: keep its schema current; a shared
        # PostgreSQL is migrated once, by `mixedfit migrate`, before any server starts
        upgrade(settings.database_url)
    # no `server: uvicorn` header; logging as configured in main (log_config=None), with the
    # app's access line (request id, route template, duration) instead of uvicorn's
    # httptools, with a lingering close so that a refused body's 413 reaches its client
    options: dict[str, Any] = {"host": host, "port": port, "server_header": False,
                               "log_config": None, "access_log": False,
                               "http": "service.ops.lingering:LingeringHttpToolsProtocol"}
    processes = processes or settings.api_processes
    if processes > 1:
        # each process builds the app from the environment (service.asgi), which
        # therefore carries --no-worker
        if no_worker:
            os.environ["MIXEDFIT_EMBEDDED_WORKER"] = "false"
        from service.asgi import serve_processes

        serve_processes(host, port, processes,
                        {k: v for k, v in options.items() if k not in ("host", "port")})
        return 0
    uvicorn.run(create_app(settings), **options)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_format)
    if args.command == "serve":
        return _serve(settings, args.host, args.port, args.no_worker, args.processes)
    if args.command == "worker" and args.check:
        from service.ops.check import check_worker_database

        healthy, reason = check_worker_database(settings)
        print(reason, file=sys.stdout if healthy else sys.stderr)
        return 0 if healthy else 1
    if args.command == "worker":
        from service.jobs import run_worker_process

        run_worker_process(settings)
        return 0
    if args.command == "keys":
        return _keys(settings, args)
    if args.command == "migrate":
        from service.db.migrate import upgrade

        upgrade(settings.database_url)
        print("database schema is at the newest revision")
        return 0
    return _openapi(args.output, args.check)


if __name__ == "__main__":
    sys.exit(main())
