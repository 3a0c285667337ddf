"""The `refundwatch` command: serve, worker, migrate, keys, import.

Every command resolves the database the same way (``REFUNDWATCH_DATABASE_URL``,
else the SQLite file in ``REFUNDWATCH_DATA_DIR``, default
``~/.local/share/refundwatch``) and says which one it used, so a key created
from any folder is a key the running server knows.

Exit codes: 0 done; 1 done, but rows or events were refused (import); 2 a usage
or input error (a file no known format, a port in use); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from app.config import Settings, get_settings

EXIT_REFUSED_ROWS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _version() -> str:
    try:
        return version("refundwatch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refundwatch",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"refundwatch {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    defaults = argparse.ArgumentDefaultsHelpFormatter

    serve = commands.add_parser(
        "serve", help="migrate, then serve the API (and the worker)", formatter_class=defaults
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--no-worker", action="store_true", help="API only; run `refundwatch worker` elsewhere"
    )

    commands.add_parser("worker", help="run the scheduler and the webhook relay alone")
    commands.add_parser("migrate", help="upgrade the database schema to head")

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser(
        "create", help="create a key and print it once", formatter_class=defaults
    )
    create.add_argument("--name", required=True, help="a name to tell the key apart")
    create.add_argument(
        "--scope",
        action="append",
        choices=["ingest", "read", "admin"],
        required=True,
        help="a scope the key grants (repeat for several; admin implies all)",
    )
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int, help="the id `keys list` shows")

    imp = commands.add_parser(
        "import",
        help="import history files: merchant-backend exports or event files",
        formatter_class=defaults,
        description="Load a seller's exports (订单查询 → 导出 CSV, 售后列表 → 导出 XLSX/CSV) or "
        "event files (JSONL/CSV) through the ingest road. Importing a file again accepts "
        "nothing new; a cut-short import of the same file resumes where it stopped.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="files to import")
    imp.add_argument(
        "--store",
        dest="store_id",
        default=None,
        help="the store the file belongs to (required for pdd-orders/pdd-aftersales; for event "
        "files, rows of other stores are refused)",
    )
    imp.add_argument(
        "--format",
        default=None,
        choices=["events-jsonl", "events-csv", "pdd-orders", "pdd-aftersales"],
        help="the file's format (default: detected from its header)",
    )
    imp.add_argument("--dry-run", action="store_true", help="read, map and validate; store nothing")
    imp.add_argument(
        "--errors", type=Path, default=None, metavar="OUT.csv", help="write every refused row here"
    )
    imp.add_argument(
        "--reason-map",
        type=Path,
        default=None,
        metavar="MAP.csv",
        help="two columns label,reason: platform 退款原因 labels → reason codes",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.command != "serve":  # serve says it beside its URL
        _say(f"database: {settings.database_label}")
    try:
        if args.command == "migrate":
            from app.db.migrate import upgrade_to_head

            upgrade_to_head(settings.database_url)
            _say("database at head")
            return 0
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers, not args.no_worker)
        if args.command == "worker":
            from app.db.migrate import upgrade_to_head
            from app.worker.scheduler import run_worker_forever

            upgrade_to_head(settings.database_url)
            asyncio.run(run_worker_forever(settings))
            return 0
        if args.command == "keys":
            return asyncio.run(_keys(settings, args))
        if args.command == "import":
            from app.imports.cli import import_files

            return asyncio.run(
                import_files(
                    settings,
                    args.files,
                    store_id=args.store_id,
                    format=args.format,
                    dry_run=args.dry_run,
                    errors_path=args.errors,
                    reason_map_path=args.reason_map,
                )
            )
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    return EXIT_USAGE


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be listened on, else the reason in a few words."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "it is already in use (another refundwatch, or another program)"
            return exc.strerror or str(exc)
    return None


def _serve(settings: Settings, host: str, port: int, workers: int, with_worker: bool) -> int:
    import os

    import uvicorn

    from app.db.migrate import upgrade_to_head

    busy = _port_free(host, port)
    if busy is not None:
        _say(f"cannot listen on {host}:{port}: {busy}; choose another with --port")
        return EXIT_USAGE
    upgrade_to_head(settings.database_url)
    asyncio.run(_first_start_key(settings))
    base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    _say(
        f"refundwatch {_version()} · database: {settings.database_label}\n"
        f"    console   {base}/console\n    API docs  {base}/docs"
    )
    os.environ["REFUNDWATCH_RUN_WORKER"] = "1" if with_worker else "0"
    if workers > 1 and with_worker:
        _say(
            "note: with several API workers, the worker runs in each; prefer --no-worker plus "
            "`refundwatch worker`"
        )
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=True,
    )
    return 0


async def _first_start_key(settings: Settings) -> None:
    """With no bootstrap key and no key at all, print a new admin key once.

    So the Quick start works without configuration, and still no endpoint is open.
    """
    from app.auth.repository import count_keys
    from app.auth.service import create_key
    from app.clock import SystemClock
    from app.db.engine import Database, create_engine

    if settings.bootstrap_admin_key is not None:
        return
    db = Database(create_engine(settings))
    try:
        async with db.transaction() as session:
            if await count_keys(session):
                return
            _record, key = await create_key(
                session, name="first-admin", scopes=["admin"], now=SystemClock().now()
            )
    finally:
        await db.dispose()
    _say(
        "\nNo API key existed, so refundwatch created an admin key (shown once):\n\n"
        f"    {key}\n\nUse it as: Authorization: Bearer {key} (and to sign in to the console)\n"
    )


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from app.auth import repository
    from app.auth.service import create_key, revoke_key
    from app.clock import SystemClock
    from app.db.engine import Database, create_engine
    from app.db.migrate import upgrade_to_head

    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    db = Database(create_engine(settings))
    try:
        async with db.transaction() as session:
            if args.keys_command == "create":
                record, key = await create_key(
                    session, name=args.name, scopes=args.scope, now=SystemClock().now()
                )
                _say(f"created key {record.id} ({record.name}, scopes {','.join(record.scopes)}):")
                print(key)
                return 0
            if args.keys_command == "list":
                for record in await session.scalars(repository.keys_query()):
                    state = (
                        f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "active"
                    )
                    print(
                        f"{record.id}\t{record.prefix}…\t{record.name}\t"
                        f"{','.join(record.scopes)}\t{state}"
                    )
                return 0
            if await revoke_key(session, args.key_id, SystemClock().now()):
                _say(f"revoked key {args.key_id}")
                return 0
            _say(f"no active key {args.key_id}")
            return EXIT_USAGE
    finally:
        await db.dispose()


if __name__ == "__main__":
    sys.exit(main())
