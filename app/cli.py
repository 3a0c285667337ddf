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
import logging
import shutil
import socket
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from app.config import Settings, get_settings
from app.ops.logs import configure_logging, logging_config

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
    imp.add_argument(
        "--jobs",
        type=_bounded(1, 8),
        default=None,
        metavar="N",
        help="processes for an events file of many stores on PostgreSQL, each taking some "
        "stores' rows (default: 2 on a machine of 2+ cores for a file of 16 MiB or more; "
        "merchant-backend exports and --store files run in one)",
    )
    demo = commands.add_parser(
        "demo",
        help="load a demo store cluster (breached, approaching and fine stores)",
        formatter_class=defaults,
        description="Generate a month of a store cluster's orders and refunds and take them "
        "through the ingest road: then open the console, GET /v1/risk and the alerts. "
        "Stores are named shop-01, shop-02, …; running it again the same day adds nothing.",
    )
    demo.add_argument(
        "--stores", type=_bounded(1, 200), default=8, metavar="N", help="stores in the cluster"
    )
    demo.add_argument(
        "--days", type=_bounded(1, 365), default=30, metavar="D", help="days of history"
    )
    demo.add_argument("--seed", type=int, default=20261126, help="the generator's seed")
    return parser


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings)
    if args.command != "serve":  # serve says it beside its URL
        _say(f"database: {settings.database_label}")
    try:
        if args.command == "migrate":
            prepare_database(settings)
            _say("database at head")
            return 0
        if args.command == "serve":
            return _serve(settings, args.host, args.port, args.workers, not args.no_worker)
        if args.command == "worker":
            from app.worker.scheduler import run_worker_forever

            prepare_database(settings)
            asyncio.run(run_worker_forever(settings))
            return 0
        if args.command == "keys":
            return asyncio.run(_keys(settings, args))
        if args.command == "demo":
            prepare_database(settings)
            return asyncio.run(_demo(settings, args.stores, args.days, args.seed))
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
                    jobs=args.jobs,
                )
            )
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except RuntimeError as exc:
        from app.db.engine import PoolingRefused  # sqlalchemy loads only for real work

        if not isinstance(exc, PoolingRefused):
            raise
        _say(f"refusing to start: {exc}")
        return EXIT_USAGE
    return EXIT_USAGE


_cli_log = logging.getLogger("refundwatch.cli")


def _say(message: str) -> None:
    """A message for the operator on stderr: a log line too when logs are JSON lines."""
    if get_settings().log_format == "json":
        # Every stderr line stays a JSON object (a log shipper parses them all).
        _cli_log.info(message.strip())
    else:
        print(message, file=sys.stderr, flush=True)


def prepare_database(settings: Settings) -> None:
    """Migrate to head, then rebuild the figures of stores built with older bucket rules."""
    from app.db.engine import Database, create_engine
    from app.db.migrate import upgrade_to_head
    from app.figures.rebuild import rebuild_outdated_stores

    upgrade_to_head(settings.database_url)

    async def rebuild() -> int:
        db = Database(create_engine(settings))
        try:
            return await rebuild_outdated_stores(db)
        finally:
            await db.dispose()

    rebuilt = asyncio.run(rebuild())
    if rebuilt:
        _say(f"rebuilt the figures of {rebuilt} store(s) for the new bucket rules")


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

    busy = _port_free(host, port)
    if busy is not None:
        _say(f"cannot listen on {host}:{port}: {busy}; choose another with --port")
        return EXIT_USAGE
    prepare_database(settings)
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
    metrics_dir, made_here = None, False
    if workers > 1:
        from app.ops.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

        # Set before the workers start: each writes its counts there, any one serves the sum.
        metrics_dir, made_here = prepare_multiprocess_dir(os.environ.get(MULTIPROC_ENV))
        os.environ[MULTIPROC_ENV] = str(metrics_dir)
    try:
        uvicorn.run(
            "app.asgi:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            log_config=logging_config(settings),
            access_log=False,
            proxy_headers=True,
        )
    finally:
        if metrics_dir is not None and made_here:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


async def _demo(settings: Settings, stores: int, days: int, seed: int) -> int:
    from datetime import timedelta

    from app.clock import SystemClock
    from app.db.engine import Database, create_engine
    from app.ingest.road import ingest
    from app.ops.demo import load_demo

    db = Database(create_engine(settings))
    try:
        summary = await load_demo(
            db,
            ingest,
            now=SystemClock().now(),
            timezone=settings.default_timezone,
            max_future=timedelta(seconds=settings.max_future_skew_seconds),
            stores=stores,
            days=days,
            seed=seed,
        )
    finally:
        await db.dispose()
    for store in summary.stores:
        _say(
            f"  {store.store_id}  {store.profile:<11}  {store.orders:>5} orders, "
            f"{store.quality_refunds_in_window} quality refunds in the last 30 days"
        )
    _say(
        f"demo: {summary.accepted} events accepted, {summary.duplicates} already there, "
        f"{summary.rejected} refused; {summary.alerts} alerts raised"
    )
    if summary.rejected:
        _say("(refused: this demo was loaded on an earlier day; its ids now carry other times)")
    _say("next: refundwatch serve, then open /console, or GET /v1/risk with your key")
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
    if settings.log_format == "json":
        # Log lines never carry a key (the mask would blank it): the key goes to stdout.
        _say("no API key existed, so refundwatch created an admin key: printed once on stdout")
        print(key, flush=True)
        return
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
